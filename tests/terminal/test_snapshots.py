"""What each screen looks like at 80×24, fed with fixed answers through the same handlers
a server's answer goes through (no server, no clock, no ids that vary)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select

from client.http import OutcomeUnknown
from terminal.app import TerminalApp
from terminal.config import Lang
from terminal.documents import LOCAL_TZ
from terminal.refunds import handed_back_fen, preview_refund
from terminal.screens.checkout import CheckoutScreen, PendingRedeem, RedeemFailed
from terminal.screens.day import DayScreen
from terminal.screens.receipt import ReceiptScreen, TicketReceiptScreen
from terminal.screens.refund import PendingRefund, Refunded, RefundScreen
from terminal.screens.sales import PendingUse, SalesScreen, TicketUseFailed
from terminal.screens.shift import ShiftScreen, Summed
from terminal.screens.tickets import TicketChoice
from terminal.shift import Shift, shift_summary
from tests.terminal.data import (
    BIG_BILL,
    BUYER_ID,
    CAMPAIGN,
    COMBINED_CONTRACT,
    COMBINED_QUOTE,
    CONFIG,
    CONTRACT,
    DAY,
    DEVELOPER,
    DEVELOPER_DISTRICTS,
    DISTRICT_NAMES,
    PARTLY_REFUNDED,
    POOL,
    QUOTE,
    REDEMPTION,
    SESSION,
    TICKET_QUOTE,
    TICKET_USE,
)

SnapCompare = Callable[..., bool]


@pytest.fixture
def fixed_app(tmp_path: Path) -> Callable[..., TerminalApp]:
    def make(lang: Lang = "zh", paired: bool = True) -> TerminalApp:
        return TerminalApp(
            CONFIG.with_lang(lang) if paired else None,
            config_path=tmp_path / "config.json",
            files_dir=Path("/nonexistent/terminal-files"),
            connect=False,
        )

    return make


def online(pilot: Pilot[Any]) -> TerminalApp:
    app = pilot.app
    assert isinstance(app, TerminalApp)
    app.district_names = DISTRICT_NAMES
    app.session = SESSION
    app.online = True
    return app


async def with_quote(pilot: Pilot[Any]) -> None:
    app = online(pilot)
    screen = app.screen
    assert isinstance(screen, CheckoutScreen)
    screen.query_one("#bill", Input).value = "450.00"
    screen.query_one("#receipt", Input).value = "R-0001"
    screen.show_quote(QUOTE, "fixed-token")
    await pilot.pause()


def test_checkout_waiting_for_the_first_customer(
    snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]
) -> None:
    assert snap_compare(fixed_app(), run_before=online)


def test_checkout_with_a_quote_lowered_to_one_voucher(
    snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]
) -> None:
    assert snap_compare(fixed_app(), run_before=with_quote, press=["minus"])


def test_checkout_in_english(
    snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]
) -> None:
    assert snap_compare(fixed_app("en"), run_before=with_quote)


def test_checkout_when_the_outcome_is_unknown(
    snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]
) -> None:
    async def unknown(pilot: Pilot[Any]) -> None:
        await with_quote(pilot)
        app = pilot.app
        assert isinstance(app, TerminalApp)
        app.online = False
        pending = PendingRedeem("k", "fixed-token", 45_000, "R-0001", 2)
        screen = app.screen
        assert isinstance(screen, CheckoutScreen)
        screen.pending, screen.busy = pending, True  # sent, as action_confirm leaves it
        screen.post_message(RedeemFailed(OutcomeUnknown("k"), pending))
        await pilot.pause()

    assert snap_compare(fixed_app(), run_before=unknown)


def test_the_receipt(snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]) -> None:
    async def receipt(pilot: Pilot[Any]) -> None:
        online(pilot)
        await pilot.pause()
        await pilot.app.push_screen(ReceiptScreen(REDEMPTION))
        await pilot.pause()

    assert snap_compare(fixed_app(), run_before=receipt)


def test_refund_after_a_partial_refund(
    snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]
) -> None:
    async def refund(pilot: Pilot[Any]) -> None:
        app = online(pilot)
        await app.switch_mode("refund")
        screen = app.screen
        assert isinstance(screen, RefundScreen)
        screen.query_one("#find-receipt", Input).value = "R-0001"
        screen.campaign = CAMPAIGN
        screen.show_found(REDEMPTION)
        preview = preview_refund(REDEMPTION, CAMPAIGN, 20_000)
        pending = PendingRefund("k", 1234, 25_000, preview, REDEMPTION)
        screen.pending, screen.busy = pending, True  # sent, as F9 leaves it
        back = handed_back_fen(REDEMPTION, PARTLY_REFUNDED)
        screen.post_message(Refunded(PARTLY_REFUNDED, (12,), "k", back, 20_000))
        await pilot.pause()

    assert snap_compare(fixed_app(), run_before=refund)


async def refund_shown(pilot: Pilot[Any], amount: str) -> RefundScreen:
    app = online(pilot)
    await app.switch_mode("refund")
    screen = app.screen
    assert isinstance(screen, RefundScreen)
    screen.query_one("#find-receipt", Input).value = "R-0007"
    screen.campaign = CAMPAIGN
    screen.show_found(BIG_BILL)
    screen.query_one("#amount", Input).value = amount
    screen.query_one("#amount", Input).focus()
    screen.check_amount()
    await pilot.pause()
    return screen


def test_refund_confirmation_shows_the_money(
    snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]
) -> None:
    # issue 11 item 5: 1,000 元 with 5 vouchers and 500 元 cash, 450 元 refunded
    async def confirm(pilot: Pilot[Any]) -> None:
        await refund_shown(pilot, "450")

    assert snap_compare(fixed_app(), run_before=confirm)


def test_refund_confirmation_in_english(
    snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]
) -> None:
    async def confirm(pilot: Pilot[Any]) -> None:
        await refund_shown(pilot, "1000")

    assert snap_compare(fixed_app("en"), run_before=confirm)


def test_the_day_list(snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]) -> None:
    async def day(pilot: Pilot[Any]) -> None:
        app = online(pilot)
        await app.switch_mode("day")
        screen = app.screen
        assert isinstance(screen, DayScreen)
        screen.show_report(DAY)
        await pilot.pause()

    assert snap_compare(fixed_app(), run_before=day)


def test_a_reprinted_receipt_from_the_day_list(
    snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]
) -> None:
    # issue 11 item 6: F8 on the day list's first row
    async def reprint(pilot: Pilot[Any]) -> None:
        app = online(pilot)
        await app.switch_mode("day")
        screen = app.screen
        assert isinstance(screen, DayScreen)
        screen.show_report(DAY)
        screen.query_one("#table").focus()
        await pilot.pause()
        screen.action_reprint()
        await pilot.pause()

    assert snap_compare(fixed_app(), run_before=reprint)


def test_the_shift_summary(
    snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]
) -> None:
    # issue 11 item 6: a closed shift of till 3 from 10:01 to 12:00 on DAY
    async def shift(pilot: Pilot[Any]) -> None:
        app = online(pilot)
        await app.switch_mode("day")
        screen = ShiftScreen()
        await app.push_screen(screen)
        closed = Shift(3, "2024-09-10T10:01:00+08:00", "2024-09-10T12:00:00+08:00")
        until = datetime.fromisoformat(closed.closed_at)
        screen.post_message(Summed(shift_summary(closed, [DAY], until), closing=False))
        await pilot.pause()

    assert snap_compare(fixed_app(), run_before=shift)


def test_settings_before_pairing(
    snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]
) -> None:
    assert snap_compare(fixed_app(paired=False))


# --- a developer's sales office (issue 13) ----------------------------------------------------


@pytest.fixture
def office_app(tmp_path: Path) -> Callable[..., TerminalApp]:
    def make(lang: Lang = "zh") -> TerminalApp:
        return TerminalApp(
            CONFIG.with_lang(lang),
            config_path=tmp_path / "config.json",
            files_dir=Path("/nonexistent/terminal-files"),
            connect=False,
            clock=lambda: datetime(2025, 7, 10, 10, tzinfo=LOCAL_TZ),
        )

    return make


async def sales_office(pilot: Pilot[Any]) -> SalesScreen:
    app = pilot.app
    assert isinstance(app, TerminalApp)
    app.district_names = DEVELOPER_DISTRICTS
    app.session = DEVELOPER
    app.online = True
    await app._take_till_mode()  # as the sign-in's answer does
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, SalesScreen)
    screen.show_pool(POOL)
    return screen


async def with_ticket_quote(pilot: Pilot[Any]) -> SalesScreen:
    screen = await sales_office(pilot)
    screen.query_one("#contract", Input).value = CONTRACT.contract_no
    screen.query_one("#unit", Select).value = CONTRACT.unit
    screen.query_one("#price", Input).value = "1500000"
    screen.query_one("#amount", Input).value = "600000"
    await pilot.pause()  # the form's own messages first: a quote is for the contract as typed
    screen.show_quote(TICKET_QUOTE, "fixed-token", CONTRACT)
    screen.query_one("#scan", Input).focus()
    await pilot.pause()
    return screen


def test_a_sales_office_waiting_for_a_contract(
    snap_compare: SnapCompare, office_app: Callable[..., TerminalApp]
) -> None:
    assert snap_compare(office_app(), run_before=sales_office)


def test_a_sales_office_with_a_quote(
    snap_compare: SnapCompare, office_app: Callable[..., TerminalApp]
) -> None:
    # rules T5-T7: 60 万 of a 100 万 Shangqiu ticket in month 1, 30 万 still to reach 90%
    assert snap_compare(office_app(), run_before=with_ticket_quote)


def test_a_sales_office_in_english(
    snap_compare: SnapCompare, office_app: Callable[..., TerminalApp]
) -> None:
    assert snap_compare(office_app("en"), run_before=with_ticket_quote)


def test_a_sales_office_when_the_outcome_is_unknown(
    snap_compare: SnapCompare, office_app: Callable[..., TerminalApp]
) -> None:
    # rule U7: sent, no answer: nothing looks final, F8 asks by the key
    async def unknown(pilot: Pilot[Any]) -> None:
        screen = await with_ticket_quote(pilot)
        app = pilot.app
        assert isinstance(app, TerminalApp)
        app.online = False
        pending = PendingUse("k", "fixed-token", CONTRACT, (60_000_000,))
        screen.pending, screen.busy = pending, True  # sent, as action_confirm leaves it
        screen.post_message(TicketUseFailed(OutcomeUnknown("k"), pending))
        await pilot.pause()

    assert snap_compare(office_app(), run_before=unknown)


async def with_combined_quote(pilot: Pilot[Any]) -> SalesScreen:
    screen = await sales_office(pilot)
    screen.query_one("#contract", Input).value = CONTRACT.contract_no
    screen.query_one("#unit", Select).value = CONTRACT.unit
    screen.query_one("#price", Input).value = "1500000"
    screen.query_one("#amount", Input).value = "1200000"
    await pilot.pause()
    screen.chosen = COMBINED_CONTRACT.tickets
    screen.show_quote(COMBINED_QUOTE, "fixed-token", COMBINED_CONTRACT)
    screen.query_one("#scan", Input).focus()
    await pilot.pause()
    return screen


def test_a_sales_office_with_two_tickets_combined(
    snap_compare: SnapCompare, office_app: Callable[..., TerminalApp]
) -> None:
    # rule T6: each ticket's part and subsidy on its own line; F7 chooses the tickets
    assert snap_compare(office_app(), run_before=with_combined_quote)


def test_the_holders_tickets_to_choose_from(
    snap_compare: SnapCompare, office_app: Callable[..., TerminalApp]
) -> None:
    # rule T6: the usable tickets (number, balance, expiry), those drawn on ticked
    async def choosing(pilot: Pilot[Any]) -> None:
        await with_ticket_quote(pilot)
        app = pilot.app
        assert isinstance(app, TerminalApp)
        screen = app.screen
        assert isinstance(screen, SalesScreen)
        screen.held = COMBINED_QUOTE.tickets
        await pilot.press("f7")
        await pilot.pause()
        assert isinstance(app.screen, TicketChoice)

    assert snap_compare(office_app(), run_before=choosing)


def test_the_receipt_of_a_ticket_use(
    snap_compare: SnapCompare, office_app: Callable[..., TerminalApp]
) -> None:
    async def receipt(pilot: Pilot[Any]) -> None:
        screen = await sales_office(pilot)
        screen.till.programme_names = {"shangqiu-2025": "商丘市中心城区房屋征收补偿房票安置"}
        screen.receipt = screen._receipt_of(TICKET_USE, BUYER_ID)
        await pilot.press("f7")
        await pilot.pause()
        assert isinstance(pilot.app.screen, TicketReceiptScreen)

    assert snap_compare(office_app(), run_before=receipt)
