"""SQL of a house ticket's use at a developer's sales office (rules T4-T8, with U1, U5, U7 and
X1 as at a shop's till): the one read a use is decided on, the fence its write passes, and the
seller's listing pool as its till shows it. The use itself is written by
``server.db.tickets.write_use``.

The fence, in the write's transaction, holds what the decision read about who is asking:
the terminal, its merchant, the holder and the unit are read ``FOR SHARE``, so a revocation,
suspension or removal either committed before (the write is decided again and refused) or
waits until the use is written; the code is recorded as used (``consumed_tokens``, the fence
of rule U5, as a redemption records it); and a key whose first answer was a refusal takes no
use (U7).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from server.db import Conn
from server.db import tickets as tickets_db
from shared.errors import TokenReplayed
from shared.house_tickets import Listing, Ticket
from shared.redemption import MustDecideAgain
from shared.ticket_campaign import PropertyType
from shared.ticket_till import UseContext

_CONTEXT_SQL = """
SELECT t.status AS terminal_status, t.label AS terminal_label, m.id AS merchant_id,
       m.name AS merchant_name, m.kind AS merchant_kind, m.admitted, m.permitted,
       m.status AS merchant_status,
       c.id AS citizen_id, c.status AS citizen_status, c.id_masked,
       encode(c.id_hash, 'hex') AS holder,
       EXISTS (SELECT 1 FROM consumed_tokens k WHERE k.jti = $3) AS token_used,
       l.id AS listing_id, l.campaign_id, l.unit, l.district, l.property_type, l.area_dm2,
       l.listed_price_fen, l.status = 'admitted' AS listing_admitted,
       EXISTS (SELECT 1 FROM ticket_uses u
                WHERE u.merchant_id = m.id AND u.contract_no = $5) AS contract_used
  FROM terminals t JOIN merchants m ON m.id = t.merchant_id
  LEFT JOIN citizens c ON c.id = $2
  LEFT JOIN listings l ON l.merchant_id = m.id AND l.unit = $4
 WHERE t.id = $1
"""


@dataclass(frozen=True, slots=True)
class UseQuery:
    """Whose context a use needs: this terminal, the holder the code names, the unit and the
    contract number (normalised, T5)."""

    terminal_id: int
    citizen_id: int
    jti: uuid.UUID
    unit: str
    contract_no: str


async def read_use_context(conn: Conn, query: UseQuery) -> UseContext | None:
    """Rules T4-T6, U1, U5, X1: everything a use is decided on, from one snapshot (a
    repeatable-read transaction); None when there is no such terminal."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow(
            _CONTEXT_SQL,
            query.terminal_id,
            query.citizen_id,
            query.jti,
            query.unit,
            query.contract_no,
        )
        if row is None:
            return None
        listing = None
        if row["listing_id"] is not None:
            listing = Listing(
                seller=str(row["merchant_id"]),
                unit=row["unit"],
                district=row["district"],
                property_type=PropertyType(row["property_type"]),
                area_dm2=row["area_dm2"],
                listed_price_fen=row["listed_price_fen"],
                # rule T4: the unit admitted, its seller admitted and active (checked apart)
                in_pool=row["listing_admitted"],
            )
        tickets: tuple[Ticket, ...] = ()
        if row["holder"] is not None and row["campaign_id"] is not None:
            tickets = tuple(
                await tickets_db.tickets_of_holder(conn, row["holder"], row["campaign_id"])
            )
    return UseContext(
        terminal_status=row["terminal_status"],
        terminal_label=row["terminal_label"],
        merchant_id=row["merchant_id"],
        merchant_name=row["merchant_name"],
        merchant_kind=row["merchant_kind"],
        admitted=row["admitted"],
        permitted=row["permitted"],
        merchant_status=row["merchant_status"],
        citizen_id=row["citizen_id"],
        citizen_status=row["citizen_status"],
        id_masked=row["id_masked"],
        holder=row["holder"],
        token_used=row["token_used"],
        listing_id=row["listing_id"],
        listing=listing,
        campaign_id=row["campaign_id"],
        contract_used=row["contract_used"],
        tickets=tickets,
    )


