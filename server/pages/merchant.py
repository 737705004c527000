"""The merchant manager's pages (rules S1, S2, U1, X2): the day, the month, the tills, the
shop's settings. Read only, but for a request to revoke a till and the shop's two settings
(rule U4 [choice], issue 11 item 5). The merchant's id is in every URL, and any id but the
manager's own is not found (404): ``server/services/merchant_pages.py`` and
``server/services/merchants.py`` decide."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from server import schemas
from server.auth import Principal, Role, principal_of
from server.db.parties import MerchantSettings
from server.handlers.ports import ports_of
from server.pages.i18n import language
from server.pages.session import SESSION, check_form, field, page, render, see_other
from server.services import merchant_pages as pages
from server.services import merchants
from server.services.ports import Ports
from server.web import CLOCK, TZ, path_id
from shared.day_csv import Lang
from shared.errors import InvalidDate, InvalidRequest
from shared.settlement import parse_month


def _merchant_id(request: web.Request) -> int:
    return path_id(request, "merchant_id", "no such merchant")


def _today(request: web.Request) -> date:
    return request.app[CLOCK]().astimezone(request.app[TZ]).date()


def _date(request: web.Request) -> date:
    text = request.query.get("date", "")
    if not text:
        return _today(request)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidDate("date is YYYY-MM-DD", field="date") from None
    if not schemas.FIRST_DAY <= day <= schemas.LAST_DAY:
        raise InvalidDate(f"date is from {schemas.FIRST_DAY} to {schemas.LAST_DAY}", field="date")
    return day


def _month(request: web.Request) -> date:
    text = request.query.get("month", "")
    if not text:
        return _today(request).replace(day=1)
    first = parse_month(text)
    if not schemas.FIRST_DAY <= first <= schemas.LAST_DAY:
        raise InvalidDate("month is out of range", field="month")
    return first


def _csv(text: str, name: str) -> web.Response:
    return web.Response(
        body=("\ufeff" + text).encode(),  # BOM: opened in Excel as UTF-8
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@page(Role.MERCHANT_MANAGER)
async def start(request: web.Request) -> web.StreamResponse:
    return see_other(f"/merchant/{principal_of(request).merchant_id}/day")


def _mine(request: web.Request) -> tuple[Ports, Principal, int]:
    """What every merchant page asks its use case with: the ports, who asks, which merchant."""
    return ports_of(request), principal_of(request), _merchant_id(request)


@page(Role.MERCHANT_MANAGER)
async def day(request: web.Request) -> web.StreamResponse:
    """Rule S2: bills, vouchers, voucher value, refunds, gross and net, per till; any date."""
    found = await pages.day(*_mine(request), _date(request))
    return render(
        request, "merchant_day.html", {"tab": "day", "d": found, "mid": found.merchant_id}
    )


@page(Role.MERCHANT_MANAGER)
async def day_csv(request: web.Request) -> web.StreamResponse:
    found = await pages.day(*_mine(request), _date(request))
    name = f"merchant-{found.merchant_id}-{found.day.isoformat()}.csv"
    lang: Lang = "zh" if language(request) == "zh" else "en"  # the page's, in the till's layout
    return _csv(pages.day_csv(found, request.app[TZ], lang), name)


@page(Role.MERCHANT_MANAGER)
async def month(request: web.Request) -> web.StreamResponse:
    """Rules S1, S2: totals per day and the month's settlement, with the amount due."""
    found = await pages.month(*_mine(request), _month(request))
    return render(
        request, "merchant_month.html", {"tab": "month", "m": found, "mid": found.merchant_id}
    )


@page(Role.MERCHANT_MANAGER)
async def month_csv(request: web.Request) -> web.StreamResponse:
    found = await pages.month(*_mine(request), _month(request))
    return _csv(pages.month_csv(found), f"merchant-{found.merchant_id}-{found.month:%Y-%m}.csv")


@page(Role.MERCHANT_MANAGER)
async def terminals(request: web.Request) -> web.StreamResponse:
    """Rule U1: the paired tills, when each was last used, and a request to revoke one."""
    merchant_id = _merchant_id(request)
    tills = await pages.tills(ports_of(request), principal_of(request), merchant_id)
    return render(
        request,
        "merchant_terminals.html",
        {"tab": "terminals", "tills": tills, "mid": merchant_id, "requested": None},
    )


@page(Role.MERCHANT_MANAGER)
async def request_revocation(request: web.Request) -> web.StreamResponse:
    """The page's one write: the request goes into the audit log (see merchant_pages)."""
    form = await check_form(request, request[SESSION].csrf)
    merchant_id = _merchant_id(request)
    terminal_id = path_id(request, "terminal_id", "no such till")
    me = principal_of(request)
    reason = field(form, "reason", max_len=500)
    till = await pages.request_revocation(ports_of(request), me, merchant_id, terminal_id, reason)
    tills = await pages.tills(ports_of(request), me, merchant_id)
    return render(
        request,
        "merchant_terminals.html",
        {"tab": "terminals", "tills": tills, "mid": merchant_id, "requested": till.label},
    )


SETTINGS_FIELDS = ("receipts_per_till", "refund_needs_manager")
ON_OFF = {"on": True, "off": False}


def _on_off(form: dict[str, str], name: str) -> bool:
    value = form.get(name, "")
    if value not in ON_OFF:
        raise InvalidRequest(f"{name} is on or off", field=name)
    return ON_OFF[value]


def _settings_page(
    request: web.Request, found: MerchantSettings, *, saved: bool = False
) -> web.Response:
    return render(
        request,
        "merchant_settings.html",
        {"tab": "settings", "s": found, "mid": found.merchant_id, "saved": saved},
    )


@page(Role.MERCHANT_MANAGER)
async def settings(request: web.Request) -> web.StreamResponse:
    """The shop's settings: receipts numbered per till (rule U4 [choice]), refunds approved
    by a manager (issue 11 item 5)."""
    found = await merchants.settings(*_mine(request))
    return _settings_page(request, found)


@page(Role.MERCHANT_MANAGER)
async def change_settings(request: web.Request) -> web.StreamResponse:
    """Both settings as the form gives them, with a reason for the audit log (rule X1), as
    ``POST /v1/merchants/{id}/settings`` changes them; a bad field changes nothing."""
    form = await check_form(request, request[SESSION].csrf)
    ports, me, merchant_id = _mine(request)
    cmd = merchants.ChangeSettings(
        merchant_id,
        field(form, "reason", max_len=500),
        receipts_per_till=_on_off(form, "receipts_per_till"),
        refund_needs_manager=_on_off(form, "refund_needs_manager"),
    )
    return _settings_page(request, await merchants.change_settings(ports, me, cmd), saved=True)
