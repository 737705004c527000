"""The house tickets' page for the issuers, the housing bureau, the city and the auditor
(``/ops/tickets``, issue 13, rules T9, T10, T12, T14, X2): a programme's report per programme,
district and seller, its settlements with the sellers and the payouts due to holders, in
Chinese (English when asked). An issuer sees its own district; nobody changes anything here.
The same report downloads as CSV (``/ops/tickets.csv``)."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from server.auth import Role, principal_of
from server.handlers.ports import ports_of
from server.pages.session import page, render
from server.services import ticket_after_use, ticket_settlement
from server.services.ticket_settlement import Report
from server.web import TICKET_CAMPAIGNS
from shared.errors import InvalidDate, InvalidRequest
from shared.ticket_payouts import payment_due, report_csv

VIEWERS = (Role.CITY_OPERATOR, Role.AUDITOR, Role.TICKET_ISSUER, Role.HOUSING_BUREAU)
LINE_KINDS = ("full", "first", "holdback", "clawback")  # T12: a batch's parts, in this order


async def _report(request: web.Request) -> Report:
    programmes = request.app[TICKET_CAMPAIGNS]
    if not programmes:
        raise InvalidRequest("this server serves no house-ticket programme")
    campaign_id = request.query.get("campaign") or sorted(programmes)[0]
    if campaign_id not in programmes:
        raise InvalidRequest("unknown house-ticket programme", field="campaign")
    on = None
    if request.query.get("on"):
        try:
            on = date.fromisoformat(request.query["on"])
        except ValueError:
            raise InvalidDate("on is YYYY-MM-DD", field="on") from None
    return await ticket_settlement.report(ports_of(request), principal_of(request), campaign_id, on)


@page(*VIEWERS)
async def tickets(request: web.Request) -> web.StreamResponse:
    found = await _report(request)
    ports, me = ports_of(request), principal_of(request)
    campaign = found.campaign
    batches = await ticket_settlement.listed(ports, me, campaign.id, None)
    kinds = await ticket_settlement.kinds_of(ports, batches)
    payouts, numbers = await ticket_after_use.payouts(ports, me, campaign.id, unpaid_only=True)
    return render(
        request,
        "ops_tickets.html",
        {
            "r": found,
            "programmes": sorted(request.app[TICKET_CAMPAIGNS].values(), key=lambda c: c.id),
            "batches": [(b, payment_due(campaign, b.point), kinds.get(b.id, {})) for b in batches],
            "line_kinds": LINE_KINDS,
            "payouts": [(p, numbers.get(p.original_id, "")) for p in payouts],
            "district_name": campaign.districts[found.district].name if found.district else "",
        },
    )


@page(*VIEWERS)
async def tickets_csv(request: web.Request) -> web.StreamResponse:
    """Rule T14: the report as the finance and statistics offices open it (Excel: a BOM)."""
    found = await _report(request)
    name = f"house-tickets-{found.campaign.id}-{found.on.isoformat()}.csv"
    return web.Response(
        body=("\ufeff" + report_csv(found.rows, found.names)).encode(),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
