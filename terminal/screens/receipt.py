"""The customer's receipt, as the plain text a till printer prints; F7 saves it to a file."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from terminal.client import Redemption
from terminal.documents import receipt_text, safe_file_part, write_text_file
from terminal.i18n import tr

if TYPE_CHECKING:
    from terminal.app import TerminalApp


class ReceiptScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f7", "save", "save", id="save"),
        Binding("escape,enter", "close", "close", id="close"),
    ]

    def __init__(self, redemption: Redemption) -> None:
        super().__init__()
        self.redemption = redemption
        self.saved_to: str = ""

    @property
    def till(self) -> TerminalApp:
        return cast("TerminalApp", self.app)

    @property
    def text(self) -> str:
        return receipt_text(self.redemption, self.till.lang)

    def compose(self) -> ComposeResult:
        with Vertical(id="receipt-box"):
            with VerticalScroll(id="receipt-scroll"):
                yield Static(self.text, id="receipt-text", markup=False)
            yield Static(tr("receipt.hint", self.till.lang), id="receipt-hint", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.till.localize_bindings(self)

    def action_save(self) -> None:
        r = self.redemption
        name = f"receipt-{r.redemption_id}-{safe_file_part(r.receipt_no)}.txt"
        try:
            path = write_text_file(self.till.files_dir / "receipts" / name, self.text)
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
