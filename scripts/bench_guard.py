#!/usr/bin/env python3
"""What Redis's guard costs per redemption, on one Redis or a 3-master Redis Cluster (issue 14).

    PYTHONPATH=. .venv/bin/python scripts/bench_guard.py [--redemptions 20000]
        [--concurrency 64] [--cluster] [--json-out F]

Starts a redis-server of its own (or a cluster of three, ``ops/embedded.py``) in a temporary
folder and drives ``server.guard.Guard`` as the till's service does: ``begin`` then
``end_soon(used=True)`` for each redemption, ``--concurrency`` at once, on random citizens
and terminals (no PostgreSQL: only the guard's own cost). Reports the redemptions per second
of this one process, and per redemption: Redis's CPU time (``INFO cpu``, all masters), the
scripts Redis ran (``INFO commandstats``) and this process's CPU time. Loopback only; the
figures feed the capacity model (docs/SCALING.md) and docs/BENCHMARKS.md.

It imports the guard from ``PYTHONPATH``: point that at another checkout to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH: another checkout's guard may be measured

import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from redis.asyncio.cluster import RedisCluster  # noqa: E402

from ops import embedded  # noqa: E402
from server.guard import Guard, Outcome  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_guard.py", description=__doc__.split("\n")[0])
    p.add_argument("--redemptions", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--citizens", type=int, default=10_000)
    p.add_argument("--cluster", action="store_true", help="a 3-master Redis Cluster")
    p.add_argument("--json-out", type=Path)
    return p.parse_args(argv)


def redis_totals(ports: list[int], socket: str | None) -> dict[str, float]:
    """Redis's CPU seconds and script calls so far, summed over the servers."""
    cpu = calls = 0.0
    clients = [redis.Redis(unix_socket_path=socket)] if socket else []
    clients += [redis.Redis(port=p) for p in ports]
    for client in clients:
        with client:
            info = client.info("cpu")
            cpu += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
            stats = client.info("commandstats")
            calls += sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval"))
    return {"cpu_s": cpu, "script_calls": calls}


async def drive(guard: Guard, args: argparse.Namespace) -> dict[str, Any]:
    citizens = [str(uuid.uuid4()) for _ in range(args.citizens)]
    outcomes: dict[str, int] = {}
    left = args.redemptions

    async def till(terminal_id: int) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            jti, citizen, key = str(uuid.uuid4()), random.choice(citizens), uuid.uuid4().hex
            outcome, token = await guard.begin(
                jti=jti, citizen=citizen, terminal_id=terminal_id, key=key
            )
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome is not Outcome.UNAVAILABLE and outcome is not Outcome.BUSY:
                guard.end_soon(
                    token=token,
                    jti=jti,
                    citizen=citizen,
                    terminal_id=terminal_id,
                    key=key,
                    used=True,
                    jti_ttl_ms=65_000,
                )

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(till(t) for t in range(1, args.concurrency + 1)))
    await guard.drain()
    return {
        "seconds": time.perf_counter() - started,
        "client_cpu_s": time.process_time() - cpu,
        "outcomes": outcomes,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="voucher-bench-guard-"))
    server: Any
    client: aioredis.Redis | RedisCluster
    if args.cluster:
        server = embedded.EmbeddedRedisCluster(folder)
        server.start()
        ports, socket = server.ports, None
        client = RedisCluster.from_url(server.url)
        await client.initialize()
    else:
        server = embedded.EmbeddedRedis(folder)
        server.start()
        ports, socket = [], str(server.socket)
        client = aioredis.Redis.from_url(server.url)
    try:
        guard = Guard(client)
        warm = argparse.Namespace(**{**vars(args), "redemptions": 1000})
        await drive(guard, warm)
        before = redis_totals(ports, socket)
        result = await drive(guard, args)
        after = redis_totals(ports, socket)
    finally:
        await client.aclose()
        server.stop()
    n = args.redemptions
    return {
        "redis": "cluster of 3 masters" if args.cluster else "one redis-server",
        "redemptions": n,
        "concurrency": args.concurrency,
        "per_second": round(n / result["seconds"]),
        "redis_cpu_us_per_redemption": round((after["cpu_s"] - before["cpu_s"]) / n * 1e6, 1),
        "scripts_per_redemption": round((after["script_calls"] - before["script_calls"]) / n, 2),
        "client_cpu_us_per_redemption": round(result["client_cpu_s"] / n * 1e6, 1),
        "outcomes": {str(k): v for k, v in result["outcomes"].items()},
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
