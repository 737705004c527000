"""Issue 14: reports read a real streaming replica; the till reads the primary.

A primary and a hot standby made with ``pg_basebackup`` from the same PostgreSQL binaries
(``ops/embedded_replica.py``), each on a loopback port of its own. How the tests know where a
report came from: they pause the standby's WAL replay (``pg_wal_replay_pause``), so a bill
redeemed after that exists on the primary only; a report that leaves it out was read on the
replica, one that shows it was read on the primary.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from ops.embedded_replica import StreamingPair
from server.app import create_app
from server.db.replica import REPORTS_APPLICATION
from server.settings import Settings
from server.web import REPORTS
from tests.conftest import ROOT, Services
from tests.e2e.conftest import Clock, Till, World, flushed_redis_database

# every wait here is bounded: a replica that never catches up fails the test, never hangs it
WAIT_S = 20


@pytest.fixture(scope="module")
def pair() -> Iterator[StreamingPair]:
    base = Path(os.environ.get("VOUCHER_TEST_DATA_DIR", ROOT / ".data" / "test"))
    for left in base.glob("replica-*"):  # a killed run's pair: stopped and removed
        if not Path(f"/proc/{left.name.removeprefix('replica-')}").exists():
            StreamingPair(left).close()
    pair = StreamingPair(base / f"replica-{os.getpid()}")
    pair.start()
    try:
        yield pair
    finally:
        pair.close()


@pytest.fixture(scope="module")
async def primary(pair: StreamingPair) -> AsyncIterator[asyncpg.Pool]:
    admin = await asyncpg.connect(pair.url())
    try:
        await admin.execute("CREATE DATABASE vouchers")
    finally:
        await admin.close()
    pool = await asyncpg.create_pool(pair.url("vouchers"), min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
async def replica(pair: StreamingPair, primary: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A superuser's connection to the standby (to pause its replay); replay resumed after."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:  # the database exists on the standby once it has replayed its creation
            conn = await asyncpg.connect(pair.url("vouchers", replica=True))
            break
        except asyncpg.InvalidCatalogNameError:
            assert time.monotonic() < deadline, "the standby never replayed CREATE DATABASE"
            await asyncio.sleep(0.05)
    yield conn
    if not conn.is_closed():
        await conn.execute("SELECT pg_wal_replay_resume()")
        await conn.close()


async def replica_world(
    aiohttp_client: Any,
    settings: Settings,
    test_services: Services,
    pair: StreamingPair,
    primary: asyncpg.Pool,
    clock: Clock,
    **replica: Any,
) -> World:
    own = dataclasses.replace(
        settings,
        database_url=pair.url("vouchers"),
        database_replica_url=pair.url("vouchers", replica=True),
        redis_url=await flushed_redis_database(test_services.redis_url, 5),
        **replica,
    )
    client = await aiohttp_client(create_app(own, clock=clock))
    return World(client, own, primary)


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"{name} {labels} not in /metrics")


async def metrics(client: TestClient[Any, Any]) -> str:
    return await (await client.get("/metrics")).text()


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not await check():
        assert time.monotonic() < deadline, f"not within {WAIT_S} s: {what}"
        await asyncio.sleep(0.05)


async def bills(world: World, till: Till) -> set[str]:
    """The receipt numbers of the merchant's day list (GET /v1/merchant/day)."""
    r = await world.client.get("/v1/merchant/day", headers=till.headers)
    assert r.status == 200, await r.text()
    return {b["receipt_no"] for b in (await r.json())["redemptions"]}


async def redeemed(world: World, till: Till, person: Any) -> str:
    receipt = f"R{uuid.uuid4().hex[:10]}".upper()  # as rule U4 keeps it
    r = await world.redeem(till, await world.qr(person), receipt_no=receipt)
    assert r.status == 201, await r.text()
    return receipt


async def replica_serving(client: TestClient[Any, Any]) -> bool:
    return metric(await metrics(client), "voucher_replica_up") == 1


