"""Read-only reports on a streaming replica (issue 14), falling back to the primary.

What only reads and may be a moment behind (the merchant's day and month, the ranking, the
dashboard, the month's settlement figures) runs through ``Reports.run``; redemptions, refunds
and the till's own "what just happened" never do: they take the primary's pool directly.

- **Per query fallback**: a read the replica cannot answer (stopped, unreachable, a recovery
  conflict) is run again on the primary at once, and the replica is marked down, so the next
  reads go straight to the primary without paying for a connection attempt.
- **Bounded staleness**: a poller (``watch``) measures the replica's lag every
  ``poll_s`` and reads go to the primary while it is over ``max_lag_s``, or while the replica
  does not answer; the first good poll puts it back in service.
- **The lag**, in bytes: the primary's WAL position minus what the replica has replayed
  (``pg_current_wal_lsn``, ``pg_last_wal_replay_lsn``: any role may call both). In seconds:
  how long ago the primary was at the oldest position the replica has not yet replayed,
  from the positions sampled at each poll (PostgreSQL's own walsender estimates
  ``replay_lag`` the same way, from (LSN, time) samples), so an idle primary reads as 0 and
  a stalled replay as the time since the first write it has not seen.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg

from server.db import Conn, Pool, database_down

log = logging.getLogger("server.replica")
T = TypeVar("T")

# errors of a replica's read that the primary would not have: a standby cancels a query that
# conflicts with the WAL it replays (40001, "conflict with recovery")
_REPLICA_ONLY = (asyncpg.SerializationError,)
# at most this many (time, position) samples kept while the replica is behind (an hour at 1/s)
_MAX_SAMPLES = 3600


@dataclass
class Lag:
    """The replica's lag, as last measured."""

    seconds: float = 0.0
    bytes: int = 0
    up: bool = False  # the last poll reached it (and it is a standby)


@dataclass
class LagSampler:
    """Seconds behind, from the primary's WAL positions sampled over time (see the module)."""

    clock: Callable[[], float] = time.monotonic
    _samples: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)

    def lag(self, primary_lsn: int, replayed_lsn: int) -> Lag:
        now = self.clock()
        if len(self._samples) < _MAX_SAMPLES:
            self._samples.append((now, primary_lsn))
        while self._samples and self._samples[0][1] <= replayed_lsn:
            self._samples.popleft()
        behind = max(0, primary_lsn - replayed_lsn)
        if behind == 0 or not self._samples:
            self._samples.clear()
            return Lag(0.0, 0, up=True)
        return Lag(now - self._samples[0][0], behind, up=True)


@dataclass
class Reports:
    """Where read-only reports run: the replica when it is up and near enough, else the
    primary. ``replica`` None: no replica configured, everything reads the primary."""

    primary: Pool
    replica: Pool | None
    max_lag_s: float = 5.0
    poll_s: float = 1.0
    wait_s: float = 1.0  # for a connection to the replica, before reading the primary instead
    # what the app counts: reads by where they ran, fallbacks, the lag (server.web.Metrics)
    on_read: Callable[[str], object] = lambda source: None
    on_lag: Callable[[Lag], object] = lambda lag: None
    lag: Lag = field(default_factory=Lag)
    sampler: LagSampler = field(default_factory=LagSampler)

    @property
    def serving(self) -> bool:
        """Would a read go to the replica now?"""
        return self.replica is not None and self.lag.up and self.lag.seconds <= self.max_lag_s

    async def run(self, read: Callable[[Conn], Awaitable[T]]) -> T:
        """``read`` on the replica if it serves, else (or if it fails there) on the primary."""
        if self.replica is not None and self.serving:
            try:
                async with self.replica.acquire(timeout=self.wait_s) as conn:
                    result = await read(conn)
            except Exception as exc:
                if not (database_down(exc) or isinstance(exc, _REPLICA_ONLY)):
                    raise
                log.warning("replica read failed (%s): reading the primary", type(exc).__name__)
                self._down()
                self.on_read("fallback")
            else:
                self.on_read("replica")
                return result
        async with self.primary.acquire() as conn:
            result = await read(conn)
        self.on_read("primary")
        return result

    def _down(self) -> None:
        self.lag = Lag(self.lag.seconds, self.lag.bytes, up=False)
        self.on_lag(self.lag)

    async def poll(self) -> Lag:
        """Measure the lag once (the primary's position first, then the replica's replay)."""
        assert self.replica is not None
        try:
            async with self.primary.acquire(timeout=self.wait_s) as conn:
                primary_lsn = await conn.fetchval(_POSITION)
            async with self.replica.acquire(timeout=self.wait_s) as conn:
                standby, replayed = await conn.fetchrow(_REPLAYED) or (False, 0)
        except Exception as exc:  # whatever it is, the poll says "down" and polls again
            if self.lag.up:
                log.warning("replica poll failed (%s): reports read the primary", exc)
            self._down()
            return self.lag
        if not standby:  # a promoted or misconfigured "replica": it is a primary of its own
            if self.lag.up:
                log.warning("the replica is not in recovery: reports read the primary")
            self._down()
            return self.lag
        if not self.lag.up:
            log.info("replica answers: reports read it again")
        self.lag = self.sampler.lag(int(primary_lsn), int(replayed))
        self.on_lag(self.lag)
        return self.lag

    async def watch(self) -> None:
        """Poll for as long as the app serves (a task of ``server/app.py``'s ``_pg_pool``)."""
        while True:
            await self.poll()
            await asyncio.sleep(self.poll_s)


_POSITION = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
_REPLAYED = (
    "SELECT pg_is_in_recovery(), "
    "coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'), 0)::bigint"
)


# how the reports' connections name themselves (pg_stat_activity on the replica shows them)
REPORTS_APPLICATION = "voucher-reports"

__all__ = ["REPORTS_APPLICATION", "Lag", "LagSampler", "Reports"]
