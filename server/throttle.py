"""Throttles kept in Redis (issue 9): guesses at credentials, failed claims, QR minting.

Each decision is one Lua script, so it is atomic whatever the concurrency: an attempt first
takes a slot (the count is raised before the credential is checked) and is refused if the
slot is not there, so at most the allowed number of guesses is ever checked. A success gives
its slot back (the counters count failures and attempts still at work, not successes).

- Sign-in (terminals and staff, items 1 and 3): per (account, client address) a strict limit
  in a fixed window (``sign_in_client_failures`` per ``sign_in_window_seconds``); per account
  from all addresses a higher count (``sign_in_account_failures``) after which every further
  failure shuts the account for 1 s, 2 s, 4 s ... at most ``sign_in_backoff_max_seconds``.
  One address therefore cannot lock an account out for anyone else (OWASP), and many
  addresses can only slow it down for about a minute at a time.
- Claims (item 7): failed claims per citizen per hour.
- QR minting (item 9): a generic cell rate (GCRA) per citizen, ``qr_mints_per_minute`` after
  a burst of ``qr_mint_burst``, on Redis's own clock so all server processes agree.

Redis is a filter here, never the judge (the credential check and the ledger decide): if
Redis is out of reach, every throttle fails open (counted in voucher_throttle_fail_open_total)
and the request goes on to its credential or rule checks as if no throttle existed.

The client address is the peer's (``request.remote``); X-Forwarded-For is believed only when
the peer is one of ``Settings.trusted_proxies`` (none by default): otherwise an attacker
would pick a fresh "address" for every guess.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ipaddress
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from redis.exceptions import NoScriptError, RedisError

from server import redis_keys
from server.guard import RedisClient
from server.web import GUARD, METRICS, REDIS, SETTINGS
from shared.errors import RateLimited, TooManyAttempts

# KEYS: per counter its count key and its back-off key. ARGV: per counter its limit, window
# (ms), back-off threshold (0: none), back-off base and cap (ms). Refuses with the wait in ms
# if any counter is full or backing off; otherwise raises every count (starting its window at
# the first attempt) and, past the threshold, shuts the counter's back-off key for
# base * 2^(count - threshold - 1) ms, at most the cap. Refused attempts count nothing, so
# hammering does not stretch a window.
_TAKE = """
local n = #KEYS / 2
local wait = 0
for i = 1, n do
    local a = (i - 1) * 5
    local count = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
    if count >= tonumber(ARGV[a + 1]) then
        local ttl = redis.call('PTTL', KEYS[2 * i - 1])
        if ttl < 0 then ttl = tonumber(ARGV[a + 2]) end
        if ttl > wait then wait = ttl end
    end
    if tonumber(ARGV[a + 3]) > 0 then
        local ttl = redis.call('PTTL', KEYS[2 * i])
        if ttl > wait then wait = ttl end
    end
end
if wait > 0 then return wait end
for i = 1, n do
    local a = (i - 1) * 5
    local count = redis.call('INCR', KEYS[2 * i - 1])
    if count == 1 or redis.call('PTTL', KEYS[2 * i - 1]) < 0 then
        redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[a + 2])
    end
    local after = tonumber(ARGV[a + 3])
    if after > 0 and count > after then
        local delay = tonumber(ARGV[a + 4]) * 2 ^ math.min(count - after - 1, 30)
        delay = math.min(delay, tonumber(ARGV[a + 5]))
        redis.call('SET', KEYS[2 * i], '1', 'PX', string.format('%d', delay))
    end
end
return 0
"""

# A success gives its slots back (never below zero, never a count without a window).
_GIVE_BACK = """
for i = 1, #KEYS do
    if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""

# GCRA: KEYS[1] holds the theoretical arrival time (ms, Redis clock). ARGV: emission interval
# (ms) and burst. Allowed while the new arrival time is at most burst intervals ahead of now;
# otherwise answers the wait in ms and changes nothing.
_MINT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - now - interval * tonumber(ARGV[2])
if wait > 0 then return wait end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', new_tat - now))
return 0
"""


class _Lua:
    """A script run by its digest, loaded again when Redis does not know it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, client: RedisClient, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted or never saw it: the text, which it keeps
            return await client.eval(self.text, len(keys), *keys, *args)


TAKE, GIVE_BACK, MINT = _Lua(_TAKE), _Lua(_GIVE_BACK), _Lua(_MINT)


