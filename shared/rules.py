"""The campaign rules as pure functions: who gets how many vouchers, until when, and how
many a bill may use. No I/O, no clock: the time is always a parameter (an aware datetime).

Every function cites its SPEC rule id; every number comes from the ``Campaign`` (rule C1).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from itertools import pairwise
from operator import attrgetter
from zoneinfo import ZoneInfo

from shared.campaign import (
    BP_DENOMINATOR,
    Campaign,
    EligiblePropertyKind,
    PartialRefundPolicy,
    Phase,
    TierBasis,
    ValidityCounting,
)
from shared.errors import (
    AlreadySettled,
    BillTooSmall,
    CampaignEnded,
    CampaignNotStarted,
    CertificateAlreadyClaimed,
    CertificateNotEligible,
    CertificateNotYours,
    InvalidRequest,
    MerchantNotPermitted,
    MerchantSuspended,
    NotEnoughVouchers,
    NoVouchersDue,
    ParticipationRevoked,
    RefundInvalid,
    TooManyVouchers,
    VoucherExpired,
    WrongDistrict,
)
from shared.money import parse_fen
from shared.values import value

RECEIPT_NO_MAX_LENGTH = 64
# rule U4: a bill's business date is its calendar date here (the ledger's business_date_of,
# server/migrations/0007, says the same)
BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


class PropertyType(StrEnum):
    """Rule E3/A2: the property type of a registration record."""

    HOUSING = "housing"
    NON_HOUSING = "non_housing"


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """Rule E3: an imported registration record of one 不动产权证.

    ``owner_hashes`` are the keyed hashes (``shared.idnumber.hash_id_number``) of the
    registered owners' ID numbers (rule X3).
    """

    cert_no: str
    district: str
    property_type: PropertyType
    new_build: bool
    invoice_excl_vat_fen: int
    tax_relief_fen: int
    issued_on: date
    owner_hashes: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class ClaimDecision:
    """Rule A3/V1: the outcome of an accepted claim."""

    voucher_count: int
    base_fen: int
    rate_bp: int
    expires_at: datetime
    """Exclusive end instant: 00:00 local of the day after the last valid day (rule V1)."""
    last_valid_day: date


@value
class VoucherView:
    """Rule U3/U6: what the redemption rules need to know about one held, unused voucher.

    ``id`` is the voucher's id in the ledger.
    """

    id: int
    expires_at: datetime
    face_value_fen: int


@value
class Quote:
    """Rule U3/U6: what a bill allows, given the vouchers the citizen holds."""

    usable_count: int
    """min(max_by_bill, available_count): the most vouchers the citizen can use now."""
    max_by_bill: int
    """floor(bill / spend threshold), rule U3."""
    available_count: int
    """Held vouchers not expired at ``now`` (rule V2)."""
    value_fen: int
    """Face value of the ``usable_count`` vouchers that would be used (earliest expiry first)."""
    remaining_fen: int
    """The rest of the bill, paid otherwise (never negative: no change is given)."""


# --- time -------------------------------------------------------------------------------


def require_aware(value: datetime, name: str = "time") -> datetime:
    """Refuse a naive datetime (``InvalidRequest``): every instant must carry its zone."""
    if not isinstance(value, datetime):
        raise InvalidRequest(f"{name} must be a datetime", field=name)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequest(f"{name} must be timezone-aware", field=name)
    return value


def local_date(campaign: Campaign, at: datetime) -> date:
    """The calendar date of the aware instant ``at`` in the campaign's time zone."""
    return require_aware(at, "at").astimezone(campaign.tz).date()


def start_of_day(day: date, tz: tzinfo) -> datetime:
    """The aware instant 00:00 of ``day`` in ``tz``."""
    return datetime.combine(day, time(0, 0), tzinfo=tz)


# --- amounts (A1-A3) --------------------------------------------------------------------


def voucher_base(invoice_excl_vat_fen: int, tax_relief_fen: int) -> int:
    """Rule A1: base = invoice price excluding VAT − the tax-relief portion, never below 0."""
    invoice = parse_fen(invoice_excl_vat_fen, field="invoice_excl_vat_fen")
    relief = parse_fen(tax_relief_fen, field="tax_relief_fen")
    return max(0, invoice - relief)  # rule A1


def phase_for(campaign: Campaign, issued_on: date) -> Phase | None:
    """Rule A2: the issuance phase containing the certificate issue date, or None."""
    for phase in campaign.phases:
        if phase.contains(issued_on):
            return phase
    return None


