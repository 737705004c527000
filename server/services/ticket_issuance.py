"""House tickets at the issuer (房票核发人), rules T1-T4, T6, T13: issue a ticket from a
compensation agreement, split it, transfer it, pass it to an heir, report it lost and reissue
it, record that its household keeps a home (T4), void it, return an expired balance; and read
a ticket's file. An issuer acts on its own district's tickets only (T1, X2); every act is
audited with its documents' numbers (``ticket_events``).

Each act reads the ticket, decides with the pure core (``shared/house_tickets.py``) and writes
the decided ticket as a compare-and-set on the state it was decided from
(``server/db/tickets.py`` ``write_act``): a ticket changed meanwhile (a use at the till, another
act) is read and decided again, three times at most. ID numbers are checked (E1) and kept
only as keyed hashes and masked forms (X3): a person is ``person_key`` of the hash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from server.auth import Principal, Role
from server.db import Conn, parties
from server.db import ticket_settlement as settlement_db
from server.db import tickets as db
from server.db.ticket_settlement import Payout
from server.db.tickets import TicketEvent
from server.services.ports import Ports
from server.services.scope import all_district_codes
from shared.errors import (
    Conflict,
    Forbidden,
    InvalidDate,
    InvalidIdNumber,
    InvalidRequest,
    NotFound,
)
from shared.house_tickets import (
    FaceItem,
    IssueRequest,
    Project,
    Ticket,
    TicketUse,
    check_issuer_district,
    issue_ticket,
    pass_to_heir,
    person_key,
    record_home_kept,
    replace_lost,
    replacement_opens,
    report_lost,
    return_balance,
    split_ticket,
    transfer_ticket,
    void_ticket,
)
from shared.idnumber import hash_id_number, mask_id_number, validate_id_number
from shared.redemption import MustDecideAgain
from shared.ticket_campaign import TicketCampaign
from shared.ticket_payouts import FamilyView, family_view

READERS = (Role.TICKET_ISSUER, Role.CITY_OPERATOR, Role.AUDITOR)
ATTEMPTS = 3  # a ticket changed under an act is decided again, at most this many times


@dataclass(frozen=True, slots=True)
class Person:
    """An ID number the issuer entered, checked (E1) and kept as a key and a mask (X3)."""

    key: str
    id_hash: bytes
    masked: str


def persons(ports: Ports, numbers: Sequence[str], today: date, field: str) -> list[Person]:
    """Rules E1, X3: each ID number checked; only its hash and masked form go on."""
    found: list[Person] = []
    for number in numbers:
        try:
            valid = validate_id_number(number, today)
        except InvalidIdNumber as exc:
            raise InvalidIdNumber(exc.message, field=field, **exc.details) from None
        digest = hash_id_number(valid, ports.settings.id_hash_key)
        found.append(Person(person_key(digest), digest, mask_id_number(valid)))
    return found


def programme(ports: Ports, campaign_id: str) -> TicketCampaign:
    campaign = ports.programmes.get(campaign_id)
    if campaign is None:
        raise InvalidRequest("unknown house-ticket programme", field="campaign_id")
    return campaign


def today_of(ports: Ports, campaign: TicketCampaign) -> date:
    return ports.clock().astimezone(campaign.tz).date()


def check_reader(me: Principal, ticket: Ticket, missing: str = "no such ticket") -> None:
    """Rules T1, X2: an issuer reads its own district's tickets (another district's do not
    exist for it: ``missing``); the city and the auditor read all of them."""
    if me.role is Role.TICKET_ISSUER and ticket.district != me.district:
        raise NotFound(missing)


def check_issuer(me: Principal, ticket: Ticket) -> None:
    """Rule T1: only an issuer acts, and on its own district's tickets."""
    if me.role is not Role.TICKET_ISSUER:
        raise Forbidden("only the ticket's issuer acts on it")
    check_issuer_district(ticket, me.district or "")


# --- a ticket's file (what every act answers) --------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketFile:
    """Rules T1-T13: a ticket with its family, the family's numbers as the holder sees them,
    its uses, its audit trail and its payouts; persons masked."""

    campaign: TicketCampaign
    ticket: Ticket
    family: list[Ticket]
    view: FamilyView
    uses: list[tuple[int, TicketUse]]
    events: list[TicketEvent]
    payouts: list[Payout]
    masks: dict[str, str]
    number_replaced: bool = False
    replacement_opens_on: date | None = None
    notes: dict[str, str] = field(default_factory=dict)


