"""Monthly settlement (rules S1, F3) and the district ranking (rule S3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import partial

from server.auth import Principal
from server.db import Conn
from server.db import admin as audit_db
from server.db import settlement as db
from server.db.settlement import Batch
from server.services.ports import Ports
from server.services.scope import district_codes, require_district
from shared import settlement as rules
from shared.campaign import Campaign
from shared.errors import InvalidRequest, NotFound, SettlementExists
from shared.rules import month_bounds


@dataclass(frozen=True, slots=True)
class BuildBatch:
    campaign_id: str
    district: str  # a code, short name or full name
    month: str  # YYYY-MM


@dataclass(frozen=True, slots=True)
class TakeStep:
    batch_id: int
    step: str  # review | approve | pay
    note: str | None = None


@dataclass(frozen=True, slots=True)
class BatchView:
    batch: Batch
    lines: list[rules.Line]
    campaign: Campaign | None  # None if its campaign is no longer loaded


@dataclass(frozen=True, slots=True)
class Ranking:
    month: date
    campaign_ids: list[str]
    ranked: list[rules.Ranked]


async def _view(ports: Ports, conn: Conn, batch: Batch) -> BatchView:
    lines = await db.lines(conn, batch.id)
    return BatchView(batch, lines, ports.campaigns.get(batch.campaign_id))


async def build(ports: Ports, me: Principal, cmd: BuildBatch) -> BatchView:
    """Rule S1: build the batch of a campaign, district and month once the month is over."""
    campaign = ports.campaigns.get(cmd.campaign_id)
    if campaign is None:
        raise InvalidRequest("unknown campaign", field="campaign_id")
    district = district_codes(ports.campaigns).get(cmd.district)
    if district is None or district not in campaign.usable_districts:
        raise InvalidRequest("not a district of this campaign", field="district")
    require_district(me, district)
    month = rules.parse_month(cmd.month)
    now = ports.clock()
    start, end = rules.check_month_over(month, now, ports.tz)
    async with ports.pool.acquire() as conn, conn.transaction():
        batch_id = await db.build_batch(
            conn,
            campaign_id=campaign.id,
            district=district,
            month=month,
            start=start,
            end=end,
            now=now,
        )
        if batch_id is None:
            raise SettlementExists(month=month.strftime("%Y-%m"), district=district)
        await audit_db.audit(
            conn,
            actor=me.actor,
            action="settlement.build",
            subject=f"settlement:{batch_id}",
            details={"campaign_id": campaign.id, "district": district, "month": str(month)},
        )
        batch = await db.batch(conn, batch_id)
        assert batch is not None
        return await _view(ports, conn, batch)


async def _readable(conn: Conn, me: Principal, batch_id: int, *, lock: bool = False) -> Batch:
    batch = await db.batch(conn, batch_id, lock=lock)
    if batch is None:
        raise NotFound("no such settlement batch")
    require_district(me, batch.district)  # rule X2
    return batch


async def show(ports: Ports, me: Principal, batch_id: int) -> BatchView:
    async with ports.pool.acquire() as conn:
        return await _view(ports, conn, await _readable(conn, me, batch_id))


async def take_step(ports: Ports, me: Principal, cmd: TakeStep) -> BatchView:
    """Rule S1: review (the batch's district), approve (city office), pay (recorded by the
    city office), in that order; no account takes two of these steps on one batch."""
    async with ports.pool.acquire() as conn, conn.transaction():
        await _readable(conn, me, cmd.batch_id)
        locked = await db.batch(conn, cmd.batch_id, lock=True)
        assert locked is not None
        status = rules.next_status(locked.status, cmd.step, str(me.role))
        taken_by = {
            "review": locked.reviewed_by,
            "approve": locked.approved_by,
            "pay": locked.paid_by,
        }
        rules.check_separation(cmd.step, me.account_id, taken_by)  # rule S1
        assert me.account_id is not None
        await db.set_status(conn, cmd.batch_id, status, ports.clock(), me.account_id)
        await audit_db.audit(
            conn,
            actor=me.actor,
            action=f"settlement.{cmd.step}",
            subject=f"settlement:{cmd.batch_id}",
            reason=cmd.note,
        )
        after = await db.batch(conn, cmd.batch_id)
        assert after is not None
        return await _view(ports, conn, after)


async def ranking(ports: Ports, month_text: str, campaign_id: str | None) -> Ranking:
    """Rule S3: the month's district ranking, over one campaign or all loaded ones."""
    month = rules.parse_month(month_text)
    campaigns = ports.campaigns
    if campaign_id is not None and campaign_id not in campaigns:
        raise InvalidRequest("unknown campaign", field="campaign_id")
    chosen = [campaign_id] if campaign_id else sorted(campaigns)
    districts = sorted({d for c in chosen for d in campaigns[c].issuing_districts})
    start, end = month_bounds(month, ports.tz)
    figures = await ports.report(  # issue 14: a report, from the replica when there is one
        partial(db.district_figures, campaign_ids=chosen, districts=districts, start=start, end=end)
    )
    return Ranking(month, chosen, rules.rank_districts(figures))