def is_high_tier(campaign: Campaign, record: CertificateRecord) -> bool:
    """Rule A2: True if the property is in the "> threshold" tier.

    The amount compared is the total price (invoice excl. VAT) or the base, per
    ``campaign.tier_basis``; with ``tier_threshold_inclusive`` the threshold itself is low.
    """
    if campaign.tier_basis is TierBasis.TOTAL_PRICE:
        amount = parse_fen(record.invoice_excl_vat_fen, field="invoice_excl_vat_fen")
    else:
        amount = voucher_base(record.invoice_excl_vat_fen, record.tax_relief_fen)
    if campaign.tier_threshold_inclusive:
        return amount > campaign.tier_threshold_fen  # rule A2: ≤ threshold is low
    return amount >= campaign.tier_threshold_fen


def rate_bp(campaign: Campaign, record: CertificateRecord) -> int:
    """Rule A2: the rate in basis points, by issue-date phase, property type and price tier.

    Raises ``CertificateNotEligible`` if the issue date is in no phase.
    """
    phase = phase_for(campaign, record.issued_on)
    if phase is None:
        raise CertificateNotEligible(
            "The certificate was not issued within the campaign period.",
            reason="issued_outside_window",
        )
    if record.property_type is PropertyType.NON_HOUSING:
        return phase.non_housing_bp
    if is_high_tier(campaign, record):
        return phase.housing_high_bp
    return phase.housing_low_bp


def vouchers_for(campaign: Campaign, base_fen: int, rate: int) -> int:
    """Rule A3: floor(base × rate / face value), integer arithmetic; the rest is not issued."""
    base = parse_fen(base_fen, field="base_fen")
    return (base * rate) // (BP_DENOMINATOR * campaign.face_value_fen)  # rule A3


def vouchers_due(campaign: Campaign, record: CertificateRecord) -> int:
    """Rule A3: the number of vouchers a certificate entitles to (may be 0)."""
    base = voucher_base(record.invoice_excl_vat_fen, record.tax_relief_fen)
    return vouchers_for(campaign, base, rate_bp(campaign, record))


# --- validity (V1-V3) -------------------------------------------------------------------


def last_valid_day(campaign: Campaign, claimed_at: datetime) -> date:
    """Rule V1: the last calendar day on which a voucher claimed at ``claimed_at`` is valid.

    Civil Code counting: the claim day is not counted (Art. 201), so the last day is
    claim date + validity_days; never after ``hard_end``. Raises ``CampaignEnded`` for a
    claim after the hard end (rule V3).
    """
    if campaign.validity_counting is not ValidityCounting.CIVIL_CODE:  # pragma: no cover
        raise InvalidRequest(f"unsupported validity counting {campaign.validity_counting!r}")
    claim_day = local_date(campaign, claimed_at)
    if claim_day > campaign.hard_end:
        raise CampaignEnded(hard_end=campaign.hard_end)  # rule V3
    return min(claim_day + timedelta(days=campaign.validity_days), campaign.hard_end)  # rule V1


def voucher_expiry(campaign: Campaign, claimed_at: datetime) -> datetime:
    """Rule V1: the exclusive end instant of validity — 24:00 of the last valid day, i.e.
    00:00 (campaign time zone) of the following day (Civil Code Art. 203)."""
    return start_of_day(last_valid_day(campaign, claimed_at) + timedelta(days=1), campaign.tz)


def is_expired(expires_at: datetime, now: datetime) -> bool:
    """Rule V2: a voucher is expired (void) from its exclusive end instant on."""
    return require_aware(now, "now") >= require_aware(expires_at, "expires_at")


def check_voucher_usable(expires_at: datetime, now: datetime) -> None:
    """Rule V2: raise ``VoucherExpired`` if the voucher is void at ``now``."""
    if is_expired(expires_at, now):
        raise VoucherExpired(expires_at=expires_at)  # rule V2


# --- claim (E1-E4, A3, V3) --------------------------------------------------------------


