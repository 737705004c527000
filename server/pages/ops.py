"""The city's and districts' dashboard (rules S1, S3, X2): the month's ranking as a chart and
a table, claims and redemptions per day, settlement batches. A district operator sees their
own district; the city and the auditor see all of them; nobody changes anything here."""

from __future__ import annotations

from aiohttp import web

from server import schemas
from server.auth import Role, principal_of
from server.handlers.ports import ports_of
from server.pages.charts import activity_svg, ranking_svg
from server.pages.i18n import WORDS, language
from server.pages.session import page, render
from server.services import dashboard as dashboards
from server.web import CAMPAIGNS, CLOCK, TZ
from shared.errors import InvalidDate
from shared.settlement import parse_month


@page(Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR, Role.AUDITOR)
async def dashboard(request: web.Request) -> web.StreamResponse:
    text = request.query.get("month", "")
    month = (
        parse_month(text)
        if text
        else request.app[CLOCK]().astimezone(request.app[TZ]).date().replace(day=1)
    )
    if not schemas.FIRST_DAY <= month <= schemas.LAST_DAY:
        raise InvalidDate("month is out of range", field="month")
    found = await dashboards.dashboard(
        ports_of(request),
        principal_of(request),
        month,
        request.query.get("campaign") or None,
        request.query.get("district") or None,
    )
    words = WORDS[language(request)]
    label = f"{month:%Y-%m}"
    return render(
        request,
        "ops.html",
        {
            "d": found,
            "campaigns": sorted(request.app[CAMPAIGNS].keys()),
            "ranking_chart": ranking_svg(
                found.ranked,
                found.names,
                words.ranking_title.format(month=label),
                words.chart_alt,
                words.rank_n,
            ),
            "activity_chart": activity_svg(
                found.activity,
                (words.issued, words.redeemed),
                words.activity_title.format(month=label),
                words.activity_alt,
            ),
        },
    )
