"""Issue 9, item 11: a hung Redis (SIGSTOP) is skipped by a circuit breaker, so redemptions
go on at the database's pace, and it is asked again once it answers.

The app runs against a redis-server of its own (embedded, in a folder of this test), really
frozen with SIGSTOP and thawed with SIGCONT: the suite's Redis is not disturbed. The breaker's
clock is the test's, so the cool-down ends when the test says, not after some sleep.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from ops.embedded import EmbeddedRedis
from server.app import create_app
from server.breaker import Breaker, CircuitOpen, State
from server.db.invariants import check_ledger
from server.settings import Settings
from server.web import GUARD
from tests.e2e.conftest import Clock, World


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    folder = Path(tempfile.mkdtemp(prefix="voucher-brk-"))
    server = EmbeddedRedis(folder)
    server.start()
    try:
        yield server
    finally:
        pid = server._process.pid if server._process is not None else None
        if pid is not None:
            os.kill(pid, signal.SIGCONT)  # a stopped process ignores SIGTERM until it runs
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def breaker_world(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: Any, own_redis: EmbeddedRedis
) -> AsyncIterator[World]:
    own = replace(settings, redis_url=own_redis.url)
    client = await aiohttp_client(create_app(own, clock=clock))
    yield World(client, own, db_pool)


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match is not None, name
    return float(match[1])


async def scripts_run(redis_url: str) -> int:
    """How many guard scripts (EVALSHA) Redis has run: each redemption's begin and end."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.ping()  # one round trip first: what was queued before is processed now
        stats = await client.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
    finally:
        await client.aclose()


async def test_a_hung_redis_is_skipped_and_asked_again_once_it_answers(
    breaker_world: World, own_redis: EmbeddedRedis
) -> None:
    # item 11; rule U7: Redis only filters, PostgreSQL fences
    world = breaker_world
    breaker = world.client.app[GUARD].breaker
    manual = ManualClock()
    breaker.clock = manual
    person = await world.citizen_with_vouchers()  # 48 vouchers
    till = await world.till()
    assert (await world.redeem(till, await world.qr(person))).status == 201
    assert breaker.state is State.CLOSED
    before = await scripts_run(own_redis.url)
    assert own_redis._process is not None
    pid = own_redis._process.pid

    os.kill(pid, signal.SIGSTOP)
    try:
        statuses = [(await world.redeem(till, await world.qr(person))).status for _ in range(12)]
        assert statuses == [201] * 12  # every bill still redeemed, by the database alone
        assert breaker.state is State.OPEN
        # one QR code at eight tills at once while Redis is skipped: one redemption
        token = await world.qr(person)
        burst = await asyncio.gather(*(world.redeem(till, token) for _ in range(8)))
        assert sorted(r.status for r in burst).count(201) == 1
        metrics = await (await world.client.get("/metrics")).text()
        assert metric(metrics, "voucher_redis_breaker_state") == State.OPEN
        assert metric(metrics, "voucher_redis_skipped_total") >= 12 + 8 - 3
    finally:
        os.kill(pid, signal.SIGCONT)

    # Redis got no more than the calls that opened the breaker (20 redemptions were tried)
    sent_while_hung = await scripts_run(own_redis.url) - before
    assert sent_while_hung <= world.settings.redis_breaker_failures
    # still cooling down: skipped, even though Redis answers again
    assert (await world.redeem(till, await world.qr(person))).status == 201
    assert breaker.state is State.OPEN
    manual.now += world.settings.redis_breaker_cool_down_s + 0.1
    assert (await world.redeem(till, await world.qr(person))).status == 201  # the probe
    assert breaker.state is State.CLOSED
    metrics = await (await world.client.get("/metrics")).text()
    assert metric(metrics, "voucher_redis_breaker_state") == State.CLOSED
    # with Redis back, its single-use filter works again: a used QR code is refused there
    token = await world.qr(person)
    assert (await world.redeem(till, token)).status == 201
    replay = await world.redeem(till, token)
    assert replay.status == 409

    async with world.pool.acquire() as conn:
        assert await check_ledger(conn) == []
        redeemed = await conn.fetchval(
            "SELECT count(*) FROM redemptions WHERE terminal_id = $1", till.terminal_id
        )
    assert redeemed == 1 + 12 + 1 + 2 + 1


async def test_the_breaker_opens_after_repeated_failures_and_one_probe_closes_it() -> None:
    # item 11: closed -> open after N failures -> half-open probe -> closed; skips counted
    manual = ManualClock()
    states: list[float] = []
    skips: list[float] = []
    breaker = Breaker(
        failure_threshold=2,
        cool_down_s=5,
        clock=manual,
        on_state=states.append,
        on_skip=skips.append,
    )

    async def fail() -> None:
        raise ConnectionError("hung")

    async def ok() -> str:
        return "pong"

    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.run(fail)
    assert breaker.state is State.OPEN
    with pytest.raises(CircuitOpen):
        await breaker.run(ok, weight=3)
    assert skips == [3]
    manual.now += 5
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # the others wait for its answer
    breaker.failed()
    assert breaker.state is State.OPEN  # a failed probe opens it again at once
    manual.now += 5
    assert await breaker.run(ok) == "pong"
    assert breaker.state is State.CLOSED
    assert states == [0, 2, 1, 2, 1, 0]


async def test_a_key_still_in_flight_is_told_apart_once_redis_is_back(breaker_world: World) -> None:
    # item 11 with rule U7: the breaker does not change what a healthy Redis says
    world = breaker_world
    till = await world.till()
    key = uuid.uuid4().hex
    client = aioredis.Redis.from_url(world.settings.redis_url)
    try:
        await client.set(f"idem:{till.terminal_id}:{key}", "at-work", px=5000)
        r = await world.client.get(
            "/v1/redemptions", params={"idempotency_key": key}, headers=till.headers
        )
        assert r.status == 409
    finally:
        await client.aclose()
