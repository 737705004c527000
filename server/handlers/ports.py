"""The services' ports (``server/services/ports.py``), found from the running app."""

from __future__ import annotations

from aiohttp import web

from server.access import ACCESS_VIEW
from server.services.ports import Ports, TillPorts
from server.web import CAMPAIGNS, CLOCK, PG, REPORTS, SETTINGS, TICKET_CAMPAIGNS, TILL, TZ


def ports_of(request: web.Request) -> Ports:
    """A use case's ports, built per request from the app's own objects."""
    app = request.app
    view = app.get(ACCESS_VIEW)
    return Ports(
        pool=app[PG],
        settings=app[SETTINGS],
        clock=app[CLOCK],
        tz=app[TZ],
        campaigns=app[CAMPAIGNS],
        programmes=app[TICKET_CAMPAIGNS],
        reports=app.get(REPORTS),
        **({"publish": view.apply} if view is not None else {}),
    )


def till_ports_of(request: web.Request) -> TillPorts:
    """The till's ports, built once at start-up (``server/app.py``'s ``_till``)."""
    return request.app[TILL]
