"""Issue 11 item 6 at the till, against the real server: a redeem prints its receipt on the
printer set up (python-escpos's Dummy), any receipt of the day is reprinted from the day
list, and a shift is opened, summed for this till since it opened, closed and printed."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from escpos.printer import Dummy
from textual.widgets import DataTable

from terminal.app import TerminalApp
from terminal.config import TerminalConfig
from terminal.printing import PrinterSettings
from terminal.screens.checkout import CheckoutScreen
from terminal.screens.day import DayScreen
from terminal.screens.receipt import ReceiptScreen
from terminal.screens.shift import ShiftScreen
from terminal.shift import load_state, state_path
from tests.e2e.conftest import Citizen, Clock, Till
from tests.terminal.conftest import World, scan, settle, shown, type_text

MakeApp = Callable[..., TerminalApp]
CUT = b"\x1dV"


class Printers:
    """The printer the till opens for each job: python-escpos's Dummy, kept to read."""

    def __init__(self) -> None:
        self.jobs: list[bytes] = []
        self.settings: list[PrinterSettings] = []

    def __call__(self, settings: PrinterSettings) -> Any:
        printers = self

        class Kept(Dummy):  # type: ignore[misc]
            def close(self) -> None:  # also called when the object goes: once a job
                if not getattr(self, "kept", False):
                    self.kept = True
                    printers.jobs.append(bytes(self.output))

        self.settings.append(settings)
        return Kept()


async def redeem_at_the_till(pilot: Any, world: World, person: Citizen, bill: str) -> str:
    screen = pilot.app.screen
    assert isinstance(screen, CheckoutScreen)
    receipt_no = f"R-{uuid.uuid4().hex[:6].upper()}"
    await type_text(pilot, bill)
    await pilot.press("enter")
    await type_text(pilot, receipt_no)
    await pilot.press("enter")
    await scan(pilot, await world.qr(person))
    await settle(pilot)
    await pilot.press("f9")
    await settle(pilot)
    assert screen.outcome == "ok", screen.result_text
    return receipt_no


async def test_a_redeem_prints_its_receipt_and_the_day_list_reprints_any(
    world: World, till_config: TerminalConfig, make_app: MakeApp, tmp_path: Path
) -> None:
    # the old F7 only showed the last receipt again; nothing reached a printer
    person = await world.citizen_with_vouchers()
    printers = Printers()
    config = replace(till_config, printer="network:192.0.2.7:9100", paper_mm=80)
    app = make_app(config, printer_factory=printers, files_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        first = await redeem_at_the_till(pilot, world, person, "450")
        receipt = app.screen
        assert isinstance(receipt, ReceiptScreen) and receipt.printed == 1
        [job] = printers.jobs
        assert printers.settings[0].host == "192.0.2.7"
        assert first.encode() in job and "还需支付".encode("gb18030") in job
        assert "250.00 元".encode("gb18030") in job and job.rstrip(b"\x00").endswith(CUT)
        assert ("-" * 48).encode() in job and ("-" * 49).encode() not in job  # 80 mm
        await pilot.press("enter")
        await pilot.pause()
        second = await redeem_at_the_till(pilot, world, person, "600")
        await pilot.press("enter")
        await pilot.pause()
        assert len(printers.jobs) == 2

        await pilot.press("f4")
        await settle(pilot)
        day = app.screen
        assert isinstance(day, DayScreen)
        table = day.query_one(DataTable)
        assert table.row_count == 2
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("f8")  # the first customer's receipt, again
        await settle(pilot)
        again = app.screen
        assert isinstance(again, ReceiptScreen) and again.data.reprint
        assert again.data.receipt_no == first and "（重印）" in again.text
        assert len(printers.jobs) == 3
        assert "（重印）".encode("gb18030") in printers.jobs[2]
        assert first.encode() in printers.jobs[2] and second.encode() not in printers.jobs[2]
        assert "250.00 元".encode("gb18030") in printers.jobs[2]
        await pilot.press("f7")  # F7 prints it once more
        await settle(pilot)
        assert len(printers.jobs) == 4 and again.printed == 2


async def test_a_shift_is_opened_summed_for_this_till_closed_and_printed(
    world: World, till_config: TerminalConfig, make_app: MakeApp, clock: Clock, tmp_path: Path
) -> None:
    # 交班: there was no shift at all
    person = await world.citizen_with_vouchers()
    till = await world.sign_in(Till(till_config.terminal_id, 0, till_config.secret))
    r = await world.redeem(till, await world.qr(person), bill_fen=40_000, count=2)
    assert r.status == 201  # 10:00, before the shift: not in it
    clock.advance(minutes=1)
    printers = Printers()
    config_path = tmp_path / "till" / "config.json"
    config = replace(till_config, printer="device:/dev/usb/lp0")
    app = make_app(config, config_path=config_path, printer_factory=printers, clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        await pilot.press("f6")
        await settle(pilot)
        shift = app.screen
        assert isinstance(shift, ShiftScreen)
        assert "没有开班" in shown(shift, "#shift-text")
        await pilot.press("f9")  # open, at 10:01
        await settle(pilot)
        state = load_state(state_path(config_path))
        assert state.open is not None and state.open.opened_at.startswith("2024-09-10T10:01")
        assert shift.summary is not None and shift.summary.bills == 0
        await pilot.press("escape")
        await pilot.pause()

        clock.advance(minutes=5)
        await pilot.press("f2")
        await pilot.pause()
        receipt_no = await redeem_at_the_till(pilot, world, person, "650")  # 3 vouchers
        await pilot.press("enter")
        await pilot.pause()
        found = await world.client.get(
            "/v1/redemptions", params={"receipt_no": receipt_no}, headers=till.headers
        )
        redemption_id = (await found.json())["redemption_id"]
        r = await world.client.post(
            f"/v1/redemptions/{redemption_id}/refunds",
            json={"remaining_bill_fen": 45_000},  # 200 refunded: 2 stay, 1 back
            headers={**till.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status == 201, await r.text()
        clock.advance(minutes=5)

        await pilot.press("f4")
        await settle(pilot)
        await pilot.press("f6")
        await settle(pilot)
        shift = app.screen
        assert isinstance(shift, ShiftScreen)
        s = shift.summary
        assert s is not None and not s.closed
        assert (s.bills, s.vouchers, s.value_fen, s.cash_fen) == (1, 3, 30_000, 35_000)
        assert (s.refunds, s.returned_vouchers, s.net_value_fen) == (1, 1, 20_000)
        await pilot.press("f9")  # close the shift, at 10:11
        await settle(pilot)
        assert shift.summary is not None and shift.summary.closed
        text = shown(shift, "#shift-text")
        assert "交班汇总" in text and "收现" in text and "350.00 元" in text
        state = load_state(state_path(config_path))
        assert state.open is None and state.last is not None
        assert state.last.closed_at.startswith("2024-09-10T10:11")
        await pilot.press("f7")
        await settle(pilot)
        [job] = printers.jobs[1:]  # the receipt, then the shift
        assert "交班汇总".encode("gb18030") in job and CUT in job
