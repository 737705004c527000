"""At the till, keyboard only, against the real server: a receipt number another till used
today is refused at the scan, before the money is taken, and the cashier is told what to do
(rule U4, issue 11 item 3); the shop's "a refund needs a manager" setting is held by the
server, whatever the till's own setting says (item 5); the day list shows the cash each
refund handed back under the till's one name (item 7)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import jwt
from textual.widgets import DataTable, Input

from terminal.app import TerminalApp
from terminal.config import TerminalConfig
from terminal.screens.approval import ManagerApproval
from terminal.screens.checkout import CheckoutScreen
from terminal.screens.day import DayScreen
from terminal.screens.refund import RefundScreen
from tests.e2e.conftest import Till
from tests.terminal.conftest import (
    PASSWORD,
    HangingProxy,
    World,
    approve,
    on_top,
    redeemed,
    scan,
    settle,
    staff_account,
    type_text,
    wallet_counts,
)

MakeApp = Callable[..., TerminalApp]


async def shop_setting(world: World, shop: Till, **settings: bool) -> None:
    """The shop's manager changes its settings (POST /v1/merchants/{id}/settings)."""
    manager = await world.staff("merchant_manager", merchant_id=shop.merchant_id)
    r = await world.client.post(
        f"/v1/merchants/{shop.merchant_id}/settings",
        json={"reason": "the shop's rules", **settings},
        headers=manager,
    )
    assert r.status == 200, await r.text()


async def test_a_receipt_number_another_till_used_today_is_refused_at_the_scan(
    world: World, shop: Till, shop_config: TerminalConfig, make_app: MakeApp
) -> None:
    # issue 11 item 3: till 2 used 0002; till 1's quote of 0002 passed and only the confirm
    # refused it. Now the quote refuses it, says what to do, and keeps the customer's code:
    # the cashier fixes the number and Enter quotes again, no second scan
    person = await world.citizen_with_vouchers()
    till_2 = await world.another_till(shop)
    assert (await world.redeem(till_2, await world.qr(person), receipt_no="0002")).status == 201
    app = make_app(shop_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CheckoutScreen)
        await type_text(pilot, "400")
        await pilot.press("enter")
        await type_text(pilot, "0002")
        await pilot.press("enter")
        await scan(pilot, await world.qr(person))
        await settle(pilot)
        assert screen.quote is None
        assert "这张小票号今天已用过，请核对小票号或换下一张" in screen.result_text
        receipt = screen.query_one("#receipt", Input)
        assert app.focused is receipt and screen.held_token  # the code is kept
        await type_text(pilot, "0003")  # replaces the selected number
        assert receipt.value == "0003"
        await pilot.press("enter")
        await settle(pilot)
        assert screen.quote is not None and screen.quote.usable_count == 2
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok", screen.result_text
        assert screen.last is not None and screen.last.receipt_no == "0003"
    assert (await wallet_counts(world, person))["used"] == 3  # 1 at till 2, 2 here


async def test_a_receipt_number_is_free_again_at_a_till_numbering_its_own(
    world: World, shop: Till, shop_config: TerminalConfig, make_app: MakeApp
) -> None:
    # rule U4 [choice]: the shop numbers receipts per till; till 2's 0002 is not this till's
    await shop_setting(world, shop, receipts_per_till=True)
    person = await world.citizen_with_vouchers()
    till_2 = await world.another_till(shop)
    assert (await world.redeem(till_2, await world.qr(person), receipt_no="0002")).status == 201
    app = make_app(shop_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CheckoutScreen)
        assert app.session is not None and app.session.merchant.receipts_per_till
        await type_text(pilot, "400")
        await pilot.press("enter")
        await type_text(pilot, "0002")
        await pilot.press("enter")
        await scan(pilot, await world.qr(person))
        await settle(pilot)
        assert screen.quote is not None, screen.result_text
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok" and screen.last is not None
        assert (screen.last.receipt_no, screen.last.terminal.id) == ("0002", shop.terminal_id)


async def open_refund(pilot: Any, receipt_no: str) -> RefundScreen:
    await settle(pilot)
    await pilot.press("f3")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, RefundScreen)
    await type_text(pilot, receipt_no)
    await pilot.press("enter")
    await settle(pilot)
    assert screen.found is not None and screen.found.receipt_no == receipt_no
    await type_text(pilot, "450")
    await pilot.press("enter")
    await settle(pilot)
    return screen


async def approvals(world: World, redemption_id: int) -> list[str | None]:
    async with world.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT a.username FROM refunds f LEFT JOIN accounts a ON a.id = f.approved_by "
            "WHERE f.redemption_id = $1 ORDER BY f.id",
            redemption_id,
        )
    return [r["username"] for r in rows]


async def test_the_shops_approval_setting_is_asked_for_though_the_till_has_it_off(
    world: World, shop: Till, shop_config: TerminalConfig, make_app: MakeApp
) -> None:
    # issue 11 item 5: the till's sign-in says the shop's setting; F9 asks a manager
    await shop_setting(world, shop, refund_needs_manager=True)
    person = await world.citizen_with_vouchers()
    receipt_no, redemption_id = await redeemed(world, shop_config, person, 100_000, 5)
    manager = await staff_account(world, "merchant_manager", shop.merchant_id)
    assert not shop_config.refund_needs_manager
    app = make_app(shop_config)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_refund(pilot, receipt_no)
        assert "经理授权" in screen.result_text
        await pilot.press("f9")
        await settle(pilot)
        assert isinstance(app.screen, ManagerApproval)
        await approve(pilot, manager, PASSWORD)
        assert on_top(app) is screen and screen.outcome == "ok", screen.result_text
    assert await approvals(world, redemption_id) == [manager]


