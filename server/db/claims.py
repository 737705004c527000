"""SQL of citizens, certificates, claims and vouchers (rules E1-E4, A1-A3, V1-V3, X3)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from server.db import Conn
from shared.rules import ClaimDecision


async def upsert_citizen(conn: Conn, id_hash: bytes, id_masked: str) -> asyncpg.Record:
    """The citizen for a (keyed-hashed) ID number, created on first sight (rule X3)."""
    row = await conn.fetchrow(
        """
        INSERT INTO citizens (id_hash, id_masked) VALUES ($1, $2)
        ON CONFLICT (id_hash) DO UPDATE SET id_hash = EXCLUDED.id_hash
        RETURNING id, subject, status, id_masked
        """,
        id_hash,
        id_masked,
    )
    assert row is not None
    record: asyncpg.Record = row
    return record


async def citizen_by_subject(conn: Conn, subject: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, subject, status, id_hash, id_masked FROM citizens WHERE subject = $1", subject
    )


async def certificate_for_claim(conn: Conn, cert_no: str) -> asyncpg.Record | None:
    """The certificate with its owners' hashes and whether it was claimed (rules E3, E4)."""
    return await conn.fetchrow(
        """
        SELECT c.id, c.cert_no, c.district, c.property_type, c.new_build,
               c.invoice_excl_vat_fen, c.tax_relief_fen, c.issued_on,
               array(SELECT o.id_hash FROM certificate_owners o
                      WHERE o.certificate_id = c.id) AS owner_hashes,
               EXISTS (SELECT 1 FROM claims k WHERE k.certificate_id = c.id) AS claimed
          FROM certificates c WHERE c.cert_no = $1
        """,
        cert_no,
    )


async def insert_claim(
    conn: Conn,
    *,
    campaign_id: str,
    certificate_id: int,
    citizen_id: int,
    decision: ClaimDecision,
    face_value_fen: int,
    now: datetime,
) -> tuple[int, list[asyncpg.Record]]:
    """Record the claim and issue its vouchers, in the caller's transaction (rule A3, V1)."""
    claim_id = await conn.fetchval(
        """
        INSERT INTO claims (campaign_id, certificate_id, citizen_id, base_fen, rate_bp,
                            voucher_count, face_value_fen, claimed_at, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id
        """,
        campaign_id,
        certificate_id,
        citizen_id,
        decision.base_fen,
        decision.rate_bp,
        decision.voucher_count,
        face_value_fen,
        now,
        decision.expires_at,
    )
    vouchers = await conn.fetch(
        """
        INSERT INTO vouchers (campaign_id, claim_id, citizen_id, face_value_fen, expires_at)
        SELECT $1, $2, $3, $4, $5 FROM generate_series(1, $6)
        RETURNING id, face_value_fen, expires_at
        """,
        campaign_id,
        claim_id,
        citizen_id,
        face_value_fen,
        decision.expires_at,
        decision.voucher_count,
    )
    return int(claim_id), vouchers


async def wallet(conn: Conn, citizen_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT v.id, v.campaign_id, v.face_value_fen, v.expires_at, v.status, v.redeemed_at
          FROM vouchers v WHERE v.citizen_id = $1 ORDER BY v.expires_at, v.id
        """,
        citizen_id,
    )


async def claims_of(conn: Conn, citizen_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT k.id, k.campaign_id, c.cert_no, k.voucher_count, k.face_value_fen, k.claimed_at,
               k.expires_at
          FROM claims k JOIN certificates c ON c.id = k.certificate_id
         WHERE k.citizen_id = $1 ORDER BY k.id
        """,
        citizen_id,
    )
