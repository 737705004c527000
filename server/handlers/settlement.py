"""Monthly settlement (rule S1, F3) and the district ranking (rule S3)."""

from __future__ import annotations

import io
from typing import Any

import asyncpg
from aiohttp import web

from server.auth import Role, principal_of, requires
from server.db import admin as audit_db
from server.db import settlement as db
from server.handlers.admin import require_district
from server.handlers.operators import district_names
from server.schemas import RankingQuery
from server.web import (
    CAMPAIGNS,
    CLOCK,
    PG,
    TZ,
    allowed_fields,
    get_str,
    path_id,
    read_json,
    read_query,
)
from shared import settlement as rules
from shared.errors import InvalidRequest, NotFound, SettlementExists
from shared.rules import month_bounds, payment_due

READERS = (Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR, Role.AUDITOR)


def _batch_body(
    row: asyncpg.Record, lines: list[asyncpg.Record], tz: Any, campaign: Any = None
) -> dict[str, Any]:
    def when(name: str) -> str | None:
        return row[name].astimezone(tz).isoformat() if row[name] else None

    return {
        "settlement_id": row["id"],
        "campaign_id": row["campaign_id"],
        "district": row["district"],
        "month": row["month"].strftime("%Y-%m"),
        "status": row["status"],
        # rule S1: paid before the 15th of the next month, the last time before 2025-05-15
        "payment_due_before": (
            payment_due(campaign, row["month"]).isoformat() if campaign is not None else None
        ),
        "redemption_count": row["redemption_count"],
        "voucher_count": row["voucher_count"],
        "amount_fen": row["amount_fen"],
        "created_at": when("created_at"),
        "reviewed_at": when("reviewed_at"),
        "approved_at": when("approved_at"),
        "paid_at": when("paid_at"),
        "reviewed_by": row["reviewed_by"],
        "approved_by": row["approved_by"],
        "paid_by": row["paid_by"],
        "lines": [
            {
                "merchant_id": x["merchant_id"],
                "merchant_name": x["merchant_name"],
                "redemptions": x["redemption_count"],
                "vouchers": x["voucher_count"],
                "amount_fen": x["amount_fen"],
            }
            for x in lines
        ],
    }


@requires(Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR)
async def build(request: web.Request) -> web.Response:
    """Rule S1: build the batch of a campaign, district and month once the month is over."""
    me = principal_of(request)
    body = await read_json(request)
    allowed_fields(body, "campaign_id", "district", "month")
    campaign = request.app[CAMPAIGNS].get(get_str(body, "campaign_id"))
    if campaign is None:
        raise InvalidRequest("unknown campaign", field="campaign_id")
    district = district_names(request).get(get_str(body, "district"))
    if district is None or district not in campaign.usable_districts:
        raise InvalidRequest("not a district of this campaign", field="district")
    require_district(me, district)
    month = rules.parse_month(get_str(body, "month", max_len=7))
    now = request.app[CLOCK]()
    start, end = rules.check_month_over(month, now, request.app[TZ])
    async with request.app[PG].acquire() as conn, conn.transaction():
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
        row = await db.batch(conn, batch_id)
        lines = await db.lines(conn, batch_id)
    assert row is not None
    return web.json_response(
        _batch_body(row, lines, request.app[TZ], request.app[CAMPAIGNS].get(row["campaign_id"])),
        status=201,
    )


async def _readable(request: web.Request, conn: Any) -> tuple[asyncpg.Record, list[Any]]:
    me = principal_of(request)
    batch_id = path_id(request, "settlement_id", "no such settlement batch")
    row = await db.batch(conn, batch_id)
    if row is None:
        raise NotFound("no such settlement batch")
    require_district(me, row["district"])
    return row, await db.lines(conn, batch_id)


@requires(*READERS)
async def show(request: web.Request) -> web.Response:
    async with request.app[PG].acquire() as conn:
        row, lines = await _readable(request, conn)
    return web.json_response(
        _batch_body(row, lines, request.app[TZ], request.app[CAMPAIGNS].get(row["campaign_id"]))
    )


