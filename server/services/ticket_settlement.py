"""House tickets: settlement with the sellers (rule T12) and the programme's reports (T14).

A settlement is built for a programme's issuing district at a settlement point (Suining every
6 months from its anchor; Shangqiu on any day a seller submits): each use of the district
whose conditions were recorded by then is paid what is due (the ticket amount, its subsidy
and reward), at most 90% before the buyer's property certificate and the rest once it is
recorded (Suining); a cancelled use's payments come back (T11). It is then reviewed by the
issuer, approved and paid by the city's finance side, by three accounts (S1's separation of
duties). The decisions are ``shared/ticket_payouts.py``'s; the SQL ``server/db``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from server.auth import Principal, Role
from server.db import Conn, parties
from server.db import admin as audit_db
from server.db import ticket_settlement as db
from server.db import tickets as tickets_db
from server.db.ticket_settlement import Batch, BatchLine, NewLine
from server.services.ports import Ports
from server.services.scope import all_district_codes
from server.services.ticket_issuance import programme, today_of
from shared import settlement as steps
from shared.errors import (
    Conflict,
    Forbidden,
    InvalidDate,
    InvalidRequest,
    NotFound,
    SettlementExists,
)
from shared.house_tickets import Ticket, TicketUse
from shared.ticket_campaign import TicketCampaign
from shared.ticket_payouts import (
    TICKET_SETTLEMENT_STEPS,
    PublishedTransaction,
    ReportRow,
    Settleable,
    payment_due,
    published_transactions,
    settlement_lines,
    ticket_report,
)


def _district_of(ports: Ports, campaign: TicketCampaign, me: Principal, asked: str) -> str:
    """The issuing district named (code or name), and the caller's to act in (T1, X2)."""
    district = all_district_codes(ports).get(asked)
    if district is None or district not in campaign.issuing_districts:
        raise InvalidRequest("not an issuing district of this programme", field="district")
    if me.role is Role.TICKET_ISSUER and me.district != district:
        raise Forbidden("an issuer settles its own district's tickets", district=district)
    return district


@dataclass(frozen=True, slots=True)
class BatchView:
    batch: Batch
    lines: list[BatchLine]
    campaign: TicketCampaign
    payment_due: date


async def _view(ports: Ports, conn: Conn, batch: Batch) -> BatchView:
    campaign = programme(ports, batch.campaign_id)
    return BatchView(
        batch, await db.lines(conn, batch.id), campaign, payment_due(campaign, batch.point)
    )


async def _district_uses(
    conn: Conn, campaign: TicketCampaign, district: str
) -> list[tuple[int, TicketUse]]:
    """The programme's uses that are the district's: their first draw's ticket's (T14)."""
    tickets = await tickets_db.programme_tickets(conn, campaign.id, district)
    ids = {t.id for t in tickets}
    uses = await tickets_db.programme_uses(conn, campaign.id, ticket_ids=sorted(ids))
    return [(use_id, u) for use_id, u in uses if u.draws[0].ticket_id in ids]


async def build(
    ports: Ports, me: Principal, campaign_id: str, district_name: str, point: date
) -> BatchView:
    """Rule T12: the settlement of a district at a settlement point (not a future one):
    every line due by then, once; refused when there is nothing to settle or the batch of
    this point exists (``settlement_exists``)."""
    campaign = programme(ports, campaign_id)
    district = _district_of(ports, campaign, me, district_name)
    if point > today_of(ports, campaign):
        raise InvalidDate("a settlement point is not in the future", field="point")
    async with ports.pool.acquire() as conn, conn.transaction():
        await db.lock_scope(conn, campaign.id, district)
        if await db.batch_at(conn, campaign.id, district, point) is not None:
            raise SettlementExists(point=point.isoformat(), district=district)
        uses = await _district_uses(conn, campaign, district)
        ids = [use_id for use_id, _ in uses]
        paid = await db.paid_per_use(conn, ids)
        recorded = await db.conditions_of(conn, ids)
        settleable: list[Settleable] = []
        by_contract: dict[tuple[str, str], int] = {}
        for use_id, use in uses:
            conditions, certificate_on = db.settlement_conditions(recorded.get(use_id, {}))
            settleable.append(
                Settleable(
                    seller=use.seller,
                    contract_no=use.contract_no,
                    due_fen=use.seller_due_fen,
                    paid_fen=paid.get(use_id, 0),
                    conditions=conditions,
                    certificate_on=certificate_on,
                    cancelled=use.cancelled,
                )
            )
            by_contract[(use.seller, use.contract_no)] = use_id
        lines = settlement_lines(campaign, settleable, point)  # T12 (refuses a non-point)
        if not lines:
            raise Conflict("nothing is due to the sellers at this point", reason="nothing_due")
        new = [
            NewLine(
                by_contract[(x.seller, x.contract_no)], int(x.seller), x.kind.value, x.amount_fen
            )
            for x in lines
        ]
        batch_id = await db.build(
            conn, campaign_id=campaign.id, district=district, point=point, lines=new
        )
        if batch_id is None:
            raise SettlementExists(point=point.isoformat(), district=district)
        await audit_db.audit(
            conn,
            actor=me.actor,
            action="ticket_settlement.build",
            subject=f"ticket_settlement:{batch_id}",
            details={"campaign_id": campaign.id, "district": district, "point": str(point)},
        )
        found = await db.batch(conn, batch_id)
        assert found is not None
        return await _view(ports, conn, found)


