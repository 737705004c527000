"""What the services are handed, one home for both kinds (they never see a request):

- ``Ports``: what every use case needs: the ledger's pool, the settings, the clock, the
  programme's time zone, the loaded campaigns (and house-ticket programmes), a way to tell
  this process's access view, and where read-only reports run (``report``: a streaming
  replica when configured).
  The HTTP edge builds one per request from the app (``server/handlers/ports.py``'s
  ``ports_of``); a tool or a test builds its own from a pool of its own.
- ``TillPorts``: ``Ports`` plus the till's hot-path machinery (Redis's guard, the batchers,
  the quote cache, the QR verifier, the counters), which lives as long as the app: built
  once at start-up (``server/app.py``'s ``_till``) and found by ``till_ports_of``. Being a
  ``Ports``, it serves every use case that only needs those (the merchant's day, for one).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Protocol, TypeVar

from prometheus_client import Counter

from server.batching import Batcher
from server.caches import ExpiringLru, QrVerifier
from server.db import Conn, Pool
from server.db.access import Change
from server.db.redemptions import ContextQuery, Redemption
from server.db.replica import Reports
from server.guard import Guard
from server.settings import Settings
from shared.campaign import Campaign
from shared.errors import VoucherError
from shared.redemption import Decision, TillContext
from shared.ticket_campaign import TicketCampaign

T = TypeVar("T")


def _nowhere(changes: Iterable[Change]) -> None:
    """No in-memory access view to tell (a tool or a test): the pollers read the ledger."""


@dataclass(frozen=True, slots=True)
class Ports:
    """What a use case needs from the world."""

    pool: Pool
    settings: Settings
    clock: Callable[[], datetime]
    tz: tzinfo  # the programme's local time zone (rules V1, S1, S2)
    # the loaded campaigns by id (rule C1): the app's own dict, so a load adds one for all
    campaigns: dict[str, Campaign]
    # rule X1: tell this process's view of blocked principals at once (server/access.py)
    publish: Callable[[Iterable[Change]], None] = _nowhere
    # rules C1, T1-T14: the loaded house-ticket programmes by id (issue 13)
    programmes: dict[str, TicketCampaign] = field(default_factory=dict)
    # issue 14: where read-only reports run (the replica, or the primary when it is down or
    # behind); None: the primary's pool, as for everything else
    reports: Reports | None = None

    async def report(self, read: Callable[[Conn], Awaitable[T]]) -> T:
        """Run a read-only report (the merchant's day and month, the ranking, the dashboard),
        which may be a moment behind: on the replica when there is one. Never for what a
        redemption, a refund or the till's "what just happened" reads: those use ``pool``."""
        if self.reports is not None:
            return await self.reports.run(read)
        async with self.pool.acquire() as conn:
            return await read(conn)


class TillMetrics(Protocol):
    """The counters the till's services move (``server.web.Metrics`` has them)."""

    redemptions: Counter  # by outcome: "ok" or the error code
    vouchers_redeemed: Counter
    redis_failures: Counter
    ticket_uses: Counter  # house tickets' uses at sales offices, by outcome (issue 13)


@dataclass(frozen=True, slots=True, kw_only=True)
class TillPorts(Ports):
    """``Ports`` plus what the till's quote, redeem and refund need, alive as long as the app."""

    guard: Guard
    # the till's reads and writes of the ledger, batched across concurrent requests; a write
    # answers None when its batch changed nothing and the bill must go alone
    context_reads: Batcher[ContextQuery, TillContext | None]
    redeem_writes: Batcher[Redemption, int | None]
    # what a quote read and decided (with how many campaigns loaded), for the redeem of the
    # same QR token at the same terminal
    quote_cache: ExpiringLru[tuple[int, uuid.UUID], tuple[Decision, int]]
    qr_verifier: QrVerifier
    metrics: TillMetrics
    # rule U7: the status and body a refusal is kept under (the HTTP edge's choice)
    refusal_answer: Callable[[VoucherError], tuple[int, dict[str, Any]]]
