"""The web pages, served by the same app as the API and built on the same services (issue 12):
the citizen's wallet (``/wallet``), the merchant manager's pages (``/merchant``) and the
city's and districts' dashboard (``/ops``). Server-rendered with aiohttp-jinja2, Chinese first
and English when asked; one small script (``static/wallet.js``) where the wallet must update
live; no build step, nothing fetched from elsewhere.

``PAGE_ROUTES`` is the pages' route table, apart from the API's (``server.app.ROUTES``, which
``/openapi.json`` describes). A page is public only where it must be (the front page and
signing in); every other page names its roles with ``server.pages.session.page``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server.pages import merchant, ops, signin, ticket_ops, wallet

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"

# (method, path, handler)
PAGE_ROUTES: tuple[tuple[str, str, Callable[..., Any]], ...] = (
    ("GET", "/", signin.home),
    ("GET", "/signin", signin.staff_form),
    ("POST", "/signin", signin.staff_submit),
    ("POST", "/signout", signin.sign_out),
    ("GET", "/wallet/signin", signin.citizen_form),
    ("POST", "/wallet/signin/dev", signin.citizen_dev_submit),
    ("POST", "/wallet/signin/assertion", signin.citizen_assertion),
    ("GET", "/wallet", wallet.wallet),
    ("POST", "/wallet/claim", wallet.claim),
    ("POST", "/wallet/code", wallet.code),
    ("GET", "/wallet/live", wallet.live),
    ("GET", "/merchant", merchant.start),
    ("GET", "/merchant/{merchant_id}/day", merchant.day),
    ("GET", "/merchant/{merchant_id}/day.csv", merchant.day_csv),
    ("GET", "/merchant/{merchant_id}/month", merchant.month),
    ("GET", "/merchant/{merchant_id}/month.csv", merchant.month_csv),
    ("GET", "/merchant/{merchant_id}/terminals", merchant.terminals),
    (
        "POST",
        "/merchant/{merchant_id}/terminals/{terminal_id}/revocation-request",
        merchant.request_revocation,
    ),
    ("GET", "/merchant/{merchant_id}/settings", merchant.settings),
    ("POST", "/merchant/{merchant_id}/settings", merchant.change_settings),
    ("GET", "/ops", ops.dashboard),
    ("GET", "/ops/charts/{chart}.svg", ops.chart),
    ("GET", "/ops/tickets", ticket_ops.tickets),  # issue 13: house tickets (T9-T14)
    ("GET", "/ops/tickets.csv", ticket_ops.tickets_csv),
)

# OWASP's secure headers for every answer of the app, pages and API alike: scripts and styles
# from this site only (no inline script or style), images from here or data: URLs (the
# wallet's code), no framing, no referrer to other sites.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def _local(moment: datetime | None, tz: tzinfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if moment is None else moment.astimezone(tz).strftime(fmt)


def install(app: web.Application) -> None:
    """Add the pages, their templates and static files, and the secure headers to ``app``."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("server.pages", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["local"] = _local
    for method, path, handler in PAGE_ROUTES:
        app.router.add_route(method, path, handler)
    app.router.add_static("/static/", STATIC, name="static", append_version=False)
    app.on_response_prepare.append(_secure_headers)


__all__ = ["PAGE_ROUTES", "SECURITY_HEADERS", "install"]
