#!/usr/bin/env python3
"""Server memory under oversized bodies (issue 9, item 10): rerunnable, bounded, loopback.

    PYTHONPATH=. .venv/bin/python scripts/bench_body_flood.py [--clients 6] [--megabytes 60]

Starts the demo server (``python -m ops demo``, embedded services under ``--data-dir``,
default ``.data/bench-body-flood``) on a free port, reads its resident memory (VmRSS), sends
``--clients`` concurrent chunked bodies of ``--megabytes`` MB each to ``POST /v1/auth/staff``
(no authentication needed), each client writing as fast as the server takes it until the
server answers or closes, then reads the memory again. Prints the answers, the bytes each
client got into the socket, and RSS before, at peak (sampled every 50 ms) and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 64 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def flood(port: int, total: int) -> tuple[str, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /v1/auth/staff HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    writer.write(head.encode())
    payload = f"{CHUNK:x}\r\n".encode() + b"x" * CHUNK + b"\r\n"
    sent = 0
    answer = asyncio.ensure_future(reader.readline())
    try:
        while sent < total and not answer.done():
            writer.write(payload)
            await writer.drain()
            sent += CHUNK
        if sent >= total:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except ConnectionError:
        pass
    try:
        status = (await asyncio.wait_for(answer, 60)).decode().strip()
    except (TimeoutError, ConnectionError) as exc:
        status = f"no answer ({type(exc).__name__})"
    writer.close()
    return status, sent


async def main_async(args: argparse.Namespace, pid: int, port: int) -> dict[str, object]:
    peak = rss_mib(pid)
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib(pid))
            await asyncio.sleep(0.05)

    sampler = asyncio.ensure_future(sample())
    started = time.monotonic()
    results = await asyncio.wait_for(
        asyncio.gather(*(flood(port, args.megabytes * 1024 * 1024) for _ in range(args.clients))),
        300,
    )
    elapsed = time.monotonic() - started
    done.set()
    await sampler
    return {"answers": [r[0] for r in results], "sent_bytes": [r[1] for r in results],
            "seconds": round(elapsed, 2), "peak_rss_mib": round(peak, 1)}  # fmt: skip


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench_body_flood.py")
    p.add_argument("--data-dir", type=Path, default=ROOT / ".data" / "bench-body-flood")
    p.add_argument("--clients", type=int, default=6)
    p.add_argument("--megabytes", type=int, default=60)
    args = p.parse_args(argv)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VOUCHER_DATA_DIR": str(args.data_dir)}
    env.pop("VOUCHER_DATABASE_URL", None)
    env.pop("VOUCHER_REDIS_URL", None)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    log = args.data_dir / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "ops", "demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start; see {log}") from None
                time.sleep(0.2)
        time.sleep(1)
        before = rss_mib(server.pid)
        result = asyncio.run(main_async(args, server.pid, port))
        time.sleep(2)
        after = rss_mib(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    report = {"rss_before_mib": round(before, 1), **result, "rss_after_mib": round(after, 1)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
