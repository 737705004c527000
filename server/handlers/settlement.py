"""Monthly settlement (rule S1, F3) and the district ranking (rule S3) over HTTP; the use cases
are server/services/settlement.py."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from msgspec import UnsetType

from server import charts
from server.auth import Role, principal_of, requires
from server.handlers.ports import ports_of
from server.schemas import BuildSettlementRequest, RankingQuery, SettlementStepRequest
from server.services import settlement
from server.services.settlement import BatchView
from server.web import TZ, path_id, read_body_as, read_query
from shared import settlement as rules
from shared.rules import payment_due

READERS = (Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR, Role.AUDITOR)


def _batch_body(view: BatchView, tz: Any) -> dict[str, Any]:
    batch = view.batch

    def when(at: Any) -> str | None:
        return at.astimezone(tz).isoformat() if at else None

    return {
        "settlement_id": batch.id,
        "campaign_id": batch.campaign_id,
        "district": batch.district,
        "month": batch.month.strftime("%Y-%m"),
        "status": batch.status,
        # rule S1: paid before the 15th of the next month, the last time before 2025-05-15
        "payment_due_before": (
            payment_due(view.campaign, batch.month).isoformat()
            if view.campaign is not None
            else None
        ),
        "redemption_count": batch.redemption_count,
        "voucher_count": batch.voucher_count,
        "amount_fen": batch.amount_fen,
        "created_at": when(batch.created_at),
        "reviewed_at": when(batch.reviewed_at),
        "approved_at": when(batch.approved_at),
        "paid_at": when(batch.paid_at),
        "reviewed_by": batch.reviewed_by,
        "approved_by": batch.approved_by,
        "paid_by": batch.paid_by,
        "lines": [
            {
                "merchant_id": x.merchant_id,
                "merchant_name": x.merchant_name,
                "redemptions": x.redemptions,
                "vouchers": x.vouchers,
                "amount_fen": x.amount_fen,
            }
            for x in view.lines
        ],
    }


@requires(Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR)
async def build(request: web.Request) -> web.Response:
    """Rule S1: build the batch of a campaign, district and month once the month is over."""
    body = await read_body_as(request, BuildSettlementRequest)
    cmd = settlement.BuildBatch(body.campaign_id, body.district, body.month)
    view = await settlement.build(ports_of(request), principal_of(request), cmd)
    return web.json_response(_batch_body(view, request.app[TZ]), status=201)


def _batch_id(request: web.Request) -> int:
    return path_id(request, "settlement_id", "no such settlement batch")


@requires(*READERS)
async def show(request: web.Request) -> web.Response:
    view = await settlement.show(ports_of(request), principal_of(request), _batch_id(request))
    return web.json_response(_batch_body(view, request.app[TZ]))


@requires(*READERS)
async def finance_csv(request: web.Request) -> web.Response:
    """Rule S1: the finance bureau's CSV; its total row reconciles to the ledger."""
    view = await settlement.show(ports_of(request), principal_of(request), _batch_id(request))
    batch = view.batch
    named = view.campaign.districts.get(batch.district) if view.campaign else None
    text = rules.finance_csv(
        batch_id=batch.id,
        campaign_id=batch.campaign_id,
        district=named.name if named else batch.district,  # 东昌府区, not its code
        month=batch.month,
        status=rules.STATUS_NAMES.get(batch.status, batch.status),
        lines=view.lines,
    )
    name = f"settlement-{batch.id}-{batch.district}-{batch.month:%Y-%m}.csv"
    return web.Response(
        body=("\ufeff" + text).encode(),  # BOM: the finance bureau opens it in Excel
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@requires(Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR)
async def step(request: web.Request) -> web.Response:
    """Rule S1: review (the batch's district), approve (city office), pay (recorded by the
    city office), in that order; no account takes two of these steps on one batch."""
    body = await read_body_as(request, SettlementStepRequest)
    note = None if isinstance(body.note, UnsetType) else body.note
    cmd = settlement.TakeStep(_batch_id(request), body.step, note)
    view = await settlement.take_step(ports_of(request), principal_of(request), cmd)
    return web.json_response(_batch_body(view, request.app[TZ]))


@requires(Role.CITY_OPERATOR, Role.AUDITOR)
async def ranking(request: web.Request) -> web.Response:
    """Rule S3: the month's district ranking as JSON, CSV or a PNG chart."""
    asked = read_query(request, RankingQuery)  # a month within what the server serves
    found = await settlement.ranking(ports_of(request), asked.month, asked.campaign_id)
    month, ranked = found.month, found.ranked
    if asked.format == "csv":
        return web.Response(
            body=("\ufeff" + rules.ranking_csv(month, ranked)).encode(),
            content_type="text/csv",
            charset="utf-8",
        )
    if asked.format == "png":
        return web.Response(
            body=await asyncio.to_thread(charts.ranking_png, month, ranked),
            content_type="image/png",
        )
    return web.json_response(
        {
            "month": month.strftime("%Y-%m"),
            "campaigns": found.campaign_ids,
            "districts": [
                {
                    "rank": r.rank,
                    "district": r.figures.district,
                    "name": r.figures.name,
                    "claims": r.figures.claims,
                    "vouchers_issued": r.figures.vouchers_issued,
                    "vouchers_redeemed": r.figures.vouchers_redeemed,
                    "value_redeemed_fen": r.figures.value_redeemed_fen,
                    "issued_to_date": r.figures.issued_to_date,
                    "redeemed_to_date": r.figures.redeemed_to_date,
                    "redemption_rate_bp": r.redemption_rate_bp,
                }
                for r in ranked
            ],
        }
    )
