"""Issue 9, item 11: a hung Redis (SIGSTOP) is skipped by a circuit breaker, so redemptions
go on at the database's pace, and it is asked again once it answers.

The app runs against a redis-server of its own (embedded, in a folder of this test), really
frozen with SIGSTOP and thawed with SIGCONT: the suite's Redis is not disturbed. The breaker's
clock is the test's, so the cool-down ends when the test says, not after some sleep.

Each test also has a database of its own (``fresh_database_url``): the whole ledger is checked
at the end (``check_ledger``, every rule), and the suite's shared database holds rows other
tests leave inconsistent on purpose (tests/integration forces ledgers past the constraints to
show the checks find them); here the ledger is this test's alone, whatever ran before.
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

import asyncpg
import pytest
import redis.asyncio as aioredis

from ops.embedded import EmbeddedRedis
from server.app import create_app
from server.breaker import Breaker, CircuitOpen, State
from server.db.invariants import check_ledger
from server.settings import Settings
from server.web import GUARD
from tests.e2e.conftest import Clock, Till, World
from tests.e2e.test_till import by_key, code_of_nobody, key_at_work


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
async def own_pool(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this test's own database, migrated and empty (see the module)."""
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=10)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
def own_settings(settings: Settings, fresh_database_url: str, own_redis: EmbeddedRedis) -> Settings:
    return replace(settings, database_url=fresh_database_url, redis_url=own_redis.url)


@pytest.fixture
async def breaker_world(
    aiohttp_client: Any, own_settings: Settings, clock: Clock, own_pool: asyncpg.Pool
) -> AsyncIterator[World]:
    client = await aiohttp_client(create_app(own_settings, clock=clock))
    yield World(client, own_settings, own_pool)


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


def state_of(breaker: Breaker) -> State:
    """``breaker.state`` read afresh: mypy keeps an earlier ``breaker.state is X`` narrowing
    across the calls that change it, and would call a later check impossible."""
    return breaker.state


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
    assert state_of(breaker) is State.CLOSED
    before = await scripts_run(own_redis.url)
    assert own_redis._process is not None
    pid = own_redis._process.pid

    os.kill(pid, signal.SIGSTOP)
    try:
        statuses = [(await world.redeem(till, await world.qr(person))).status for _ in range(12)]
        assert statuses == [201] * 12  # every bill still redeemed, by the database alone
        assert state_of(breaker) is State.OPEN
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
    assert state_of(breaker) is State.OPEN
    manual.now += world.settings.redis_breaker_cool_down_s + 0.1
    assert (await world.redeem(till, await world.qr(person))).status == 201  # the probe
    assert state_of(breaker) is State.CLOSED
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
    assert state_of(breaker) is State.OPEN
    with pytest.raises(CircuitOpen):
        await breaker.run(ok, weight=3)
    assert skips == [3]
    manual.now += 5
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # the others wait for its answer
    breaker.failed()
    assert state_of(breaker) is State.OPEN  # a failed probe opens it again at once
    manual.now += 5
    assert await breaker.run(ok) == "pong"
    assert state_of(breaker) is State.CLOSED
    assert states == [0, 2, 1, 2, 1, 0]


async def test_a_key_still_in_flight_is_told_apart_once_redis_is_back(breaker_world: World) -> None:
    # item 11 with rule U7: the breaker does not change what a healthy Redis says
    world = breaker_world
    till = await world.till()
    key, code = uuid.uuid4().hex, code_of_nobody(world)
    async with key_at_work(world, till.terminal_id, key, code):
        r = await world.client.get("/v1/redemptions", **by_key(till, key, code))
        assert r.status == 409


def batched_bills(text: str) -> float:
    """Bills that went through the batched write (server/app.py ``_write_redemptions``)."""
    return metric(text, r'voucher_batch_size_sum\{kind="redeem_write"\}')


