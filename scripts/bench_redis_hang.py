#!/usr/bin/env python3
"""Redemptions per second with Redis healthy, then hung (SIGSTOP), against the real server
(issue 9, item 11): rerunnable, bounded in time, loopback only.

    PYTHONPATH=. .venv/bin/python scripts/bench_redis_hang.py [--duration 10] [--processes 1]
        [--json-out F]

1. starts embedded PostgreSQL and a redis-server of its own under ``--data-dir`` (default
   ``.data/bench-redis-hang``), recreates the database ``voucher_hang`` and seeds it
   (``scripts/bench/seed.py``: citizens with vouchers, merchants, terminals);
2. starts the server (``bench.serve``, one process), runs the load generator
   (``bench.loadgen``: quote + redeem at ``--concurrency`` tills) for the healthy window;
3. freezes Redis with SIGSTOP and runs the load generator again for the same window, then
   thaws Redis (SIGCONT) whatever happens;
4. checks the ledger (no voucher spent twice, counts agree), prints both rates, their ratio
   (target >= 0.5) and the breaker's metrics (of whichever process answered ``/metrics``),
   the deadlocks PostgreSQL broke during the run, and exits 1 if the ledger is inconsistent (or,
   with ``--check``, if the ratio misses the target).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
for _path in (str(ROOT), str(SCRIPTS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
import bench_redeem as br  # noqa: E402
from bench.seed import seed  # noqa: E402
from bench.serve import new_qr_key  # noqa: E402

from ops.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402

TARGET_RATIO = 0.5
DATABASE = "voucher_hang"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_redis_hang.py", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=ROOT / ".data" / "bench-redis-hang")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per window")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--concurrency", type=int, default=32, help="tills")
    p.add_argument("--citizens", type=int, default=20_000)
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="server processes on one port (with Redis hung, each serialises a citizen's "
        "bills only in itself: the ledger fences across them)",
    )
    p.add_argument("--json-out", type=Path)
    p.add_argument("--check", action="store_true", help="exit 1 below the target ratio")
    return p.parse_args(argv)


async def breaker_metrics(base_url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as session, session.get(base_url + "/metrics") as resp:
        text = await resp.text()
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("voucher_redis_breaker_state", "voucher_redis_skipped_total") or name in (
            "voucher_redis_failures_total",
        ):
            out[name] = float(value)
    return out


async def deadlocks(database_url: str) -> int:
    """Deadlocks PostgreSQL broke in the database so far (its statistics, flushed within ~1 s)."""
    conn = await asyncpg.connect(database_url)
    try:
        found = await conn.fetchval(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        )
        return int(found or 0)
    finally:
        await conn.close()


def run_load(cfg: dict[str, Any], work: Path, name: str, budget: float) -> dict[str, Any]:
    path = work / f"{name}.json"
    (work / f"{name}.cfg.json").write_text(json.dumps(cfg))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen", str(work / f"{name}.cfg.json"), str(path)],
        cwd=ROOT,
        env=br.CHILD_ENV,
    )
    try:
        rc = proc.wait(budget)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise SystemExit(f"the load generator ({name}) did not finish in {budget:.0f} s") from None
    if rc != 0:
        raise SystemExit(f"the load generator ({name}) failed ({rc})")
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    pg = EmbeddedPostgres(args.data_dir / "postgres")
    rd = EmbeddedRedis(args.data_dir / "redis")
    children = br.Children()
    work = Path(tempfile.mkdtemp(prefix="bench_redis_hang."))
    redis_pid: int | None = None
    try:
        admin_url = pg.start()
        redis_url = rd.start()
        assert rd._process is not None
        redis_pid = rd._process.pid
        url = br.with_database(admin_url, DATABASE)
        asyncio.run(br.recreate_database(admin_url, DATABASE))
        br.log(f"seeding {args.citizens:,} citizens ...")
        seeded = asyncio.run(
            seed(url, citizens=args.citizens, merchants=100, terminals=args.concurrency)
        )
        (work / "citizens.json").write_text(json.dumps(seeded.citizen_ids))
        qr_key = new_qr_key(work)
        port = br.free_port()
        base_url = f"http://127.0.0.1:{port}"
        server_cfg = {
            "database_url": url,
            "redis_url": redis_url,
            "id_hash_key": base64.b64encode(os.urandom(32)).decode(),
            "access_token_secret": base64.b64encode(os.urandom(32)).decode(),
            **qr_key,
            "host": "127.0.0.1",
            "port": port,
            "pid_file": str(work / "server.pid"),
            "processes": args.processes,
        }
        (work / "server.json").write_text(json.dumps(server_cfg))
        server_log = work / "server.log"
        with server_log.open("wb") as out:
            wrapper = children.start(
                [sys.executable, "-m", "bench.serve", str(work / "server.json")],
                cwd=ROOT,
                env=br.CHILD_ENV,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        asyncio.run(br.wait_ready(base_url, wrapper, server_log))
        load_cfg = {
            "base_url": base_url,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "duration": args.duration,
            "seed": 1,
            "citizens_path": str(work / "citizens.json"),
            "terminals": seeded.terminals,
            **qr_key,
            "token_rate": 3000.0,
            "sign_workers": os.cpu_count() or 2,
            "roles": {},
            "database": DATABASE,
        }
        budget = args.warmup + args.duration + 120
        br.log(f"healthy Redis: {args.concurrency} tills for {args.duration:.0f} s ...")
        healthy = run_load(
            {**load_cfg, "run_tag": uuid.uuid4().hex[:6].upper()}, work, "healthy", budget
        )
        br.log(f"healthy: {healthy['redemptions_per_s']:,.1f} redemptions/s")
        br.log("Redis frozen (SIGSTOP) ...")
        os.kill(redis_pid, signal.SIGSTOP)
        hung_started = time.monotonic()
        try:
            hung = run_load(
                {**load_cfg, "run_tag": uuid.uuid4().hex[:6].upper(), "seed": 2},
                work,
                "hung",
                budget,
            )
        finally:
            os.kill(redis_pid, signal.SIGCONT)
        hung_s = time.monotonic() - hung_started
        br.log(f"hung ({hung_s:.0f} s frozen): {hung['redemptions_per_s']:,.1f} redemptions/s")
        breaker = asyncio.run(breaker_metrics(base_url))
        br.stop_server(int((work / "server.pid").read_text()), wrapper)
        ledger = asyncio.run(br.check_ledger(url))
        time.sleep(1.5)  # the backends' statistics reach pg_stat_database within a second
        broken = asyncio.run(deadlocks(url))
    finally:
        if redis_pid is not None:
            with suppress(ProcessLookupError):
                os.kill(redis_pid, signal.SIGCONT)
        children.stop_all()
        rd.stop()
        pg.close()
    ratio = hung["redemptions_per_s"] / max(healthy["redemptions_per_s"], 1e-9)
    results = {
        "command": " ".join(["scripts/bench_redis_hang.py", *argv]),
        "healthy": {
            k: healthy[k] for k in ("redemptions_per_s", "latency", "outcomes") if k in healthy
        },
        "hung": {k: hung[k] for k in ("redemptions_per_s", "latency", "outcomes") if k in hung},
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "processes": args.processes,
        "breaker": breaker,
        "deadlocks": broken,
        "ledger": ledger,
    }
    print(json.dumps(results, indent=2, default=str))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2, default=str))
    print(
        f"\nredemptions/s healthy {healthy['redemptions_per_s']:,.1f}, Redis hung "
        f"{hung['redemptions_per_s']:,.1f}: {ratio:.2f} x (target >= {TARGET_RATIO}); "
        f"{args.processes} server process(es), {broken} deadlock(s) broken; "
        f"ledger {'consistent' if ledger['consistent'] else 'INCONSISTENT'}"
    )
    if not ledger["consistent"]:
        return 1
    return 1 if args.check and ratio < TARGET_RATIO else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