async def ticket_file(
    ports: Ports, conn: Conn, ticket: Ticket, *, number_replaced: bool = False
) -> TicketFile:
    campaign = programme(ports, ticket.campaign_id)
    family = await db.read_family(conn, ticket.original_id)
    ids = [t.id for t in family]
    uses = await db.programme_uses(conn, campaign.id, ticket_ids=ids)
    keys = {p for t in family for p in (t.holder, *t.household)} | {u.buyer for _, u in uses}
    opens = None
    if ticket.lost_notice_on is not None:
        opens = replacement_opens(campaign, ticket.lost_notice_on)
    return TicketFile(
        campaign=campaign,
        ticket=ticket,
        family=family,
        view=family_view(campaign, family, [u for _, u in uses], today_of(ports, campaign)),
        uses=uses,
        events=await db.events_of(conn, ids),
        payouts=await settlement_db.payouts(conn, original_ids=[ticket.original_id]),
        masks=await parties.masked_persons(conn, keys),
        number_replaced=number_replaced,
        replacement_opens_on=opens,
    )


async def _read(conn: Conn, ticket_id: int) -> Ticket:
    found = (await db.read_tickets(conn, [ticket_id])).get(ticket_id)
    if found is None:
        raise NotFound("no such ticket")
    return found


async def show(ports: Ports, me: Principal, ticket_id: int) -> TicketFile:
    async with ports.pool.acquire() as conn:
        ticket = await _read(conn, ticket_id)
        check_reader(me, ticket)
        return await ticket_file(ports, conn, ticket)


async def find(ports: Ports, me: Principal, number: str) -> TicketFile:
    """Rule T13: the ticket a printed number names, saying whether the number was replaced
    after a loss (it is void)."""
    async with ports.pool.acquire() as conn:
        found = await db.ticket_by_number(conn, number.strip())
        if found is None:
            raise NotFound("no ticket has this number")
        ticket = await _read(conn, found[0])
        check_reader(me, ticket)
        return await ticket_file(ports, conn, ticket, number_replaced=found[1])


async def listed(
    ports: Ports, me: Principal, campaign_id: str, district: str | None
) -> tuple[TicketCampaign, list[Ticket], dict[str, str]]:
    """Rule T14: a programme's tickets (an issuer's: its district's), holders masked."""
    campaign = programme(ports, campaign_id)
    if me.role is Role.TICKET_ISSUER:
        district = me.district
    elif district is not None:
        district = all_district_codes(ports).get(district, district)
    async with ports.pool.acquire() as conn:
        tickets = await db.programme_tickets(conn, campaign.id, district)
        masks = await parties.masked_persons(conn, {t.holder for t in tickets})
    return campaign, tickets, masks


# --- issue (T1, T2) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssueTicket:
    """Rule T1: the compensation agreement (《房票安置补充协议》) as the issuer enters it."""

    campaign_id: str
    number: str
    filing_no: str
    district: str
    project: str
    housing_delivered: bool
    cash_paid: bool
    implementing_unit: str
    official: str
    agreement_no: str
    agreement_date: date
    holder_id_number: str
    household_id_numbers: tuple[str, ...]
    area_dm2: int | None
    items: tuple[FaceItem, ...]
    validity_months: int | None = None
    issued_on: date | None = None  # today when not given


def _household(holder: Person, members: Sequence[Person], required: bool) -> list[Person]:
    """Rule T1 [choice]: the holder is always one of a listed household."""
    if not members and not required:
        return []
    return [holder, *(m for m in members if m.key != holder.key)]


async def _number_free(conn: Conn, number: str, field: str) -> None:
    if await db.ticket_by_number(conn, number.strip()) is not None:
        raise Conflict(
            "a ticket has (or had) this number", reason="ticket_number_taken", field=field
        )


async def issue(ports: Ports, me: Principal, cmd: IssueTicket) -> TicketFile:
    """Rules T1, T2: a ticket from a compensation agreement, by the issuer of its district,
    while the programme issues; audited with the agreement's and the filing's numbers."""
    campaign = programme(ports, cmd.campaign_id)
    district = all_district_codes(ports).get(cmd.district)
    if district is None:
        raise InvalidRequest("unknown district", field="district")
    if me.role is not Role.TICKET_ISSUER or me.district != district:
        raise Forbidden("an issuer issues its own district's tickets", district=district)  # T1
    today = today_of(ports, campaign)
    issued_on = cmd.issued_on or today
    if issued_on > today:
        raise InvalidDate("a ticket is not issued in the future", field="issued_on")
    (holder,) = persons(ports, [cmd.holder_id_number], today, "holder_id_number")
    members = persons(ports, cmd.household_id_numbers, today, "household_id_numbers")
    household = _household(holder, members, campaign.household_required)
    request = IssueRequest(
        number=cmd.number,
        filing_no=cmd.filing_no,
        district=district,
        project=Project(cmd.project, cmd.housing_delivered, cmd.cash_paid),
        implementing_unit=cmd.implementing_unit,
        official=cmd.official,
        agreement_no=cmd.agreement_no,
        agreement_date=cmd.agreement_date,
        holder=holder.key,
        household=frozenset(p.key for p in household),
        area_dm2=cmd.area_dm2,
        items=cmd.items,
        validity_months=cmd.validity_months,
    )
    async with ports.pool.acquire() as conn, conn.transaction():
        await _number_free(conn, cmd.number, "number")
        (ticket_id,) = await db.new_ticket_ids(conn, 1)
        ticket = issue_ticket(campaign, request, ticket_id=ticket_id, issued_on=issued_on)
        await parties.ensure_persons(conn, [(p.id_hash, p.masked) for p in household or [holder]])
        documents = {"agreement_no": ticket.agreement_no, "filing_no": ticket.filing_no}
        await db.insert_tickets(conn, [ticket], actor=me.actor, act="issue", documents=documents)
        return await ticket_file(ports, conn, ticket)


