"""SQL of merchants, terminals and staff accounts (rules U1, X1, X2), as frozen dataclasses.
A username taken by another account comes back as ``UsernameTaken``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from server.db import Conn
from shared.errors import UsernameTaken


@dataclass(frozen=True, slots=True)
class TerminalSignIn:
    """What a terminal's sign-in reads: its credential and its merchant (rules U1, X2)."""

    id: int
    status: str  # active | revoked
    credential_hash: bytes
    label: str
    merchant_id: int
    merchant_name: str
    district: str
    merchant_status: str  # active | suspended
    admitted: bool
    permitted: bool
    receipts_per_till: bool  # rule U4 [choice]
    refund_needs_manager: bool  # issue 11 item 5
    kind: str = "shop"  # rule T4: shop | developer (a sales office's till, issue 13)


@dataclass(frozen=True, slots=True)
class MerchantSettings:
    """A merchant's own choices: receipts numbered per till (rule U4 [choice]), and refunds
    approved by one of its managers (issue 11 item 5)."""

    merchant_id: int
    district: str
    receipts_per_till: bool
    refund_needs_manager: bool


@dataclass(frozen=True, slots=True)
class StaffSignIn:
    """What a staff sign-in reads (rule X2)."""

    id: int
    username: str
    role: str
    district: str | None
    merchant_id: int | None
    credential_hash: bytes
    status: str  # active | disabled
    generation: int


@dataclass(frozen=True, slots=True)
class Participation:
    """Rule X1: whether an operator revoked the citizen, when and why."""

    status: str  # active | revoked
    revoked_at: datetime | None
    revoked_reason: str | None


async def terminal_with_merchant(conn: Conn, terminal_id: int) -> TerminalSignIn | None:
    row = await conn.fetchrow(
        """
        SELECT t.id, t.status, t.credential_hash, t.label, m.id AS merchant_id,
               m.name AS merchant_name, m.district, m.status AS merchant_status,
               m.admitted, m.permitted, m.receipts_per_till, m.refund_needs_manager, m.kind
          FROM terminals t JOIN merchants m ON m.id = t.merchant_id WHERE t.id = $1
        """,
        terminal_id,
    )
    if row is None:
        return None
    return TerminalSignIn(**{**dict(row), "credential_hash": bytes(row["credential_hash"])})


async def account(conn: Conn, username: str) -> StaffSignIn | None:
    row = await conn.fetchrow(
        "SELECT id, username, role, district, merchant_id, credential_hash, status, generation "
        "FROM accounts WHERE username = $1",
        username,
    )
    if row is None:
        return None
    return StaffSignIn(**{**dict(row), "credential_hash": bytes(row["credential_hash"])})


async def use_sign_in_nonce(conn: Conn, nonce: bytes, expires_at: datetime) -> bool:
    """Rule X2: record the wallet sign-in's nonce as used; False when it already was."""
    used = await conn.fetchval(
        "INSERT INTO used_sign_in_nonces (nonce, expires_at) VALUES ($1, $2) "
        "ON CONFLICT (nonce) DO NOTHING RETURNING true",
        nonce,
        expires_at,
    )
    return used is True


async def participation(conn: Conn, citizen_id: int) -> Participation | None:
    """Rule X1: whether an operator revoked the citizen, when and why (shown in the wallet)."""
    row = await conn.fetchrow(
        "SELECT status, revoked_at, revoked_reason FROM citizens WHERE id = $1", citizen_id
    )
    return None if row is None else Participation(**dict(row))


_SETTINGS = "SELECT id AS merchant_id, district, receipts_per_till, refund_needs_manager"
_READ_SETTINGS = {
    False: _SETTINGS + " FROM merchants WHERE id = $1",
    True: _SETTINGS + " FROM merchants WHERE id = $1 FOR UPDATE",
}


async def merchant_settings(
    conn: Conn, merchant_id: int, *, for_update: bool = False
) -> MerchantSettings | None:
    row = await conn.fetchrow(_READ_SETTINGS[for_update], merchant_id)
    return None if row is None else MerchantSettings(**dict(row))


async def set_merchant_settings(
    conn: Conn, merchant_id: int, *, receipts_per_till: bool, refund_needs_manager: bool
) -> MerchantSettings:
    row = await conn.fetchrow(
        """
        UPDATE merchants SET receipts_per_till = $2, refund_needs_manager = $3 WHERE id = $1
        RETURNING id AS merchant_id, district, receipts_per_till, refund_needs_manager
        """,
        merchant_id,
        receipts_per_till,
        refund_needs_manager,
    )
    assert row is not None
    return MerchantSettings(**dict(row))


async def merchant_exists(conn: Conn, merchant_id: int) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM merchants WHERE id = $1)", merchant_id)
    )


async def create_merchant(
    conn: Conn, *, name: str, district: str, admitted: bool, permitted: bool, kind: str = "shop"
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO merchants (name, district, admitted, permitted, kind) "
            "VALUES ($1, $2, $3, $4, $5) RETURNING id",
            name,
            district,
            admitted,
            permitted,
            kind,
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
    """A new account; ``UsernameTaken`` if another account has the name (the caller's
    transaction stays usable: the insert runs in a savepoint)."""
    try:
        async with conn.transaction():
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
    except asyncpg.UniqueViolationError as exc:
        raise UsernameTaken(username=username) from exc


# --- persons on house tickets (rules T1, T3, T5, X3; issue 13) ------------------------------


async def ensure_persons(conn: Conn, persons: Iterable[tuple[bytes, str]]) -> None:
    """The persons a ticket names (holder, household, heir), by ID hash and masked number:
    a citizen row for each who has none yet, so the wallet finds their tickets when they
    first sign in and the operators see them masked (X3: no full ID number is kept)."""
    await conn.executemany(
        "INSERT INTO citizens (id_hash, id_masked) VALUES ($1, $2) "
        "ON CONFLICT (id_hash) DO NOTHING",
        sorted(set(persons)),
    )


async def masked_persons(conn: Conn, keys: Iterable[str]) -> dict[str, str]:
    """Person keys (the hex of the ID hash) -> the masked ID number (rule X3)."""
    rows = await conn.fetch(
        "SELECT encode(id_hash, 'hex') AS key, id_masked FROM citizens "
        "WHERE id_hash = ANY($1::bytea[])",
        [bytes.fromhex(k) for k in set(keys) if _is_hex(k)],
    )
    return {r["key"]: r["id_masked"] for r in rows}


def _is_hex(key: str) -> bool:
    try:
        bytes.fromhex(key)
    except ValueError:
        return False
    return True


async def merchant_names(conn: Conn, ids: Iterable[int]) -> dict[int, str]:
    """Merchants' (sellers') names by id, for reports and settlement lines."""
    rows = await conn.fetch("SELECT id, name FROM merchants WHERE id = ANY($1)", list(set(ids)))
    return {r["id"]: r["name"] for r in rows}
