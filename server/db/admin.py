"""SQL of what operators change: merchants, terminals, citizens' participation, the audit log
(rules U1, X1, X2). Every change is written with its audit entry in the same transaction (the
services open it). Rows come back as frozen dataclasses."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from server.db import Conn


@dataclass(frozen=True, slots=True)
class Merchant:
    id: int
    name: str
    district: str
    admitted: bool  # rule U1: by the commerce bureau
    permitted: bool  # rule U1: by the district
    status: str  # active | suspended (rule X1)
    created_at: datetime
    kind: str = "shop"  # shop | developer (rule T4: a developer's sales office, issue 13)
    active_terminals: int | None = None  # only where listed


@dataclass(frozen=True, slots=True)
class Terminal:
    id: int
    status: str  # active | revoked
    label: str
    merchant_id: int
    district: str  # its merchant's


@dataclass(frozen=True, slots=True)
class RevokedCitizen:
    id: int
    subject: uuid.UUID
    id_masked: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    reason: str | None
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    username: str
    role: str
    district: str | None
    merchant_id: int | None
    status: str  # active | disabled
    generation: int  # rule X1: bumped when its tokens must end
    created_at: datetime


def _merchant(row: asyncpg.Record | None) -> Merchant | None:
    return None if row is None else Merchant(**dict(row))


def _account(row: asyncpg.Record | None) -> Account | None:
    return None if row is None else Account(**dict(row))


def _changed_account(row: asyncpg.Record | None) -> Account:
    account = _account(row)
    assert account is not None
    return account


_SET_MERCHANT = {
    column: f"UPDATE merchants SET {column} = $2 WHERE id = $1 "  # noqa: S608 - fixed names
    "RETURNING id, name, district, admitted, permitted, status, created_at, kind"
    for column in ("admitted", "permitted", "status")
}


async def audit(
    conn: Conn,
    *,
    actor: str,
    action: str,
    subject: str,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Rule X1: who, when, what and why; the table refuses UPDATE and DELETE."""
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, reason, details, at) "
        "VALUES ($1, $2, $3, $4, $5, coalesce($6, now()))",
        actor,
        action,
        subject,
        reason,
        json.dumps(details or {}, ensure_ascii=False),
        at,
    )


async def merchants(conn: Conn, district: str | None, kind: str | None = None) -> list[Merchant]:
    rows = await conn.fetch(
        """
        SELECT id, name, district, admitted, permitted, status, created_at, kind,
               (SELECT count(*) FROM terminals t WHERE t.merchant_id = m.id
                 AND t.status = 'active') AS active_terminals
          FROM merchants m WHERE ($1::text IS NULL OR district = $1)
           AND ($2::text IS NULL OR kind = $2) ORDER BY id
        """,
        district,
        kind,
    )
    return [Merchant(**dict(r)) for r in rows]