# --- the acts on an issued ticket ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decided:
    """What an act decided: the ticket after it, its documents and amount for the audit,
    and what else it writes (the pieces of a split, persons it names)."""

    after: Ticket
    documents: dict[str, str]
    amount_fen: int | None = None
    pieces: tuple[Ticket, ...] = ()
    persons: tuple[Person, ...] = ()


Decide = Callable[[Conn, TicketCampaign, Ticket, datetime], Awaitable[Decided]]
R = TypeVar("R")


async def decided_again(ports: Ports, work: Callable[[Conn], Awaitable[R]]) -> R:
    """``work`` in one transaction; if a ticket it decided from changed before its write
    (``MustDecideAgain``: nothing was written), again from a fresh read, at most ``ATTEMPTS``
    times, then ``Conflict`` (``ticket_changed``)."""
    for _ in range(ATTEMPTS):
        try:
            async with ports.pool.acquire() as conn, conn.transaction():
                return await work(conn)
        except MustDecideAgain:
            continue
    raise Conflict("the tickets changed meanwhile; try again", reason="ticket_changed")


async def act_on(
    ports: Ports, me: Principal, ticket_id: int, act: str, decide: Decide
) -> TicketFile:
    """Rule T1: one issuer's act on one ticket, all or nothing, audited; decided again from a
    fresh read if the ticket changed meanwhile."""

    async def attempt(conn: Conn) -> TicketFile:
        ticket = await _read(conn, ticket_id)
        check_issuer(me, ticket)
        campaign = programme(ports, ticket.campaign_id)
        decided = await decide(conn, campaign, ticket, ports.clock())
        await parties.ensure_persons(conn, [(p.id_hash, p.masked) for p in decided.persons])
        await db.write_act(
            conn,
            ticket,
            decided.after,
            actor=me.actor,
            act=act,
            documents=decided.documents,
            amount_fen=decided.amount_fen,
        )
        if decided.pieces:
            await db.insert_tickets(
                conn,
                decided.pieces,
                actor=me.actor,
                act="split_piece",
                documents={**decided.documents, "from_number": ticket.number},
            )
        return await ticket_file(ports, conn, decided.after)

    return await decided_again(ports, attempt)


def _local(now: datetime, campaign: TicketCampaign) -> date:
    return now.astimezone(campaign.tz).date()


async def split(
    ports: Ports,
    me: Principal,
    ticket_id: int,
    *,
    amounts: Sequence[int],
    numbers: Sequence[str],
    application_no: str,
) -> TicketFile:
    """Rule T6: split an unused ticket (Suining: once, into at most 3 pieces keeping its
    expiry); the pieces get the printed numbers given."""

    async def decide(conn: Conn, c: TicketCampaign, t: Ticket, now: datetime) -> Decided:
        for i, number in enumerate(numbers):
            await _number_free(conn, number, f"numbers[{i}]")
        ids = await db.new_ticket_ids(conn, len(amounts)) if len(amounts) == len(numbers) else []
        after, pieces = split_ticket(c, t, amounts=amounts, numbers=numbers, piece_ids=ids, now=now)
        documents = {"application_no": _required(application_no, "application_no")}
        return Decided(after, documents, t.balance_fen, pieces=pieces)

    return await act_on(ports, me, ticket_id, "split", decide)


def _required(value: str, field: str) -> str:
    if not value.strip():
        raise InvalidRequest(f"{field} is required", field=field)
    return value.strip()


