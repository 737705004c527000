"""Claims: rules E2-E4 (eligibility), A1-A3 (how many vouchers), V1-V3 (validity).

Expected numbers are worked out by hand from the SPEC, never by calling the rule itself.
"""

from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.campaign_files import load_bundled_campaign, load_campaign
from shared.campaign import Campaign
from shared.errors import (
    CampaignEnded,
    CampaignNotStarted,
    CertificateAlreadyClaimed,
    CertificateNotEligible,
    CertificateNotYours,
    InvalidAmount,
    InvalidRequest,
    NoVouchersDue,
)
from shared.idnumber import hash_id_number
from shared.rules import (
    CertificateRecord,
    ClaimDecision,
    PropertyType,
    check_claim,
    is_expired,
    last_valid_day,
    phase_for,
    rate_bp,
    voucher_base,
    voucher_expiry,
    vouchers_due,
)

SH = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")
LC = load_bundled_campaign("liaocheng-2024")
DEMO = load_bundled_campaign("liaocheng-demo")
CHIPING = load_campaign(Path(__file__).parent / "data" / "chiping-2025.toml")

KEY = b"test-pepper"
OWNER = hash_id_number("371502199001011234", KEY)
CO_OWNER = hash_id_number("11010519491231002X", KEY)
STRANGER = hash_id_number("371502198505050012", KEY)

YUAN = 100  # fen


def cert(
    total_yuan: int | float = 1_200_000,
    *,
    fen: int | None = None,
    relief_yuan: int = 0,
    kind: PropertyType = PropertyType.HOUSING,
    issued_on: date = date(2024, 9, 1),
    district: str = "dongchangfu",
    new_build: bool = True,
) -> CertificateRecord:
    return CertificateRecord(
        cert_no="鲁(2024)聊城市不动产权第0000001号",
        district=district,
        property_type=kind,
        new_build=new_build,
        invoice_excl_vat_fen=fen if fen is not None else int(total_yuan) * YUAN,
        tax_relief_fen=relief_yuan * YUAN,
        issued_on=issued_on,
        owner_hashes=frozenset({OWNER, CO_OWNER}),
    )


def at(y: int, m: int, d: int, hh: int = 10, mm: int = 0, tz: ZoneInfo = SH) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=tz)


DEFAULT_NOW = at(2024, 9, 2)


def claim(
    record: CertificateRecord,
    now: datetime = DEFAULT_NOW,
    *,
    campaign: Campaign = LC,
    who: bytes = OWNER,
    already_claimed: bool = False,
) -> ClaimDecision:
    return check_claim(campaign, record, who, now, already_claimed)


# --- A3: the SPEC's seven examples --------------------------------------------------------


def test_housing_of_1_200_000_yuan_gets_48_vouchers() -> None:
    # rule A3: > 1,000,000 元 → 40 bp; 1,200,000 × 0.4% = 4,800 元 → 48
    decision = claim(cert(1_200_000))
    assert (decision.voucher_count, decision.rate_bp, decision.base_fen) == (
        48,
        40,
        120_000_000,
    )


def test_housing_of_exactly_1_000_000_yuan_is_the_low_tier_and_gets_20() -> None:
    # rule A2/A3: ≤ 1,000,000 元 → 20 bp; 2,000 元 → 20
    assert claim(cert(1_000_000)).voucher_count == 20


def test_housing_of_1_000_000_yuan_and_one_fen_is_the_high_tier_and_gets_40() -> None:
    # rule A2/A3: 100,000,001 fen × 40 bp = 400,000.004 fen → 40 vouchers
    decision = claim(cert(fen=100_000_001))
    assert (decision.rate_bp, decision.voucher_count) == (40, 40)


def test_non_housing_of_350_000_yuan_gets_14() -> None:
    # rule A3: non-housing 40 bp; 1,400 元 → 14
    assert claim(cert(350_000, kind=PropertyType.NON_HOUSING)).voucher_count == 14