async def same_merchant(conn: Conn, name: str, district: str) -> int | None:
    """The merchant of exactly this name in this district, if any. Call inside the adding
    transaction: the advisory lock makes two concurrent adds of one shop take turns, so the
    second sees the first (the lock ends with the transaction)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))", name, district
    )
    found = await conn.fetchval(
        "SELECT id FROM merchants WHERE name = $1 AND district = $2 ORDER BY id LIMIT 1",
        name,
        district,
    )
    return None if found is None else int(found)


async def merchant_for_update(conn: Conn, merchant_id: int) -> Merchant | None:
    return _merchant(
        await conn.fetchrow(
            "SELECT id, name, district, admitted, permitted, status, created_at, kind "
            "FROM merchants WHERE id = $1 FOR UPDATE",
            merchant_id,
        )
    )


async def set_merchant(conn: Conn, merchant_id: int, column: str, value: Any) -> Merchant:
    merchant = _merchant(await conn.fetchrow(_SET_MERCHANT[column], merchant_id, value))
    assert merchant is not None
    return merchant


async def terminal_for_update(conn: Conn, terminal_id: int) -> Terminal | None:
    row = await conn.fetchrow(
        "SELECT t.id, t.status, t.label, t.merchant_id, m.district FROM terminals t "
        "JOIN merchants m ON m.id = t.merchant_id WHERE t.id = $1 FOR UPDATE OF t",
        terminal_id,
    )
    return None if row is None else Terminal(**dict(row))


async def revoke_terminal(conn: Conn, terminal_id: int, at: datetime) -> None:
    await conn.execute(
        "UPDATE terminals SET status = 'revoked', revoked_at = $2 WHERE id = $1",
        terminal_id,
        at,
    )


async def revoke_citizen(
    conn: Conn, id_hash: bytes, id_masked: str, reason: str, at: datetime
) -> tuple[RevokedCitizen | None, int]:
    """Rule X1: revoke participation and claw back every unused voucher; used ones stay.

    Someone who never signed in has no citizen row yet (an imported owner before their
    claim): the row is made here, already revoked, so they are refused from their first
    sign-in. None when the citizen is revoked already."""
    citizen = await conn.fetchrow(
        """
        UPDATE citizens SET status = 'revoked', revoked_at = $3, revoked_reason = $2
         WHERE id_hash = $1 AND status = 'active'
        RETURNING id, subject, id_masked
        """,
        id_hash,
        reason,
        at,
    )
    if citizen is None:
        made = await conn.fetchrow(
            """
            INSERT INTO citizens (id_hash, id_masked, status, revoked_at, revoked_reason)
            VALUES ($1, $4, 'revoked', $3, $2)
            ON CONFLICT (id_hash) DO NOTHING
            RETURNING id, subject, id_masked
            """,
            id_hash,
            reason,
            at,
            id_masked,
        )
        return (None if made is None else RevokedCitizen(**dict(made))), 0
    clawed = await conn.execute(
        "UPDATE vouchers SET status = 'revoked' WHERE citizen_id = $1 AND status = 'available'",
        citizen["id"],
    )
    return RevokedCitizen(**dict(citizen)), int(clawed.split()[-1])


async def audit_entries(
    conn: Conn,
    *,
    actor: str | None,
    action: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[AuditEntry]:
    rows = await conn.fetch(
        """
        SELECT id, at, actor, action, subject, reason, details FROM audit_log
         WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2)
           AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
         ORDER BY id DESC LIMIT $5
        """,
        actor,
        action,
        start,
        end,
        limit,
    )
    return [AuditEntry(**{**dict(r), "details": json.loads(r["details"])}) for r in rows]


# --- staff accounts (rule X2, issue 9 item 5) ----------------------------------------------


async def accounts(
    conn: Conn, *, merchant_id: int | None, role: str | None, username: str | None
) -> list[Account]:
    rows = await conn.fetch(
        "SELECT id, username, role, district, merchant_id, status, generation, created_at "
        "FROM accounts WHERE ($1::bigint IS NULL OR merchant_id = $1) "
        "AND ($2::text IS NULL OR role = $2) AND ($3::text IS NULL OR username = $3) ORDER BY id",
        merchant_id,
        role,
        username,
    )
    return [Account(**dict(r)) for r in rows]


async def account_for_update(conn: Conn, account_id: int) -> Account | None:
    return _account(
        await conn.fetchrow(
            "SELECT id, username, role, district, merchant_id, status, generation, created_at "
            "FROM accounts WHERE id = $1 FOR UPDATE",
            account_id,
        )
    )


async def set_account_status(conn: Conn, account_id: int, status: str) -> Account:
    """Disabling bumps the generation: the tokens issued before never work again, not even
    once the account is enabled (it signs in afresh)."""
    return _changed_account(
        await conn.fetchrow(
            "UPDATE accounts SET status = $2, "
            "generation = generation + CASE WHEN $2 = 'disabled' THEN 1 ELSE 0 END "
            "WHERE id = $1 "
            "RETURNING id, username, role, district, merchant_id, status, generation, created_at",
            account_id,
            status,
        )
    )


async def set_account_role(
    conn: Conn, account_id: int, *, role: str, district: str | None, merchant_id: int | None
) -> Account:
    """A new role ends every token of the old one (they carry the old role and scope)."""
    return _changed_account(
        await conn.fetchrow(
            "UPDATE accounts SET role = $2, district = $3, merchant_id = $4, "
            "generation = generation + 1 WHERE id = $1 "
            "RETURNING id, username, role, district, merchant_id, status, generation, created_at",
            account_id,
            role,
            district,
            merchant_id,
        )
    )


async def set_account_password(conn: Conn, account_id: int, credential_hash: bytes) -> Account:
    """A reset password ends every session of the old one (OWASP session management)."""
    return _changed_account(
        await conn.fetchrow(
            "UPDATE accounts SET credential_hash = $2, generation = generation + 1 "
            "WHERE id = $1 "
            "RETURNING id, username, role, district, merchant_id, status, generation, created_at",
            account_id,
            credential_hash,
        )
    )


async def account_by_id(conn: Conn, account_id: int) -> Account | None:
    return _account(
        await conn.fetchrow(
            "SELECT id, username, role, district, merchant_id, status, generation, created_at "
            "FROM accounts WHERE id = $1",
            account_id,
        )
    )
