"""Issue 14: when the server sheds a redemption (503 ``server_busy`` + Retry-After, its gate
really full), the till says so in plain words (服务器繁忙，N 秒后自动重试), sends the same
request with the same key when the server asked, and the cashier may stop waiting (Esc): the
outcome is then unknown and the key kept, as for any unanswered redeem (rule U7)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest

from server.admission import ADMISSION, Gate, Kind
from server.settings import Settings
from terminal.app import TerminalApp
from terminal.config import TerminalConfig
from terminal.screens.checkout import CheckoutScreen
from terminal.screens.receipt import ReceiptScreen
from tests.e2e.test_shedding import NARROW
from tests.terminal.conftest import Clock, LiveServer, World, scan, settle, type_text

MakeApp = Callable[..., TerminalApp]


@pytest.fixture
async def narrow(settings: Settings, clock: Clock) -> AsyncIterator[LiveServer]:
    """The real app on a real port, its gate two requests wide."""
    server = LiveServer(replace(settings, **NARROW), clock)
    await server.start()
    yield server
    await server.stop()


def gate_of(server: LiveServer) -> Gate:
    assert server.server is not None
    return server.server.app[ADMISSION].gate


async def busy_checkout(pilot, world: World, receipt: str) -> CheckoutScreen:
    person = await world.citizen_with_vouchers()
    screen = pilot.app.screen
    assert isinstance(screen, CheckoutScreen)
    await type_text(pilot, "450")
    await pilot.press("enter")
    await type_text(pilot, receipt)
    await pilot.press("enter")
    await scan(pilot, await world.qr(person))
    await settle(pilot)
    assert screen.quote is not None
    return screen


async def until_told(pilot, screen: CheckoutScreen) -> None:
    for _ in range(200):
        if screen.outcome == "server_busy":
            return
        await asyncio.sleep(0.01)
        await pilot.pause()
    raise AssertionError(f"never told: {screen.outcome} {screen.result_text}")


async def bills(world: World, receipt: str) -> int:
    return int(
        await world.pool.fetchval("SELECT count(*) FROM redemptions WHERE receipt_no = $1", receipt)
    )


async def test_the_cashier_reads_server_busy_and_the_sale_goes_through_once(
    world: World, narrow: LiveServer, make_app: MakeApp
) -> None:
    till = await world.till()
    app = make_app(TerminalConfig(narrow.url, till.terminal_id, till.secret))
    receipt = f"R-{uuid.uuid4().hex[:6].upper()}"
    gate = gate_of(narrow)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = await busy_checkout(pilot, world, receipt)
        for _ in range(2):  # two sales in flight elsewhere: this process is full
            assert await gate.enter(Kind.TILL_WRITE)
        await pilot.press("f9")
        await until_told(pilot, screen)
        assert "服务器繁忙，1 秒后自动重试" in screen.result_text
        assert "不会重复核销" in screen.result_text and "Esc" in screen.result_text
        assert screen.busy and screen.pending is not None
        for _ in range(2):  # the load passes; the till comes back when it was asked to
            gate.leave(gate.clock())
        await asyncio.wait_for(app.workers.wait_for_complete(), timeout=10)
        await settle(pilot)
        assert screen.outcome == "ok", screen.result_text
        assert isinstance(app.screen, ReceiptScreen)
    assert await bills(world, receipt) == 1


async def test_the_cashier_may_stop_waiting_for_a_busy_server(
    world: World, narrow: LiveServer, make_app: MakeApp
) -> None:
    till = await world.till()
    config = replace(TerminalConfig(narrow.url, till.terminal_id, till.secret), lang="en")
    app = make_app(config)
    receipt = f"R-{uuid.uuid4().hex[:6].upper()}"
    gate = gate_of(narrow)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = await busy_checkout(pilot, world, receipt)
        for _ in range(2):
            assert await gate.enter(Kind.TILL_WRITE)
        try:
            await pilot.press("f9")
            await until_told(pilot, screen)
            assert "The server is busy: retrying automatically in 1 s" in screen.result_text
            key = screen.pending.key if screen.pending else ""
            await pilot.press("escape")
            await settle(pilot)
            assert screen.outcome == "unknown"  # never a success not received (rule U7)
            assert screen.pending is not None and screen.pending.key == key  # F8/F9 reuse it
            await asyncio.sleep(1.3)  # past the Retry-After: the stopped till sent nothing
        finally:
            for _ in range(2):
                gate.leave(gate.clock())
        assert await bills(world, receipt) == 0
        await pilot.press("f9")  # the same sale again, same key, now that there is room
        await asyncio.wait_for(app.workers.wait_for_complete(), timeout=10)
        await settle(pilot)
        assert screen.outcome == "ok", screen.result_text
    assert await bills(world, receipt) == 1
