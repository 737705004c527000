"""A developer's sales office (issue 13, rules T4-T8): the purchase contract (网签 number,
the unit from the seller's listing pool, price, signing date, the buyer), the holder's code
scanned, the quote (balance, the range the 90% rules allow, the subsidy or reward, what the
buyer still pays), then the use confirmed — with the checkout's handling of an unknown
outcome: the same request under the same key, the truth asked by key (rule U7)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Footer, Input, Label, Select, Static

from client.http import ApiError, OutcomeUnknown, Unreachable
from client.till import TicketContract, new_key
from client.wire import HeldTicket, PoolUnit, TicketLine, TicketQuote, TicketUse
from shared.errors import InvalidAmount, InvalidIdNumber, InvalidRequest
from shared.house_tickets import normalise_contract_no
from shared.idnumber import mask_id_number, validate_id_number
from shared.money import format_yuan, parse_yuan
from terminal.documents import TicketReceiptData, ticket_receipt_of
from terminal.i18n import REFRESH_QR_CODES, describe_error
from terminal.screens.base import SendingScreen, sending_bindings
from terminal.screens.checkout import ScanInput
from terminal.screens.tickets import usable
from terminal.widgets.status_bar import StatusBar

RELATIONS = ("holder", "spouse", "parent", "child", "household_member")
"""Rule T5: who the buyer may be to the holder (the programme decides which it serves)."""
# the form's text fields, in the order Enter walks them (the unit and the buyer are Selects)
FIELDS = ("contract", "unit", "price", "signed", "relation", "buyer-id", "proof", "amount")
PROPERTY_TYPES = {
    "residential": ("住宅", "home"),
    "commercial": ("商业", "shop"),
    "commercial_office": ("商办", "office/shop"),
    "office": ("办公", "office"),
    "parking": ("车位", "parking"),
    "storage": ("储藏室", "storage"),
}


def yuan(fen: int) -> str:
    return format_yuan(fen, thousands=True)


def area(dm2: int) -> str:
    return f"{dm2 // 100}.{dm2 % 100:02d}"


class AmountNotSplit(Exception):
    """Rule T6: the amount asked cannot be drawn on the chosen tickets (the terminal says
    which way to change it; nothing is asked of the server)."""

    def __init__(self, key: str, values: dict[str, str]) -> None:
        super().__init__(key)
        self.key = key  # the words, in the cashier's language, with ``values``
        self.values = values


def split_amount(want: int, lines: tuple[TicketLine, ...]) -> tuple[int, ...]:
    """Rule T6: ``want`` fen drawn on combined tickets in their order, each as much as it
    allows (``max_fen``) until ``want`` is reached. Raises ``AmountNotSplit`` when the
    tickets allow less, or when a ticket would draw less than its least (``min_fen``: at
    least 1 fen; Suining 90% of its face value)."""
    amounts, rest = [], want
    for line in lines:
        take = min(line.max_fen, rest)
        if take < line.min_fen:
            raise AmountNotSplit(
                "sales.amount.fewer",
                {"want": yuan(want), "number": line.number, "low": yuan(line.min_fen)},
            )
        amounts.append(take)
        rest -= take
    if rest:
        high = yuan(sum(line.max_fen for line in lines))
        raise AmountNotSplit("sales.amount.split", {"want": yuan(want), "high": high})
    return tuple(amounts)


@dataclass(frozen=True, slots=True)
class PendingUse:
    """A use sent without a known outcome: the same body goes again with the same key
    (rule U7), or the key asks the server what happened."""

    key: str
    token: str
    contract: TicketContract
    amounts: tuple[int, ...]


@dataclass
class PoolLoaded(Message):
    units: tuple[PoolUnit, ...]


@dataclass
class TicketQuoted(Message):
    quote: TicketQuote
    token: str
    contract: TicketContract


@dataclass
class TicketQuoteFailed(Message):
    error: BaseException
    token: str = ""


@dataclass
class TicketUsed(Message):
    use: TicketUse
    key: str


@dataclass
class TicketUseFailed(Message):
    error: BaseException
    pending: PendingUse


class SalesScreen(SendingScreen[TicketQuote, PendingUse, TicketUse]):
    WORKER_GROUP = "ticket-use"
    BINDINGS: ClassVar[list[BindingType]] = sending_bindings(
        Binding("f7", "tickets", "tickets", id="tickets"),
        Binding("f7", "receipt", "receipt", id="receipt"),
    )

    def __init__(self) -> None:
        super().__init__()
        self.quoted: TicketContract | None = None  # the contract the quote is for
        self.units: tuple[PoolUnit, ...] = ()
        self.chosen: tuple[str, ...] = ()
        """F7 (rule T6): the holder's tickets to draw on, earliest expiry first (none: the
        server's pick, the earliest-expiring one)."""
        self.held: tuple[HeldTicket, ...] = ()  # the holder's tickets, as the last quote said
        self.receipt: TicketReceiptData | None = None  # the last use's, for F7
        self.receipt_printed = False  # on paper once already: F7 shows it as a reprint
        self._filling = False  # the form is being set by the screen itself, not typed

    # -- the form -------------------------------------------------------------------------

    def _row(self, label: str, field: Widget) -> Horizontal:
        return Horizontal(Label(self.t(label), classes="label"), field, classes="row")

    def compose(self) -> ComposeResult:
        yield StatusBar()
        relations = [(self.t(f"relation.{r}"), r) for r in RELATIONS]
        with Vertical(id="sales-form"):
            yield self._row(
                "sales.contract",
                Input(
                    placeholder=self.t("sales.contract.placeholder"),
                    id="contract",
                    compact=True,
                    max_length=64,
                ),
            )
            yield self._row(
                "sales.unit",
                Select[str]([], prompt=self.t("sales.unit.prompt"), id="unit", compact=True),
            )
            yield self._row(
                "sales.price", Input(placeholder="0.00", id="price", compact=True, max_length=16)
            )
            yield self._row(
                "sales.signed",
                Input(placeholder="YYYY-MM-DD", id="signed", compact=True, max_length=10),
            )
            yield self._row(
                "sales.relation",
                Select[str](
                    relations, allow_blank=False, value="holder", id="relation", compact=True
                ),
            )
            yield self._row(
                "sales.buyer_id",
                Input(
                    placeholder=self.t("sales.buyer_id.placeholder"),
                    id="buyer-id",
                    compact=True,
                    max_length=18,
                ),
            )
            yield self._row(
                "sales.proof",
                Input(
                    placeholder=self.t("sales.proof.placeholder"),
                    id="proof",
                    compact=True,
                    max_length=100,
                ),
            )
            yield self._row(
                "sales.amount",
                Input(
                    placeholder=self.t("sales.amount.placeholder"),
                    id="amount",
                    compact=True,
                    max_length=16,
                ),
            )
            yield self._row(
                "checkout.scan",
                ScanInput(placeholder=self.t("sales.scan.placeholder"), id="scan", compact=True),
            )
        with Vertical(id="ticket-quote"):
            yield Static(id="holder", markup=False)
            yield Static(id="draws", markup=False)  # rule T6: each combined ticket's part
            yield Static(id="range", markup=False)
            yield Static(id="still", markup=False)
            yield Static(id="subsidy", markup=False)
            yield Static(id="pays", markup=False)
        yield Static(self.t("sales.hint.start"), id="result", markup=False)
        yield Static(id="notice", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#ticket-quote").border_title = self.t("sales.quote.title")
        self._fill("signed", self.till.clock().date().isoformat())
        self._show_quote()
        self.query_one("#contract", Input).focus()
        if self.client is not None:
            self.run_pool()

    def _fill(self, name: str, value: str) -> None:
        self._filling = True
        try:
            self.query_one(f"#{name}", Input).value = value
        finally:
            self.call_later(self._filled)

    def _filled(self) -> None:
        self._filling = False

    def _text(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value.strip()

    def _refuse(self, name: str, key: str) -> None:
        self.till.tell(self.t(key), title=self.t("title.input"), severity="error")
        self.query_one(f"#{name}").focus()

    # -- the listing pool (rule T4) -------------------------------------------------------

    @work(exclusive=True, group="pool", exit_on_error=False)
    async def run_pool(self) -> None:
        client = self.client
        assert client is not None
        try:
            pool = await client.listing_pool()
        except Exception as exc:
            self.fail(exc)
            return
        self.post_message(PoolLoaded(pool.units))

    @on(PoolLoaded)
    def _pool_loaded(self, message: PoolLoaded) -> None:
        self.show_pool(message.units)

    def show_pool(self, units: tuple[PoolUnit, ...]) -> None:
        """The units a ticket may buy: admitted and not yet sold (rule T4)."""
        self.units = tuple(u for u in units if u.status == "admitted" and not u.sold)
        kinds = {k: v[1] if self.lang == "en" else v[0] for k, v in PROPERTY_TYPES.items()}
        self.query_one("#unit", Select).set_options(
            (
                f"{u.unit} {kinds.get(u.property_type, u.property_type)} "
                f"{area(u.area_dm2)}㎡ {yuan(u.listed_price_fen)}",
                u.unit,
            )
            for u in self.units
        )
        if not self.units:
            self.till.tell(self.t("sales.pool.empty"), title=self.t("title.refused"))

    # -- reading the contract -------------------------------------------------------------

    def _missing(self) -> str | None:
        """The first field the contract still needs (silently: the cashier is typing)."""
        checks = (
            ("contract", self._contract_no),
            ("unit", self._unit),
            ("price", self._price),
            ("signed", self._signed),
            ("buyer-id", self._buyer_id),
            ("amount", self._amount),
        )
        for name, read in checks:
            try:
                read()
            except (InvalidRequest, InvalidAmount, InvalidIdNumber, ValueError):
                return name
        return None

    def _contract_no(self) -> str:
        return normalise_contract_no(self._text("contract"))  # rule T5: as the server keeps it

    def _unit(self) -> str:
        select = self.query_one("#unit", Select)
        if select.is_blank():
            raise InvalidRequest("choose a unit", field="unit")
        return str(select.value)

    def _price(self) -> int:
        return parse_yuan(self._text("price"), positive=True, field="price")

    def _signed(self) -> date:
        return date.fromisoformat(self._text("signed"))

    def _relation(self) -> str:
        return str(self.query_one("#relation", Select).value)

    def _buyer_id(self) -> str | None:
        """Rule T5, E1: the buyer's ID number, needed when the buyer is not the holder."""
        raw = self._text("buyer-id").upper()
        if self._relation() == "holder" and not raw:
            return None
        return validate_id_number(raw, self.till.clock().date())

    def _amount(self) -> tuple[int, ...] | None:
        text = self._text("amount")
        return None if not text else (parse_yuan(text, positive=True, field="amount"),)

    def _contract(self) -> TicketContract | None:
        """The contract as entered, or None after telling the cashier what is wrong."""
        missing = self._missing()
        if missing is not None:
            self._refuse(missing, f"input.{missing}")
            return None
        return TicketContract(
            contract_no=self._contract_no(),
            unit=self._unit(),
            signed_on=self._signed(),
            price_fen=self._price(),
            relation=self._relation(),
            buyer_id_number=self._buyer_id(),
            relation_proof=self._text("proof") or None,
            tickets=self.chosen,
        )

    @on(Input.Submitted, "#sales-form Input")
    def _field_entered(self, event: Input.Submitted) -> None:
        name = event.input.id or ""
        if name == "scan":
            return
        if self.held_token and self._missing() is None:
            self._quote_held()
            return
        missing = self._missing()
        if missing == name:
            self._refuse(name, f"input.{name}")
            return
        after = FIELDS[FIELDS.index(name) + 1 :] if name in FIELDS else ()
        self.query_one(f"#{after[0]}" if after else "#scan").focus()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        self._contract_changed()
        name = event.select.id or ""
        if event.select.has_focus and not self._filling and name in FIELDS:
            self.query_one(f"#{FIELDS[FIELDS.index(name) + 1]}").focus()  # chosen: go on

    @on(Input.Changed, "#sales-form Input")
    def _input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "scan":
            self._contract_changed()

    def _contract_changed(self) -> None:
        """A quote is for one contract: changed, it is quoted again on Enter with the same
        code (a quote changes nothing; the code lives a minute)."""
        if self._filling or self.busy or self.pending is not None or self.quote is None:
            return
        self.held_token = self.token
        self._clear_quote()
        self.say(self.t("sales.hint.requote"), "held")

    # -- the holder's code ---------------------------------------------------------------

    @on(Input.Submitted, "#scan")
    def _scanned(self, event: Input.Submitted) -> None:
        token = event.value.strip()
        event.input.value = ""
        if token:
            self.take_scan(token)
        elif not self.busy:
            self.till.tell(
                self.t("input.scan.ticket"), title=self.t("title.input"), severity="error"
            )

    def take_scan(self, text: str) -> None:
        """The holder's code (the wallet's code, rule U5), from the scanner wherever the focus
        was: quoted once the contract is complete, held until then."""
        code = self.scanned_code(text, unknown_key="sales.result.unknown", busy_key="sales.busy")
        if code is None:
            return
        self.held_token = code
        self.chosen, self.held = (), ()  # a new code may be another holder's: the server picks
        self._clear_quote()
        missing = self._missing()
        if missing is not None:
            self.say(self.t("sales.scan.held"), "held")
            self.query_one(f"#{missing}").focus()
            return
        self._quote_held()

    def _quote_held(self) -> None:
        contract = self._contract()
        if contract is None or self.need_client() is None:
            return
        token, self.held_token = self.held_token, ""
        self._clear_quote()
        self.say(self.t("hint.quoting"), "working")
        self.run_quote(token, contract, self._amount())

    @work(exclusive=True, group="quote", exit_on_error=False)
    async def run_quote(
        self, token: str, contract: TicketContract, amounts: tuple[int, ...] | None
    ) -> None:
        client = self.client
        assert client is not None
        try:  # a quote changes nothing: no answer in time is simply no answer
            if amounts is not None and len(contract.tickets) > 1:
                # rule T6: the amount asked, drawn on the combined tickets in their order
                most = await self.within_answer_wait(client.ticket_quote(token, contract))
                amounts = split_amount(amounts[0], most.lines)
            quote = await self.within_answer_wait(client.ticket_quote(token, contract, amounts))
        except Exception as exc:
            self.post_message(TicketQuoteFailed(exc, token))
            return
        self.post_message(TicketQuoted(quote, token, contract))

    async def within_answer_wait(self, call: Awaitable[TicketQuote]) -> TicketQuote:
        try:
            return await asyncio.wait_for(call, self.answer_wait)
        except TimeoutError:
            raise Unreachable("no answer in time", maybe_sent=True) from None

    @on(TicketQuoted)
    def _quoted(self, message: TicketQuoted) -> None:
        self.show_quote(message.quote, message.token, message.contract)

    def show_quote(self, quote: TicketQuote, token: str, contract: TicketContract) -> None:
        self.quote, self.token, self.quoted, self.pending = quote, token, contract, None
        self.held = quote.tickets
        self._show_quote()
        self.say(self.t("sales.hint.confirm"), "quoted")

    @on(TicketQuoteFailed)
    def _quote_failed(self, message: TicketQuoteFailed) -> None:
        self._clear_quote()
        error = message.error
        if isinstance(error, AmountNotSplit):  # rule T6: said here, nothing asked
            words = self.t(error.key, **error.values)
            self.till.tell(words, title=self.t("title.input"), severity="error")
            self.say(self.t("sales.result.refused", reason=words), "refused")
            self.held_token = message.token
            self.query_one("#amount").focus()
            return
        code = self.fail(error)
        _, _, words = describe_error(error, self.lang)
        self.say(self.t("sales.result.refused", reason=words), "refused")
        if code not in REFRESH_QR_CODES and message.token:
            self.held_token = message.token  # the code is still good: fix the contract, Enter
        self.query_one("#scan" if code in REFRESH_QR_CODES else "#contract").focus()

    def _clear_quote(self) -> None:
        self.quote, self.quoted, self.token = None, None, ""
        self._show_quote()

    def _show_quote(self) -> None:
        """Render the current quote (or nothing); never changes state."""
        holder, span = self.query_one("#holder", Static), self.query_one("#range", Static)
        subsidy, pays = self.query_one("#subsidy", Static), self.query_one("#pays", Static)
        still_line, draws = self.query_one("#still", Static), self.query_one("#draws", Static)
        q = self.quote
        if q is None:
            for line in (holder, span, still_line, subsidy, pays, draws):
                line.update("")
            draws.display, span.display = False, True
            self.set_class(False, "-combined")
            return
        first = q.lines[0]
        if len(q.lines) == 1:
            holder.update(
                self.t(
                    "sales.quote.holder",
                    masked=q.holder.masked_id,
                    number=first.number,
                    deadline=first.deadline,
                )
            )
        else:  # rule T6: combined, each ticket's balance and part on its own line
            holder.update(
                self.t(
                    "sales.quote.holder.several",
                    masked=q.holder.masked_id,
                    n=len(q.lines),
                    low=yuan(sum(line.min_fen for line in q.lines)),
                    high=yuan(sum(line.max_fen for line in q.lines)),
                )
            )
        draws.display = len(q.lines) > 1
        self.set_class(len(q.lines) > 1, "-combined")  # a line a ticket: room made above
        draws.update(
            "\n".join(
                self.t(
                    "sales.quote.draw",
                    number=line.number,
                    balance=yuan(line.balance_fen),
                    amount=yuan(line.amount_fen)
                    if self.pending is None
                    else self.t("sales.quote.unconfirmed"),
                )
                for line in q.lines
            )
            if len(q.lines) > 1
            else ""
        )
        span.display = len(q.lines) == 1  # combined: the range is on the holder's line
        span.update(
            self.t(
                "sales.quote.range",
                balance=yuan(first.balance_fen),
                low=yuan(first.min_fen),
                high=yuan(first.max_fen),
            )
        )
        still = sum(line.still_to_use_fen for line in q.lines)  # T6: Shangqiu's 90% in total
        still_line.update(self.t("sales.quote.still", v=yuan(still)) if still else "")
        parts = [
            self.t(
                "sales.quote.subsidy",
                m=first.month,
                rate=f"{first.subsidy_bp / 100:g}%",
                v=yuan(q.subsidy_fen),
            )
        ]
        if q.reward_fen:
            parts.append(
                self.t("sales.quote.reward", v=yuan(q.reward_fen), area=area(q.unit.area_dm2))
            )
        subsidy.update(" · ".join(parts))
        if self.pending is not None:  # sent, outcome not known: nothing may look final
            pays.update(self.t("sales.quote.pending"))
            return
        pays.update(
            self.t(
                "sales.quote.pays",
                amount=yuan(q.amount_fen),
                rest=yuan(q.buyer_pays_fen),
            )
        )

    def _can_choose(self) -> bool:
        """F7 chooses tickets: the holder holds more than one usable ticket, a code is at
        hand (quoted, or held after a refusal) and nothing is on its way."""
        return (
            not self.busy
            and self.pending is None
            and bool(self.token or self.held_token)
            and len(usable(self.held)) > 1
        )

    def action_tickets(self) -> None:
        """F7 (rule T6): the holder's tickets, to draw on one or combine several; chosen,
        the contract is quoted again with the same code."""
        if not self._can_choose():
            return
        from terminal.screens.tickets import TicketChoice

        current = self.chosen or (
            tuple(line.number for line in self.quote.lines) if self.quote else ()
        )
        self.app.push_screen(TicketChoice(self.held, current), callback=self._tickets_chosen)

    def _tickets_chosen(self, chosen: tuple[str, ...] | None) -> None:
        if chosen is None or not self._can_choose():
            return
        self.chosen = chosen
        self.held_token = self.token or self.held_token
        self._quote_held()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "tickets":  # F7 shows only when the holder has another ticket
            return self._can_choose()
        if action == "receipt":  # otherwise F7 is the last use's receipt
            return self.receipt is not None and not self._can_choose() and not self.busy
        return super().check_action(action, parameters)

    # -- the use --------------------------------------------------------------------------

    def action_confirm(self) -> None:
        """F9: use the ticket as quoted (the amounts shown, for the contract shown); after an
        unknown outcome, the same request under the same key (rule U7)."""
        if self.busy:
            return
        q, contract = self.quote, self.quoted
        if q is None or contract is None or not self.token:
            self.till.tell(
                self.t("input.scan.ticket"), title=self.t("title.input"), severity="error"
            )
            self.query_one("#scan").focus()
            return
        if self.need_client() is None:
            return
        amounts = tuple(line.amount_fen for line in q.lines)
        p = self.pending
        same = p is not None and (p.token, p.contract, p.amounts) == (self.token, contract, amounts)
        pending = (
            p if same and p is not None else PendingUse(new_key(), self.token, contract, amounts)
        )
        self.pending = pending
        self.busy = True
        self.checks = 0
        self.say(self.t("sales.hint.using", s=f"{self.answer_wait:g}"), "working")
        self._show_quote()
        self.run_use(pending)

    def action_check(self) -> None:
        """After an unknown outcome: ask the server what became of that key."""
        if self.busy or self.pending is None or self.need_client() is None:
            return
        self.busy = True
        self.checks += 1
        self.say(
            self.t("sales.hint.checking", n=self.checks, s=f"{self.answer_wait:g}"), "checking"
        )
        self._show_quote()
        self.run_check(self.pending)

    def outcome_unknown(self) -> TicketUseFailed:
        assert self.pending is not None
        return TicketUseFailed(OutcomeUnknown(self.pending.key), self.pending)

    async def _waited(self, pending: PendingUse, call: Awaitable[TicketUse]) -> None:
        await self.within_wait(
            pending, call, lambda u, p: TicketUsed(u, p.key), lambda e, p: TicketUseFailed(e, p)
        )

    @work(group="ticket-use", exit_on_error=False)
    async def run_use(self, pending: PendingUse) -> None:
        client = self.client
        assert client is not None
        call = client.use_ticket(pending.token, pending.contract, pending.amounts, key=pending.key)
        await self._waited(pending, call)

    @work(group="ticket-use", exit_on_error=False)
    async def run_check(self, pending: PendingUse) -> None:
        client = self.client
        assert client is not None
        await self._waited(pending, client.ticket_use_by_key(pending.key, pending.token))

    @on(TicketUsed)
    def _used(self, message: TicketUsed) -> None:
        if self.pending is None or self.pending.key != message.key:
            return  # an answer to a request the cashier stopped waiting for, then resolved
        use = message.use
        buyer_id = self.pending.contract.buyer_id_number
        self.busy = False
        self.pending = None
        self.last = use
        text = self.t(
            "sales.result.ok",
            amount=yuan(use.amount_fen),
            subsidy=yuan(use.subsidy_fen),
            reward=yuan(use.reward_fen),
            rest=yuan(use.buyer_pays_fen),
            balance=yuan(sum(d.balance_fen for d in use.draws)),
        )
        if use.recovered:
            text += " " + self.t("result.recovered")
        self._clear_quote()
        self.chosen = ()
        self.receipt = self._receipt_of(use, buyer_id)
        self.receipt_printed = False
        self.say(f"{text} {self.t('sales.receipt.hint')}", "ok")
        self.till.tell(text, title=self.t("title.ok"))
        if self.till.has_printer:  # printed at once when a printer is set up, as a bill's
            self.action_receipt(auto_print=True)

    def _receipt_of(self, use: TicketUse, buyer_id: str | None) -> TicketReceiptData:
        """The use's receipt: the programme and developer named as the till knows them; the
        buyer's number masked (rule X3), as the cashier entered it."""
        session = self.till.session
        terminal_id = (
            session.terminal.id
            if session
            else (self.till.config.terminal_id if self.till.config else 0)
        )
        return ticket_receipt_of(
            use,
            programme=self.till.programme_names.get(use.campaign_id, use.campaign_id),
            developer=session.merchant.name if session else "",
            terminal_id=terminal_id,
            terminal_label=session.terminal.label if session else "",
            buyer_masked=mask_id_number(buyer_id) if buyer_id else None,
        )

    def action_receipt(self, auto_print: bool = False) -> None:
        """F7 after a use: its receipt, to print (again: marked a reprint) or save."""
        if self.receipt is None:
            return
        from terminal.screens.receipt import TicketReceiptScreen

        shown = TicketReceiptScreen(
            replace(self.receipt, reprint=self.receipt_printed), auto_print=auto_print
        )

        def closed(_: None) -> None:
            if shown.printed:  # on paper once: any later print is a reprint
                self.receipt_printed = True

        self.app.push_screen(shown, callback=closed)

    @on(TicketUseFailed)
    def _use_failed(self, message: TicketUseFailed) -> None:
        if not self.busy or self.pending is None or self.pending.key != message.pending.key:
            return  # already settled (Esc, then the cancelled request's own answer)
        self.busy = False
        exc = message.error
        self.fail(exc)
        if isinstance(exc, OutcomeUnknown):
            self.pending = message.pending  # keep the key: F8 asks, F9 sends the same again
            at = datetime.now().strftime("%H:%M:%S")
            key = "sales.result.still_unknown" if self.checks else "sales.result.unknown"
            self.say(self.t(key, n=self.checks, at=at), "unknown")
            self._show_quote()
            return
        self.pending = None
        self._show_quote()
        if isinstance(exc, Unreachable):
            self.say(self.t("sales.result.offline"), "offline")
        elif isinstance(exc, ApiError) and exc.code == "not_used":
            self.say(self.t("sales.result.not_used"), "not_redeemed")
        else:
            words = describe_error(exc, self.lang)[2]
            self.say(self.t("sales.result.refused", reason=words), "refused")
            if isinstance(exc, ApiError) and exc.code in REFRESH_QR_CODES:
                self._clear_quote()  # rule U5: a fresh code from the holder, then scan again
                self.query_one("#scan").focus()

    def action_new(self) -> None:
        """The next contract: an empty form (an unknown outcome must be resolved first)."""
        if self.busy:
            return
        if self.pending is not None:
            self.till.tell(
                self.t("sales.result.unknown"), title=self.t("title.unknown"), severity="error"
            )
            return
        for name in ("contract", "price", "buyer-id", "proof", "amount", "scan"):
            self._fill(name, "")
        self._filling = True
        self.query_one("#unit", Select).clear()
        self.query_one("#relation", Select).value = "holder"
        self.call_later(self._filled)
        self.held_token = ""
        self.chosen, self.held = (), ()
        self._clear_quote()
        self.say(self.t("sales.hint.start"), "")
        self.query_one("#contract", Input).focus()