@requires(*READERS)
async def finance_csv(request: web.Request) -> web.Response:
    """Rule S1: the finance bureau's CSV; its total row reconciles to the ledger."""
    async with request.app[PG].acquire() as conn:
        row, lines = await _readable(request, conn)
    campaign = request.app[CAMPAIGNS].get(row["campaign_id"])
    named = campaign.districts.get(row["district"]) if campaign else None
    text = rules.finance_csv(
        batch_id=row["id"],
        campaign_id=row["campaign_id"],
        district=named.name if named else row["district"],  # 东昌府区, not its code
        month=row["month"],
        status=rules.STATUS_NAMES.get(row["status"], row["status"]),
        lines=[
            rules.Line(
                x["merchant_id"],
                x["merchant_name"],
                x["redemption_count"],
                x["voucher_count"],
                x["amount_fen"],
            )
            for x in lines
        ],
    )
    name = f"settlement-{row['id']}-{row['district']}-{row['month']:%Y-%m}.csv"
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
    me = principal_of(request)
    body = await read_json(request)
    allowed_fields(body, "step", "note")
    name = get_str(body, "step", max_len=16)
    note = get_str(body, "note", max_len=500, required=False) or None
    async with request.app[PG].acquire() as conn, conn.transaction():
        found, _ = await _readable(request, conn)
        batch_id = found["id"]
        locked = await db.batch(conn, batch_id, lock=True)
        assert locked is not None
        status = rules.next_status(locked["status"], name, str(me.role))
        taken_by = {
            "review": locked["reviewed_by"],
            "approve": locked["approved_by"],
            "pay": locked["paid_by"],
        }
        rules.check_separation(name, me.account_id, taken_by)  # rule S1
        assert me.account_id is not None
        await db.set_status(conn, batch_id, status, request.app[CLOCK](), me.account_id)
        await audit_db.audit(
            conn,
            actor=me.actor,
            action=f"settlement.{name}",
            subject=f"settlement:{batch_id}",
            reason=note,
        )
        after = await db.batch(conn, batch_id)
        lines = await db.lines(conn, batch_id)
    assert after is not None
    return web.json_response(
        _batch_body(after, lines, request.app[TZ], request.app[CAMPAIGNS].get(after["campaign_id"]))
    )


@requires(Role.CITY_OPERATOR, Role.AUDITOR)
async def ranking(request: web.Request) -> web.Response:
    """Rule S3: the month's district ranking as JSON, CSV or a PNG chart."""
    asked = read_query(request, RankingQuery)  # a month within what the server serves
    month = rules.parse_month(asked.month)
    fmt = asked.format
    campaigns = request.app[CAMPAIGNS]
    wanted = asked.campaign_id
    if wanted is not None and wanted not in campaigns:
        raise InvalidRequest("unknown campaign", field="campaign_id")
    chosen = [wanted] if wanted else sorted(campaigns)
    districts = sorted({d for c in chosen for d in campaigns[c].issuing_districts})
    start, end = month_bounds(month, request.app[TZ])
    async with request.app[PG].acquire() as conn:
        rows = await db.district_figures(
            conn, campaign_ids=chosen, districts=districts, start=start, end=end
        )
    ranked = rules.rank_districts(
        [
            rules.DistrictFigures(
                district=r["district"],
                name=r["name"],
                claims=r["claims"],
                vouchers_issued=r["vouchers_issued"],
                vouchers_redeemed=r["vouchers_redeemed"],
                value_redeemed_fen=r["value_redeemed_fen"],
                issued_to_date=r["issued_to_date"],
                redeemed_to_date=r["redeemed_to_date"],
            )
            for r in rows
        ]
    )
    if fmt == "csv":
        return web.Response(
            body=("\ufeff" + rules.ranking_csv(month, ranked)).encode(),
            content_type="text/csv",
            charset="utf-8",
        )
    if fmt == "png":
        return web.Response(body=ranking_chart(month, ranked), content_type="image/png")
    return web.json_response(
        {
            "month": month.strftime("%Y-%m"),
            "campaigns": chosen,
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


def ranking_chart(month: Any, ranked: list[rules.Ranked]) -> bytes:
    """Rule S3: a bar chart of the redemption rate per district (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=100)
    axes = figure.subplots()
    labels = [r.figures.district for r in ranked]
    rates = [r.redemption_rate_bp / 100 for r in ranked]
    bars = axes.bar(labels, rates, color="#c0392b")
    axes.bar_label(bars, labels=[f"{x:.2f}%" for x in rates])
    axes.set_ylabel("redemption rate to date (%)")
    axes.set_title(f"District ranking {month:%Y-%m}")
    axes.set_ylim(0, max([*rates, 1.0]) * 1.2)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
