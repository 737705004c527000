"""Load shedding (issue 14): admit what can be served within the latency target, answer the
rest at once.

One gate per process admits up to ``limit`` requests at a time, shared by every kind of
request (health and metrics pass by). Each kind may fill only its *share* of the limit, so
when the process is full the least urgent are refused first and the till's sales go on: a
redemption or refund (the end of a sale whose quote was served) may use all of it, quotes
and lookups half (a quote admitted leaves room for its redemption), claims and everything
else 40 %. A claim rush therefore never takes the last 60 % from the tills; while the
latency allows, the limit grows, and with it every share. One more request may wait
``queue_wait_s`` for a slot (a short queue absorbs bursts), unless the last window already
refused some (a standing overload: the wait would end in a refusal anyway, so, as CoDel
does, drop rather than queue); otherwise it is refused at once,
having cost a dictionary lookup and a small answer: 503 ``server_busy`` with ``Retry-After``
for the till (its terminal retries the same idempotency key: a refused request decided
nothing), 503 ``waiting_room`` with a retry time for claims (``details.retry_after_s``,
spread so that refused claimants do not come back as one wave).

The limit adapts, as TCP's congestion window and Netflix's concurrency-limits do: every
``window_s`` in which the process was at its limit, the gate looks at how long the requests
it let through took inside the server. Slower on average than its target (``target_s``, or
``tolerance`` x what they take when the process is not crowded, whichever is more): the
limit shrinks by a fifth (by half when four times over, as at an overload's onset), down to
``min_limit``; within it: it grows by a tenth. It starts at ``initial_limit`` and never
passes ``max_limit``. So under overload the process keeps as many requests in flight as it
serves within the target, and refuses the others instead of letting every request slow down;
once the overload ends the limit grows back. "Uncrowded" (the baseline) is a low quantile of
the windows' mean times over the last minute: what this machine does now, so that a slow
machine or database is not taken for an overload (admitting fewer would not cure it).

What the gate costs a request: two clock reads and a few integer operations (the edge
middleware, ``server/web.py``, runs after it, for admitted requests only).

A refusal is cheap, not free: aiohttp has read and parsed the request before the gate sees
it, some 200 µs of the process's one core (a third of a redemption). Clients that ask again
at once instead of after ``Retry-After`` (an old till, a script, a misbehaving app) would
fill the loop with refusals, swell the admitted requests' time in the server, and hold the
gate at ``min_limit``: the process serving almost nothing (measured: 4.6 redemptions/s and
46,306 refusals with 256 such tills on one process). So a client refused again before the
time it was told (at most ``tarpit_s``) waits for that time first, as if it had obeyed, and
then tries the gate once more (a tarpit): each such client costs at most one refusal per
``tarpit_s``, however fast it asks. A client that honours Retry-After never meets it, and
nothing is done for an admitted request. A client is who the request says it is: its
``Authorization`` (a till, an operator's tool), else its ``Cookie`` (a browser's session),
else its connection. Not the connection first: behind a proxy (docker/nginx.conf) one
upstream connection carries many tills' requests in turn, and one till's haste must not hold
back the next till's sale.
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
    """The kinds of request (the label of ``voucher_shed_total``), most urgent first."""

    TILL_WRITE = "till_write"  # redemptions and refunds: a sale's end, after its quote
    TILL_READ = "till_read"  # quotes and lookups
    CLAIMS = "claims"
    OTHER = "other"


# the part of the limit each kind may fill (see the module)
SHARES: dict[Kind, float] = {
    Kind.TILL_WRITE: 1.0,
    Kind.TILL_READ: 0.5,
    Kind.CLAIMS: 0.4,
    Kind.OTHER: 0.4,
}
_BASELINE_QUANTILE = 0.1


@dataclass
class Gate:
    """A process's admission: at most ``limit`` requests in flight (see the module)."""

    target_s: float
    max_limit: int
    min_limit: int = 4
    initial_limit: int = 64
    tolerance: float = 2.0
    queue_wait_s: float = 0.005
    queue_max: int = 64
    window_s: float = 0.1
    clock: Callable[[], float] = time.perf_counter
    limit: float = field(init=False)
    in_flight: int = field(default=0, init=False)
    admitted: int = field(default=0, init=False)
    done: int = field(default=0, init=False)  # admitted requests finished
    refused: dict[Kind, int] = field(default_factory=lambda: dict.fromkeys(Kind, 0), init=False)
    baseline_s: float = field(default=0.0, init=False)  # mean time in the server, uncrowded
    # (slot, the most in flight it may find) for each request waiting for a slot
    _waiting: collections.deque[tuple[asyncio.Future[None], float]] = field(
        default_factory=collections.deque, init=False
    )
    _window_end: float = field(default=0.0, init=False)
    _window_time: float = field(default=0.0, init=False)
    _window_done: int = field(default=0, init=False)
    _window_full: bool = field(default=False, init=False)  # someone waited or was refused
    _window_peak: int = field(default=0, init=False)  # the most in flight at once
    _window_refused: bool = field(default=False, init=False)
    # the last window refused some: a standing overload, not a burst, so nobody waits for a
    # slot (a wait would end in a refusal all the same, CoDel's point: drop, do not queue)
    _standing: bool = field(default=False, init=False)
    _means: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=600), init=False
    )
    # at the end of the last windows, for a refused claimant's retry time: (done, claims refused)
    _recent: collections.deque[tuple[int, int]] = field(
        default_factory=lambda: collections.deque(maxlen=10), init=False
    )

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.max_limit or self.target_s <= 0:
            raise ValueError("a gate needs 1 <= min_limit <= max_limit and a latency target")
        self.limit = float(max(self.min_limit, min(self.initial_limit, self.max_limit)))

    async def enter(self, kind: Kind) -> bool:
        """Admitted (True: call ``leave`` when done) or refused (False), at once or after a
        short wait for a slot."""
        room = self.limit * SHARES[kind]
        if self.in_flight < room and not self._waiting:
            self.in_flight += 1
            self.admitted += 1
            if self.in_flight > self._window_peak:
                self._window_peak = self.in_flight
            return True
        self._window_full = True
        if self._standing or len(self._waiting) >= self.queue_max or self.queue_wait_s <= 0:
            self.refused[kind] += 1
            self._window_refused = True
            return False
        slot = asyncio.get_running_loop().create_future()
        self._waiting.append((slot, room))
        try:
            await asyncio.wait_for(asyncio.shield(slot), self.queue_wait_s)
        except TimeoutError:
            if slot.done() and not slot.cancelled():  # handed a slot as the wait ended
                self.admitted += 1
                return True
            slot.cancel()
            self.refused[kind] += 1
            self._window_refused = True
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
        self.in_flight -= 1
        for _ in range(len(self._waiting)):  # the first still waiting whose share has room
            slot, room = self._waiting.popleft()
            if slot.done():
                continue
            if self.in_flight < room:
                self.in_flight += 1
                slot.set_result(None)
                return
            self._waiting.append((slot, room))

    def _adapt(self, now: float) -> None:
        if self._window_done:
            mean = self._window_time / self._window_done
            self._means.append(mean)
            ordered = sorted(self._means)
            self.baseline_s = ordered[int(len(ordered) * _BASELINE_QUANTILE)]
            if self._window_full or self._window_peak >= int(self.limit):  # at the limit
                threshold = max(self.target_s, self.tolerance * self.baseline_s)
                if mean > threshold:  # far over it (an overload's onset): halve at once
                    factor = 0.5 if mean > 4 * threshold else 0.8
                    self.limit = max(float(self.min_limit), self.limit * factor)
                else:
                    self.limit = min(float(self.max_limit), self.limit * 1.1 + 1)
        self._standing, self._window_refused = self._window_refused, False
        self._recent.append((self.done, self.refused[Kind.CLAIMS]))
        self._window_end = now + self.window_s
        self._window_time, self._window_done, self._window_full = 0.0, 0, False
        self._window_peak = self.in_flight

    def retry_after_s(self) -> int:
        """When a refused claimant might come back: claims refused per request served lately,
        as seconds (ten refused per one served: about ten), at least 1, at most 60, spread
        over [t, 2t) so that the refused do not return together."""
        base = 1.0
        if len(self._recent) >= 2:
            (done_then, refused_then), (done_now, refused_now) = self._recent[0], self._recent[-1]
            base = min(60.0, max(1.0, (refused_now - refused_then) / max(1, done_now - done_then)))
        return math.ceil(base * (1 + random.random()))


