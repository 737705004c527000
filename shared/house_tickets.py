"""House tickets (房票), rules T1-T8, T11 and T13, as pure functions: issuance, use at a
developer's sales office, splitting and combining, transfer and inheritance, loss and
replacement, voiding, returning and cancelled contracts. Cash-out, bonus, settlement and
reports (T9, T10, T12, T14) are ``shared.ticket_payouts``.

No I/O, no clock: what the ledger holds comes in as frozen dataclasses (``Ticket``,
``TicketUse``), the time is a parameter, and every act returns the new values for the ledger
to write (under its own guarantees: a conditional update on the balance, one use per seller
and contract). Every number comes from the ``TicketCampaign`` (rule C1). Money is an int in
fen and rounds down (T-section preamble [choice]); areas are ints in dm² (0.01 m²).

The accounts of a ticket always add up (``Ticket.accounted_fen``)::

    used + cashed_out + returned + split_out + balance == face value

and a family (an original ticket and the pieces split from it, T6) adds up to the original's
face value: its pieces' face values are its ``split_out``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from shared.campaign import BP_DENOMINATOR
from shared.errors import (
    AlreadySettled,
    BuyerNotServed,
    Conflict,
    ContractAlreadyCancelled,
    Forbidden,
    InvalidAmount,
    InvalidDate,
    InvalidRequest,
    IssuanceClosed,
    ListingNotEligible,
    ProjectNotEligible,
    ReplacementNotYet,
    TicketBalanceInsufficient,
    TicketExceedsPrice,
    TicketExpired,
    TicketReportedLost,
    TicketReturnRefused,
    TicketSplitRefused,
    TicketTransferRefused,
    TicketUseBelowMinimum,
    TicketVoid,
)
from shared.money import MAX_AMOUNT_FEN, parse_fen
from shared.periods import add_months, end_instant, month_number
from shared.rules import normalise_receipt_no, require_aware
from shared.ticket_campaign import (
    ProjectExclusion,
    PropertyType,
    Relation,
    SplitMode,
    TicketCampaign,
    TransferRequirement,
)

DM2_PER_M2 = 100
"""Areas are whole dm² (0.01 m²): 89.57 m² is 8957."""


def person_key(id_hash: bytes) -> str:
    """Rules T1, T5, X3: a person's key on tickets and uses (holder, household member,
    buyer): the hex of the keyed hash of their ID number, as ``citizens.id_hash`` holds it,
    so a person who never signed in has one too and no full ID number is kept."""
    return id_hash.hex()


class TicketStatus(StrEnum):
    """What a ticket number stands for now. Expiry is not a status: it is a date (T2)."""

    ACTIVE = "active"  # holds its balance; usable until its deadline
    LOST = "lost"  # T13: reported lost; not used while the notice runs
    SPLIT = "split"  # T6: its balance went into pieces; the number holds nothing
    RETURNED = "returned"  # T2/T11: the balance went back for another form of compensation
    VOID = "void"  # T1: voided by its issuer before any use


_NO_VALUE = {
    TicketStatus.SPLIT: "split",
    TicketStatus.RETURNED: "returned",
    TicketStatus.VOID: "void",
}


class CancelElection(StrEnum):
    """Rule T11: what the holder of a cancelled contract's ticket elects."""

    REISSUE = "reissue"  # the drawn amount goes back on the ticket (issue date, expiry kept)
    OTHER_COMPENSATION = "other_compensation"  # the amount leaves the ticket (a new agreement)


@dataclass(frozen=True, slots=True)
class FaceItem:
    """Rule T1: one item of a face value (``code`` is one of the campaign's ``face_items``)."""

    code: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class Project:
    """Rule T1: the expropriation project (or the household's place in it) a ticket is for."""

    name: str
    housing_delivered: bool  # resettlement housing delivered (安置房已交付)
    cash_paid: bool  # money compensation fully paid (货币补偿已到位)


@dataclass(frozen=True, slots=True)
class IssueRequest:
    """Rule T1: what the issuer enters from the compensation agreement (《房票安置补充协议》).

    Persons are opaque keys (the ledger's citizen key, never a full ID number: X3); the
    holder's name and contact live with the person, not on the ticket."""

    number: str  # 房票编号, printed
    filing_no: str  # 备案号
    district: str  # the issuing district (the issuer's scope)
    project: Project
    implementing_unit: str  # 实施单位
    official: str  # 经办人
    agreement_no: str
    agreement_date: date
    holder: str
    household: frozenset[str]  # Suining: the household members, the holder among them
    area_dm2: int | None  # Suining: 房票面积
    items: tuple[FaceItem, ...]
    validity_months: int | None = None  # T2: None takes the campaign's default