async def _readable(conn: Conn, me: Principal, batch_id: int, *, lock: bool = False) -> Batch:
    found = await db.batch(conn, batch_id, lock=lock)
    if found is None:
        raise NotFound("no such ticket settlement")
    if me.role is Role.TICKET_ISSUER and me.district != found.district:
        raise NotFound("no such ticket settlement")  # X2: another district's is not its
    return found


async def show(ports: Ports, me: Principal, batch_id: int) -> BatchView:
    async with ports.pool.acquire() as conn:
        return await _view(ports, conn, await _readable(conn, me, batch_id))


async def listed(
    ports: Ports, me: Principal, campaign_id: str | None, district: str | None
) -> list[Batch]:
    if me.role is Role.TICKET_ISSUER:
        district = me.district
    elif district is not None:
        district = all_district_codes(ports).get(district, district)
    async with ports.pool.acquire() as conn:
        return await db.batches(conn, campaign_id=campaign_id, district=district)


async def kinds_of(ports: Ports, batches: list[Batch]) -> dict[int, dict[str, int]]:
    """Rule T12: what each of ``batches`` (as ``listed`` gave them) pays by kind: in full
    (Shangqiu), the first part and the holdback released after the property certificate
    (Suining's 90/10), and clawbacks (T11)."""
    if not batches:
        return {}
    async with ports.pool.acquire() as conn:
        return await db.kind_totals(conn, [b.id for b in batches])


async def take_step(
    ports: Ports, me: Principal, batch_id: int, step: str, note: str | None
) -> BatchView:
    """Rule T12 with S1's steps: reviewed by the issuer, approved and paid by the city's
    finance side; no account takes two of them on one batch."""
    async with ports.pool.acquire() as conn, conn.transaction():
        found = await _readable(conn, me, batch_id, lock=True)
        status = steps.next_status(found.status, step, str(me.role), TICKET_SETTLEMENT_STEPS)
        taken_by = {
            "review": found.reviewed_by,
            "approve": found.approved_by,
            "pay": found.paid_by,
        }
        steps.check_separation(step, me.account_id, taken_by)
        assert me.account_id is not None
        await db.set_status(conn, batch_id, status, ports.clock(), me.account_id)
        await audit_db.audit(
            conn,
            actor=me.actor,
            action=f"ticket_settlement.{step}",
            subject=f"ticket_settlement:{batch_id}",
            reason=note,
        )
        after = await db.batch(conn, batch_id)
        assert after is not None
        return await _view(ports, conn, after)


# --- reports (T14) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    campaign: TicketCampaign
    on: date
    district: str | None  # an issuer's report is its district's
    rows: tuple[ReportRow, ...]
    names: dict[str, str]  # district codes and seller ids -> their names


async def report(ports: Ports, me: Principal, campaign_id: str, on: date | None = None) -> Report:
    """Rule T14: the programme's figures per programme, district and seller: tickets issued
    and their value, used, cashed out, returned, expired, subsidies and rewards, bonuses,
    what is due to the sellers and what was paid. An issuer's report covers its district."""
    campaign = programme(ports, campaign_id)
    day = on or today_of(ports, campaign)
    district = me.district if me.role is Role.TICKET_ISSUER else None
    async with ports.pool.acquire() as conn:
        tickets: list[Ticket] = await tickets_db.programme_tickets(conn, campaign.id, district)
        ids = [t.id for t in tickets]
        uses = [u for _, u in await tickets_db.programme_uses(conn, campaign.id, ticket_ids=ids)]
        if district is not None:
            mine = set(ids)
            uses = [u for u in uses if u.draws[0].ticket_id in mine]
        bonuses = {
            p.original_id: p.amount_fen
            for p in await db.payouts(conn, campaign_id=campaign.id, district=district)
            if p.kind == "bonus"
        }
        paid = await db.settled_per_contract(conn, campaign.id)
        sellers = await parties.merchant_names(conn, [int(u.seller) for u in uses])
    rows = ticket_report(campaign, tickets, uses, bonuses_fen=bonuses, paid_fen=paid, on=day)
    names = {code: d.name for code, d in campaign.districts.items()}
    names |= {str(i): name for i, name in sellers.items()}
    names[campaign.id] = campaign.name
    return Report(campaign, day, district, rows, names)


async def transactions(
    ports: Ports, campaign_id: str
) -> tuple[TicketCampaign, tuple[PublishedTransaction, ...], dict[str, str]]:
    """Rule T14: the transactions the programme publishes (no buyer, no ticket number)."""
    campaign = programme(ports, campaign_id)
    async with ports.pool.acquire() as conn:
        uses = [u for _, u in await tickets_db.programme_uses(conn, campaign.id)]
        sellers = await parties.merchant_names(conn, [int(u.seller) for u in uses])
    return campaign, published_transactions(uses), {str(i): n for i, n in sellers.items()}
