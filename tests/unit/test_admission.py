"""Issue 14: a process's gate admits up to its limit, each kind of request up to its share,
lets one more wait briefly for a slot, refuses the rest at once, and adapts its limit to the
latency target."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest
from aiohttp.test_utils import make_mocked_request

from server.admission import Admission, Gate, Kind, client_of


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_full_gate_refuses_at_once_and_a_slot_goes_to_who_waits() -> None:
    gate = Gate(target_s=0.05, max_limit=2, min_limit=1, queue_wait_s=0)
    assert await gate.enter(Kind.TILL_WRITE) and await gate.enter(Kind.TILL_WRITE)
    assert not await gate.enter(Kind.TILL_WRITE)  # full, no queue: refused at once
    assert (gate.in_flight, gate.admitted, gate.refused[Kind.TILL_WRITE]) == (2, 2, 1)
    gate.leave(gate.clock())
    assert await gate.enter(Kind.TILL_WRITE)

    waiting = Gate(target_s=0.05, max_limit=1, min_limit=1, queue_wait_s=5)
    assert await waiting.enter(Kind.TILL_WRITE)
    second = asyncio.ensure_future(waiting.enter(Kind.TILL_WRITE))
    await asyncio.sleep(0.01)
    assert not second.done()  # waits for the slot
    waiting.leave(waiting.clock())
    assert await second  # handed the slot
    assert waiting.in_flight == 1


async def test_each_kind_fills_only_its_share_the_tills_sales_all_of_it() -> None:
    gate = Gate(target_s=0.05, max_limit=10, initial_limit=10, queue_wait_s=0)
    for _ in range(4):
        assert await gate.enter(Kind.TILL_WRITE)
    assert not await gate.enter(Kind.CLAIMS)  # claims and the rest: 40 %
    assert not await gate.enter(Kind.OTHER)
    assert await gate.enter(Kind.TILL_READ)  # quotes: half
    assert not await gate.enter(Kind.TILL_READ)
    for _ in range(5):  # a sale's end: all of it
        assert await gate.enter(Kind.TILL_WRITE)
    assert not await gate.enter(Kind.TILL_WRITE)
    assert gate.refused == {
        Kind.TILL_WRITE: 1,
        Kind.TILL_READ: 1,
        Kind.CLAIMS: 1,
        Kind.OTHER: 1,
    }


async def test_a_freed_slot_goes_to_a_waiting_request_whose_share_has_room() -> None:
    gate = Gate(target_s=0.05, max_limit=10, initial_limit=10, queue_wait_s=5)
    for _ in range(10):
        assert await gate.enter(Kind.TILL_WRITE)
    claim = asyncio.ensure_future(gate.enter(Kind.CLAIMS))  # waits first
    await asyncio.sleep(0)
    sale = asyncio.ensure_future(gate.enter(Kind.TILL_WRITE))
    await asyncio.sleep(0.01)
    gate.leave(gate.clock())  # 9 in flight: no room for a claim (4), room for a sale
    assert await sale and not claim.done()
    claim.cancel()


async def test_in_a_standing_overload_nobody_waits_for_a_slot() -> None:
    ticks = Ticks()
    gate = Gate(target_s=0.05, max_limit=1, min_limit=1, queue_wait_s=5, clock=ticks)
    assert await gate.enter(Kind.TILL_WRITE)
    gate.queue_max = 0  # a window that refused: the queue was full
    assert not await gate.enter(Kind.TILL_WRITE)
    gate.queue_max = 64
    ticks.now += 1
    gate.leave(ticks.now)  # the window ends
    assert await gate.enter(Kind.TILL_WRITE)
    started = asyncio.get_running_loop().time()
    assert not await gate.enter(Kind.TILL_WRITE)  # at once, though the queue has room
    assert asyncio.get_running_loop().time() - started < 1


async def test_a_wait_past_queue_wait_is_refused() -> None:
    gate = Gate(target_s=0.05, max_limit=2, min_limit=1, queue_wait_s=0.01)
    assert await gate.enter(Kind.CLAIMS) is True
    assert await gate.enter(Kind.TILL_WRITE) is True
    assert not await gate.enter(Kind.TILL_WRITE)
    assert gate.refused[Kind.TILL_WRITE] == 1 and gate.in_flight == 2


async def uncrowded(gate: Gate, ticks: Ticks, service_s: float, windows: int) -> None:
    """One request at a time, each taking ``service_s``: what the machine does unloaded."""
    for _ in range(windows):
        assert await gate.enter(Kind.TILL_WRITE)
        ticks.now += 0.2
        gate.leave(ticks.now - service_s)


async def crowded(gate: Gate, ticks: Ticks, service_s: float, seconds: float) -> None:
    """The gate kept full (each refusal says so), each request taking ``service_s``."""
    starts: deque[float] = deque()
    end = ticks.now + seconds
    while ticks.now < end:
        while await gate.enter(Kind.TILL_WRITE):
            starts.append(ticks.now)
        if starts:
            ticks.now = max(ticks.now, starts[0] + service_s)
            gate.leave(starts.popleft())
        else:
            ticks.now += 0.01
    while starts:
        gate.leave(starts.popleft())


async def test_the_limit_shrinks_while_slower_than_the_target_and_grows_back() -> None:
    ticks = Ticks()
    gate = Gate(target_s=0.010, max_limit=64, min_limit=2, initial_limit=20, clock=ticks)
    gate.queue_wait_s = 0
    await uncrowded(gate, ticks, 0.005, 20)  # 5 ms each when unloaded
    await crowded(gate, ticks, 0.2, 10)  # 200 ms each: over the 10 ms target
    assert gate.limit == 2  # down to the floor
    await crowded(gate, ticks, 0.001, 3)  # 1 ms each: within it
    assert gate.limit > 20  # a tenth more per window at the limit


async def test_slow_requests_with_room_to_spare_leave_the_limit_alone() -> None:
    ticks = Ticks()
    gate = Gate(target_s=0.010, max_limit=20, initial_limit=20, clock=ticks, queue_wait_s=0)
    await uncrowded(gate, ticks, 0.2, 30)  # slow, but not from crowding
    assert gate.limit == 20 and sum(gate.refused.values()) == 0


async def test_a_machine_slow_when_uncrowded_is_not_taken_for_an_overload() -> None:
    ticks = Ticks()
    gate = Gate(target_s=0.010, max_limit=20, initial_limit=10, clock=ticks, queue_wait_s=0)
    await uncrowded(gate, ticks, 0.030, 20)  # 30 ms each unloaded: this machine is slow today
    assert gate.baseline_s == pytest.approx(0.030)
    await crowded(gate, ticks, 0.05, 1)  # at the limit, 50 ms: over 10 ms, within 2 x 30 ms
    assert gate.limit > 10
    await crowded(gate, ticks, 0.5, 5)  # 500 ms: past twice the baseline, an overload
    assert gate.limit < 10


def test_a_waiting_claimant_is_told_when_to_come_back_spread_over_time() -> None:
    ticks = Ticks()
    gate = Gate(target_s=0.05, max_limit=4, clock=ticks)
    assert {gate.retry_after_s() for _ in range(50)} <= {1, 2}  # nothing seen yet
    for _ in range(6):  # windows of 10 served and 100 claims refused
        gate.refused[Kind.CLAIMS] += 100
        for _ in range(10):
            gate.in_flight += 1
            gate.leave(ticks.now)
        ticks.now += 0.2
    waits = {gate.retry_after_s() for _ in range(200)}
    # ten refused per one served: about ten seconds, spread over [10, 20)
    assert min(waits) >= 10 and max(waits) <= 20 and len(waits) > 3


def test_a_gate_needs_a_sound_limit_and_target() -> None:
    with pytest.raises(ValueError, match="gate"):
        Gate(target_s=0.05, max_limit=1, min_limit=2)
    with pytest.raises(ValueError, match="gate"):
        Gate(target_s=0, max_limit=4)


def test_a_connection_told_to_come_back_is_too_soon_until_then_at_most_the_tarpit() -> None:
    ticks = Ticks()
    admission = Admission(Gate(target_s=0.05, max_limit=8, clock=ticks), tarpit_s=1.0)
    till, claimant, other = object(), object(), object()
    admission.told(till, 1)
    admission.told(claimant, 30)  # a waiting room's half minute: held one second at most
    assert admission.too_soon(till) == admission.too_soon(claimant) == 1.0
    assert admission.too_soon(other) == 0.0  # never refused: never held
    ticks.now += 0.25
    assert admission.too_soon(till) == 0.75
    ticks.now += 1
    assert admission.too_soon(till) == 0.0  # it waited as told

    never = Admission(Gate(target_s=0.05, max_limit=8, clock=ticks), tarpit_s=0)
    never.told(till, 1)
    assert never.too_soon(till) == 0.0


def test_the_connections_told_are_forgotten_once_they_may_ask_again() -> None:
    ticks = Ticks()
    admission = Admission(Gate(target_s=0.05, max_limit=8, clock=ticks), tarpit_s=1.0)
    old = [object() for _ in range(1023)]
    for connection in old:
        admission.told(connection, 1)
    ticks.now += 2  # all of them may ask again
    late = object()
    admission.told(late, 1)  # the 1,024th: the map is swept
    assert len(admission._told) == 1 and admission.too_soon(late) == 1.0
    assert all(admission.too_soon(c) == 0.0 for c in old)


def test_a_client_is_its_token_else_its_session_else_its_connection() -> None:
    # behind a proxy one connection carries many tills: the tarpit holds a till by its token
    till = make_mocked_request("POST", "/v1/quote", headers={"Authorization": "Bearer t1"})
    assert client_of(till) == "Bearer t1"
    browser = make_mocked_request("POST", "/wallet/claim", headers={"Cookie": "vs=abc"})
    assert client_of(browser) == "vs=abc"
    anonymous = make_mocked_request("POST", "/v1/claims")
    assert client_of(anonymous) is anonymous.transport is not None
