#!/usr/bin/env python3
"""Overload run (issue 14, "Shedding load instead of collapsing"), rerunnable, bounded in time.

    .venv/bin/python scripts/bench_overload.py [--overload-factor 4] [--json-out FILE]

1. PostgreSQL and Redis: ``--database-url`` / ``--redis-url``, or embedded ones started here
   (``ops/embedded.py``, under ``.data/bench-overload``); the database ``voucher_overload``
   is dropped, recreated and seeded with COPY (``bench.seed``: citizens with 10 vouchers
   each, merchants, tills with known credentials);
2. the real server (``bench.serve``: ``create_app``, one process per core on one port,
   uvloop), with its load shedding (``server/admission.py``) at ``--shed-target-ms``;
3. **the sustainable rate**: the closed-loop benchmark generator (``bench.loadgen``, 64 tills
   each waiting for its answer) for ``--calibrate`` seconds, against the server with a
   latency target it never misses (no shedding): the checkouts per second this machine
   serves now; then the server is started again with ``--shed-target-ms``;
4. **open-loop phases** (``bench.overload``, Poisson arrivals whatever the server answers):
   ``unloaded`` at ``--light`` x that rate (the unloaded p99), ``overload`` at
   ``--overload-factor`` x for ``--duration`` s, ``after`` at ``--light`` x again;
5. the server stopped, the ledger checked (``server/db/invariants.py``) and every 201 the
   generator got found in it exactly once (nothing lost, nothing a 503 refused in it);
6. a Markdown report: admitted redeem p99 in overload against 2 x the unloaded p99, what
   was shed, and how many seconds after the overload each second's p99 is back under it
   with nothing shed.

``--front nginx``: the open-loop phases go through Debian's nginx on loopback
(``bench/front.py``: upstream keep-alive, ``limit_req`` on ``POST /v1/quote`` at
``--front-rate``, by default ``--front-factor`` x the sustainable rate, its refusals the
server's own 503 ``server_busy``), the gross excess refused in front of the server's Python;
the report adds what the proxy refused and nginx's CPU. The calibration stays direct.

``--pin``: the server's side (the embedded PostgreSQL and Redis, the server, one process by
default) runs on CPU 0 only, the load generator (and nginx) on CPU 1 only, calibration
included. On a 2-core machine this is the only fair test of the server's latency: unpinned,
the generator and the proxy take their CPU from the server's cores exactly when the overload
is offered (a quarter of the machine at 4x), and admitted requests wait for a core, not for
the gate. Deployed, the load comes from other machines.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
for _path in (str(ROOT), str(SCRIPTS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
CHILD_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(SCRIPTS)]))

import asyncpg  # noqa: E402
import bench_redeem as br  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from bench import front as front_proxy  # noqa: E402
from bench.seed import seed  # noqa: E402
from bench.serve import new_qr_key  # noqa: E402

from ops.embedded import services  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench_overload.py",
        description="Offer N x the sustainable checkout rate; see what is admitted and shed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--database-url", default="", help="else an embedded PostgreSQL")
    p.add_argument("--redis-url", default="", help="else an embedded Redis (db 15 is FLUSHed)")
    p.add_argument("--citizens", type=int, default=50_000)
    p.add_argument(
        "--terminals",
        type=int,
        default=4096,
        help="tills seeded: the open loop's connections are tills, one each (bench/overload.py)",
    )
    p.add_argument("--calibrate", type=float, default=10.0, help="closed-loop seconds")
    p.add_argument("--light", type=float, default=0.25, help="x sustainable: the unloaded rate")
    p.add_argument("--overload-factor", type=float, default=4.0)
    p.add_argument("--duration", type=float, default=30.0, help="overload seconds")
    p.add_argument("--unloaded", type=float, default=15.0, help="seconds before the overload")
    p.add_argument("--after", type=float, default=20.0, help="seconds after the overload")
    p.add_argument("--shed-target-ms", type=float, default=10.0)
    p.add_argument("--shed-max-in-flight", type=int, default=256)
    p.add_argument("--shed-initial-in-flight", type=int, default=256)
    p.add_argument("--shed-queue-wait-ms", type=float, default=5.0)
    p.add_argument(
        "--server-processes", type=int, help="default: one per core (one per pinned core)"
    )
    p.add_argument(
        "--pin",
        action="store_true",
        help="server, PostgreSQL and Redis on CPU 0, load generator and nginx on CPU 1 "
        "(embedded services only)",
    )
    p.add_argument(
        "--max-connections", type=int, help="the open loop's tills at most; default --terminals"
    )
    p.add_argument(
        "--front",
        choices=("none", "nginx"),
        default="none",
        help="nginx: the open-loop phases through Debian's nginx with a limit_req on quotes",
    )
    p.add_argument(
        "--front-rate",
        type=int,
        default=0,
        help="quotes/s nginx lets through (0: --front-factor x sustainable)",
    )
    p.add_argument("--front-factor", type=float, default=0.6, help="as docker/nginx.conf")
    p.add_argument("--front-burst", type=int, default=0,
                   help="limit_req burst (0: a tenth of a second at --front-rate)")  # fmt: skip
    p.add_argument("--front-workers", type=int, default=1, help="nginx worker processes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json-out", type=Path)
    p.add_argument(
        "--profile",
        type=Path,
        help="py-spy (if installed) samples one server process during the overload phase, "
        "raw stacks written here; the report adds the top functions",
    )
    return p.parse_args(argv)


SERVER_CPUS, LOAD_CPUS = {0}, {1}  # --pin


def pin_tree(pid: int, cpus: set[int]) -> None:
    """``pid`` and every process under it on ``cpus`` only (those it starts later inherit it)."""
    os.sched_setaffinity(pid, cpus)
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = [int(c) for c in task.read_text().split()]
        except OSError:
            continue
        for child in children:
            pin_tree(child, cpus)


def run_child(
    children: br.Children,
    module: str,
    cfg: dict[str, Any],
    work: Path,
    name: str,
    budget: float,
    cpus: set[int] | None = None,
) -> dict[str, Any]:
    (work / f"{name}.json").write_text(json.dumps(cfg))
    proc = children.start(
        [sys.executable, "-m", module, str(work / f"{name}.json"), str(work / f"{name}.out")],
        cwd=ROOT,
        env=CHILD_ENV,
        # pinned from its first instruction: its signing pool inherits it
        preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
    )
    if proc.wait(budget) != 0:
        raise SystemExit(f"{module} failed ({proc.returncode})")
    return dict(json.loads((work / f"{name}.out").read_text()))


async def prepare(url: str, redis_url: str, args: argparse.Namespace, work: Path) -> list[Any]:
    await br.recreate_database(br.with_database(url, "postgres"), br.database_of(url))
    seeded = await seed(url, citizens=args.citizens, vouchers_per_citizen=10,
                        merchants=200, terminals=args.terminals)  # fmt: skip
    (work / "citizens.json").write_text(json.dumps(seeded.citizen_ids))
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    return list(seeded.terminals)


async def in_ledger(url: str, tag: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM redemptions WHERE receipt_no LIKE $1", f"O{tag}-%"
        ))  # fmt: skip
    finally:
        await conn.close()


async def in_server(base_url: str) -> dict[str, Any]:
    """One server process's own view (its /metrics, at the end): the time admitted 201
    redemptions spent inside it (the histogram's bucket holding the 99th percentile), and
    what its gates admit at once now. What the generator measures on top of that waited in
    the sockets before the server read it."""
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as session, session.get(base_url + "/metrics") as r:
        text = await r.text()
    buckets: list[tuple[float, float]] = []
    limits: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = s.labels
            if (
                s.name == "voucher_http_request_seconds_bucket"
                and labels.get("route") == "/v1/redemptions"
                and labels.get("method") == "POST"
                and labels.get("status") == "201"
            ):
                buckets.append((float(labels["le"]), s.value))
            elif s.name == "voucher_admission_limit":
                limits["process"] = round(s.value, 1)
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    p99 = next((le for le, n in buckets if total and n >= 0.99 * total), None)
    return {"redeem_201_count": total, "redeem_p99_bucket_s": p99, "limits_at_end": limits}


def recovery(per_second: dict[str, Any], starts: float, bound_ms: float) -> float | None:
    """Seconds after ``starts`` until the first second whose redeem p99 is under the bound
    and nothing was shed, from which on every second stays so."""
    good_from: int | None = None
    for second in sorted(int(s) for s in per_second):
        if second < int(starts):
            continue
        row = per_second[str(second)]
        shed = sum(n for k, n in row["outcomes"].items() if " 503 " in f"{k} ")
        p99 = row["redeem"].get("p99_ms")
        ok = shed == 0 and p99 is not None and p99 < bound_ms
        if ok and good_from is None:
            good_from = second
        elif not ok:
            good_from = None
    return None if good_from is None else max(0.0, good_from - starts)


def report(r: dict[str, Any]) -> str:
    unloaded, overload, after = r["open_loop"]["phases"]
    bound = 2 * unloaded["redeem"]["p99_ms"]

    def shed(p: dict[str, Any]) -> int:
        return sum(n for k, n in p["outcomes"].items() if " 503 " in f"{k} ")

    fronted = r.get("front") is not None
    rows = []
    for p in (unloaded, overload, after):
        quotes = sum(n for k, n in p["outcomes"].items() if k.startswith("quote"))
        ok = p["outcomes"].get("redeem 201", 0)
        by_proxy = f" ({p['front_refused']:,} by nginx)" if fronted else ""
        rows.append(
            f"| {p['name']} | {p['rate']:,.0f} | "
            f"{(p['offered'] - p['not_sent']) / p['seconds']:,.0f} | "
            f"{ok / p['seconds']:,.0f} | {quotes:,} | {shed(p):,}{by_proxy} | "
            f"{p['redeem'].get('p50_ms', '-')} / **{p['redeem'].get('p99_ms', '-')}** | "
            f"{p['generator_lag'].get('p99_ms', '-')} | {p['not_sent']} | "
            f"{sum(p['client_errors'].values())} |"
        )
    ledger = r["ledger"]
    cpu_rows = []
    for p in (unloaded, overload, after):
        cpu = p.get("cpu_seconds", {})
        capacity = cpu.get("machine capacity (all cores)", {}).get("cpu") or 1
        share = {
            group: round(100 * cpu.get(key, {}).get("cpu", 0.0) / capacity)
            for group, key in (
                ("server", "server (python)"),
                ("generator", "load generator"),
                ("postgres", "postgres backends"),
                ("redis", "redis (this run)"),
                ("other", "other processes"),
                ("busy", "machine busy (all cores)"),
                ("nginx", "nginx (front)"),
            )
        }
        nginx = f" {share['nginx']} % |" if fronted else ""
        cpu_rows.append(
            f"| {p['name']} | {share['server']} % |{nginx} {share['generator']} % | "
            f"{share['postgres']} % | {share['redis']} % | {share['other']} % | "
            f"{share['busy']} % |"
        )
    front_lines: list[str] = []
    if fronted:
        f = r["front"]
        front_lines = [
            f"- in front: Debian's {f['version']}, {f['workers']} worker(s), "
            f"`limit_req` on POST /v1/quote at **{f['rate']:,} /s** (burst {f['burst']}, "
            f"nodelay); refused {sum(p['front_refused'] for p in r['open_loop']['phases']):,} "
            f"quotes in all, the server's gate {f['server_shed_overload']:,} requests during "
            f"the overload",
            f"- nginx's CPU per request it handled: "
            f"{' / '.join(str(c) for c in f['us_per_request'])} µs "
            f"(unloaded / overload / after); a refusal costs nginx at most the overload's "
            f"**{f['us_per_refusal_at_most']} µs** (most of its requests then are refusals, "
            f"each cheaper than one it proxies)",
        ]
    return "\n".join(
        [
            f"command: `{r['command']}`",
            f"server processes: {r['machine']['server_processes']}; CPUs: "
            + (
                "; ".join(f"{who} on {cpus}" for who, cpus in r["machine"]["pinned"].items())
                if r["machine"].get("pinned")
                else "not pinned (everything shares every core)"
            ),
            f"sustainable (closed loop, 64 tills, {r['calibration']['window_s']:.0f} s): "
            f"**{r['sustainable']:,.0f} checkouts/s**, redeem p99 "
            f"{r['calibration']['latency']['redeem'].get('p99_ms')} ms",
            "",
            "| phase | offered /s | sent /s | redeemed /s | quotes answered | shed (503) | "
            "redeem p50 / p99 ms (201s) | generator lag p99 ms | not sent | client errors |",
            "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
            *rows,
            "",
            "where the machine's CPU went (share of both cores):",
            "",
            "| phase | server |"
            + (" nginx |" if fronted else "")
            + " load generator | PostgreSQL | Redis | other processes | busy |",
            "|---|---:|" + ("---:|" if fronted else "") + "---:|---:|---:|---:|---:|",
            *cpu_rows,
            "",
            f"- admitted redeem p99 under overload: **{overload['redeem'].get('p99_ms')} ms** "
            f"against 2 x unloaded p99 = {bound:.1f} ms: "
            f"**{'met' if overload['redeem'].get('p99_ms', 1e9) < bound else 'missed'}**",
            f"- back to normal (each second's p99 < {bound:.1f} ms, nothing shed) "
            f"**{r['recovered_after_s']:.1f} s** after the overload ended"
            if r["recovered_after_s"] is not None
            else f"- never back to normal (each second's p99 < {bound:.1f} ms, nothing shed) "
            "before the run ended",
            f"- inside one server process (its /metrics): 99 % of its "
            f"{r['in_server']['redeem_201_count']:,.0f} admitted redemptions took at most "
            f"{r['in_server']['redeem_p99_bucket_s']} s in the server; the rest of the "
            f"latency above was spent waiting in sockets before the server read the request",
            f"- nothing lost: {r['generator_201']:,} redemptions answered 201, "
            f"{r['in_ledger']:,} of the run's receipts in the ledger; ledger consistent: "
            f"**{ledger['consistent']}**, vouchers spent twice: {ledger['double_spent']}",
            *front_lines,
        ]
    )


def front_figures(open_loop: dict[str, Any], refusals: list[float]) -> dict[str, Any]:
    """Per phase, the proxy's refusals (from its log's times) and its CPU per request it
    handled. In the overload most of those are refusals, each cheaper than a proxied
    request (no upstream exchange): the overload's figure bounds a refusal's cost from above.
    (Subtracting the proxied requests at the unloaded phase's cost is no better: at a light
    rate nginx's CPU per request is mostly its wake-ups, several times the overload's.)"""
    t0 = float(open_loop["t0_wall"])
    phases = open_loop["phases"]
    cost: list[float | None] = []
    for i, p in enumerate(phases):
        begins = t0 + p["started_s"]
        ends = t0 + phases[i + 1]["started_s"] if i + 1 < len(phases) else float("inf")
        p["front_refused"] = sum(1 for t in refusals if begins <= t < ends)
        requests = sum(p["outcomes"].values())
        cpu = p.get("cpu_seconds", {}).get("nginx (front)", {}).get("cpu", 0.0)
        p["front_requests"] = requests
        cost.append(round(1e6 * cpu / requests, 1) if requests else None)
    return {"us_per_request": cost, "us_per_refusal_at_most": cost[1]}


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    children = br.Children()
    work = Path(tempfile.mkdtemp(prefix="bench_overload."))
    front: front_proxy.Front | None = None
    front_info: dict[str, Any] | None = None
    data_dir = ROOT / ".data" / "bench-overload"
    env = {k: v for k, v in os.environ.items() if k.startswith("VOUCHER_")}
    if args.database_url:
        env["VOUCHER_DATABASE_URL"] = args.database_url
    if args.redis_url:
        env["VOUCHER_REDIS_URL"] = args.redis_url
    load_cpus: set[int] | None = None
    if args.pin:
        if args.database_url or args.redis_url or len(os.sched_getaffinity(0)) < 2:
            raise SystemExit("--pin needs two CPUs and the embedded PostgreSQL and Redis")
        # this process first: the embedded services and the server it starts inherit CPU 0
        os.sched_setaffinity(0, SERVER_CPUS)
        load_cpus = LOAD_CPUS
    processes = args.server_processes or (1 if args.pin else os.cpu_count() or 1)
    try:
        with services(data_dir, env) as (urls, _, rd):
            if args.pin:  # started under this process's CPU 0; one left running from before too
                for pid_file in data_dir.rglob("postmaster.pid"):
                    pin_tree(int(pid_file.read_text().split()[0]), SERVER_CPUS)
            url = br.with_database(urls.database_url, "voucher_overload")
            redis_url = urls.redis_url
            redis_url += ("&" if "?" in redis_url else "?") + "db=15"
            br.log("seeding ...")
            terminals = asyncio.run(prepare(url, redis_url, args, work))
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
                "pg_pool_max": 16,
                "pid_file": str(work / "server.pid"),
                "processes": processes,
                "shed_max_in_flight": args.shed_max_in_flight,
                "shed_initial_in_flight": args.shed_initial_in_flight,
                "shed_queue_wait_ms": args.shed_queue_wait_ms,
            }
            log_path = work / "server.log"

            def start_server(target_ms: float) -> tuple[subprocess.Popen[bytes], int]:
                (work / "server.json").write_text(
                    json.dumps({**server_cfg, "shed_target_ms": target_ms})
                )
                with log_path.open("ab") as out:
                    wrapper = children.start(
                        [sys.executable, "-m", "bench.serve", str(work / "server.json")],
                        cwd=ROOT, env=CHILD_ENV, stdout=out, stderr=subprocess.STDOUT,
                    )  # fmt: skip
                asyncio.run(br.wait_ready(base_url, wrapper, log_path))
                return wrapper, int((work / "server.pid").read_text())

            # the sustainable rate is the server's without shedding: a target never missed
            wrapper, server_pid = start_server(1e9)
            common = {
                "base_url": base_url,
                "citizens_path": str(work / "citizens.json"),
                **qr_key,
                "seed": args.seed,
                "sign_workers": os.cpu_count() or 2,
            }
            br.log(f"calibrating: closed loop, 64 tills, {args.calibrate:.0f} s ...")
            calibration = run_child(
                children,
                "bench.loadgen",
                {**common, "concurrency": 64, "warmup": 2, "duration": args.calibrate,
                 "run_tag": "C" + uuid.uuid4().hex[:5].upper(), "terminals": terminals,
                 "token_rate": 3000.0, "roles": {}, "database": br.database_of(url)},
                work, "calibrate", args.calibrate + 240, load_cpus,
            )  # fmt: skip
            br.stop_server(server_pid, wrapper)
            wrapper, server_pid = start_server(args.shed_target_ms)
            sustainable = float(calibration["redemptions_per_s"])
            light, heavy = sustainable * args.light, sustainable * args.overload_factor
            roles = {server_pid: "server (python)"}
            if args.front == "nginx":
                rate = args.front_rate or max(1, round(sustainable * args.front_factor))
                burst = args.front_burst or max(1, rate // 10)
                front_port = br.free_port()
                front = front_proxy.start(
                    listen=front_port, upstream=port, rate=rate, burst=burst,
                    prefix=work / "nginx", workers=args.front_workers,
                )  # fmt: skip
                front_info = {"rate": rate, "burst": burst, "workers": args.front_workers,
                              "version": front_proxy.version()}  # fmt: skip
                roles.update(dict.fromkeys(front.pids(), "nginx (front)"))
                if load_cpus is not None:
                    pin_tree(front.process.pid, load_cpus)
                common["base_url"] = f"http://127.0.0.1:{front_port}"
                br.log(f"nginx in front on :{front_port}, quotes limited to {rate}/s")
            br.log(f"sustainable {sustainable:,.0f}/s; open loop {light:,.0f} -> {heavy:,.0f}/s")
            tag = uuid.uuid4().hex[:6].upper()
            phases = [
                ["unloaded", light, args.unloaded],
                ["overload", heavy, args.duration],
                ["after", light, args.after],
            ]
            total = args.unloaded + args.duration + args.after
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            if args.profile and Path(spy).exists():
                # the overload phase begins after the generator's signing and the unloaded
                # phase: sample from a little before to its end
                presign = (total + 5) * heavy * 50e-6 / max(1, os.cpu_count() or 1) + 3
                children.start(
                    ["sh", "-c", f"sleep {presign + args.unloaded:.1f}; exec {spy} record "
                     f"--pid {server_pid} --duration {int(args.duration)} --rate 100 "
                     f"--format raw --nonblocking -o {args.profile}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            extra = work / "server.pid.extra"
            if extra.exists():
                roles.update(dict.fromkeys(map(int, extra.read_text().split()), "server (python)"))
            if rd is not None:
                roles[int(rd.pid_file.read_text())] = "redis (this run)"
            open_loop = run_child(
                children,
                "bench.overload",
                {**common, "run_tag": tag, "terminals": terminals, "phases": phases,
                 "max_connections": args.max_connections or args.terminals, "roles": roles,
                 "database": br.database_of(url)},
                work, "overload", total + 300, load_cpus,
            )  # fmt: skip
            inside = asyncio.run(in_server(base_url))
            if front is not None and front_info is not None:
                front.stop()  # its refusals' log written out
                front_info |= front_figures(open_loop, front.refusals())
                front_info["server_shed_overload"] = (
                    sum(
                        n
                        for k, n in open_loop["phases"][1]["outcomes"].items()
                        if " 503 " in f"{k} "
                    )
                    - open_loop["phases"][1]["front_refused"]
                )
            br.stop_server(server_pid, wrapper)
            ledger = asyncio.run(br.check_ledger(url))
            found = asyncio.run(in_ledger(url, tag))
            bound = 2 * open_loop["phases"][0]["redeem"]["p99_ms"]
            ends = open_loop["phases"][2]["started_s"]
            server_errors = [
                line for line in log_path.read_text(errors="replace").splitlines()
                if '"level": "error"' in line
            ]  # fmt: skip
            return {
                "command": " ".join([".venv/bin/python", "scripts/bench_overload.py", *argv]),
                "machine": {
                    "nproc": os.cpu_count(),
                    "git": br.git_revision(),
                    "server_processes": processes,
                    "pinned": None
                    if not args.pin
                    else {
                        "server, PostgreSQL, Redis": sorted(SERVER_CPUS),
                        "load generator, nginx": sorted(LOAD_CPUS),
                    },
                },
                "calibration": {
                    k: calibration[k] for k in ("window_s", "redemptions_per_s", "latency")
                },
                "sustainable": sustainable,
                "open_loop": open_loop,
                "recovered_after_s": recovery(open_loop["per_second"], ends, bound),
                "generator_201": open_loop["redemptions_ok"],
                "in_server": inside,
                "in_ledger": found,
                "ledger": ledger,
                "server_error_log_lines": server_errors[:20],
                "front": front_info,
            }
    finally:
        front_proxy.kill_quietly(front)
        children.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    results = run(args, argv)
    text = report(results)
    print()
    print(text)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2, default=str))
    lost = results["generator_201"] != results["in_ledger"]
    return 1 if lost or not results["ledger"]["consistent"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