async def transfer(
    ports: Ports,
    me: Principal,
    ticket_id: int,
    *,
    to_holder_id_number: str,
    to_household_id_numbers: Sequence[str],
    home_in_city: bool,
    all_members_signed: bool,
    notary_no: str,
) -> TicketFile:
    """Rule T3: pass the ticket to another holder, once (Suining: the transferor's household
    keeps a home in the city, all members signed, notarised; Shangqiu: no transfer)."""

    async def decide(conn: Conn, c: TicketCampaign, t: Ticket, now: datetime) -> Decided:
        today = _local(now, c)
        (holder,) = persons(ports, [to_holder_id_number], today, "to_holder_id_number")
        given = persons(ports, to_household_id_numbers, today, "to_household_id_numbers")
        household = _household(holder, given, c.household_required)
        after = transfer_ticket(
            c,
            t,
            to_holder=holder.key,
            to_household=frozenset(p.key for p in household),
            home_in_city=home_in_city,
            all_members_signed=all_members_signed,
            notary_no=notary_no,
            now=now,
        )
        documents = {"notary_no": notary_no.strip()}
        return Decided(after, documents, persons=(holder, *household))

    return await act_on(ports, me, ticket_id, "transfer", decide)


async def heir(
    ports: Ports,
    me: Principal,
    ticket_id: int,
    *,
    heir_id_number: str,
    heir_household_id_numbers: Sequence[str],
    certificate_no: str,
) -> TicketFile:
    """Rule T3: the holder died; the heir takes the ticket on a notarised inheritance
    certificate (更名): expiry, balance and uses unchanged."""

    async def decide(conn: Conn, c: TicketCampaign, t: Ticket, now: datetime) -> Decided:
        today = _local(now, c)
        (person,) = persons(ports, [heir_id_number], today, "heir_id_number")
        given = persons(ports, heir_household_id_numbers, today, "heir_household_id_numbers")
        household = _household(person, given, c.household_required)
        keys = frozenset(p.key for p in household)
        after = pass_to_heir(
            c, t, heir=person.key, heir_household=keys, certificate_no=certificate_no
        )
        documents = {"certificate_no": certificate_no.strip()}
        return Decided(after, documents, persons=(person, *household))

    return await act_on(ports, me, ticket_id, "heir", decide)


async def lost(
    ports: Ports, me: Principal, ticket_id: int, *, newspaper: str, published_on: date
) -> TicketFile:
    """Rule T13: the paper ticket reported lost, with its notice in a city newspaper; no use
    while the notice runs [choice]; the file says when a replacement may be asked."""

    async def decide(conn: Conn, c: TicketCampaign, t: Ticket, now: datetime) -> Decided:
        after = report_lost(
            c, t, newspaper=newspaper, published_on=published_on, today=_local(now, c)
        )
        replacement_opens(c, published_on)  # a day past the calendar is refused now
        documents = {"newspaper": newspaper.strip(), "published_on": published_on.isoformat()}
        return Decided(after, documents)

    return await act_on(ports, me, ticket_id, "lost", decide)


async def reissue(ports: Ports, me: Principal, ticket_id: int, *, new_number: str) -> TicketFile:
    """Rule T13: the replacement once the notice has run: a new number; the expiry and the
    uses are kept; the old number is void for ever."""

    async def decide(conn: Conn, c: TicketCampaign, t: Ticket, now: datetime) -> Decided:
        await _number_free(conn, new_number, "new_number")
        after = replace_lost(c, t, new_number=new_number, today=_local(now, c))
        documents = {"new_number": after.number, "old_number": t.number}
        return Decided(after, documents)

    return await act_on(ports, me, ticket_id, "reissue", decide)


async def home_kept(ports: Ports, me: Principal, ticket_id: int, *, document_no: str) -> TicketFile:
    """Rule T4 (Suining) [choice]: the ticket's issuer (the district's expropriation office,
    which verifies the household) records that the household keeps a home, with the
    verifying document's number; the sales office then sells it 商业/办公/车位."""

    async def decide(conn: Conn, c: TicketCampaign, t: Ticket, now: datetime) -> Decided:
        after = record_home_kept(c, t, document_no=document_no, today=_local(now, c))
        return Decided(after, {"document_no": after.home_kept_doc or ""})

    return await act_on(ports, me, ticket_id, "home_kept", decide)


async def void(ports: Ports, me: Principal, ticket_id: int, *, decision_no: str) -> TicketFile:
    """Rule T1: a ticket issued in error, never used, voided on the issuer's decision."""

    async def decide(conn: Conn, c: TicketCampaign, t: Ticket, now: datetime) -> Decided:
        after = void_ticket(t, decision_no=decision_no)
        return Decided(after, {"decision_no": decision_no.strip()}, t.balance_fen)

    return await act_on(ports, me, ticket_id, "void", decide)


async def return_expired(
    ports: Ports, me: Principal, ticket_id: int, *, agreement_no: str
) -> TicketFile:
    """Rule T2: an expired ticket's balance returned for another form of compensation, under
    a supplementary agreement."""

    async def decide(conn: Conn, c: TicketCampaign, t: Ticket, now: datetime) -> Decided:
        after = return_balance(c, t, agreement_no=agreement_no, now=now)
        return Decided(after, {"agreement_no": agreement_no.strip()}, t.balance_fen)

    return await act_on(ports, me, ticket_id, "return", decide)
