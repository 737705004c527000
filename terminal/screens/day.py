"""The merchant's day (rule S2): redemptions and refunds of today or a chosen date, with
totals; F7 exports it as CSV."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Footer, Input, Label, Static

from client.wire import DayRedemption, DayReport
from shared.money import format_yuan
from terminal.documents import (
    cash_back_fen,
    day_csv,
    local_time,
    reprint_of,
    terminal_name,
    terminal_names,
    till_totals,
    write_text_file,
)
from terminal.screens.base import TillScreen
from terminal.widgets.status_bar import StatusBar


@dataclass
class DayLoaded(Message):
    report: DayReport


@dataclass
class DayFailed(Message):
    error: BaseException


REFRESH_SECONDS = 20.0
"""While the list is shown it is fetched again this often (issue 11 item 7)."""


class DayScreen(TillScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f9", "load", "load", id="load"),
        Binding("f7", "export", "export", id="export"),
        Binding("f8", "reprint", "reprint", id="reprint"),
        Binding("f6", "shift", "shift", id="shift"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.report: DayReport | None = None
        self._default_export = ""

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with Horizontal(classes="row"):
            yield Label(self.t("day.date"), classes="label")
            yield Input(
                placeholder=self.t("day.date.placeholder"),
                id="date",
                compact=True,
                max_length=10,
                restrict=r"[0-9-]*",
            )
        yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
        yield Static(id="totals", markup=False)
        with Horizontal(classes="row"):
            yield Label(self.t("day.export_to"), classes="label")
            yield Input(id="export", compact=True)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, width in (  # within 80 columns, with each column's padding
            ("time", 8),
            ("receipt", 11),
            ("vouchers", 4),
            ("value", 8),
            ("refunded", 4),
            ("bill", 9),
            ("cash", 8),
            ("terminal", 8),
        ):
            table.add_column(self.t(f"day.col.{key}"), key=key, width=width)
        self.query_one("#date", Input).focus()
        self._refresher = self.set_interval(REFRESH_SECONDS, self._refresh_now, pause=True)

    def on_screen_resume(self) -> None:
        """F4 always shows the server's list as it is now, and keeps it fresh while shown."""
        self._refresh_now()
        self._refresher.resume()

    def on_screen_suspend(self) -> None:
        self._refresher.pause()

    def _refresh_now(self) -> None:
        if self.client is not None and self.till.connect:
            self.action_load(quiet=True)

    @on(Input.Submitted, "#date")
    def _date_entered(self) -> None:
        self.action_load()

    def action_load(self, quiet: bool = False) -> None:
        text = self.query_one("#date", Input).value.strip()
        try:
            day = date.fromisoformat(text) if text else None
        except ValueError:
            if not quiet:
                self.till.tell(self.t("input.date"), title=self.t("title.input"), severity="error")
            return
        if self.need_client() is None:
            return
        if self.report is None:
            self.query_one("#totals", Static).update(self.t("day.loading"))
        self.run_load(day)

    @work(exclusive=True, group="day", exit_on_error=False)
    async def run_load(self, day: date | None) -> None:
        client = self.client
        assert client is not None
        try:
            report = await client.day(day)
        except Exception as exc:
            self.post_message(DayFailed(exc))
            return
        self.post_message(DayLoaded(report))

    @on(DayLoaded)
    def _loaded(self, message: DayLoaded) -> None:
        self.show_report(message.report)

    @on(DayFailed)
    def _failed(self, message: DayFailed) -> None:
        self.query_one("#totals", Static).update("")
        self.fail(message.error)

    def show_report(self, report: DayReport) -> None:
        self.report = report
        names = terminal_names(report, self._own_name())
        table = self.query_one(DataTable)
        table.clear()
        rows: list[tuple[str, str, tuple[Text | str, ...]]] = []
        for r in report.redemptions:
            rows.append(
                (
                    r.time,
                    f"r{r.redemption_id}",
                    (
                        local_time(r.time, fmt="%H:%M:%S"),
                        r.receipt_no,
                        Text(str(r.voucher_count), justify="right"),
                        Text(format_yuan(r.value_fen), justify="right"),
                        Text(str(r.refunded_count or ""), justify="right"),
                        Text(format_yuan(r.bill_fen), justify="right"),
                        Text(format_yuan(r.bill_fen - r.value_fen), justify="right"),
                        terminal_name(r.terminal.id, names.get(r.terminal.id, ""), self.lang),
                    ),
                )
            )
        for f in report.refunds:
            rows.append(
                (
                    f.time,
                    f"f{f.refund_id}:{f.redemption_id}",
                    (
                        local_time(f.time, fmt="%H:%M:%S"),
                        f"↩ {f.receipt_no}",
                        Text(f"-{f.returned_count}", justify="right"),
                        Text(format_yuan(-f.value_fen), justify="right"),
                        "",
                        "",
                        # the cash this refund handed back (issue 11 item 7)
                        Text(format_yuan(-f.cash_back_fen), justify="right"),
                        terminal_name(f.terminal.id, names.get(f.terminal.id, ""), self.lang),
                    ),
                )
            )
        for _, key, cells in sorted(rows, key=lambda row: row[0]):
            table.add_row(*cells, key=key)
        t = report.totals
        if not report.redemptions and not report.refunds:
            summary = self.t("day.empty", date=report.date)
        else:
            summary = self.t(
                "day.totals",
                date=report.date,
                bills=t.bills,
                vouchers=t.vouchers,
                value=format_yuan(t.value_fen),
                returned=t.returned_vouchers,
                rvalue=format_yuan(t.returned_value_fen),
                net=format_yuan(t.net_value_fen),
                cash=format_yuan(t.bill_fen - t.value_fen),
                back=format_yuan(cash_back_fen(report)),
            )
            for till in till_totals(report):
                summary += "\n" + self.t(
                    "day.till",
                    name=terminal_name(
                        till.terminal_id, names.get(till.terminal_id, ""), self.lang
                    ),
                    bills=till.bills,
                    vouchers=till.vouchers,
                    value=format_yuan(till.value_fen),
                    cash=format_yuan(till.cash_fen),
                    returned=till.returned,
                    back=format_yuan(till.cash_back_fen),
                )
        self.query_one("#totals", Static).update(summary)
        export = self.query_one("#export", Input)
        suggestion = str(self.till.files_dir / "exports" / f"day-{report.date}.csv")
        if not export.value or export.value == self._default_export:
            export.value = suggestion
        self._default_export = suggestion

    def selected(self) -> DayRedemption | None:
        """The bill of the selected row (a refund row: the bill it refunded)."""
        table = self.query_one(DataTable)
        if self.report is None or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
        wanted = int(key[1:]) if key.startswith("r") else int(key.partition(":")[2] or 0)
        return next((r for r in self.report.redemptions if r.redemption_id == wanted), None)

    def action_reprint(self) -> None:
        """F8: the selected row's receipt again, built from the day list (issue 11 item 6),
        printed at once when a printer is set up."""
        row = self.selected()
        if row is None:
            self.till.tell(self.t("day.select"), title=self.t("title.input"), severity="error")
            return
        from terminal.screens.receipt import ReceiptScreen

        session = self.till.session
        data = reprint_of(
            row,
            session.merchant.name if session else "",
            self._own_name().get(row.terminal.id, ""),
        )
        self.app.push_screen(ReceiptScreen(data, auto_print=True))

    def action_shift(self) -> None:
        from terminal.screens.shift import ShiftScreen

        self.app.push_screen(ShiftScreen(), callback=lambda _: self._refresh_now())

    def _own_name(self) -> dict[int, str]:
        session = self.till.session
        if session is None or not session.terminal.label:
            return {}
        return {session.terminal.id: session.terminal.label}

    def action_export(self) -> None:
        if self.report is None:
            self.till.tell(self.t("day.loading"), severity="warning")
            return
        target = self.query_one("#export", Input).value.strip()
        if not target:
            target = str(self.till.files_dir / "exports" / f"day-{self.report.date}.csv")
        try:
            path = write_text_file(Path(target), day_csv(self.report, self.lang), bom=True)
        except OSError as exc:
            self.till.tell(str(exc), title=self.t("title.error"), severity="error")
            return
        self.till.tell(self.t("day.exported", path=path), title=self.t("title.ok"))