async def test_reports_read_the_replica_and_the_till_reads_the_primary(
    aiohttp_client: Any,
    settings: Settings,
    test_services: Services,
    pair: StreamingPair,
    primary: asyncpg.Pool,
    replica: asyncpg.Connection,
    clock: Clock,
) -> None:
    world = await replica_world(
        aiohttp_client, settings, test_services, pair, primary, clock, replica_max_lag_s=3600
    )
    person, till = await world.citizen_with_vouchers(), await world.till()
    first = await redeemed(world, till, person)
    await until(lambda: replica_serving(world.client), "the replica serves reports")
    await until(lambda: _contains(bills(world, till), first), "the first bill reaches the replica")

    await replica.execute("SELECT pg_wal_replay_pause()")  # the replica stops at this point
    key = uuid.uuid4().hex
    r = await world.redeem(till, await world.qr(person), receipt_no="R-AFTER-PAUSE", key=key)
    assert r.status == 201, await r.text()

    # the till's "what just happened" reads the primary: the new bill is there at once
    r = await world.client.get(
        "/v1/redemptions", params={"idempotency_key": key}, headers=till.headers
    )
    assert r.status == 200, await r.text()
    assert (await r.json())["receipt_no"] == "R-AFTER-PAUSE"
    # the day list is a report: read on the replica, which has not replayed the new bill
    assert await bills(world, till) == {first}
    text = await metrics(world.client)
    assert metric(text, "voucher_report_reads_total", source="replica") >= 2
    assert metric(text, "voucher_replica_lag_bytes") >= 0
    # and it was this server's reports connection that asked the standby
    names = await replica.fetch(
        "SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = 'vouchers'"
    )
    assert REPORTS_APPLICATION in {n["application_name"] for n in names}

    await replica.execute("SELECT pg_wal_replay_resume()")
    await until(lambda: _contains(bills(world, till), "R-AFTER-PAUSE"), "the replica catches up")


async def test_a_replica_past_the_lag_bound_is_not_read_and_the_lag_is_in_metrics(
    aiohttp_client: Any,
    settings: Settings,
    test_services: Services,
    pair: StreamingPair,
    primary: asyncpg.Pool,
    replica: asyncpg.Connection,
    clock: Clock,
) -> None:
    world = await replica_world(
        aiohttp_client,
        settings,
        test_services,
        pair,
        primary,
        clock,
        replica_max_lag_s=1.0,
        replica_poll_s=0.2,
    )
    person, till = await world.citizen_with_vouchers(), await world.till()
    await until(lambda: replica_serving(world.client), "the replica serves reports")
    await until(lambda: _lag_is(world.client, lambda s, b: s == 0 and b == 0), "no lag when idle")

    await replica.execute("SELECT pg_wal_replay_pause()")
    late = await redeemed(world, till, person)
    await until(
        lambda: _lag_is(world.client, lambda s, b: s > 1.0 and b > 0),
        "the lag passes its bound in seconds and shows in bytes",
    )
    assert not await replica_serving(world.client)
    before = metric(await metrics(world.client), "voucher_report_reads_total", source="primary")
    assert late in await bills(world, till)  # read on the primary: the bound holds
    after = metric(await metrics(world.client), "voucher_report_reads_total", source="primary")
    assert after == before + 1

    await replica.execute("SELECT pg_wal_replay_resume()")
    await until(lambda: replica_serving(world.client), "the replica caught up serves again")
    await until(lambda: _lag_is(world.client, lambda s, b: s < 1.0), "the lag back under 1 s")


async def test_a_stopped_replica_falls_back_to_the_primary_per_query(
    aiohttp_client: Any,
    settings: Settings,
    test_services: Services,
    pair: StreamingPair,
    primary: asyncpg.Pool,
    clock: Clock,
) -> None:
    # polled once a minute: what the first read after the stop meets is the stopped replica
    world = await replica_world(
        aiohttp_client, settings, test_services, pair, primary, clock, replica_poll_s=60
    )
    reports = world.client.app[REPORTS]
    person, till = await world.citizen_with_vouchers(), await world.till()
    receipt = await redeemed(world, till, person)
    await until(lambda: _contains(bills(world, till), receipt), "the bill on the replica")
    assert reports.serving

    pair.stop_replica()
    try:
        started = time.monotonic()
        assert receipt in await bills(world, till)  # the replica failed; the primary answered
        elapsed = time.monotonic() - started
        text = await metrics(world.client)
        assert metric(text, "voucher_report_reads_total", source="fallback") == 1
        assert metric(text, "voucher_replica_up") == 0
        # at once, not after a connect or command timeout (60 s, 30 s)
        assert elapsed < 5, elapsed
        # the next reads go straight to the primary: no second fallback
        assert receipt in await bills(world, till)
        text = await metrics(world.client)
        assert metric(text, "voucher_report_reads_total", source="fallback") == 1
        assert (await reports.poll()).up is False  # the poll agrees: still down
    finally:
        pair.start_replica()
    assert (await reports.poll()).up  # back: reports read it again
    served = metric(await metrics(world.client), "voucher_report_reads_total", source="replica")
    assert receipt in await bills(world, till)
    text = await metrics(world.client)
    assert metric(text, "voucher_report_reads_total", source="replica") == served + 1


async def _contains(found: Awaitable[set[str]], receipt: str) -> bool:
    return receipt in await found


async def _lag_is(client: TestClient[Any, Any], check: Callable[[float, float], bool]) -> bool:
    text = await metrics(client)
    return check(
        metric(text, "voucher_replica_lag_seconds"), metric(text, "voucher_replica_lag_bytes")
    )
