"""A circuit breaker for Redis (issue 9, item 11): a hung Redis must not slow everything.

Redis only filters; PostgreSQL fences (rule U7). So when Redis stops answering, the cheapest
correct thing is not to ask it: after ``failure_threshold`` consecutive failures or timeouts
the breaker *opens* and every call is skipped at once (the caller takes its fail-open path)
for ``cool_down_s``. Then it is *half-open*: one call, the probe, goes through while the others
are still skipped; the probe's success *closes* the breaker, its failure opens it again for
another cool-down.

One breaker per Redis server: ``server.guard.Guard`` runs all its calls through
``Guard.breaker_for(key)`` (``app[GUARD]``), and any other user of the same Redis (the
sign-in throttles) should run its calls through that same breaker, so that one hung server
is detected once. A single Redis has one (``Guard.breaker``); a Redis Cluster one per master
(``Breakers``, issue 14). A skipped call raises ``CircuitOpen``, a ``RedisError``: code that already
fails open on ``RedisError`` needs no change.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeVar

from redis.exceptions import RedisError

T = TypeVar("T")

# what counts as Redis failing: its own errors (timeouts, refused or reset connections) and
# the socket's, should one escape the client
FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class State(IntEnum):
    """Also the value of the ``voucher_redis_breaker_state`` gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitOpen(RedisError):
    """The call was not made: the breaker is open (Redis failed lately)."""


@dataclass
class Breaker:
    failure_threshold: int = 3
    cool_down_s: float = 2.0
    clock: Callable[[], float] = time.monotonic
    on_state: Callable[[float], object] | None = None  # e.g. a Prometheus gauge's ``set``
    on_skip: Callable[[float], object] | None = None  # e.g. a Prometheus counter's ``inc``
    state: State = field(default=State.CLOSED, init=False)
    failures: int = field(default=0, init=False)  # consecutive
    opened_at: float = field(default=0.0, init=False)
    _probing: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.cool_down_s <= 0:
            raise ValueError("a breaker needs a threshold of at least 1 and a cool-down")
        self._set(State.CLOSED)

    @property
    def skipping(self) -> bool:
        """Open and still cooling down: a call now would be skipped (asks nothing else)."""
        return self.state is State.OPEN and self.clock() < self.opened_at + self.cool_down_s

    def allow(self) -> bool:
        """May a call go to Redis now? In half-open state, True for the one probe only."""
        if self.state is State.CLOSED:
            return True
        if self.state is State.OPEN:
            if self.clock() < self.opened_at + self.cool_down_s:
                return False
            self._set(State.HALF_OPEN)
            self._probing = False
        if self._probing:
            return False
        self._probing = True
        return True

    def succeeded(self) -> None:
        self.failures = 0
        self._probing = False
        if self.state is not State.CLOSED:
            self._set(State.CLOSED)

    def failed(self) -> None:
        self.failures += 1
        self._probing = False
        if self.state is State.HALF_OPEN or self.failures >= self.failure_threshold:
            self.opened_at = self.clock()
            self._set(State.OPEN)

    def skipped(self, calls: int = 1) -> None:
        if self.on_skip is not None:
            self.on_skip(calls)

    async def run(self, call: Callable[[], Awaitable[T]], *, weight: int = 1) -> T:
        """``await call()`` unless the breaker is open (then ``CircuitOpen``); its failure
        counts against Redis. ``weight``: how many callers' calls it carries (a pipeline)."""
        if not self.allow():
            self.skipped(weight)
            raise CircuitOpen("Redis is skipped for a moment: it failed lately")
        try:
            result = await call()
        except FAILURES:
            self.failed()
            raise
        except BaseException:
            # not Redis's fault (a cancelled request): a probe gives its turn back
            if self._probing:
                self._probing = False
            raise
        self.succeeded()
        return result

    def _set(self, state: State) -> None:
        self.state = state
        if self.on_state is not None:
            self.on_state(int(state))


class Breakers:
    """One breaker per Redis server (issue 14): in a Redis Cluster, each master has its own,
    so that a dead master is skipped while the others are still asked. ``of("")`` is
    ``first``, the breaker of a single Redis (and of a key whose master is not known yet);
    the others copy its settings and share its skip counter. The state it reports (the
    ``voucher_redis_breaker_state`` gauge) is the worst of them all."""

    def __init__(self, first: Breaker) -> None:
        self.first = first
        self._others: dict[str, Breaker] = {}
        self._report_state = first.on_state
        first.on_state = self._reported

    def of(self, server: str) -> Breaker:
        if not server:
            return self.first
        breaker = self._others.get(server)
        if breaker is None:
            breaker = Breaker(
                failure_threshold=self.first.failure_threshold,
                cool_down_s=self.first.cool_down_s,
                clock=self.first.clock,
                on_state=self._reported,
                on_skip=self.first.on_skip,
            )
            self._others[server] = breaker
        return breaker

    def _reported(self, _state: float) -> None:
        if self._report_state is not None:
            worst = max((self.first.state, *(b.state for b in self._others.values())))
            self._report_state(int(worst))
