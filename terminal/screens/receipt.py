"""The customer's receipt, as the till printer prints it: F7 prints it on the receipt
printer set up in F5 (without one, F7 saves it as a text file), F8 saves it. After a redeem
with a printer set up it is printed at once; a reprint from the day list is marked as one
(issue 11 item 6)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from client.wire import Redemption
from terminal.documents import (
    ReceiptData,
    TicketReceiptData,
    receipt_of,
    receipt_text,
    safe_file_part,
    ticket_receipt_text,
    write_text_file,
)
from terminal.i18n import tr
from terminal.printing import (
    PAPER_COLUMNS,
    PrinterInvalid,
    PrinterSettings,
    PrintFailed,
    print_text,
)

if TYPE_CHECKING:
    from terminal.app import TerminalApp


@dataclass
class Printed(Message):
    error: str = ""


class PrintoutScreen(ModalScreen[None]):
    """A document the till prints (F7; without a printer F7 saves it), saves (F8) and shows:
    a voucher receipt or a ticket use's receipt."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f7", "print", "print", id="print"),
        Binding("f8", "save", "save", id="save"),
        Binding("escape,enter", "close", "close", id="close"),
    ]

    def __init__(self, *, auto_print: bool = False) -> None:
        super().__init__()
        self.auto_print = auto_print
        self.saved_to: str = ""
        self.printed = 0
        self.printing = False

    @property
    def till(self) -> TerminalApp:
        return cast("TerminalApp", self.app)

    @property
    def text(self) -> str:
        return self.text_of_width(None)

    def text_of_width(self, width: int | None) -> str:
        """The document, ``width`` columns wide (None: the 58 mm paper's)."""
        raise NotImplementedError

    def file_name(self) -> str:
        raise NotImplementedError

    def paper_text(self) -> str:
        """The receipt as wide as the printer's paper (32 or 48 columns)."""
        config = self.till.config
        return self.text_of_width(PAPER_COLUMNS[config.paper_mm if config else 58])

    def compose(self) -> ComposeResult:
        with Vertical(id="receipt-box"):
            with VerticalScroll(id="receipt-scroll"):
                yield Static(self.text, id="receipt-text", markup=False)
            yield Static(tr("receipt.hint", self.till.lang), id="receipt-hint", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.till.localize_bindings(self)
        if self.auto_print and self.till.has_printer:
            self.action_print()

    def action_print(self) -> None:
        if self.printing:
            return
        if not self.till.has_printer:
            self.action_save()  # no printer at this till: the text file is the printout
            return
        config = self.till.config
        assert config is not None
        try:
            settings = config.printer_settings
        except PrinterInvalid as exc:
            self._printed(Printed(str(exc)))
            return
        self.printing = True
        self._hint(tr("receipt.printing", self.till.lang))
        self.run_print(settings, self.paper_text())

    @work(exclusive=True, group="print", exit_on_error=False)
    async def run_print(self, settings: PrinterSettings, text: str) -> None:
        try:  # the printer's socket or device blocks: not on the event loop
            await asyncio.to_thread(print_text, settings, text, self.till.printer_factory)
        except PrintFailed as exc:
            self.post_message(Printed(str(exc)))
            return
        self.post_message(Printed())

    @on(Printed)
    def _printed(self, message: Printed) -> None:
        self.printing = False
        lang = self.till.lang
        if message.error:
            text = tr("receipt.print_failed", lang, reason=message.error)
            self._hint(text)
            self.till.tell(text, title=tr("title.error", lang), severity="error")
            return
        self.printed += 1
        self._hint(tr("receipt.printed", lang))
        self.till.tell(tr("receipt.printed", lang), title=tr("title.ok", lang))

    def _hint(self, text: str) -> None:
        self.query_one("#receipt-hint", Static).update(text)

    def action_save(self) -> None:
        try:
            path = write_text_file(self.till.files_dir / "receipts" / self.file_name(), self.text)
        except OSError as exc:
            self.till.tell(str(exc), title=tr("title.error", self.till.lang), severity="error")
            return
        self.saved_to = str(path)
        self.till.tell(
            tr("receipt.saved", self.till.lang, path=path),
            title=tr("title.ok", self.till.lang),
        )

    def action_close(self) -> None:
        self.dismiss(None)


class ReceiptScreen(PrintoutScreen):
    """A voucher redemption's receipt."""

    def __init__(self, receipt: Redemption | ReceiptData, *, auto_print: bool = False) -> None:
        super().__init__(auto_print=auto_print)
        self.redemption: Redemption | None = receipt if isinstance(receipt, Redemption) else None
        self.data = receipt_of(receipt) if isinstance(receipt, Redemption) else receipt

    def text_of_width(self, width: int | None) -> str:
        if width is None:
            return receipt_text(self.data, self.till.lang)
        return receipt_text(self.data, self.till.lang, width=width)

    def file_name(self) -> str:
        r = self.data
        return f"receipt-{r.redemption_id}-{safe_file_part(r.receipt_no)}.txt"


class TicketReceiptScreen(PrintoutScreen):
    """The receipt of a house ticket's use at a sales office (issue 13, rules T5-T8): the
    same keys, printer and files as a voucher receipt."""

    def __init__(self, receipt: TicketReceiptData, *, auto_print: bool = False) -> None:
        super().__init__(auto_print=auto_print)
        self.data = receipt

    def text_of_width(self, width: int | None) -> str:
        if width is None:
            return ticket_receipt_text(self.data, self.till.lang)
        return ticket_receipt_text(self.data, self.till.lang, width=width)

    def file_name(self) -> str:
        r = self.data
        return f"ticket-use-{r.use_id}-{safe_file_part(r.contract_no)}.txt"
