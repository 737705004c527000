"""Redis makes contention cheap; it never decides correctness (rule U7).

One Lua call before a redemption: refuse a QR token id already used (pre-filter; the ledger's
consumed_tokens is the fence), mark the idempotency key in flight, and take the citizen's lock
(SET NX PX). One Lua call after: mark the token used, release the key and the lock, each only
if still ours (compare-and-delete). The calls of concurrent redemptions travel to Redis
together, one pipeline per batch.

Two ways of not getting the lock are told apart (issue 9 item 11, issue 10): ``BUSY``, Redis
answered but another redemption of the citizen held the lock past ``lock_wait_s`` (the caller
decides under the database's row lock), and ``UNAVAILABLE``, Redis failed or is skipped (the
caller serialises the citizen's bills in this process, ``LocalLocks``, and keeps the batched
write: a hung Redis must not cost the batching).

Every call goes through a circuit breaker (``server/breaker.py``, issue 9 item 11): after a
few consecutive failures or timeouts Redis is skipped for a cool-down, so a hung Redis costs
a few timeouts, not one per request.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis
from hiredis import pack_command as _pack
from prometheus_client import Histogram
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.batching import Batcher
from server.breaker import Breaker

BEGIN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'replayed' end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[3]) then return 'in_flight' end
if not redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then
    redis.call('DEL', KEYS[2])
    return 'locked'
end
return 'ok'
"""

END = """
if ARGV[3] == '1' then redis.call('SET', KEYS[1], '1', 'PX', ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return 1
"""


class Outcome(StrEnum):
    OK = "ok"  # lock held: the fast path
    REPLAYED = "replayed"
    IN_FLIGHT = "in_flight"
    BUSY = "busy"  # Redis answered, the citizen's lock was not had in time: the row lock decides
    UNAVAILABLE = "unavailable"  # Redis failed or skipped (breaker open): a lock in this process


# BEGIN's answers but "locked" (wait and ask again), as Redis sends them (bytes) or decoded
_BEGUN = {
    answer: outcome
    for outcome in (Outcome.OK, Outcome.REPLAYED, Outcome.IN_FLIGHT)
    for answer in (outcome.value, outcome.value.encode())
}


class LocalLocks:
    """One ``asyncio.Lock`` per key (a citizen), kept only while someone holds or awaits it:
    with Redis unavailable, one citizen's bills in this process go one at a time, so they can
    use the batched write without racing each other. Other processes are not held back: the
    ledger's conditional write still refuses a voucher spent twice (rule U7)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # the lock, its users

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, key: str, timeout_s: float) -> AsyncIterator[bool]:
        """Hold ``key``'s lock for the block; yields False (not held) after ``timeout_s``."""
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        held = False
        try:
            # wait_for, not asyncio.timeout: a lock had just as the time runs out is returned
            # as had (3.11), never lost with a cancellation pending
            with suppress(TimeoutError):
                held = await asyncio.wait_for(lock.acquire(), timeout_s)
            yield held
        finally:
            if held:
                lock.release()
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


Call = tuple[AsyncScript, list[str], list[Any]]  # a script, its keys and its arguments


