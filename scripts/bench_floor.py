#!/usr/bin/env python3
"""The floor under the redemption benchmark: what aiohttp alone costs per quote + redeem pair
(issue 15), rerunnable, bounded in time.

    .venv/bin/python scripts/bench_floor.py [--processes 2] [--concurrency 64]
        [--duration 20] [--json-out FILE]

Serves ``bench.floor_serve`` (a bare aiohttp app answering canned bodies of the real answers'
size: no PostgreSQL, Redis, rules, middleware or metrics) as ``--processes`` processes
sharing the port on uvloop, drives it with the benchmark's own load generator
(``bench.loadgen``: the same tills, requests and QR codes as ``scripts/bench_redeem.py``) and
reads every process's CPU from ``/proc``. The server's CPU per pair is the least any server
on aiohttp can spend on one redemption with its quote, on this machine, before doing any of
the work; set it beside ``bench_redeem.py``'s server figure and the budget that 0.7 x
pgbench leaves (docs/BENCHMARKS.md). Traffic stays on loopback; every child is stopped on
the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench_redeem as bench
from bench.serve import new_qr_key


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench_floor.py",
        description="aiohttp's own cost per quote + redeem pair, under the benchmark's tills.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    p.add_argument("--concurrency", type=int, default=64, help="tills")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--token-rate", type=float, default=6000.0, help="QR codes pre-minted per s")
    p.add_argument("--wait-quiet", type=float, default=120.0)
    p.add_argument("--json-out", type=Path)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    children = bench.Children()
    try:
        port = bench.free_port()
        base_url = f"http://127.0.0.1:{port}"
        cfg = {"host": "127.0.0.1", "port": port, "processes": args.processes,
               "pid_file": str(work / "server.pid")}  # fmt: skip
        (work / "server.json").write_text(json.dumps(cfg))
        log_path = work / "server.log"
        bench.log(f"starting bare aiohttp on {base_url} ({args.processes} processes)")
        with log_path.open("wb") as out:
            server = children.start(
                [sys.executable, "-m", "bench.floor_serve", str(work / "server.json")],
                cwd=bench.ROOT, env=bench.CHILD_ENV, stdout=out, stderr=out,
            )  # fmt: skip
        asyncio.run(bench.wait_ready(base_url, server, log_path, 60))
        quiet = bench.wait_quiet(args.wait_quiet)
        pids = [(work / "server.pid").read_text().strip()]
        pids += (work / "server.pid.extra").read_text().split()
        roles = dict.fromkeys(pids, "server (python)")
        roles[str(os.getpid())] = "bench orchestrator"
        # the load generator's citizens: only their ids matter here (the answers are canned)
        (work / "citizens.json").write_text(json.dumps(list(range(1, 100_001))))
        load_cfg = {
            "base_url": base_url,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "duration": args.duration,
            "seed": 1,
            "run_tag": uuid.uuid4().hex[:6].upper(),
            "citizens_path": str(work / "citizens.json"),
            "terminals": [[i + 1, "floor"] for i in range(args.concurrency)],
            **new_qr_key(work),
            "token_rate": args.token_rate,
            "sign_workers": os.cpu_count() or 2,
            "roles": roles,
            "database": "-",
        }
        (work / "loadgen.json").write_text(json.dumps(load_cfg))
        bench.log(f"load: {args.concurrency} tills, warm-up {args.warmup:.0f} s, "
                  f"measuring {args.duration:.0f} s ...")  # fmt: skip
        loadgen = children.start(
            [sys.executable, "-m", "bench.loadgen", str(work / "loadgen.json"),
             str(work / "load.json")], cwd=bench.ROOT, env=bench.CHILD_ENV,
        )  # fmt: skip
        if loadgen.wait(args.warmup + args.duration + 180) != 0:
            raise SystemExit("the load generator failed")
        load = json.loads((work / "load.json").read_text())
        return {"load": load, "quiet_check": quiet, "processes": args.processes}
    finally:
        children.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, Any], argv: list[str]) -> str:
    load = results["load"]
    pairs = load["redemptions_ok"] or 1
    cpu = load["cpu_seconds"]
    server = cpu.get("server (python)", {}).get("cpu", 0.0)
    lines = [
        f"## aiohttp's floor, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "`.venv/bin/python scripts/bench_floor.py " + " ".join(argv) + "`",
        "",
        f"Code: commit {bench.git_revision()}. {results['processes']} server processes, "
        f"{load['concurrency']} tills. Pairs/s {load['redemptions_per_s']:,.0f}; "
        f"server CPU per quote + redeem pair **{server * 1e6 / pairs:,.0f} µs**.",
        "",
        "| process group | CPU s | of which kernel | share of capacity | CPU us per pair |",
        "|---|---:|---:|---:|---:|",
        *bench.cpu_rows(cpu, pairs),
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    results = run(args)
    text = report(results, argv)
    print(text)
    if args.json_out:
        args.json_out.write_text(json.dumps({**results, "report": text}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
