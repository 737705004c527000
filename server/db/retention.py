"""SQL of retention (issue 9; rule U7): what may be forgotten, in small batches.

Purged, once older than the retention period (at least 24 h, as Stripe keeps idempotency
keys): consumed QR token ids, counted from their token's expiry (a token lives at most a
minute, so an expired one can no longer be presented, and the id is kept a day beyond), and
kept refusals (``refused_redemptions``), counted from when they were answered, and the wallet
sign-in's used nonces (rule X2), counted from when they could last be presented. Never purged:
redemptions, refunds and their items (the ledger, which also carries the idempotency keys
of successful writes), and the audit log.

Each batch is its own short statement, so a purge never holds many row locks or a long
transaction next to the tills.
"""

from __future__ import annotations

from datetime import datetime

from server.db import Conn

PURGES: dict[str, str] = {
    "consumed_tokens": """
        DELETE FROM consumed_tokens WHERE jti IN (
            SELECT jti FROM consumed_tokens WHERE expires_at < $1 LIMIT $2)
    """,
    "refused_redemptions": """
        DELETE FROM refused_redemptions WHERE (terminal_id, idempotency_key) IN (
            SELECT terminal_id, idempotency_key FROM refused_redemptions
             WHERE created_at < $1 LIMIT $2)
    """,
    "used_sign_in_nonces": """
        DELETE FROM used_sign_in_nonces WHERE nonce IN (
            SELECT nonce FROM used_sign_in_nonces WHERE expires_at < $1 LIMIT $2)
    """,
}

# one purge at a time across server processes (pg_try_advisory_lock)
_LOCK_KEY = 0x76726574  # 'vret'


async def purge(conn: Conn, *, before: datetime, batch: int = 5000) -> dict[str, int] | None:
    """Delete what is older than ``before``, ``batch`` rows per statement; rows deleted per
    table, or None when another process is purging now."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
        return None
    try:
        deleted: dict[str, int] = {}
        for table, sql in PURGES.items():
            total = 0
            while True:
                status = await conn.execute(sql, before, batch)
                count = int(status.split()[-1])
                total += count
                if count < batch:
                    break
            deleted[table] = total
        return deleted
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