@dataclass
class Guard:
    client: aioredis.Redis
    lock_ttl_ms: int = 5000
    in_flight_ttl_ms: int = 30000
    lock_wait_s: float = 2.0
    observe_batch: Histogram | None = None  # batch sizes, labelled by kind
    # shared with every other user of this Redis client (``app[GUARD].breaker``)
    breaker: Breaker = field(default_factory=Breaker)
    # citizens' locks in this process, for when Redis is unavailable
    local: LocalLocks = field(default_factory=LocalLocks)

    def __post_init__(self) -> None:
        # who holds a lock: this guard's random prefix and a counter, unique without a
        # syscall per call (made here, after a fork, never shared by two processes)
        self._owner = secrets.token_hex(6)
        self._owners = itertools.count(1)
        self._idle: list[AbstractConnection] = []  # the guard's connections between batches
        self._begin = self.client.register_script(BEGIN)
        self._end = self.client.register_script(END)
        # the Lua calls of concurrent redemptions, begins and ends alike, go to Redis together:
        # one pipeline (no MULTI: each call is atomic on its own) per batch (server/batching.py)
        sizes = self.observe_batch
        self._calls: Batcher[Call, Any] = Batcher(
            self._pipeline,
            max_batch=256,
            max_running=2,
            observe=None if sizes is None else sizes.labels("redis").observe,
        )

    async def _pipeline(self, calls: list[Call]) -> list[Any]:
        """Each call's answer, or the error Redis gave it; raises when Redis is out of reach
        or the breaker skips it (``CircuitOpen``, a RedisError)."""
        return await self.breaker.run(lambda: self._pipeline_now(calls), weight=len(calls))

    async def _pipeline_now(self, calls: list[Call]) -> list[Any]:
        """Calls refused for an unknown script (Redis restarted) load it and run once more."""
        answers = await self._send(calls)
        lost = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
        if lost:
            for script in {calls[i][0].sha: calls[i][0] for i in lost}.values():
                await self.client.script_load(script.script)
            for i, answer in zip(lost, await self._send([calls[i] for i in lost]), strict=True):
                answers[i] = answer
        return answers

    async def _send(self, calls: list[Call]) -> list[Any]:
        """The calls in one write, then their answers in order: what redis-py's pipeline
        does, with the client's retries, without the pipeline's per-command layers (issue 15:
        they cost more than the rest of the guard). An error answer (``NoScriptError``) is
        that call's answer; a failed exchange drops the connection, which connects again on
        its next use, and is tried again as the client's retry policy says.

        The guard keeps the connections it took from the client's pool (one per batch in
        flight, ``max_running``) instead of taking and giving one back per batch, which costs
        the pool's lock, checks and bookkeeping each time; ``drain`` gives them back."""
        conn = self._idle.pop() if self._idle else await self._connection()
        try:
            answers: list[Any] = await conn.retry.call_with_retry(
                lambda: _exchange(conn, calls), lambda _error: conn.disconnect()
            )
            return answers
        except BaseException:
            await conn.disconnect(nowait=True)  # never used again half-read
            raise
        finally:
            self._idle.append(conn)

    async def _connection(self) -> AbstractConnection:
        pool = self.client.connection_pool
        conn: AbstractConnection = await pool.get_connection()  # type: ignore[no-untyped-call]
        return conn

    def end_soon(
        self,
        *,
        token: str,
        jti: str,
        citizen: str,
        terminal_id: int,
        key: str,
        used: bool,
        jti_ttl_ms: int,
    ) -> None:
        """After a ``begin`` that answered OK, REPLAYED or IN_FLIGHT, once the answer is on its
        way: mark the QR token id used for ``jti_ttl_ms`` (if ``used``), and release the key and
        the citizen's lock if they still hold ``token`` (ours). The till waits for the ledger,
        not for this bookkeeping; ``drain`` awaits what is still pending (at shutdown)."""
        keys = _keys(jti, citizen, terminal_id, key)
        call = (self._end, keys, [token, max(jti_ttl_ms, 1), "1" if used else "0"])
        # nobody awaits it: an error (Redis down) only means the keys expire on their own
        self._calls.submit(call).add_done_callback(_forget)

    async def drain(self) -> None:
        """Wait for the calls still pending, then give the guard's connections back."""
        await self._calls.drain()
        while self._idle:
            await self.client.connection_pool.release(self._idle.pop())

    async def begin(
        self, *, jti: str, citizen: str, terminal_id: int, key: str
    ) -> tuple[Outcome, str]:
        token = f"{self._owner}{next(self._owners):x}"
        if self.breaker.skipping:  # item 11: not even a batch slot while Redis is skipped
            self.breaker.skipped()
            return Outcome.UNAVAILABLE, token
        keys = _keys(jti, citizen, terminal_id, key)
        deadline = asyncio.get_running_loop().time() + self.lock_wait_s
        delay = 0.002
        while True:
            try:
                answer = await self._calls.call(
                    (self._begin, keys, [token, self.lock_ttl_ms, self.in_flight_ttl_ms])
                )
            except RedisError:
                return Outcome.UNAVAILABLE, token
            if isinstance(answer, Exception):
                return Outcome.UNAVAILABLE, token
            begun = _BEGUN.get(answer)
            if begun is not None:
                return begun, token
            if answer not in (b"locked", "locked"):  # not one of BEGIN's answers: a bug
                raise ValueError(f"Redis answered {answer!r} to the guard's begin")
            if asyncio.get_running_loop().time() > deadline:
                return Outcome.BUSY, token
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def local_lock(self, citizen: str) -> AbstractAsyncContextManager[bool]:
        """``async with guard.local_lock(citizen) as held``: the citizen's lock in this process
        (Redis unavailable), waited for at most ``lock_wait_s`` like Redis's."""
        return self.local.hold(citizen, self.lock_wait_s)

    async def in_flight(self, terminal_id: int, key: str) -> bool:
        """Is a request with this key at work now? (False when Redis cannot say.)"""
        try:
            key_name = f"idem:{terminal_id}:{key}"
            return bool(await self.breaker.run(lambda: self.client.exists(key_name)))
        except RedisError:
            return False


def _forget(future: asyncio.Future[Any]) -> None:
    """Take a finished end's outcome, so an error is not logged as never retrieved."""
    if not future.cancelled():
        future.exception()


async def _exchange(conn: AbstractConnection, calls: list[Call]) -> list[Any]:
    packed = b"".join(
        _pack(("EVALSHA", script.sha, len(keys), *keys, *args)) for script, keys, args in calls
    )
    await conn.send_packed_command(packed, check_health=False)
    answers: list[Any] = []
    try:
        # one deadline for all the answers (the client's socket timeout), not one each
        async with asyncio.timeout(conn.socket_timeout):
            for _ in calls:
                try:
                    answers.append(await conn.read_response(timeout=math.inf))
                except ResponseError as exc:  # this call's answer; the connection is in step
                    answers.append(exc)
    except TimeoutError:  # the read was cut short: the connection is dropped (read_response)
        raise RedisTimeoutError("Redis did not answer the guard's calls in time") from None
    return answers


def _keys(jti: str, citizen: str, terminal_id: int, key: str) -> list[str]:
    return [f"qr:used:{jti}", f"idem:{terminal_id}:{key}", f"lock:citizen:{citizen}"]
