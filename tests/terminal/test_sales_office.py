"""A developer's sales office at the till (issue 13, rules T4-T8 with U5, U7), keyboard only,
80×24, against the real server: the till opens in its sales-office mode, the contract is
entered, the holder's code scanned, the quote shown, the use confirmed; a refusal in plain
words; an answer lost on the way asked by key, nothing used twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from textual.widgets import Input, Select

from client.till import TillClient
from server.db import tickets as tickets_db
from shared.house_tickets import Ticket
from terminal.app import TerminalApp
from terminal.config import TerminalConfig
from terminal.documents import LOCAL_TZ
from terminal.screens.receipt import TicketReceiptScreen
from terminal.screens.sales import SalesScreen
from terminal.screens.tickets import TicketChoice
from tests.e2e.conftest import Citizen, new_id_number
from tests.e2e.test_ticket_till import WAN, sales_office, ticket_for
from tests.e2e.test_till import code_of_nobody
from tests.terminal.conftest import (
    FAST_CLIENT,
    Clock,
    HangingProxy,
    LiveServer,
    World,
    scan,
    settle,
    shown,
    type_text,
)
from tests.terminal.test_receipts_and_shift import Printers

MakeApp = Callable[..., TerminalApp]
TODAY = datetime(2025, 7, 10, 10, tzinfo=LOCAL_TZ)


@pytest.fixture
async def office_config(world: World, live: LiveServer, clock: Clock) -> TerminalConfig:
    clock.now = TODAY  # a Shangqiu ticket issued 2025-06-20: month 1 after issue (T7)
    till = await sales_office(world)
    return TerminalConfig(live.url, till.terminal_id, till.secret)


@pytest.fixture
def open_app(make_app: MakeApp) -> MakeApp:
    def make(config: TerminalConfig, **kwargs: Any) -> TerminalApp:
        return make_app(config, clock=lambda: TODAY, **kwargs)

    return make


async def holder_with_ticket(world: World) -> tuple[Citizen, Ticket]:
    holder = await world.citizen()
    return holder, await ticket_for(world, holder)


async def holder_with_two_tickets(world: World) -> tuple[Citizen, Ticket, Ticket]:
    """A holder's 100 万 ticket and a later 50 万 one (expiring later: drawn second, T6)."""
    holder, first = await holder_with_ticket(world)
    later = await ticket_for(world, holder, issued_on=date(2025, 6, 25), face=50 * WAN)
    return holder, first, later


async def ticket_now(world: World, ticket: Ticket) -> Ticket:
    async with world.pool.acquire() as conn:
        return (await tickets_db.read_tickets(conn, [ticket.id]))[ticket.id]


def sales(app: TerminalApp) -> SalesScreen:
    screen = app.screen
    assert isinstance(screen, SalesScreen), screen
    return screen


async def enter_contract(pilot: Any, contract_no: str, amount: str = "600000") -> None:
    """The whole contract by keyboard, Enter after each field: the unit and the buyer are
    chosen from lists (Enter opens one, Down and Enter choose)."""
    await type_text(pilot, contract_no)
    await pilot.press("enter")  # -> the unit
    await pilot.press("enter", "down", "enter")  # the first unit of the pool
    await type_text(pilot, "1500000")
    await pilot.press("enter")  # -> signed on: today, filled in
    await pilot.press("enter")  # -> the buyer: the holder, chosen already
    await pilot.press("tab")  # -> the buyer's ID number: none for the holder
    await pilot.press("enter")  # -> the proof: none
    await pilot.press("enter")  # -> the amount
    await type_text(pilot, amount)
    await pilot.press("enter")  # -> the scan


async def quoted(pilot: Any, world: World, holder: Citizen, contract_no: str, amount: str) -> None:
    """The contract entered, the holder's fresh code scanned, the quote's answer settled."""
    await enter_contract(pilot, contract_no, amount=amount)
    await scan(pilot, await world.qr(holder))
    await settle(pilot)


