"""Issue 14: the till honours the server's Retry-After (``client/till.py``). A request the
server shed (503 ``server_busy``, the gate of ``server/admission.py`` really full) goes again,
with the same idempotency key, no sooner than the server asked, and is redeemed exactly once
(rule U7); a server asking for longer than the till's cap is not retried early.

The gate is the app's own; the test takes its slots itself, as requests in flight would, and
gives them back when the till has been told to wait, so the outcome does not hang on timing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import pytest

from client.http import OutcomeUnknown, Unreachable
from client.till import RetryWait, TillClient
from server.admission import ADMISSION, Kind
from server.settings import Settings
from tests.e2e.conftest import Clock, World
from tests.e2e.test_shedding import bills_with, narrow_world, shed_count


async def shed_total(world: World) -> float:
    text = await (await world.client.get("/metrics")).text()
    return sum(
        float(x.split()[-1]) for x in text.splitlines() if x.startswith("voucher_shed_total{")
    )


async def test_a_shed_redemption_waits_as_asked_then_is_redeemed_exactly_once(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool
) -> None:
    world = await narrow_world(aiohttp_client, settings, clock, db_pool)
    person, till = await world.citizen_with_vouchers(), await world.till()
    token, receipt, key = (
        await world.qr(person),
        f"R-RA-{uuid.uuid4().hex[:8].upper()}",
        uuid.uuid4().hex,
    )
    gate = world.client.app[ADMISSION].gate
    waits: list[tuple[float, RetryWait]] = []

    def heard(wait: RetryWait) -> None:
        waits.append((time.monotonic(), wait))
        for _ in range(2):  # the load passes as the till is told to wait
            gate.leave(gate.clock())

    client = TillClient(
        str(world.client.make_url("")), till.terminal_id, till.secret, on_wait=heard
    )
    try:
        await client.sign_in()  # before the gate is full: only the redemption is shed
        for _ in range(2):
            assert await gate.enter(Kind.TILL_WRITE)
        started = time.monotonic()
        r = await client.redeem(token, 40_000, receipt, 1, key=key)
        done = time.monotonic()
    finally:
        await client.close()
    assert [(w.code, w.status, w.path) for _, w in waits] == [
        ("server_busy", 503, "/v1/redemptions")
    ]
    told_at, wait = waits[0]
    assert 1.0 <= wait.seconds <= 1.1  # Retry-After: 1, and at most 10 % jitter on top
    assert done - told_at >= 1.0  # never sooner than the server asked
    assert done - started >= 1.0
    assert r.voucher_count == 1 and not r.replayed and not r.recovered
    assert await bills_with(db_pool, receipt) == 1  # redeemed exactly once
    assert (
        await db_pool.fetchval("SELECT count(*) FROM redemptions WHERE idempotency_key = $1", key)
        == 1
    )
    assert await shed_count(world, "till_write") == 1  # one refusal, one retry


async def test_a_server_asking_longer_than_the_cap_is_not_retried_sooner(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool
) -> None:
    world = await narrow_world(aiohttp_client, settings, clock, db_pool)
    person, till = await world.citizen_with_vouchers(), await world.till()
    token, receipt = await world.qr(person), f"R-RA-{uuid.uuid4().hex[:8].upper()}"
    gate = world.client.app[ADMISSION].gate
    waits: list[RetryWait] = []
    client = TillClient(
        str(world.client.make_url("")),
        till.terminal_id,
        till.secret,
        retry_after_cap=0.5,  # the server asks for 1 s: more than this till will wait
        on_wait=waits.append,
    )
    try:
        await client.sign_in()
        for _ in range(2):
            assert await gate.enter(Kind.TILL_WRITE)
        started = time.monotonic()
        # the lookup by key (rule U7) is shed too: the outcome stays unknown, key kept
        with pytest.raises(OutcomeUnknown):
            await client.redeem(token, 40_000, receipt, 1)
        elapsed = time.monotonic() - started
    finally:
        await client.close()
        for _ in range(2):
            gate.leave(gate.clock())
    assert waits == []
    assert elapsed < 1.0  # gave up at once, rather than sending again sooner than asked
    assert await shed_count(world, "till_write") == 1  # sent once, not retried
    assert await bills_with(db_pool, receipt) == 0  # nothing decided


async def test_without_retries_a_shed_request_is_sent_once(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool
) -> None:
    # the load test's till (retries=0) counts what the server answered: no waits, no resend
    world = await narrow_world(aiohttp_client, settings, clock, db_pool)
    till = await world.till()
    gate = world.client.app[ADMISSION].gate
    waits: list[RetryWait] = []
    client = TillClient(
        str(world.client.make_url("")), till.terminal_id, till.secret, retries=0,
        on_wait=waits.append,
    )  # fmt: skip
    try:
        await client.sign_in()
        for _ in range(2):
            assert await gate.enter(Kind.TILL_WRITE)
        with pytest.raises(Unreachable) as caught:
            await asyncio.wait_for(client.day(), 5)
    finally:
        await client.close()
        for _ in range(2):
            gate.leave(gate.clock())
    assert "503" in str(caught.value)
    assert waits == []
    assert await shed_total(world) == 1  # whatever the route's kind: refused once
