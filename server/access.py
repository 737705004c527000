"""Who is blocked, held in memory per server process (rule X1, issue 9 item 4).

A revoked terminal, a suspended merchant, a disabled account or a revoked citizen is refused
on every route, whatever access token it already holds. ``requires`` (server/auth.py) asks
this view on every request: a few dictionary look-ups, no database query on the till's hot
path.

How a change reaches every process, and how fast:

- Every revoke, suspend, lift, disable, enable, role change and password reset writes a row
  to ``access_changes`` in the same transaction as the change itself, numbered by bumping the
  single-row counter ``access_version`` (its row lock orders the writers, so a reader that sees
  version n sees every change below n: migration 0005).
- The process that makes the change applies it to its own view as soon as it commits.
- Every process polls the change counter (``server/db/access.py``'s ``current_version``) every
  ``POLL_INTERVAL_S`` (1 s) and, when it moved, reads the new rows in version order. Each
  row is a principal's new state, and each key keeps the version it was last set at, so rows
  applied twice or late change nothing.
- **Bound**: a change committed in one process is enforced by every other process within
  ``POLL_INTERVAL_S`` plus one poll query (about 1 s). If a process's last successful poll is
  older than ``STALE_AFTER_S`` (2 s; its loop was starved or PostgreSQL did not answer), the
  next request refreshes the view before it is decided, and fails rather than decide on a
  stale view if PostgreSQL cannot be reached. So no process ever decides on a view more than
  ``STALE_AFTER_S`` old.

Accounts carry a generation in their tokens: disabling, a role change or a password reset
bumps it, so every token issued before is refused; re-enabling lets the account sign in again
but does not revive the tokens of before. A lifted suspension lets the merchant's existing
tokens work again (its terminals were not compromised, the shop was paused).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from aiohttp import web

from server.db import Conn, Pool
from server.db import access as db
from server.db.access import Change, Kind, record
from server.web import PG
from shared.errors import (
    AccountDisabled,
    MerchantSuspended,
    ParticipationRevoked,
    TerminalDisabled,
    Unauthenticated,
)

if TYPE_CHECKING:
    from server.auth import Principal

__all__ = ["ACCESS_VIEW", "AccessView", "Change", "Kind", "record", "serve_view"]

log = logging.getLogger("server.access")

POLL_INTERVAL_S = 1.0
STALE_AFTER_S = 2.0


class AccessView:
    """The blocked principals of one process, and the account generations."""

    def __init__(self, pool: Pool | None = None) -> None:
        self.pool = pool
        self.version = 0  # every change up to this one is applied
        self.refreshed_at = 0.0  # time.monotonic() of the last successful load or poll
        # (kind, key) -> (version it was set at, blocked, generation); only principals that
        # were ever blocked or changed are here
        self._state: dict[tuple[str, int], tuple[int, bool, int]] = {}
        self._refreshing: asyncio.Task[None] | None = None

    # --- deciding (every request) -------------------------------------------------------

    def _blocked(self, kind: str, key: int | None) -> bool:
        found = self._state.get((kind, key)) if key is not None else None
        return found is not None and found[1]

    def check(self, me: Principal, *, revoked_citizen_may_read: bool = False) -> None:
        """Raise if ``me`` is blocked; the caller checked that the view is fresh."""
        if me.citizen_id is not None:
            if self._blocked("citizen", me.citizen_id) and not revoked_citizen_may_read:
                raise ParticipationRevoked()  # rule X1: only the wallet stays readable
            return
        if self._blocked("terminal", me.terminal_id):
            raise TerminalDisabled("this terminal was revoked; it cannot be used any more")
        if self._blocked("merchant", me.merchant_id):
            raise MerchantSuspended()  # rule X1: its tills and managers alike
        if me.account_id is not None:
            found = self._state.get(("account", me.account_id))
            if found is not None:
                if found[1]:
                    raise AccountDisabled()
                if found[2] != me.generation:
                    raise Unauthenticated(
                        "this account changed (role or password); sign in again",
                        reason="session_ended",
                    )

    @property
    def stale(self) -> bool:
        return time.monotonic() - self.refreshed_at > STALE_AFTER_S

    async def fresh(self) -> None:
        """Make sure the view is at most ``STALE_AFTER_S`` old: a request waits for one shared
        refresh when the poller fell behind (and fails with it if PostgreSQL is away)."""
        if not self.stale:
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self.refresh())
        await asyncio.shield(self._refreshing)

    # --- changing ---------------------------------------------------------------------

    def apply(self, changes: Iterable[Change]) -> None:
        for change in changes:
            key = (change.kind, change.key)
            known = self._state.get(key)
            if known is None or known[0] < change.version:
                self._state[key] = (change.version, change.blocked, change.generation)

    async def load(self, conn: Conn) -> None:
        """The whole view from the ledger, in one snapshot with the version it reflects."""
        version, changes = await db.snapshot(conn)
        self._state.clear()
        self.apply(changes)
        self.version = version
        self.refreshed_at = time.monotonic()

    async def refresh(self) -> None:
        """One poll: the counter, and the changes past what this process has applied."""
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            version = await db.current_version(conn)
            if version > self.version:
                self.apply(await db.changes_between(conn, self.version, version))
                self.version = version
        self.refreshed_at = time.monotonic()

    async def poll_forever(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            try:
                await self.refresh()
            except Exception:  # the poller must outlive any failed poll
                # the view goes stale; requests then refresh it themselves or fail (a database
                # outage, or a connection the outage left mid-operation: InternalClientError)
                log.warning("access view poll failed", exc_info=True)


ACCESS_VIEW: web.AppKey[AccessView] = web.AppKey("access_view", AccessView)


async def serve_view(app: web.Application) -> AsyncIterator[None]:
    """For ``cleanup_ctx``, after the pool exists: load, then poll until shutdown."""
    view = AccessView(app[PG])
    async with app[PG].acquire() as conn:
        await view.load(conn)
    app[ACCESS_VIEW] = view
    poller = asyncio.ensure_future(view.poll_forever())
    yield
    poller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await poller
