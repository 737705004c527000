"""The cashier at the till, keyboard only, 80×24, against the real server: pair, scan,
quote, lower the count, redeem, the receipt; bad input, an expired code, and the server
going away mid-checkout."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from textual import events
from textual.widgets import Input

from terminal.app import TerminalApp
from terminal.config import TerminalConfig, load_config
from terminal.documents import receipt_text
from terminal.screens.checkout import CheckoutScreen
from terminal.screens.receipt import ReceiptScreen
from terminal.screens.settings import SettingsScreen
from tests.terminal.conftest import (
    Clock,
    LiveServer,
    LossyProxy,
    World,
    keys_into_focus,
    scan,
    settle,
    shown,
    type_text,
    wallet_counts,
)

MakeApp = Callable[..., TerminalApp]


async def fill_bill_and_receipt(pilot: Any, bill: str, receipt_no: str) -> None:
    await type_text(pilot, bill)
    await pilot.press("enter")
    await type_text(pilot, receipt_no)
    await pilot.press("enter")


def checkout(app: TerminalApp) -> CheckoutScreen:
    screen = app.get_screen("checkout") if app.current_mode != "checkout" else app.screen
    assert isinstance(screen, CheckoutScreen), screen
    return screen


def errors(app: TerminalApp) -> list[str]:
    return [f"{title}: {text}" for severity, title, text in app.history if severity == "error"]


async def test_pairing_in_the_settings_screen_saves_the_credential_owner_only(
    world: World, live: LiveServer, make_app: MakeApp, tmp_path: Path
) -> None:
    till = await world.till()
    config_path = tmp_path / "pairing" / "config.json"
    app = make_app(None, config_path=config_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, SettingsScreen)  # unpaired: straight to pairing
        server = app.screen.query_one("#server", Input)
        server.value = ""
        server.focus()
        await pilot.pause()
        await keys_into_focus(pilot, live.url)
        await pilot.press("enter")
        await type_text(pilot, str(till.terminal_id))
        await pilot.press("enter")
        await type_text(pilot, "not-the-secret")
        await pilot.press("enter")  # Enter on the secret pairs
        await settle(pilot)
        assert not config_path.exists()  # refused: nothing saved
        assert any("重新配对" in e for e in errors(app)), list(app.history)
        secret = app.screen.query_one("#secret", Input)
        secret.value = ""
        secret.focus()
        await pilot.pause()
        await keys_into_focus(pilot, till.secret)
        await pilot.press("f9")
        await settle(pilot)
        assert isinstance(app.screen, CheckoutScreen)
        assert app.session is not None and app.session.merchant.id == till.merchant_id
        assert app.online is True
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    assert load_config(config_path) == TerminalConfig(live.url, till.terminal_id, till.secret)


async def test_a_checkout_scan_quote_lower_the_count_redeem_and_the_receipt(
    world: World, till_config: TerminalConfig, make_app: MakeApp, tmp_path: Path
) -> None:
    # rules U3, U6: 450 元 allows 2 vouchers; the citizen uses 1; 350 元 is paid otherwise
    person = await world.citizen_with_vouchers()
    receipt_no = f"R-{uuid.uuid4().hex[:6]}"
    app = make_app(till_config, files_dir=tmp_path / "files")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = checkout(app)
        assert app.focused is screen.query_one("#bill")
        await fill_bill_and_receipt(pilot, "450.00", receipt_no)
        assert app.focused is screen.query_one("#scan")
        await scan(pilot, await world.qr(person))
        await settle(pilot)
        quote = screen.quote
        assert quote is not None
        assert (quote.available_count, quote.usable_count) == (48, 2)
        assert shown(screen, "#covered") == "200.00"
        assert shown(screen, "#to-pay") == "250.00"
        customer = shown(screen, "#customer")
        assert quote.citizen.masked_id in customer and "48" in customer
        assert screen.query_one("#scan", Input).value == ""  # ready for the next scan
        await pilot.press("minus")  # the citizen keeps one for later
        assert shown(screen, "#covered") == "100.00"
        assert shown(screen, "#to-pay") == "350.00"
        await pilot.press("enter")  # Enter on the count confirms
        await settle(pilot)
        assert screen.outcome == "ok"
        assert "1 张券抵扣 100.00 元，还需支付 350.00 元" in screen.result_text
        receipt = app.screen
        assert isinstance(receipt, ReceiptScreen) and receipt.redemption is not None
        assert receipt.redemption.voucher_count == 1
        text = receipt.text
        assert receipt_no.upper() in text and "350.00 元" in text
        # the citizen's vouchers left, as the server's answer says (issue 11 item 6)
        assert receipt.redemption.citizen.vouchers_left == 47
        assert "剩余消费券" in text and "47 张" in text
        assert f"{receipt.redemption.redemption_id}" in text
        assert "2024-09-10 10:00:00" in text  # the server's time, in Shanghai
        await pilot.press("f7")
        saved = Path(receipt.saved_to).read_text(encoding="utf-8")  # noqa: ASYNC240
        assert saved == receipt_text(receipt.redemption, "zh")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        assert screen.query_one("#bill", Input).value == ""  # the next customer
        assert app.focused is screen.query_one("#bill")
        assert "核销成功" in screen.result_text
        assert errors(app) == []
    counts = await wallet_counts(world, person)
    assert (counts["used"], counts["available"]) == (1, 47)


async def test_a_pasted_code_is_taken_like_a_scan(
    world: World, till_config: TerminalConfig, make_app: MakeApp
) -> None:
    person = await world.citizen_with_vouchers()
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = checkout(app)
        await fill_bill_and_receipt(pilot, "200", f"P-{uuid.uuid4().hex[:6]}")
        field = app.focused
        assert field is screen.query_one("#scan", Input)
        field.post_message(events.Paste(await world.qr(person)))  # the terminal's paste
        await settle(pilot)
        assert screen.quote is not None and screen.quote.usable_count == 1
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok"
    assert (await wallet_counts(world, person))["used"] == 1


async def test_a_bill_that_is_not_yuan_with_two_decimals_is_refused(
    world: World, till_config: TerminalConfig, make_app: MakeApp
) -> None:
    person = await world.citizen_with_vouchers()
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = checkout(app)
        bill = screen.query_one("#bill", Input)
        for bad in ("12.345", "4oo", "-5", "1,000", "0"):
            bill.value = ""
            bill.focus()
            await type_text(pilot, bad)
            await pilot.press("enter")
            assert app.focused is bill, bad  # stays on the bill
        assert len(errors(app)) == 5
        assert all("最多两位小数" in e for e in errors(app))
        # and a scan with a bad bill quotes nothing
        bill.value = "１２"  # full-width digits are refused too
        screen.query_one("#receipt", Input).value = "R-1"
        screen.query_one("#scan", Input).focus()
        await scan(pilot, await world.qr(person))
        await settle(pilot)
        assert screen.quote is None and app.focused is bill
        assert len(errors(app)) == 6


async def test_an_expired_code_asks_the_citizen_to_refresh_it(
    world: World, till_config: TerminalConfig, make_app: MakeApp, clock: Clock
) -> None:
    # rule U5: the QR lives 60 s
    person = await world.citizen_with_vouchers()
    token = await world.qr(person)
    clock.advance(seconds=61)
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = checkout(app)
        await fill_bill_and_receipt(pilot, "450.00", "R-EXP")
        await scan(pilot, token)
        await settle(pilot)
        assert screen.quote is None and screen.outcome == "refused"
        assert "请顾客刷新消费券码" in screen.result_text
        assert errors(app)[-1].startswith("请顾客刷新消费券码: 消费券码已过期")
        assert app.focused is screen.query_one("#scan")  # ready for the fresh code
        await scan(pilot, await world.qr(person))
        await settle(pilot)
        assert screen.quote is not None


async def test_a_used_code_is_refused_at_confirm_and_nothing_is_redeemed_twice(
    world: World, till_config: TerminalConfig, make_app: MakeApp
) -> None:
    # rule U5: single use. The code is quoted, then used elsewhere before the cashier confirms
    person = await world.citizen_with_vouchers()
    other = await world.till()
    token = await world.qr(person)
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = checkout(app)
        await fill_bill_and_receipt(pilot, "450.00", "R-USED")
        await scan(pilot, token)
        await settle(pilot)
        assert screen.quote is not None
        r = await world.redeem(other, token, bill_fen=40_000, count=1)
        assert r.status == 201
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "refused" and "刷新" in screen.result_text
        assert screen.quote is None and app.focused is screen.query_one("#scan")
    assert (await wallet_counts(world, person))["used"] == 1


async def test_the_server_stops_between_quote_and_confirm(
    world: World, till_config: TerminalConfig, make_app: MakeApp, live: LiveServer
) -> None:
    person = await world.citizen_with_vouchers()
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = checkout(app)
        await fill_bill_and_receipt(pilot, "450.00", f"R-{uuid.uuid4().hex[:6]}")
        await scan(pilot, await world.qr(person))
        await settle(pilot)
        assert screen.quote is not None and app.online is True
        await live.stop()
        await pilot.press("f9")
        await settle(pilot)
        # never a success it did not receive: it says offline, nothing redeemed
        assert screen.outcome == "offline" and "未核销" in screen.result_text
        assert app.online is False
        assert "离线" in shown(app.screen, "#net")
        assert (await wallet_counts(world, person))["used"] == 0
        await live.start()  # back on the same port
        await app.run_health().wait()
        assert app.online is True
        await pilot.press("f9")  # the same request again
        await settle(pilot)
        assert screen.outcome == "ok"
        assert isinstance(app.screen, ReceiptScreen)
    assert (await wallet_counts(world, person))["used"] == 2


async def test_a_lost_answer_leaves_the_outcome_unknown_until_the_server_tells_the_truth(
    world: World,
    till_config: TerminalConfig,
    proxy: LossyProxy,
    make_app: MakeApp,
) -> None:
    # rule U7: the redemption happens on the server, every answer is lost on the way back
    person = await world.citizen_with_vouchers()
    config = TerminalConfig(proxy.url, till_config.terminal_id, till_config.secret)
    app = make_app(config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = checkout(app)
        await fill_bill_and_receipt(pilot, "450.00", f"R-{uuid.uuid4().hex[:6]}")
        code = await world.qr(person)
        await scan(pilot, code)
        await settle(pilot)
        proxy.lose = lambda request: True  # the shop's network goes bad
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "unknown" and "结果未知" in screen.result_text
        assert not isinstance(app.screen, ReceiptScreen)  # no success shown
        assert screen.pending is not None
        await pilot.press("f6")  # the next customer must wait: the outcome comes first
        assert screen.pending is not None and "结果未知" in errors(app)[-1]
        asked: list[tuple[str, str | None]] = []

        def back(request: web.Request) -> bool:  # the network is back
            asked.append((request.path_qs, request.headers.get("Voucher-Code")))
            return False

        proxy.lose = back
        await pilot.press("f8")  # ask the server
        await settle(pilot)
        # issue 14: the pending request's code goes with the question, in a header
        assert [c for path, c in asked if path.startswith("/v1/redemptions?")] == [code]
        assert all(code not in path for path, _ in asked)
        assert screen.outcome == "ok" and screen.pending is None
        assert "已向服务器核实" in screen.result_text
        assert isinstance(app.screen, ReceiptScreen)
        assert app.screen.redemption.recovered
    assert (await wallet_counts(world, person))["used"] == 2
