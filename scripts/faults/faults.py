#!/usr/bin/env python3
"""Fault scripts (issue 9, "The proofs, kept"): break a service under load, then prove the
ledger held. One subcommand per fault, each bounded in time:

    python scripts/faults/faults.py redis-stop   [--duration 40]   # SIGTERM Redis, restart
    python scripts/faults/faults.py redis-hang   [--duration 40]   # SIGSTOP Redis 12 s, SIGCONT
    python scripts/faults/faults.py pg-kill      [--duration 40]   # kill -9 the postmaster, restart
    python scripts/faults/faults.py server-kill  [--duration 40]   # kill -9 the server, restart

One run:

1. PostgreSQL and Redis: those of ``VOUCHER_DATABASE_URL`` / ``VOUCHER_REDIS_URL`` when set
   (the database named by ``--database`` on that server is DROPPED and recreated, the Redis
   db is FLUSHed; a stopped or killed service is restarted by ``--restart-command``), else
   the embedded servers of ``ops/embedded.py`` under ``--data-dir`` (default
   ``.data/faults``). Their pids are read where the services publish them: the postmaster's
   from ``postmaster.pid`` in the data directory, redis-server's from ``INFO server``.
2. Seeds a ledger with the benchmark's COPY seeder (``scripts/bench/seed.py``) and starts the
   real server as a subprocess (``scripts/bench/serve.py``, ``create_app``).
3. ``--concurrency`` cashier terminals (``scripts/bench/loadgen.py``'s connection and
   pre-signed QR tokens) redeem, quoting first for ``--quote-share`` of the bills (a
   failed quote is not followed by a redemption, so without direct redemptions a database
   outage would barely reach the redemption path). A redemption that got no answer, a 5xx
   or ``idempotency_key_in_use`` is sent again, the SAME request with the SAME Idempotency-Key,
   with back-off, as the terminal does (``client/till.py``), until it gets an answer or
   ``--grace`` seconds after the load ended.
4. At ``--fault-at`` of the run the fault is injected; the service comes back after
   ``--fault-seconds`` (the server and PostgreSQL as soon as they restart).
5. Stops the server and checks: the ledger's invariants (``server/db/invariants.py``); every
   redemption a client saw acknowledged (201) is in the ledger exactly once, under its
   Idempotency-Key and its receipt number, with the id the client was given; none that a
   client saw refused is in it; no voucher is redeemed twice.

Prints one summary line and the result as JSON (``--json-out`` writes it too); exits 1 when
anything was lost or doubled, or an invariant fails. Not part of the product.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPTS = ROOT / "scripts"
for _path in (str(ROOT), str(SCRIPTS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
CHILD_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(SCRIPTS)]))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
import redis  # noqa: E402
from bench.loadgen import HttpConnection, Tokens, post, sign_in  # noqa: E402
from bench.seed import seed  # noqa: E402
from bench.serve import new_qr_key  # noqa: E402

from ops import embedded  # noqa: E402
from server.db.invariants import check_ledger  # noqa: E402

FAULTS = {
    "redis-stop": "Redis stopped (SIGTERM), restarted after --fault-seconds (default 10)",
    "redis-hang": "Redis hung (SIGSTOP) for --fault-seconds (default 12), then SIGCONT",
    "pg-kill": "PostgreSQL's postmaster killed (kill -9), restarted after --fault-seconds "
    "(default 1)",
    "server-kill": "the server killed (kill -9) under load, restarted after --fault-seconds "
    "(default 1)",
}
DEFAULT_FAULT_SECONDS = {"redis-stop": 10.0, "redis-hang": 12.0, "pg-kill": 1.0, "server-kill": 1.0}
RETRYABLE_CODES = {"idempotency_key_in_use"}  # as client/till.py: same key, again
ATTEMPT_TIMEOUT_S = 5.0  # a till gives up on one attempt after a few seconds and sends again


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the services ---------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


class Services:
    """PostgreSQL and Redis: the environment's or embedded ones; kill, stop, restart them."""

    def __init__(self, args: argparse.Namespace, stack: ExitStack) -> None:
        self.restart_command: str | None = args.restart_command
        urls, self.pg, self.rd = stack.enter_context(embedded.services(args.data_dir))
        self.admin_url = urls.database_url
        self.redis_url = urls.redis_url
        self.database_url = with_database(self.admin_url, args.database)
        self.embedded = {"postgres": self.pg is not None, "redis": self.rd is not None}

    # pids, read where each service publishes its own
    def redis_pid(self) -> int:
        client = redis.Redis.from_url(self.redis_url, socket_timeout=2)
        try:
            return int(client.info("server")["process_id"])
        finally:
            client.close()

    def postmaster_pid(self) -> int:
        data_dir = self.pg.data_dir if self.pg is not None else Path(self._data_directory())
        return int((data_dir / "postmaster.pid").read_text().split()[0])

    def _data_directory(self) -> str:
        async def ask() -> str:
            conn = await asyncpg.connect(self.admin_url)
            try:
                return str(await conn.fetchval("SHOW data_directory"))
            finally:
                await conn.close()

        return asyncio.run(ask())

    def restart(self, service: str) -> None:
        if service == "redis" and self.rd is not None:
            self.rd.start()
        elif service == "postgres" and self.pg is not None:
            deadline = time.monotonic() + 30
            while True:  # orphaned backends may still hold the shared memory for a moment
                try:
                    self.pg.start()
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        else:
            if not self.restart_command:
                raise SystemExit(f"{service} is not embedded: give --restart-command")
            subprocess.run([*shlex.split(self.restart_command), service], check=True, timeout=60)


