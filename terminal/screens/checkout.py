"""Checkout: bill, receipt number, scan; the quote in large digits; lower the count;
confirm; a clear success or the refusal in plain words (rules U1-U7)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Input, Label, Static

from client.http import ApiError, OutcomeUnknown, Unreachable
from client.till import new_key
from client.wire import Quote, Redemption
from shared.errors import InvalidAmount, InvalidRequest
from shared.money import format_yuan, parse_yuan
from shared.rules import normalise_receipt_no
from terminal.i18n import REFRESH_QR_CODES, describe_error
from terminal.screens.base import SendingScreen, sending_bindings
from terminal.widgets.amount import Amount
from terminal.widgets.count_stepper import CountStepper
from terminal.widgets.status_bar import StatusBar


def _now_hms() -> str:
    return datetime.now().strftime("%H:%M:%S")  # the till's own clock, for the cashier


class ScanInput(Input):
    """A USB/Bluetooth scanner types the code and Enter; a paste submits at once."""

    def on_paste(self, event: events.Paste) -> None:
        # Input's own handler inserts the text right after this one; then submit it
        self.call_later(self._submit_pasted)

    def _submit_pasted(self) -> None:
        if self.value.strip():
            self.post_message(self.Submitted(self, self.value, None))


@dataclass(frozen=True, slots=True)
class PendingRedeem:
    """A redeem sent without a known outcome: the same body goes again with the same key
    (rule U7), or the key is used to ask the server what happened."""

    key: str
    token: str
    bill_fen: int
    receipt_no: str
    count: int


@dataclass
class QuoteReady(Message):
    quote: Quote
    token: str


@dataclass
class QuoteFailed(Message):
    error: BaseException
    token: str = ""


@dataclass
class Redeemed(Message):
    redemption: Redemption
    key: str = ""


@dataclass
class RedeemFailed(Message):
    error: BaseException
    pending: PendingRedeem


class CheckoutScreen(SendingScreen[Quote, PendingRedeem, Redemption]):
    WORKER_GROUP = "redeem"
    BINDINGS: ClassVar[list[BindingType]] = sending_bindings(
        Binding("f7", "receipt", "receipt", id="receipt")
    )

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with Vertical(id="form"):
            with Horizontal(classes="row"):
                yield Label(self.t("checkout.bill"), classes="label")
                yield Input(
                    placeholder=self.t("checkout.bill.placeholder"),
                    id="bill",
                    compact=True,
                    max_length=16,
                )
            with Horizontal(classes="row"):
                yield Label(self.t("checkout.receipt"), classes="label")
                yield Input(
                    placeholder=self.t("checkout.receipt.placeholder"),
                    id="receipt",
                    compact=True,
                    max_length=64,
                )
            with Horizontal(classes="row"):
                yield Label(self.t("checkout.scan"), classes="label")
                yield ScanInput(
                    placeholder=self.t("checkout.scan.placeholder"), id="scan", compact=True
                )
        with Vertical(id="quote"):
            yield Static(id="customer", markup=False)
            with Horizontal(id="count-row"):
                yield Label(self.t("quote.count"), classes="label")
                yield CountStepper(id="count")
                yield Static(id="each", markup=False)
            with Horizontal(id="amounts"):
                yield Amount(self.t("quote.covered"), id="covered")
                yield Amount(self.t("quote.to_pay"), id="to-pay")
        yield Static(self.t("hint.start"), id="result", markup=False)
        yield Static(id="notice", markup=False)  # notifications, below the quote, never over it
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#quote").border_title = self.t("quote.title")
        self._show_quote()
        self.query_one("#bill", Input).focus()

    # -- reading the form ---------------------------------------------------------------

    def _bill_fen(self) -> int | None:
        try:
            return parse_yuan(self.query_one("#bill", Input).value, positive=True, field="bill")
        except InvalidAmount:
            self.till.tell(self.t("input.bill"), title=self.t("title.input"), severity="error")
            self.query_one("#bill", Input).focus()
            return None

    def _receipt_no(self) -> str | None:
        try:  # rule U4: the same canonical form the server keeps
            return normalise_receipt_no(self.query_one("#receipt", Input).value)
        except InvalidRequest:
            self.till.tell(self.t("input.receipt"), title=self.t("title.input"), severity="error")
            self.query_one("#receipt", Input).focus()
            return None

    @on(Input.Submitted, "#bill")
    def _bill_entered(self) -> None:
        if self._bill_fen() is not None:
            self.query_one("#receipt", Input).focus()

    @on(Input.Submitted, "#receipt")
    def _receipt_entered(self) -> None:
        if self._receipt_no() is not None:
            if self.held_token and self._bill_fen() is not None:
                self._quote_held()
            else:
                self.query_one("#scan", Input).focus()

    @on(Input.Changed, "#bill")
    def _bill_changed(self, event: Input.Changed) -> None:
        # a quote is for one bill: another amount needs a fresh scan
        if self.quote is None or self.busy:
            return
        try:
            same = parse_yuan(event.value, positive=True) == self.quote.bill_fen
        except InvalidAmount:
            same = False
        if not same:
            self._clear_quote()
            self.say(self.t("hint.start"), "")

    @on(Input.Submitted, "#scan")
    def _scanned(self, event: Input.Submitted) -> None:
        token = event.value.strip()
        event.input.value = ""
        if not token:
            if not self.busy:
                self.till.tell(self.t("input.scan"), title=self.t("title.input"), severity="error")
            return
        self.take_scan(token)

    def take_scan(self, text: str) -> None:
        """A scan, from the scanner wherever the focus was, or typed or pasted into the scan
        field (issue 11 item 1). Our code is quoted as soon as the bill and the receipt
        number are in; until then it is held and the cashier is asked for what is missing.
        Anything else scanned is named for what it is (item 8) and changes nothing."""
        code = self.scanned_code(text, unknown_key="result.unknown", busy_key="hint.redeeming")
        if code is None:
            return
        self.held_token = code
        self._clear_quote()
        if not self._bill_ok():
            self.say(self.t("scan.held.bill"), "held")
            if self.query_one("#bill", Input).value.strip():
                self._bill_fen()  # typed but wrong: say so
            self.query_one("#bill", Input).focus()
        elif not self._receipt_ok():
            self.say(self.t("scan.held.receipt"), "held")
            self.query_one("#receipt", Input).focus()
        else:
            self._quote_held()

    def _bill_ok(self) -> bool:
        try:
            parse_yuan(self.query_one("#bill", Input).value, positive=True)
        except InvalidAmount:
            return False
        return True

    def _receipt_ok(self) -> bool:
        try:
            normalise_receipt_no(self.query_one("#receipt", Input).value)
        except InvalidRequest:
            return False
        return True

    def _quote_held(self) -> None:
        token, self.held_token = self.held_token, ""
        bill_fen = self._bill_fen()
        receipt_no = self._receipt_no()
        if bill_fen is None or receipt_no is None or self.need_client() is None:
            return
        self._clear_quote()
        self.say(self.t("hint.quoting"), "working")
        self.run_quote(token, bill_fen, receipt_no)

    # -- quote --------------------------------------------------------------------------

    @work(exclusive=True, group="quote", exit_on_error=False)
    async def run_quote(self, token: str, bill_fen: int, receipt_no: str) -> None:
        client = self.client
        assert client is not None
        try:  # a quote changes nothing: no answer in time is simply no answer
            quote = await asyncio.wait_for(
                client.quote(token, bill_fen, receipt_no),  # rule U4: checked here too
                self.answer_wait,
            )
        except TimeoutError:
            self.post_message(QuoteFailed(Unreachable("no answer in time", maybe_sent=True)))
            return
        except Exception as exc:
            self.post_message(QuoteFailed(exc, token))
            return
        self.post_message(QuoteReady(quote, token))

    @on(QuoteReady)
    def _quote_ready(self, message: QuoteReady) -> None:
        self.show_quote(message.quote, message.token)

    def show_quote(self, quote: Quote, token: str) -> None:
        """Show what the bill allows; the count starts at the most that can be used."""
        self.quote, self.token, self.pending = quote, token, None
        stepper = self.query_one(CountStepper)
        stepper.set_range(quote.usable_count)
        self._show_quote()
        if quote.usable_count == 0:
            self.say(self.t("input.none_usable"), "refused")
        else:
            self.say(self.t("hint.confirm"), "quoted")
            stepper.focus()

    @on(QuoteFailed)
    def _quote_failed(self, message: QuoteFailed) -> None:
        self._clear_quote()  # a refused scan leaves no earlier customer's quote on screen
        self.fail(message.error)
        code, _, text = describe_error(message.error, self.lang)
        self.say(text, "refused")
        if code == "bill_already_redeemed" and message.token:
            # rule U4: the receipt number is taken today; the customer's code is still good,
            # held until the cashier corrects the number (Enter quotes it again, no rescan)
            self.held_token = message.token
            receipt = self.query_one("#receipt", Input)
            receipt.focus()
            receipt.action_select_all()
            return
        self.query_one("#scan", Input).focus()

    def _clear_quote(self) -> None:
        self.quote, self.token = None, ""
        self.query_one(CountStepper).set_range(0)
        self._show_quote()

    @on(CountStepper.Changed)
    def _count_changed(self) -> None:
        self._show_quote()

    def _show_quote(self) -> None:
        """Render the current quote (or nothing); never changes state."""
        q = self.quote
        customer = self.query_one("#customer", Static)
        each = self.query_one("#each", Static)
        covered, to_pay = self.query_one("#covered", Amount), self.query_one("#to-pay", Amount)
        if q is None:
            customer.update("")
            each.update("")
            covered.show(None)
            to_pay.show(None)
            return
        if self.pending is not None:
            # sent, outcome not known: no amount may look final (issue 11 item 4)
            covered.show(None, title=self.t("quote.covered.pending"))
            to_pay.show(None, title=self.t("quote.to_pay.pending"))
            return
        count = self.query_one(CountStepper).value
        held = self.t("quote.held", n=q.available_count)
        allowed = self.t("quote.allowed", n=q.max_by_bill)
        customer.update(f"{self.t('quote.customer')} {q.citizen.masked_id}   {held}   {allowed}")
        each.update(self.t("quote.each", v=format_yuan(q.face_value_fen)))
        covered.show(q.covered_fen(count), title=self.t("quote.covered"))  # rule U3
        to_pay.show(q.to_pay_fen(count), title=self.t("quote.to_pay"))

    # -- redeem -------------------------------------------------------------------------

    @on(CountStepper.Confirmed)
    def _stepper_confirmed(self) -> None:
        self.action_confirm()

    def action_confirm(self) -> None:
        if self.busy:
            return
        q = self.quote
        if q is None or not self.token:
            self.till.tell(self.t("input.scan"), title=self.t("title.input"), severity="error")
            self.query_one("#scan", Input).focus()
            return
        count = self.query_one(CountStepper).value
        if q.usable_count == 0:
            self.till.tell(
                self.t("input.none_usable"), title=self.t("title.refused"), severity="error"
            )
            return
        if not 1 <= count <= q.usable_count:
            self.till.tell(
                self.t("input.count", n=q.usable_count),
                title=self.t("title.input"),
                severity="error",
            )
            return
        receipt_no = self._receipt_no()
        if receipt_no is None or self.need_client() is None:
            return
        p = self.pending
        same = p is not None and (p.token, p.bill_fen, p.receipt_no, p.count) == (
            self.token,
            q.bill_fen,
            receipt_no,
            count,
        )
        # rule U7: the same request keeps its key, so a retry can never redeem twice
        pending = (
            p
            if same and p is not None
            else PendingRedeem(new_key(), self.token, q.bill_fen, receipt_no, count)
        )
        self.pending = pending
        self.busy = True
        self.checks = 0
        self.say(self.t("hint.redeeming", s=self._wait_text()), "working")
        self._show_quote()
        self.run_redeem(pending)

    def action_check(self) -> None:
        """After an unknown outcome: ask the server what happened to that key."""
        if self.busy or self.pending is None or self.need_client() is None:
            return
        self.busy = True
        self.checks += 1
        self.say(self.t("hint.checking", n=self.checks, s=self._wait_text()), "checking")
        self._show_quote()
        self.run_check(self.pending)

    def outcome_unknown(self) -> RedeemFailed:
        """Esc while waiting for the server: the request may have arrived, so the key is kept
        for F8 / F9."""
        assert self.pending is not None
        return RedeemFailed(OutcomeUnknown(self.pending.key), self.pending)

    def _wait_text(self) -> str:
        return f"{self.answer_wait:g}"

    async def _within_wait(self, pending: PendingRedeem, call: Awaitable[Redemption]) -> None:
        await self.within_wait(
            pending, call, lambda r, p: Redeemed(r, p.key), lambda e, p: RedeemFailed(e, p)
        )

    @work(group="redeem", exit_on_error=False)
    async def run_redeem(self, pending: PendingRedeem) -> None:
        client = self.client
        assert client is not None
        await self._within_wait(
            pending,
            client.redeem(
                pending.token, pending.bill_fen, pending.receipt_no, pending.count, key=pending.key
            ),
        )

    @work(group="redeem", exit_on_error=False)
    async def run_check(self, pending: PendingRedeem) -> None:
        client = self.client
        assert client is not None
        await self._within_wait(pending, client.redemption_by_key(pending.key, pending.token))

    @on(Redeemed)
    def _redeemed(self, message: Redeemed) -> None:
        r = message.redemption
        if self.pending is None or self.pending.key != message.key:
            return  # an answer to a request the cashier stopped waiting for, then resolved
        self.busy = False
        self.pending = None
        self.last = r
        text = self.t(
            "result.ok",
            n=r.voucher_count,
            v=format_yuan(r.value_fen),
            r=format_yuan(r.remaining_fen),
        )
        if r.recovered:
            text += " " + self.t("result.recovered")
        self.say(text, "ok")
        self.till.tell(text, title=self.t("title.ok"), severity="information")
        self.action_receipt(auto_print=True)  # printed at once when a printer is set up

    @on(RedeemFailed)
    def _redeem_failed(self, message: RedeemFailed) -> None:
        if not self.busy or self.pending is None or self.pending.key != message.pending.key:
            return  # already settled (Esc, then the cancelled request's own answer)
        self.busy = False
        exc = message.error
        self.fail(exc)
        _, _, words = describe_error(exc, self.lang)
        if isinstance(exc, OutcomeUnknown):
            self.pending = message.pending  # keep the key: F8 asks, F9 sends the same again
            if self.checks:
                self.say(self.t("result.still_unknown", n=self.checks, at=_now_hms()), "unknown")
            else:
                self.say(self.t("result.unknown"), "unknown")
            self._show_quote()
            return
        self.pending = None
        self._show_quote()
        if isinstance(exc, Unreachable):
            self.say(self.t("result.offline"), "offline")
        elif isinstance(exc, ApiError) and exc.code == "not_redeemed":
            self.say(self.t("result.not_redeemed"), "not_redeemed")
        elif isinstance(exc, ApiError) and exc.code in REFRESH_QR_CODES:
            # rule U5: expired or used: a fresh code from the citizen, then scan again
            self._clear_quote()
            self.say(self.t("result.refused", reason=words), "refused")
            self.query_one("#scan", Input).focus()
        elif isinstance(exc, ApiError) and exc.code == "bill_already_redeemed":
            self.say(self.t("result.refused", reason=words), "refused")
            self.query_one("#receipt", Input).focus()
        else:
            self.say(self.t("result.refused", reason=words), "refused")

    # -- after ---------------------------------------------------------------------------

    def action_receipt(self, auto_print: bool = False) -> None:
        if self.last is None:
            return
        from terminal.screens.receipt import ReceiptScreen

        self.app.push_screen(
            ReceiptScreen(self.last, auto_print=auto_print), callback=self._receipt_closed
        )

    def _receipt_closed(self, _: None) -> None:
        if self.outcome == "ok":
            self.action_new(keep_result=True)

    def action_new(self, keep_result: bool = False) -> None:
        """The next customer: an empty form (the last receipt stays reachable by F7)."""
        if self.busy:
            return
        if self.pending is not None:
            # an unknown outcome must be resolved first (F8), never silently dropped
            self.till.tell(
                self.t("result.unknown"), title=self.t("title.unknown"), severity="error"
            )
            return
        for name in ("#bill", "#receipt", "#scan"):
            self.query_one(name, Input).value = ""
        self.held_token = ""
        self._clear_quote()
        if not keep_result:
            self.say(self.t("hint.start"), "")
        self.query_one("#bill", Input).focus()
