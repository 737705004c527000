"""Issue 14: the till's redemption, replay and idempotency guarantees, the throttles and the
guard's recovery from a forgotten script, with the app against a Redis Cluster of three
masters (VOUCHER_REDIS_CLUSTER). Each script must touch one slot's keys, or the cluster
client refuses it: every test ends by checking that Redis never failed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import redis

from ops.embedded import EmbeddedRedisCluster
from server.app import create_app
from server.settings import Settings
from tests.e2e.conftest import Clock, World
from tests.e2e.test_hostile_auth import statuses
from tests.e2e.test_redis_breaker import metric
from tests.e2e.test_till import error_code, key_at_work


@pytest.fixture
async def cluster_world(
    aiohttp_client: Any,
    settings: Settings,
    clock: Clock,
    db_pool: Any,
    redis_cluster: EmbeddedRedisCluster,
) -> AsyncIterator[World]:
    redis_cluster.flush()
    own = replace(settings, redis_url=redis_cluster.url, redis_cluster=True)
    world = World(await aiohttp_client(create_app(own, clock=clock)), own, db_pool)
    yield world
    text = await (await world.client.get("/metrics")).text()
    assert metric(text, "voucher_redis_failures_total") == 0
    assert metric(text, "voucher_throttle_fail_open_total") == 0
    assert metric(text, "voucher_redis_skipped_total") == 0


async def test_a_redemption_its_replay_and_its_retry_on_a_redis_cluster(
    cluster_world: World,
) -> None:
    # rules U5, U7 with every key hash-tagged (server/redis_keys.py)
    world = cluster_world
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token, key = await world.qr(person), uuid.uuid4().hex
    first = await world.redeem(till, token, key=key, receipt_no="R-CLUSTER-1")
    assert first.status == 201
    again = await world.redeem(till, token, key=key, receipt_no="R-CLUSTER-1")
    assert again.status == 201
    assert again.headers["Idempotent-Replay"] == "true"
    assert await again.json() == await first.json()
    replay = await world.redeem(till, token)  # the same QR code, a new bill
    assert (replay.status, await error_code(replay)) == (409, "token_replayed")
    # one QR code at eight tills at once: one redemption
    token = await world.qr(person)
    tills = [await world.till() for _ in range(8)]
    burst = await asyncio.gather(*(world.redeem(t, token) for t in tills))
    assert statuses(burst) == {201: 1, 409: 7}


async def test_a_key_at_work_is_told_apart_on_a_redis_cluster(cluster_world: World) -> None:
    # rule U7: the key's mark lives in the terminal's slot, found by terminal and key alone
    world = cluster_world
    person = await world.citizen_with_vouchers()
    till = await world.till()
    key = uuid.uuid4().hex
    async with key_at_work(world, till.terminal_id, key):
        r = await world.redeem(till, await world.qr(person), key=key)
        assert await error_code(r) == "idempotency_key_in_use"
        r = await world.client.get(
            "/v1/redemptions", params={"idempotency_key": key}, headers=till.headers
        )
        assert (r.status, await error_code(r)) == (409, "idempotency_key_in_use")
    assert (await world.redeem(till, await world.qr(person), key=key)).status == 201


async def test_sign_in_guesses_are_counted_on_a_redis_cluster(cluster_world: World) -> None:
    # issue 9 item 1: the throttle's counters share their account's slot
    world = cluster_world
    till = await world.till()
    wrong = {"terminal_id": till.terminal_id, "secret": "not-the-secret"}
    responses = await asyncio.gather(
        *(world.client.post("/v1/auth/terminal", json=wrong) for _ in range(20))
    )
    assert statuses(responses) == {401: 10, 429: 10}


async def test_masters_that_forgot_the_scripts_are_taught_them_again(
    cluster_world: World, redis_cluster: EmbeddedRedisCluster
) -> None:
    # a restarted master knows no script: the guard sends the script's text, the lock holds
    world = cluster_world
    person = await world.citizen_with_vouchers()
    till = await world.till()
    assert (await world.redeem(till, await world.qr(person))).status == 201
    for port in redis_cluster.ports:
        with redis.Redis(port=port) as node:
            node.script_flush()
    tokens = [await world.qr(person) for _ in range(3)]
    assert [(await world.redeem(till, t)).status for t in tokens] == [201, 201, 201]
    key = uuid.uuid4().hex
    async with key_at_work(world, till.terminal_id, key):
        r = await world.redeem(till, await world.qr(person), key=key)
        assert await error_code(r) == "idempotency_key_in_use"
