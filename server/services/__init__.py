"""The use cases, one home each (cosmicpython's service layer, with aiohttp's conventions).

A handler (``server/handlers``) parses the request into a typed command, calls one service
function and turns its result, or the domain error it raises, into a response. The service
decides: it reads and writes the ledger through the adapters (``server/db``), in the
transactions it opens, with the audit entries it writes; it never sees a request. So the CLI,
the load test and the tests call it as the HTTP edge does, with ``Ports``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from server.db import Pool
from server.db.access import Change
from server.settings import Settings
from shared.campaign import Campaign


def _nowhere(changes: Iterable[Change]) -> None:
    """No in-memory access view to tell (a tool or a test): the pollers read the ledger."""


@dataclass(frozen=True, slots=True)
class Ports:
    """What a use case needs from the world; the HTTP edge builds it from the app
    (``server/handlers/ports.py``), a tool or a test from a pool of its own."""

    pool: Pool
    settings: Settings
    clock: Callable[[], datetime]
    tz: tzinfo  # the programme's local time zone (rules V1, S1)
    campaigns: dict[str, Campaign]  # the loaded campaigns by id (rule C1); a load adds one
    # rule X1: tell this process's view of blocked principals at once (server/access.py)
    publish: Callable[[Iterable[Change]], None] = _nowhere