async def test_a_developers_till_opens_in_its_sales_office_mode(
    office_config: TerminalConfig, open_app: MakeApp
) -> None:
    # rule T4: the mode follows the sign-in's merchant kind; a sales office has no voucher
    # refund nor day list
    app = open_app(office_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = sales(app)
        assert app.sales_office and app.focused is screen.query_one("#contract")
        units = screen.query_one("#unit", Select)
        assert [u.unit for u in screen.units] == ["1-101"]
        assert units.is_blank()
        assert screen.query_one("#signed").value == "2025-07-10"  # type: ignore[attr-defined]
        f2 = [b for b in app._bindings.key_to_bindings["f2"]]
        assert f2[0].description == "房票"
        assert {"f3", "f4"}.isdisjoint(app.active_bindings)  # no voucher refund, no day list
        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(app.screen, SalesScreen)
        await app.action_mode("day")  # however asked for
        assert isinstance(app.screen, SalesScreen)
        assert "只办理房票" in app.history[-1][2]
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, SalesScreen)


async def test_a_contract_scanned_quoted_and_confirmed(
    world: World, office_config: TerminalConfig, open_app: MakeApp
) -> None:
    # rules T5-T7: 60 万 of a 100 万 ticket in month 1: 10% subsidy; the buyer pays the rest
    holder, ticket = await holder_with_ticket(world)
    app = open_app(office_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = sales(app)
        await enter_contract(pilot, "wq-2025-0001")
        assert app.focused is screen.query_one("#scan")
        await scan(pilot, await world.qr(holder))
        await settle(pilot)
        quote = screen.quote
        assert quote is not None and quote.contract_no == "WQ-2025-0001"
        assert ticket.number in shown(screen, "#holder")
        assert "余额 1,000,000.00 元" in shown(screen, "#range")
        assert "本合同可用 0.01 至 1,000,000.00 元" in shown(screen, "#range")
        assert "累计使用还差 300,000.00 元" in shown(screen, "#still")  # T6: 90% in total
        assert "第 1 个月：购房补贴 10%，60,000.00 元" in shown(screen, "#subsidy")
        assert "购房人还需支付 840,000.00 元" in shown(screen, "#pays")
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok", screen.result_text
        assert "已使用房票 600,000.00 元" in screen.result_text
        assert "房票余额 400,000.00 元" in screen.result_text
    used = await ticket_now(world, ticket)
    assert (used.used_fen, used.balance_fen) == (60 * WAN, 40 * WAN)


async def test_a_used_contract_is_refused_in_words_and_the_code_is_kept(
    world: World, office_config: TerminalConfig, open_app: MakeApp
) -> None:
    # rule T5: a contract once; the code stays good for a corrected contract, no rescan
    holder, ticket = await holder_with_ticket(world)
    app = open_app(office_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = sales(app)
        await quoted(pilot, world, holder, "WQ-ONCE", "100000")
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok"
        await pilot.press("f6")
        await quoted(pilot, world, holder, "WQ-ONCE", "100000")
        assert screen.outcome == "refused" and screen.quote is None
        assert "这份购房合同已经用过房票" in screen.result_text
        assert screen.held_token and app.focused is screen.query_one("#contract")
        screen.query_one("#contract").value = "WQ-TWICE"  # type: ignore[attr-defined]
        await pilot.press("enter")  # quoted again with the code held
        await settle(pilot)
        assert screen.quote is not None and screen.quote.contract_no == "WQ-TWICE"
    assert (await ticket_now(world, ticket)).used_fen == 10 * WAN


async def test_f7_draws_on_the_holders_other_ticket(
    world: World, office_config: TerminalConfig, open_app: MakeApp
) -> None:
    # rules T2, T6: the earliest-expiring ticket first; F7 lists the holder's tickets, the
    # other one chosen instead (Space unticks the first, Down, Space ticks the other, Enter)
    holder, first, later = await holder_with_two_tickets(world)
    app = open_app(office_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = sales(app)
        await quoted(pilot, world, holder, "WQ-F7", "")
        assert screen.quote is not None and screen.quote.lines[0].number == first.number
        assert "f7" in app.active_bindings
        await pilot.press("f7")
        await settle(pilot)
        assert isinstance(app.screen, TicketChoice)
        await pilot.press("space", "down", "space", "enter")
        await settle(pilot)
        assert screen.quote is not None and screen.quote.lines[0].number == later.number
        assert "余额 500,000.00 元" in shown(screen, "#range")
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok"
    assert (await ticket_now(world, later)).balance_fen == 0
    assert (await ticket_now(world, first)).used_fen == 0


def uses(request: web.Request) -> bool:
    return request.method == "POST" and request.path == "/v1/ticket-uses"


async def test_a_lost_answer_is_asked_by_key_and_the_ticket_is_used_once(
    world: World, office_config: TerminalConfig, hanging: HangingProxy, open_app: MakeApp
) -> None:
    # rule U7 and issue 11 item 4: no answer within the wait: unknown, nothing looks final;
    # F8 asks by the key once the server answers: the use, learnt by asking
    holder, ticket = await holder_with_ticket(world)
    config = replace(office_config, server_url=hanging.url, answer_wait_s=1.0)
    app = open_app(config, client_options={**FAST_CLIENT, "retries": 0})
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = sales(app)
        await enter_contract(pilot, "WQ-LOST")
        code = await world.qr(holder)
        await scan(pilot, code)
        await settle(pilot)
        hanging.hang = uses
        await pilot.press("f9")
        await asyncio.wait_for(app.workers.wait_for_complete(), timeout=20)
        await pilot.pause()
        for _ in range(1000):  # the server may finish after the till stopped waiting
            if hanging.hung:
                break
            await asyncio.sleep(0.01)
        assert hanging.hung == ["POST /v1/ticket-uses"]  # done on the server
        assert screen.outcome == "unknown" and "结果未知" in screen.result_text
        assert "待确认" in shown(screen, "#pays")
        await pilot.press("f6")  # the next contract must wait for this outcome
        assert screen.pending is not None
        asked: list[tuple[str, str | None]] = []

        def answer(request: web.Request) -> bool:
            asked.append((request.path_qs, request.headers.get("Voucher-Code")))
            return False

        hanging.hang = answer
        await pilot.press("f8")
        await settle(pilot)
        # issue 14: the holder's code of the pending use goes with the question, in a header
        assert [c for path, c in asked if path.startswith("/v1/ticket-uses?")] == [code]
        assert screen.outcome == "ok" and screen.last is not None
        assert screen.last.recovered  # learnt by asking for the key
        assert "应答曾丢失" in screen.result_text
    used = await ticket_now(world, ticket)
    assert (used.used_fen, used.balance_fen) == (60 * WAN, 40 * WAN)


async def test_the_client_says_not_used_when_the_key_found_nothing(
    world: World, office_config: TerminalConfig
) -> None:
    # rule U7: asking by a key the server never saw
    client = TillClient(
        office_config.server_url, office_config.terminal_id, office_config.secret, **FAST_CLIENT
    )
    try:
        with pytest.raises(Exception) as refused:
            await client.ticket_use_by_key("never-sent", code_of_nobody(world))
        assert getattr(refused.value, "code", "") == "not_used"
        pool = await client.listing_pool()
        assert [u.unit for u in pool.units] == ["1-101"]
    finally:
        await client.close()


# --- several tickets on one contract (rule T6) and the use's receipt ---------------------------


async def choose_tickets(pilot: Any, *keys: str) -> None:
    """F7, then the keys in the list of the holder's tickets, then Enter: quoted again."""
    app = pilot.app
    await pilot.press("f7")
    await settle(pilot)
    assert isinstance(app.screen, TicketChoice)
    await pilot.press(*keys, "enter")
    await settle(pilot)


async def ask_amount(pilot: Any, amount: str) -> None:
    """Another amount typed, Enter: quoted again with the same code."""
    screen = sales(pilot.app)
    screen.query_one("#amount", Input).value = amount
    screen.query_one("#amount", Input).focus()
    await pilot.pause()
    await pilot.press("enter")
    await settle(pilot)


async def test_two_tickets_combined_on_one_contract_each_paying_its_part(
    world: World, office_config: TerminalConfig, open_app: MakeApp
) -> None:
    # rule T6: the holder's two tickets on one 150 万 contract, 120 万 asked: the first
    # (earliest expiry) pays all it holds, 100 万, the other 20 万; each with its subsidy (T7)
    holder, first, later = await holder_with_two_tickets(world)
    app = open_app(office_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = sales(app)
        await quoted(pilot, world, holder, "WQ-BOTH", "")
        assert screen.quote is not None and len(screen.quote.lines) == 1
        await pilot.press("f7")
        await settle(pilot)
        choice = app.screen
        assert isinstance(choice, TicketChoice)
        assert choice.selected == (first.number,)  # the ticket drawn on now, ticked
        listed = str(choice.query_one("#tickets").get_option_at_index(1).prompt)  # type: ignore[attr-defined]
        assert listed == f"{later.number} · 余额 500,000.00 元 · 有效期至 2026-12-25"
        await pilot.press("down", "space", "enter")  # tick the other one too
        await settle(pilot)
        assert screen.chosen == (first.number, later.number)  # earliest expiry first
        quote = screen.quote
        assert quote is not None, screen.result_text
        # no amount asked: each the most it allows, 100 万 and 36.36 万 (T5: with its subsidy,
        # rounded down, within the price)
        assert [line.amount_fen for line in quote.lines] == [100 * WAN, 36_363_637]
        await ask_amount(pilot, "1200000")
        quote = screen.quote
        assert quote is not None, screen.result_text
        assert [(line.number, line.amount_fen) for line in quote.lines] == [
            (first.number, 100 * WAN),
            (later.number, 20 * WAN),
        ]
        assert "2 张合并 · 可用 0.02 至 1,363,636.37 元" in shown(screen, "#holder")
        draws = shown(screen, "#draws").splitlines()
        assert (
            draws[0].strip() == f"{first.number} · 余额 1,000,000.00 元 → 本次支付 1,000,000.00 元"
        )
        assert draws[1].strip() == f"{later.number} · 余额 500,000.00 元 → 本次支付 200,000.00 元"
        assert "购房补贴 10%，120,000.00 元" in shown(screen, "#subsidy")  # T7: on both
        # 150 万 - 120 万 - 12 万 subsidy
        assert "房票支付 1,200,000.00 元 · 购房人还需支付 180,000.00 元" in shown(screen, "#pays")
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok", screen.result_text
        assert screen.last is not None
        assert [(d.number, d.amount_fen, d.balance_fen) for d in screen.last.draws] == [
            (first.number, 100 * WAN, 0),
            (later.number, 20 * WAN, 30 * WAN),
        ]
    assert (await ticket_now(world, first)).balance_fen == 0
    assert (await ticket_now(world, later)).balance_fen == 30 * WAN


async def test_combined_tickets_refused_in_words_and_nothing_used(
    world: World, office_config: TerminalConfig, open_app: MakeApp
) -> None:
    # rules T5, T6: more than the chosen tickets allow is refused at the till; a ticket that
    # is not the holder's is refused by the server; neither uses anything
    holder, first, later = await holder_with_two_tickets(world)
    stranger, theirs = await holder_with_ticket(world)
    app = open_app(office_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = sales(app)
        await quoted(pilot, world, holder, "WQ-TOO-MUCH", "")
        await choose_tickets(pilot, "down", "space")
        assert screen.quote is not None and len(screen.quote.lines) == 2
        await ask_amount(pilot, "1450000")
        # 100 万 + what 150 万 - 110 万 leaves at 10% subsidy (rounded down): 36.36 万
        assert screen.quote is None and screen.outcome == "refused"
        assert screen.result_text == (
            "✘ 未使用房票：所选房票合计最多可用 1,363,636.37 元，不够 1,450,000.00 元："
            "请多选房票或减少金额。"
        )
        assert app.focused is screen.query_one("#amount") and screen.held_token
        screen._tickets_chosen((first.number, theirs.number))  # as a stale list would send
        await settle(pilot)
        assert screen.quote is None and screen.outcome == "refused"
        assert screen.result_text == (
            "✘ 未使用房票：持票人名下没有这张房票（或没有本项目的房票）。"
        )  # rules T1, T5: ticket_not_found
        assert screen.held_token  # the holder's code still good: choose again, Enter
        await pilot.press("f9")  # nothing quoted: nothing to confirm
        await settle(pilot)
        assert screen.last is None
    for ticket in (first, later, theirs):
        assert (await ticket_now(world, ticket)).used_fen == 0
    assert stranger.id_number != holder.id_number


async def test_a_use_prints_its_receipt_and_f7_reprints_it(
    world: World, office_config: TerminalConfig, open_app: MakeApp, tmp_path: Path
) -> None:
    # issue 13: the use's receipt on the till printer at once; F7 shows it again, marked a
    # reprint, and prints it once more
    holder, ticket = await holder_with_ticket(world)
    printers = Printers()
    config = replace(office_config, printer="device:/dev/usb/lp0")
    app = open_app(config, printer_factory=printers, files_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = sales(app)
        await quoted(pilot, world, holder, "WQ-PRINT", "600000")
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok", screen.result_text
        printed = app.screen
        assert isinstance(printed, TicketReceiptScreen) and printed.printed == 1
        [job] = printers.jobs
        text = job.decode("gb18030", errors="replace")
        assert "房票使用凭证" in text  # the programme's name, wider than the paper: cut
        assert "项目\n商丘市中心城区房屋征收补偿房票安\n置\n" in text
        assert "WQ-PRINT" in text and ticket.number in text
        lines = [" ".join(line.split()) for line in text.splitlines()]  # spaces aside
        assert f"房票 {ticket.number}" in lines
        assert "本次使用 600,000.00 元" in lines and "剩余金额 400,000.00 元" in lines
        assert "购房补贴 60,000.00 元" in lines and "购房人还需付 840,000.00 元" in lines
        assert f"使用单号 {screen.last.use_id}" in lines  # type: ignore[union-attr]
        assert "时间 2025-07-10 10:00:00" in lines  # the server's clock, Shanghai time
        assert "（重印）" not in text
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen and "f7" in app.active_bindings
        await pilot.press("f7")
        await settle(pilot)
        again = app.screen
        assert isinstance(again, TicketReceiptScreen) and again.data.reprint
        assert len(printers.jobs) == 1  # shown; printed only when asked
        await pilot.press("f7")
        await settle(pilot)
        assert len(printers.jobs) == 2 and "（重印）".encode("gb18030") in printers.jobs[1]
        await pilot.press("f8")  # and saved as text
        await settle(pilot)
        assert again.saved_to.endswith(f"ticket-use-{screen.last.use_id}-WQ-PRINT.txt")  # type: ignore[union-attr]


async def test_without_a_printer_f7_shows_the_receipt_with_the_buyer_masked_and_saves_it(
    world: World, office_config: TerminalConfig, open_app: MakeApp, tmp_path: Path
) -> None:
    # rules T5, X3: the spouse buys on the recorded proof; the receipt names the buyer by a
    # masked number; no printer at this till: nothing pops up, F7 shows it, F7 saves it
    holder, ticket = await holder_with_ticket(world)
    spouse = new_id_number()
    app = open_app(office_config, files_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = sales(app)
        await enter_contract(pilot, "WQ-SPOUSE", amount="300000")
        screen.query_one("#relation", Select).value = "spouse"
        screen.query_one("#buyer-id", Input).value = spouse
        screen.query_one("#proof", Input).value = "结婚证 J-1"
        await pilot.pause()
        screen.query_one("#scan").focus()
        await scan(pilot, await world.qr(holder))
        await settle(pilot)
        assert screen.quote is not None, screen.result_text
        assert "f7" not in app.active_bindings  # one ticket, no use yet: nothing for F7
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok" and app.screen is screen  # no printer: no pop-up
        assert "F7 查看或重印凭证" in screen.result_text
        await pilot.press("f7")
        await settle(pilot)
        shown_receipt = app.screen
        assert isinstance(shown_receipt, TicketReceiptScreen)
        assert not shown_receipt.data.reprint  # never on paper
        lines = [" ".join(line.split()) for line in shown_receipt.text.splitlines()]
        masked = spouse[:4] + "*" * 10 + spouse[-4:]
        assert "购房人 配偶" in lines and masked in lines and spouse not in shown_receipt.text
        assert f"房票 {ticket.number}" in lines and "本次使用 300,000.00 元" in lines
        await pilot.press("f7")  # no printer: F7 saves it as text
        await settle(pilot)
        saved = Path(shown_receipt.saved_to)
        assert saved.parent == tmp_path / "receipts"
        assert await asyncio.to_thread(saved.read_text, "utf-8") == shown_receipt.text
    assert (await ticket_now(world, ticket)).used_fen == 30 * WAN
