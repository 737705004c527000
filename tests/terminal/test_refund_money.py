"""Issue 11 item 5: the money of a refund, before it is sent (terminal/refunds.py), and the
till setting that asks for a manager; pure functions, no server."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import msgspec
import pytest

from client.till import StaffSession
from client.wire import RefundEntry
from shared.errors import AlreadyRefunded, RefundInvalid
from terminal.config import ConfigInvalid, config_from_dict, keep_local_settings
from terminal.refunds import cash_paid_fen, preview_refund, shown_status
from terminal.screens.approval import manager_approves
from tests.terminal.data import BIG_BILL, CAMPAIGN, CONFIG


def test_the_issues_example_keep_two_return_three_hand_back_150() -> None:
    # rule F2: keep min(5, floor(550 / 200)) = 2; owed 550 - 200 = 350; paid 500 -> 150 back
    p = preview_refund(BIG_BILL, CAMPAIGN, 45_000)
    assert (p.remaining_bill_fen, p.kept, p.returned) == (55_000, 2, 3)
    assert (p.cash_paid_fen, p.owed_fen, p.hand_back_fen) == (50_000, 35_000, 15_000)
    assert not p.full and p.returned_value_fen == 30_000


def test_a_full_refund_returns_every_voucher_and_all_the_cash() -> None:
    p = preview_refund(BIG_BILL, CAMPAIGN, 100_000)
    assert p.full and (p.kept, p.returned, p.hand_back_fen) == (0, 5, 50_000)


def test_hand_back_is_never_negative() -> None:
    # 50 元 refunded: 950 元 keep 4 vouchers (400 元); the customer owes 550 > 500 paid
    p = preview_refund(BIG_BILL, CAMPAIGN, 5_000)
    assert (p.kept, p.returned, p.owed_fen, p.hand_back_fen) == (4, 1, 55_000, 0)


def test_a_second_refund_starts_from_the_cash_left_after_the_first() -> None:
    first = preview_refund(BIG_BILL, CAMPAIGN, 5_000)  # nothing handed back, 1 voucher back
    after = msgspec.structs.replace(
        BIG_BILL,
        current_bill_fen=95_000,
        refunded_count=1,
        live_voucher_count=4,
        refunds=(RefundEntry(1, 95_000, 1, 0, (25,), "2024-09-10T03:00:00+00:00"),),
    )
    assert first.hand_back_fen == 0 and cash_paid_fen(after) == 50_000  # still 500 paid
    rest = preview_refund(after, CAMPAIGN, 95_000)
    assert (rest.returned, rest.hand_back_fen) == (4, 50_000)


def test_amounts_outside_the_bill_and_an_empty_bill_are_refused() -> None:
    for amount in (0, -1, 100_001):
        with pytest.raises(RefundInvalid):
            preview_refund(BIG_BILL, CAMPAIGN, amount)
    with pytest.raises(AlreadyRefunded):
        preview_refund(msgspec.structs.replace(BIG_BILL, live_voucher_count=0), CAMPAIGN, 100)


def test_a_refund_that_returned_nothing_reads_as_partly_refunded() -> None:
    entry = RefundEntry(1, 90_000, 0, 10_000, (), "2024-09-10T03:00:00+00:00")
    assert shown_status(BIG_BILL) == "redeemed"
    assert shown_status(msgspec.structs.replace(BIG_BILL, refunds=(entry,))) == "partially_refunded"


def test_refund_needs_manager_is_a_till_setting_kept_across_pairings(tmp_path: Path) -> None:
    data = {"server_url": "http://x:1", "terminal_id": 3, "secret": "s"}
    assert not config_from_dict(data).refund_needs_manager
    assert config_from_dict({**data, "refund_needs_manager": True}).refund_needs_manager
    with pytest.raises(ConfigInvalid, match="refund_needs_manager"):
        config_from_dict({**data, "refund_needs_manager": "yes"})
    saved = replace(CONFIG, refund_needs_manager=True)
    assert keep_local_settings(replace(CONFIG, terminal_id=9), saved).refund_needs_manager


def test_a_manager_of_this_shop_approves_and_no_one_else() -> None:
    assert manager_approves(StaffSession("m", "merchant_manager", 7), 7)
    assert not manager_approves(StaffSession("m", "merchant_manager", 8), 7)
    assert not manager_approves(StaffSession("o", "district_operator", None), 7)
    assert not manager_approves(StaffSession("c", "city_operator", 7), 7)
