"""Rows with random ids, so that tests sharing one database never see each other's data."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import asyncpg

from server.campaign_files import load_bundled_campaign
from shared.campaign import campaign_to_dict


def ref(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def fake_hash() -> bytes:
    return hashlib.sha256(secrets.token_bytes(16)).digest()


async def district(conn: asyncpg.Connection, code: str = "dongchangfu") -> str:
    await conn.execute(
        "INSERT INTO districts (code, name) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING",
        code,
        code,
    )
    return code


async def campaign(conn: asyncpg.Connection) -> str:
    """A campaign row holding a valid file (a copy of liaocheng-2024 under a fresh id): servers
    load every campaign of the ledger when they start."""
    campaign_id = ref("test").lower()
    config = campaign_to_dict(replace(load_bundled_campaign("liaocheng-2024"), id=campaign_id))
    await conn.execute(
        "INSERT INTO campaigns (id, name, stacking_group, config) VALUES ($1, $2, $3, $4)",
        campaign_id,
        campaign_id,
        "test",
        json.dumps(config),
    )
    return campaign_id


async def certificate(conn: asyncpg.Connection, district_code: str = "dongchangfu") -> int:
    await district(conn, district_code)
    return int(
        await conn.fetchval(
            """
            INSERT INTO certificates (cert_no, district, property_type, new_build,
                                      invoice_excl_vat_fen, tax_relief_fen, issued_on)
            VALUES ($1, $2, 'housing', true, 120000000, 0, $3) RETURNING id
            """,
            ref("cert"),
            district_code,
            date(2024, 9, 1),
        )
    )


async def citizen(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO citizens (id_hash, id_masked) VALUES ($1, '3715**********1234') "
            "RETURNING id",
            fake_hash(),
        )
    )


async def claim_with_vouchers(
    conn: asyncpg.Connection, campaign_id: str, citizen_id: int, count: int = 3
) -> tuple[int, list[int]]:
    claimed_at = datetime(2024, 9, 1, 2, tzinfo=UTC)
    expires_at = claimed_at + timedelta(days=90)
    cert_id = await certificate(conn)
    claim_id = int(
        await conn.fetchval(
            """
            INSERT INTO claims (campaign_id, certificate_id, citizen_id, base_fen, rate_bp,
                                voucher_count, face_value_fen, claimed_at, expires_at)
            VALUES ($1, $2, $3, 120000000, 40, $4, 10000, $5, $6) RETURNING id
            """,
            campaign_id,
            cert_id,
            citizen_id,
            count,
            claimed_at,
            expires_at,
        )
    )
    rows = await conn.fetch(
        """
        INSERT INTO vouchers (campaign_id, claim_id, citizen_id, face_value_fen, expires_at)
        SELECT $1, $2, $3, 10000, $4 FROM generate_series(1, $5) RETURNING id
        """,
        campaign_id,
        claim_id,
        citizen_id,
        expires_at,
        count,
    )
    return claim_id, [r["id"] for r in rows]


async def merchant(conn: asyncpg.Connection, district_code: str = "dongchangfu") -> int:
    await district(conn, district_code)
    return int(
        await conn.fetchval(
            "INSERT INTO merchants (name, district, admitted, permitted) "
            "VALUES ($1, $2, true, true) RETURNING id",
            ref("shop"),
            district_code,
        )
    )


async def terminal(conn: asyncpg.Connection, merchant_id: int) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO terminals (merchant_id, label, credential_hash) "
            "VALUES ($1, 'till 1', $2) RETURNING id",
            merchant_id,
            fake_hash(),
        )
    )


async def consumed_token(conn: asyncpg.Connection, citizen_id: int) -> uuid.UUID:
    jti = uuid.uuid4()
    await conn.execute(
        "INSERT INTO consumed_tokens (jti, citizen_id, expires_at) VALUES ($1, $2, now())",
        jti,
        citizen_id,
    )
    return jti


async def redemption(
    conn: asyncpg.Connection,
    *,
    campaign_id: str,
    merchant_id: int,
    terminal_id: int,
    citizen_id: int,
    receipt_no: str | None = None,
    bill_fen: int = 40000,
    voucher_count: int = 1,
) -> int:
    jti = await consumed_token(conn, citizen_id)
    return int(
        await conn.fetchval(
            """
            INSERT INTO redemptions (campaign_id, merchant_id, terminal_id, citizen_id, receipt_no,
                                     bill_fen, spend_threshold_fen, face_value_fen,
                                     voucher_count, token_jti, idempotency_key, request_hash)
            VALUES ($1, $2, $3, $4, $5, $6, 20000, 10000, $7, $8, $9, $10) RETURNING id
            """,
            campaign_id,
            merchant_id,
            terminal_id,
            citizen_id,
            receipt_no or ref("R"),
            bill_fen,
            voucher_count,
            jti,
            ref("idem"),
            fake_hash(),
        )
    )