def check_claim(
    campaign: Campaign,
    record: CertificateRecord,
    claimant_hash: bytes,
    now: datetime,
    already_claimed: bool,
) -> ClaimDecision:
    """Rules E2-E4, A1-A3, V1, V3: decide a claim, or raise why it is refused.

    ``claimant_hash`` is the keyed hash of the (already E1-validated) claimant ID number;
    ``already_claimed`` says whether the certificate has a successful claim (E4; the
    database's unique constraint remains the final guard). Checks, in this order:

    1. ``now`` aware, local date d (campaign time zone);
    2. ``campaign_not_started`` if d < claim_opens;
    3. ``campaign_ended`` if d > hard_end (V3);
    4. ``certificate_not_yours`` if the claimant is not an owner (E3) — before anything
       about the certificate is revealed;
    5. ``certificate_not_eligible`` (E2), ``details["reason"]``: district, not_new_build,
       issued_outside_window, issued_after_claim;
    6. ``certificate_already_claimed`` (E4);
    7. ``no_vouchers_due`` if A3 gives 0 (nothing is recorded).
    """
    today = local_date(campaign, now)
    if today < campaign.claim_opens:
        raise CampaignNotStarted(claim_opens=campaign.claim_opens)
    if today > campaign.hard_end:
        raise CampaignEnded(hard_end=campaign.hard_end)  # rule V3
    if claimant_hash not in record.owner_hashes:
        raise CertificateNotYours(certificate_no=record.cert_no)  # rule E3
    if record.district not in campaign.issuing_districts:
        raise CertificateNotEligible(
            "The property is not in a district of this campaign.", reason="district"
        )  # rule E2
    if campaign.eligible_property_kind is EligiblePropertyKind.NEW_BUILD and not record.new_build:
        raise CertificateNotEligible(
            "Only newly built (first-hand) property is eligible.", reason="not_new_build"
        )  # rule E2
    if not campaign.certificate_issued_from <= record.issued_on <= campaign.certificate_issued_to:
        raise CertificateNotEligible(
            "The certificate was not issued within the campaign period.",
            reason="issued_outside_window",
            issued_from=campaign.certificate_issued_from,
            issued_to=campaign.certificate_issued_to,
        )  # rule E2
    if record.issued_on > today:
        raise CertificateNotEligible(
            "The certificate's issue date is after today.", reason="issued_after_claim"
        )  # rule E2
    if already_claimed:
        raise CertificateAlreadyClaimed()  # rule E4
    base = voucher_base(record.invoice_excl_vat_fen, record.tax_relief_fen)  # rule A1
    rate = rate_bp(campaign, record)  # rule A2
    count = vouchers_for(campaign, base, rate)  # rule A3
    if count == 0:
        raise NoVouchersDue(base_fen=base, rate_bp=rate)  # rule A3
    return ClaimDecision(
        voucher_count=count,
        base_fen=base,
        rate_bp=rate,
        expires_at=voucher_expiry(campaign, now),  # rule V1
        last_valid_day=last_valid_day(campaign, now),
    )


def check_participation(revoked: bool) -> None:
    """Rule X1: raise ``ParticipationRevoked`` if an operator revoked the citizen."""
    if revoked:
        raise ParticipationRevoked()  # rule X1


# --- redemption (U1-U6) -----------------------------------------------------------------


def check_merchant(
    campaign: Campaign,
    merchant_district: str,
    admitted: bool,
    permitted: bool,
    suspended: bool,
) -> None:
    """Rules U1/U2/X1: may this merchant redeem this campaign's vouchers?

    In order: ``merchant_suspended`` (U1/X1),
    ``merchant_not_permitted`` if not admitted by the commerce bureau or not granted
    permission by the district operator (U1), ``wrong_district`` if the merchant's district
    is not a usable district of the campaign (U2).
    """
    if suspended:
        raise MerchantSuspended()  # rule U1, X1
    if not admitted or not permitted:
        raise MerchantNotPermitted(admitted=admitted, permitted=permitted)  # rule U1
    if merchant_district not in campaign.usable_districts:
        raise WrongDistrict(district=merchant_district)  # rule U2


def max_redeemable(campaign: Campaign, bill_fen: int) -> int:
    """Rule U3: at most floor(bill / spend threshold) vouchers on one bill (no other cap)."""
    bill = parse_fen(bill_fen, field="bill_fen")
    return bill // campaign.spend_threshold_fen  # rule U3


def _usable_sorted(
    campaign: Campaign, available: Sequence[VoucherView], now: datetime
) -> list[VoucherView]:
    """Rules V2/U6: the unexpired vouchers, earliest expiry first, ties by id."""
    require_aware(now, "now")
    face = campaign.face_value_fen
    if len({v.id for v in available}) != len(available) or any(
        v.face_value_fen != face for v in available
    ):
        _refuse_foreign(campaign, available)
    try:
        live = [v for v in available if now < v.expires_at]  # rule V2, as ``is_expired``
    except TypeError:  # a naive expiry next to the aware ``now``
        raise InvalidRequest("expires_at must be timezone-aware", field="expires_at") from None
    return sorted(live, key=_EXPIRY_ORDER)  # rule U6


