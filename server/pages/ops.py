"""The city's and districts' dashboard (rules S1, S3, X2): the month's ranking as a chart and
a table, claims and redemptions per day, settlement batches. A district operator sees their
own district; the city and the auditor see all of them; nobody changes anything here.

The charts are images (``/ops/charts/{ranking,activity}.svg``, drawn by ``server.charts``)
with the same filters as the page, so the page itself needs no inline style or script."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from aiohttp import web

from server import charts, schemas
from server.auth import Role, principal_of
from server.handlers.ports import ports_of
from server.pages.i18n import WORDS, language
from server.pages.session import page, render
from server.services import dashboard as dashboards
from server.web import CAMPAIGNS, CLOCK, TICKET_CAMPAIGNS, TZ
from shared.errors import InvalidDate
from shared.settlement import parse_month

VIEWERS = (Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR, Role.AUDITOR)
CHARTS = ("ranking", "activity")
# The chart's own document: its matplotlib SVG styles itself inline; no script, nothing fetched
CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"


async def _dashboard(request: web.Request) -> dashboards.Dashboard:
    text = request.query.get("month", "")
    month = (
        parse_month(text)
        if text
        else request.app[CLOCK]().astimezone(request.app[TZ]).date().replace(day=1)
    )
    if not schemas.FIRST_DAY <= month <= schemas.LAST_DAY:
        raise InvalidDate("month is out of range", field="month")
    return await dashboards.dashboard(
        ports_of(request),
        principal_of(request),
        month,
        request.query.get("campaign") or None,
        request.query.get("district") or None,
    )


@page(*VIEWERS)
async def dashboard(request: web.Request) -> web.StreamResponse:
    found = await _dashboard(request)
    query = {"month": f"{found.month:%Y-%m}", "campaign": found.campaign_id}
    if found.district:
        query["district"] = found.district
    query["lang"] = language(request)
    return render(
        request,
        "ops.html",
        {
            "d": found,
            "campaigns": sorted(request.app[CAMPAIGNS].keys()),
            "chart_query": urlencode(query),
            "has_tickets": bool(request.app[TICKET_CAMPAIGNS]),  # issue 13: a link to them
        },
    )


def _draw(found: dashboards.Dashboard, name: str, lang: str) -> bytes:
    # without a CJK font the chart speaks English (and names districts by code)
    words = WORDS[lang if charts.cjk_family() else "en"]
    label = f"{found.month:%Y-%m}"
    if name == "ranking":
        figure = charts.ranking_figure(
            found.ranked,
            found.names,
            title=words.ranking_title.format(month=label),
            axis=f"{words.rate} (%)",
            rank=words.rank_n,
        )
    else:
        figure = charts.activity_figure(
            found.activity,
            title=words.activity_title.format(month=label),
            issued=words.issued,
            redeemed=words.redeemed,
        )
    return charts.render(figure, "svg")


@page(*VIEWERS)
async def chart(request: web.Request) -> web.StreamResponse:
    """The ranking (rule S3) or activity chart as SVG, for the page's filters and with its
    visibility (rule X2)."""
    name = request.match_info["chart"]
    if name not in CHARTS:
        raise web.HTTPNotFound()
    found = await _dashboard(request)
    drawn = await asyncio.to_thread(_draw, found, name, language(request))
    return web.Response(
        body=drawn,
        content_type="image/svg+xml",
        headers={"Content-Security-Policy": CHART_CSP, "Cache-Control": "private, no-cache"},
    )
