"""Issue 11 item 8: on a paired till, changing the server or re-pairing in F5 needs a
manager of this till's merchant (checked by the current server); the first pairing of an
unpaired till needs none (tests/terminal/test_checkout.py pairs one)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.screen import Screen
from textual.widgets import Input, Static

from terminal.app import TerminalApp
from terminal.config import TerminalConfig, load_config
from terminal.screens.approval import ManagerApproval
from terminal.screens.checkout import CheckoutScreen
from terminal.screens.settings import SettingsScreen
from tests.e2e.conftest import Till
from tests.terminal.conftest import (
    PASSWORD,
    LiveServer,
    World,
    approve,
    on_top,
    settle,
    staff_account,
    type_text,
)

MakeApp = Callable[..., TerminalApp]


async def test_repairing_a_paired_till_needs_a_manager_of_its_shop(
    world: World, shop: Till, live: LiveServer, make_app: MakeApp, tmp_path: Path
) -> None:
    # the old F5 re-paired (or pointed the till at another server) for anyone at the counter
    config = TerminalConfig(live.url, shop.terminal_id, shop.secret)
    manager = await staff_account(world, "merchant_manager", shop.merchant_id)
    other = await world.till()
    elsewhere = await staff_account(world, "merchant_manager", other.merchant_id)
    config_path = tmp_path / "repair" / "config.json"
    app = make_app(config, config_path=config_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f5")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#terminal-id", Input).value = str(other.terminal_id)
        screen.query_one("#secret", Input).focus()
        await pilot.pause()
        await type_text(pilot, other.secret)
        await pilot.press("f9")
        await settle(pilot)
        modal: Screen[Any] = app.screen
        assert isinstance(modal, ManagerApproval)
        assert "经理授权" in str(modal.query_one("#approval-reason", Static).content)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen and not config_path.exists()
        assert app.config == config

        await pilot.press("f9")  # the other shop's manager may not re-pair this till
        await settle(pilot)
        modal = await approve(pilot, elsewhere, PASSWORD)
        assert on_top(app) is modal and "不是本店经理" in modal.result_text
        modal.query_one("#manager-user", Input).value = ""
        modal.query_one("#manager-user", Input).focus()
        await pilot.pause()
        await approve(pilot, manager, PASSWORD)  # this shop's manager may
        await settle(pilot)
        assert isinstance(app.screen, CheckoutScreen)
        assert app.config is not None and app.config.terminal_id == other.terminal_id
        assert app.session is not None and app.session.merchant.id == other.merchant_id
    saved = load_config(config_path)
    assert saved is not None and saved.terminal_id == other.terminal_id


async def test_changing_the_server_is_refused_when_the_manager_cannot_be_checked(
    world: World, shop: Till, live: LiveServer, make_app: MakeApp, tmp_path: Path
) -> None:
    # the current server is the one that says who the manager is: without it, nothing moves
    config = TerminalConfig(live.url, shop.terminal_id, shop.secret)
    manager = await staff_account(world, "merchant_manager", shop.merchant_id)
    config_path = tmp_path / "moved" / "config.json"
    app = make_app(config, config_path=config_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f5")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        await live.stop()
        screen.query_one("#server", Input).value = "http://127.0.0.1:9"
        await pilot.press("f9")
        await settle(pilot)
        modal = await approve(pilot, manager, PASSWORD)
        assert app.screen is modal and "无法核对经理账号" in modal.result_text
        await live.start()
    assert not config_path.exists()