@dataclass(frozen=True, slots=True)
class Fence:
    """What a use's write must still find true (see the module's docstring)."""

    terminal_id: int
    citizen_id: int
    listing_id: int
    jti: uuid.UUID
    jti_expires_at: datetime
    key: str
    now: datetime


_STANDING_SQL = """
SELECT t.status = 'active' AND m.status = 'active' AND m.admitted AND m.permitted
       AND m.kind = 'developer' AND c.status = 'active' AND l.status = 'admitted'
       AND NOT EXISTS (SELECT 1 FROM refused_redemptions f
                        WHERE f.terminal_id = t.id AND f.idempotency_key = $4)
  FROM terminals t JOIN merchants m ON m.id = t.merchant_id
  JOIN listings l ON l.id = $3 AND l.merchant_id = m.id
  CROSS JOIN citizens c
 WHERE t.id = $1 AND c.id = $2
   FOR SHARE OF t, m, l, c
"""


async def fence(conn: Conn, f: Fence) -> None:
    """Rules U1, U5, U7, X1, T4, inside the use's transaction: the standing read ``FOR
    SHARE`` and the code consumed. Raises ``MustDecideAgain`` (a standing lost, a refusal kept
    under the key, a deadlock: decide again from a fresh read) or ``TokenReplayed`` (the code
    was used meanwhile); the caller's transaction then rolls back."""
    try:
        sound = await conn.fetchval(_STANDING_SQL, f.terminal_id, f.citizen_id, f.listing_id, f.key)
        if not sound:
            raise MustDecideAgain("standing_changed")
        await conn.execute(
            "INSERT INTO consumed_tokens (jti, citizen_id, expires_at, consumed_at) "
            "VALUES ($1, $2, $3, $4)",
            f.jti,
            f.citizen_id,
            f.jti_expires_at,
            f.now,
        )
    except asyncpg.UniqueViolationError as exc:
        raise TokenReplayed("this code was already used; ask the holder to refresh it") from exc
    except asyncpg.PostgresError as exc:
        if exc.sqlstate in ("40P01", "40001"):
            raise MustDecideAgain("concurrent_write") from exc
        raise


async def person_of(conn: Conn, citizen_id: int) -> str | None:
    """The person key of a citizen (the hex of its ID hash): how tickets name their holder."""
    person: str | None = await conn.fetchval(
        "SELECT encode(id_hash, 'hex') FROM citizens WHERE id = $1", citizen_id
    )
    return person


async def masked_id_of(conn: Conn, person: str) -> str | None:
    """Rule X3: the masked ID number of a person key (the hex of its ID hash), if the person
    signed up."""
    masked: str | None = await conn.fetchval(
        "SELECT id_masked FROM citizens WHERE id_hash = decode($1, 'hex')", person
    )
    return masked


@dataclass(frozen=True, slots=True)
class PoolUnit:
    """Rule T4: a unit of a seller's listing pool, as its sales office's till lists it."""

    unit: str
    campaign_id: str
    district: str
    property_type: PropertyType
    area_dm2: int
    listed_price_fen: int
    status: str  # pending, admitted or removed
    sold: bool  # a live use paid a contract on it


async def pool_of(conn: Conn, merchant_id: int) -> list[PoolUnit]:
    """Rule T4: the seller's units, admitted ones first, by unit."""
    rows = await conn.fetch(
        """
        SELECT l.unit, l.campaign_id, l.district, l.property_type, l.area_dm2,
               l.listed_price_fen, l.status,
               EXISTS (SELECT 1 FROM ticket_uses u WHERE u.listing_id = l.id
                          AND u.cancelled_at IS NULL) AS sold
          FROM listings l WHERE l.merchant_id = $1
         ORDER BY l.status <> 'admitted', l.unit
        """,
        merchant_id,
    )
    return [
        PoolUnit(
            unit=r["unit"],
            campaign_id=r["campaign_id"],
            district=r["district"],
            property_type=PropertyType(r["property_type"]),
            area_dm2=r["area_dm2"],
            listed_price_fen=r["listed_price_fen"],
            status=r["status"],
            sold=r["sold"],
        )
        for r in rows
    ]