@dataclass(frozen=True, slots=True)
class Ticket:
    """Rules T1-T13: one ticket (or piece) as the ledger holds it. ``id`` is the ledger's
    key and never changes; ``number`` is the printed number, new after a replacement (T13)."""

    id: int
    campaign_id: str
    number: str
    filing_no: str
    district: str
    project: str
    implementing_unit: str
    official: str
    agreement_no: str
    agreement_date: date
    holder: str
    household: frozenset[str]
    area_dm2: int | None
    items: tuple[FaceItem, ...]
    face_value_fen: int
    issued_on: date
    deadline: date  # the last day of validity; it ends at 24:00 (T2)
    original_id: int  # the ticket a piece was split from (itself if not a piece), T6
    parent_id: int | None
    generation: int  # how many splits made it (T6)
    status: TicketStatus
    balance_fen: int
    used_fen: int = 0
    cashed_out_fen: int = 0
    returned_fen: int = 0
    split_out_fen: int = 0
    transfers: int = 0
    void_numbers: tuple[str, ...] = ()  # T13: numbers it had before a replacement
    lost_notice_on: date | None = None
    # T4 (Suining): the operator's record that the household keeps a home, with the
    # verifying document's number; a new holder's household needs its own [choice]
    home_kept_doc: str | None = None
    home_kept_on: date | None = None

    @property
    def accounted_fen(self) -> int:
        """used + cashed out + returned + split out + balance: always the face value."""
        return (
            self.used_fen
            + self.cashed_out_fen
            + self.returned_fen
            + self.split_out_fen
            + self.balance_fen
        )


@dataclass(frozen=True, slots=True)
class Listing:
    """Rule T4: a unit of the listing pool as the ledger holds it. ``in_pool``: admitted by
    the housing bureau, its seller admitted and not suspended or removed (X1)."""

    seller: str
    unit: str
    district: str
    property_type: PropertyType
    area_dm2: int
    listed_price_fen: int  # the filed (备案) or agreed price
    in_pool: bool


@dataclass(frozen=True, slots=True)
class Contract:
    """Rule T5: the bill — a purchase contract (网签 number) for a unit, signed by a buyer.
    ``relation`` and its ``relation_proof`` are recorded at the use; ``home_kept_verified``
    is the operator's record that the household keeps a home (T4, Suining)."""

    contract_no: str
    signed_on: date
    price_fen: int
    buyer: str
    relation: Relation
    relation_proof: str = ""
    home_kept_verified: bool = False


@dataclass(frozen=True, slots=True)
class SourceLine:
    """Rules T5-T7: one ticket's part in a quote."""

    ticket_id: int
    number: str
    balance_fen: int
    min_fen: int  # T6: the least this use may draw on it
    max_fen: int  # T5: the most, by its balance and the contract price
    amount_fen: int  # what this use draws
    month: int  # T7: the month of signing after its issue
    subsidy_bp: int
    subsidy_fen: int
    still_to_use_fen: int  # T6 cumulative: still to use after this to reach the minimum


@dataclass(frozen=True, slots=True)
class Draw:
    """One ticket's part in a use, as the ledger keeps it (``ticket_draws``)."""

    ticket_id: int
    amount_fen: int
    subsidy_bp: int
    subsidy_fen: int


@dataclass(frozen=True, slots=True)
class UseQuote:
    """Rules T4-T8: what a use would do, before it is confirmed."""

    campaign_id: str
    listing: Listing
    contract: Contract
    lines: tuple[SourceLine, ...]
    reward_fen: int

    @property
    def amount_fen(self) -> int:
        """The ticket amount the contract records (T5)."""
        return sum(line.amount_fen for line in self.lines)

    @property
    def subsidy_fen(self) -> int:
        """The purchase subsidy (T7), deducted from the price."""
        return sum(line.subsidy_fen for line in self.lines)

    @property
    def seller_due_fen(self) -> int:
        """What the issuer owes the seller for this use (T12 [choice]: the ticket amount with
        its subsidy and reward)."""
        return self.amount_fen + self.subsidy_fen + self.reward_fen

    @property
    def buyer_pays_fen(self) -> int:
        """The rest of the price: the buyer's own money, loans or housing fund (T5)."""
        return self.contract.price_fen - self.seller_due_fen


@dataclass(frozen=True, slots=True)
class TicketUse:
    """Rules T5-T8, T11: one use — one purchase contract, once (``ticket_uses``, unique per
    seller and contract number), drawing on one or more of the holder's tickets."""

    campaign_id: str
    seller: str
    contract_no: str
    unit: str
    district: str
    property_type: PropertyType
    area_dm2: int
    price_fen: int
    signed_on: date
    buyer: str
    relation: Relation
    draws: tuple[Draw, ...]
    reward_fen: int
    used_at: datetime
    cancelled: bool = False

    @property
    def amount_fen(self) -> int:
        return sum(d.amount_fen for d in self.draws)

    @property
    def subsidy_fen(self) -> int:
        return sum(d.subsidy_fen for d in self.draws)

    @property
    def seller_due_fen(self) -> int:
        """Rule T12 [choice]: the ticket amount, the subsidy and the reward."""
        return self.amount_fen + self.subsidy_fen + self.reward_fen


