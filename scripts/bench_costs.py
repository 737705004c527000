#!/usr/bin/env python3
"""CPU per quote, per checkout (quote + redemption) and per claim, for the capacity model
(docs/SCALING.md, issue 14); rerunnable, bounded in time.

    .venv/bin/python scripts/bench_costs.py [--duration 15] [--json-out FILE]

PostgreSQL and Redis: ``--database-url`` / ``--redis-url``, or embedded ones started here
(under ``.data/bench-costs``). The database ``voucher_costs`` is dropped, recreated and
seeded with COPY: ``bench.seed``'s citizens with vouchers, shops and tills, and
``ops.loadtest``'s unclaimed certificates. The real server (``bench.serve``, one process per
core, its development identity provider on for the claims' sign-ins) then gets one
operation at a time from a closed loop (``bench.costs``): ``/proc`` CPU per group over the
measured window, divided by the operations that succeeded: server processes, the database's
PostgreSQL backends, this run's redis-server, and the machine. A redemption alone is a
checkout less a quote.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
for _path in (str(ROOT), str(SCRIPTS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import asyncpg  # noqa: E402
import bench_overload as bo  # noqa: E402
import bench_redeem as br  # noqa: E402
from bench.seed import seed  # noqa: E402
from bench.serve import new_qr_key  # noqa: E402

from ops import loadtest  # noqa: E402
from ops.embedded import services  # noqa: E402
from server.campaign_files import load_bundled_campaign  # noqa: E402

GROUPS = {
    "server": "server (python)",
    "postgres": "postgres backends",
    "redis": "redis (this run)",
    "generator": "load generator",
    "machine": "machine busy (all cores)",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_costs.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--database-url", default="")
    p.add_argument("--redis-url", default="")
    p.add_argument("--citizens", type=int, default=20_000)
    p.add_argument("--claims", type=int, default=8_000, help="unclaimed certificates seeded")
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds per operation")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--server-processes", type=int, default=os.cpu_count() or 1)
    p.add_argument("--json-out", type=Path)
    return p.parse_args(argv)


async def prepare(url: str, args: argparse.Namespace, key: bytes, work: Path) -> dict[str, Any]:
    await br.recreate_database(br.with_database(url, "postgres"), br.database_of(url))
    seeded = await seed(url, citizens=args.citizens, merchants=200, terminals=200)
    (work / "citizens.json").write_text(json.dumps(seeded.citizen_ids))
    campaign = load_bundled_campaign("liaocheng-demo")
    cfg = loadtest.Config(
        server="",
        database_url=url,
        id_hash_key=key,
        campaign_id=campaign.id,
        certificates=args.claims,
        preclaimed=0.0,
        merchants=1,
        terminals=1,
    )
    conn = await asyncpg.connect(url)
    try:
        unclaimed = await loadtest.seed(conn, cfg, campaign, datetime.now(UTC))
    finally:
        await conn.close()
    return {"terminals": seeded.terminals, "unclaimed": list(unclaimed.unclaimed)}


def server_roles(work: Path, rd: Any) -> dict[int, str]:
    """The server's processes and this run's redis-server, by pid, for ``bench.procstat``."""
    roles = {int((work / "server.pid").read_text()): GROUPS["server"]}
    extra = work / "server.pid.extra"
    if extra.exists():
        roles.update(dict.fromkeys(map(int, extra.read_text().split()), GROUPS["server"]))
    if rd is not None:
        roles[int(rd.pid_file.read_text())] = GROUPS["redis"]
    return roles


async def claims_made(url: str) -> dict[str, float]:
    """The claims of the run (of the LT-… certificates): how many, and vouchers each."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS claims, coalesce(avg(c.voucher_count), 0)::float AS vouchers"
            " FROM claims c JOIN certificates t ON t.id = c.certificate_id"
            " WHERE t.cert_no LIKE $1",
            f"{loadtest.TAG}%",
        )
    finally:
        await conn.close()
    assert row is not None
    return {"claims": row["claims"], "vouchers_per_claim": round(row["vouchers"], 1)}


def per_operation(result: dict[str, Any]) -> dict[str, float | None]:
    done = result["done"] or 0
    cpu = result["cpu_seconds"]
    return {
        name: (round(cpu.get(group, {}).get("cpu", 0.0) / done * 1e6) if done else None)
        for name, group in GROUPS.items()
    }


