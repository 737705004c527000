"""Refund: find the redemption by receipt number or redemption id, refund all (bill after
= 0) or part, and see which vouchers went back to the citizen (rules F1-F3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Input, Label, Static

from shared.errors import InvalidAmount, InvalidRequest
from shared.money import format_yuan, parse_yuan
from shared.rules import normalise_receipt_no
from terminal.client import OutcomeUnknown, Redemption, Unreachable, new_key
from terminal.documents import format_ids
from terminal.i18n import describe_error, status_text
from terminal.screens.base import TillScreen
from terminal.widgets.status_bar import StatusBar


@dataclass(frozen=True, slots=True)
class PendingRefund:
    key: str
    redemption_id: int
    remaining_bill_fen: int


@dataclass
class Found(Message):
    redemption: Redemption


@dataclass
class Refunded(Message):
    redemption: Redemption
    returned: tuple[int, ...]


@dataclass
class RefundFailed(Message):
    error: BaseException
    pending: PendingRefund | None


class RefundScreen(TillScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f9", "refund", "confirm", id="confirm"),
        Binding("f6", "new", "new", id="new"),
        Binding("f7", "receipt", "receipt", id="receipt"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.found: Redemption | None = None
        self.pending: PendingRefund | None = None
        self.returned: tuple[int, ...] = ()
        self.busy = False
        self.outcome = ""

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with Vertical(id="form"):
            with Horizontal(classes="row"):
                yield Label(self.t("refund.receipt"), classes="label")
                yield Input(id="find-receipt", compact=True, max_length=64)
            with Horizontal(classes="row"):
                yield Label(self.t("refund.id"), classes="label")
                yield Input(id="find-id", compact=True, max_length=19, restrict=r"[0-9]*")
        yield Static(id="found", markup=False)
        with Horizontal(classes="row", id="remaining-row"):
            yield Label(self.t("refund.remaining"), classes="label")
            yield Input(
                placeholder=self.t("refund.remaining.placeholder"),
                id="remaining",
                compact=True,
                max_length=16,
            )
        yield Static(self.t("refund.hint"), id="result", markup=False)
        yield Static(id="returned", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#find-receipt", Input).focus()

    # -- find ---------------------------------------------------------------------------

    @on(Input.Submitted, "#find-receipt")
    def _find_by_receipt(self, event: Input.Submitted) -> None:
        try:
            receipt_no = normalise_receipt_no(event.value)
        except InvalidRequest:
            self.till.tell(self.t("input.find"), title=self.t("title.input"), severity="error")
            return
        if self.need_client() is not None:
            self.run_find(receipt_no, None)

    @on(Input.Submitted, "#find-id")
    def _find_by_id(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text.isdigit() or int(text) <= 0:
            self.till.tell(self.t("input.id"), title=self.t("title.input"), severity="error")
            return
        if self.need_client() is not None:
            self.run_find(None, int(text))

    @work(exclusive=True, group="find", exit_on_error=False)
    async def run_find(self, receipt_no: str | None, redemption_id: int | None) -> None:
        client = self.client
        assert client is not None
        try:
            if redemption_id is not None:
                found = await client.get_redemption(redemption_id)
            else:
                assert receipt_no is not None
                found = await client.find_by_receipt(receipt_no)
        except Exception as exc:
            self.post_message(RefundFailed(exc, None))
            return
        self.post_message(Found(found))

    @on(Found)
    def _found(self, message: Found) -> None:
        self.show_found(message.redemption)
        self.query_one("#remaining", Input).focus()

    def show_found(self, r: Redemption) -> None:
        self.found, self.pending, self.returned = r, None, ()
        self.query_one("#found", Static).update(
            self.t(
                "refund.found",
                id=r.redemption_id,
                receipt=r.receipt_no,
                bill=format_yuan(r.current_bill_fen),
                n=r.voucher_count,
                live=r.live_voucher_count,
                status=status_text(r.status, r.settled, self.lang),
            )
        )
        self.query_one("#returned", Static).update("")
        self._say(self.t("refund.hint"), "found")

    @on(Input.Submitted, "#remaining")
    def _remaining_entered(self) -> None:
        # moving money takes the explicit key: Enter only says which one
        self._say(self.t("refund.press_f9"), self.outcome)

    # -- refund -------------------------------------------------------------------------

    def action_refund(self) -> None:
        if self.busy:
            return
        if self.found is None:
            self.till.tell(self.t("input.find"), title=self.t("title.input"), severity="error")
            self.query_one("#find-receipt", Input).focus()
            return
        text = self.query_one("#remaining", Input).value.strip() or "0"
        try:
            remaining = parse_yuan(text, field="remaining_bill")
        except InvalidAmount:
            self.till.tell(self.t("input.remaining"), title=self.t("title.input"), severity="error")
            self.query_one("#remaining", Input).focus()
            return
        if self.need_client() is None:
            return
        p = self.pending
        if p is None or (p.redemption_id, p.remaining_bill_fen) != (
            self.found.redemption_id,
            remaining,
        ):
            p = PendingRefund(new_key(), self.found.redemption_id, remaining)
        self.pending = p  # rule U7: the same refund keeps its key until it has an answer
        self.busy = True
        self._say(self.t("refund.working"), "working")
        self.run_refund(p, self.found.returned_voucher_ids)

    @work(group="refund", exit_on_error=False)
    async def run_refund(self, pending: PendingRefund, before: tuple[int, ...]) -> None:
        client = self.client
        assert client is not None
        try:
            after = await client.refund(
                pending.redemption_id, pending.remaining_bill_fen, key=pending.key
            )
        except Exception as exc:
            self.post_message(RefundFailed(exc, pending))
            return
        latest = max(after.refunds, key=lambda f: f.refund_id, default=None)
        if after.replayed or latest is None:
            returned = tuple(v for v in after.returned_voucher_ids if v not in before)
        else:
            returned = latest.voucher_ids
        self.post_message(Refunded(after, returned))

    @on(Refunded)
    def _refunded(self, message: Refunded) -> None:
        self.busy = False
        self.show_found(message.redemption)
        self.returned = message.returned
        if message.returned:
            text = self.t("refund.ok", n=len(message.returned))
            self.query_one("#returned", Static).update(
                self.t("refund.returned", ids=format_ids(message.returned, limit=20))
            )
        else:
            text = self.t("refund.none")
        self._say(text, "ok")
        self.till.tell(text, title=self.t("title.ok"))

    @on(RefundFailed)
    def _refund_failed(self, message: RefundFailed) -> None:
        self.busy = False
        exc = message.error
        self.fail(exc)
        _, _, words = describe_error(exc, self.lang)
        if isinstance(exc, OutcomeUnknown):
            self._say(self.t("refund.unknown"), "unknown")  # keep self.pending and its key
            return
        if message.pending is not None:
            self.pending = None
        self._say(words, "offline" if isinstance(exc, Unreachable) else "refused")

    def action_receipt(self) -> None:
        if self.found is None:
            return
        from terminal.screens.receipt import ReceiptScreen

        self.app.push_screen(ReceiptScreen(self.found))

    def action_new(self) -> None:
        if self.busy:
            return
        if self.outcome == "unknown":
            # an unknown outcome must be resolved first (F9 sends the same refund again)
            self.till.tell(
                self.t("refund.unknown"), title=self.t("title.unknown"), severity="error"
            )
            return
        for name in ("#find-receipt", "#find-id", "#remaining"):
            self.query_one(name, Input).value = ""
        self.found, self.pending, self.returned = None, None, ()
        self.query_one("#found", Static).update("")
        self.query_one("#returned", Static).update("")
        self._say(self.t("refund.hint"), "")
        self.query_one("#find-receipt", Input).focus()

    def _say(self, text: str, outcome: str) -> None:
        self.outcome = outcome
        result = self.query_one("#result", Static)
        result.update(text)
        result.set_classes(f"-{outcome}" if outcome else "")
