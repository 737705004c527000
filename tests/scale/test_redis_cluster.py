"""Issue 14, Redis Cluster: a master killed under load. Citizens whose slots live on the
other masters carry on with Redis's guard; those on the dead master's slots are redeemed
under the ledger's fence alone (correct, slower: server/breaker.py skips that master);
nothing is redeemed twice (rule U7)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
import redis

from server import redis_keys
from tests.conftest import new_redis_cluster
from tests.e2e.test_redis_breaker import metric
from tests.scale.conftest import (
    Answer,
    Citizen,
    Cluster,
    Till,
    gather_answers,
    redeem,
    scratch,
    serving,
)
from tests.scale.hosts import ServerConfig, error_code

VICTIM = 2  # the master killed (not the one the hosts were given: they found it themselves)


@pytest.fixture
async def doomed(
    empty_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    """Two hosts against a Redis Cluster of their own, which the test damages."""
    folder = scratch(tmp_path_factory, "doomed")
    redis_cluster = new_redis_cluster(folder / "redis")
    try:
        config = ServerConfig(empty_database_url, redis_cluster.url, folder, redis_cluster=True)
        async with serving(config, 2, redis_cluster) as cluster:
            yield cluster
    finally:
        redis_cluster.stop()


async def _citizens(c: Cluster, on_victim: bool, count: int, vouchers: int) -> list[Citizen]:
    """``count`` citizens whose slot is (or is not) on the victim master."""
    assert c.redis_cluster is not None
    found: list[Citizen] = []
    while len(found) < count:  # the guard's keys are the citizen's row id's (rule U5)
        person = await c.ledger.citizen_with_vouchers(vouchers)
        master = c.redis_cluster.master_of(redis_keys.citizen_lock(str(person.id)))
        if (master == VICTIM) == on_victim:
            found.append(person)
    return found


def _used_marks(c: Cluster, person: Citizen) -> int:
    """QR token ids Redis holds as used for the citizen (set after each redemption)."""
    assert c.redis_cluster is not None
    key = redis_keys.used_token(str(person.id), "*")
    port = c.redis_cluster.ports[c.redis_cluster.master_of(key)]
    with redis.Redis(port=port, socket_timeout=5) as node:
        return sum(1 for _ in node.scan_iter(match=key, count=1000))


async def _all_marked(c: Cluster, people: list[Citizen], vouchers: int) -> None:
    """Each citizen's redemptions left their used marks in Redis (written just after the
    answer): Redis guarded every one of them."""
    deadline = time.monotonic() + 5
    while (marks := [_used_marks(c, p) for p in people]) != [vouchers] * len(people):
        assert time.monotonic() < deadline, marks
        await asyncio.sleep(0.05)


async def _redeem_all(
    c: Cluster, tills: list[Till], people: list[Citizen], per_citizen: int, vouchers: int
) -> list[Answer]:
    """``per_citizen`` bills of each citizen at once, round-robin over the hosts: exactly
    ``vouchers`` of each citizen's succeed, the rest are refused."""
    answers = await gather_answers(
        *(
            redeem(
                c.http,
                c.round_robin(n),
                tills[n % len(tills)],
                c.config.qr(p.id),
                busy_retries=5,
            )
            for p in people
            for n in range(per_citizen)
        )
    )
    odd = [a.body for a in answers if a.status not in (201, 422)]
    assert Counter(a.status for a in answers) == {
        201: vouchers * len(people),
        **({422: (per_citizen - vouchers) * len(people)} if per_citizen > vouchers else {}),
    }, odd
    return answers


async def _all_redeemed(c: Cluster, people: list[Citizen], vouchers: int) -> None:
    """Nothing redeemed twice, nothing lost (rule U7)."""
    for person in people:
        assert await c.ledger.vouchers_of(person) == {"redeemed": vouchers}
        assert await c.ledger.redemptions_of(person) == vouchers


async def test_a_master_killed_under_load_costs_only_its_own_citizens_redis(
    doomed: Cluster,
) -> None:
    c = doomed
    assert c.redis_cluster is not None
    stranded = await _citizens(c, on_victim=True, count=4, vouchers=10)
    carrying_on = await _citizens(c, on_victim=False, count=4, vouchers=10)
    people = stranded + carrying_on
    tills = [await c.ledger.till(c.http, c.round_robin(n)) for n in range(6)]
    await _redeem_all(c, tills, people, per_citizen=3, vouchers=3)

    # more bills than vouchers, all at once; the master dies while they are under way
    during = asyncio.ensure_future(_redeem_all(c, tills, people, per_citizen=20, vouchers=7))
    await asyncio.sleep(0.05)
    c.redis_cluster.kill(VICTIM)
    refused = [a for a in await during if a.status != 201]
    assert {error_code(a.body) for a in refused} == {"not_enough_vouchers"}
    await _all_redeemed(c, people, 10)
    await _all_marked(c, carrying_on, 10)

    # with the master gone: its citizens are fenced by the ledger alone, the others by Redis
    stranded = await _citizens(c, on_victim=True, count=2, vouchers=4)
    carrying_on = await _citizens(c, on_victim=False, count=2, vouchers=4)
    await _redeem_all(c, tills, stranded + carrying_on, per_citizen=8, vouchers=4)
    await _all_redeemed(c, stranded + carrying_on, 4)
    await _all_marked(c, carrying_on, 4)
    assert await c.ledger.violations() == []
    for host in c.hosts:  # they saw a master fail, and stayed ready
        async with c.http.get(f"{host.url}/metrics") as r:
            assert metric(await r.text(), "voucher_redis_failures_total") > 0
        async with c.http.get(f"{host.url}/readyz") as r:
            assert r.status == 200
            assert (await r.json())["checks"]["redis"] == "ok: 1 of 3 masters down"