# rule U6: earliest expiry first; ties by id
_EXPIRY_ORDER = attrgetter("expires_at", "id")


def _refuse_foreign(campaign: Campaign, available: Sequence[VoucherView]) -> None:
    """The first voucher, in order, that appears twice or is not of the campaign's face
    value: it is refused (``invalid_request``)."""
    seen: set[int] = set()
    for v in available:
        if v.id in seen:
            raise InvalidRequest("duplicate voucher id", voucher_id=v.id)
        seen.add(v.id)
        if v.face_value_fen != campaign.face_value_fen:
            raise InvalidRequest("voucher face value differs from the campaign's", voucher_id=v.id)


def quote(
    campaign: Campaign, bill_fen: int, available: Sequence[VoucherView], now: datetime
) -> Quote:
    """Rules U3/U6/V2: how many of the held vouchers this bill can use, and what remains."""
    max_by_bill = max_redeemable(campaign, bill_fen)
    live = _usable_sorted(campaign, available, now)
    usable = min(max_by_bill, len(live))
    value = sum(v.face_value_fen for v in live[:usable])
    return Quote(
        usable_count=usable,
        max_by_bill=max_by_bill,
        available_count=len(live),
        value_fen=value,
        remaining_fen=bill_fen - value,  # rule U3: paid otherwise, no change
    )


