"""The server's Redis client: one Redis, or a Redis Cluster (issue 14, ``redis_cluster``).

Either way Redis only filters (rule U7): the client fails fast (short timeouts, no retries
of its own) and the circuit breakers decide when to ask again (server/breaker.py). In a
cluster redis-py routes each key to its slot's master (every key carries a hash tag,
server/redis_keys.py) and follows the cluster's changes of topology itself.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError
from redis.retry import Retry

from server.guard import RedisClient
from server.settings import Settings

log = logging.getLogger("server")

_TIMEOUT_S = 0.5


def connect(settings: Settings) -> RedisClient:
    if settings.redis_cluster:
        return RedisCluster.from_url(
            settings.redis_url,
            socket_connect_timeout=_TIMEOUT_S,
            socket_timeout=_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
            # a master out of reach leaves its slots uncovered: the others still serve theirs
            require_full_coverage=False,
        )
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=_TIMEOUT_S,
        socket_timeout=_TIMEOUT_S,
        retry_on_timeout=False,
    )


async def discover(client: RedisClient) -> None:
    """A cluster's masters and slots, learnt before serving (else at the first call)."""
    if isinstance(client, RedisCluster):
        try:
            await client.initialize()
        except (RedisError, RedisClusterException, OSError) as exc:
            log.warning("the Redis Cluster is out of reach for now: %s", exc)


async def check(client: RedisClient) -> str:
    """For /readyz: "ok" when Redis answers. In a cluster, when at least one master does
    (those that do not are skipped by their breakers; their citizens are fenced by the
    ledger alone)."""
    try:
        if not isinstance(client, RedisCluster):
            await client.ping()
            return "ok"
        if not client.get_primaries():
            await client.initialize()
        masters = client.get_primaries()
        answers = await asyncio.gather(
            *(client.ping(target_nodes=node) for node in masters), return_exceptions=True
        )
    except (RedisError, RedisClusterException, OSError) as exc:
        return f"down: {type(exc).__name__}"
    down = sum(isinstance(a, BaseException) for a in answers)
    if down == len(masters):
        return "down: no master answers"
    return "ok" if not down else f"ok: {down} of {len(masters)} masters down"
