"""Issue 9, retention (rule U7): consumed QR token ids and kept refusals older than the
retention period go, in batches; younger ones stay; the ledger is never purged."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from server.app import create_app, retention_hours
from server.campaign_files import bundled_campaigns_dir
from server.db.invariants import check_ledger
from server.db.retention import purge
from server.settings import Settings
from shared.tokens import QrKey
from tests import factories as f

NOW = datetime.now(UTC)


@pytest.fixture
async def fresh(fresh_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def token(conn: asyncpg.Connection, citizen_id: int, expired_hours_ago: float) -> uuid.UUID:
    jti = uuid.uuid4()
    expires = NOW - timedelta(hours=expired_hours_ago)
    await conn.execute(
        "INSERT INTO consumed_tokens (jti, citizen_id, expires_at, consumed_at) "
        "VALUES ($1, $2, $3::timestamptz, $3::timestamptz - interval '30 seconds')",
        jti,
        citizen_id,
        expires,
    )
    return jti


async def used_nonce(conn: asyncpg.Connection, expired_hours_ago: float) -> bytes:
    """Rule X2: a wallet sign-in nonce used, presentable until ``expired_hours_ago``."""
    nonce = secrets.token_bytes(32)
    await conn.execute(
        "INSERT INTO used_sign_in_nonces (nonce, expires_at) VALUES ($1, $2)",
        nonce,
        NOW - timedelta(hours=expired_hours_ago),
    )
    return nonce


async def refusal(conn: asyncpg.Connection, terminal_id: int, hours_ago: float) -> str:
    key = f.ref("idem")
    await conn.execute(
        "INSERT INTO refused_redemptions (terminal_id, idempotency_key, request_hash, status, "
        "answer, created_at) VALUES ($1, $2, $3, 422, '{}', $4)",
        terminal_id,
        key,
        f.fake_hash(),
        NOW - timedelta(hours=hours_ago),
    )
    return key


async def world(conn: asyncpg.Connection) -> dict[str, Any]:
    campaign_id = await f.campaign(conn)
    citizen_id = await f.citizen(conn)
    merchant_id = await f.merchant(conn)
    terminal_id = await f.terminal(conn, merchant_id)
    redemption_id = await f.redemption(
        conn,
        campaign_id=campaign_id,
        merchant_id=merchant_id,
        terminal_id=terminal_id,
        citizen_id=citizen_id,
    )
    _, (voucher_id, *_) = await f.claim_with_vouchers(conn, campaign_id, citizen_id)
    await conn.execute(
        "UPDATE vouchers SET status = 'redeemed', redeemed_at = now() WHERE id = $1", voucher_id
    )
    await conn.execute(
        "INSERT INTO redemption_items (redemption_id, voucher_id) VALUES ($1, $2)",
        redemption_id,
        voucher_id,
    )
    assert await check_ledger(conn) == []
    # the redemption's token expired long ago: its id goes, the redemption stays
    await conn.execute(
        "UPDATE consumed_tokens SET expires_at = $2 "
        "WHERE jti = (SELECT token_jti FROM redemptions WHERE id = $1)",
        redemption_id,
        NOW - timedelta(days=30),
    )
    return {"citizen": citizen_id, "terminal": terminal_id, "redemption": redemption_id}


async def test_old_token_ids_and_refusals_go_young_ones_and_the_ledger_stay(
    fresh: asyncpg.Connection,
) -> None:
    w = await world(fresh)
    old_tokens = [await token(fresh, w["citizen"], hours) for hours in (25, 48, 24 * 400)]
    young_tokens = [await token(fresh, w["citizen"], hours) for hours in (23, 0.01, -0.01)]
    old_keys = [await refusal(fresh, w["terminal"], hours) for hours in (24.5, 100, 1000)]
    young_keys = [await refusal(fresh, w["terminal"], hours) for hours in (23.9, 1, 0)]
    old_nonces = [await used_nonce(fresh, hours) for hours in (24.5, 72)]
    young_nonces = [await used_nonce(fresh, hours) for hours in (23, -0.1)]

    deleted = await purge(fresh, before=NOW - timedelta(hours=24), batch=2)  # several batches

    assert deleted == {"consumed_tokens": 4, "refused_redemptions": 3, "used_sign_in_nonces": 2}
    left_tokens = {r["jti"] for r in await fresh.fetch("SELECT jti FROM consumed_tokens")}
    assert left_tokens == set(young_tokens)
    assert not left_tokens & set(old_tokens)
    left_keys = {
        r["idempotency_key"] for r in await fresh.fetch("SELECT * FROM refused_redemptions")
    }
    assert left_keys == set(young_keys)
    assert not left_keys & set(old_keys)
    left_nonces = {r["nonce"] for r in await fresh.fetch("SELECT nonce FROM used_sign_in_nonces")}
    assert left_nonces == set(young_nonces) and not left_nonces & set(old_nonces)
    assert await fresh.fetchval("SELECT count(*) FROM redemptions") == 1
    assert await check_ledger(fresh) == []
    # a second pass finds nothing more
    assert await purge(fresh, before=NOW - timedelta(hours=24)) == {
        "consumed_tokens": 0,
        "refused_redemptions": 0,
        "used_sign_in_nonces": 0,
    }


async def test_the_dead_idempotency_keys_table_is_gone(fresh: asyncpg.Connection) -> None:
    assert await fresh.fetchval("SELECT to_regclass('idempotency_keys')") is None


async def test_the_server_purges_on_its_own_keeping_at_least_a_day(
    aiohttp_client: Any, fresh_database_url: str, redis_client: Any, test_services: Any
) -> None:
    # the job runs in the server (cleanup context), every retention_interval_s
    bundled = bundled_campaigns_dir()
    settings = Settings(
        database_url=fresh_database_url,
        redis_url=test_services.redis_url,
        id_hash_key=secrets.token_bytes(32),
        access_token_secret=secrets.token_bytes(32),
        qr_keys=(QrKey.generate("R"),),
        idp_issuer="https://idp.test",
        idp_keys={},
        campaign_files=(bundled / "liaocheng-demo.toml",),
        pg_pool_min=1,
        pg_pool_max=4,
        retention_hours=1,  # asks for less than a day: a day is kept all the same
        retention_interval_s=0.05,
    )
    client = await aiohttp_client(create_app(settings))
    assert retention_hours(client.app) == 24
    conn = await asyncpg.connect(fresh_database_url)
    try:
        w = await world(conn)
        old = await token(conn, w["citizen"], 30)
        young = await token(conn, w["citizen"], 2)
        for _ in range(200):  # up to 10 s: the job runs every 50 ms
            if not await conn.fetchval("SELECT count(*) FROM consumed_tokens WHERE jti = $1", old):
                break
            await asyncio.sleep(0.05)
        assert not await conn.fetchval("SELECT count(*) FROM consumed_tokens WHERE jti = $1", old)
        assert await conn.fetchval("SELECT count(*) FROM consumed_tokens WHERE jti = $1", young)
        assert await conn.fetchval("SELECT count(*) FROM redemptions") == 1
        assert await check_ledger(conn) == []
    finally:
        await conn.close()
