"""Rows with random ids, so that tests sharing one database never see each other's data.

Every row is written through ``server.db.seeding`` (issue 10: one seeding module), the same
code the demo, the load test and the benchmark seed with; no SQL here.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import TypedDict

from server.campaign_files import load_bundled_campaign
from server.db import Conn, seeding
from server.db import campaigns as campaign_db


def ref(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def fake_hash() -> bytes:
    return hashlib.sha256(secrets.token_bytes(16)).digest()


async def district(conn: Conn, code: str = "dongchangfu") -> str:
    await seeding.districts(conn, {code: code})
    return code


async def campaign(conn: Conn) -> str:
    """A campaign row holding a valid file (a copy of liaocheng-2024 under a fresh id): servers
    load every campaign of the ledger when they start."""
    campaign_id = ref("test").lower()
    copy = replace(
        load_bundled_campaign("liaocheng-2024"),
        id=campaign_id,
        name=campaign_id,
        stacking_group="test",
    )
    await campaign_db.upsert(conn, copy)
    return campaign_id


async def certificate(conn: Conn, district_code: str = "dongchangfu") -> int:
    await district(conn, district_code)
    row = seeding.CertificateRow(ref("cert"), district_code, date(2024, 9, 1), 120_000_000)
    (certificate_id,) = await seeding.certificates(conn, [row])
    return certificate_id


async def citizen(conn: Conn) -> int:
    (citizen_id,) = await seeding.citizens(
        conn, [seeding.CitizenRow(fake_hash(), "3715**********1234")]
    )
    return citizen_id


async def claim_with_vouchers(
    conn: Conn, campaign_id: str, citizen_id: int, count: int = 3
) -> tuple[int, list[int]]:
    claimed_at = datetime(2024, 9, 1, 2, tzinfo=UTC)
    row = seeding.ClaimRow(
        campaign_id=campaign_id,
        certificate_id=await certificate(conn),
        citizen_id=citizen_id,
        base_fen=120_000_000,
        rate_bp=40,
        voucher_count=count,
        face_value_fen=10_000,
        claimed_at=claimed_at,
        expires_at=claimed_at + timedelta(days=90),
    )
    (claim_id,) = await seeding.claims(conn, [row])
    return claim_id, await seeding.voucher_ids(conn, claim_id)


async def merchant(conn: Conn, district_code: str = "dongchangfu") -> int:
    await district(conn, district_code)
    (merchant_id,) = await seeding.merchants(
        conn, [seeding.MerchantRow(ref("shop"), district_code)]
    )
    return merchant_id


async def terminal(conn: Conn, merchant_id: int) -> int:
    (terminal_id,) = await seeding.terminals(
        conn, [seeding.TerminalRow(merchant_id, "till 1", fake_hash())]
    )
    return terminal_id


async def consumed_token(conn: Conn, citizen_id: int) -> uuid.UUID:
    return await seeding.consumed_token(conn, citizen_id, datetime.now(UTC))


class Parties(TypedDict):
    """Who a redemption row names besides its campaign (spread into ``redemption``)."""

    merchant_id: int
    terminal_id: int
    citizen_id: int


async def redemption(
    conn: Conn,
    *,
    campaign_id: str,
    merchant_id: int,
    terminal_id: int,
    citizen_id: int,
    receipt_no: str | None = None,
    bill_fen: int = 40000,
    voucher_count: int = 1,
    created_at: datetime | None = None,
    receipt_till: int | None = None,
) -> int:
    return await seeding.redemption(
        conn,
        seeding.RedemptionRow(
            campaign_id=campaign_id,
            merchant_id=merchant_id,
            terminal_id=terminal_id,
            citizen_id=citizen_id,
            receipt_no=receipt_no or ref("R"),
            bill_fen=bill_fen,
            voucher_count=voucher_count,
            token_jti=await consumed_token(conn, citizen_id),
            idempotency_key=ref("idem"),
            request_hash=fake_hash(),
            created_at=created_at,
            receipt_till=receipt_till,
        ),
    )
