"""Issue 9, item 12: a PostgreSQL outage is answered 503 ``database_unavailable`` with
Retry-After, never 500, and retries with the same idempotency key stay consistent.

The app runs against a PostgreSQL of its own (embedded, in a folder of this test), which the
test really stops (``pg_ctl stop -m immediate``, as a crash) and starts again: no mock.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from client.till import RetryWait, TillClient
from ops.embedded import EmbeddedPostgres
from server.app import create_app
from server.db.invariants import check_ledger
from server.settings import Settings
from server.web import DATABASE_RETRY_AFTER_S
from tests.e2e.conftest import Clock, World, flushed_redis_database


@dataclass
class OwnPostgres:
    server: EmbeddedPostgres
    url: str


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    # a short folder: the server's Unix socket lives in it (sockaddr_un holds ~107 bytes)
    folder = Path(tempfile.mkdtemp(prefix="voucher-outage-"))
    server = EmbeddedPostgres(folder / "postgres")
    try:
        url = server.start()
        yield OwnPostgres(server, url)
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def outage_world(
    aiohttp_client: Any, settings: Settings, clock: Clock, own_postgres: OwnPostgres
) -> AsyncIterator[World]:
    redis_url = await flushed_redis_database(settings.redis_url, 14)
    own = replace(settings, database_url=own_postgres.url, redis_url=redis_url)
    client = await aiohttp_client(create_app(own, clock=clock))  # migrates the new database
    pool = await asyncpg.create_pool(own_postgres.url, min_size=1, max_size=4)
    assert pool is not None
    try:
        yield World(client, own, pool)
    finally:
        pool.terminate()


async def _assert_unavailable(r: Any) -> None:
    assert r.status == 503, await r.text()
    assert (await r.json())["error"]["code"] == "database_unavailable"
    assert int(r.headers["Retry-After"]) >= 1


async def test_with_postgres_down_every_route_says_503_and_a_retry_after_gets_one_answer(
    outage_world: World, own_postgres: OwnPostgres
) -> None:
    # item 12; rule U7: the same key gets one consistent answer across the outage
    world = outage_world
    person = await world.citizen_with_vouchers()
    till = await world.till()
    done_key, done_token = uuid.uuid4().hex, await world.qr(person)
    done = await world.redeem(till, done_token, key=done_key, receipt_no="R-done")
    assert done.status == 201
    first_answer = await done.json()
    pending_key, pending_token = uuid.uuid4().hex, await world.qr(person)
    staff = await world.staff("city_operator")

    own_postgres.server.stop(immediate=True)
    try:
        await _assert_unavailable(
            await world.redeem(till, pending_token, key=pending_key, receipt_no="R-pending")
        )
        # a retry of a redemption that was acknowledged before the outage: not a new answer
        await _assert_unavailable(
            await world.redeem(till, done_token, key=done_key, receipt_no="R-done")
        )
        await _assert_unavailable(await world.client.get("/v1/wallet", headers=person.headers))
        await _assert_unavailable(
            await world.client.get("/v1/merchants", headers=staff, params={"district": "x"})
        )
        # a till retrying its sign-in through the outage: no guess was checked, none counts
        # (more tries than the sign-in limit allows guesses)
        for _ in range(world.settings.sign_in_client_failures + 2):
            await _assert_unavailable(
                await world.client.post(
                    "/v1/auth/terminal",
                    json={"terminal_id": till.terminal_id, "secret": till.secret},
                )
            )
        await _assert_unavailable(
            await world.client.get(
                "/v1/redemptions", params={"idempotency_key": done_key}, headers=till.headers
            )
        )
    finally:
        own_postgres.server.start()

    signed_in = await world.client.post(
        "/v1/auth/terminal", json={"terminal_id": till.terminal_id, "secret": till.secret}
    )
    assert signed_in.status == 200, await signed_in.text()
    # the same key and body once the database is back: written once, then the same answer
    retried = await world.redeem(till, pending_token, key=pending_key, receipt_no="R-pending")
    assert retried.status == 201, await retried.text()
    again = await world.redeem(till, pending_token, key=pending_key, receipt_no="R-pending")
    assert again.status == 201
    assert (await again.json())["redemption_id"] == (await retried.json())["redemption_id"]
    replay = await world.redeem(till, done_token, key=done_key, receipt_no="R-done")
    assert (await replay.json())["redemption_id"] == first_answer["redemption_id"]
    async with world.pool.acquire() as conn:
        assert await check_ledger(conn) == []
        count = await conn.fetchval(
            "SELECT count(*) FROM redemptions WHERE terminal_id = $1", till.terminal_id
        )
    assert count == 2


async def test_the_till_waits_as_asked_through_an_outage_and_redeems_once(
    outage_world: World, own_postgres: OwnPostgres
) -> None:
    # issue 14 with item 12: the till's client honours the outage's Retry-After (seconds):
    # the same key goes again no sooner than asked, until the database is back; one bill
    world = outage_world
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token, key = await world.qr(person), uuid.uuid4().hex
    loop = asyncio.get_running_loop()
    waits: list[tuple[float, RetryWait]] = []
    restart: list[asyncio.Future[str]] = []

    def heard(wait: RetryWait) -> None:
        waits.append((time.monotonic(), wait))
        if not restart:  # the database comes back while the till waits
            restart.append(loop.run_in_executor(None, own_postgres.server.start))

    client = TillClient(
        str(world.client.make_url("")), till.terminal_id, till.secret, on_wait=heard
    )
    try:
        await client.sign_in()
        own_postgres.server.stop(immediate=True)
        try:
            r = await client.redeem(token, 40_000, "R-WAITED", 1, key=key)
            done = time.monotonic()
        finally:
            if restart:
                await restart[0]
            else:
                own_postgres.server.start()
    finally:
        await client.close()
    assert waits, "the till was never told to wait"
    assert {(w.code, w.status) for _, w in waits} == {("database_unavailable", 503)}
    asked = float(DATABASE_RETRY_AFTER_S)
    assert all(asked <= w.seconds <= asked * 1.1 for _, w in waits)  # asked, plus jitter
    told = [at for at, _ in waits] + [done]
    assert all(b - a >= asked for a, b in itertools.pairwise(told))  # never sooner
    assert r.voucher_count == 1 and not r.recovered
    async with world.pool.acquire() as conn:
        assert await check_ledger(conn) == []
        assert (
            await conn.fetchval("SELECT count(*) FROM redemptions WHERE idempotency_key = $1", key)
            == 1
        )
