"""Open-loop load: ``python -m bench.overload CONFIG.json RESULT.json`` (issue 14).

Unlike ``bench.loadgen`` (closed loop: 64 tills, each waiting for its answer before the next
checkout), this offers checkouts at a set *rate* whatever the server answers, as customers
arriving at shops do: a checkout is due every ``1/rate`` seconds on average (Poisson
arrivals) and goes out on an idle keep-alive connection, or on a new one (at most
``max_connections``). A connection is a till: it carries one signed-in terminal's token of
its own (the benchmark seeds as many terminals as connections), one request at a time, and,
as a till does (client/till.py), once refused with ``Retry-After`` it rests that long before
it takes another checkout (the server holds a till that asks sooner, server/admission.py's
tarpit). So the arrivals are many tills' customers, each till asking again only when told:
the offered load is the arrival rate, not the tills' impatience. A checkout is
``POST /v1/quote`` then, when the quote allows, ``POST /v1/redemptions`` (fresh
Idempotency-Key, unique receipt number). A checkout that finds every connection busy or
resting is *not sent* (counted per phase).

Phases (``phases``: name, checkouts per second, seconds) run back to back; per phase and per
second of the run: redeem latency of the admitted (201) redemptions in HdrHistograms, and the
answers by status and code (503 ``server_busy`` is a shed request). A checkout whose quote was
shed sends no redemption, as a till would retry it later.

The latency of a checkout (quote + redeem) is counted from when it was *due*, not from when
the generator got round to sending it (no coordinated omission); the generator's own lag is
reported too.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bench import procstat
from bench.loadgen import HttpConnection, Tokens, _hist, _summary, post, sign_in


class Overload:
    def __init__(self, cfg: dict[str, Any], tokens: Tokens) -> None:
        self.cfg = cfg
        self.tokens = tokens
        split = urlsplit(cfg["base_url"])
        self.host, self.port = split.hostname or "127.0.0.1", split.port or 80
        self.host_header = f"{self.host}:{self.port}".encode()
        self.idle: list[tuple[HttpConnection, bytes]] = []
        # refused connections until their Retry-After has passed: (until, n, connection, auth)
        self.resting: list[tuple[float, int, HttpConnection, bytes]] = []
        self.connections = 0
        self.auths: list[bytes] = []  # one per terminal; a connection holds one while open
        self.seq = 0
        self.rng = random.Random(cfg["seed"])
        self.phases: list[dict[str, Any]] = []
        self.seconds: dict[int, dict[str, Any]] = {}
        self.t0 = 0.0
        self.t0_wall = 0.0  # time.time() at t0: to place a front proxy's log in the phases
        self.redeemed_ok = 0
        self.in_flight: set[asyncio.Task[None]] = set()

    async def sign_in(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            tokens = await asyncio.gather(
                *(sign_in(session, self.cfg["base_url"], t) for t in self.cfg["terminals"])
            )
        self.auths = [f"Authorization: Bearer {t}\r\n".encode() for t in tokens]

    async def _connection(self) -> tuple[HttpConnection, bytes] | None:
        now = time.perf_counter()
        while self.resting and self.resting[0][0] <= now:  # rested as long as it was told
            _, _, conn, auth = heapq.heappop(self.resting)
            self.idle.append((conn, auth))
        while self.idle:
            conn, auth = self.idle.pop()
            if not conn.closed:
                return conn, auth
            self.connections -= 1
            self.auths.append(auth)  # its terminal is free for a new connection
        if self.connections >= int(self.cfg["max_connections"]) or not self.auths:
            return None
        self.connections += 1
        auth = self.auths.pop()
        try:
            conn = await HttpConnection.open(self.host, self.port)
        except OSError:
            self.connections -= 1
            self.auths.append(auth)
            raise
        return conn, auth

    def _release(self, conn: HttpConnection, auth: bytes, rest_s: float) -> None:
        if rest_s > 0 and not conn.closed:
            until = time.perf_counter() + rest_s
            heapq.heappush(self.resting, (until, id(conn), conn, auth))
        else:
            self.idle.append((conn, auth))

    @staticmethod
    def _retry_after(status: int, data: bytes) -> float:
        """What a 503 or 429 asks a till to wait (the body's copy of Retry-After), else 0."""
        if status not in (429, 503):
            return 0.0
        try:
            return min(30.0, max(0.0, float(json.loads(data)["error"]["details"]["retry_after_s"])))
        except (ValueError, KeyError, TypeError):
            return 0.0

    def _second(self) -> dict[str, Any]:
        second = int(time.perf_counter() - self.t0)
        found = self.seconds.get(second)
        if found is None:
            found = self.seconds[second] = {"redeem": _hist(), "outcomes": {}}
        return found

    @staticmethod
    def _count(bucket: dict[str, int], op: str, status: int, data: bytes) -> None:
        key = f"{op} {status}"
        if status >= 400:
            try:
                key += " " + json.loads(data)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                key += " ?"
        bucket[key] = bucket.get(key, 0) + 1

    async def checkout(self, phase: dict[str, Any], due: float) -> None:
        perf = time.perf_counter
        got = await self._connection()
        if got is None:
            phase["not_sent"] += 1
            return
        conn, auth = got
        rest_s = 0.0
        self.seq += 1
        receipt = f"O{self.cfg['run_tag']}-{self.seq:08d}"
        bill = self.rng.randint(400, 1000) * 100
        token = self.tokens.take()
        try:
            sent = perf()
            phase["lag"].record_value(max(1, int((sent - due) * 1e6)))
            raw = post(self.host_header, b"/v1/quote", auth,
                       json.dumps({"token": token, "bill_fen": bill}).encode())  # fmt: skip
            status, data = await conn.request(raw)
            self._count(phase["outcomes"], "quote", status, data)
            self._count(self._second()["outcomes"], "quote", status, data)
            if status != 200:
                rest_s = self._retry_after(status, data)
                return
            if int(json.loads(data)["usable_count"]) < 1:
                return
            body = {"token": token, "bill_fen": bill, "receipt_no": receipt, "voucher_count": 1}
            headers = auth + f"Idempotency-Key: {uuid.uuid4()}\r\n".encode()
            raw = post(self.host_header, b"/v1/redemptions", headers, json.dumps(body).encode())
            t2 = perf()
            status, data = await conn.request(raw)
            t3 = perf()
            self._count(phase["outcomes"], "redeem", status, data)
            second = self._second()
            self._count(second["outcomes"], "redeem", status, data)
            if status == 201:
                self.redeemed_ok += 1
                phase["redeem"].record_value(max(1, int((t3 - t2) * 1e6)))
                phase["checkout"].record_value(max(1, int((t3 - due) * 1e6)))
                second["redeem"].record_value(max(1, int((t3 - t2) * 1e6)))
            else:
                rest_s = self._retry_after(status, data)
        except (OSError, TimeoutError, ValueError, KeyError) as exc:
            phase["client_errors"][type(exc).__name__] = (
                phase["client_errors"].get(type(exc).__name__, 0) + 1
            )
            conn.close()
        finally:
            self._release(conn, auth, rest_s)

    async def phase(self, name: str, rate: float, seconds: float) -> dict[str, Any]:
        phase: dict[str, Any] = {
            "name": name,
            "rate": rate,
            "seconds": seconds,
            "started_s": round(time.perf_counter() - self.t0, 3),
            "offered": 0,
            "not_sent": 0,
            "redeem": _hist(),
            "checkout": _hist(),
            "lag": _hist(),
            "outcomes": {},
            "client_errors": {},
        }
        perf = time.perf_counter
        roles = {int(pid): role for pid, role in self.cfg.get("roles", {}).items()}
        roles[os.getpid()] = "load generator"
        before = await asyncio.to_thread(procstat.snapshot, roles, self.cfg.get("database", ""))
        start = perf()
        end = start + seconds
        due = start
        while True:
            due += self.rng.expovariate(rate)
            if due >= end:
                break
            now = perf()
            if due > now:
                await asyncio.sleep(due - now)
            phase["offered"] += 1
            task = asyncio.create_task(self.checkout(phase, due))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        after = await asyncio.to_thread(procstat.snapshot, roles, self.cfg.get("database", ""))
        phase["cpu_seconds"] = procstat.usage(before, after)  # where the machine's CPU went
        return phase

    async def open_all(self) -> None:
        """Every till's keep-alive connection, opened before the first phase, as tills that
        have been selling all day hold theirs: else thousands of tills connect for the first
        time in the overload itself, their SYNs dropped by the full accept queue of a server
        busy refusing (a second's retransmission each), and the generator measures that."""
        wanted = min(int(self.cfg["max_connections"]), len(self.auths))
        while self.connections < wanted:
            batch = min(256, wanted - self.connections)
            opened = await asyncio.gather(
                *(HttpConnection.open(self.host, self.port) for _ in range(batch))
            )
            for conn in opened:
                self.connections += 1
                self.idle.append((conn, self.auths.pop()))

    async def run(self) -> dict[str, Any]:
        await self.sign_in()
        await self.open_all()
        self.t0 = time.perf_counter()
        self.t0_wall = time.time()
        for name, rate, seconds in self.cfg["phases"]:
            self.phases.append(await self.phase(name, float(rate), float(seconds)))
        if self.in_flight:
            await asyncio.wait(self.in_flight, timeout=35)
        for conn, _ in self.idle:
            conn.close()
        for _, _, conn, _ in self.resting:
            conn.close()
        return {
            "phases": [
                {
                    **{k: v for k, v in p.items() if k not in ("redeem", "checkout", "lag")},
                    "redeem": _summary(p["redeem"]),
                    "checkout": _summary(p["checkout"]),
                    "generator_lag": _summary(p["lag"]),
                }
                for p in self.phases
            ],
            "per_second": {
                str(s): {"redeem": _summary(v["redeem"]), "outcomes": v["outcomes"]}
                for s, v in sorted(self.seconds.items())
            },
            "t0_wall": self.t0_wall,
            "redemptions_ok": self.redeemed_ok,
            "connections": self.connections,
            "tokens_signed_inline": self.tokens.inline_signed,
        }


def main(argv: list[str]) -> int:
    cfg = json.loads(Path(argv[0]).read_text())
    tokens = Tokens.for_citizens(cfg)
    seconds = sum(float(p[2]) for p in cfg["phases"]) + 5
    peak = max(float(p[1]) for p in cfg["phases"])
    tokens.presign(seconds, peak, int(cfg.get("sign_workers", 2)))
    gc.collect()
    gc.freeze()
    try:
        import uvloop

        result = uvloop.run(Overload(cfg, tokens).run())
    except ImportError:  # pragma: no cover
        result = asyncio.run(Overload(cfg, tokens).run())
    Path(argv[1]).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