@dataclass
class Admission:
    """A process's gate, the kind of each route (``server/app.py`` fills ``of_route``), and
    when each client refused lately was told to come back (the tarpit, see the module)."""

    gate: Gate
    of_route: dict[object, Kind] = field(default_factory=dict)
    on_refuse: Callable[[Kind], object] = lambda kind: None
    tarpit_s: float = 1.0  # 0: no tarpit
    tarpitted: int = field(default=0, init=False)  # requests that waited for their time
    # client (``client_of``) -> the gate's clock when it may ask again
    _told: dict[object, float] = field(default_factory=dict, init=False)
    _purge_at: int = field(default=1024, init=False)

    def refusal(self, kind: Kind, client: object | None) -> VoucherError:
        """The answer to a refused request, ``client`` told when to come back."""
        self.on_refuse(kind)
        seconds = self.gate.retry_after_s() if kind is Kind.CLAIMS else 1
        if client is not None:
            self.told(client, seconds)
        if kind is Kind.CLAIMS:
            return WaitingRoom(retry_after_s=seconds)
        return ServerBusy(retry_after_s=seconds)

    def too_soon(self, client: object) -> float:
        """Seconds until ``client``, refused lately, may ask again (0: it may now)."""
        until = self._told.get(client)
        return 0.0 if until is None else max(0.0, until - self.gate.clock())

    def told(self, client: object, retry_after_s: float) -> None:
        """``client`` was refused and told to come back in ``retry_after_s``."""
        if self.tarpit_s <= 0:
            return
        now = self.gate.clock()
        self._told[client] = now + min(retry_after_s, self.tarpit_s)
        if len(self._told) >= self._purge_at:  # forget who may ask again by now
            self._told = {c: t for c, t in self._told.items() if t > now}
            self._purge_at = max(1024, 2 * len(self._told))