def wait_gone(pid: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child (embedded Redis)
        time.sleep(0.05)


# --- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``bench.serve`` in a subprocess: started, killed with SIGKILL, started again."""

    def __init__(self, cfg_path: Path, log_path: Path, base_url: str) -> None:
        self.cfg_path = cfg_path
        self.log_path = log_path
        self.base_url = base_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.serve", str(self.cfg_path)],
                env=CHILD_ENV,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited; see {self.log_path}")
            url = self.base_url + "/readyz"
            with suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return
            time.sleep(0.1)
        raise SystemExit(f"the server did not become ready; see {self.log_path}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --- the cashiers ---------------------------------------------------------------------------


@dataclass
class Outcome:
    key: str
    receipt_no: str
    terminal_id: int
    count: int
    status: str = "unanswered"  # acknowledged | refused | unanswered
    redemption_id: int | None = None
    code: str = ""
    acked_at: float = 0.0
    attempts: int = 0


@dataclass
class Load:
    cfg: dict[str, Any]
    tokens: Tokens
    t_start: float
    t_end: float
    give_up: float
    outcomes: list[Outcome] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # kind of failed attempt -> n
    quotes: Counter[str] = field(default_factory=Counter)
    redeem_latency: list[tuple[float, float]] = field(default_factory=list)  # (t, seconds)

    async def terminal(self, index: int, terminal_id: int, access: str) -> None:
        split = urlsplit(self.cfg["base_url"])
        host, port = split.hostname or "127.0.0.1", split.port or 80
        host_header = f"{host}:{port}".encode()
        auth = f"Authorization: Bearer {access}\r\n".encode()
        rng = random.Random(self.cfg["seed"] * 1000 + index)
        conn: HttpConnection | None = None
        seq = 0

        async def send(raw: bytes) -> tuple[int, bytes]:
            nonlocal conn
            if conn is None or conn.closed:
                conn = await asyncio.wait_for(HttpConnection.open(host, port), 2)
            try:
                return await asyncio.wait_for(conn.request(raw), ATTEMPT_TIMEOUT_S)
            except BaseException:
                conn.close()  # a late answer must not be read as the next request's
                raise

        while time.perf_counter() < self.t_end:
            seq += 1
            token = self.tokens.take()
            bill = rng.randint(400, 1000) * 100
            usable = 1  # a bill of 400 元 or more takes one voucher (rule U3)
            if rng.random() < self.cfg["quote_share"]:  # else the cashier keys in one voucher
                quote = json.dumps({"token": token, "bill_fen": bill}).encode()
                try:
                    status, data = await send(post(host_header, b"/v1/quote", auth, quote))
                except (OSError, TimeoutError) as exc:
                    self.quotes[type(exc).__name__] += 1
                    await asyncio.sleep(0.05)
                    continue
                self.quotes[str(status)] += 1
                if status != 200:
                    await asyncio.sleep(0.05 if status >= 500 else 0)
                    continue
                usable = int(json.loads(data)["usable_count"])
                if usable < 1:
                    continue
            outcome = Outcome(
                key=str(uuid.uuid4()),
                receipt_no=f"F{self.cfg['run_tag']}-{index:03d}-{seq:07d}",
                terminal_id=terminal_id,
                count=min(rng.choice((1, 2)), usable),
            )
            self.outcomes.append(outcome)
            body = {
                "token": token,
                "bill_fen": bill,
                "receipt_no": outcome.receipt_no,
                "voucher_count": outcome.count,
            }
            headers = auth + f"Idempotency-Key: {outcome.key}\r\n".encode()
            raw = post(host_header, b"/v1/redemptions", headers, json.dumps(body).encode())
            await self.redeem(outcome, raw, send)

    async def redeem(self, outcome: Outcome, raw: bytes, send: Any) -> None:
        """Send until a definitive answer: the same bytes, the same key, as a till retries."""
        backoff = 0.05
        while True:
            outcome.attempts += 1
            t0 = time.perf_counter()
            kind = ""
            try:
                status, data = await send(raw)
            except (OSError, TimeoutError) as exc:
                kind = type(exc).__name__
            else:
                self.redeem_latency.append((time.perf_counter(), time.perf_counter() - t0))
                if status == 201:
                    answer = json.loads(data)
                    outcome.status = "acknowledged"
                    outcome.redemption_id = int(answer["redemption_id"])
                    outcome.acked_at = time.perf_counter()
                    return
                code = ""
                with suppress(ValueError, KeyError, TypeError):
                    code = json.loads(data)["error"]["code"]
                kind = f"{status} {code}".strip()
                if status < 500 and code not in RETRYABLE_CODES:
                    outcome.status, outcome.code = "refused", code or str(status)
                    self.failures[kind] += 1
                    return
            self.failures[kind] += 1
            if time.perf_counter() > self.give_up:
                return  # unanswered: must be in the ledger at most once
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 1.0)


# --- the check ------------------------------------------------------------------------------


async def verify(database_url: str, outcomes: list[Outcome]) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url)
    try:
        violations = await check_ledger(conn)
        rows = await conn.fetch(
            """
            SELECT terminal_id, idempotency_key, receipt_no, id FROM redemptions
             WHERE idempotency_key = ANY($1::text[]) OR receipt_no = ANY($2::text[])
            """,
            [o.key for o in outcomes],
            [o.receipt_no for o in outcomes],
        )
    finally:
        await conn.close()
    by_key: dict[tuple[int, str], list[int]] = {}
    by_receipt: dict[str, list[int]] = {}
    for r in rows:
        by_key.setdefault((r["terminal_id"], r["idempotency_key"]), []).append(r["id"])
        by_receipt.setdefault(r["receipt_no"], []).append(r["id"])
    lost, doubled, wrong_id, refused_written, unanswered_written = [], [], [], [], 0
    for o in outcomes:
        ids = set(by_key.get((o.terminal_id, o.key), [])) | set(by_receipt.get(o.receipt_no, []))
        n = max(len(by_key.get((o.terminal_id, o.key), [])), len(by_receipt.get(o.receipt_no, [])))
        if n > 1 or len(ids) > 1:
            doubled.append(o.key)
        if o.status == "acknowledged":
            if not ids:
                lost.append(o.key)
            elif ids != {o.redemption_id}:
                wrong_id.append(o.key)
        elif o.status == "refused" and ids:
            refused_written.append(o.key)
        elif o.status == "unanswered" and ids:
            unanswered_written += 1
    twice = sum(v.count for v in violations if v.check == "voucher_redeemed_twice")
    return {
        "invariants": [
            {"check": v.check, "count": v.count, "examples": v.examples} for v in violations
        ],
        "lost": len(lost),
        "double_redemptions": len(doubled) + twice,
        "vouchers_redeemed_twice": twice,
        "acknowledged_with_other_id": len(wrong_id),
        "refused_but_written": len(refused_written),
        "unanswered_written": unanswered_written,
        "examples": {"lost": lost[:5], "doubled": doubled[:5], "refused": refused_written[:5]},
    }


