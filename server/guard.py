"""Redis makes contention cheap; it never decides correctness (rule U7).

One Lua call before a redemption: refuse a QR token id already used (pre-filter; the ledger's
consumed_tokens is the fence), mark the idempotency key at work, and take the citizen's lock
(SET NX PX). One Lua call after: mark the token used, release the key and the lock, each only
if still ours (compare-and-delete). The calls of concurrent redemptions travel to Redis
together, one pipeline per batch.

Every key a redemption touches lives in its citizen's hash slot (issue 14,
``server/redis_keys.py``): the token id, the lock, and the key's at-work mark, which is named
after the citizen too (a retry under the same key carries the same QR code, so the same
citizen). So a Redis Cluster runs the same single call per step as one Redis: a script may
touch one slot only, and this one does. In a cluster the calls go through redis-py's cluster
pipeline, split per master; on one Redis they skip it (issue 15): the guard packs the calls
with hiredis and sends them on a connection it keeps between batches.

Two ways of not getting the lock are told apart (issue 9 item 11, issue 10): ``BUSY``, Redis
answered but another redemption of the citizen held the lock past ``lock_wait_s`` (the caller
decides under the database's row lock), and ``UNAVAILABLE``, Redis failed or is skipped (the
caller serialises the citizen's bills in this process, ``LocalLocks``, and keeps the batched
write: a hung Redis must not cost the batching).

Every call goes through a circuit breaker (``server/breaker.py``, issue 9 item 11): after a
few consecutive failures or timeouts Redis is skipped for a cool-down, so a hung Redis costs
a few timeouts, not one per request. In a cluster each master has its own breaker: citizens
whose slots live on a dead master fall back to the ledger's fence, the others carry on.
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
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisClusterException, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server import redis_keys
from server.batching import Batcher
from server.breaker import FAILURES, Breaker, Breakers

RedisClient = aioredis.Redis | RedisCluster

# KEYS (``_keys``, one slot): the token id's "used" mark, the key's at-work mark, the
# citizen's lock.
# ARGV: our token, the lock's TTL, the mark's TTL (ms)
BEGIN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'replayed' end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[3]) then return 'in_flight' end
if not redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then
    redis.call('DEL', KEYS[2])
    return 'locked'
end
return 'ok'
"""