async def _run(request: web.Request, script: _Lua, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """One script, through the breaker the guard shares (issue 9 item 11): with Redis hung, a
    throttle is skipped (CircuitOpen, a RedisError: the throttle fails open) instead of each
    sign-in waiting out the socket timeout. Its keys share one slot (server/redis_keys.py);
    in a cluster, the breaker is that slot's master's."""
    breaker = request.app[GUARD].breaker_for(keys[0])
    return await breaker.run(lambda: script(request.app[REDIS], keys, args))


@dataclass(frozen=True, slots=True)
class Counter:
    """One fixed-window count: at most ``limit`` attempts in ``window_ms`` from the first;
    with ``backoff_after`` > 0, every attempt past that many shuts it for a doubling while."""

    key: str
    limit: int
    window_ms: int
    backoff_after: int = 0
    backoff_base_ms: int = 1000
    backoff_max_ms: int = 0


@dataclass(frozen=True, slots=True)
class Slot:
    """What an allowed attempt took: the count keys to give back if it succeeds (none when
    Redis could not count)."""

    keys: tuple[str, ...] = ()


def _seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))


def _redis_failed(request: web.Request) -> None:
    """voucher_redis_failures_total counts what the ledger alone then guards; a throttle that
    could not ask Redis is counted apart."""
    request.app[METRICS].throttle_fail_open.inc()


async def take(request: web.Request, counters: Sequence[Counter], what: str) -> Slot:
    """A slot on every counter, or TooManyAttempts (with the wait) if any is used up."""
    keys: list[str] = []
    args: list[int] = []
    for c in counters:
        keys += [c.key, c.key + ":backoff"]
        args += [c.limit, c.window_ms, c.backoff_after, c.backoff_base_ms, c.backoff_max_ms]
    try:
        wait_ms = int(await _run(request, TAKE, keys, args))
    except RedisError:
        _redis_failed(request)
        return Slot()  # fail open: the check behind the throttle still runs
    if wait_ms > 0:
        seconds = _seconds(wait_ms)
        raise TooManyAttempts(
            f"Too many failed {what}; try again in {seconds} s.", retry_after_s=seconds
        )
    return Slot(tuple(c.key for c in counters))


async def give_back(request: web.Request, slot: Slot) -> None:
    """The attempt succeeded: it does not count against anyone."""
    if not slot.keys:
        return
    try:
        await _run(request, GIVE_BACK, slot.keys, [])
    except RedisError:
        _redis_failed(request)


@contextlib.asynccontextmanager
async def checking(request: web.Request, slot: Slot) -> AsyncIterator[None]:
    """Around reading and checking a credential: if that fails for any reason (the database
    out of reach, a cancelled request), the guess was never checked and gives its slot back,
    so that a till retrying its sign-in through an outage is not locked out after it."""
    try:
        yield
    except BaseException:
        await give_back(request, slot)
        raise


def client_address(request: web.Request) -> str:
    """The caller's address: the peer's, or (only behind a trusted proxy) the rightmost
    X-Forwarded-For entry that is not itself a trusted proxy."""
    peer = request.remote or "unknown"
    proxies = _networks(request.app[SETTINGS].trusted_proxies)
    if not proxies or not _within(peer, proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a forged or garbled chain: the proxy itself is all we know
        if not any(address in net for net in proxies):
            return str(address)
    return peer


@functools.lru_cache(maxsize=8)
def _networks(
    proxies: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _within(
    address: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


async def sign_in_attempt(request: web.Request, account: str) -> Slot:
    """Items 1 and 3: a slot for one guess at ``account``'s credential ("staff:<username>",
    "terminal:<id>"), taken before the guess is checked."""
    s = request.app[SETTINGS]
    window_ms = s.sign_in_window_seconds * 1000
    per_client, per_account = redis_keys.sign_in_counters(account, client_address(request))
    return await take(
        request,
        [
            Counter(per_client, s.sign_in_client_failures, window_ms),
            Counter(
                per_account,
                # the back-off, not the count, bounds the account's guesses
                limit=2**31,
                window_ms=window_ms,
                backoff_after=s.sign_in_account_failures,
                backoff_base_ms=s.sign_in_backoff_first_seconds * 1000,
                backoff_max_ms=s.sign_in_backoff_max_seconds * 1000,
            ),
        ],
        "sign-ins",
    )


async def claim_attempt(request: web.Request, citizen: str) -> Slot:
    """Item 7: a slot for one claim of ``citizen`` (the pseudonymous subject)."""
    limit = request.app[SETTINGS].claim_failures_per_hour
    counter = Counter(redis_keys.claim_counter(citizen), limit, 3_600_000)
    return await take(request, [counter], "claims")


async def mint(request: web.Request, citizen: str) -> None:
    """Item 9: may ``citizen`` mint another QR code now? RateLimited (with the wait) if not."""
    s = request.app[SETTINGS]
    interval_ms = 60_000 // s.qr_mints_per_minute
    keys = [redis_keys.mint_rate(citizen)]
    try:
        wait_ms = int(await _run(request, MINT, keys, [interval_ms, s.qr_mint_burst]))
    except RedisError:
        _redis_failed(request)
        return  # fail open: minting stays possible, only not limited
    if wait_ms > 0:
        seconds = _seconds(wait_ms)
        raise RateLimited(
            f"A new QR code was asked for too often; try again in {seconds} s.",
            retry_after_s=seconds,
        )
