"""Figures for docs/RELIABILITY.md (issue 9, items 1, 2 and 9); not part of the suite (the name
does not match test_*.py). Run explicitly, it prints its figures:

    PYTHONPATH=$PWD python -m pytest tests/e2e/measure_auth_edge.py -q -s -p no:cacheprovider

Client and server share one process and event loop (aiohttp's test server), as in the suite,
so the figures compare cases with each other rather than stand for a deployment.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

from ops import demo as seed
from tests.e2e.conftest import World


async def _timed(call: Any) -> tuple[float, int]:
    started = time.perf_counter()
    r = await call
    return (time.perf_counter() - started) * 1000, r.status


async def _accounts(world: World, n: int) -> list[str]:
    names = [f"m-{uuid.uuid4().hex[:10]}" for _ in range(n)]
    async with world.pool.acquire() as conn:
        for name in names:
            await seed.account(conn, username=name, password="the right password", role="auditor")
    return names


async def test_sign_in_time_does_not_tell_whether_a_username_exists(world: World) -> None:
    known = await _accounts(world, 30)
    unknown = [f"nobody-{uuid.uuid4().hex[:10]}" for _ in range(30)]
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for k, u in zip(known, unknown, strict=True):
        for kind, name in (("known", k), ("unknown", u)):
            ms, status = await _timed(
                world.client.post("/v1/auth/staff", json={"username": name, "password": "wrong"})
            )
            assert status == 401
            times[kind].append(ms)
    known_ms, unknown_ms = statistics.median(times["known"]), statistics.median(times["unknown"])
    print(f"\nstaff sign-in, wrong password, 30 each: median known {known_ms:.1f} ms,", end=" ")
    print(f"unknown {unknown_ms:.1f} ms")


async def _quotes_while(world: World, load: Any, seconds: float = 3.0) -> list[float]:
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token = await world.qr(person)
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    task = asyncio.ensure_future(load)
    while time.perf_counter() < stop and (not latencies or not task.done()):
        ms, status = await _timed(
            world.client.post(
                "/v1/quote", json={"token": token, "bill_fen": 40_000}, headers=till.headers
            )
        )
        assert status == 200
        latencies.append(ms)
    await task
    return latencies


async def test_till_quotes_under_ninety_staff_sign_ins(world: World) -> None:
    names = await _accounts(world, 90)
    idle = await _quotes_while(world, asyncio.sleep(1.0), seconds=1.0)

    async def storm() -> None:
        responses = await asyncio.gather(
            *(
                world.client.post(
                    "/v1/auth/staff", json={"username": n, "password": "the right password"}
                )
                for n in names
            )
        )
        assert {r.status for r in responses} == {200}

    started = time.perf_counter()
    busy = await _quotes_while(world, storm(), seconds=30.0)
    took = time.perf_counter() - started
    print(f"\ntill quote p50 idle {statistics.median(idle):.1f} ms; during 90 concurrent staff")
    print(f"sign-ins p50 {statistics.median(busy):.1f} ms, max {max(busy):.1f} ms")
    print(f"({len(busy)} quotes, the sign-ins took {took:.1f} s)")


async def test_till_quotes_under_eight_parallel_png_mints(world: World) -> None:
    people = [await world.citizen_with_vouchers() for _ in range(8)]
    idle = await _quotes_while(world, asyncio.sleep(1.0), seconds=1.0)

    async def mints() -> None:
        async def one(headers: dict[str, str]) -> None:
            for _ in range(10):
                r = await world.client.post("/v1/wallet/qr?format=png", headers=headers)
                assert r.status in (200, 429)
                await r.read()

        await asyncio.gather(*(one(p.headers) for p in people))

    busy = await _quotes_while(world, mints(), seconds=30.0)
    print(f"\ntill quote p50 idle {statistics.median(idle):.1f} ms; during 8 citizens x 10")
    print(f"PNG mints p50 {statistics.median(busy):.1f} ms, max {max(busy):.1f} ms")
