"""One adapter module per aggregate; SQL inline with $n placeholders.

Only this package speaks SQL and knows asyncpg (an import-linter contract in pyproject.toml
keeps it so): the adapters return frozen dataclasses and translate the driver's errors into
domain errors (``shared/errors.py``); what is left to the edge is whether PostgreSQL can be
reached at all (``database_down``).
"""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
# what services hold to reach the ledger (they never import asyncpg themselves); a class,
# so it also keys the app (server/web.py's PG)
Pool = asyncpg.Pool

# PostgreSQL out of reach, as the driver, the socket or the pool says it: the HTTP edge answers
# 503 ``database_unavailable`` with Retry-After, never 500 (the request decided nothing).
# Errors of a statement itself (constraints, syntax) are not here: those are bugs or domain
# answers, translated by the adapters.
DATABASE_DOWN: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: connection lost, refused, does not exist
    asyncpg.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.InterfaceError,  # the pool or connection closed under the request
    # a pooled connection that a crash left mid-operation ("cannot switch to state 12; another
    # operation is in progress"): the statement was never sent
    asyncpg.InternalClientError,
    OSError,  # ConnectionRefusedError, a missing Unix socket, a reset
    TimeoutError,  # no pooled connection in time; a statement past command_timeout
)


def database_down(exc: BaseException) -> bool:
    """Whether ``exc`` says PostgreSQL is out of reach (not a wrong setting, not a bug)."""
    if isinstance(exc, asyncpg.ClientConfigurationError):
        return False  # a wrong setting, not an outage
    return isinstance(exc, DATABASE_DOWN)


# Opening a connection of one's own failed: PostgreSQL out of reach, or refusing it (a wrong
# password, a missing database). A tool says so in one line (ops/loadtest.py).
CONNECT_FAILED: tuple[type[BaseException], ...] = (OSError, TimeoutError, asyncpg.PostgresError)


async def connect(database_url: str, *, connect_timeout: float = 60) -> asyncpg.Connection[Any]:
    """A connection of its own, for a tool (the demo's and the load test's seeding, the load
    test's clean-up): the tools reach PostgreSQL through this package and its adapters, as the
    server does, never the driver itself (pyproject's import contracts)."""
    return await asyncpg.connect(database_url, timeout=connect_timeout)


async def open_pool(
    database_url: str,
    *,
    min_size: int,
    max_size: int,
    generic_plans: bool = False,
    application_name: str | None = None,
    connect_timeout_s: float = 60,
) -> Pool:
    """A pool for the server. ``generic_plans``: statements planned once per connection, for
    the till's batched statements, whose shape does not depend on the batch's size.
    ``application_name`` names its connections in ``pg_stat_activity``; a short
    ``connect_timeout_s`` (the replica's pool) makes an unreachable server a short wait."""
    settings: dict[str, str] = {}
    if generic_plans:
        settings["plan_cache_mode"] = "force_generic_plan"
    if application_name:
        settings["application_name"] = application_name
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=30,
        timeout=connect_timeout_s,
        reset=_reset,
        server_settings=settings or None,
    )
    assert pool is not None
    return pool


async def _reset(conn: asyncpg.Connection[Any]) -> None:
    """What a connection needs before it goes back to the pool. The handlers leave no session
    state (no SET, LISTEN, cursors or session locks), so asyncpg's full reset query — a round
    trip on every release — is skipped; an abandoned transaction is still rolled back."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def answers(pool: Pool, wait_s: float) -> str:
    """``"ok"`` when PostgreSQL answers through the pool within ``wait_s``, else why not."""
    try:
        async with pool.acquire(timeout=wait_s) as conn:
            await conn.fetchval("SELECT 1")
    except CONNECT_FAILED as exc:
        return f"down: {type(exc).__name__}"
    return "ok"
