"""Past one machine (issue 14): several server processes against one PostgreSQL and one
Redis (or one Redis Cluster), each a real process on loopback, started and stopped here.

The hosts get an empty database of their own and migrate it together when they start; they
get a Redis database of their own too (a fresh ledger hands out ids from 1 again, and the
suite's Redis already holds throttles and locks under such ids).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from ops import demo as seed
from ops.embedded import EmbeddedRedisCluster
from server.db import seeding
from server.db.invariants import check_ledger
from tests.conftest import Services, _with_database
from tests.e2e.conftest import flushed_redis_database
from tests.scale.hosts import (
    CAMPAIGN_ID,
    Host,
    ServerConfig,
    error_code,
    start_hosts,
    stop_hosts,
    wait_ready,
)

DISTRICT = "dongchangfu"


@pytest.fixture(scope="module")
async def empty_database_url(test_services: Services) -> AsyncIterator[str]:
    """A database with nothing in it: the hosts migrate it when they start."""
    name = f"voucher_hosts_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(test_services.admin_database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(test_services.admin_database_url, name)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="module")
async def hosts_redis_url(test_services: Services) -> str:
    return await flushed_redis_database(test_services.redis_url, 12)


@dataclass
class Citizen:
    id: int
    subject: uuid.UUID


@dataclass
class Till:
    terminal_id: int
    merchant_id: int
    headers: dict[str, str]


class Ledger:
    """The hosts' shared ledger, seeded directly (server/db/seeding.py) and checked."""

    def __init__(self, pool: asyncpg.Pool, config: ServerConfig) -> None:
        self.pool = pool
        self.config = config

    async def citizen_with_vouchers(self, count: int) -> Citizen:
        """A citizen who claimed ``count`` vouchers of 100 元 today (rules A3, V1)."""
        now = datetime.now(UTC)
        subject = uuid.uuid4()
        price_fen = count * 10_000_000  # at 10 bp: count x 100 元 (rule A3)
        async with self.pool.acquire() as conn:
            await seeding.districts(conn, {DISTRICT: DISTRICT})
            (citizen_id,) = await seeding.citizens(
                conn,
                [seeding.CitizenRow(_random_hash(), "3715**********1234", subject=subject)],
            )
            (certificate_id,) = await seeding.certificates(
                conn,
                [
                    seeding.CertificateRow(
                        f"hosts-{secrets.token_hex(6)}", DISTRICT, date.today(), price_fen
                    )
                ],
            )
            await seeding.claims(
                conn,
                [
                    seeding.ClaimRow(
                        campaign_id=CAMPAIGN_ID,
                        certificate_id=certificate_id,
                        citizen_id=citizen_id,
                        base_fen=price_fen,
                        rate_bp=10,
                        voucher_count=count,
                        face_value_fen=10_000,
                        claimed_at=now,
                        expires_at=now + timedelta(days=30),
                    )
                ],
            )
        return Citizen(citizen_id, subject)

    async def till(self, http: aiohttp.ClientSession, host: Host) -> Till:
        """A merchant's terminal, signed in at ``host`` (its token is good at every host)."""
        async with self.pool.acquire() as conn:
            await seeding.districts(conn, {DISTRICT: DISTRICT})
            cred = await seed.merchant_with_terminal(
                conn, name=f"商户-{secrets.token_hex(4)}", district=DISTRICT
            )
        async with http.post(
            f"{host.url}/v1/auth/terminal",
            json={"terminal_id": cred.terminal_id, "secret": cred.secret},
        ) as r:
            assert r.status == 200, await r.text()
            token = (await r.json())["access_token"]
        return Till(cred.terminal_id, cred.merchant_id, {"Authorization": f"Bearer {token}"})

    async def vouchers_of(self, citizen: Citizen) -> dict[str, int]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT status, count(*) AS n FROM vouchers WHERE citizen_id = $1 GROUP BY 1",
                citizen.id,
            )
        return {r["status"]: int(r["n"]) for r in rows}

    async def redemptions_of(self, citizen: Citizen) -> int:
        async with self.pool.acquire() as conn:
            n = await conn.fetchval(
                "SELECT count(*) FROM redemptions WHERE citizen_id = $1", citizen.id
            )
        return int(n)

    async def violations(self) -> list[Any]:
        async with self.pool.acquire() as conn:
            return list(await check_ledger(conn))


