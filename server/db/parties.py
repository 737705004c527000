"""SQL of merchants, terminals and staff accounts (rules U1, X1, X2)."""

from __future__ import annotations

import asyncpg

from server.db import Conn


async def terminal_with_merchant(conn: Conn, terminal_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """
        SELECT t.id, t.status, t.credential_hash, t.label, m.id AS merchant_id,
               m.name AS merchant_name, m.district, m.status AS merchant_status,
               m.admitted, m.permitted
          FROM terminals t JOIN merchants m ON m.id = t.merchant_id WHERE t.id = $1
        """,
        terminal_id,
    )


async def account(conn: Conn, username: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, username, role, district, merchant_id, credential_hash, status, generation "
        "FROM accounts WHERE username = $1",
        username,
    )


async def participation(conn: Conn, citizen_id: int) -> asyncpg.Record | None:
    """Rule X1: whether an operator revoked the citizen, when and why (shown in the wallet)."""
    return await conn.fetchrow(
        "SELECT status, revoked_at, revoked_reason FROM citizens WHERE id = $1", citizen_id
    )


async def merchant(conn: Conn, merchant_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, name, district, admitted, permitted, status FROM merchants WHERE id = $1",
        merchant_id,
    )


async def create_merchant(
    conn: Conn, *, name: str, district: str, admitted: bool, permitted: bool
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO merchants (name, district, admitted, permitted) "
            "VALUES ($1, $2, $3, $4) RETURNING id",
            name,
            district,
            admitted,
            permitted,
        )
    )


async def create_terminal(
    conn: Conn, *, merchant_id: int, label: str, credential_hash: bytes
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO terminals (merchant_id, label, credential_hash) "
            "VALUES ($1, $2, $3) RETURNING id",
            merchant_id,
            label,
            credential_hash,
        )
    )


async def create_account(
    conn: Conn,
    *,
    username: str,
    role: str,
    credential_hash: bytes,
    district: str | None = None,
    merchant_id: int | None = None,
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO accounts (username, role, district, merchant_id, credential_hash) "
            "VALUES ($1, $2, $3, $4, $5) RETURNING id",
            username,
            role,
            district,
            merchant_id,
            credential_hash,
        )
    )
