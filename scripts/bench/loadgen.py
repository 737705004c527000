"""The load generator: ``python -m bench.loadgen CONFIG.json RESULT.json``.

64 (``concurrency``) cashier terminals, each with its own keep-alive HTTP/1.1 connection, as
a till has. Each signs in once with its own terminal credential (aiohttp), then loops: scan
a citizen's QR token, ``POST /v1/quote`` with a bill of 400 to 1,000 元, then
``POST /v1/redemptions`` (fresh ``Idempotency-Key``, unique receipt number, 1 or 2 vouchers,
never more than the quote allows). Warm-up first, then a measured window; latencies in
microseconds go to HdrHistograms, outcomes are counted by status and code.

QR tokens are what citizens' phones bring; the till does not make them. So they are minted
before the run (on all cores, with the server's QR key, each for a different citizen in a
random order, so the per-citizen Redis lock practically never contends) and the measured
window spends no CPU on minting. A token lives 60 s: tokens for later parts of a long run are
signed with a later issue time (``iat``), each batch covering 45 s. Should a batch run dry
the generator signs inline and reports how often (``inline_signed``).

The measuring tool must cost little next to what it measures: aiohttp's client spent about
270 µs of CPU per request here, a fifth of the machine. So the measured loop speaks HTTP/1.1
itself over an ``asyncio.Protocol``: requests are pre-formatted bytes, responses are parsed
by ``httptools`` (the C parser uvicorn uses). One request at a time per connection, a 30 s
timeout per request, reconnect after a closed connection.

That is why the benchmark keeps this generator of its own instead of the one typed API
client (``client/``, on aiohttp, which the terminal, ``voucherctl`` and the load test share):
with that client the generator would spend a fifth of the 2-core machine on itself and the
benchmark would measure the client as much as the server. Sign-in, which is not measured,
does go through the client (``sign_in``, shared with the fault scripts).
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import os
import random
import socket
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import httptools
from hdrh.histogram import HdrHistogram

from bench import procstat
from client.http import ApiError, Http
from client.wire import AccessToken
from server.settings import qr_key_from_file
from shared.tokens import QrKey, issue_qr_token

BATCH_SECONDS = 45
_KEY: QrKey | None = None


def _init_signer(path: str, kid: str) -> None:
    global _KEY
    _KEY = qr_key_from_file(kid, Path(path))


def _sign_chunk(args: tuple[float, list[int]]) -> list[str]:
    iat, citizens = args
    assert _KEY is not None
    now = datetime.fromtimestamp(iat, UTC)
    return [issue_qr_token(key=_KEY, holder=c, now=now)[0] for c in citizens]


async def sign_in(session: aiohttp.ClientSession, base_url: str, terminal: list[Any]) -> str:
    """A seeded terminal's access token (``[id, secret]``), through the one API client.
    Tills signing in all at once may meet the server's load shedding (503 ``server_busy``,
    issue 14): as a till does, wait the ``retry_after_s`` it names and try again."""
    http = Http(base_url, session=session)
    body = {"terminal_id": terminal[0], "secret": terminal[1]}
    for _ in range(20):
        try:
            answer = await http.fetch("POST", "/v1/auth/terminal", AccessToken, body=body)
        except ApiError as exc:
            if exc.status != 503:
                raise
            wait = float(exc.details.get("retry_after_s", 1))
            await asyncio.sleep(wait * (0.5 + random.random()))
            continue
        return answer.access_token
    raise RuntimeError(f"terminal {terminal[0]} sign-in: the server stayed busy")


class Tokens:
    """Pre-signed QR tokens in batches by issue time; hands out the newest usable one."""

    @classmethod
    def for_citizens(cls, cfg: dict[str, Any]) -> Tokens:
        """For the seeded citizens of ``cfg["citizens_path"]`` (their row ids, JSON), in the
        order ``cfg["seed"]`` shuffles them to."""
        citizens = json.loads(Path(cfg["citizens_path"]).read_text())
        random.Random(cfg["seed"]).shuffle(citizens)
        return cls(cfg, citizens)

    def __init__(self, cfg: dict[str, Any], citizens: list[int]) -> None:
        self.cfg = cfg
        self.citizens = citizens
        self.next_citizen = 0
        self.batches: list[tuple[float, list[str]]] = []  # (iat epoch s, tokens)
        self.inline_signed = 0
        self.signed = 0
        self.sign_seconds = 0.0

    def _citizens(self, n: int) -> list[int]:
        out = []
        for _ in range(n):
            out.append(self.citizens[self.next_citizen % len(self.citizens)])
            self.next_citizen += 1
        return out

    def presign(self, run_seconds: float, rate: float, workers: int) -> None:
        started = time.time()
        total = int(rate * run_seconds) + 1000
        # estimate when the run starts: after minting (~15 us per token per core; 50 to be safe)
        anchor = started + total * 50e-6 / max(1, workers) + 1.0
        plan: list[tuple[float, int]] = []
        covered = 0.0
        k = 0
        while covered < run_seconds:
            span = min(BATCH_SECONDS, run_seconds - covered)
            # the first batch is valid at once (until 60 s after signing began); later ones
            # are issued "in the future", valid from 5 s before their iat
            iat = started if k == 0 else anchor + BATCH_SECONDS * k - 3
            plan.append((float(int(iat)), int(rate * span) + 500))
            covered += span
            k += 1
        chunks: list[tuple[float, list[int]]] = []
        for iat, n in plan:
            for i in range(0, n, 2000):
                chunks.append((iat, self._citizens(min(2000, n - i))))
        init = (self.cfg["qr_key_file"], self.cfg["qr_kid"])
        if workers > 1:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(workers, initializer=_init_signer, initargs=init) as pool:
                signed = pool.map(_sign_chunk, chunks)
        else:
            _init_signer(*init)
            signed = [_sign_chunk(c) for c in chunks]
        by_iat: dict[float, list[str]] = {}
        for (iat, _), tokens in zip(chunks, signed, strict=True):
            by_iat.setdefault(iat, []).extend(tokens)
        for iat in sorted(by_iat):
            tokens = by_iat[iat]
            tokens.reverse()  # pop() from the end keeps the planned citizen order
            self.batches.append((iat, tokens))
            self.signed += len(tokens)
        _init_signer(*init)  # for inline signing, should a batch run dry
        self.sign_seconds = time.time() - started

    def take(self) -> str:
        now = time.time()
        # the newest batch already valid (iat at most 4 s ahead; the server allows 5)
        for iat, tokens in reversed(self.batches):
            if iat - 4 <= now < iat + 55 and tokens:
                return tokens.pop()
        self.inline_signed += 1
        return _sign_chunk((now, self._citizens(1)))[0]


REQUEST_TIMEOUT_S = 30.0


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(cls, host, port)
        return conn

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("the server closed the connection"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), b"".join(self.body)))
        if not self.parser.should_keep_alive():
            self.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one whole request; the response's status and body."""
        if self.closed or self.transport is None:
            raise ConnectionError("the connection is closed")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        self.waiter = waiter
        self.transport.write(raw)
        timer = loop.call_later(REQUEST_TIMEOUT_S, self._timed_out, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _timed_out(self, waiter: asyncio.Future[tuple[int, bytes]]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError("no response within 30 s"))
            self.close()  # a late answer must not be taken for the next request's


def post(host: bytes, path: bytes, headers: bytes, body: bytes) -> bytes:
    """A whole HTTP/1.1 POST with a JSON body; ``headers`` end with CRLF."""
    return (
        b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n%s\r\n%s" % (path, host, len(body), headers, body)
    )


def _hist() -> HdrHistogram:
    return HdrHistogram(1, 120_000_000, 3)  # 1 us .. 120 s, 3 significant digits


def _summary(h: HdrHistogram) -> dict[str, float]:
    if h.get_total_count() == 0:
        return {"count": 0}
    return {
        "count": h.get_total_count(),
        "mean_ms": round(h.get_mean_value() / 1000, 3),
        "p50_ms": h.get_value_at_percentile(50) / 1000,
        "p90_ms": h.get_value_at_percentile(90) / 1000,
        "p95_ms": h.get_value_at_percentile(95) / 1000,
        "p99_ms": h.get_value_at_percentile(99) / 1000,
        "p99.9_ms": h.get_value_at_percentile(99.9) / 1000,
        "max_ms": h.get_max_value() / 1000,
    }


class Run:
    def __init__(self, cfg: dict[str, Any], tokens: Tokens) -> None:
        self.cfg = cfg
        self.tokens = tokens
        self.base = cfg["base_url"]
        self.hist = {"quote": _hist(), "redeem": _hist(), "quote+redeem": _hist()}
        self.outcomes: dict[str, dict[str, int]] = {"quote": {}, "redeem": {}}
        self.redeemed_ok = 0
        self.vouchers_ok = 0
        self.quotes_ok = 0
        self.no_usable = 0
        self.waited_s = 0.0  # seconds the tills waited as the server asked (Retry-After)
        self.client_errors: dict[str, int] = {}
        self.t_measure = 0.0
        self.t_end = 0.0

    def _in_window(self, t: float) -> bool:
        return self.t_measure <= t < self.t_end

    def _count(self, op: str, status: int, data: bytes) -> None:
        key = str(status)
        if status >= 400:
            try:
                key += " " + json.loads(data)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                key += " ?"
        bucket = self.outcomes[op]
        bucket[key] = bucket.get(key, 0) + 1

    async def _come_back_later(self, status: int, data: bytes) -> None:
        """As a till does (client/till.py, issue 14): a 503 or 429 that says when to come back
        (``details.retry_after_s``, the body's copy of ``Retry-After``) is waited out before
        this till's next request. A generator that asked again at once would spend the
        server's CPU on refusals and measure that, not the redemptions. With
        ``honour_retry_after`` false (``--impatient-tills``) it asks again at once, as a
        misbehaving client would: what the server's tarpit is for (server/admission.py)."""
        if status not in (429, 503) or not self.cfg.get("honour_retry_after", True):
            return
        try:
            wait = float(json.loads(data)["error"]["details"]["retry_after_s"])
        except (ValueError, KeyError, TypeError):
            return
        # never past the run's end (the tills stop there)
        wait = min(max(wait, 0.0), 30.0, max(0.0, self.t_end - time.perf_counter()))
        self.waited_s += wait
        await asyncio.sleep(wait)

    async def terminal(self, index: int, access: str, rng: random.Random) -> None:
        split = urlsplit(self.base)
        host, port = split.hostname or "127.0.0.1", split.port or 80
        host_header = f"{host}:{port}".encode()
        auth = f"Authorization: Bearer {access}\r\n".encode()
        seq = 0
        run_tag = self.cfg["run_tag"]
        perf = time.perf_counter
        conn = await HttpConnection.open(host, port)
        try:
            while True:
                start = perf()
                if start >= self.t_end:
                    return
                seq += 1
                token = self.tokens.take()
                bill = rng.randint(400, 1000) * 100  # fen
                try:
                    if conn.closed:
                        conn = await HttpConnection.open(host, port)
                    quote = json.dumps({"token": token, "bill_fen": bill}).encode()
                    t0 = perf()
                    status, data = await conn.request(post(host_header, b"/v1/quote", auth, quote))
                    t1 = perf()
                    measured = self._in_window(t1)
                    if measured:
                        self.hist["quote"].record_value(max(1, int((t1 - t0) * 1e6)))
                        self._count("quote", status, data)
                    if status != 200:
                        await self._come_back_later(status, data)
                        continue
                    if measured:
                        self.quotes_ok += 1
                    usable = int(json.loads(data)["usable_count"])
                    if usable < 1:
                        if measured:
                            self.no_usable += 1
                        continue
                    count = min(rng.choice((1, 2)), usable)
                    body = {
                        "token": token,
                        "bill_fen": bill,
                        "receipt_no": f"B{run_tag}-{index:02d}-{seq:07d}",
                        "voucher_count": count,
                    }
                    headers = auth + f"Idempotency-Key: {uuid.uuid4()}\r\n".encode()
                    raw = post(host_header, b"/v1/redemptions", headers, json.dumps(body).encode())
                    t2 = perf()
                    status, data = await conn.request(raw)
                    t3 = perf()
                    if self._in_window(t3):
                        self.hist["redeem"].record_value(max(1, int((t3 - t2) * 1e6)))
                        self.hist["quote+redeem"].record_value(max(1, int((t3 - t0) * 1e6)))
                        self._count("redeem", status, data)
                        if status == 201:
                            self.redeemed_ok += 1
                            self.vouchers_ok += count
                    if status != 201:
                        await self._come_back_later(status, data)
                except (OSError, TimeoutError, ValueError, KeyError) as exc:
                    name = type(exc).__name__
                    if self._in_window(perf()):
                        self.client_errors[name] = self.client_errors.get(name, 0) + 1
                    conn.close()
                    await asyncio.sleep(0.01)
        finally:
            conn.close()

    async def run(self) -> dict[str, Any]:
        cfg = self.cfg
        concurrency = int(cfg["concurrency"])
        rng = random.Random(cfg["seed"])
        terminals = rng.sample(cfg["terminals"], concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=30)
        roles = {int(pid): name for pid, name in cfg["roles"].items()}
        roles[os.getpid()] = "load generator"
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False
        ) as session:
            access = await asyncio.gather(*(sign_in(session, self.base, t) for t in terminals))
        now = time.perf_counter()
        self.t_measure = now + float(cfg["warmup"])
        self.t_end = self.t_measure + float(cfg["duration"])
        workers = [
            asyncio.create_task(self.terminal(i, access[i], random.Random(rng.random())))
            for i in range(concurrency)
        ]
        await asyncio.sleep(max(0.0, self.t_measure - time.perf_counter()))
        watched = {name: pid for pid, name in roles.items() if name != "bench orchestrator"}
        switches0 = {n: procstat.context_switches(p) for n, p in watched.items()}
        before = await asyncio.to_thread(procstat.snapshot, roles, cfg["database"])
        wall0 = time.perf_counter()
        await asyncio.sleep(max(0.0, self.t_end - time.perf_counter()))
        after = await asyncio.to_thread(procstat.snapshot, roles, cfg["database"])
        switches1 = {n: procstat.context_switches(p) for n, p in watched.items()}
        wall = time.perf_counter() - wall0
        done, pending = await asyncio.wait(workers, timeout=35)
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        window = self.t_end - self.t_measure
        cpu = procstat.usage(before, after)
        return {
            "concurrency": concurrency,
            "terminals_used": [t[0] for t in terminals],
            "warmup_s": float(cfg["warmup"]),
            "window_s": window,
            "redemptions_ok": self.redeemed_ok,
            "vouchers_redeemed": self.vouchers_ok,
            "quotes_ok": self.quotes_ok,
            "redemptions_per_s": self.redeemed_ok / window,
            "vouchers_per_s": self.vouchers_ok / window,
            "quotes_per_s": self.quotes_ok / window,
            "latency": {op: _summary(h) for op, h in self.hist.items()},
            "outcomes": self.outcomes,
            "quotes_without_usable_voucher": self.no_usable,
            "client_errors": self.client_errors,
            "waited_as_asked_s": round(self.waited_s, 3),
            "tokens_presigned": self.tokens.signed,
            "tokens_presign_seconds": round(self.tokens.sign_seconds, 2),
            "tokens_signed_inline": self.tokens.inline_signed,
            "cpu_seconds": cpu,
            "cpu_other_top": procstat.top_others(before, after),
            "context_switches": {
                n: {
                    "voluntary": switches1[n][0] - switches0[n][0],
                    "involuntary": switches1[n][1] - switches0[n][1],
                }
                for n in watched
            },
            "cpu_wall_s": round(wall, 3),
        }


def main(argv: list[str]) -> int:
    cfg = json.loads(Path(argv[0]).read_text())
    tokens = Tokens.for_citizens(cfg)
    run_seconds = float(cfg["warmup"]) + float(cfg["duration"]) + 5
    tokens.presign(run_seconds, float(cfg["token_rate"]), int(cfg.get("sign_workers", 2)))
    print(
        f"loadgen: {tokens.signed} QR tokens signed in {tokens.sign_seconds:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    gc.collect()
    gc.freeze()  # the token lists are long-lived: keep them out of the collector's way
    try:
        import uvloop

        result = uvloop.run(Run(cfg, tokens).run())
    except ImportError:  # pragma: no cover
        result = asyncio.run(Run(cfg, tokens).run())
    Path(argv[1]).write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