def test_housing_of_800_000_yuan_in_phase_2_gets_8() -> None:
    # rule A2/A3: phase 2 low tier 10 bp; 800 元 → 8
    decision = claim(cert(800_000, issued_on=date(2024, 12, 5)), at(2024, 12, 6))
    assert (decision.rate_bp, decision.voucher_count) == (10, 8)


def test_tax_relief_is_excluded_from_the_base_but_the_tier_follows_the_total_price() -> None:
    # rules A1/A2/A3: base 900,000 元, tier by total 1,200,000 → 40 bp → 3,600 元 → 36
    decision = claim(cert(1_200_000, relief_yuan=300_000))
    assert (decision.base_fen, decision.rate_bp, decision.voucher_count) == (
        90_000_000,
        40,
        36,
    )


def test_housing_of_49_999_yuan_is_refused_no_vouchers_due() -> None:
    # rule A3: 49,999 × 0.2% = 99.998 元 < 100 元
    with pytest.raises(NoVouchersDue):
        claim(cert(49_999))


def test_housing_of_50_000_yuan_gets_exactly_one() -> None:
    # rule A3: 100 元 exactly
    assert claim(cert(50_000)).voucher_count == 1


# --- A1 / A2 ------------------------------------------------------------------------------


def test_the_base_is_invoice_minus_relief_and_never_negative() -> None:
    # rule A1
    assert voucher_base(120_000_000, 30_000_000) == 90_000_000
    assert voucher_base(10_000, 20_000) == 0
    with pytest.raises(InvalidAmount):
        voucher_base(-1, 0)


def test_a_relief_larger_than_the_invoice_gives_no_vouchers() -> None:
    # rules A1/A3
    with pytest.raises(NoVouchersDue):
        claim(cert(500_000, relief_yuan=600_000))


def test_the_phase_is_chosen_by_the_issue_date_with_inclusive_ends() -> None:
    # rule A2
    assert phase_for(LC, date(2024, 8, 15)) is None
    assert phase_for(LC, date(2024, 8, 16)) == LC.phases[0]
    assert phase_for(LC, date(2024, 11, 30)) == LC.phases[0]
    assert phase_for(LC, date(2024, 12, 1)) == LC.phases[1]
    assert phase_for(LC, date(2025, 1, 31)) == LC.phases[1]
    assert phase_for(LC, date(2025, 2, 1)) is None


@pytest.mark.parametrize(
    ("issued_on", "kind", "total_yuan", "bp"),
    [
        (date(2024, 11, 30), PropertyType.HOUSING, 1_000_000, 20),
        (date(2024, 11, 30), PropertyType.HOUSING, 1_000_001, 40),
        (date(2024, 11, 30), PropertyType.NON_HOUSING, 100, 40),
        (date(2024, 12, 1), PropertyType.HOUSING, 1_000_000, 10),
        (date(2024, 12, 1), PropertyType.HOUSING, 1_000_001, 20),
        (date(2024, 12, 1), PropertyType.NON_HOUSING, 100, 20),
    ],
)
def test_the_rate_table_of_the_spec(
    issued_on: date, kind: PropertyType, total_yuan: int, bp: int
) -> None:
    # rule A2
    assert rate_bp(LC, cert(total_yuan, kind=kind, issued_on=issued_on)) == bp


def test_a_rate_outside_every_phase_is_not_eligible() -> None:
    with pytest.raises(CertificateNotEligible):
        rate_bp(LC, cert(issued_on=date(2025, 2, 1)))


# --- E2: phase boundaries through a claim ---------------------------------------------------


def test_a_certificate_issued_on_2024_08_15_is_refused() -> None:
    # rule E2
    with pytest.raises(CertificateNotEligible) as info:
        claim(cert(issued_on=date(2024, 8, 15)), at(2024, 8, 20))
    assert info.value.details["reason"] == "issued_outside_window"


def test_a_certificate_issued_on_2024_11_30_gets_phase_1_rates() -> None:
    # rule E2/A2: 1,000,000 元 at 20 bp → 20
    assert claim(cert(1_000_000, issued_on=date(2024, 11, 30)), at(2024, 12, 1)).voucher_count == 20