def _random_hash() -> bytes:
    return hashlib.sha256(secrets.token_bytes(16)).digest()


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


async def redeem(
    http: aiohttp.ClientSession,
    host: Host,
    till: Till,
    token: str,
    *,
    key: str | None = None,
    receipt_no: str | None = None,
    bill_fen: int = 40_000,
    busy_retries: int = 0,
) -> Answer:
    """One voucher on a bill of ``bill_fen`` at ``host`` (rules U1-U7). With
    ``busy_retries``, a 409 ``idempotency_key_in_use`` ("busy, retry with the same key": a
    citizen's vouchers fought over past the ledger's retries) is sent again as a till does."""
    body = {
        "token": token,
        "bill_fen": bill_fen,
        "receipt_no": receipt_no or f"R{uuid.uuid4().hex[:12]}",
        "voucher_count": 1,
    }
    headers = {**till.headers, "Idempotency-Key": key or uuid.uuid4().hex}
    for attempt in range(busy_retries + 1):
        async with http.post(f"{host.url}/v1/redemptions", json=body, headers=headers) as r:
            answer = Answer(r.status, await r.json(), dict(r.headers))
        if attempt == busy_retries or error_code(answer.body) != "idempotency_key_in_use":
            break
        await asyncio.sleep(0.05 * (attempt + 1))
    return answer


async def gather_answers(*calls: Any) -> list[Answer]:
    return list(await asyncio.gather(*calls))


def scratch(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    return Path(tmp_path_factory.mktemp(name))


@dataclass
class Cluster:
    """Hosts serving one ledger, the ledger itself, and an HTTP client for the tills."""

    config: ServerConfig
    hosts: list[Host]
    ledger: Ledger
    http: aiohttp.ClientSession
    redis_cluster: EmbeddedRedisCluster | None = None

    def round_robin(self, n: int) -> Host:
        return self.hosts[n % len(self.hosts)]


@contextlib.asynccontextmanager
async def serving(
    config: ServerConfig, count: int, redis_cluster: EmbeddedRedisCluster | None = None
) -> AsyncIterator[Cluster]:
    """``count`` hosts started at once (they migrate the empty ledger together), ready."""
    hosts = start_hosts(config, count)
    try:
        await wait_ready(hosts)
        pool = await asyncpg.create_pool(config.database_url, min_size=1, max_size=4)
        assert pool is not None
        try:
            # one connection per request: a request is answered or refused before it is sent
            connector = aiohttp.TCPConnector(limit=0, force_close=True)
            async with aiohttp.ClientSession(connector=connector) as http:
                yield Cluster(config, hosts, Ledger(pool, config), http, redis_cluster)
        finally:
            await pool.close()
    finally:
        stop_hosts(hosts)


@pytest.fixture(scope="module", params=["redis", "redis-cluster"])
async def three_hosts(
    request: pytest.FixtureRequest,
    empty_database_url: str,
    hosts_redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Cluster]:
    """Three hosts against one Redis, then (issue 14) against a Redis Cluster."""
    folder = scratch(tmp_path_factory, "hosts")
    redis: EmbeddedRedisCluster | None = None
    if request.param == "redis-cluster":
        redis = request.getfixturevalue("redis_cluster")
        redis.flush()  # a fresh ledger's ids start at 1 again, as in hosts_redis_url
        config = ServerConfig(empty_database_url, redis.url, folder, redis_cluster=True)
    else:
        config = ServerConfig(empty_database_url, hosts_redis_url, folder)
    async with serving(config, 3, redis) as cluster:
        yield cluster
