#!/usr/bin/env python3
"""What a redemption costs with 1, 2 and 4 server processes and 16, 64 and 256 tills
(issue 15), rerunnable, bounded in time.

    .venv/bin/python scripts/bench_scaling.py [--processes 1,2,4] [--terminals 16,64,256]
        [--duration 15] [--json-out FILE] [any option of scripts/bench_redeem.py]

Seeds the ledger once, as ``scripts/bench_redeem.py`` does (with as many terminals as the
largest count needs), then for each number of tills runs pgbench ``redeem.sql`` with as
many clients (at most ``--pgbench-max-clients``: PostgreSQL's ``max_connections`` caps it,
and the report says when it did) and, for each number of server processes, the real server
under that many tills, each cell on other citizens (its own load generator seed). The
server's PostgreSQL pool is shared out among its processes (``--pg-connections`` in all), so
four processes hold no more connections than one. Each cell: redemptions/s, redeem p50 and
p99, CPU microseconds per redemption of the server, the PostgreSQL backends and the whole
machine, calls per batched round trip, and the ratio to pgbench at the same clients. The
ledger is checked at the end (no voucher spent twice).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench_redeem as bench


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, argparse.Namespace]:
    p = argparse.ArgumentParser(
        prog="bench_scaling.py",
        description="The redemption benchmark over server processes x tills.",
        epilog="Other options are those of scripts/bench_redeem.py (URLs, data set, ...).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--processes", default="1,2,4", help="server processes, comma-separated")
    p.add_argument("--terminals", default="16,64,256", help="tills, comma-separated")
    p.add_argument(
        "--pg-connections",
        type=int,
        default=32,
        help="the server's PostgreSQL pool, all processes together (the till's batch pool "
        "comes on top: 6 a process)",
    )
    p.add_argument(
        "--pgbench-max-clients",
        type=int,
        default=64,
        help="pgbench clients at most (each is a PostgreSQL connection)",
    )
    p.add_argument("--json-out", type=Path, help="write all results here as JSON")
    own, rest = p.parse_known_args(argv)
    own.process_counts = [int(n) for n in own.processes.split(",")]
    own.terminal_counts = [int(n) for n in own.terminals.split(",")]
    if "--duration" not in rest:
        rest += ["--duration", "15"]
    # enough terminals for the largest count (each till signs in with its own)
    rest += ["--concurrency", str(max(own.terminal_counts))]
    return own, bench.parse_args(rest)


def cell(measured: dict[str, Any], pgb: dict[str, Any] | None) -> dict[str, Any]:
    load = measured["load"]
    ok = max(1, load["redemptions_ok"])
    cpu = load["cpu_seconds"]

    def us(group: str) -> float:
        return float(round(cpu.get(group, {}).get("cpu", 0.0) * 1e6 / ok))

    redeem = load["latency"]["redeem"]
    met = bench.targets(load, pgb)
    return {
        "redemptions_per_s": round(load["redemptions_per_s"]),
        "redeem_p50_ms": redeem.get("p50_ms"),
        "redeem_p99_ms": redeem.get("p99_ms"),
        "us_per_redemption": {
            "server": us("server (python)"),
            "postgres": us("postgres backends"),
            "load generator": us("load generator"),
            "machine": us("machine busy (all cores)"),
            "other processes": us("other processes"),
        },
        "batch_sizes": {k: v["mean"] for k, v in measured["batch_sizes"].items()},
        "ratio_vs_pgbench": met["ratio_vs_pgbench"],
        "client_errors": load.get("client_errors", {}),
        "outcomes": load.get("outcomes", {}),
        "noise": round(bench.noise_share(cpu), 3),
    }


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"## Scaling, {results['started_at']}",
        "",
        f"`{results['command']}`",
        "",
        "| processes | tills | redemptions/s | redeem p50 / p99 ms | µs CPU per redemption: "
        "server / PostgreSQL / machine | calls per batch: read / write / Redis "
        "| pgbench tps (clients) | ratio | other processes |",
        "|---:|---:|---:|---|---|---|---:|---:|---:|",
    ]
    for row in results["cells"]:
        c, us, b = row["cell"], row["cell"]["us_per_redemption"], row["cell"]["batch_sizes"]
        pgb = results["pgbench"].get(str(row["terminals"])) or {}
        ratio = c["ratio_vs_pgbench"]
        lines.append(
            f"| {row['processes']} | {row['terminals']} | {c['redemptions_per_s']:,} "
            f"| {ms(c['redeem_p50_ms'])} / {ms(c['redeem_p99_ms'])} "
            f"| {us['server']:,.0f} / {us['postgres']:,.0f} / {us['machine']:,.0f} "
            f"| {b.get('context_read', '-')} / {b.get('redeem_write', '-')} / "
            f"{b.get('redis', '-')} "
            f"| {bench.fmt(pgb.get('tps'))} ({pgb.get('clients', '-')}) "
            f"| {'n/a' if ratio is None else f'{ratio:.2f}'} | {c['noise']:.0%} |"
        )
    ledger = results["ledger"]
    lines += [
        "",
        f"Ledger after all runs: {ledger['redemptions']:,} redemptions, "
        f"{ledger['double_spent']} double spends -> "
        f"{'consistent' if ledger['consistent'] else 'INCONSISTENT'}.",
    ]
    return "\n".join(lines)


def run(own: argparse.Namespace, args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    children = bench.Children()
    work = Path(tempfile.mkdtemp(prefix="bench_scaling."))
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        prep = asyncio.run(bench.prepare(args, children, work))
        rig = bench.make_rig(args, children, work, prep.pop("terminal_credentials"))
        cells: list[dict[str, Any]] = []
        references: dict[str, Any] = {}
        for terminals in own.terminal_counts:
            pgb = None
            if not args.skip_pgbench:
                clients = min(terminals, own.pgbench_max_clients)
                pgb = bench.reference(args, clients)
                pgb["clients"] = clients
                references[str(terminals)] = {
                    k: pgb.get(k) for k in ("tps", "latency_avg_ms", "clients", "attempts")
                }
            for processes in own.process_counts:
                measured = bench.serve_and_load(
                    rig,
                    processes=processes,
                    concurrency=terminals,
                    pool_max=max(2, own.pg_connections // processes),
                    seed=args.seed + len(cells),  # other citizens in each cell
                )
                one = cell(measured, pgb)
                cells.append({"processes": processes, "terminals": terminals, "cell": one})
                bench.log(f"cell {processes} x {terminals}: {json.dumps(one)}")
        return {
            "started_at": started_at,
            "command": " ".join([".venv/bin/python", "scripts/bench_scaling.py", *argv]),
            **prep,
            "cells": cells,
            "pgbench": references,
            "ledger": asyncio.run(bench.check_ledger(args.database_url)),
        }
    finally:
        children.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    own, args = parse_args(argv)
    results = run(own, args, argv)
    print()
    print(markdown(results))
    if own.json_out:
        own.json_out.parent.mkdir(parents=True, exist_ok=True)
        own.json_out.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
        bench.log(f"results written to {own.json_out}")
    return 0 if results["ledger"]["consistent"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
