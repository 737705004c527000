"""Redemption at the till: rules U1-U4, U6 and V2."""

import unicodedata
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.campaign_files import load_bundled_campaign, load_campaign
from shared.errors import (
    BillTooSmall,
    InvalidAmount,
    InvalidRequest,
    MerchantNotPermitted,
    MerchantSuspended,
    NotEnoughVouchers,
    TooManyVouchers,
    VoucherExpired,
    WrongDistrict,
)
from shared.rules import (
    VoucherView,
    check_merchant,
    check_voucher_usable,
    max_redeemable,
    normalise_receipt_no,
    quote,
    select_vouchers,
)

SH = ZoneInfo("Asia/Shanghai")
LC = load_bundled_campaign("liaocheng-2024")
CHIPING = load_campaign(Path(__file__).parent / "data" / "chiping-2025.toml")
NOW = datetime(2024, 10, 1, 12, 0, tzinfo=SH)


def ends(month: int, day: int) -> datetime:
    return datetime(2024, month, day, 0, 0, tzinfo=SH)


def v(vid: int, expires_at: datetime, face: int = 10_000) -> VoucherView:
    return VoucherView(id=vid, expires_at=expires_at, face_value_fen=face)


WALLET = (
    v(1, ends(12, 1)),
    v(2, ends(11, 1)),
    v(3, ends(9, 30)),  # expired before NOW
    v(4, ends(11, 1)),
    v(5, ends(11, 20)),
)


# --- U3 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bill_fen", "allowed"),
    [(20_000, 1), (39_999, 1), (40_000, 2), (19_999, 0), (0, 0), (100_000_000, 5_000)],
)
def test_each_full_200_yuan_of_the_bill_allows_one_voucher(bill_fen: int, allowed: int) -> None:
    # rule U3: 200 → 1, 399.99 → 1, 400 → 2, no cap on count
    assert max_redeemable(LC, bill_fen) == allowed


def test_chiping_allows_one_voucher_per_100_yuan() -> None:
    # rule U3 by the second campaign's file: 399.99 → 3, 400 → 4
    assert max_redeemable(CHIPING, 39_999) == 3
    assert max_redeemable(CHIPING, 40_000) == 4


def test_a_bill_must_be_an_integer_amount_in_fen() -> None:
    with pytest.raises(InvalidAmount):
        max_redeemable(LC, 200.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        max_redeemable(LC, -1)


def test_a_bill_below_200_yuan_cannot_use_a_voucher() -> None:
    # rule U3
    with pytest.raises(BillTooSmall):
        select_vouchers(LC, WALLET, 1, 19_999, NOW)


def test_asking_more_vouchers_than_the_bill_allows_is_refused() -> None:
    # rule U3: 399.99 元 allows 1
    with pytest.raises(TooManyVouchers) as info:
        select_vouchers(LC, WALLET, 2, 39_999, NOW)
    assert info.value.details == {"requested": 2, "max_by_bill": 1}


def test_asking_more_than_the_citizen_holds_is_refused() -> None:
    # rule U3/V2: 4 unexpired vouchers held, 5 asked on a 1,000 元 bill
    with pytest.raises(NotEnoughVouchers) as info:
        select_vouchers(LC, WALLET, 5, 100_000, NOW)
    assert info.value.details == {"requested": 5, "available": 4}


@pytest.mark.parametrize("count", [0, -1, True])
def test_a_count_below_one_is_an_invalid_request(count: int) -> None:
    with pytest.raises(InvalidRequest):
        select_vouchers(LC, WALLET, count, 100_000, NOW)


def test_the_citizen_may_use_fewer_than_allowed() -> None:
    # rule U3
    assert select_vouchers(LC, WALLET, 1, 100_000, NOW) == (2,)


# --- U6 / V2 ----------------------------------------------------------------------------------


def test_vouchers_are_consumed_earliest_expiry_first_ties_by_id() -> None:
    # rule U6: 2 and 4 expire Nov 1, then 5 (Nov 20), then 1 (Dec 1); 3 is expired
    assert select_vouchers(LC, WALLET, 4, 100_000, NOW) == (2, 4, 5, 1)


def test_integer_ids_tie_break_numerically() -> None:
    # rule U6
    wallet = [v(10, ends(11, 1)), v(9, ends(11, 1))]
    assert select_vouchers(LC, wallet, 2, 40_000, NOW) == (9, 10)


def test_an_expired_voucher_is_never_selected() -> None:
    # rule V2: voucher 3 ended 2024-09-30 00:00
    wallet = [v(3, ends(9, 30)), v(7, ends(12, 1))]
    assert select_vouchers(LC, wallet, 1, 20_000, NOW) == (7,)
    with pytest.raises(NotEnoughVouchers):
        select_vouchers(LC, wallet, 2, 40_000, NOW)


def test_a_voucher_expiring_exactly_now_is_void() -> None:
    # rule V2
    wallet = [v(1, NOW)]
    with pytest.raises(NotEnoughVouchers):
        select_vouchers(LC, wallet, 1, 20_000, NOW)
    assert select_vouchers(LC, wallet, 1, 20_000, NOW - timedelta(seconds=1)) == (1,)
    with pytest.raises(VoucherExpired):
        check_voucher_usable(NOW, NOW)


def test_an_instant_without_its_zone_is_an_invalid_request() -> None:
    # every instant carries its zone: a naive expiry or a naive now is refused, never compared
    naive = [v(1, datetime(2024, 12, 1))]
    with pytest.raises(InvalidRequest):
        select_vouchers(LC, naive, 1, 20_000, NOW)
    with pytest.raises(InvalidRequest):
        quote(LC, 20_000, naive, NOW)
    with pytest.raises(InvalidRequest):
        select_vouchers(LC, WALLET, 1, 20_000, NOW.replace(tzinfo=None))


def test_duplicate_or_foreign_vouchers_are_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        select_vouchers(LC, [v(1, ends(12, 1)), v(1, ends(12, 2))], 1, 20_000, NOW)
    with pytest.raises(InvalidRequest):
        select_vouchers(LC, [v(1, ends(12, 1), face=5_000)], 1, 20_000, NOW)


def test_quote_shows_what_the_bill_and_the_wallet_allow() -> None:
    # rules U3/U6: 650 元 bill → 3 allowed; 4 held; 300 元 off; 350 元 paid otherwise
    q = quote(LC, 65_000, WALLET, NOW)
    assert (q.usable_count, q.max_by_bill, q.available_count) == (3, 3, 4)
    assert (q.value_fen, q.remaining_fen) == (30_000, 35_000)


def test_quote_is_limited_by_the_wallet_and_never_refuses() -> None:
    q = quote(LC, 10_000_000, WALLET, NOW)
    assert (q.usable_count, q.max_by_bill, q.value_fen) == (4, 500, 40_000)
    small = quote(LC, 15_000, WALLET, NOW)
    assert (small.usable_count, small.value_fen, small.remaining_fen) == (0, 0, 15_000)


def test_chiping_quote_uses_its_own_face_value_and_threshold() -> None:
    # rules U3 by the second file: 250 元 → 2 vouchers of 50 元; 150 元 remains
    wallet = [
        v(1, ends(12, 1), face=5_000),
        v(2, ends(12, 1), face=5_000),
        v(3, ends(12, 1), 5_000),
    ]
    q = quote(CHIPING, 25_000, wallet, NOW)
    assert (q.usable_count, q.value_fen, q.remaining_fen) == (2, 10_000, 15_000)


@given(
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=0, max_value=30),
)
def test_redeemable_vouchers_never_exceed_the_bill(bill_fen: int, held: int) -> None:
    # rule U3: count × 200 元 ≤ bill < (count + 1) × 200 元; value never above the bill
    allowed = max_redeemable(LC, bill_fen)
    assert allowed * 20_000 <= bill_fen < (allowed + 1) * 20_000
    wallet = [v(i, ends(12, 1)) for i in range(held)]
    q = quote(LC, bill_fen, wallet, NOW)
    assert q.value_fen <= bill_fen
    assert q.remaining_fen == bill_fen - q.value_fen >= 0
    assert q.usable_count == min(allowed, held)