async def test_a_refund_the_server_refuses_for_want_of_a_manager_is_approved_and_sent(
    world: World, shop: Till, shop_config: TerminalConfig, make_app: MakeApp
) -> None:
    # issue 11 item 5: the shop turned the setting on after this till signed in: the server
    # refuses (nothing refunded), the cashier is told, and F9 asks a manager this time
    person = await world.citizen_with_vouchers()
    receipt_no, redemption_id = await redeemed(world, shop_config, person, 100_000, 5)
    manager = await staff_account(world, "merchant_manager", shop.merchant_id)
    app = make_app(shop_config)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_refund(pilot, receipt_no)
        assert app.session is not None and not app.session.merchant.refund_needs_manager
        await shop_setting(world, shop, refund_needs_manager=True)
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "refused"
        assert "本店退款需要经理授权" in screen.result_text, screen.result_text
        assert await approvals(world, redemption_id) == []  # nothing refunded
        assert (await wallet_counts(world, person))["used"] == 5
        await pilot.press("f9")
        await settle(pilot)
        assert isinstance(app.screen, ManagerApproval)
        await approve(pilot, manager, PASSWORD)
        assert on_top(app) is screen and screen.outcome == "ok", screen.result_text
        assert "请退现金 150.00 元" in screen.result_text
    assert await approvals(world, redemption_id) == [manager]
    assert (await wallet_counts(world, person))["used"] == 2


async def test_the_day_lists_the_cash_each_refund_handed_back(
    world: World, shop: Till, shop_config: TerminalConfig, make_app: MakeApp
) -> None:
    # issue 11 item 7: a refund row says its till by the till's one name, and the cash back
    person = await world.citizen_with_vouchers()
    receipt_no, redemption_id = await redeemed(world, shop_config, person, 100_000, 5)
    r = await world.client.post(
        f"/v1/redemptions/{redemption_id}/refunds",
        json={"remaining_bill_fen": 55_000},
        headers={**shop.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status == 201, await r.text()
    app = make_app(shop_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DayScreen) and screen.report is not None
        [refund] = screen.report.refunds
        assert (refund.terminal.label, refund.cash_back_fen) == ("收银台 1", 15_000)
        table = screen.query_one(DataTable)
        bill, back = ([str(c) for c in table.get_row_at(n)] for n in (0, 1))
        assert (bill[1], bill[6], bill[7]) == (receipt_no, "500.00", "收银台 1")
        assert (back[1], back[6], back[7]) == (f"↩ {receipt_no}", "-150.00", "收银台 1")


async def test_the_managers_approval_is_for_that_one_refund_and_outlives_an_unknown_outcome(
    world: World, shop: Till, shop_config: TerminalConfig, hanging: HangingProxy, make_app: MakeApp
) -> None:
    # issue 11 item 5: the till was handed the manager's 15-minute access token, good for any
    # refund (and anything else a manager may do) while it lived; now the server gives the
    # till an approval of this one refund: this till, this bill, 550 元 left, this key
    await shop_setting(world, shop, refund_needs_manager=True)
    person = await world.citizen_with_vouchers()
    receipt_no, redemption_id = await redeemed(world, shop_config, person, 100_000, 5)
    manager = await staff_account(world, "merchant_manager", shop.merchant_id)
    config = replace(shop_config, server_url=hanging.url, answer_wait_s=1.0)
    app = make_app(config, client_options={"retries": 0, "timeout": 8.0})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_refund(pilot, receipt_no)
        await pilot.press("f9")
        await settle(pilot)
        hanging.hang = lambda request: request.path.endswith("/refunds")
        await approve(pilot, manager, PASSWORD)
        await asyncio.wait_for(app.workers.wait_for_complete(), timeout=20)
        await pilot.pause()
        assert screen.outcome == "unknown" and screen.pending is not None, screen.result_text
        pending = screen.pending
        assert screen.approved_by is not None and screen.approved_by.token == pending.approval
        assert jwt.get_unverified_header(pending.approval)["typ"] == "refund-approval+jwt"
        claims = jwt.decode(pending.approval, options={"verify_signature": False})
        assert (claims["sub"], claims["terminal_id"], claims["redemption_id"]) == (
            manager,
            shop.terminal_id,
            redemption_id,
        )
        assert (claims["remaining_bill_fen"], claims["key"]) == (55_000, pending.key)
        assert claims["exp"] - claims["iat"] == 120
        # F9 sends the same refund again, with its key and approval: done once (rule U7)
        hanging.hang = lambda request: False
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok", screen.result_text
    assert await approvals(world, redemption_id) == [manager]
    # what the till held approves no other refund, and is no access token either
    await world.sign_in(shop)
    r = await world.client.post(
        f"/v1/redemptions/{redemption_id}/refunds",
        json={"remaining_bill_fen": 0},
        headers={
            **shop.headers,
            "Idempotency-Key": uuid.uuid4().hex,
            "Manager-Approval": pending.approval,
        },
    )
    error = (await r.json())["error"]
    assert (r.status, error["code"]) == (403, "approval_for_another_refund")
    assert error["details"]["differs"] == ["remaining_bill_fen", "key"]
    r = await world.client.get(
        "/v1/merchant/day", headers={"Authorization": f"Bearer {pending.approval}"}
    )
    assert r.status == 401
    assert (await wallet_counts(world, person))["used"] == 2
