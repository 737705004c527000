"""What the till's services are handed: the ledger, Redis's guard, the batchers, the caches,
the campaigns and the clock. ``server/app.py`` builds one ``TillPorts`` per app at start-up;
a test or a tool may build its own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Protocol

from prometheus_client import Counter

from server.batching import Batcher
from server.caches import ExpiringLru, QrVerifier
from server.db import Pool
from server.db.redemptions import ContextQuery, Redemption
from server.guard import Guard
from shared.campaign import Campaign
from shared.errors import VoucherError
from shared.redemption import TillContext


class TillMetrics(Protocol):
    """The counters the till's services move (``server.web.Metrics`` has them)."""

    redemptions: Counter  # by outcome: "ok" or the error code
    vouchers_redeemed: Counter
    redis_failures: Counter


@dataclass(frozen=True, slots=True)
class TillPorts:
    pool: Pool
    guard: Guard
    # the till's reads and writes of the ledger, batched across concurrent requests; a write
    # answers None when its batch changed nothing and the bill must go alone
    context_reads: Batcher[ContextQuery, TillContext | None]
    redeem_writes: Batcher[Redemption, int | None]
    # what a quote read, for the redeem of the same QR token at the same terminal
    quote_cache: ExpiringLru[tuple[int, str], TillContext]
    qr_verifier: QrVerifier
    campaigns: Mapping[str, Campaign]  # the app's own dict: campaigns loaded later are in it
    clock: Callable[[], datetime]
    tz: tzinfo  # the programme's local time zone (the merchant's day)
    metrics: TillMetrics
    # rule U7: the status and body a refusal is kept under (the HTTP edge's choice)
    refusal_answer: Callable[[VoucherError], tuple[int, dict[str, Any]]]
