"""A house ticket's use at a developer's sales office (rules T2, T4-T8, with U1, U5, X1 for
the till), decided on one read of the ledger — as ``shared.redemption`` decides a bill.

The till scans the holder's code (the voucher's short code, rule U5: it names the holder's
citizen row), and enters the purchase contract: its 网签 number, the unit (from the seller's
listing pool), the price, the signing date and the buyer (the holder, or a person the
ticket may serve, T5). ``decide_use`` checks the till, the seller, the holder and the code,
picks the tickets drawn on, and quotes the use (``shared.house_tickets.quote_use``); the
server then writes ``apply_use``'s result under the ledger's fences.

Pure: what the ledger holds comes in as a ``UseContext``; the time is a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from shared import rules
from shared.errors import (
    ContractAlreadyUsed,
    ListingNotEligible,
    MerchantNotPermitted,
    MerchantSuspended,
    TerminalDisabled,
    TicketNotFound,
    TokenInvalid,
    TokenReplayed,
)
from shared.house_tickets import (
    Contract,
    Listing,
    Ticket,
    TicketStatus,
    UseQuote,
    check_holds_value,
    home_kept,
    is_expired,
    quote_use,
)
from shared.ticket_campaign import Relation, TicketCampaign

DEVELOPER = "developer"
"""Rule T4: the kind of merchant that sells from the listing pool (``merchants.kind``)."""


@dataclass(frozen=True, slots=True)
class UseContext:
    """One read of the ledger for a use: the terminal and its merchant, the code's holder,
    whether the code was used (U5), the unit asked for, whether its contract was paid (T5),
    and the holder's tickets of the unit's programme (every status: a refusal names why)."""

    terminal_status: str
    terminal_label: str
    merchant_id: int
    merchant_name: str
    merchant_kind: str
    admitted: bool
    permitted: bool
    merchant_status: str
    citizen_id: int | None  # None: the code names no citizen of the ledger
    citizen_status: str | None
    id_masked: str | None
    holder: str | None  # the holder's person key (docs/HOUSE_TICKETS.md)
    token_used: bool
    listing_id: int | None  # None: the seller lists no such unit
    listing: Listing | None
    campaign_id: str | None  # the listing's programme
    contract_used: bool
    tickets: tuple[Ticket, ...]


@dataclass(frozen=True, slots=True)
class UseAsk:
    """What the sales office entered. ``buyer`` is the buyer's person key, None for the holder
    (T5); ``numbers`` the tickets to draw on (none: the holder's earliest-expiring usable
    ticket, as U6 picks vouchers); ``amounts`` one per ticket (None: the most each allows)."""

    contract_no: str  # normalised (``normalise_contract_no``)
    unit: str
    signed_on: date
    price_fen: int
    relation: Relation
    buyer: str | None = None
    relation_proof: str = ""
    numbers: tuple[str, ...] = ()
    amounts: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class UseDecision:
    """A use decided: its programme, what was read, the tickets drawn on and the quote."""

    campaign: TicketCampaign
    ctx: UseContext
    tickets: tuple[Ticket, ...]
    quote: UseQuote

    @property
    def listing_id(self) -> int:
        assert self.ctx.listing_id is not None  # decided on a listed unit
        return self.ctx.listing_id

    @property
    def citizen_id(self) -> int:
        assert self.ctx.citizen_id is not None  # decided for a holder
        return self.ctx.citizen_id


def check_sales_office(ctx: UseContext | None) -> UseContext:
    """Rules U1, T4, X1: an active terminal of an admitted, permitted, unsuspended developer.
    Raises ``terminal_disabled``, ``merchant_suspended`` or ``merchant_not_permitted`` (with
    ``reason = not_a_sales_office`` for a shop's till)."""
    if ctx is None or ctx.terminal_status != "active":
        raise TerminalDisabled()  # rule U1
    if ctx.merchant_status == "suspended":
        raise MerchantSuspended()  # rules U1, X1: a seller is suspended like a shop (T4)
    if not ctx.admitted or not ctx.permitted:
        raise MerchantNotPermitted(admitted=ctx.admitted, permitted=ctx.permitted)  # rule U1
    if ctx.merchant_kind != DEVELOPER:
        raise MerchantNotPermitted(
            "house tickets are used at a developer's sales office", reason="not_a_sales_office"
        )  # rule T4
    return ctx


def _usable(campaign: TicketCampaign, ticket: Ticket, now: datetime) -> bool:
    return (
        ticket.status is TicketStatus.ACTIVE
        and ticket.balance_fen > 0
        and not is_expired(campaign, ticket, now)
    )


def pick_tickets(
    campaign: TicketCampaign, held: Sequence[Ticket], numbers: Sequence[str], now: datetime
) -> tuple[Ticket, ...]:
    """Rules T5, T6, T13: the tickets a use draws on. Named by number (a piece's, or one
    replaced after a loss: refused ``ticket_void``); none named: the holder's usable ticket
    that expires first, else the one whose refusal says best why none is usable. Raises
    ``ticket_not_found`` for a number the holder does not hold, or a holder with none."""
    if numbers:
        picked: list[Ticket] = []
        for number in numbers:
            found = next((t for t in held if number in (t.number, *t.void_numbers)), None)
            if found is None:
                raise TicketNotFound(number=number)  # rules T1, T5
            check_holds_value(found, number)  # T6, T13: split, replaced, void, returned
            picked.append(found)
        return tuple(picked)
    if not held:
        raise TicketNotFound("the holder holds no house ticket of this programme")
    holding = (TicketStatus.ACTIVE, TicketStatus.LOST)
    best = min(
        held,
        key=lambda t: (not _usable(campaign, t, now), t.status not in holding, t.deadline, t.id),
    )
    return (best,)


def decide_use(
    ctx: UseContext | None,
    programmes: Mapping[str, TicketCampaign],
    ask: UseAsk,
    now: datetime,
    *,
    replay: bool = True,
) -> UseDecision:
    """Rules T2, T4-T8 with U1, U5 and X1 on one read: the sales office, the code, the holder,
    the unit and the contract, then the quote. Raises, in order: the sales office's refusals
    (``check_sales_office``), ``token_invalid`` (no such citizen), ``token_replayed`` (U5,
    when ``replay``), ``participation_revoked`` (X1), ``listing_not_eligible``
    (``unknown_unit``, or a unit of a programme this server does not run: ``programme``),
    ``contract_already_used`` (T5, before the write says so), ``ticket_not_found``, and the
    refusals of ``quote_use``."""
    ctx = check_sales_office(ctx)
    if ctx.citizen_id is None or ctx.holder is None:
        raise TokenInvalid("the code names no holder of this programme", reason="subject")
    if replay and ctx.token_used:
        raise TokenReplayed("this code was already used; ask the holder to refresh it")  # U5
    rules.check_participation(ctx.citizen_status == "revoked")  # rule X1
    if ctx.listing is None:
        raise ListingNotEligible(reason="unknown_unit", unit=ask.unit)  # rule T4
    campaign = programmes.get(ctx.campaign_id or "")
    if campaign is None:
        raise ListingNotEligible(reason="programme", unit=ask.unit)  # rule T4
    if ctx.contract_used:
        raise ContractAlreadyUsed(contract_no=ask.contract_no)  # rule T5 (as U4)
    tickets = pick_tickets(campaign, ctx.tickets, ask.numbers, now)
    contract = Contract(
        contract_no=ask.contract_no,
        signed_on=ask.signed_on,
        price_fen=ask.price_fen,
        buyer=ctx.holder if ask.buyer is None else ask.buyer,
        relation=ask.relation,
        relation_proof=ask.relation_proof,
        # rule T4 (Suining) [choice]: the issuer recorded that the household keeps a home
        # (on every ticket drawn); until then a unit that needs it is refused home_not_kept
        home_kept_verified=home_kept(tickets),
    )
    quote = quote_use(campaign, tickets, ctx.listing, contract, now, ask.amounts)
    return UseDecision(campaign, ctx, tickets, quote)
