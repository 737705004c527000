"""Issue 14: under overload the server refuses at once what it cannot serve in time, with a
clear code, and a refused request changes nothing: 503 ``server_busy`` with Retry-After for
the till, 503 ``waiting_room`` with a retry time for claims; health and metrics always answer.

The gates are the app's own (``server/admission.py``). Where a test needs a full gate it takes
its slots itself, as requests in flight would, so the outcome does not hang on timing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import aiohttp
import asyncpg

from server.admission import ADMISSION, Kind
from server.app import create_app
from server.settings import Settings
from tests.e2e.conftest import Clock, World

NARROW: dict[str, Any] = {
    "shed_max_in_flight": 2,
    "shed_initial_in_flight": 2,
    "shed_queue_wait_ms": 0,
    "shed_tarpit_s": 0,  # the tarpit has a test of its own (the last one here)
}


async def narrow_world(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool, **gate: Any
) -> World:
    own = dataclasses.replace(settings, **{**NARROW, **gate})
    return World(await aiohttp_client(create_app(own, clock=clock)), own, db_pool)


async def bills_with(db_pool: asyncpg.Pool, *receipts: str) -> int:
    return int(
        await db_pool.fetchval(
            "SELECT count(*) FROM redemptions WHERE receipt_no = ANY($1::text[])", list(receipts)
        )
    )


async def shed_count(world: World, kind: str) -> float:
    text = await (await world.client.get("/metrics")).text()
    line = next(x for x in text.splitlines() if x.startswith(f'voucher_shed_total{{kind="{kind}"'))
    return float(line.split()[-1])


async def test_a_full_till_gate_answers_server_busy_at_once_and_decides_nothing(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool
) -> None:
    world = await narrow_world(aiohttp_client, settings, clock, db_pool)
    person, till = await world.citizen_with_vouchers(), await world.till()
    token, key, receipt = await world.qr(person), uuid.uuid4().hex, "R-SHED-1"
    gate = world.client.app[ADMISSION].gate
    for _ in range(2):  # two redemptions in flight: the process is full
        assert await gate.enter(Kind.TILL_WRITE)
    r = await world.redeem(till, token, key=key, receipt_no=receipt)
    assert r.status == 503
    assert (await r.json())["error"]["code"] == "server_busy"
    assert r.headers["Retry-After"] == "1"
    assert await bills_with(db_pool, receipt) == 0  # nothing decided
    r = await world.client.post("/v1/quote", json={"token": token, "bill_fen": 40_000},
                                headers=till.headers)  # fmt: skip
    assert r.status == 503
    # health and metrics are never shed
    assert (await world.client.get("/healthz")).status == 200
    assert await shed_count(world, "till_write") == 1
    assert await shed_count(world, "till_read") == 1

    gate.leave(gate.clock())
    gate.leave(gate.clock())
    r = await world.redeem(till, token, key=key, receipt_no=receipt)  # the till's retry
    assert r.status == 201, await r.text()
    assert await bills_with(db_pool, receipt) == 1


async def test_a_claim_rush_sends_claimants_to_the_waiting_room_with_a_retry_time(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool
) -> None:
    world = await narrow_world(aiohttp_client, settings, clock, db_pool)
    person = await world.citizen()
    certificate = await world.certificate([person.id_number])
    gate = world.client.app[ADMISSION].gate
    assert await gate.enter(Kind.TILL_WRITE) and await gate.enter(Kind.TILL_WRITE)

    claim = {"certificate_no": certificate}
    r = await world.client.post("/v1/claims", json=claim, headers=person.headers)
    assert r.status == 503
    error = (await r.json())["error"]
    assert error["code"] == "waiting_room"
    assert error["details"]["retry_after_s"] in (1, 2)  # nothing refused yet: a second or two
    assert r.headers["Retry-After"] == str(error["details"]["retry_after_s"])
    claimed = await db_pool.fetchval(
        "SELECT count(*) FROM claims JOIN certificates c ON c.id = certificate_id"
        " WHERE c.cert_no = $1",
        certificate,
    )
    assert claimed == 0  # nothing decided

    # the wallet's claim form, a page: the same answer in words, both languages
    page = await world.client.post("/wallet/claim", data={"certificate_no": certificate})
    assert page.status == 503 and page.headers["Retry-After"]
    assert "排队" in await page.text() and "waiting room" in await page.text()

    gate.leave(gate.clock())
    gate.leave(gate.clock())
    r = await world.client.post("/v1/claims", json=claim, headers=person.headers)
    assert r.status == 201, await r.text()


async def test_a_burst_past_the_gate_is_served_or_refused_and_nothing_is_lost(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool
) -> None:
    world = await narrow_world(aiohttp_client, settings, clock, db_pool)
    person, till = await world.citizen_with_vouchers(), await world.till()
    tokens = [await world.qr(person) for _ in range(30)]
    keys = [uuid.uuid4().hex for _ in tokens]
    receipts = [f"R-BURST-{uuid.uuid4().hex[:8]}".upper() for _ in tokens]
    answers = await asyncio.gather(
        *(
            world.redeem(till, t, key=k, receipt_no=r)
            for t, k, r in zip(tokens, keys, receipts, strict=True)
        )
    )
    statuses = [a.status for a in answers]
    assert set(statuses) <= {201, 503}, statuses
    assert 503 in statuses  # 30 at once past a gate of 2
    refused = [i for i, s in enumerate(statuses) if s == 503]
    for i in refused:
        assert (await answers[i].json())["error"]["code"] == "server_busy"
    served = await bills_with(db_pool, *receipts)
    assert served == statuses.count(201)  # every 201 in the ledger, no 503 in it
    for i in refused:  # the tills retry the same keys once it is quiet: all served, once
        r = await world.redeem(till, tokens[i], key=keys[i], receipt_no=receipts[i])
        assert r.status == 201, await r.text()
    assert await bills_with(db_pool, *receipts) == 30


async def test_a_process_at_half_its_limit_refuses_quotes_and_claims_but_not_redemptions(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool
) -> None:
    # issue 14: a claim rush or a quote storm never takes the tills' share
    world = await narrow_world(
        aiohttp_client, settings, clock, db_pool, shed_max_in_flight=10, shed_initial_in_flight=10
    )
    person, till = await world.citizen_with_vouchers(), await world.till()
    claimant = await world.citizen()
    certificate = await world.certificate([claimant.id_number])
    token = await world.qr(person)
    gate = world.client.app[ADMISSION].gate
    for _ in range(5):  # 5 of 10 in flight
        assert await gate.enter(Kind.TILL_WRITE)
    quote = await world.client.post(
        "/v1/quote", json={"token": token, "bill_fen": 40_000}, headers=till.headers
    )
    claim = await world.client.post(
        "/v1/claims", json={"certificate_no": certificate}, headers=claimant.headers
    )
    assert (quote.status, claim.status) == (503, 503)
    assert (await claim.json())["error"]["code"] == "waiting_room"
    r = await world.redeem(till, token)  # a sale's end still gets in
    assert r.status == 201, await r.text()
    for _ in range(5):
        gate.leave(gate.clock())


async def test_a_till_asking_again_at_once_waits_its_retry_after_before_its_answer(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool
) -> None:
    # a client that ignores Retry-After costs the process one refusal per second, not one
    # per attempt (the gate's collapse it prevents: server/admission.py)
    world = await narrow_world(aiohttp_client, settings, clock, db_pool, shed_tarpit_s=1.0)
    person, till, other_till = (
        await world.citizen_with_vouchers(),
        await world.till(),
        await world.till(),
    )
    token = await world.qr(person)
    admission = world.client.app[ADMISSION]
    gate = admission.gate
    assert await gate.enter(Kind.TILL_WRITE) and await gate.enter(Kind.TILL_WRITE)
    quote = {"token": token, "bill_fen": 40_000}
    loop = asyncio.get_running_loop()

    first = await world.client.post("/v1/quote", json=quote, headers=till.headers)
    assert first.status == 503 and first.headers["Retry-After"] == "1"
    assert admission.tarpitted == 0  # told when to come back, at once

    started = loop.time()
    again = await world.client.post("/v1/quote", json=quote, headers=till.headers)
    waited = loop.time() - started
    assert again.status == 503  # still full once its second was up
    assert (await again.json())["error"]["code"] == "server_busy"
    assert admission.tarpitted == 1
    assert waited >= 0.9, waited  # held until the time it was told, less a scheduling margin
    assert await shed_count(world, "till_read") == 2  # a refusal each, nothing else done

    async def free_soon() -> None:
        await asyncio.sleep(0.3)
        gate.leave(gate.clock())  # quotes may fill half the gate: both slots free
        gate.leave(gate.clock())

    freeing = asyncio.ensure_future(free_soon())
    third = await world.client.post("/v1/quote", json=quote, headers=till.headers)
    await freeing
    assert third.status == 200, await third.text()  # a slot freed while it waited: served
    assert admission.tarpitted == 2
    assert await shed_count(world, "till_read") == 2

    # the till is who its token says, not its connection: on a new connection it is still
    # held to its time (behind a proxy connections are shared, and tills may reconnect) ...
    assert await gate.enter(Kind.TILL_WRITE) and await gate.enter(Kind.TILL_WRITE)
    r = await world.client.post("/v1/quote", json=quote, headers=till.headers)
    assert r.status == 503 and admission.tarpitted == 2  # its time was up: at once, told anew
    url = world.client.make_url("/v1/quote")
    async with aiohttp.ClientSession() as fresh:
        r = await fresh.post(url, json=quote, headers=till.headers)
        assert r.status == 503
    assert admission.tarpitted == 3
    # ... and another till, told nothing, is refused at once without waiting, though it asks
    # through the test client's keep-alive connection the first till used (as a proxy's
    # upstream connection carries many tills)
    r = await world.client.post("/v1/quote", json=quote, headers=other_till.headers)
    assert r.status == 503
    assert admission.tarpitted == 3
    gate.leave(gate.clock())
    gate.leave(gate.clock())