def report(r: dict[str, Any]) -> str:
    rows = []
    for op in ("quote", "checkout", "claim", "refused"):
        one = r["runs"][op]
        us = r["us"][op]
        rows.append(
            f"| {op} | {one['per_s']:,.0f} | {us['server']} | {us['postgres']} | "
            f"{us['redis']} | {us['generator']} | {us['machine']} | "
            f"{sum(one['failed'].values())} |"
        )
    redeem = r["us"]["redemption (checkout - quote)"]
    rows.append(
        f"| redemption (checkout - quote) | | {redeem['server']} | {redeem['postgres']} | "
        f"{redeem['redis']} | | {redeem['machine']} | |"
    )
    made = r["claims_made"]
    return "\n".join(
        [
            f"command: `{r['command']}`",
            f"claims made: {made['claims']:,}, {made['vouchers_per_claim']} vouchers each",
            "",
            "| operation | per second | server µs | PostgreSQL µs | Redis µs | "
            "load generator µs | machine µs | failed |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    children = br.Children()
    work = Path(tempfile.mkdtemp(prefix="bench_costs."))
    env = {k: v for k, v in os.environ.items() if k.startswith("VOUCHER_")}
    if args.database_url:
        env["VOUCHER_DATABASE_URL"] = args.database_url
    if args.redis_url:
        env["VOUCHER_REDIS_URL"] = args.redis_url
    try:
        with services(ROOT / ".data" / "bench-costs", env) as (urls, _, rd):
            url = br.with_database(urls.database_url, "voucher_costs")
            redis_url = urls.redis_url + ("&" if "?" in urls.redis_url else "?") + "db=15"
            id_key = os.urandom(32)
            br.log("seeding ...")
            seeded = asyncio.run(prepare(url, args, id_key, work))
            qr_key = new_qr_key(work)
            port = br.free_port()
            base_url = f"http://127.0.0.1:{port}"
            server_cfg = {
                "database_url": url, "redis_url": redis_url,
                "id_hash_key": base64.b64encode(id_key).decode(),
                "access_token_secret": base64.b64encode(os.urandom(32)).decode(),
                **qr_key, "host": "127.0.0.1", "port": port,
                "pg_pool_max": 16, "pid_file": str(work / "server.pid"),
                "processes": args.server_processes, "dev_idp": True,
                "shed_target_ms": 1e9,  # costs of serving, not of shedding
            }  # fmt: skip
            (work / "server.json").write_text(json.dumps(server_cfg))
            log_path = work / "server.log"
            with log_path.open("wb") as out:
                wrapper = children.start(
                    [sys.executable, "-m", "bench.serve", str(work / "server.json")],
                    cwd=ROOT, env=bo.CHILD_ENV, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            asyncio.run(br.wait_ready(base_url, wrapper, log_path))
            roles = server_roles(work, rd)
            common = {
                "base_url": base_url, "citizens_path": str(work / "citizens.json"),
                **qr_key, "seed": 1, "terminals": seeded["terminals"],
                "unclaimed": seeded["unclaimed"], "roles": roles,
                "database": br.database_of(url), "concurrency": args.concurrency,
                "warmup": args.warmup, "duration": args.duration,
                "run_tag": uuid.uuid4().hex[:6].upper(),
            }  # fmt: skip
            runs = {}
            for op in ("quote", "checkout", "claim"):
                br.log(f"{op}: {args.duration:.0f} s ...")
                runs[op] = bo.run_child(children, "bench.costs", {**common, "operation": op},
                                        work, op, args.warmup + args.duration + 300)  # fmt: skip
            br.stop_server(int((work / "server.pid").read_text()), wrapper)
            # a refusal: the same server admitting one quote at a time per process
            narrow = {"shed_max_in_flight": 2, "shed_initial_in_flight": 2,
                      "shed_queue_wait_ms": 0}  # fmt: skip
            (work / "server.json").write_text(json.dumps({**server_cfg, **narrow}))
            with log_path.open("ab") as out:
                wrapper = children.start(
                    [sys.executable, "-m", "bench.serve", str(work / "server.json")],
                    cwd=ROOT, env=bo.CHILD_ENV, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            asyncio.run(br.wait_ready(base_url, wrapper, log_path))
            roles = server_roles(work, rd)
            br.log(f"refused: {args.duration:.0f} s ...")
            runs["refused"] = bo.run_child(
                children, "bench.costs",
                {**common, "roles": roles, "operation": "refused", "run_tag": "R"},
                work, "refused", args.warmup + args.duration + 300,
            )  # fmt: skip
            br.stop_server(int((work / "server.pid").read_text()), wrapper)
            ledger = asyncio.run(br.check_ledger(url))
            claimed = asyncio.run(claims_made(url))
        us = {op: per_operation(one) for op, one in runs.items()}
        # a refusal: the server's CPU less that of the quotes it served, per 503
        refused = runs["refused"]
        served_us = refused["admitted"] * (us["quote"]["server"] or 0)
        server_s = refused["cpu_seconds"].get(GROUPS["server"], {}).get("cpu", 0.0)
        us["refused"]["server"] = (
            round((server_s * 1e6 - served_us) / refused["done"]) if refused["done"] else None
        )
        for group in ("postgres", "redis", "machine"):  # a refusal asks neither: not measured
            us["refused"][group] = None
        us["redemption (checkout - quote)"] = {
            k: (None if us["checkout"][k] is None or us["quote"][k] is None
                else us["checkout"][k] - us["quote"][k])  # type: ignore[operator]
            for k in GROUPS
        }  # fmt: skip
        return {
            "command": " ".join([".venv/bin/python", "scripts/bench_costs.py", *argv]),
            "machine": {"nproc": os.cpu_count(), "git": br.git_revision()},
            "runs": runs,
            "us": us,
            "ledger": ledger,
            "claims_made": claimed,
        }
    finally:
        children.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    results = run(args, argv)
    print()
    print(report(results))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2, default=str))
    return 0 if results["ledger"]["consistent"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