def select_vouchers(
    campaign: Campaign,
    available: Sequence[VoucherView],
    count: int,
    bill_fen: int,
    now: datetime,
) -> tuple[int, ...]:
    """Rules U3/U6/V2: choose ``count`` vouchers for a bill, earliest expiry first.

    Raises, in order: ``invalid_request`` (count < 1), ``bill_too_small`` (bill below the
    spend threshold), ``too_many_vouchers`` (count > floor(bill / threshold)),
    ``not_enough_vouchers`` (fewer unexpired vouchers held).
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidRequest("voucher count must be a whole number of at least 1", field="count")
    max_by_bill = max_redeemable(campaign, bill_fen)
    if max_by_bill == 0:
        raise BillTooSmall(
            bill_fen=bill_fen, spend_threshold_fen=campaign.spend_threshold_fen
        )  # rule U3
    if count > max_by_bill:
        raise TooManyVouchers(requested=count, max_by_bill=max_by_bill)  # rule U3
    live = _usable_sorted(campaign, available, now)
    if count > len(live):
        raise NotEnoughVouchers(requested=count, available=len(live))  # rule U3
    return tuple(v.id for v in live[:count])  # rule U6


def normalise_receipt_no(raw: str) -> str:
    """Rule U4: the canonical receipt number, so one bill cannot be entered twice in two
    spellings: NFKC (full-width → ASCII), surrounding whitespace removed, upper-case.

    Raises ``InvalidRequest`` if empty, longer than 64 or containing control characters.
    """
    if not isinstance(raw, str):
        raise InvalidRequest("receipt number must be text", field="receipt_no")
    s = unicodedata.normalize("NFKC", raw).strip().upper()
    if not s or len(s) > RECEIPT_NO_MAX_LENGTH:
        raise InvalidRequest(
            f"receipt number must have 1 to {RECEIPT_NO_MAX_LENGTH} characters", field="receipt_no"
        )
    # printable ASCII has no character of a C category: the look-up per character is skipped
    if not (s.isascii() and s.isprintable()) and any(
        unicodedata.category(ch).startswith("C") for ch in s
    ):
        raise InvalidRequest("receipt number contains control characters", field="receipt_no")
    return s


def business_date(at: datetime) -> date:
    """Rule U4: the business date of a bill made at ``at``: its calendar date in Asia/Shanghai.
    Shops restart their receipt counters daily, so a receipt number names a bill within a
    day (and within a till where the merchant numbers receipts per till)."""
    if at.tzinfo is None:
        raise InvalidRequest("the moment of a bill must carry its time zone", field="at")
    return at.astimezone(BUSINESS_TZ).date()


# --- refund (F1-F3) ---------------------------------------------------------------------


def check_refundable(settled: bool) -> None:
    """Rule F3: vouchers of a settled redemption never return (``already_settled``)."""
    if settled:
        raise AlreadySettled()  # rule F3


def partial_refund_split(
    campaign: Campaign,
    voucher_count: int,
    remaining_bill_fen: int,
    *,
    bill_fen: int | None = None,
) -> tuple[int, int]:
    """Rule F2: (kept, returned) vouchers of a bill refunded down to ``remaining_bill_fen``.

    keep_floor: kept = min(k, floor(remaining / spend threshold)); a full refund is
    remaining 0 and returns all. Returned vouchers keep their expiry (F1). Raises
    ``refund_invalid`` if remaining is negative, or — when ``bill_fen`` is given — not
    below the bill (nothing refunded).
    """
    if isinstance(voucher_count, bool) or not isinstance(voucher_count, int) or voucher_count < 1:
        raise InvalidRequest("voucher count must be at least 1", field="voucher_count")
    if (
        isinstance(remaining_bill_fen, bool)
        or not isinstance(remaining_bill_fen, int)
        or remaining_bill_fen < 0
    ):
        raise RefundInvalid("The remaining bill must be a non-negative amount in fen.")  # F2
    if bill_fen is not None and remaining_bill_fen >= parse_fen(bill_fen, field="bill_fen"):
        raise RefundInvalid(
            "The remaining bill must be below the original bill.",
            bill_fen=bill_fen,
            remaining_bill_fen=remaining_bill_fen,
        )  # rule F2
    if campaign.partial_refund_policy is not PartialRefundPolicy.KEEP_FLOOR:  # pragma: no cover
        raise InvalidRequest(f"unsupported refund policy {campaign.partial_refund_policy!r}")
    kept = min(voucher_count, remaining_bill_fen // campaign.spend_threshold_fen)  # rule F2
    return kept, voucher_count - kept


@dataclass(frozen=True, slots=True)
class RefundStep:
    """One refund of a bill as the ledger records it: the bill left after it, and how many
    vouchers it gave back (rule F2)."""

    remaining_bill_fen: int
    returned_count: int


def cash_held_fen(
    bill_fen: int, voucher_count: int, face_value_fen: int, refunds: Sequence[RefundStep]
) -> list[int]:
    """Rules U3, F2: the cash the customer has paid for a bill, after the redemption and then
    after each refund in order. Vouchers cover part of the bill and the rest is paid
    otherwise (U3, no change given): the cash paid is the bill − the vouchers' value; after a
    refund the customer owes the bill left − the value of the vouchers the bill keeps (never
    below 0), and holds at most that.

    Example (issue 11 item 5): a bill of 1,000 元 with 5 vouchers of 100 元 → 500 元 cash;
    450 元 refunded leaves 550 元 and keeps 2 vouchers, so 350 元 is owed: [50000, 35000]
    (fen), 150 元 handed back.
    """
    cash = max(0, bill_fen - voucher_count * face_value_fen)  # rule U3
    held = [cash]
    live = voucher_count
    for step in refunds:
        live -= step.returned_count
        owed = max(0, step.remaining_bill_fen - live * face_value_fen)
        cash = min(cash, owed)
        held.append(cash)
    return held


def cash_handed_back_fen(
    bill_fen: int, voucher_count: int, face_value_fen: int, refunds: Sequence[RefundStep]
) -> list[int]:
    """Rules U3, F2: the cash each refund of a bill handed back to the customer, in order."""
    held = cash_held_fen(bill_fen, voucher_count, face_value_fen, refunds)
    return [before - after for before, after in pairwise(held)]


# --- settlement (S1) --------------------------------------------------------------------


def month_bounds(month: date, tz: tzinfo | str) -> tuple[datetime, datetime]:
    """Rule S1: [start, end) instants of the calendar month containing ``month`` in ``tz``."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    first = month.replace(day=1)
    nxt = date(first.year + 1, 1, 1) if first.month == 12 else first.replace(month=first.month + 1)
    return start_of_day(first, zone), start_of_day(nxt, zone)


def settlement_amount(voucher_count: int, face_value_fen: int) -> int:
    """Rule S1: the amount owed to a merchant: count × face value (fen)."""
    if voucher_count < 0:
        raise InvalidRequest("voucher count must not be negative", field="voucher_count")
    return voucher_count * parse_fen(face_value_fen, field="face_value_fen")


def payment_due(campaign: Campaign, month: date) -> date:
    """Rule S1: the day before which the month's redemptions are paid: the payment day of
    the next month, and never later than the campaign's last payment date."""
    first = month.replace(day=1)
    nxt = date(first.year + 1, 1, 1) if first.month == 12 else first.replace(month=first.month + 1)
    return min(nxt.replace(day=campaign.settlement_payment_day), campaign.last_payment_due)
