"""SQL of citizens, certificates, claims and vouchers (rules E1-E4, A1-A3, V1-V3, X3).

Rows come back as frozen dataclasses; a claim that loses the race for its certificate comes
back as ``CertificateAlreadyClaimed`` (rule E4), not as the driver's unique violation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from server.db import Conn
from shared.errors import CertificateAlreadyClaimed
from shared.rules import CertificateRecord, ClaimDecision, PropertyType


@dataclass(frozen=True, slots=True)
class Citizen:
    id: int
    subject: uuid.UUID
    status: str  # active | revoked (rule X1)
    id_hash: bytes
    id_masked: str


@dataclass(frozen=True, slots=True)
class ClaimableCertificate:
    """A registered certificate, as rule E3 reads it, and whether it was claimed (E4)."""

    id: int
    record: CertificateRecord
    claimed: bool


@dataclass(frozen=True, slots=True)
class IssuedVoucher:
    id: int
    face_value_fen: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class HeldVoucher:
    """A voucher of the citizen's wallet, in any state."""

    id: int
    campaign_id: str
    face_value_fen: int
    expires_at: datetime
    status: str  # available | redeemed | revoked
    redeemed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClaimSummary:
    id: int
    campaign_id: str
    cert_no: str
    voucher_count: int
    face_value_fen: int
    claimed_at: datetime
    expires_at: datetime


def _citizen(row: asyncpg.Record) -> Citizen:
    return Citizen(
        id=row["id"],
        subject=row["subject"],
        status=row["status"],
        id_hash=bytes(row["id_hash"]),
        id_masked=row["id_masked"],
    )


async def upsert_citizen(conn: Conn, id_hash: bytes, id_masked: str) -> Citizen:
    """The citizen for a (keyed-hashed) ID number, created on first sight (rule X3)."""
    row = await conn.fetchrow(
        """
        INSERT INTO citizens (id_hash, id_masked) VALUES ($1, $2)
        ON CONFLICT (id_hash) DO UPDATE SET id_hash = EXCLUDED.id_hash
        RETURNING id, subject, status, id_hash, id_masked
        """,
        id_hash,
        id_masked,
    )
    assert row is not None
    return _citizen(row)


async def citizen_by_subject(conn: Conn, subject: uuid.UUID) -> Citizen | None:
    row = await conn.fetchrow(
        "SELECT id, subject, status, id_hash, id_masked FROM citizens WHERE subject = $1", subject
    )
    return None if row is None else _citizen(row)


async def certificate_for_claim(conn: Conn, cert_no: str) -> ClaimableCertificate | None:
    """The certificate with its owners' hashes and whether it was claimed (rules E3, E4)."""
    row = await conn.fetchrow(
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
    if row is None:
        return None
    record = CertificateRecord(
        cert_no=row["cert_no"],
        district=row["district"],
        property_type=PropertyType(row["property_type"]),
        new_build=row["new_build"],
        invoice_excl_vat_fen=row["invoice_excl_vat_fen"],
        tax_relief_fen=row["tax_relief_fen"],
        issued_on=row["issued_on"],
        owner_hashes=frozenset(bytes(h) for h in row["owner_hashes"]),
    )
    return ClaimableCertificate(id=row["id"], record=record, claimed=row["claimed"])


async def insert_claim(
    conn: Conn,
    *,
    campaign_id: str,
    certificate_id: int,
    citizen_id: int,
    decision: ClaimDecision,
    face_value_fen: int,
    now: datetime,
) -> tuple[int, list[IssuedVoucher]]:
    """Record the claim and issue its vouchers, in the caller's transaction (rule A3, V1).
    ``CertificateAlreadyClaimed`` if a concurrent owner's claim won (rule E4)."""
    try:
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
    except asyncpg.UniqueViolationError as exc:
        raise CertificateAlreadyClaimed() from exc  # rule E4: one claim per certificate
    rows = await conn.fetch(
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
    vouchers = [IssuedVoucher(r["id"], r["face_value_fen"], r["expires_at"]) for r in rows]
    return int(claim_id), vouchers


async def wallet(conn: Conn, citizen_id: int) -> list[HeldVoucher]:
    rows = await conn.fetch(
        """
        SELECT v.id, v.campaign_id, v.face_value_fen, v.expires_at, v.status, v.redeemed_at
          FROM vouchers v WHERE v.citizen_id = $1 ORDER BY v.expires_at, v.id
        """,
        citizen_id,
    )
    return [
        HeldVoucher(
            id=r["id"],
            campaign_id=r["campaign_id"],
            face_value_fen=r["face_value_fen"],
            expires_at=r["expires_at"],
            status=r["status"],
            redeemed_at=r["redeemed_at"],
        )
        for r in rows
    ]


async def claims_of(conn: Conn, citizen_id: int) -> list[ClaimSummary]:
    rows = await conn.fetch(
        """
        SELECT k.id, k.campaign_id, c.cert_no, k.voucher_count, k.face_value_fen, k.claimed_at,
               k.expires_at
          FROM claims k JOIN certificates c ON c.id = k.certificate_id
         WHERE k.citizen_id = $1 ORDER BY k.id
        """,
        citizen_id,
    )
    return [
        ClaimSummary(
            id=r["id"],
            campaign_id=r["campaign_id"],
            cert_no=r["cert_no"],
            voucher_count=r["voucher_count"],
            face_value_fen=r["face_value_fen"],
            claimed_at=r["claimed_at"],
            expires_at=r["expires_at"],
        )
        for r in rows
    ]