def test_a_certificate_issued_on_2024_12_01_gets_phase_2_rates() -> None:
    # rule E2/A2: 1,000,000 元 at 10 bp → 10
    assert claim(cert(1_000_000, issued_on=date(2024, 12, 1)), at(2024, 12, 1)).voucher_count == 10


def test_a_certificate_issued_on_2025_01_31_is_accepted() -> None:
    # rule E2: 1,200,000 元 phase 2 high tier 20 bp → 2,400 元 → 24
    assert claim(cert(issued_on=date(2025, 1, 31)), at(2025, 2, 10)).voucher_count == 24


def test_a_certificate_issued_on_2025_02_01_is_refused() -> None:
    # rule E2
    with pytest.raises(CertificateNotEligible):
        claim(cert(issued_on=date(2025, 2, 1)), at(2025, 2, 10))


def test_a_property_outside_the_issuing_districts_is_refused() -> None:
    # rule E2
    with pytest.raises(CertificateNotEligible) as info:
        claim(cert(district="chiping"))
    assert info.value.details["reason"] == "district"


@pytest.mark.parametrize("district", ["dongchangfu", "jingkai", "gaoxin", "dujia"])
def test_each_of_the_main_four_districts_is_eligible(district: str) -> None:
    # rules C2/E2
    assert claim(cert(district=district)).voucher_count == 48


def test_a_second_hand_property_is_refused() -> None:
    # rule E2: only 增量房
    with pytest.raises(CertificateNotEligible) as info:
        claim(cert(new_build=False))
    assert info.value.details["reason"] == "not_new_build"


def test_a_certificate_dated_after_the_claim_day_is_refused() -> None:
    # rule E2
    with pytest.raises(CertificateNotEligible) as info:
        claim(cert(issued_on=date(2024, 9, 10)), at(2024, 9, 2))
    assert info.value.details["reason"] == "issued_after_claim"


# --- E3 / E4 -------------------------------------------------------------------------------


def test_a_claimant_who_is_not_a_registered_owner_is_refused() -> None:
    # rule E3
    with pytest.raises(CertificateNotYours):
        claim(cert(), who=STRANGER)


def test_any_one_of_several_owners_may_claim() -> None:
    # rules E3/E4
    assert claim(cert(), who=CO_OWNER).voucher_count == 48


def test_a_certificate_already_claimed_is_refused() -> None:
    # rule E4: the first successful claim wins; the co-owner is refused
    with pytest.raises(CertificateAlreadyClaimed):
        claim(cert(), who=CO_OWNER, already_claimed=True)


def test_a_stranger_learns_nothing_about_a_claimed_or_ineligible_certificate() -> None:
    # rule E3 is checked before E2 and E4
    with pytest.raises(CertificateNotYours):
        claim(cert(new_build=False), who=STRANGER, already_claimed=True)


# --- claim window (C1, V3) -----------------------------------------------------------------


def test_a_claim_before_the_campaign_opens_is_refused() -> None:
    # rule C1: claims open 2024-08-16 00:00 Shanghai
    with pytest.raises(CampaignNotStarted):
        claim(cert(issued_on=date(2024, 8, 16)), at(2024, 8, 15, 23, 59))
    assert claim(cert(issued_on=date(2024, 8, 16)), at(2024, 8, 16, 0, 0)).voucher_count == 48


def test_no_claim_after_the_hard_end() -> None:
    # rule V3
    assert claim(cert(), at(2025, 4, 30, 23, 59)).voucher_count == 48
    with pytest.raises(CampaignEnded):
        claim(cert(), at(2025, 5, 1, 0, 0))


def test_the_claim_day_is_the_shanghai_calendar_day() -> None:
    # rule V3: 2025-04-30 16:30 UTC is 2025-05-01 00:30 in Shanghai
    with pytest.raises(CampaignEnded):
        claim(cert(), at(2025, 4, 30, 16, 30, tz=UTC))


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        claim(cert(), datetime(2024, 9, 2, 10, 0))


# --- V1 / V2 -------------------------------------------------------------------------------


