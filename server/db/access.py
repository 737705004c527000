"""SQL of who is blocked (rule X1): ``access_changes`` rows and the ``access_version`` counter
(migration 0005). The in-memory view that reads them is ``server/access.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from server.db import Conn

Kind = Literal["terminal", "merchant", "account", "citizen"]


@dataclass(frozen=True, slots=True)
class Change:
    """A principal's state as of ``version`` (a row of ``access_changes``)."""

    version: int
    kind: Kind
    key: int
    blocked: bool
    generation: int = 0


async def record(conn: Conn, kind: Kind, key: int, *, blocked: bool, generation: int = 0) -> Change:
    """In the caller's transaction, next to the change itself: the principal's new state."""
    version = await conn.fetchval(
        """
        WITH bumped AS (UPDATE access_version SET version = version + 1 RETURNING version)
        INSERT INTO access_changes (version, kind, key, blocked, generation)
        SELECT version, $1, $2, $3, $4 FROM bumped RETURNING version
        """,
        kind,
        key,
        blocked,
        generation,
    )
    return Change(int(version), kind, key, blocked, generation)


async def snapshot(conn: Conn) -> tuple[int, list[Change]]:
    """Every blocked principal and changed account, with the version the snapshot reflects."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        version = int(await conn.fetchval("SELECT version FROM access_version"))
        rows = await conn.fetch(
            """
            SELECT 'terminal' AS kind, id AS key, true AS blocked, 0::bigint AS generation
              FROM terminals WHERE status = 'revoked'
            UNION ALL
            SELECT 'merchant', id, true, 0 FROM merchants WHERE status = 'suspended'
            UNION ALL
            SELECT 'citizen', id, true, 0 FROM citizens WHERE status = 'revoked'
            UNION ALL
            SELECT 'account', id, status = 'disabled', generation FROM accounts
             WHERE status = 'disabled' OR generation > 0
            """
        )
    return version, [
        Change(version, r["kind"], r["key"], r["blocked"], r["generation"]) for r in rows
    ]


async def current_version(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT version FROM access_version"))


async def changes_between(conn: Conn, after: int, upto: int) -> list[Change]:
    """The changes numbered (after, upto], in version order."""
    rows = await conn.fetch(
        "SELECT version, kind, key, blocked, generation FROM access_changes "
        "WHERE version > $1 AND version <= $2 ORDER BY version",
        after,
        upto,
    )
    return [Change(r["version"], r["kind"], r["key"], r["blocked"], r["generation"]) for r in rows]
