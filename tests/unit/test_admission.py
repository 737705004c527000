"""Issue 14: a gate admits up to its limit, lets one more wait briefly for a slot, refuses the
rest at once, and adapts its limit to the latency target (AIMD)."""

from __future__ import annotations

import asyncio

import pytest

from server.admission import Gate, Kind


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_full_gate_refuses_at_once_and_a_slot_goes_to_who_waits() -> None:
    gate = Gate(Kind.TILL, target_s=0.05, max_limit=2, queue_wait_s=0)
    assert await gate.enter() and await gate.enter()
    assert not await gate.enter()  # full, no queue: refused at once
    assert (gate.in_flight, gate.admitted, gate.refused) == (2, 2, 1)
    gate.leave(gate.clock())
    assert await gate.enter()

    waiting = Gate(Kind.TILL, target_s=0.05, max_limit=1, queue_wait_s=5)
    assert await waiting.enter()
    second = asyncio.ensure_future(waiting.enter())
    await asyncio.sleep(0.01)
    assert not second.done()  # waits for the slot
    waiting.leave(waiting.clock())
    assert await second  # handed the slot: in flight stays 1
    assert waiting.in_flight == 1


async def test_a_wait_past_queue_wait_is_refused() -> None:
    gate = Gate(Kind.CLAIMS, target_s=0.05, max_limit=2, queue_wait_s=0.01)
    assert await gate.enter() and await gate.enter()
    assert not await gate.enter()
    assert gate.refused == 1 and gate.in_flight == 2


async def full_window(gate: Gate, ticks: Ticks, service_s: float) -> None:
    """Requests up to the limit (the refusal past it says the window was full), each taking
    ``service_s``, the window ending as they finish."""
    while await gate.enter():
        pass
    for _ in range(gate.in_flight):
        ticks.now += 0.05
        gate.leave(ticks.now - service_s)
    ticks.now += 0.1


async def test_the_limit_shrinks_while_slower_than_the_target_and_grows_back() -> None:
    ticks = Ticks()
    gate = Gate(Kind.TILL, target_s=0.010, max_limit=20, min_limit=2, clock=ticks, queue_wait_s=0)
    for _ in range(40):  # full windows of requests taking 200 ms: over the 10 ms target
        await full_window(gate, ticks, 0.2)
    assert gate.limit == 2  # down to the floor, a tenth at a time
    for _ in range(30):  # full windows of requests taking 1 ms: within the target
        await full_window(gate, ticks, 0.001)
    assert gate.limit > 10  # one more per full window


async def test_slow_requests_with_room_to_spare_leave_the_limit_alone() -> None:
    ticks = Ticks()
    gate = Gate(Kind.TILL, target_s=0.010, max_limit=20, clock=ticks, queue_wait_s=0)
    for _ in range(30):  # one request at a time, 200 ms each: slow, but not from crowding
        assert await gate.enter()
        started = ticks.now
        ticks.now += 0.2
        gate.leave(started)
    assert gate.limit == 20 and gate.refused == 0


def test_a_waiting_claimant_is_told_when_to_come_back_spread_over_time() -> None:
    ticks = Ticks()
    gate = Gate(Kind.CLAIMS, target_s=0.05, max_limit=4, clock=ticks)
    assert {gate.retry_after_s() for _ in range(50)} <= {1, 2}  # nothing seen yet
    for _ in range(6):  # windows of 10 served and 100 refused
        gate.refused += 100
        for _ in range(10):
            gate.in_flight += 1
            gate.leave(ticks.now)
        ticks.now += 0.2
    waits = {gate.retry_after_s() for _ in range(200)}
    # ten refused per one served: about ten seconds, spread over [10, 20)
    assert min(waits) >= 10 and max(waits) <= 20 and len(waits) > 3


def test_a_gate_needs_a_sound_limit_and_target() -> None:
    with pytest.raises(ValueError, match="gate"):
        Gate(Kind.OTHER, target_s=0.05, max_limit=1, min_limit=2)
    with pytest.raises(ValueError, match="gate"):
        Gate(Kind.OTHER, target_s=0, max_limit=4)
