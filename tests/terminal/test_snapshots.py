"""What each screen looks like at 80×24, fed with fixed answers through the same handlers
a server's answer goes through (no server, no clock, no ids that vary)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from terminal.app import TerminalApp
from terminal.client import OutcomeUnknown
from terminal.config import Lang
from terminal.screens.checkout import CheckoutScreen, PendingRedeem, RedeemFailed
from terminal.screens.day import DayScreen
from terminal.screens.receipt import ReceiptScreen
from terminal.screens.refund import Refunded, RefundScreen
from tests.terminal.data import (
    CONFIG,
    DAY,
    DISTRICT_NAMES,
    PARTLY_REFUNDED,
    QUOTE,
    REDEMPTION,
    SESSION,
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
        screen.query_one("#remaining", Input).value = "250.00"
        screen.post_message(Refunded(PARTLY_REFUNDED, (12,)))
        await pilot.pause()

    assert snap_compare(fixed_app(), run_before=refund)


def test_the_day_list(snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]) -> None:
    async def day(pilot: Pilot[Any]) -> None:
        app = online(pilot)
        await app.switch_mode("day")
        screen = app.screen
        assert isinstance(screen, DayScreen)
        screen.show_report(DAY)
        await pilot.pause()

    assert snap_compare(fixed_app(), run_before=day)


def test_settings_before_pairing(
    snap_compare: SnapCompare, fixed_app: Callable[..., TerminalApp]
) -> None:
    assert snap_compare(fixed_app(paired=False))
