"""Issue 11 item 5: refunds a cashier can trust, driven by the keyboard against the real
server. The cashier types the amount refunded, sees the money (the bill left, the vouchers
returned and kept, the cash to hand back) and only then confirms; an empty field is not a
full refund; the wait and an unknown outcome work as for a redeem; a refund that returns no
voucher still reads as a refund; a manager approves when the till's setting asks for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aiohttp import web
from textual.pilot import Pilot
from textual.widgets import Input

from terminal.app import TerminalApp
from terminal.config import TerminalConfig
from terminal.screens.refund import RefundScreen
from tests.e2e.conftest import Till
from tests.terminal.conftest import (
    PASSWORD,
    HangingProxy,
    World,
    approve,
    on_top,
    redeemed,
    settle,
    shown,
    staff_account,
    type_text,
    wallet_counts,
)

MakeApp = Callable[..., TerminalApp]


async def refunds_of(world: World, config: TerminalConfig, redemption_id: int) -> list[Any]:
    till = await world.sign_in(Till(config.terminal_id, 0, config.secret))
    r = await world.client.get(f"/v1/redemptions/{redemption_id}", headers=till.headers)
    return list((await r.json())["refunds"])


def errors(app: TerminalApp) -> list[str]:
    return [f"{title}: {text}" for severity, title, text in app.history if severity == "error"]


async def open_refund(pilot: Pilot[Any], receipt_no: str) -> RefundScreen:
    await settle(pilot)
    await pilot.press("f3")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, RefundScreen)
    await type_text(pilot, receipt_no)
    await pilot.press("enter")
    await settle(pilot)
    assert screen.found is not None and screen.found.receipt_no == receipt_no
    assert pilot.app.focused is screen.query_one("#amount")
    return screen


async def test_the_money_is_shown_before_the_refund_and_f9_confirms_it(
    world: World, till_config: TerminalConfig, make_app: MakeApp
) -> None:
    # the example: a bill of 1,000 元 paid with 5 vouchers and 500 元 cash; 450 元
    # refunded: 550 元 remain, 2 vouchers stay (rule F2), 3 go back, 150 元 cash back.
    # The old screen took the bill AFTER the refund and F9 refunded at once.
    person = await world.citizen_with_vouchers()
    receipt_no, redemption_id = await redeemed(world, till_config, person, 100_000, 5)
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_refund(pilot, receipt_no)
        await type_text(pilot, "450")
        await pilot.press("enter")
        await settle(pilot)
        preview = screen.preview
        assert preview is not None
        assert (preview.remaining_bill_fen, preview.kept, preview.returned) == (55_000, 2, 3)
        assert preview.hand_back_fen == 15_000
        panel = shown(screen, "#preview")
        assert "退款 450.00 元" in panel and "退款后账单 550.00 元" in panel
        assert "退回顾客 3 张" in panel and "保留 2 张" in panel
        assert "应退现金 150.00 元" in panel
        assert "F9" in screen.result_text
        assert await refunds_of(world, till_config, redemption_id) == []  # nothing sent

        await type_text(pilot, "0")  # 4500: more than the bill, refused before sending
        await pilot.press("f9")
        await settle(pilot)
        assert screen.preview is None and "不超过当前账单金额" in errors(app)[-1]
        await pilot.press("backspace")  # 450 again: F9 first shows it, the next F9 refunds
        await pilot.press("f9")
        await settle(pilot)
        assert screen.preview is not None and screen.outcome == "preview"
        assert await refunds_of(world, till_config, redemption_id) == []
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok", screen.result_text
        assert len(screen.returned) == 3
        assert "3 张券退回顾客" in screen.result_text and "请退现金 150.00 元" in screen.result_text
        assert screen.found is not None and screen.found.current_bill_fen == 55_000
        assert screen.found.live_voucher_count == 2
    [refund] = await refunds_of(world, till_config, redemption_id)
    assert refund["remaining_bill_fen"] == 55_000 and refund["returned_count"] == 3
    assert (await wallet_counts(world, person))["available"] == 48 - 5 + 3


async def test_an_empty_amount_is_not_a_full_refund_and_f8_is(
    world: World, till_config: TerminalConfig, make_app: MakeApp
) -> None:
    # the old screen refunded everything when the field was left empty
    person = await world.citizen_with_vouchers()
    receipt_no, redemption_id = await redeemed(world, till_config, person, 60_000, 3)
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_refund(pilot, receipt_no)
        await pilot.press("f9")
        await pilot.press("f9")
        await settle(pilot)
        assert screen.preview is None and "请输入退款金额" in errors(app)[-1]
        assert await refunds_of(world, till_config, redemption_id) == []
        await pilot.press("f8")  # the full-refund key: shown like any amount
        await settle(pilot)
        assert screen.preview is not None and screen.preview.full
        assert (screen.preview.kept, screen.preview.returned) == (0, 3)
        assert screen.preview.hand_back_fen == 30_000  # 600 - 3 x 100 paid in cash
        assert "全额退款" in str(screen.query_one("#preview").border_title)
        assert await refunds_of(world, till_config, redemption_id) == []
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok" and len(screen.returned) == 3
        assert screen.found is not None and screen.found.status == "refunded"


async def test_a_refund_that_returns_no_voucher_still_reads_as_a_refund(
    world: World, till_config: TerminalConfig, make_app: MakeApp
) -> None:
    # 1,000 元 with 4 vouchers (600 元 cash); 150 元 refunded: 850 元 keep all 4 vouchers
    # (floor(850 / 200) = 4); the customer owes 850 - 400 = 450, gets 150 back. The server
    # still calls the bill "redeemed" (no voucher came back): the till says what happened.
    person = await world.citizen_with_vouchers()
    receipt_no, _ = await redeemed(world, till_config, person, 100_000, 4)
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_refund(pilot, receipt_no)
        await type_text(pilot, "150")
        await pilot.press("enter")
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok" and screen.returned == ()
        assert "没有券退回" in screen.result_text and "请退现金 150.00 元" in screen.result_text
        assert screen.found is not None and screen.found.status == "redeemed"  # the server's
        assert "部分退款" in shown(screen, "#found") and "账单 850.00 元" in shown(screen, "#found")
        # and the next refund starts from what the customer paid after this one
        await type_text(pilot, "850")
        await pilot.press("enter")
        await settle(pilot)
        assert screen.preview is not None and screen.preview.cash_paid_fen == 45_000
        assert screen.preview.hand_back_fen == 45_000 and screen.preview.returned == 4


def refund_posts(request: web.Request) -> bool:
    return request.method == "POST" and request.path.endswith("/refunds")


async def test_a_frozen_server_gives_an_unknown_refund_and_f9_sends_the_same_again(
    world: World, till_config: TerminalConfig, hanging: HangingProxy, make_app: MakeApp
) -> None:
    # issue 11 items 4 and 5: the old refund waited up to 8 s x 3 retries, without Esc
    person = await world.citizen_with_vouchers()
    receipt_no, redemption_id = await redeemed(world, till_config, person, 100_000, 5)
    config = replace(till_config, server_url=hanging.url, answer_wait_s=1.0)
    app = make_app(config, client_options={"retries": 3, "backoff": 0.4, "timeout": 8.0})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_refund(pilot, receipt_no)
        await type_text(pilot, "450")
        await pilot.press("enter")
        hanging.hang = refund_posts
        await pilot.press("f9")
        assert screen.outcome == "working" and "最多 1 秒" in screen.result_text
        await asyncio.wait_for(app.workers.wait_for_complete(), timeout=20)
        await pilot.pause()
        assert len(hanging.hung) == 1  # it was done on the server
        assert screen.outcome == "unknown" and "结果未知" in screen.result_text
        assert "结果未知" in str(screen.query_one("#preview").border_title)
        assert screen.pending is not None
        key = screen.pending.key
        await pilot.press("f6")  # not the next bill before this outcome is known
        assert screen.found is not None and screen.pending is not None
        assert "结果未知" in errors(app)[-1]

        hanging.hang = lambda request: False
        await pilot.press("f9")  # the same request, the same key (rule U7)
        await settle(pilot)
        assert screen.outcome == "ok", screen.result_text
        assert "请退现金 150.00 元" in screen.result_text and key
    refunds = await refunds_of(world, till_config, redemption_id)
    assert len(refunds) == 1 and refunds[0]["returned_count"] == 3


async def test_esc_stops_waiting_for_a_refund(
    world: World, till_config: TerminalConfig, hanging: HangingProxy, make_app: MakeApp
) -> None:
    person = await world.citizen_with_vouchers()
    receipt_no, redemption_id = await redeemed(world, till_config, person, 60_000, 3)
    config = replace(till_config, server_url=hanging.url, answer_wait_s=60.0)
    app = make_app(config, client_options={"retries": 3, "backoff": 0.4, "timeout": 8.0})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_refund(pilot, receipt_no)
        hanging.hang = refund_posts
        await pilot.press("f8")
        await pilot.press("f9")
        for _ in range(200):
            if hanging.hung:
                break
            await asyncio.sleep(0.01)
        assert screen.busy and screen.outcome == "working"
        await pilot.press("escape")
        await pilot.pause()
        assert screen.outcome == "unknown" and not screen.busy and screen.pending is not None
        hanging.hang = lambda request: False
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok" and len(screen.returned) == 3
    assert len(await refunds_of(world, till_config, redemption_id)) == 1


async def test_a_refund_needs_a_manager_of_this_shop_when_the_setting_asks(
    world: World, shop: Till, shop_config: TerminalConfig, make_app: MakeApp
) -> None:
    # issue 11 item 5: manager approval; the old screen sent every refund at once
    person = await world.citizen_with_vouchers()
    receipt_no, redemption_id = await redeemed(world, shop_config, person, 100_000, 5)
    manager = await staff_account(world, "merchant_manager", shop.merchant_id)
    operator = await staff_account(world, "district_operator", district="dongchangfu")
    other = await world.till()
    elsewhere = await staff_account(world, "merchant_manager", other.merchant_id)
    app = make_app(replace(shop_config, refund_needs_manager=True))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_refund(pilot, receipt_no)
        await type_text(pilot, "450")
        await pilot.press("enter")
        assert "经理授权" in screen.result_text
        await pilot.press("f9")
        await settle(pilot)
        modal = await approve(pilot, manager, "wrong password!")
        assert app.screen is modal and "账号或密码不对" in modal.result_text
        for who in (operator, elsewhere):  # the district's operator, another shop's manager
            modal.query_one("#manager-user", Input).value = ""
            modal.query_one("#manager-user").focus()
            await pilot.pause()
            await approve(pilot, who, PASSWORD)
            assert on_top(app) is modal and "不是本店经理" in modal.result_text
        await pilot.press("escape")
        await settle(pilot)
        assert on_top(app) is screen and "已取消" in screen.result_text
        assert await refunds_of(world, shop_config, redemption_id) == []

        await pilot.press("f9")
        await settle(pilot)
        await approve(pilot, manager, PASSWORD)
        assert on_top(app) is screen and screen.outcome == "ok", screen.result_text
        assert len(screen.returned) == 3
        assert any(manager in text for _, _, text in app.history)
    assert len(await refunds_of(world, shop_config, redemption_id)) == 1