def windows(load: Load, fault: dict[str, float]) -> dict[str, dict[str, float]]:
    """Acknowledged redemptions per second, and the p50 of redeem attempts, per phase."""
    bounds = {
        "before": (load.t_start, fault["start"]),
        "during": (fault["start"], fault["end"]),
        "after": (fault["end"], load.t_end),
    }
    out: dict[str, dict[str, float]] = {}
    for name, (lo, hi) in bounds.items():
        span = max(hi - lo, 1e-6)
        acked = sum(
            1 for o in load.outcomes if o.status == "acknowledged" and lo <= o.acked_at < hi
        )
        lat = sorted(s for t, s in load.redeem_latency if lo <= t < hi)
        out[name] = {
            "seconds": round(span, 1),
            "acknowledged_per_s": round(acked / span, 1),
            "redeem_p50_ms": round(lat[len(lat) // 2] * 1000, 1) if lat else 0.0,
        }
    return out


# --- one run --------------------------------------------------------------------------------


def inject(
    name: str, services: Services, server: Server, seconds: float, fault: dict[str, float]
) -> None:
    """Runs in a thread while the cashiers keep going; fills in when the fault began/ended."""
    fault["start"] = time.perf_counter()
    if name == "redis-stop":
        pid = services.redis_pid()
        os.kill(pid, signal.SIGTERM)
        wait_gone(pid)
        time.sleep(seconds)
        services.restart("redis")
    elif name == "redis-hang":
        pid = services.redis_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)
    elif name == "pg-kill":
        pid = services.postmaster_pid()
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        time.sleep(seconds)
        services.restart("postgres")
    elif name == "server-kill":
        server.kill()
        time.sleep(seconds)
        server.start()
        server.wait_ready()
    fault["end"] = time.perf_counter()


async def drive(
    args: argparse.Namespace,
    cfg: dict[str, Any],
    tokens: Tokens,
    services: Services,
    server: Server,
) -> tuple[Load, dict[str, float]]:
    now = time.perf_counter()
    load = Load(cfg, tokens, now, now + args.duration, now + args.duration + args.grace)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        picked = random.Random(cfg["seed"]).sample(cfg["terminals"], args.concurrency)
        base = cfg["base_url"]
        access = await asyncio.gather(*(sign_in(session, base, t) for t in picked))
    now = time.perf_counter()
    load.t_start, load.t_end = now, now + args.duration
    load.give_up = load.t_end + args.grace
    fault: dict[str, float] = {"start": load.t_end, "end": load.t_end}

    async def fault_later() -> None:
        await asyncio.sleep(args.duration * args.fault_at)
        log(f"injecting {args.fault}")
        await asyncio.to_thread(inject, args.fault, services, server, args.fault_seconds, fault)
        log(f"{args.fault}: service back after {fault['end'] - fault['start']:.1f} s")

    await asyncio.gather(
        fault_later(),
        *(
            load.terminal(i, int(t[0]), a)
            for i, (t, a) in enumerate(zip(picked, access, strict=True))
        ),
    )
    return load, fault


async def prepare(args: argparse.Namespace, services: Services, tmp: Path) -> dict[str, Any]:
    name = urlsplit(services.database_url).path.lstrip("/")
    conn = await asyncpg.connect(services.admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    client = redis.Redis.from_url(services.redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    seeded = await seed(
        services.database_url,
        citizens=args.citizens,
        vouchers_per_citizen=10,
        merchants=200,
        terminals=max(64, args.concurrency),
        history_every=5,
    )
    log(f"seeded {seeded.citizens} citizens, {seeded.vouchers} vouchers in "
        f"{seeded.seconds['total']:.1f} s")  # fmt: skip
    port = free_port()
    return {
        "database_url": services.database_url,
        "redis_url": services.redis_url,
        "id_hash_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "access_token_secret": base64.b64encode(secrets.token_bytes(32)).decode(),
        **new_qr_key(tmp),
        "host": "127.0.0.1",
        "port": port,
        "base_url": f"http://127.0.0.1:{port}",
        "pg_pool_min": 2,
        "pg_pool_max": 16,
        "processes": 1,
        "terminals": [list(t) for t in seeded.terminals],
        "citizens": seeded.citizen_ids,
        "run_tag": uuid.uuid4().hex[:6],
        "seed": args.seed,
        "quote_share": args.quote_share,
    }


def run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="faults-")))
        if args.server_log:  # kept: the temporary folder goes at the end
            stack.callback(lambda: shutil.copyfile(tmp / "server.log", args.server_log))
        services = Services(args, stack)
        cfg = asyncio.run(prepare(args, services, tmp))
        cfg_path = tmp / "serve.json"
        cfg_path.write_text(json.dumps({k: v for k, v in cfg.items() if k != "citizens"}))
        server = Server(cfg_path, tmp / "server.log", cfg["base_url"])
        server.start()
        stack.callback(server.stop)
        server.wait_ready()
        tokens = Tokens(cfg, cfg["citizens"])
        tokens.presign(args.duration + args.grace, args.token_rate, 1)
        log(f"signed {tokens.signed} QR tokens; {args.concurrency} tills for {args.duration} s")
        load, fault = asyncio.run(drive(args, cfg, tokens, services, server))
        if server.proc is None or server.proc.poll() is not None:
            raise SystemExit(f"the server died; see {tmp / 'server.log'}")
        server.stop()
        checked = asyncio.run(verify(services.database_url, load.outcomes))
        states = Counter(o.status for o in load.outcomes)
        result = {
            "fault": args.fault,
            "what": FAULTS[args.fault],
            "command": " ".join(["scripts/faults/faults.py", *sys.argv[1:]]),
            "services": {
                k: "embedded" if v else "environment" for k, v in services.embedded.items()
            },
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "fault_window_s": [
                round(fault["start"] - load.t_start, 1),
                round(fault["end"] - load.t_start, 1),
            ],
            "tried": len(load.outcomes),
            "acknowledged": states["acknowledged"],
            "refused": states["refused"],
            "unanswered": states["unanswered"],
            "attempts": sum(o.attempts for o in load.outcomes),
            "failures": dict(load.failures.most_common()),
            "quotes": dict(load.quotes.most_common()),
            "throughput": windows(load, fault),
            **checked,
            "inline_signed_tokens": tokens.inline_signed,
        }
    bad = (
        checked["lost"]
        or checked["double_redemptions"]
        or checked["acknowledged_with_other_id"]
        or checked["refused_but_written"]
        or checked["invariants"]
    )
    tp = result["throughput"]
    print(
        f"{args.fault}: {'FAIL' if bad else 'ok'}: tried {result['tried']}, acknowledged "
        f"{result['acknowledged']}, refused {result['refused']}, unanswered "
        f"{result['unanswered']}, failed attempts {sum(load.failures.values())}, lost "
        f"{checked['lost']}, doubled {checked['double_redemptions']}; acknowledged/s before "
        f"{tp['before']['acknowledged_per_s']}, during {tp['during']['acknowledged_per_s']}, "
        f"after {tp['after']['acknowledged_per_s']}",
        flush=True,
    )
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    return 1 if bad else 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="faults.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "fault", choices=sorted(FAULTS), help="; ".join(f"{k}: {v}" for k, v in FAULTS.items())
    )
    p.add_argument("--duration", type=float, default=40.0, help="seconds of load (at most 60)")
    p.add_argument(
        "--fault-at", type=float, default=0.3, help="share of --duration before the fault"
    )
    p.add_argument("--fault-seconds", type=float, help="how long the service stays down or hung")
    p.add_argument(
        "--grace", type=float, default=15.0, help="seconds to finish retries after the load"
    )
    p.add_argument("--concurrency", type=int, default=32, help="cashier terminals")
    p.add_argument("--citizens", type=int, default=20_000, help="seeded citizens, 10 vouchers each")
    p.add_argument(
        "--token-rate", type=float, default=1500.0, help="QR tokens pre-signed per second"
    )
    p.add_argument("--database", default="voucher_faults", help="DROPPED and recreated each run")
    p.add_argument("--data-dir", type=Path, default=embedded.default_data_dir() / "faults",
                   help="embedded services' data (when the environment names none)")  # fmt: skip
    p.add_argument(
        "--restart-command", help="services of the environment: CMD redis|postgres restarts one"
    )
    p.add_argument(
        "--quote-share",
        type=float,
        default=0.5,
        help="share of bills quoted first; the others redeem one voucher at once, so that "
        "redemptions meet the fault even while quotes fail",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json-out", type=Path)
    p.add_argument("--server-log", type=Path, help="keep the server's log in this file")
    args = p.parse_args(argv)
    if not 0 < args.duration <= 60:
        p.error("--duration is at most 60 s")
    if not 0 < args.fault_at < 1:
        p.error("--fault-at is between 0 and 1")
    if not 1 <= args.concurrency <= 256:
        p.error("--concurrency is 1..256")
    if args.fault_seconds is None:
        args.fault_seconds = DEFAULT_FAULT_SECONDS[args.fault]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run(args)


if __name__ == "__main__":
    threading.current_thread().name = "faults"
    sys.exit(main())
