"""Load shedding (issue 14): admit what can be served within the latency target, answer the
rest at once.

Each kind of request has a gate per process (the till's quotes, redemptions and refunds;
claims; everything else; health and metrics have none). A gate admits up to ``limit``
requests at a time. One more waits for a slot at most ``queue_wait_s`` (a short queue absorbs
bursts), else it is refused at once, having cost a dictionary lookup and a small answer:
503 ``server_busy`` with ``Retry-After`` for the till (its terminal retries the same
idempotency key: a refused request decided nothing), 503 ``waiting_room`` with a retry time
for claims (``details.retry_after_s``, spread so that refused claimants do not come back as
one wave).

The limit adapts, additive increase and multiplicative decrease (AIMD, as TCP and Netflix's
concurrency-limits do): every ``window_s`` in which the limit was reached, the gate looks at
how long the requests it let through took inside the server. Slower on average than its
target (``target_s``, or twice what they take when the gate is not crowded, whichever is
more): the limit shrinks by a tenth, down to ``min_limit``; within it: it grows by one.
So under overload the gate keeps as many requests in flight as the process serves within the
target, and refuses the others instead of letting every request slow down; once the
overload ends the limit grows back.

What a gate costs a request: two clock reads and a few integer operations (the edge
middleware, ``server/web.py``, runs after it, for admitted requests only).
"""

from __future__ import annotations

import asyncio
import collections
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from aiohttp import web

from server.web import error_from
from shared.errors import ServerBusy, VoucherError, WaitingRoom

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Kind(StrEnum):
    """The kinds of request, each with its gate (and the label of ``voucher_shed_total``)."""

    TILL_WRITE = "till_write"  # redemptions and refunds: a sale's end, after its quote
    TILL_READ = "till_read"  # quotes and lookups
    CLAIMS = "claims"
    OTHER = "other"


@dataclass
class Gate:
    """One kind of request in one process: at most ``limit`` in flight (see the module)."""

    kind: Kind
    # the latency the admitted requests should keep, on average, in the server; and at least
    # ``tolerance`` x what they take when not crowded (the baseline), so that a slower
    # machine does not read as an overload
    target_s: float
    max_limit: int
    min_limit: int = 1
    tolerance: float = 2.0
    queue_wait_s: float = 0.005
    queue_max: int = 64
    window_s: float = 0.1
    clock: Callable[[], float] = time.perf_counter
    limit: float = field(init=False)
    in_flight: int = field(default=0, init=False)
    admitted: int = field(default=0, init=False)
    refused: int = field(default=0, init=False)
    _waiting: collections.deque[asyncio.Future[None]] = field(
        default_factory=collections.deque, init=False
    )
    _window_end: float = field(default=0.0, init=False)
    _window_time: float = field(default=0.0, init=False)
    _window_done: int = field(default=0, init=False)
    _window_full: bool = field(default=False, init=False)  # someone waited or was refused
    _window_peak: int = field(default=0, init=False)  # the most in flight at once
    done: int = field(default=0, init=False)  # admitted requests finished
    baseline_s: float = field(default=0.0, init=False)  # mean time in the server, uncrowded
    _means: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=600), init=False
    )
    # at the end of the last windows, for a refused claimant's retry time: (done, refused)
    _recent: collections.deque[tuple[int, int]] = field(
        default_factory=lambda: collections.deque(maxlen=10), init=False
    )

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.max_limit or self.target_s <= 0:
            raise ValueError("a gate needs 1 <= min_limit <= max_limit and a latency target")
        self.limit = float(self.max_limit)

    async def enter(self) -> bool:
        """Admitted (True: call ``leave`` when done) or refused (False) now or after a short
        wait for a slot."""
        if self.in_flight < int(self.limit) and not self._waiting:
            self.in_flight += 1
            self.admitted += 1
            if self.in_flight > self._window_peak:
                self._window_peak = self.in_flight
            return True
        self._window_full = True
        if len(self._waiting) >= self.queue_max or self.queue_wait_s <= 0:
            self.refused += 1
            return False
        slot = asyncio.get_running_loop().create_future()
        self._waiting.append(slot)
        try:
            await asyncio.wait_for(asyncio.shield(slot), self.queue_wait_s)
        except TimeoutError:
            if slot.done() and not slot.cancelled():  # handed a slot as the wait ended
                self.admitted += 1
                return True
            slot.cancel()
            self.refused += 1
            return False
        self.admitted += 1
        return True

    def leave(self, started: float) -> None:
        """A request admitted at ``started`` (``clock()``) is done."""
        now = self.clock()
        self._window_time += now - started
        self._window_done += 1
        self.done += 1
        if now >= self._window_end:
            self._adapt(now)
        while self._waiting:  # the slot goes to the longest waiting request still waiting
            slot = self._waiting.popleft()
            if not slot.done():
                slot.set_result(None)
                return
        self.in_flight -= 1

    def _adapt(self, now: float) -> None:
        if self._window_done:
            mean = self._window_time / self._window_done
            # the baseline: the least a request took on average in a window of the last
            # minute, what this machine does uncrowded now (TCP Vegas's base RTT); requests
            # slower than that for another reason (the machine, the database) are not an
            # overload, which admitting fewer would not cure
            self._means.append(mean)
            self.baseline_s = min(self._means)
            if self._window_full or self._window_peak >= int(self.limit):  # at the limit
                if mean > max(self.target_s, self.tolerance * self.baseline_s):
                    self.limit = max(self.min_limit, self.limit * 0.9)
                else:
                    self.limit = min(self.max_limit, self.limit + 1)
        self._recent.append((self.done, self.refused))
        self._window_end = now + self.window_s
        self._window_time, self._window_done, self._window_full = 0.0, 0, False
        self._window_peak = self.in_flight

    def retry_after_s(self) -> int:
        """When a refused request might come back: the refused per admitted lately, as
        seconds (a claimant refused among ten per one admitted waits about ten), at least 1,
        at most 60, spread over [t, 2t) so that the refused do not return together."""
        base = 1.0
        if len(self._recent) >= 2:
            (done_then, refused_then), (done_now, refused_now) = self._recent[0], self._recent[-1]
            base = min(60.0, max(1.0, (refused_now - refused_then) / max(1, done_now - done_then)))
        return math.ceil(base * (1 + random.random()))


@dataclass
class Admission:
    """The gates of one process, by route (``server/app.py`` fills ``of_route``)."""

    gates: dict[Kind, Gate]
    of_route: dict[object, Gate] = field(default_factory=dict)
    on_refuse: Callable[[Kind], object] = lambda kind: None

    def refusal(self, gate: Gate) -> VoucherError:
        retry = gate.retry_after_s() if gate.kind is Kind.CLAIMS else 1
        self.on_refuse(gate.kind)
        if gate.kind is Kind.CLAIMS:
            return WaitingRoom(retry_after_s=retry)
        return ServerBusy(retry_after_s=retry)


ADMISSION: web.AppKey[Admission] = web.AppKey("admission")


@web.middleware
async def admission_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: a refused request is answered before anything else runs for it."""
    admission = request.app[ADMISSION]
    gate = admission.of_route.get(request.match_info.route)
    if gate is None:  # health, metrics, unmatched: never shed
        return await handler(request)
    if not await gate.enter():
        return _refused(admission.refusal(gate))
    started = gate.clock()
    try:
        return await handler(request)
    finally:
        gate.leave(started)


def _refused(error: VoucherError) -> web.Response:
    response = error_from(error)  # 503, as every Unavailable
    response.headers["Retry-After"] = str(error.details["retry_after_s"])
    return response