def test_a_claim_on_2024_08_16_expires_at_the_end_of_2024_11_14() -> None:
    # rule V1: Aug 16 + 90 days (start day not counted) = Nov 14; ends 24:00
    claimed = at(2024, 8, 16, 9, 30)
    assert last_valid_day(LC, claimed) == date(2024, 11, 14)
    assert voucher_expiry(LC, claimed) == datetime(2024, 11, 15, 0, 0, tzinfo=SH)
    decision = claim(cert(issued_on=date(2024, 8, 16)), claimed)
    assert decision.expires_at == datetime(2024, 11, 15, 0, 0, tzinfo=SH)
    assert decision.last_valid_day == date(2024, 11, 14)


def test_a_claim_on_2025_01_30_expires_at_the_end_of_2025_04_30() -> None:
    # rule V1: Jan 30 + 90 days = Apr 30 exactly
    assert voucher_expiry(LC, at(2025, 1, 30)) == datetime(2025, 5, 1, 0, 0, tzinfo=SH)


def test_a_later_claim_is_capped_at_the_end_of_2025_04_30() -> None:
    # rule V1: Feb 20 + 90 days = May 21 → capped at the hard end
    assert last_valid_day(LC, at(2025, 2, 20)) == date(2025, 4, 30)
    assert voucher_expiry(LC, at(2025, 4, 30, 23, 0)) == datetime(2025, 5, 1, 0, 0, tzinfo=SH)


def test_a_claim_late_in_the_utc_day_counts_from_the_shanghai_date() -> None:
    # rule V1: 2024-08-16 20:00 UTC = 2024-08-17 04:00 Shanghai → last day 2024-11-15
    assert last_valid_day(LC, at(2024, 8, 16, 20, 0, tz=UTC)) == date(2024, 11, 15)


def test_expiry_is_not_computed_for_a_claim_after_the_hard_end() -> None:
    # rule V3
    with pytest.raises(CampaignEnded):
        voucher_expiry(LC, at(2025, 5, 1))


def test_a_voucher_is_expired_from_its_end_instant_on() -> None:
    # rule V2
    end = datetime(2024, 11, 15, 0, 0, tzinfo=SH)
    assert not is_expired(end, end - timedelta(microseconds=1))
    assert is_expired(end, end)
    assert is_expired(end, datetime(2024, 11, 14, 16, 0, tzinfo=UTC))


# --- the demo campaign works on current dates ----------------------------------------------


def test_the_demo_campaign_accepts_a_claim_on_2026_11_22() -> None:
    # rules C1/A2/V1: issued 2026-11-20 (phase 1), 1,200,000 元 → 48; Nov 22 + 90 = Feb 20
    decision = claim(cert(issued_on=date(2026, 11, 20)), at(2026, 11, 22), campaign=DEMO)
    assert decision.voucher_count == 48
    assert decision.expires_at == datetime(2027, 2, 21, 0, 0, tzinfo=SH)


def test_the_2024_campaign_refuses_a_claim_in_2026() -> None:
    with pytest.raises(CampaignEnded):
        claim(cert(issued_on=date(2026, 11, 20)), at(2026, 11, 22))


# --- a second campaign behaves by its own file ----------------------------------------------


def chiping_cert(total_yuan: int, relief_yuan: int = 0, **kw: object) -> CertificateRecord:
    return replace(
        cert(total_yuan, relief_yuan=relief_yuan, issued_on=date(2025, 3, 5)),
        district="chiping",
        **kw,  # type: ignore[arg-type]
    )


def test_chiping_tiers_by_the_base_so_relief_can_lower_the_rate() -> None:
    # rule A2 (tier_basis = base): base 450,000 < 500,000 → 30 bp → 1,350 元 / 50 元 → 27.
    # Liaocheng would tier by the total price (700,000 ≤ 1,000,000 → 20 bp → 9 vouchers).
    record = chiping_cert(700_000, relief_yuan=250_000)
    decision = claim(record, at(2025, 3, 10), campaign=CHIPING)
    assert (decision.rate_bp, decision.voucher_count) == (30, 27)
    liaocheng = replace(record, district="dongchangfu", issued_on=date(2024, 9, 1))
    assert vouchers_due(LC, liaocheng) == 9


