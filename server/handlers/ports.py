"""The services' ports (``server/services``), built from the running app."""

from __future__ import annotations

from aiohttp import web

from server.access import ACCESS_VIEW
from server.services import Ports
from server.web import CAMPAIGNS, CLOCK, PG, SETTINGS, TZ


def ports_of(request: web.Request) -> Ports:
    app = request.app
    view = app.get(ACCESS_VIEW)
    return Ports(
        pool=app[PG],
        settings=app[SETTINGS],
        clock=app[CLOCK],
        tz=app[TZ],
        campaigns=app[CAMPAIGNS],
        **({"publish": view.apply} if view is not None else {}),
    )
