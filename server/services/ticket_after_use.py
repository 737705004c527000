"""House tickets after use, at the issuer, rules T9-T12: a cancelled purchase contract
reversed (T11), the settlement conditions of a use recorded (T12), the residual cash-out
granted and paid (T9), the usage bonus reviewed and paid (T10). An issuer acts for its own
district: a use is its first draw's ticket's district's (T14 [choice], as the reports count
it); every act is audited (``ticket_events`` for the tickets, ``audit_log`` for the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from server.auth import Principal, Role
from server.db import Conn, parties
from server.db import admin as audit_db
from server.db import ticket_settlement as db
from server.db import tickets as tickets_db
from server.db.ticket_settlement import CERTIFICATE, Payout
from server.services.ports import Ports
from server.services.ticket_issuance import (
    TicketFile,
    check_issuer,
    check_reader,
    decided_again,
    programme,
    ticket_file,
    today_of,
)
from shared.errors import (
    CashoutNotDue,
    Conflict,
    Forbidden,
    InvalidDate,
    InvalidRequest,
    NotFound,
    Refused,
)
from shared.house_tickets import (
    CancelElection,
    Ticket,
    TicketUse,
    cancel_use,
    normalise_contract_no,
)
from shared.ticket_campaign import SettlementCondition, TicketCampaign
from shared.ticket_payouts import apply_cashout, bonus_quote, cashout_quote

# --- a use's file ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UseFile:
    """Rules T5-T8, T11, T12: one use with its district, conditions and settlement so far."""

    use_id: int
    use: TicketUse
    campaign: TicketCampaign
    district: str  # its first draw's ticket's (the issuer who settles it)
    merchant_name: str
    buyer_masked: str
    conditions: dict[str, tuple[date, str]]
    paid_fen: int  # in every settlement built so far, clawbacks netted
    required: tuple[str, ...]  # the conditions the programme needs before a settlement


async def _use(conn: Conn, use_id: int) -> tuple[TicketUse, dict[int, Ticket]]:
    found = await tickets_db.programme_uses(conn, None, use_ids=[use_id])
    if not found:
        raise NotFound("no such ticket use")
    use = found[0][1]
    tickets = await tickets_db.read_tickets(conn, [d.ticket_id for d in use.draws])
    return use, tickets


def _district(use: TicketUse, tickets: dict[int, Ticket]) -> Ticket:
    """The ticket whose district the use is (its first draw's, by ticket id)."""
    return tickets[use.draws[0].ticket_id]


async def _use_file(ports: Ports, conn: Conn, use_id: int) -> UseFile:
    use, tickets = await _use(conn, use_id)
    campaign = programme(ports, use.campaign_id)
    names = await parties.merchant_names(conn, [int(use.seller)])
    masks = await parties.masked_persons(conn, [use.buyer])
    return UseFile(
        use_id=use_id,
        use=use,
        campaign=campaign,
        district=_district(use, tickets).district,
        merchant_name=names.get(int(use.seller), use.seller),
        buyer_masked=masks.get(use.buyer, ""),
        conditions=(await db.conditions_of(conn, [use_id])).get(use_id, {}),
        paid_fen=(await db.paid_per_use(conn, [use_id])).get(use_id, 0),
        required=tuple(sorted(c.value for c in campaign.settlement.requires)),
    )


async def show_use(ports: Ports, me: Principal, use_id: int) -> UseFile:
    async with ports.pool.acquire() as conn:
        use, tickets = await _use(conn, use_id)
        check_reader(me, _district(use, tickets), "no such ticket use")
        return await _use_file(ports, conn, use_id)


async def find_use(ports: Ports, me: Principal, merchant_id: int, contract_no: str) -> UseFile:
    """Rule T5: a seller's contract's use (the number as entered at the sales office)."""
    async with ports.pool.acquire() as conn:
        use_id = await tickets_db.use_ids_of_contract(
            conn, merchant_id, normalise_contract_no(contract_no)
        )
    if use_id is None:
        raise NotFound("no ticket use of this contract")
    return await show_use(ports, me, use_id)


# --- a cancelled contract (T11) -----------------------------------------------------------


async def cancel(
    ports: Ports, me: Principal, use_id: int, *, proof_no: str, elect: CancelElection
) -> UseFile:
    """Rule T11: the holder's application with the contract's cancellation proof: the drawn
    amounts go back on the tickets (issue date and expiry kept) or leave them for another
    form of compensation; the subsidy and reward are reversed; what was settled to the seller
    is clawed back at the next settlement. The issuer's act: a settled use is never reversed
    at the till."""

    async def attempt(conn: Conn) -> UseFile:
        use, tickets = await _use(conn, use_id)
        first = _district(use, tickets)
        check_issuer(me, first)
        await db.lock_scope(conn, use.campaign_id, first.district)
        paid = (await db.paid_per_use(conn, [use_id])).get(use_id, 0)
        done = cancel_use(
            use,
            list(tickets.values()),
            proof_no=proof_no,
            elect=elect,
            paid_to_seller_fen=max(paid, 0),
            by_issuer=True,
        )
        await tickets_db.write_cancel(
            conn, list(tickets.values()), done, actor=me.actor, proof_no=proof_no.strip()
        )
        await audit_db.audit(
            conn,
            actor=me.actor,
            action="ticket_use.cancel",
            subject=f"ticket_use:{use_id}",
            details={
                "contract_no": use.contract_no,
                "proof_no": proof_no.strip(),
                "elect": elect.value,
                "restored_fen": done.restored_fen,
                "reversed_subsidy_fen": done.reversed_subsidy_fen,
                "reversed_reward_fen": done.reversed_reward_fen,
                "clawback_fen": done.clawback_fen,
            },
        )
        return await _use_file(ports, conn, use_id)

    return await decided_again(ports, attempt)


# --- settlement conditions (T12) ----------------------------------------------------------


async def record_condition(
    ports: Ports,
    me: Principal,
    use_id: int,
    *,
    condition: str,
    recorded_on: date,
    document_no: str,
) -> UseFile:
    """Rule T12: what the seller proved (网签备案, the fund and taxes paid, the unit
    delivered, the 消费联 surrendered) or the buyer's property certificate, with the
    document's number, recorded once by the issuer; a condition the programme does not ask
    for is refused."""
    async with ports.pool.acquire() as conn, conn.transaction():
        use, tickets = await _use(conn, use_id)
        check_issuer(me, _district(use, tickets))
        campaign = programme(ports, use.campaign_id)
        allowed = {c.value for c in campaign.settlement.requires} | {CERTIFICATE}
        if condition not in allowed:
            raise InvalidRequest(
                f"condition is one of {', '.join(sorted(allowed))}",
                field="condition",
                allowed=sorted(allowed),
            )
        if use.cancelled:
            raise Conflict("the contract was cancelled", reason="contract_cancelled")
        if not use.signed_on <= recorded_on <= today_of(ports, campaign):
            raise InvalidDate(
                "a condition is recorded between the contract's signing and today",
                field="recorded_on",
            )
        await db.record_condition(
            conn,
            use_id,
            condition,
            recorded_on=recorded_on,
            document_no=document_no.strip(),
            actor=me.actor,
        )
        await audit_db.audit(
            conn,
            actor=me.actor,
            action="ticket_use.condition",
            subject=f"ticket_use:{use_id}",
            details={"condition": condition, "document_no": document_no.strip()},
        )
        return await _use_file(ports, conn, use_id)


# --- residual cash-out (T9) ---------------------------------------------------------------


async def cashout(
    ports: Ports, me: Principal, ticket_id: int, *, application_no: str
) -> TicketFile:
    """Rule T9: the holder's application granted once the family's uses reach 90% of the
    original face value: every balance left on the family's tickets the applicant holds is
    paid in money, without interest (Suining within 6 months of the last purchase); a piece
    transferred to another person (T3) is that person's to apply for; the payment follows
    (``pay``)."""

    async def attempt(conn: Conn) -> TicketFile:
        found = (await tickets_db.read_tickets(conn, [ticket_id])).get(ticket_id)
        if found is None:
            raise NotFound("no such ticket")
        check_issuer(me, found)
        campaign = programme(ports, found.campaign_id)
        family = await tickets_db.read_family(conn, found.original_id)
        uses = await tickets_db.programme_uses(conn, campaign.id, ticket_ids=[t.id for t in family])
        live = [u.signed_on for _, u in uses if not u.cancelled]
        quote = cashout_quote(campaign, family, last_purchase_on=max(live, default=None))
        held = [t for t in family if t.holder == found.holder]  # T3: the applicant's own
        amount = sum(t.balance_fen for t in held)
        if amount == 0:
            raise CashoutNotDue("the applicant holds no balance here", reason="nothing_left")
        for before, after in zip(held, apply_cashout(held), strict=True):
            if before.balance_fen:
                await tickets_db.write_act(
                    conn,
                    before,
                    after,
                    actor=me.actor,
                    act="cashout",
                    documents={"application_no": application_no.strip()},
                    amount_fen=before.balance_fen,
                )
        await db.add_payout(
            conn,
            campaign_id=campaign.id,
            original_id=quote.original_id,
            kind="cashout",
            amount_fen=amount,
            rate_bp=None,
            due_by=quote.due_by,
            decided_on=today_of(ports, campaign),
            document_no=application_no.strip(),
            decided_by=me.actor,
        )
        fresh = await tickets_db.read_tickets(conn, [ticket_id])
        return await ticket_file(ports, conn, fresh[ticket_id])

    return await decided_again(ports, attempt)


# --- usage bonus (T10) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BonusReview:
    reviewed: list[Payout]  # bonuses now due, by original ticket
    numbers: dict[int, str]  # original ticket id -> its number
    none_due: int  # families reviewed whose usage earns no bonus
    not_yet: int  # families whose 12 months are not over


async def review_bonuses(
    ports: Ports, me: Principal, campaign_id: str, *, review_no: str
) -> BonusReview:
    """Rule T10 (Suining): every family of the issuer's district whose 12 months are over
    and whose bonus was not reviewed yet: 5% of the face value for 100% used within the 12
    months, 3% from 85%, paid within 6 months. Families below 85% earn none (nothing is
    written for them). Idempotent: a family's bonus is reviewed once."""
    campaign = programme(ports, campaign_id)
    if campaign.bonus is None:
        raise Refused("this programme has no usage bonus", reason="no_bonus")
    if me.role is not Role.TICKET_ISSUER or me.district is None:
        raise Forbidden("the issuer reviews its own district's bonuses")
    if not review_no.strip():
        raise InvalidRequest("review_no is required", field="review_no")
    today = today_of(ports, campaign)
    reviewed: list[Payout] = []
    numbers: dict[int, str] = {}
    none_due = not_yet = 0
    async with ports.pool.acquire() as conn, conn.transaction():
        tickets = await tickets_db.programme_tickets(conn, campaign.id, me.district)
        done = {p.original_id for p in await db.payouts(conn, campaign_id=campaign.id)
                if p.kind == "bonus"}  # fmt: skip
        families: dict[int, list[Ticket]] = {}
        for t in tickets:
            families.setdefault(t.original_id, []).append(t)
        uses = await tickets_db.programme_uses(
            conn, campaign.id, ticket_ids=[t.id for t in tickets]
        )
        for original_id, family in sorted(families.items()):
            if original_id in done:
                continue
            quote = bonus_quote(campaign, family, [u for _, u in uses], today)
            if quote is None or not quote.reviewed:
                not_yet += 1
                continue
            if quote.amount_fen == 0:
                none_due += 1
                continue
            reviewed.append(
                await db.add_payout(
                    conn,
                    campaign_id=campaign.id,
                    original_id=original_id,
                    kind="bonus",
                    amount_fen=quote.amount_fen,
                    rate_bp=quote.rate_bp,
                    due_by=quote.due_by,
                    decided_on=today,
                    document_no=review_no.strip(),
                    decided_by=me.actor,
                )
            )
            numbers[original_id] = next(t.number for t in family if t.id == original_id)
            await tickets_db.log_event(
                conn,
                actor=me.actor,
                act="bonus",
                ticket_id=original_id,
                amount_fen=quote.amount_fen,
                documents={"review_no": review_no.strip(), "rate_bp": str(quote.rate_bp)},
            )
    return BonusReview(reviewed, numbers, none_due, not_yet)


# --- payments to holders (T9, T10) --------------------------------------------------------


async def pay(
    ports: Ports, me: Principal, payout_id: int, *, payment_no: str
) -> tuple[Payout, str]:
    """Rules T9, T10: a cash-out or bonus paid to the holder, with the payment's number,
    once; by the issuer of the family's district. Returns it and its ticket's number."""
    async with ports.pool.acquire() as conn, conn.transaction():
        found = await db.payout(conn, payout_id, lock=True)
        if found is None:
            raise NotFound("no such payout")
        original = (await tickets_db.read_tickets(conn, [found.original_id]))[found.original_id]
        check_issuer(me, original)
        if not payment_no.strip():
            raise InvalidRequest("payment_no is required", field="payment_no")
        campaign = programme(ports, found.campaign_id)
        paid = await db.mark_paid(
            conn,
            payout_id,
            paid_on=max(today_of(ports, campaign), found.decided_on),
            payment_no=payment_no.strip(),
            paid_by=me.actor,
        )
        await tickets_db.log_event(
            conn,
            actor=me.actor,
            act=f"{found.kind}_paid",
            ticket_id=found.original_id,
            amount_fen=found.amount_fen,
            documents={"payment_no": payment_no.strip()},
        )
        return paid, original.number


async def payouts(
    ports: Ports, me: Principal, campaign_id: str, *, unpaid_only: bool
) -> tuple[list[Payout], dict[int, str]]:
    """Rules T9, T10, T14: a programme's cash-outs and bonuses (an issuer's: its district's),
    with each family's ticket number."""
    campaign = programme(ports, campaign_id)
    district = me.district if me.role is Role.TICKET_ISSUER else None
    async with ports.pool.acquire() as conn:
        found = await db.payouts(
            conn, campaign_id=campaign.id, district=district, unpaid_only=unpaid_only
        )
        originals = await tickets_db.read_tickets(conn, {p.original_id for p in found})
    return found, {i: t.number for i, t in originals.items()}


def condition_names() -> tuple[str, ...]:
    """Rule T12: every condition a use may gather, the certificate last."""
    return (*(c.value for c in SettlementCondition), CERTIFICATE)
