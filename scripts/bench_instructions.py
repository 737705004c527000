#!/usr/bin/env python3
"""Instructions per redemption of one server process, counted by Valgrind (issue 15).

    .venv/bin/python scripts/bench_instructions.py [--concurrency 32] [--window 25]
        [--runs 1] [--json-out FILE] [any option of scripts/bench_redeem.py]

CPU seconds from ``/proc`` tell what the machine did, but on a machine that other work
shares they move by tens of percent between two runs of the same code: caches, preemption
and the hypervisor all count. The number of instructions a process runs does not depend on
any of that. So this runs the real server (one process, uvloop, the same ``create_app``
as ``scripts/bench_redeem.py``) under ``valgrind --tool=callgrind`` with instrumentation
off, drives it with the same load generator, switches counting on for ``--window``
seconds once the tills are at work, and divides the instructions counted by the
redemptions the ledger gained meanwhile. The calls per batched round trip in the window
are printed too: a slower server batches more, and a bill in a bigger batch costs less.

Valgrind slows the server about fifty-fold, so the window holds a few hundred
redemptions; figures agree within about 1 % from run to run. What they leave out: the
kernel's work for the server (system calls) and PostgreSQL's and Redis's work. Needs
``valgrind`` (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import bench_redeem as bench


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, argparse.Namespace]:
    p = argparse.ArgumentParser(
        prog="bench_instructions.py",
        description="Instructions per redemption of one server process (Valgrind).",
        epilog="Other options are those of scripts/bench_redeem.py (URLs, data set, ...).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--mode",
        choices=["server", "in-process"],
        default="server",
        help="server: the whole server under the load generator; in-process: the app's own "
        "dispatch of prepared requests, no HTTP (scripts/bench/inprocess.py)",
    )
    p.add_argument("--pairs", type=int, default=500, help="in-process: quote+redeem pairs")
    p.add_argument("--window", type=float, default=25.0, help="seconds counted")
    p.add_argument(
        "--settle", type=float, default=5.0, help="seconds of load before, once bills come"
    )
    p.add_argument("--runs", type=int, default=1, help="measurements, each its own server")
    p.add_argument("--json-out", type=Path, help="write all results here as JSON")
    own, rest = p.parse_known_args(argv)
    if "--concurrency" not in rest:
        rest += ["--concurrency", "32"]
    # the load must outlast signing in, settling, the window and the dump; the server does
    # tens of bills a second under Valgrind, so few QR tokens need signing beforehand
    rest += ["--warmup", "1", "--duration", str(own.settle + own.window + 90)]
    if "--token-rate" not in rest:
        rest += ["--token-rate", "200"]
    rest += ["--wait-quiet", "0", "--skip-pgbench"]
    return own, bench.parse_args(rest)


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)  # noqa: S607


async def redemptions(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM redemptions"))
    finally:
        await conn.close()


def counted(out: Path) -> int:
    """The instructions of the dump (``totals:`` of the part written on request)."""
    totals = [
        int(line.split()[1])
        for part in sorted(out.parent.glob(out.name + "*"))
        for line in part.read_text(errors="replace").splitlines()
        if line.startswith("totals:")
    ]
    return max(totals, default=0)


def window(own: Any, args: Any, out: Path) -> Any:
    def measure(server_pid: int, base_url: str) -> dict[str, Any]:
        # the tills at work: signed in, past their first bills; then a few seconds more
        start = asyncio.run(redemptions(args.database_url))
        deadline = time.monotonic() + 600
        while asyncio.run(redemptions(args.database_url)) < start + 2 * args.concurrency:
            if time.monotonic() > deadline:
                raise SystemExit("the tills did not start redeeming within 10 minutes")
            time.sleep(1)
        time.sleep(own.settle)
        before = asyncio.run(bench.batch_sizes(base_url))
        callgrind_control("-i", "on", str(server_pid))
        first = asyncio.run(redemptions(args.database_url))
        time.sleep(own.window)
        last = asyncio.run(redemptions(args.database_url))
        callgrind_control("-i", "off", str(server_pid))
        after = asyncio.run(bench.batch_sizes(base_url))
        callgrind_control("-d", str(server_pid))
        time.sleep(2)  # the dump is written
        done = last - first
        sizes = {
            kind: round(
                (v["calls"] - before.get(kind, {}).get("calls", 0))
                / max(1.0, v["batches"] - before.get(kind, {}).get("batches", 0)),
                2,
            )
            for kind, v in after.items()
        }
        return {
            "window_redemptions": done,
            "instructions": counted(out),
            "instructions_per_redemption": round(counted(out) / max(1, done)),
            "window_batch_sizes": sizes,
        }

    return measure


def in_process(own: Any, rig: bench.Rig, out: Path, *, seed: int) -> dict[str, Any]:
    """``bench.inprocess`` under callgrind: instructions per quote+redeem pair."""
    args = rig.args
    cfg = {
        "server": bench.server_config(rig, port=0, processes=1, pool_max=args.pg_pool_max),
        "terminals": rig.creds,
        "citizens_path": str(rig.work / "citizens.json"),
        **rig.qr_key,
        "pairs": own.pairs,
        "concurrency": args.concurrency,
        "seed": seed,
        "count": True,
    }
    (rig.work / "inprocess.json").write_text(json.dumps(cfg))
    result = rig.work / "inprocess.result.json"
    cmd = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
        sys.executable, "-m", "bench.inprocess", str(rig.work / "inprocess.json"), str(result),
    ]  # fmt: skip
    done = subprocess.run(
        cmd, cwd=bench.ROOT, env=bench.CHILD_ENV, capture_output=True, text=True, timeout=3600
    )
    if done.returncode != 0:
        raise SystemExit(f"bench.inprocess failed:\n{done.stderr[-3000:]}")
    found = json.loads(result.read_text())
    return {
        "window_redemptions": found["pairs"],
        "instructions": counted(out),
        "instructions_per_redemption": round(counted(out) / found["pairs"]),
        "window_batch_sizes": found["batch_sizes"],
        "statuses": found["statuses"],
    }


def main(argv: list[str]) -> int:
    own, args = parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    children = bench.Children()
    work = Path(tempfile.mkdtemp(prefix="bench_instructions."))
    runs: list[dict[str, Any]] = []
    try:
        prep = asyncio.run(bench.prepare(args, children, work))
        rig = bench.make_rig(args, children, work, prep.pop("terminal_credentials"))
        for n in range(own.runs):
            out = work / f"callgrind.{n}.out"
            if own.mode == "in-process":
                runs.append(in_process(own, rig, out, seed=args.seed + n))
                bench.log(f"run {n + 1}: {json.dumps(runs[-1])}")
                continue
            measured = bench.serve_and_load(
                rig,
                processes=1,
                concurrency=args.concurrency,
                pool_max=args.pg_pool_max,
                seed=args.seed + n,
                wrap=["valgrind", "--tool=callgrind", "--instr-atstart=no",
                      f"--callgrind-out-file={out}"],
                during=window(own, args, out),
            )  # fmt: skip
            one = {k: measured[k] for k in measured if k.startswith(("window", "instructions"))}
            runs.append(one)
            bench.log(f"run {n + 1}: {json.dumps(one)}")
    finally:
        children.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("| run | redemptions counted | instructions per redemption | calls per batch |")
    print("|---:|---:|---:|---|")
    for n, one in enumerate(runs, 1):
        sizes = ", ".join(f"{k} {v}" for k, v in one["window_batch_sizes"].items())
        print(
            f"| {n} | {one['window_redemptions']:,} | "
            f"{one['instructions_per_redemption']:,} | {sizes} |"
        )
    if own.json_out:
        own.json_out.write_text(json.dumps({"machine": prep["machine"], "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
