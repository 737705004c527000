"""The shift (交班), from the day list (F4, then F6): open a shift on this till, see what it
holds so far, close it (the summary is kept to print again), print it (issue 11 item 6)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from client.wire import DayReport
from terminal.documents import local_time
from terminal.i18n import describe_error, tr
from terminal.printing import (
    PAPER_COLUMNS,
    PrinterInvalid,
    PrinterSettings,
    PrintFailed,
    print_text,
)
from terminal.shift import (
    Shift,
    ShiftState,
    ShiftSummary,
    load_state,
    save_state,
    shift_dates,
    shift_summary,
    shift_text,
    state_path,
)

if TYPE_CHECKING:
    from terminal.app import TerminalApp


@dataclass
class Summed(Message):
    summary: ShiftSummary | None
    closing: bool
    error: BaseException | None = None


@dataclass
class ShiftPrinted(Message):
    error: str = ""


class ShiftScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f9", "shift_key", "shift", id="shift"),
        Binding("f7", "print", "print", id="print"),
        Binding("escape", "close", "close", id="close"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.state = ShiftState()
        self.summary: ShiftSummary | None = None
        self.busy = False

    @property
    def till(self) -> TerminalApp:
        return cast("TerminalApp", self.app)

    def t(self, key: str, **values: object) -> str:
        return tr(key, self.till.lang, **values)

    @property
    def path(self) -> Path:
        return state_path(self.till.config_path)

    def compose(self) -> ComposeResult:
        with Vertical(id="shift-box"):
            with VerticalScroll(id="shift-scroll"):
                yield Static(id="shift-text", markup=False)
            yield Static(id="shift-hint", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.till.localize_bindings(self)
        self.query_one("#shift-box").border_title = self.t("key.shift")
        self.state = load_state(self.path)
        shift = self._mine(self.state.open) or self._mine(self.state.last)
        if shift is not None:  # the open shift so far, or the last one closed
            self._hint(self.t("shift.loading"))
            self.run_sum(shift, closing=False)
        else:
            self._show_none()

    def _mine(self, shift: Shift | None) -> Shift | None:
        """A shift of this till (a re-paired till starts afresh)."""
        config = self.till.config
        if shift is None or config is None or shift.terminal_id != config.terminal_id:
            return None
        return shift

    def _show_none(self) -> None:
        self.summary = None
        self.query_one("#shift-text", Static).update(self.t("shift.none"))
        self._hint("")

    def _hint(self, text: str) -> None:
        self.query_one("#shift-hint", Static).update(text)

    # -- open / close -------------------------------------------------------------------

    def action_shift_key(self) -> None:
        if self.busy or self.till.config is None:
            return
        shift = self._mine(self.state.open)
        if shift is None:
            self._open()
        else:
            self.run_sum(shift, closing=True)

    def _open(self) -> None:
        config = self.till.config
        assert config is not None
        now = self.till.clock()
        shift = Shift(config.terminal_id, now.isoformat())
        state = ShiftState(open=shift, last=self.state.last)
        try:
            save_state(self.path, state)
        except OSError as exc:
            self.till.tell(str(exc), title=self.t("title.error"), severity="error")
            return
        self.state = state
        self.till.tell(self.t("shift.opened_now", at=local_time(shift.opened_at)))
        self.run_sum(shift, closing=False)

    @work(exclusive=True, group="shift", exit_on_error=False)
    async def run_sum(self, shift: Shift, closing: bool) -> None:
        """The day lists of the dates the shift spans, summed for this till."""
        self.busy = True
        client = self.till.client
        until = datetime.fromisoformat(shift.closed_at) if shift.closed_at else self.till.clock()
        if client is None:
            self.post_message(Summed(None, closing))
            return
        wait = self.till.config.answer_wait_s if self.till.config else 10.0
        try:
            opened = datetime.fromisoformat(shift.opened_at)
            reports: list[DayReport] = []
            for day in shift_dates(opened, until):
                reports.append(await asyncio.wait_for(client.day(day), wait))
        except Exception as exc:
            self.post_message(Summed(None, closing, exc))
            return
        if closing:
            shift = replace(shift, closed_at=until.isoformat())
        self.post_message(Summed(shift_summary(shift, reports, until), closing))

    @on(Summed)
    def _summed(self, message: Summed) -> None:
        self.busy = False
        if message.summary is None:
            if message.error is not None:
                _, title, words = describe_error(message.error, self.till.lang)
                self.till.tell(words, title=title, severity="error")
                self._hint(words)
            return
        summary = message.summary
        if message.closing:  # closed only once its summary is in
            closed = Shift(summary.terminal_id, summary.opened_at, summary.until)
            state = ShiftState(open=None, last=closed)
            try:
                save_state(self.path, state)
            except OSError as exc:
                self.till.tell(str(exc), title=self.t("title.error"), severity="error")
                return
            self.state = state
            self.till.tell(self.t("shift.closed_now", at=local_time(summary.until)))
        self.summary = summary
        self.query_one("#shift-text", Static).update(self.text(32))
        self._hint(self.t("shift.hint.closed" if summary.closed else "shift.hint.open"))

    def text(self, width: int) -> str:
        assert self.summary is not None
        session = self.till.session
        return shift_text(
            self.summary,
            session.merchant.name if session else "",
            session.terminal.label if session else "",
            self.till.lang,
            width=width,
        )

    # -- print --------------------------------------------------------------------------

    def action_print(self) -> None:
        if self.summary is None or self.busy:
            return
        config = self.till.config
        if config is None or not self.till.has_printer:
            self.till.tell(self.t("receipt.print_failed", reason="printer: none"), severity="error")
            return
        try:
            settings = config.printer_settings
        except PrinterInvalid as exc:
            self.till.tell(str(exc), title=self.t("title.error"), severity="error")
            return
        self.busy = True
        self.run_print(settings, self.text(PAPER_COLUMNS[config.paper_mm]))

    @work(exclusive=True, group="print", exit_on_error=False)
    async def run_print(self, settings: PrinterSettings, text: str) -> None:
        try:
            await asyncio.to_thread(print_text, settings, text, self.till.printer_factory)
        except PrintFailed as exc:
            self.post_message(ShiftPrinted(str(exc)))
            return
        self.post_message(ShiftPrinted())

    @on(ShiftPrinted)
    def _printed(self, message: ShiftPrinted) -> None:
        self.busy = False
        if message.error:
            text = self.t("receipt.print_failed", reason=message.error)
            self.till.tell(text, title=self.t("title.error"), severity="error")
            self._hint(text)
            return
        self.till.tell(self.t("receipt.printed"), title=self.t("title.ok"))

    def action_close(self) -> None:
        self.workers.cancel_group(self, "shift")
        self.dismiss(None)