async def test_with_redis_hung_bills_keep_the_batched_write_under_a_lock_of_this_process(
    breaker_world: World, own_redis: EmbeddedRedis
) -> None:
    # item 11: with Redis skipped, a bill no longer goes the unbatched row-lock path (4x the
    # cost, 0.26x the throughput); one citizen's bills wait for each other in this process
    # (server/guard.py LocalLocks) and then take the batched write, as under Redis's lock.
    # On the code before, redeem_write carried none of these bills.
    world = breaker_world
    guard = world.client.app[GUARD]
    person = await world.citizen_with_vouchers()  # 48 vouchers
    till = await world.till()
    assert own_redis._process is not None
    pid = own_redis._process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        # the breaker opens on the first bills' timeouts; those bills too are redeemed
        for _ in range(4):
            assert (await world.redeem(till, await world.qr(person))).status == 201
        assert guard.breaker.state is State.OPEN
        before = batched_bills(await (await world.client.get("/metrics")).text())
        tokens = [await world.qr(person) for _ in range(10)]
        burst = await asyncio.gather(*(world.redeem(till, t, count=2) for t in tokens))
        bodies = [await r.json() for r in burst]
        assert [r.status for r in burst] == [201] * 10, bodies
        after = batched_bills(await (await world.client.get("/metrics")).text())
    finally:
        os.kill(pid, signal.SIGCONT)
    assert after - before == 10  # every bill of the burst in a batched statement
    spent = [v for body in bodies for v in body["voucher_ids"]]
    assert len(spent) == len(set(spent)) == 20
    assert len(guard.local) == 0  # the per-citizen locks are gone once nobody holds them
    async with world.pool.acquire() as conn:
        assert await check_ledger(conn) == []


async def redeem_until_answered(world: World, till: Till, token: str) -> tuple[int, Any]:
    """One bill, retried with the same key and body while the ledger says "busy" (409
    idempotency_key_in_use), as a till does; its final status and body."""
    key = uuid.uuid4().hex
    receipt = f"R{uuid.uuid4().hex[:10]}"
    for _ in range(20):
        r = await world.redeem(till, token, key=key, receipt_no=receipt)
        body = await r.json()
        if r.status != 409 or body["error"]["code"] != "idempotency_key_in_use":
            return r.status, body
        await asyncio.sleep(0.01)
    raise AssertionError("still busy after 20 tries")


async def test_two_server_processes_with_redis_stopped_redeem_exactly_the_vouchers_held(
    aiohttp_client: Any,
    own_settings: Settings,
    clock: Clock,
    own_pool: asyncpg.Pool,
    own_redis: EmbeddedRedis,
) -> None:
    # item 11, rule U7: two apps on one database (two processes' worth of in-process citizen
    # locks), Redis really stopped: six citizens' bills race at both at once. Batched writes
    # of the two apps collide on shared citizens (the statement aborts, the bills go alone),
    # a deadlock between them is decided again, never a 500; exactly the vouchers held are
    # redeemed, each once.
    own = own_settings
    own_redis.stop()
    apps = [World(await aiohttp_client(create_app(own, clock=clock)), own, own_pool) for _ in "ab"]
    people = [await apps[0].citizen_with_vouchers() for _ in range(6)]  # 48 vouchers each
    tills = [await world.till() for world in apps for _ in range(3)]
    held = {}
    for person in people:
        wallet = await (await apps[0].client.get("/v1/wallet", headers=person.headers)).json()
        held[person.id_number] = {v["id"] for v in wallet["vouchers"] if v["state"] == "available"}
    assert all(len(ids) == 48 for ids in held.values())
    # 60 bills of one voucher per citizen (12 more than held), spread over both apps' tills
    jobs = []
    for person in people:
        for n in range(60):
            world = apps[n % 2]
            till = tills[(n % 2) * 3 + n % 3]
            jobs.append((person, world, till, await world.qr(person)))
    answers = await asyncio.gather(
        *(redeem_until_answered(world, till, token) for _, world, till, token in jobs)
    )
    statuses = [status for status, _ in answers]
    assert not [a for a in answers if a[0] >= 500], answers
    assert statuses.count(201) == 6 * 48
    refused = {body["error"]["code"] for status, body in answers if status != 201}
    assert refused == {"not_enough_vouchers"}
    for person in people:
        spent = [
            v
            for (owner, *_), (status, body) in zip(jobs, answers, strict=True)
            if owner is person and status == 201
            for v in body["voucher_ids"]
        ]
        assert sorted(spent) == sorted(held[person.id_number])  # each held voucher, once
    for world in apps:
        assert world.client.app[GUARD].breaker.state is State.OPEN
        assert len(world.client.app[GUARD].local) == 0
    async with own_pool.acquire() as conn:
        assert await check_ledger(conn) == []