@dataclass(frozen=True, slots=True)
class Cancelled:
    """Rule T11: a cancelled contract's use reversed."""

    tickets: tuple[Ticket, ...]
    use: TicketUse
    restored_fen: int  # back on the tickets (REISSUE) or returned (OTHER_COMPENSATION)
    reversed_subsidy_fen: int
    reversed_reward_fen: int
    clawback_fen: int  # already paid to the seller: recovered by the issuer (T12)


# --- small checks -----------------------------------------------------------------------


def _text(value: str, field: str) -> str:
    """A required text field (a number of a document, a name): non-empty, trimmed."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{field} is required", field=field)
    return value.strip()


def least_share_fen(amount_fen: int, bp: int) -> int:
    """The least whole fen that is at least ``bp`` of ``amount_fen`` (a threshold: "at
    least 90%" of 100.01 元 is 90.01 元)."""
    return -((-amount_fen * bp) // BP_DENOMINATOR)


def share_fen(amount_fen: int, bp: int) -> int:
    """``bp`` of ``amount_fen``, rounded down to the fen (money paid, T [choice])."""
    return (amount_fen * bp) // BP_DENOMINATOR


def normalise_contract_no(raw: str) -> str:
    """Rule T5 (as U4): the canonical 网签 contract number, so one contract cannot be entered
    twice in two spellings (NFKC, trimmed, upper-case, 1-64 characters)."""
    try:
        return normalise_receipt_no(raw)
    except InvalidRequest as exc:
        message = exc.message.replace("receipt number", "contract number")
        raise InvalidRequest(message, field="contract_no") from None


def expires_at(campaign: TicketCampaign, ticket: Ticket) -> datetime:
    """Rule T2: the instant the ticket expires: 24:00 of its deadline, campaign time."""
    return end_instant(ticket.deadline, campaign.tz)


def is_expired(campaign: TicketCampaign, ticket: Ticket, now: datetime) -> bool:
    """Rule T2: True from 24:00 of the deadline on."""
    return require_aware(now, "now") >= expires_at(campaign, ticket)


def check_holds_value(ticket: Ticket, number: str | None = None) -> None:
    """Rules T1, T2, T6, T13: refuse a number that holds nothing (``ticket_void``): a split,
    returned or voided ticket, or a number replaced after a loss (``number`` as scanned)."""
    if number is not None and number != ticket.number and number in ticket.void_numbers:
        raise TicketVoid("this number was replaced after a loss", reason="replaced")  # T13
    reason = _NO_VALUE.get(ticket.status)
    if reason is not None:
        raise TicketVoid(reason=reason)


def check_usable(campaign: TicketCampaign, ticket: Ticket, now: datetime) -> None:
    """Rules T2, T13: the ticket holds value, is not under a loss notice and not expired."""
    check_holds_value(ticket)
    if ticket.status is TicketStatus.LOST:
        raise TicketReportedLost(notice_on=ticket.lost_notice_on)  # T13 [choice]
    if is_expired(campaign, ticket, now):
        raise TicketExpired(deadline=ticket.deadline)  # T2


# --- issuance (T1, T2) ------------------------------------------------------------------


def check_issuer_district(ticket: Ticket, issuer_district: str) -> None:
    """Rule T1: an issuer acts on its own district's tickets only (split, transfer, heir,
    replacement, void, return, cancellation, cash-out)."""
    if ticket.district != issuer_district:
        raise Forbidden(
            "an issuer acts on its own district's tickets", district=ticket.district
        )  # T1


def _check_project(campaign: TicketCampaign, project: Project) -> None:
    delivered, paid = project.housing_delivered, project.cash_paid
    if campaign.project_excluded_when is ProjectExclusion.DELIVERED_AND_PAID:
        excluded = delivered and paid
    else:
        excluded = delivered or paid
    if excluded:
        raise ProjectNotEligible(
            "the project's resettlement is already met", reason="resettlement_met"
        )  # T1


def _face_value(campaign: TicketCampaign, items: Sequence[FaceItem]) -> int:
    seen: set[str] = set()
    total = 0
    for item in items:
        if item.code not in campaign.face_items or item.code in seen:
            known = ", ".join(campaign.face_items)
            raise InvalidRequest(
                f"face item {item.code!r} is unknown or repeated (known: {known})",
                field="items",
            )
        seen.add(item.code)
        total += parse_fen(item.amount_fen, field=f"items.{item.code}")
    if not 0 < total <= MAX_AMOUNT_FEN:
        raise InvalidAmount("a ticket's face value is above 0", field="items")
    return total


def issue_ticket(
    campaign: TicketCampaign, request: IssueRequest, *, ticket_id: int, issued_on: date
) -> Ticket:
    """Rules T1 and T2: a new ticket from a compensation agreement, valid until 24:00 of
    ``add_months(issued_on, months)`` (Civil Code months, never chained).

    ``ticket_id`` is the ledger's new key. Raises ``issuance_closed`` outside the programme's
    issuance window, ``project_not_eligible`` for a district that issues none or a project
    whose resettlement is met, and ``invalid_*`` for a malformed request.
    """
    if not campaign.issuance_opens <= issued_on <= campaign.issuance_closes:
        raise IssuanceClosed(
            opens=campaign.issuance_opens, closes=campaign.issuance_closes, day=issued_on
        )  # T1
    if request.district not in campaign.issuing_districts:
        raise ProjectNotEligible(
            "this district issues no tickets of the programme", reason="district"
        )  # T1
    _check_project(campaign, request.project)
    texts = {
        "number": request.number,
        "filing_no": request.filing_no,
        "project": request.project.name,
        "implementing_unit": request.implementing_unit,
        "official": request.official,
        "agreement_no": request.agreement_no,
        "holder": request.holder,
    }
    clean = {field: _text(value, field) for field, value in texts.items()}
    if request.agreement_date > issued_on:
        raise InvalidDate("the agreement is dated after the issue", field="agreement_date")
    face = _face_value(campaign, request.items)
    household = frozenset(request.household)
    if (campaign.household_required or household) and request.holder not in household:
        raise InvalidRequest("the household list names the holder", field="household")  # T1
    area = request.area_dm2
    if campaign.ticket_area_required and (area is None or area <= 0):
        raise InvalidRequest("the ticket's area (房票面积) is required", field="area_dm2")
    months = request.validity_months or campaign.validity_months
    if not 1 <= months <= campaign.validity_months_max:
        raise InvalidRequest(
            f"validity is 1 to {campaign.validity_months_max} months", field="validity_months"
        )  # T2
    return Ticket(
        id=ticket_id,
        campaign_id=campaign.id,
        number=clean["number"],
        filing_no=clean["filing_no"],
        district=request.district,
        project=clean["project"],
        implementing_unit=clean["implementing_unit"],
        official=clean["official"],
        agreement_no=clean["agreement_no"],
        agreement_date=request.agreement_date,
        holder=clean["holder"],
        household=household,
        area_dm2=area,
        items=tuple(request.items),
        face_value_fen=face,
        issued_on=issued_on,
        deadline=add_months(issued_on, months),  # T2
        original_id=ticket_id,
        parent_id=None,
        generation=0,
        status=TicketStatus.ACTIVE,
        balance_fen=face,
    )


# --- use (T4-T8) ------------------------------------------------------------------------


def check_listing(campaign: TicketCampaign, listing: Listing, contract: Contract) -> None:
    """Rule T4: the unit is in the pool, in a district the tickets buy in, of an eligible
    type, not above its listed price, and (Suining) a household buying a commercial unit,
    office or parking space keeps a home. Raises ``listing_not_eligible`` with the reason."""
    reason = None
    if not listing.in_pool:
        reason = "not_in_pool"
    elif listing.district not in campaign.usable_districts:
        reason = "district"
    elif listing.property_type not in campaign.property_types:
        reason = "property_type"
    elif campaign.price_not_above_listing and contract.price_fen > listing.listed_price_fen:
        reason = "price_above_listing"
    elif listing.property_type in campaign.home_kept_for and not contract.home_kept_verified:
        reason = "home_not_kept"
    if reason is not None:
        raise ListingNotEligible(reason=reason, unit=listing.unit)  # T4


def check_buyer(campaign: TicketCampaign, ticket: Ticket, contract: Contract) -> None:
    """Rule T5: the buyer is the holder, or a person the ticket may serve: Shangqiu the
    spouse, parents and children (the relation and its proof recorded at the use), Suining
    the household members listed on the ticket."""
    relation = contract.relation
    if relation not in campaign.may_serve:
        raise BuyerNotServed(relation=relation.value)
    if relation is Relation.HOLDER:
        served = contract.buyer == ticket.holder
    elif relation is Relation.HOUSEHOLD_MEMBER:
        served = contract.buyer in ticket.household
    else:  # T5 [choice]: a relation is taken on a recorded proof (户口簿, 结婚证 ...)
        served = bool(contract.relation_proof.strip()) and contract.buyer != ticket.holder
    if not served:
        raise BuyerNotServed(relation=relation.value)


def max_amount_for(room_fen: int, subsidy_bp: int) -> int:
    """Rule T5: the largest ticket amount ``a`` with ``a + floor(a × subsidy) <= room``."""
    if room_fen <= 0:
        return 0
    amount = room_fen * BP_DENOMINATOR // (BP_DENOMINATOR + subsidy_bp)
    while amount + 1 + share_fen(amount + 1, subsidy_bp) <= room_fen:
        amount += 1
    return amount


def reward_for(campaign: TicketCampaign, listing: Listing) -> int:
    """Rule T8: the per-m² reward for the unit's area, rounded down to the fen."""
    reward = campaign.reward
    if not reward.fen_per_m2 or listing.property_type not in reward.property_types:
        return 0
    return listing.area_dm2 * reward.fen_per_m2 // DM2_PER_M2


def _min_draw(campaign: TicketCampaign, ticket: Ticket) -> int:
    """Rule T6: the least one use draws on a ticket (Suining: 90% of its face value)."""
    if campaign.split.mode is SplitMode.PER_USE:
        return max(1, least_share_fen(ticket.face_value_fen, campaign.split.min_use_bp))
    return 1


def _check_sources(campaign: TicketCampaign, tickets: Sequence[Ticket]) -> None:
    """Rule T6: one ticket, or several of one holder's tickets combined."""
    if not tickets:
        raise InvalidRequest("a use draws on at least one ticket", field="tickets")
    if len(tickets) == 1:
        return
    if not campaign.split.combine:
        raise TicketSplitRefused(reason="combine_not_allowed")
    if len({t.id for t in tickets}) != len(tickets):
        raise TicketSplitRefused(reason="duplicate")
    if len({t.holder for t in tickets}) != 1:
        raise TicketSplitRefused("combined tickets have one holder", reason="holders")


def quote_use(
    campaign: TicketCampaign,
    tickets: Sequence[Ticket],
    listing: Listing,
    contract: Contract,
    now: datetime,
    amounts: Sequence[int] | None = None,
) -> UseQuote:
    """Rules T2, T4-T8: what a use of ``tickets`` (one, or several combined, earliest expiry
    first) on ``contract`` for ``listing`` would draw, with the subsidy or reward and what
    the buyer still pays. ``amounts`` (one per ticket) asks given amounts; None draws the
    most each ticket allows.

    Each ticket draws between its ``min_fen`` (T6: Suining 90% of its face value, Shangqiu
    1 fen) and its ``max_fen`` (its balance, and the price less the reward and the other
    draws with their subsidies: amount + subsidy or reward <= price, T5). Raises the
    refusals of ``check_usable``, ``check_listing``, ``check_buyer``, and
    ``ticket_split_refused`` (T6 combine), ``ticket_balance_insufficient`` (T5),
    ``ticket_use_below_minimum`` (T6), ``ticket_exceeds_price`` (T5).
    """
    _check_sources(campaign, tickets)
    if amounts is not None and len(amounts) != len(tickets):
        raise InvalidRequest("one amount per ticket", field="amounts")
    contract = dataclasses.replace(
        contract, contract_no=normalise_contract_no(contract.contract_no)
    )
    price = parse_fen(contract.price_fen, positive=True, field="price_fen")
    today = require_aware(now, "now").astimezone(campaign.tz).date()
    if contract.signed_on > today:
        raise InvalidDate("the contract is signed after today", field="signed_on")
    for ticket in tickets:
        if ticket.campaign_id != campaign.id:
            raise InvalidRequest("the ticket is of another programme", field="tickets")
        check_usable(campaign, ticket, now)
        if contract.signed_on < ticket.issued_on:
            raise InvalidDate("the contract is signed before the ticket", field="signed_on")
        check_buyer(campaign, ticket, contract)
    check_listing(campaign, listing, contract)
    reward = reward_for(campaign, listing)  # T8
    room = price - reward
    if room < 1:
        raise TicketExceedsPrice(price_fen=price, reward_fen=reward)  # T5
    lines: list[SourceLine] = []
    for i, ticket in enumerate(tickets):
        month = month_number(ticket.issued_on, contract.signed_on)  # T7
        rate = campaign.subsidy_bp(month)
        if ticket.balance_fen == 0:
            raise TicketBalanceInsufficient(balance_fen=0, number=ticket.number)  # T5
        low = _min_draw(campaign, ticket)
        high = min(ticket.balance_fen, max_amount_for(room, rate))
        if amounts is None:
            amount = min(ticket.balance_fen, max_amount_for(room, rate))
        else:
            amount = parse_fen(amounts[i], positive=True, field="amount_fen")
            if amount > ticket.balance_fen:
                raise TicketBalanceInsufficient(
                    balance_fen=ticket.balance_fen, amount_fen=amount, number=ticket.number
                )  # T5
        if amount < low:
            raise TicketUseBelowMinimum(
                min_fen=low, max_fen=high, number=ticket.number
            )  # T6 (max below min: the price or the balance leaves too little)
        subsidy = share_fen(amount, rate)  # T7, rounded down
        room -= amount + subsidy
        if room < 0:
            raise TicketExceedsPrice(price_fen=price, reward_fen=reward)  # T5
        still = 0
        if campaign.split.mode is SplitMode.CUMULATIVE:
            needed = least_share_fen(ticket.face_value_fen, campaign.split.min_use_bp)
            still = max(0, needed - ticket.used_fen - amount)
        lines.append(
            SourceLine(
                ticket_id=ticket.id,
                number=ticket.number,
                balance_fen=ticket.balance_fen,
                min_fen=low,
                max_fen=high,
                amount_fen=amount,
                month=month,
                subsidy_bp=rate,
                subsidy_fen=subsidy,
                still_to_use_fen=still,
            )
        )
    return UseQuote(campaign.id, listing, contract, tuple(lines), reward)


def _by_id(tickets: Sequence[Ticket]) -> dict[int, Ticket]:
    return {t.id: t for t in tickets}


def _ticket_of(by_id: Mapping[int, Ticket], ticket_id: int) -> Ticket:
    ticket = by_id.get(ticket_id)
    if ticket is None:
        raise InvalidRequest(f"ticket {ticket_id} is not among those given", field="tickets")
    return ticket


def apply_use(
    quote: UseQuote, tickets: Sequence[Ticket], used_at: datetime
) -> tuple[tuple[Ticket, ...], TicketUse]:
    """Rule T5: the tickets after the quoted use, and the use to record. Raises
    ``ticket_balance_insufficient`` if a balance no longer covers its draw (the ledger's
    conditional update says the same under concurrency)."""
    by_id = _by_id(tickets)
    after: list[Ticket] = []
    for line in quote.lines:
        ticket = _ticket_of(by_id, line.ticket_id)
        if ticket.balance_fen < line.amount_fen:
            raise TicketBalanceInsufficient(
                balance_fen=ticket.balance_fen, amount_fen=line.amount_fen, number=ticket.number
            )  # T5
        after.append(
            dataclasses.replace(
                ticket,
                balance_fen=ticket.balance_fen - line.amount_fen,
                used_fen=ticket.used_fen + line.amount_fen,
            )
        )
    listing, contract = quote.listing, quote.contract
    use = TicketUse(
        campaign_id=quote.campaign_id,
        seller=listing.seller,
        contract_no=contract.contract_no,
        unit=listing.unit,
        district=listing.district,
        property_type=listing.property_type,
        area_dm2=listing.area_dm2,
        price_fen=contract.price_fen,
        signed_on=contract.signed_on,
        buyer=contract.buyer,
        relation=contract.relation,
        draws=tuple(
            Draw(line.ticket_id, line.amount_fen, line.subsidy_bp, line.subsidy_fen)
            for line in quote.lines
        ),
        reward_fen=quote.reward_fen,
        used_at=require_aware(used_at, "used_at"),
    )
    return tuple(after), use


def cancel_use(
    use: TicketUse,
    tickets: Sequence[Ticket],
    *,
    proof_no: str,
    elect: CancelElection,
    paid_to_seller_fen: int,
    by_issuer: bool,
) -> Cancelled:
    """Rule T11: a cancelled purchase contract, on the holder's application with proof: the
    drawn amounts go back on the tickets, keeping their issue date and expiry (``REISSUE``
    [choice]), or leave them for another form of compensation; the subsidy and reward are
    reversed. A use already (partly) paid to its seller is reversed by the issuer only,
    never at the seller's till (``already_settled``), and the payment is clawed back (T12).
    Raises ``contract_already_cancelled`` for a use cancelled before."""
    if use.cancelled:
        raise ContractAlreadyCancelled(contract_no=use.contract_no)
    _text(proof_no, "proof_no")
    paid = parse_fen(paid_to_seller_fen, field="paid_to_seller_fen")
    if paid and not by_issuer:
        raise AlreadySettled("this use was settled to the seller: the issuer reverses it")
    by_id = _by_id(tickets)
    after: dict[int, Ticket] = {}
    for draw in use.draws:
        ticket = after.get(draw.ticket_id) or _ticket_of(by_id, draw.ticket_id)
        if elect is CancelElection.REISSUE:
            status = TicketStatus.ACTIVE if ticket.status is TicketStatus.RETURNED else None
            ticket = dataclasses.replace(
                ticket,
                used_fen=ticket.used_fen - draw.amount_fen,
                balance_fen=ticket.balance_fen + draw.amount_fen,
                status=status or ticket.status,
            )
        else:
            ticket = dataclasses.replace(
                ticket,
                used_fen=ticket.used_fen - draw.amount_fen,
                returned_fen=ticket.returned_fen + draw.amount_fen,
            )
        after[draw.ticket_id] = ticket
    return Cancelled(
        tickets=tuple(after.values()),
        use=dataclasses.replace(use, cancelled=True),
        restored_fen=use.amount_fen,
        reversed_subsidy_fen=use.subsidy_fen,
        reversed_reward_fen=use.reward_fen,
        clawback_fen=paid,
    )


# --- split (T6) -------------------------------------------------------------------------


def split_ticket(
    campaign: TicketCampaign,
    ticket: Ticket,
    *,
    amounts: Sequence[int],
    numbers: Sequence[str],
    piece_ids: Sequence[int],
    now: datetime,
) -> tuple[Ticket, tuple[Ticket, ...]]:
    """Rule T6: split an unused ticket, once (Suining), into 2 to ``max_pieces`` pieces
    whose face values add up to its balance; the pieces keep its holder, household, issue
    date and expiry, and belong to its original (the 90% and bonus tests of T9/T10 are
    measured there [choice]). Returns the split ticket (``SPLIT``, nothing left) and the
    pieces. Raises ``ticket_split_refused`` with the reason."""
    rules = campaign.split
    if rules.max_splits == 0:
        raise TicketSplitRefused(reason="not_allowed")
    check_usable(campaign, ticket, now)
    if ticket.generation >= rules.max_splits:
        raise TicketSplitRefused("a ticket is split once", reason="already_split")
    if ticket.used_fen or ticket.cashed_out_fen:
        raise TicketSplitRefused("only an unused ticket is split", reason="used")  # [choice]
    count = len(amounts)
    if not 2 <= count <= rules.max_pieces or len(numbers) != count or len(piece_ids) != count:
        raise TicketSplitRefused(
            f"a split makes 2 to {rules.max_pieces} pieces, each with a number and an id",
            reason="pieces",
        )
    values = [parse_fen(a, positive=True, field="amounts") for a in amounts]
    if sum(values) != ticket.balance_fen:
        raise TicketSplitRefused(
            "the pieces add up to the ticket's balance",
            reason="amounts",
            balance_fen=ticket.balance_fen,
        )
    clean = [_text(n, "numbers") for n in numbers]
    if len(set(clean)) != count or ticket.number in clean or len(set(piece_ids)) != count:
        raise TicketSplitRefused("each piece has a new number and id", reason="pieces")
    pieces = tuple(
        dataclasses.replace(
            ticket,
            id=piece_id,
            number=number,
            area_dm2=None,  # [choice] the ticket's area stays on the original
            items=(),
            face_value_fen=value,
            parent_id=ticket.id,
            generation=ticket.generation + 1,
            balance_fen=value,
            void_numbers=(),
        )
        for piece_id, number, value in zip(piece_ids, clean, values, strict=True)
    )
    parent = dataclasses.replace(
        ticket,
        status=TicketStatus.SPLIT,
        split_out_fen=ticket.split_out_fen + ticket.balance_fen,
        balance_fen=0,
    )
    return parent, pieces


# --- transfer and inheritance (T3) ------------------------------------------------------


def _new_holder(
    campaign: TicketCampaign, ticket: Ticket, holder: str, household: frozenset[str]
) -> Ticket:
    holder = _text(holder, "holder")
    if holder == ticket.holder:
        raise InvalidRequest("the ticket passes to another person", field="holder")
    if (campaign.household_required or household) and holder not in household:
        raise InvalidRequest("the household list names the new holder", field="household")
    return dataclasses.replace(
        ticket,
        holder=holder,
        household=frozenset(household),
        home_kept_doc=None,  # T4 [choice]: the record was the old household's
        home_kept_on=None,
    )


def transfer_ticket(
    campaign: TicketCampaign,
    ticket: Ticket,
    *,
    to_holder: str,
    to_household: frozenset[str],
    home_in_city: bool,
    all_members_signed: bool,
    notary_no: str,
    now: datetime,
) -> Ticket:
    """Rule T3: pass the ticket to another holder (Suining: once; the transferor's household
    keeps a home in the city; all its members signed; notarised). Its expiry is unchanged.
    Raises ``ticket_transfer_refused`` with the reason (``not_allowed`` in Shangqiu)."""
    rules = campaign.transfer
    if rules.max_transfers == 0:
        raise TicketTransferRefused(reason="not_allowed")
    check_holds_value(ticket)
    if ticket.status is TicketStatus.LOST:
        raise TicketReportedLost(notice_on=ticket.lost_notice_on)
    if is_expired(campaign, ticket, now):
        raise TicketTransferRefused(reason="expired")
    if ticket.transfers >= rules.max_transfers:
        raise TicketTransferRefused(reason="already_transferred")
    if rules.unused_only and (ticket.used_fen or ticket.cashed_out_fen):
        raise TicketTransferRefused(reason="used")  # [choice]
    shown = {
        TransferRequirement.HOME_IN_CITY: home_in_city,
        TransferRequirement.ALL_MEMBERS_SIGNED: all_members_signed,
        TransferRequirement.NOTARISED: bool(notary_no.strip()),
    }
    for requirement in sorted(rules.requires):
        if not shown[requirement]:
            raise TicketTransferRefused(reason=requirement.value)
    moved = _new_holder(campaign, ticket, to_holder, to_household)
    return dataclasses.replace(moved, transfers=ticket.transfers + 1)


def pass_to_heir(
    campaign: TicketCampaign,
    ticket: Ticket,
    *,
    heir: str,
    heir_household: frozenset[str],
    certificate_no: str,
) -> Ticket:
    """Rule T3: the holder died; the heir takes the ticket (更名) on a notarised inheritance
    certificate. Expiry, balance and uses are unchanged; it is no transfer. Raises
    ``ticket_transfer_refused`` (``no_heir`` where the programme has no such rule,
    ``certificate`` without the certificate's number)."""
    if not campaign.transfer.heir:
        raise TicketTransferRefused(reason="no_heir")
    check_holds_value(ticket)
    if not certificate_no.strip():
        raise TicketTransferRefused(reason="certificate")
    return _new_holder(campaign, ticket, heir, heir_household)


# --- loss and replacement (T13) ---------------------------------------------------------


def replacement_opens(campaign: TicketCampaign, published_on: date) -> date:
    """Rule T13: the first day a replacement may be asked for: the ``notice_working_days``-th
    working day after the newspaper notice (the notice day not counted) [choice: "10个工作日后"
    read as on that day]. Raises ``working_calendar_missing`` past the calendar's data."""
    days = campaign.notice_working_days
    if days == 0 or campaign.calendar is None:
        return published_on
    return campaign.calendar.add_working_days(published_on, days)


def report_lost(
    campaign: TicketCampaign, ticket: Ticket, *, newspaper: str, published_on: date, today: date
) -> Ticket:
    """Rule T13: the holder reported the paper ticket lost, with a notice in a city newspaper
    published on ``published_on``; no use while the notice runs [choice]."""
    check_holds_value(ticket)
    if ticket.status is TicketStatus.LOST:
        raise TicketReportedLost(notice_on=ticket.lost_notice_on)
    _text(newspaper, "newspaper")
    if published_on > today:
        raise InvalidDate("the notice is published after today", field="published_on")
    return dataclasses.replace(ticket, status=TicketStatus.LOST, lost_notice_on=published_on)


def replace_lost(
    campaign: TicketCampaign, ticket: Ticket, *, new_number: str, today: date
) -> Ticket:
    """Rule T13: the replacement, once the notice has run: a new number; the expiry and the
    uses are kept, the old number is void. Raises ``replacement_not_yet`` before
    ``replacement_opens``."""
    check_holds_value(ticket)
    if ticket.status is not TicketStatus.LOST or ticket.lost_notice_on is None:
        raise InvalidRequest("only a ticket reported lost is replaced", field="number")
    opens = replacement_opens(campaign, ticket.lost_notice_on)
    if today < opens:
        raise ReplacementNotYet(opens_on=opens)
    number = _text(new_number, "new_number")
    if number == ticket.number or number in ticket.void_numbers:
        raise InvalidRequest("a replacement has a new number", field="new_number")
    return dataclasses.replace(
        ticket,
        number=number,
        void_numbers=(*ticket.void_numbers, ticket.number),
        status=TicketStatus.ACTIVE,
        lost_notice_on=None,
    )


# --- a home kept (T4) -------------------------------------------------------------------


def record_home_kept(
    campaign: TicketCampaign, ticket: Ticket, *, document_no: str, today: date
) -> Ticket:
    """Rule T4 (Suining) [choice]: the issuer records, with the verifying document's number,
    that the ticket's household keeps a home; from then on its uses may buy the property
    types ``home_kept_for`` names (商业/办公/车位). Refused (``invalid_request``) in a
    programme that needs no such record, on a ticket holding nothing (``ticket_void``), and
    once recorded (``conflict``, ``home_kept_recorded``)."""
    if not campaign.home_kept_for:
        raise InvalidRequest(
            "this programme needs no record of a home kept", field="ticket_id"
        )  # T4
    check_holds_value(ticket)
    document = _text(document_no, "document_no")
    if ticket.home_kept_on is not None:
        raise Conflict(
            "the household's home is already recorded",
            reason="home_kept_recorded",
            document_no=ticket.home_kept_doc or "",
        )
    return dataclasses.replace(ticket, home_kept_doc=document, home_kept_on=today)


def home_kept(tickets: Sequence[Ticket]) -> bool:
    """Rule T4: a use's tickets all carry the record that their household keeps a home."""
    return bool(tickets) and all(t.home_kept_on is not None for t in tickets)


# --- void and return (T1, T2) -----------------------------------------------------------


def void_ticket(ticket: Ticket, *, decision_no: str) -> Ticket:
    """Rule T1: the issuer voids a ticket issued in error — only one never used nor cashed
    out. Its value leaves the programme (counted as returned)."""
    check_holds_value(ticket)
    _text(decision_no, "decision_no")
    if ticket.used_fen or ticket.cashed_out_fen or ticket.split_out_fen:
        raise TicketReturnRefused("a ticket already used is not voided", reason="used")
    return dataclasses.replace(
        ticket,
        status=TicketStatus.VOID,
        returned_fen=ticket.returned_fen + ticket.balance_fen,
        balance_fen=0,
    )


def return_balance(
    campaign: TicketCampaign, ticket: Ticket, *, agreement_no: str, now: datetime
) -> Ticket:
    """Rule T2: an expired ticket's balance goes back, for another form of compensation under
    a supplementary agreement ([choice for Shangqiu]); before expiry it is refused [choice].
    Suining's per-m² reward is simply never earned (T8 applies at a use only)."""
    check_holds_value(ticket)
    _text(agreement_no, "agreement_no")
    if not is_expired(campaign, ticket, now):
        raise TicketReturnRefused("the ticket is still valid", reason="not_expired")
    if ticket.balance_fen == 0:
        raise TicketReturnRefused("nothing is left on the ticket", reason="nothing_left")
    return dataclasses.replace(
        ticket,
        status=TicketStatus.RETURNED,
        returned_fen=ticket.returned_fen + ticket.balance_fen,
        balance_fen=0,
    )


def exit_date(campaign: TicketCampaign, notice_on: date) -> date:
    """Rule T4: a developer that gave notice on ``notice_on`` leaves the pool at the end of
    this day (Suining: 3 months' notice, Civil Code months)."""
    return add_months(notice_on, campaign.exit_notice_months)