# KEYS as BEGIN's. ARGV: our token, how long the token id stays used (ms), '1' if it was used
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
    client: RedisClient
    lock_ttl_ms: int = 5000
    in_flight_ttl_ms: int = 30000
    lock_wait_s: float = 2.0
    observe_batch: Histogram | None = None  # batch sizes, labelled by kind
    # shared with every other user of this Redis client (``app[GUARD].breaker_for``); in a
    # cluster, the pattern of each master's own breaker (``breakers``)
    breaker: Breaker = field(default_factory=Breaker)
    # citizens' locks in this process, for when Redis is unavailable
    local: LocalLocks = field(default_factory=LocalLocks)

    def __post_init__(self) -> None:
        # who holds a lock: this guard's random prefix and a counter, unique without a
        # syscall per call (made here, after a fork, never shared by two processes)
        self._owner = secrets.token_hex(6)
        self._owners = itertools.count(1)
        self._idle: list[AbstractConnection] = []  # single Redis: its connections between batches
        self.breakers = Breakers(self.breaker)
        # a cluster: redis-py's cluster pipeline routes each call to its slot's master
        self.by_slot = isinstance(self.client, RedisCluster)
        register = self.client.register_script
        self._begin, self._end = register(BEGIN), register(END)
        # the Lua calls of concurrent redemptions, begins and ends alike, go to Redis together:
        # one pipeline (no MULTI: each call is atomic on its own) per batch (server/batching.py)
        sizes = self.observe_batch
        self._calls: Batcher[Call, Any] = Batcher(
            self._pipeline,
            max_batch=256,
            max_running=2,
            observe=None if sizes is None else sizes.labels("redis").observe,
        )

    def server_of(self, key: str) -> str:
        """The cluster master holding ``key``'s slot ("" for a single Redis, or while the
        cluster's slots are not known yet)."""
        if not self.by_slot:  # a single Redis (the client's kind, known once)
            return ""
        assert isinstance(self.client, RedisCluster)
        try:
            node = self.client.get_node_from_key(key)
        except (RedisError, RedisClusterException):
            return ""
        return "" if node is None else str(node.name)

    def breaker_for(self, key: str) -> Breaker:
        """The breaker of the Redis server holding ``key`` (every caller of this client)."""
        return self.breakers.of(self.server_of(key))

    async def _pipeline(self, calls: list[Call]) -> list[Any]:
        """Each call's answer, or the error Redis gave it. The calls go to each server they
        belong to in one pipeline, through its breaker: with one Redis, its failure (or the
        breaker skipping it, ``CircuitOpen``, a RedisError) is raised; in a cluster, a dead
        master's calls are answered with the error and the others' go on."""
        by_server: dict[str, list[int]] = {}
        for i, (_, keys, _) in enumerate(calls):
            by_server.setdefault(self.server_of(keys[0]), []).append(i)
        if len(by_server) == 1:
            server = next(iter(by_server))
            return await self._on(server, calls)
        answers: list[Any] = [None] * len(calls)
        results = await asyncio.gather(
            *(self._on(server, [calls[i] for i in at]) for server, at in by_server.items()),
            return_exceptions=True,
        )
        for at, result in zip(by_server.values(), results, strict=True):
            for n, i in enumerate(at):
                answers[i] = result if isinstance(result, BaseException) else result[n]
        return answers

    async def _on(self, server: str, calls: list[Call]) -> list[Any]:
        breaker = self.breakers.of(server)
        return await breaker.run(lambda: self._pipeline_now(calls), weight=len(calls))

    async def _pipeline_now(self, calls: list[Call]) -> list[Any]:
        """Calls refused for an unknown script (Redis restarted) run once more with the
        script's text (EVAL), which the server then knows again."""
        answers = await self._send(calls)
        lost = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
        if lost:
            again = await self._send([calls[i] for i in lost], text=True)
            for i, answer in zip(lost, again, strict=True):
                answers[i] = answer
        return answers

    async def _send(self, calls: list[Call], *, text: bool = False) -> list[Any]:
        if not self.by_slot:
            return await self._send_direct(calls, text=text)
        async with self.client.pipeline(transaction=False) as pipe:
            for script, keys, args in calls:
                # execute_command: redis-py's cluster pipeline refuses evalsha() because a
                # master may not know the script; _pipeline_now sends those again as EVAL
                pipe.execute_command(*_script(script, text), len(keys), *keys, *args)
            answers: list[Any] = await pipe.execute(raise_on_error=False)
        return answers

    async def _send_direct(self, calls: list[Call], *, text: bool) -> list[Any]:
        """One Redis: the calls in one write, then their answers in order: what redis-py's
        pipeline does, with the client's retries, without the pipeline's per-command layers
        (issue 15: they cost more than the rest of the guard). An error answer
        (``NoScriptError``) is that call's answer; a failed exchange drops the connection,
        which connects again on its next use, and is tried again as the client's retry policy
        says. The guard keeps the connections it took from the client's pool (one per batch
        in flight, ``max_running``) instead of taking and giving one back per batch, which
        costs the pool's lock, checks and bookkeeping each time; ``drain`` gives them back."""
        conn = self._idle.pop() if self._idle else await self._connection()
        try:
            answers: list[Any] = await conn.retry.call_with_retry(
                lambda: _exchange(conn, calls, text=text), lambda _error: conn.disconnect()
            )
            return answers
        except BaseException:
            await conn.disconnect(nowait=True)  # never used again half-read
            raise
        finally:
            self._idle.append(conn)

    async def _connection(self) -> AbstractConnection:
        assert isinstance(self.client, aioredis.Redis)
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
        mark = "1" if used else "0"
        self._soon(
            (self._end, _keys(jti, citizen, terminal_id, key), [token, max(jti_ttl_ms, 1), mark])
        )

    def _soon(self, call: Call) -> None:
        # nobody awaits it: an error (Redis down) only means the keys expire on their own
        self._calls.submit(call).add_done_callback(_forget)

    async def drain(self) -> None:
        """Wait for the calls still pending, then give the guard's connections back."""
        await self._calls.drain()
        while self._idle:
            assert isinstance(self.client, aioredis.Redis)
            await self.client.connection_pool.release(self._idle.pop())

    async def begin(
        self, *, jti: str, citizen: str, terminal_id: int, key: str
    ) -> tuple[Outcome, str]:
        token = f"{self._owner}{next(self._owners):x}"
        keys = _keys(jti, citizen, terminal_id, key)  # one slot: the citizen's
        breaker = self.breaker_for(keys[0])
        if breaker.skipping:  # item 11: not even a batch slot while Redis is skipped
            breaker.skipped()
            return Outcome.UNAVAILABLE, token
        take: Call = (self._begin, keys, [token, self.lock_ttl_ms, self.in_flight_ttl_ms])
        answer = await _answer(self._calls.submit(take))
        deadline = asyncio.get_running_loop().time() + self.lock_wait_s
        delay = 0.002
        # "locked" left nothing of ours behind (BEGIN drops the key's mark): wait and again
        while answer == "locked" and asyncio.get_running_loop().time() <= deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
            answer = await _answer(self._calls.submit(take))
        return (Outcome.BUSY if answer == "locked" else Outcome(answer)), token

    def local_lock(self, citizen: str) -> AbstractAsyncContextManager[bool]:
        """``async with guard.local_lock(citizen) as held``: the citizen's lock in this process
        (Redis unavailable), waited for at most ``lock_wait_s`` like Redis's."""
        return self.local.hold(citizen, self.lock_wait_s)

    async def in_flight(self, citizen: str, terminal_id: int, key: str) -> bool:
        """Is a request of ``citizen`` with this key at work now? (False when Redis cannot
        say.) The key's mark lives in the citizen's slot, so the asker names the citizen: a
        till sends the QR code of the request it lost the answer of."""
        name = redis_keys.key_at_work(citizen, terminal_id, key)
        try:
            return bool(await self.breaker_for(name).run(lambda: self.client.exists(name)))
        except RedisError:
            return False