def test_chiping_puts_exactly_the_threshold_in_the_high_tier() -> None:
    # rule A2 (inclusive = false): base 500,000 → 60 bp → 3,000 元 → 60 vouchers of 50 元
    assert claim(chiping_cert(500_000), at(2025, 3, 10), campaign=CHIPING).voucher_count == 60
    # one fen less: 49,999,999 × 30 bp / (10,000 × 5,000) = 29.99… → 29
    below = replace(chiping_cert(0), invoice_excl_vat_fen=49_999_999)
    assert claim(below, at(2025, 3, 10), campaign=CHIPING).voucher_count == 29


def test_chiping_non_housing_uses_its_own_rate_and_face_value() -> None:
    # rule A3: 200,000 元 × 50 bp = 1,000 元 / 50 元 → 20
    record = chiping_cert(200_000, property_type=PropertyType.NON_HOUSING)
    assert claim(record, at(2025, 3, 10), campaign=CHIPING).voucher_count == 20


def test_chiping_vouchers_last_30_days_and_stop_at_its_own_hard_end() -> None:
    # rule V1: Mar 10 + 30 days = Apr 9; Sep 15 + 30 → capped at 2025-09-30
    assert last_valid_day(CHIPING, at(2025, 3, 10)) == date(2025, 4, 9)
    assert voucher_expiry(CHIPING, at(2025, 9, 15)) == datetime(2025, 10, 1, 0, 0, tzinfo=SH)


def test_chiping_claims_open_on_its_own_date_and_only_for_its_district() -> None:
    with pytest.raises(CampaignNotStarted):
        claim(chiping_cert(500_000), at(2025, 3, 9), campaign=CHIPING)
    with pytest.raises(CertificateNotEligible):
        claim(
            replace(chiping_cert(500_000), district="dongchangfu"),
            at(2025, 3, 10),
            campaign=CHIPING,
        )


# --- properties -------------------------------------------------------------------------------

amounts = st.integers(min_value=0, max_value=10**11)
phase_days = st.dates(min_value=date(2024, 8, 16), max_value=date(2025, 1, 31))
kinds = st.sampled_from(list(PropertyType))


@given(amounts, amounts, phase_days, kinds)
def test_vouchers_times_face_never_exceed_base_times_rate(
    invoice: int, relief: int, issued_on: date, kind: PropertyType
) -> None:
    # rule A3: count × face ≤ base × rate < (count + 1) × face
    record = replace(cert(), invoice_excl_vat_fen=invoice, tax_relief_fen=relief)
    record = replace(record, issued_on=issued_on, property_type=kind)
    count = vouchers_due(LC, record)
    base = max(0, invoice - relief)
    rate = rate_bp(LC, record)
    assert rate in {10, 20, 40}
    assert count * 10_000 * 10_000 <= base * rate < (count + 1) * 10_000 * 10_000


@given(st.integers(min_value=0, max_value=10**11))
def test_the_tier_boundary_is_exactly_1_000_000_yuan(delta: int) -> None:
    # rule A2: ≤ 100,000,000 fen is 20 bp, anything above is 40 bp
    low = replace(cert(), invoice_excl_vat_fen=100_000_000 - min(delta, 100_000_000))
    high = replace(cert(), invoice_excl_vat_fen=100_000_001 + delta)
    assert rate_bp(LC, low) == 20
    assert rate_bp(LC, high) == 40


claim_times = st.datetimes(
    min_value=datetime(2024, 8, 16, 0, 0),
    max_value=datetime(2025, 4, 30, 23, 59, 59),
    timezones=st.just(SH),
)


@given(claim_times)
def test_expiry_is_never_after_the_hard_end_nor_before_the_claim(claimed: datetime) -> None:
    # rule V1
    expires = voucher_expiry(LC, claimed)
    assert expires <= datetime(2025, 5, 1, 0, 0, tzinfo=SH)
    assert expires > claimed
    assert expires - claimed <= timedelta(days=91)
    assert expires.astimezone(SH).time().isoformat() == "00:00:00"
