"""Issue 14: a host stopped with SIGTERM under load drains what it has in flight before its
pools close. No request is cut off: each gets an HTTP answer, or its connection is refused
before anything was sent (the host no longer listens); and no redemption is lost: every bill
answered 201 is in the ledger, and the ledger holds no bill nobody was told of."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from tests.scale.conftest import Citizen, Cluster, Till, scratch, serving
from tests.scale.hosts import Host, ServerConfig, error_code

WORKERS = 48
CITIZENS = 24


@dataclass
class Sent:
    host: int
    started: float
    ended: float
    status: int | None  # None: refused before sending
    redemption_id: int | None
    code: str | None = None  # a refusal's error code
    cut_off: str = ""  # any other failure: the request was sent, no answer came


@pytest.fixture
async def two_hosts(
    empty_database_url: str, hosts_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    config = ServerConfig(empty_database_url, hosts_redis_url, scratch(tmp_path_factory, "sigterm"))
    async with serving(config, 2) as cluster:
        yield cluster


async def _redeem_once(
    c: Cluster, n: int, host: Host, till: Till, person: Citizen, log: list[Sent]
) -> None:
    started = time.monotonic()
    try:
        async with c.http.post(
            f"{host.url}/v1/redemptions",
            json={
                "token": c.config.qr(person.id),
                "bill_fen": 40_000,
                "receipt_no": f"R{uuid.uuid4().hex[:12]}",
                "voucher_count": 1,
            },
            headers={**till.headers, "Idempotency-Key": uuid.uuid4().hex},
        ) as r:
            body = await r.json()
            status: int | None = r.status
    except aiohttp.ClientConnectorError:
        status, body = None, {}  # connect() refused: nothing was sent
    except aiohttp.ClientError as exc:
        log.append(Sent(n, started, time.monotonic(), None, None, repr(exc)))
        return
    log.append(
        Sent(
            n,
            started,
            time.monotonic(),
            status,
            body.get("redemption_id") if status else None,
            error_code(body),
        )
    )


async def test_sigterm_under_load_drains_in_flight_requests_and_loses_no_redemption(
    two_hosts: Cluster,
) -> None:
    c = two_hosts
    people = [await c.ledger.citizen_with_vouchers(100) for _ in range(CITIZENS)]
    tills = [await c.ledger.till(c.http, c.hosts[n % 2]) for n in range(8)]
    log: list[Sent] = []
    stop_at = time.monotonic() + 60  # set again once the host is stopped

    async def worker(w: int) -> None:
        n = w
        while time.monotonic() < stop_at:
            k = n % 2
            await _redeem_once(c, k, c.hosts[k], tills[n % 8], people[n % CITIZENS], log)
            n += 1

    workers = [asyncio.create_task(worker(w)) for w in range(WORKERS)]
    await asyncio.sleep(1.5)
    signalled = time.monotonic()
    c.hosts[0].terminate()
    exit_code = await asyncio.to_thread(c.hosts[0].wait, 30)
    stopped = time.monotonic()
    stop_at = stopped + 0.5  # load goes on against both addresses for a while
    await asyncio.gather(*workers)

    assert exit_code == 0, c.hosts[0].log_tail()
    assert [s for s in log if s.cut_off] == []
    # nothing but HTTP answers (a bill, "busy, retry with the same key", a citizen's vouchers
    # all spent) and refused connections
    at_first = [s for s in log if s.host == 0]
    refusals = {s.code for s in log if s.status and s.status != 201}
    assert refusals <= {"idempotency_key_in_use", "not_enough_vouchers"}
    assert Counter(s.status for s in at_first).keys() <= {201, 409, 422, None}
    assert all(s.status for s in log if s.host == 1)  # the other host answered throughout
    # requests the stopped host had in flight when it was told to stop were answered
    drained = [s for s in at_first if s.status and s.started < signalled < s.ended]
    assert drained, "no request was in flight at the signal: the test proves nothing"
    # after it exited, its address refuses connections (asked once more here: on a loaded
    # machine the workers' last half second may not have reached it) and the other host
    # served on
    after: list[Sent] = []
    await _redeem_once(c, 0, c.hosts[0], tills[0], people[0], after)
    assert [(s.status, s.cut_off) for s in after] == [(None, "")]
    # ... and the other host still redeems: asked here with a citizen of her own, since a fast
    # server may have spent every voucher of the load's citizens by now (then only 422s came)
    fresh = await c.ledger.citizen_with_vouchers(1)
    served: list[Sent] = []
    await _redeem_once(c, 1, c.hosts[1], tills[1], fresh, served)
    assert [s.status for s in served] == [201], served

    answered = sorted(s.redemption_id for s in log if s.status == 201 and s.redemption_id)
    async with c.ledger.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id FROM redemptions WHERE citizen_id = ANY($1::bigint[]) ORDER BY id",
            [p.id for p in people],
        )
    assert [r["id"] for r in rows] == answered
    assert await c.ledger.violations() == []