def _forget(future: asyncio.Future[Any]) -> None:
    """Take a finished end's outcome, so an error is not logged as never retrieved."""
    if not future.cancelled():
        future.exception()


async def _exchange(conn: AbstractConnection, calls: list[Call], *, text: bool) -> list[Any]:
    packed = b"".join(
        _pack((*_script(script, text), len(keys), *keys, *args)) for script, keys, args in calls
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


def _script(script: AsyncScript, text: bool) -> tuple[str, str]:
    """How a call names its script: by its digest, or by its text once Redis forgot it."""
    return ("EVAL", str(script.script)) if text else ("EVALSHA", script.sha)


async def _answer(future: asyncio.Future[Any]) -> str:
    """A script's answer as text; "unavailable" when Redis failed or was skipped."""
    try:
        answer = await future
    except FAILURES:
        return "unavailable"
    if isinstance(answer, Exception):
        return "unavailable"
    return answer.decode() if isinstance(answer, bytes) else str(answer)


def _keys(jti: str, citizen: str, terminal_id: int, key: str) -> list[str]:
    """BEGIN's and END's keys, all in the citizen's slot: the token id's "used" mark, the
    key's at-work mark, the citizen's lock."""
    return [
        redis_keys.used_token(citizen, jti),
        redis_keys.key_at_work(citizen, terminal_id, key),
        redis_keys.citizen_lock(citizen),
    ]
