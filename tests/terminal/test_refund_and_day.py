"""Refunds, the day's list and its CSV, and the language setting, driven by the keyboard
against the real server."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from textual.widgets import DataTable, Input

from terminal.app import TerminalApp
from terminal.config import TerminalConfig, load_config, save_config
from terminal.documents import day_csv
from terminal.screens.checkout import CheckoutScreen
from terminal.screens.day import DayScreen
from terminal.screens.refund import RefundScreen
from terminal.screens.settings import SettingsScreen
from tests.e2e.conftest import Till
from tests.terminal.conftest import World, on_top, redeemed, settle, shown, type_text, wallet_counts

MakeApp = Callable[..., TerminalApp]


def errors(app: TerminalApp) -> list[str]:
    return [f"{title}: {text}" for severity, title, text in app.history if severity == "error"]


async def test_refund_part_by_receipt_then_the_rest_by_id(
    world: World, till_config: TerminalConfig, make_app: MakeApp
) -> None:
    # rules F1, F2: 3 vouchers on a 600 元 bill. The bill becomes 250 元: one voucher stays
    # (floor(250 / 200) = 1), two go back. Then the rest is refunded: the last one goes back.
    person = await world.citizen_with_vouchers()
    receipt_no, redemption_id = await redeemed(world, till_config, person, 60_000, 3)
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RefundScreen)
        assert app.focused is screen.query_one("#find-receipt")
        await type_text(pilot, receipt_no.lower())  # the server keeps it upper-case (U4)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.found is not None and screen.found.redemption_id == redemption_id
        found = shown(screen, "#found")
        assert f"单号 {redemption_id}" in found and "用券 3 张" in found
        assert app.focused is screen.query_one("#amount")
        await type_text(pilot, "350.00")  # refunded: the bill becomes 250 元
        await pilot.press("enter")  # shows the money
        await pilot.press("f9")  # confirms
        await settle(pilot)
        assert screen.outcome == "ok", shown(screen, "#result")
        assert len(screen.returned) == 2
        assert set(screen.returned) <= set(screen.found.voucher_ids)
        returned = shown(screen, "#returned")
        assert all(str(v) in returned for v in screen.returned)
        assert "2 张券退回顾客" in shown(screen, "#result")
        assert screen.found.live_voucher_count == 1
        assert (await wallet_counts(world, person))["available"] == 47

        await pilot.press("f6")  # a new search, by redemption id, refund all
        screen.query_one("#find-id", Input).focus()
        await type_text(pilot, str(redemption_id))
        await pilot.press("enter")
        await settle(pilot)
        assert screen.found is not None and screen.found.status == "partially_refunded"
        await pilot.press("f8")  # the whole bill left, shown first
        await pilot.press("f9")
        await settle(pilot)
        assert screen.outcome == "ok" and len(screen.returned) == 1
        assert screen.found.status == "refunded"
        assert (await wallet_counts(world, person))["available"] == 48

        await pilot.press("f8")  # once more: nothing left to refund
        await settle(pilot)
        assert screen.outcome == "refused"
        assert "已经全额退款" in errors(app)[-1]


async def test_refund_input_is_checked_before_anything_is_sent(
    world: World, till_config: TerminalConfig, make_app: MakeApp
) -> None:
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RefundScreen)
        await pilot.press("f9")  # nothing found yet
        assert "请输入小票号或核销单号" in errors(app)[-1]
        await type_text(pilot, "NO-SUCH-BILL")
        await pilot.press("enter")
        await settle(pilot)
        assert screen.found is None and "找不到这笔核销" in errors(app)[-1]


async def test_the_day_list_with_totals_and_its_csv(
    world: World, till_config: TerminalConfig, make_app: MakeApp, tmp_path: Path
) -> None:
    # rule S2
    person = await world.citizen_with_vouchers()
    first, _ = await redeemed(world, till_config, person, 45_000, 2)
    second, second_id = await redeemed(world, till_config, person, 20_000, 1)
    till = await world.sign_in(Till(till_config.terminal_id, 0, till_config.secret))
    r = await world.client.post(
        f"/v1/redemptions/{second_id}/refunds",
        json={"remaining_bill_fen": 0},
        headers={**till.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status == 201
    app = make_app(till_config, files_dir=tmp_path / "files")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DayScreen)
        report = screen.report
        assert report is not None and report.date == "2024-09-10"  # the server's today
        assert [r.receipt_no for r in report.redemptions] == [first, second]
        assert report.totals.bills == 2 and report.totals.vouchers == 3
        assert report.totals.net_value_fen == 20_000
        table = screen.query_one(DataTable)
        assert table.row_count == 3  # two bills and one refund
        assert str(table.get_row_at(0)[1]) == first
        totals = shown(screen, "#totals")
        assert "2 单 · 用券 3 张 · 300.00 元" in totals and "净额 200.00 元" in totals
        await pilot.press("f7")
        exported = tmp_path / "files" / "exports" / "day-2024-09-10.csv"
        assert exported.read_bytes().decode("utf-8-sig") == day_csv(report, "zh")

        date_field = screen.query_one("#date", Input)
        date_field.focus()
        await type_text(pilot, "2024-09-09")
        await pilot.press("enter")
        await settle(pilot)
        assert screen.report is not None and screen.report.date == "2024-09-09"
        assert table.row_count == 0
        assert "没有核销记录" in shown(screen, "#totals")

        date_field.value = ""
        await type_text(pilot, "2024-13-01")
        await pilot.press("enter")
        assert "YYYY-MM-DD" in errors(app)[-1]


async def test_english_by_setting_and_the_choice_is_kept(
    till_config: TerminalConfig, make_app: MakeApp, tmp_path: Path
) -> None:
    config_path = tmp_path / "lang" / "config.json"
    save_config(config_path, till_config)
    app = make_app(till_config, config_path=config_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, CheckoutScreen)
        assert "在线" in shown(app.screen, "#net")
        assert "东昌府区" in shown(app.screen, "#who")
        await pilot.press("f5")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)
        await pilot.press("f6")
        await settle(pilot)
        assert app.lang == "en"
        assert "online" in shown(app.screen, "#net")
        descriptions = {b.binding.description for b in app.screen.active_bindings.values()}
        assert {"Pay", "Refund", "Day", "Setup", "Quit", "Pair"} <= descriptions
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, CheckoutScreen)
        assert "Dongchangfu" in shown(app.screen, "#who")
        assert "Enter the bill" in shown(app.screen, "#result")
    saved = load_config(config_path)
    assert saved is not None and saved.lang == "en"


async def test_the_day_list_is_fetched_again_when_f4_opens_it_and_names_each_till_once(
    world: World, till_config: TerminalConfig, make_app: MakeApp
) -> None:
    # issue 11 item 7: it showed 6 bills while the server had 19; refund rows said #1
    person = await world.citizen_with_vouchers()
    await redeemed(world, till_config, person, 45_000, 2)
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DayScreen)
        assert screen.report is not None and len(screen.report.redemptions) == 1
        await pilot.press("f2")
        await settle(pilot)
        _, second_id = await redeemed(world, till_config, person, 20_000, 1)  # meanwhile
        till = await world.sign_in(Till(till_config.terminal_id, 0, till_config.secret))
        r = await world.client.post(
            f"/v1/redemptions/{second_id}/refunds",
            json={"remaining_bill_fen": 0},
            headers={**till.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status == 201
        await pilot.press("f4")
        await settle(pilot)
        assert on_top(app) is screen and screen.report is not None
        assert len(screen.report.redemptions) == 2 and len(screen.report.refunds) == 1
        table = screen.query_one(DataTable)
        names = {str(table.get_row_at(i)[7]) for i in range(table.row_count)}
        label = app.session.terminal.label if app.session else ""
        assert names == {label or f"收银台 {till_config.terminal_id}"}, names
        assert all(":" in str(table.get_row_at(i)[0]) for i in range(table.row_count))
        assert "T" not in str(table.get_row_at(0)[0])  # a local time, not ISO
        # the cash column: collected on each bill, handed back by the refund (the server's)
        cash = [str(table.get_row_at(i)[6]) for i in range(table.row_count)]
        assert cash == ["250.00", "100.00", "-100.00"], cash
        totals = shown(screen, "#totals")
        assert "收现 350.00 元" in totals  # (450 - 200) + (200 - 100)
        assert "退现 100.00 元" in totals  # the full refund of the 200 元 bill
        assert f"{names.pop()}：2 单" in totals and "退回 1 张" in totals
        assert screen._refresher._active.is_set()  # and again every 20 s while shown
        await pilot.press("f2")
        await settle(pilot)
        assert not screen._refresher._active.is_set()
