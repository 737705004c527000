"""The app without its HTTP server: ``python -m bench.inprocess CONFIG.json RESULT.json``.

For ``scripts/bench_instructions.py --mode in-process``. Builds the real app
(``create_app``, real PostgreSQL and Redis) in this process, signs its tills in, makes
``pairs`` quote + redeem requests beforehand (aiohttp's test request objects, bodies
already received), then hands them to the app's own dispatch (``Application._handle``:
routing, middleware, handlers, services, batches) from ``concurrency`` tasks. No socket, no
HTTP parsing, no response written: what is left is the server's own work, and the tasks go
in step, so the batches have the same size from run to run. Under Valgrind (``"count":
true``) it switches callgrind's counting on for the measured pairs only (a tenth more go
first, uncounted, to warm up).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from bench.serve import settings_from
from server.app import create_app
from server.settings import qr_key_from_file
from server.web import GUARD, TILL
from shared.tokens import QrKey, issue_qr_token


def request(
    app: web.Application, protocol: Any, path: str, body: dict[str, Any], headers: dict[str, str]
) -> web.Request:
    """A POST as the server would have parsed it, its JSON body already received."""
    data = json.dumps(body).encode()
    payload = StreamReader(protocol, 2**16, loop=asyncio.get_running_loop())
    payload.feed_data(data)
    payload.feed_eof()
    fields = CIMultiDict(
        {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}
    )
    return make_mocked_request(
        "POST", path, headers=fields, payload=payload, app=app, protocol=protocol
    )


def callgrind(*args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(os.getpid())], capture_output=True)  # noqa: S607


async def run(cfg: dict[str, Any], key: QrKey, citizens: list[int]) -> dict[str, Any]:
    app = create_app(settings_from(cfg["server"]))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    protocol = mock.Mock(_reading_paused=False)  # the connection: flow control is a no-op
    protocol.resume_reading = lambda **_: None
    protocol.pause_reading = lambda **_: None
    concurrency, pairs = int(cfg["concurrency"]), int(cfg["pairs"])
    access = []
    for terminal_id, secret in cfg["terminals"][:concurrency]:
        credential = {"terminal_id": terminal_id, "secret": secret}
        signed = await app._handle(request(app, protocol, "/v1/auth/terminal", credential, {}))
        access.append(json.loads(signed.body)["access_token"])  # type: ignore[attr-defined]
    rng = random.Random(cfg["seed"])
    rng.shuffle(citizens)
    now, tag = datetime.now(UTC), uuid.uuid4().hex[:6]
    work: list[tuple[web.Request, web.Request]] = []
    for i in range(pairs + pairs // 10):
        token = issue_qr_token(key=key, holder=citizens[i], now=now)[0]
        auth = {"Authorization": f"Bearer {access[i % concurrency]}"}
        bill = rng.randint(400, 1000) * 100
        quote = request(app, protocol, "/v1/quote", {"token": token, "bill_fen": bill}, auth)
        body = {"token": token, "bill_fen": bill, "receipt_no": f"I{tag}-{i}", "voucher_count": 1}
        key_header = {**auth, "Idempotency-Key": str(uuid.uuid4())}
        work.append((quote, request(app, protocol, "/v1/redemptions", body, key_header)))
    statuses: dict[int, int] = {}

    async def till(queue: list[tuple[web.Request, web.Request]]) -> None:
        while queue:
            for one in queue.pop():
                answer = await app._handle(one)
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

    warm = [work.pop() for _ in range(pairs // 10)]
    await asyncio.gather(*(till(warm) for _ in range(concurrency)))
    tills = app[TILL]
    reads, writes = tills.context_reads, tills.redeem_writes
    before = {"read": (reads.batches, reads.items), "write": (writes.batches, writes.items)}
    gc.collect()
    if cfg.get("count"):
        callgrind("-i", "on")
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(till(work) for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - started
    if cfg.get("count"):
        callgrind("-i", "off")
        callgrind("-d")
    await app[GUARD].drain()
    batches = {
        kind: round((b.items - before[kind][1]) / max(1, b.batches - before[kind][0]), 2)
        for kind, b in (("read", reads), ("write", writes))
    }
    await runner.cleanup()
    return {
        "pairs": pairs,
        "statuses": statuses,
        "cpu_us_per_pair": round(1e6 * cpu / pairs, 1),
        "wall_us_per_pair": round(1e6 * wall / pairs, 1),
        "batch_sizes": batches,
    }


def main(argv: list[str]) -> int:
    cfg = json.loads(Path(argv[0]).read_text())
    key = qr_key_from_file(cfg["qr_kid"], Path(cfg["qr_key_file"]))
    citizens = json.loads(Path(cfg["citizens_path"]).read_text())
    try:
        import uvloop

        result = uvloop.run(run(cfg, key, citizens))
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        result = asyncio.run(run(cfg, key, citizens))
    Path(argv[1]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