ADMISSION: web.AppKey[Admission] = web.AppKey("admission")


@web.middleware
async def admission_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: a refused request is answered before anything else runs for it."""
    admission = request.app[ADMISSION]
    kind = admission.of_route.get(request.match_info.route)
    if kind is None:  # health, metrics, unmatched: never shed
        return await handler(request)
    gate = admission.gate
    if not await gate.enter(kind):
        client = client_of(request)  # read once, for a refused request only
        if not await _after_tarpit(admission, kind, client):
            error = admission.refusal(kind, client)
            return _refused(error, page=not request.path.startswith("/v1/"))
    started = gate.clock()
    try:
        return await handler(request)
    finally:
        gate.leave(started)


def client_of(request: web.Request) -> object | None:
    """Who asks, for the tarpit (see the module); read for refused requests only."""
    headers = request.headers
    return headers.get("Authorization") or headers.get("Cookie") or request.transport


async def _after_tarpit(admission: Admission, kind: Kind, client: object | None) -> bool:
    """A refused request from a client that was told to come back later and did not wait:
    it waits now, then tries the gate once more (admitted: True)."""
    wait = 0.0 if client is None else admission.too_soon(client)
    if wait <= 0:
        return False
    admission.tarpitted += 1
    await asyncio.sleep(wait)
    return await admission.gate.enter(kind)


# what a person reads on a page (the wallet's claim form, the merchant's pages), both languages
_PAGE_WORDS = {
    ServerBusy.code: (
        "服务器繁忙，本次未办理，请 {s} 秒后再试。",
        "The server is busy and did nothing; try again in {s} s.",
    ),
    WaitingRoom.code: (
        "领券人数较多，您在排队中，请 {s} 秒后再试。",
        "Many people are claiming now: you are in the waiting room; try again in {s} s.",
    ),
}


def _refused(error: VoucherError, *, page: bool) -> web.Response:
    seconds = str(error.details["retry_after_s"])
    if page:
        zh, en = _PAGE_WORDS[error.code]
        response = web.Response(
            text=f"{zh.format(s=seconds)}\n{en.format(s=seconds)}\n", status=503
        )
    else:
        response = error_from(error)  # 503, as every Unavailable
    response.headers["Retry-After"] = seconds
    return response
