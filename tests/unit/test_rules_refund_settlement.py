"""Refunds (rules F1-F3), settlement (S1) and integrity (X1)."""

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from server.campaign_files import load_bundled_campaign, load_campaign
from shared.errors import AlreadySettled, InvalidRequest, ParticipationRevoked, RefundInvalid
from shared.rules import (
    RefundStep,
    business_date,
    cash_handed_back_fen,
    cash_held_fen,
    check_participation,
    check_refundable,
    is_expired,
    month_bounds,
    partial_refund_split,
    payment_due,
    settlement_amount,
)

SH = ZoneInfo("Asia/Shanghai")
LC = load_bundled_campaign("liaocheng-2024")
CHIPING = load_campaign(Path(__file__).parent / "data" / "chiping-2025.toml")


# --- F2 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "bill", "remaining", "kept", "returned"),
    [
        (3, 60_000, 45_000, 2, 1),  # floor(450 / 200) = 2
        (3, 60_000, 39_999, 1, 2),  # floor(399.99 / 200) = 1
        (3, 60_000, 19_999, 0, 3),
        (3, 60_000, 0, 0, 3),  # full refund returns all
        (2, 100_000, 90_000, 2, 0),  # min(k, 4) = k: nothing returns
        (1, 20_000, 10_000, 0, 1),
    ],
)
def test_a_partial_refund_keeps_what_the_remaining_bill_allows(
    count: int, bill: int, remaining: int, kept: int, returned: int
) -> None:
    # rule F2: kept = min(k, floor(remaining / 200 元))
    assert partial_refund_split(LC, count, remaining, bill_fen=bill) == (kept, returned)


def test_chiping_keeps_one_voucher_per_100_yuan_remaining() -> None:
    # rule F2 by the second file: floor(150 / 100) = 1 kept of 3
    assert partial_refund_split(CHIPING, 3, 15_000, bill_fen=30_000) == (1, 2)


def test_a_negative_remaining_bill_is_refused() -> None:
    # rule F2
    with pytest.raises(RefundInvalid):
        partial_refund_split(LC, 2, -1)


@pytest.mark.parametrize("remaining", [40_000, 40_001])
def test_a_remaining_bill_not_below_the_bill_is_refused(remaining: int) -> None:
    # rule F2: nothing (or less than nothing) refunded
    with pytest.raises(RefundInvalid):
        partial_refund_split(LC, 2, remaining, bill_fen=40_000)


def test_a_refund_needs_at_least_one_voucher() -> None:
    with pytest.raises(InvalidRequest):
        partial_refund_split(LC, 0, 0)


# --- F1 / F3 ----------------------------------------------------------------------------------


def test_a_returned_voucher_keeps_its_expiry_so_an_expired_one_comes_back_void() -> None:
    # rule F1/V2: expiry unchanged; refunded on 2024-11-20, a voucher that ended Nov 15 is void
    expires_at = datetime(2024, 11, 15, 0, 0, tzinfo=SH)
    assert is_expired(expires_at, datetime(2024, 11, 20, 10, 0, tzinfo=SH))
    assert not is_expired(expires_at, datetime(2024, 11, 14, 23, 59, tzinfo=SH))


def test_a_settled_redemption_cannot_be_refunded() -> None:
    # rule F3
    with pytest.raises(AlreadySettled):
        check_refundable(settled=True)
    check_refundable(settled=False)


# --- S1 ----------------------------------------------------------------------------------------


def test_month_bounds_are_shanghai_midnights() -> None:
    # rule S1
    assert month_bounds(date(2024, 12, 10), "Asia/Shanghai") == (
        datetime(2024, 12, 1, 0, 0, tzinfo=SH),
        datetime(2025, 1, 1, 0, 0, tzinfo=SH),
    )
    start, end = month_bounds(date(2024, 2, 29), SH)
    assert (start.isoformat(), end.isoformat()) == (
        "2024-02-01T00:00:00+08:00",
        "2024-03-01T00:00:00+08:00",
    )


def test_payment_is_due_by_the_15th_of_the_next_month_and_finally_2025_05_15() -> None:
    # rule S1
    assert payment_due(LC, date(2024, 8, 1)) == date(2024, 9, 15)
    assert payment_due(LC, date(2024, 12, 31)) == date(2025, 1, 15)
    assert payment_due(LC, date(2025, 4, 30)) == date(2025, 5, 15)
    assert payment_due(LC, date(2025, 5, 31)) == date(2025, 5, 15)


def test_chiping_pays_by_its_own_day() -> None:
    # rule S1 by the second file: the 10th, finally 2025-10-10
    assert payment_due(CHIPING, date(2025, 7, 20)) == date(2025, 8, 10)
    assert payment_due(CHIPING, date(2025, 12, 1)) == date(2025, 10, 10)


def test_a_merchant_is_owed_count_times_face_value() -> None:
    # rule S1: 7 vouchers × 100 元
    assert settlement_amount(7, 10_000) == 70_000
    with pytest.raises(InvalidRequest):
        settlement_amount(-1, 10_000)


# --- X1 -----------------------------------------------------------------------------------------


def test_a_revoked_citizen_is_refused() -> None:
    # rule X1
    with pytest.raises(ParticipationRevoked):
        check_participation(revoked=True)
    check_participation(revoked=False)


# --- the cash a refund hands back (U3, F2; issue 11 items 5, 7) -------------------------------


def test_the_issue_example_hands_back_150_yuan() -> None:
    # a bill of 1,000 元, 5 vouchers of 100 元 and 500 元 cash; 450 元 refunded keeps 2
    # vouchers (550 元 left), so 350 元 is owed and 150 元 goes back
    steps = [RefundStep(55_000, 3)]
    assert cash_held_fen(100_000, 5, 10_000, steps) == [50_000, 35_000]
    assert cash_handed_back_fen(100_000, 5, 10_000, steps) == [15_000]


def test_each_refund_hands_back_only_what_the_customer_still_paid() -> None:
    # 50 元 refunded first: 950 元 left keeps 4 vouchers (550 owed, 500 paid): nothing back;
    # then the rest: everything paid comes back, never more
    steps = [RefundStep(95_000, 1), RefundStep(0, 4)]
    assert cash_handed_back_fen(100_000, 5, 10_000, steps) == [0, 50_000]
    # rule U3 gives no change: 400 元 with 2 vouchers is 200 元 paid, all of it back in full
    assert cash_held_fen(40_000, 2, 10_000, []) == [20_000]
    assert cash_handed_back_fen(40_000, 2, 10_000, [RefundStep(0, 2)]) == [20_000]


def test_the_business_date_is_the_shanghai_calendar_date() -> None:
    # rule U4: shops restart their receipt counters at midnight, Shanghai time
    assert business_date(datetime(2024, 9, 10, 23, 59, tzinfo=SH)) == date(2024, 9, 10)
    assert business_date(datetime(2024, 9, 11, 0, 0, tzinfo=SH)) == date(2024, 9, 11)
    assert business_date(datetime(2024, 9, 10, 16, 0, tzinfo=ZoneInfo("UTC"))) == date(2024, 9, 11)
    with pytest.raises(InvalidRequest):
        business_date(datetime(2024, 9, 10, 12, 0))  # a moment without its zone