# --- U1 / U2 -------------------------------------------------------------------------------------


def test_an_admitted_permitted_merchant_in_the_main_four_districts_may_redeem() -> None:
    # rules U1/U2
    for district in ("dongchangfu", "jingkai", "gaoxin", "dujia"):
        check_merchant(LC, district, True, True, False)


@pytest.mark.parametrize(("admitted", "permitted"), [(False, True), (True, False), (False, False)])
def test_a_merchant_not_admitted_or_not_granted_permission_is_refused(
    admitted: bool, permitted: bool
) -> None:
    # rule U1
    with pytest.raises(MerchantNotPermitted):
        check_merchant(LC, "dongchangfu", admitted, permitted, False)


def test_a_suspended_merchant_is_refused() -> None:
    # rules U1/X1
    with pytest.raises(MerchantSuspended):
        check_merchant(LC, "dongchangfu", True, True, True)


def test_a_merchant_outside_the_usable_districts_is_refused() -> None:
    # rule U2: Liaocheng vouchers are not usable in Chiping, and the other way round
    with pytest.raises(WrongDistrict):
        check_merchant(LC, "chiping", True, True, False)
    with pytest.raises(WrongDistrict):
        check_merchant(CHIPING, "dongchangfu", True, True, False)
    check_merchant(CHIPING, "chiping", True, True, False)


# --- U4 --------------------------------------------------------------------------------------


def test_one_receipt_number_in_two_spellings_is_the_same_bill() -> None:
    # rule U4
    assert normalise_receipt_no(" ab-0012 ") == "AB-0012"
    assert normalise_receipt_no("ＡＢ－００１２") == "AB-0012"


@pytest.mark.parametrize("raw", ["", "   ", "A\x00B", "A\x7fB", "A\u200bB", "X" * 65])
def test_an_empty_or_strange_receipt_number_is_refused(raw: str) -> None:
    with pytest.raises(InvalidRequest):
        normalise_receipt_no(raw)


def _receipt_as_written_in_the_rule(raw: str) -> str | None:
    """Rule U4 as first written (one category look-up per character); None: refused."""
    s = unicodedata.normalize("NFKC", raw).strip().upper()
    if not s or len(s) > 64 or any(unicodedata.category(ch).startswith("C") for ch in s):
        return None
    return s


@given(st.text(max_size=70) | st.text(st.characters(max_codepoint=127), max_size=70))
def test_the_receipt_number_is_the_rules_for_any_text(raw: str) -> None:
    # issue 15 skips the per-character look-up for printable ASCII: same answers
    expected = _receipt_as_written_in_the_rule(raw)
    if expected is None:
        with pytest.raises(InvalidRequest):
            normalise_receipt_no(raw)
    else:
        assert normalise_receipt_no(raw) == expected
