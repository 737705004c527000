"""Refund: find the redemption by receipt number or redemption id, type the amount refunded,
see the money (the bill left, the vouchers returned and kept, the cash to hand back) and
only then confirm (rules F1-F3; issue 11 item 5). A manager approves first when the till's
setting asks for it. The wait and an unknown outcome work as for a redeem (item 4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Input, Label, Static

from client.http import OutcomeUnknown, Unreachable
from client.till import StaffSession, new_key
from client.wire import Redemption
from shared.campaign import Campaign
from shared.errors import AlreadyRefunded, InvalidAmount, InvalidRequest, VoucherError
from shared.money import format_yuan, parse_yuan
from shared.rules import normalise_receipt_no
from terminal.documents import format_ids
from terminal.i18n import describe_error, status_text
from terminal.refunds import RefundPreview, handed_back_fen, preview_refund, shown_status
from terminal.screens.base import WaitingScreen
from terminal.widgets.status_bar import StatusBar


@dataclass(frozen=True, slots=True)
class PendingRefund:
    """A refund sent without a known outcome: F9 sends the same again with the same key
    (rule U7), which the server answers with the first result if it was done."""

    key: str
    redemption_id: int
    remaining_bill_fen: int
    preview: RefundPreview
    before: Redemption
    approval: str = field(default="", repr=False)
    """The manager's approval of this refund (bound to its key), sent with each try (never
    stored)."""


@dataclass
class Found(Message):
    redemption: Redemption
    campaign: Campaign | None


@dataclass
class Refunded(Message):
    redemption: Redemption
    returned: tuple[int, ...]
    key: str = ""
    handed_back_fen: int = 0
    refund_fen: int = 0


@dataclass
class RefundFailed(Message):
    error: BaseException
    pending: PendingRefund | None


class RefundScreen(WaitingScreen):
    WORKER_GROUP = "refund"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f9", "refund", "confirm", id="confirm"),
        Binding("f8", "full", "full", id="full"),
        Binding("f6", "new", "new", id="new"),
        Binding("f7", "receipt", "receipt", id="receipt"),
        Binding("escape", "stop_waiting", "stop", id="stop"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.found: Redemption | None = None
        self.campaign: Campaign | None = None
        self.preview: RefundPreview | None = None
        self.pending: PendingRefund | None = None
        self.approved_by: StaffSession | None = None
        self.server_wants_manager = False
        """The server refused a refund for want of a manager's approval (the shop's setting
        changed since this till signed in): F9 asks for one from then on."""
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
        with Horizontal(classes="row", id="amount-row"):
            yield Label(self.t("refund.amount"), classes="label")
            yield Input(
                placeholder=self.t("refund.amount.placeholder"),
                id="amount",
                compact=True,
                max_length=16,
            )
        yield Static(id="preview", markup=False)
        yield Static(self.t("refund.hint"), id="result", markup=False)
        yield Static(id="returned", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#preview").display = False
        self.query_one("#find-receipt", Input).focus()

    # -- find ---------------------------------------------------------------------------

    @on(Input.Submitted, "#find-receipt")
    def _find_by_receipt(self, event: Input.Submitted) -> None:
        try:
            receipt_no = normalise_receipt_no(event.value)
        except InvalidRequest:
            self.till.tell(self.t("input.find"), title=self.t("title.input"), severity="error")
            return
        if self._may_leave() and self.need_client() is not None:
            self.run_find(receipt_no, None)

    @on(Input.Submitted, "#find-id")
    def _find_by_id(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text.isdigit() or int(text) <= 0:
            self.till.tell(self.t("input.id"), title=self.t("title.input"), severity="error")
            return
        if self._may_leave() and self.need_client() is not None:
            self.run_find(None, int(text))

    def _may_leave(self) -> bool:
        """Another bill only once this one's refund has a known outcome."""
        if self.busy or self.pending is not None:
            self.till.tell(
                self.t("refund.unknown"), title=self.t("title.unknown"), severity="error"
            )
            return False
        return True

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
        try:  # the campaign's rules, to show what a refund does (rule F2)
            campaign: Campaign | None = await client.campaign(found.campaign_id)
        except Exception:
            campaign = None  # said when the cashier asks for a preview
        self.post_message(Found(found, campaign))

    @on(Found)
    def _found(self, message: Found) -> None:
        self.campaign = message.campaign
        self.show_found(message.redemption)
        amount = self.query_one("#amount", Input)
        amount.value = ""
        amount.focus()

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
                status=status_text(shown_status(r), r.settled, self.lang),
            )
        )
        self.query_one("#returned", Static).update("")
        self._show_preview(None)
        self.say(self.t("refund.hint"), "found")

    # -- the money, before confirming ----------------------------------------------------

    @on(Input.Submitted, "#amount")
    def _amount_entered(self) -> None:
        self.check_amount()

    @on(Input.Changed, "#amount")
    def _amount_changed(self, event: Input.Changed) -> None:
        # a preview is for one amount: another amount needs another look before F9
        p = self.preview
        if p is None or self.pending is not None:
            return
        try:
            same = parse_yuan(event.value, positive=True) == p.refund_fen
        except InvalidAmount:
            same = False
        if not same:
            self._show_preview(None)
            self.say(self.t("refund.hint"), "found")

    def action_full(self) -> None:
        """F8: the whole current bill, shown like any amount before it is confirmed."""
        if self.found is None or self.busy or self.pending is not None:
            return
        self.query_one("#amount", Input).value = format_yuan(self.found.current_bill_fen)
        self.check_amount()

    def check_amount(self) -> RefundPreview | None:
        """Read the amount refunded and show what it does; nothing is sent."""
        r = self.found
        if r is None:
            self.till.tell(self.t("input.find"), title=self.t("title.input"), severity="error")
            self.query_one("#find-receipt", Input).focus()
            return None
        if self.pending is not None:
            return self.pending.preview  # the amount sent stays until its outcome is known
        field = self.query_one("#amount", Input)
        if r.live_voucher_count == 0:  # nothing left to give back (the server would say so)
            self._show_preview(None)
            self.say(self.fail_words(AlreadyRefunded()), "refused")
            return None
        text = field.value.strip()
        if not text:  # an empty field is not a full refund (issue 11 item 5)
            self.till.tell(
                self.t("input.refund.empty"), title=self.t("title.input"), severity="error"
            )
            field.focus()
            return None
        try:
            refund_fen = parse_yuan(text, positive=True, field="refund")
        except InvalidAmount:
            self.till.tell(self.t("input.refund"), title=self.t("title.input"), severity="error")
            field.focus()
            return None
        if self.campaign is None:
            self.till.tell(self.t("input.campaign"), title=self.t("title.error"), severity="error")
            return None
        try:
            preview = preview_refund(r, self.campaign, refund_fen)
        except VoucherError as exc:
            self._show_preview(None)
            self.fail(exc)
            field.focus()
            return None
        self._show_preview(preview)
        key = "refund.press_f9.manager" if self._needs_manager else "refund.press_f9"
        self.say(self.t(key), "preview")
        return preview

    def _show_preview(self, p: RefundPreview | None) -> None:
        self.preview = p
        panel = self.query_one("#preview", Static)
        panel.display = p is not None
        if p is None:
            panel.update("")
            return
        title = self.t("refund.preview.title")
        if p.full:
            title += " · " + self.t("refund.preview.full")
        if self.pending is not None and self.outcome in ("unknown", "working"):
            title = self.t("refund.preview.unknown")  # nothing may look done
        panel.border_title = title
        panel.update(
            self.t(
                "refund.preview",
                refund=format_yuan(p.refund_fen),
                remaining=format_yuan(p.remaining_bill_fen),
                bill=format_yuan(p.bill_fen),
                returned=p.returned,
                rvalue=format_yuan(p.returned_value_fen),
                kept=p.kept,
                cash=format_yuan(p.hand_back_fen),
                paid=format_yuan(p.cash_paid_fen),
                owed=format_yuan(p.owed_fen),
            )
        )

    # -- refund -------------------------------------------------------------------------

    @property
    def _needs_manager(self) -> bool:
        """The till's own setting, or the shop's (its sign-in says it; the server holds it)."""
        config, session = self.till.config, self.till.session
        return (
            (config is not None and config.refund_needs_manager)
            or (session is not None and session.merchant.refund_needs_manager)
            or self.server_wants_manager
        )

    def action_refund(self) -> None:
        """F9: the first press (or Enter) shows the money; F9 with the money shown for the
        amount typed refunds it. After an unknown outcome F9 sends the same request again."""
        if self.busy:
            return
        if self.pending is not None:
            self._send(self.pending)
            return
        shown = self.preview
        preview = self.check_amount()
        if preview is None or preview != shown:
            return  # now shown: the next F9 confirms it
        if self.need_client() is None:
            return
        if self._needs_manager:
            self._ask_manager(preview)
            return
        self._send_new(preview)

    def _ask_manager(self, preview: RefundPreview) -> None:
        """The manager approves this one refund: its key is chosen now, so that the server's
        approval names it (issue 11 item 5), and the refund is sent with both."""
        from terminal.screens.approval import ManagerApproval, RefundToApprove

        client = self.client
        assert client is not None
        session = self.till.session
        reason = self.t("manager.refund", refund=format_yuan(preview.refund_fen))
        key = new_key()

        def approved(staff: StaffSession | None) -> None:
            if staff is None:
                self.say(self.t("manager.cancelled"), "preview")
                return
            if self.preview != preview or self.pending is not None or self.busy:
                return  # the form changed meanwhile: look again
            self.approved_by = staff
            self.till.tell(
                self.t("manager.approved", name=staff.username), title=self.t("title.ok")
            )
            self._send_new(preview, staff.token, key)

        refund = RefundToApprove(preview.redemption_id, preview.remaining_bill_fen, key)
        self.app.push_screen(
            ManagerApproval(reason, client, session.merchant.id if session else None, refund),
            callback=approved,
        )

    def _send_new(self, preview: RefundPreview, approval: str = "", key: str = "") -> None:
        assert self.found is not None
        pending = PendingRefund(
            key or new_key(),
            preview.redemption_id,
            preview.remaining_bill_fen,
            preview,
            self.found,
            approval,
        )
        self._send(pending)

    def _send(self, pending: PendingRefund) -> None:
        if self.need_client() is None:
            return
        self.pending = pending  # rule U7: the same refund keeps its key until it has an answer
        self.busy = True
        self.say(self.t("refund.working", s=f"{self.answer_wait:g}"), "working")
        self._show_preview(pending.preview)
        self.run_refund(pending)

    @work(group="refund", exit_on_error=False)
    async def run_refund(self, pending: PendingRefund) -> None:
        client = self.client
        assert client is not None
        try:
            after = await self.answer_within(
                client.refund(
                    pending.redemption_id,
                    pending.remaining_bill_fen,
                    key=pending.key,
                    approval=pending.approval,
                )
            )
        except TimeoutError:
            self.post_message(RefundFailed(OutcomeUnknown(pending.key, "no answer"), pending))
            return
        except Exception as exc:
            self.post_message(RefundFailed(exc, pending))
            return
        before = pending.before
        latest = max(after.refunds, key=lambda f: f.refund_id, default=None)
        if after.replayed or latest is None:
            returned = tuple(
                v for v in after.returned_voucher_ids if v not in before.returned_voucher_ids
            )
        else:
            returned = latest.voucher_ids
        self.post_message(
            Refunded(
                after,
                returned,
                pending.key,
                handed_back_fen(before, after),
                pending.preview.refund_fen,
            )
        )

    def outcome_unknown(self) -> RefundFailed:
        """Esc while waiting: the outcome is unknown, the key is kept (F9)."""
        assert self.pending is not None
        return RefundFailed(OutcomeUnknown(self.pending.key), self.pending)

    @on(Refunded)
    def _refunded(self, message: Refunded) -> None:
        if self.pending is None or self.pending.key != message.key:
            return  # an answer to a request already settled
        self.busy = False
        self.approved_by = None
        self.show_found(message.redemption)
        self.query_one("#amount", Input).value = ""
        self.returned = message.returned
        values = {
            "refund": format_yuan(message.refund_fen),
            "n": len(message.returned),
            "kept": message.redemption.live_voucher_count,
            "cash": format_yuan(message.handed_back_fen),
        }
        if message.returned:
            text = self.t("refund.ok", **values)
            self.query_one("#returned", Static).update(
                self.t("refund.returned", ids=format_ids(message.returned, limit=20))
            )
        else:
            text = self.t("refund.none", **values)  # still a refund: said as one (item 5)
        self.say(text, "ok")
        self.till.tell(text, title=self.t("title.ok"))

    @on(RefundFailed)
    def _refund_failed(self, message: RefundFailed) -> None:
        exc = message.error
        if message.pending is not None:
            if not self.busy or self.pending is None or self.pending.key != message.pending.key:
                return  # already settled (Esc, then the cancelled request's own answer)
            self.busy = False
        self.fail(exc)
        code, _, words = describe_error(exc, self.lang)
        if code in ("manager_approval_required", "approval_for_another_refund"):
            # nothing was refunded (the server checks before it writes): F9 asks a manager
            self.server_wants_manager = True
            self.approved_by = None
        if isinstance(exc, OutcomeUnknown):
            self.say(self.t("refund.unknown"), "unknown")  # keep self.pending and its key
            self._show_preview(self.pending.preview if self.pending else None)
            return
        if message.pending is not None:
            self.pending = None
            self._show_preview(self.preview)
        self.say(words, "offline" if isinstance(exc, Unreachable) else "refused")

    def action_receipt(self) -> None:
        if self.found is None:
            return
        from terminal.screens.receipt import ReceiptScreen

        self.app.push_screen(ReceiptScreen(self.found))

    def action_new(self) -> None:
        if self.busy:
            return
        if self.pending is not None:
            # an unknown outcome must be resolved first (F9 sends the same refund again)
            self.till.tell(
                self.t("refund.unknown"), title=self.t("title.unknown"), severity="error"
            )
            return
        for name in ("#find-receipt", "#find-id", "#amount"):
            self.query_one(name, Input).value = ""
        self.found, self.campaign, self.pending, self.returned = None, None, None, ()
        self.query_one("#found", Static).update("")
        self.query_one("#returned", Static).update("")
        self._show_preview(None)
        self.say(self.t("refund.hint"), "")
        self.query_one("#find-receipt", Input).focus()

    def fail_words(self, exc: BaseException) -> str:
        self.fail(exc)
        return describe_error(exc, self.lang)[2]
