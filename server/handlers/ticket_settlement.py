"""House tickets' settlement with the sellers (rule T12) and reports (T14) over HTTP; the use
cases are server/services/ticket_settlement.py."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from aiohttp import web
from msgspec import UnsetType

from server import schemas as S
from server.auth import Role, principal_of, public, requires
from server.handlers.ports import ports_of
from server.services import ticket_settlement as settlement
from server.services.ticket_issuance import READERS
from server.services.ticket_settlement import BatchView, Report
from server.web import TZ, path_id, read_body_as, read_query
from shared.ticket_payouts import REPORT_COLUMNS, report_csv

BUILDERS = (Role.TICKET_ISSUER, Role.CITY_OPERATOR)
STEPPERS = (Role.TICKET_ISSUER, Role.CITY_OPERATOR)


def batch_body(view: BatchView, tz: tzinfo) -> dict[str, Any]:
    b = view.batch

    def when(at: Any) -> str | None:
        return at.astimezone(tz).isoformat() if at else None

    return {
        "settlement_id": b.id,
        "campaign_id": b.campaign_id,
        "district": b.district,
        "point": b.point.isoformat(),
        "status": b.status,
        "payment_due": view.payment_due.isoformat(),
        "amount_fen": b.amount_fen,
        "created_at": when(b.created_at),
        "reviewed_at": when(b.reviewed_at),
        "approved_at": when(b.approved_at),
        "paid_at": when(b.paid_at),
        "lines": [
            {
                "use_id": x.use_id,
                "merchant_id": x.merchant_id,
                "merchant_name": x.merchant_name,
                "contract_no": x.contract_no,
                "kind": x.kind,
                "amount_fen": x.amount_fen,
            }
            for x in view.lines
        ],
    }


def _batch_id(request: web.Request) -> int:
    return path_id(request, "settlement_id", "no such ticket settlement")


@requires(*BUILDERS)
async def build(request: web.Request) -> web.Response:
    """Rule T12: a district's settlement with its sellers at a settlement point."""
    b = await read_body_as(request, S.BuildTicketSettlementRequest)
    view = await settlement.build(
        ports_of(request), principal_of(request), b.campaign_id, b.district, b.point
    )
    return web.json_response(batch_body(view, request.app[TZ]), status=201)


@requires(*READERS)
async def listed(request: web.Request) -> web.Response:
    q = read_query(request, S.TicketSettlementsQuery)
    ports, me = ports_of(request), principal_of(request)
    found = await settlement.listed(ports, me, q.campaign_id, q.district)
    views = [await settlement.show(ports, me, b.id) for b in found]
    return web.json_response({"settlements": [batch_body(v, request.app[TZ]) for v in views]})


@requires(*READERS)
async def show(request: web.Request) -> web.Response:
    view = await settlement.show(ports_of(request), principal_of(request), _batch_id(request))
    return web.json_response(batch_body(view, request.app[TZ]))


@requires(*STEPPERS)
async def step(request: web.Request) -> web.Response:
    """Rule T12 (S1's steps): reviewed by the issuer, approved and paid by the city's finance
    side, three accounts."""
    b = await read_body_as(request, S.SettlementStepRequest)
    note = None if isinstance(b.note, UnsetType) else b.note
    view = await settlement.take_step(
        ports_of(request), principal_of(request), _batch_id(request), b.step, note
    )
    return web.json_response(batch_body(view, request.app[TZ]))


def report_body(found: Report) -> dict[str, Any]:
    return {
        "campaign_id": found.campaign.id,
        "on": found.on.isoformat(),
        "district": found.district,
        "columns": dict(REPORT_COLUMNS),
        "rows": [
            {
                "scope": r.scope,
                "key": r.key,
                "name": found.names.get(r.key, r.key),
                "issued": r.issued,
                "face_fen": r.face_fen,
                "used_fen": r.used_fen,
                "cashed_out_fen": r.cashed_out_fen,
                "returned_fen": r.returned_fen,
                "expired_fen": r.expired_fen,
                "balance_fen": r.balance_fen,
                "subsidy_fen": r.subsidy_fen,
                "reward_fen": r.reward_fen,
                "bonus_fen": r.bonus_fen,
                "settlement_due_fen": r.settlement_due_fen,
                "settlement_paid_fen": r.settlement_paid_fen,
            }
            for r in found.rows
        ],
    }


@requires(*READERS, Role.HOUSING_BUREAU)
async def report(request: web.Request) -> web.Response:
    """Rule T14: the programme's report per programme, district and seller, as JSON or as
    CSV with Chinese headings (money in 元)."""
    q = read_query(request, S.TicketReportQuery)
    found = await settlement.report(ports_of(request), principal_of(request), q.campaign_id, q.on)
    if q.format == "csv":
        name = f"house-tickets-{found.campaign.id}-{found.on.isoformat()}.csv"
        return web.Response(
            body=("\ufeff" + report_csv(found.rows, found.names)).encode(),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return web.json_response(report_body(found))


@public
async def transactions(request: web.Request) -> web.Response:
    """Rule T14: the transactions the programme publishes: no buyer, no ticket number."""
    q = read_query(request, S.ProgrammeQuery)
    campaign, found, sellers = await settlement.transactions(ports_of(request), q.campaign_id)
    return web.json_response(
        {
            "campaign_id": campaign.id,
            "transactions": [
                {
                    "seller": sellers.get(t.seller, t.seller),
                    "district": t.district,
                    "property_type": t.property_type.value,
                    "area_dm2": t.area_dm2,
                    "price_fen": t.price_fen,
                    "signed_on": t.signed_on.isoformat(),
                    "ticket_amount_fen": t.ticket_amount_fen,
                }
                for t in found
            ],
        }
    )
