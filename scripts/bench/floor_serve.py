"""The floor of any aiohttp server: ``python -m bench.floor_serve CONFIG.json`` (issue 15).

A bare aiohttp application with the three routes the load generator calls, each answering a
canned body of the real answer's size and shape, without PostgreSQL, Redis, rules, middleware
or metrics: what one quote + redeem pair costs aiohttp (HTTP parsing, the request object,
routing, reading the body, writing the answer) on uvloop with access logging off, the
benchmark's own settings. ``scripts/bench_floor.py`` drives it with the benchmark's load
generator and sets it beside the real server's cost.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web

# answers of the real server's shape (client/wire.py Quote and Redemption), same sizes within
# a few bytes: the answer's length is part of what the HTTP layer costs
_CITIZEN = {"masked_id": "3715**********1234"}
_MERCHANT = {"id": 17, "name": "聊城示范超市 17 号店"}
QUOTE = json.dumps(
    {
        "citizen": _CITIZEN,
        "campaign_id": "liaocheng-2024",
        "bill_fen": 65_400,
        "face_value_fen": 10_000,
        "available_count": 10,
        "max_by_bill": 3,
        "usable_count": 3,
        "value_fen": 30_000,
        "remaining_fen": 35_400,
        "merchant": _MERCHANT,
        "token_expires_at": "2026-12-01T19:30:12.123456+00:00",
    },
    ensure_ascii=False,
).encode()
REDEMPTION = json.dumps(
    {
        "redemption_id": 123_456,
        "campaign_id": "liaocheng-2024",
        "merchant": _MERCHANT,
        "terminal": {"id": 42, "label": "收银台 1"},
        "citizen": {**_CITIZEN, "vouchers_left": 8},
        "receipt_no": "BA1B2C3-17-0001234",
        "bill_fen": 65_400,
        "current_bill_fen": 65_400,
        "face_value_fen": 10_000,
        "voucher_count": 2,
        "value_fen": 20_000,
        "remaining_fen": 45_400,
        "refunded_count": 0,
        "live_voucher_count": 2,
        "voucher_ids": [1_234_561, 1_234_562],
        "returned_voucher_ids": [],
        "status": "redeemed",
        "settled": False,
        "created_at": "2026-12-01T19:30:12.123456+00:00",
        "refunds": [],
    },
    ensure_ascii=False,
).encode()
TOKEN = json.dumps({"access_token": "floor." + "x" * 120, "expires_in": 900}).encode()


def _answer(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


async def sign_in(request: web.Request) -> web.Response:
    await request.read()
    return _answer(TOKEN)


async def quote(request: web.Request) -> web.Response:
    await request.read()
    return _answer(QUOTE)


async def redeem(request: web.Request) -> web.Response:
    await request.read()
    return _answer(REDEMPTION, 201)


async def ready(_: web.Request) -> web.Response:
    return _answer(b'{"status":"ok"}')


async def serve(host: str, port: int) -> None:
    app = web.Application()
    app.router.add_post("/v1/auth/terminal", sign_in)
    app.router.add_post("/v1/quote", quote)
    app.router.add_post("/v1/redemptions", redeem)
    app.router.add_get("/readyz", ready)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True, reuse_port=True)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str]) -> int:
    cfg: dict[str, Any] = json.loads(Path(argv[0]).read_text())
    Path(cfg["pid_file"]).write_text(str(os.getpid()))
    extra = []
    for _ in range(int(cfg.get("processes", 1)) - 1):  # more processes on the same port
        pid = os.fork()
        if pid == 0:
            uvloop.run(serve(cfg["host"], int(cfg["port"])))
            os._exit(0)
        extra.append(pid)
    Path(cfg["pid_file"] + ".extra").write_text(" ".join(map(str, extra)))
    try:
        uvloop.run(serve(cfg["host"], int(cfg["port"])))
    finally:
        for pid in extra:
            os.kill(pid, signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
