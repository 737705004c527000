"""The real server in its own process: ``python -m bench.serve CONFIG.json``.

Builds ``Settings`` from the JSON the benchmark wrote (database and Redis URLs, the QR key
in its secrets file, ``new_qr_key``, random secrets) and serves ``create_app(settings)`` on uvloop
with access logging off, until SIGTERM or SIGINT. With ``"cprofile": PATH`` the whole
process runs under cProfile and the stats are written to PATH on exit.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from server.app import create_app, freeze_heap
from server.campaign_files import bundled_campaigns_dir
from server.settings import Settings, qr_key_from_file, write_qr_key_file
from server.web import JsonLogFormatter
from shared.keys import SigningKey
from shared.tokens import QrKey


def new_qr_key(folder: Path) -> dict[str, str]:
    """A random QR key in ``folder`` (0600): the server verifies with it, the load generator
    mints with it. The configuration entries that name it."""
    key = QrKey.generate("B")
    path = folder / "qr.key"
    write_qr_key_file(path, key)
    return {"qr_kid": key.kid, "qr_key_file": str(path)}


def settings_from(cfg: dict[str, Any]) -> Settings:
    return Settings(
        database_url=cfg["database_url"],
        redis_url=cfg["redis_url"],
        id_hash_key=base64.b64decode(cfg["id_hash_key"]),
        access_token_secret=base64.b64decode(cfg["access_token_secret"]),
        qr_keys=(qr_key_from_file(cfg["qr_kid"], Path(cfg["qr_key_file"])),),
        idp_issuer="https://idp.liaocheng.example",
        idp_keys={},
        # as `python -m server serve` does without VOUCHER_CAMPAIGN_FILES: every bundled file
        campaign_files=tuple(sorted(bundled_campaigns_dir().glob("*.toml"))),
        pg_pool_min=int(cfg.get("pg_pool_min", 4)),
        pg_pool_max=int(cfg.get("pg_pool_max", 32)),
        batch_max_size=int(cfg.get("batch_max_size", 64)),
        batch_concurrency=int(cfg.get("batch_concurrency", 3)),
        host=cfg["host"],
        port=int(cfg["port"]),
        # issue 14: load shedding (server/admission.py), the Settings defaults unless given
        **{
            k: cfg[k]
            for k in (
                "shed_target_ms",
                "shed_max_in_flight",
                "shed_initial_in_flight",
                "shed_queue_wait_ms",
                "shed_tarpit_s",
            )
            if k in cfg
        },
        # the cost benchmark's claims sign citizens in through the development identity
        # provider (a loopback server for the benchmark only, as the demo's)
        dev_idp_key=SigningKey.generate("bench-idp") if cfg.get("dev_idp") else None,
    )


async def serve(settings: Settings) -> None:
    app = create_app(settings)
    app.on_startup.append(freeze_heap)  # as `python -m server serve` does
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(
        runner, settings.host, settings.port, backlog=1024, reuse_address=True, reuse_port=True
    )
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"serving on http://{settings.host}:{settings.port}", file=sys.stderr, flush=True)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str]) -> int:
    cfg = json.loads(Path(argv[0]).read_text())
    if cfg.get("pid_file"):  # under py-spy, the parent of this process is py-spy
        Path(cfg["pid_file"]).write_text(str(os.getpid()))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    settings = settings_from(cfg)
    runner: Callable[[Coroutine[Any, Any, None]], None]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    profile_path = cfg.get("cprofile")
    extra = []
    for _ in range(int(cfg.get("processes", 1)) - 1):  # more processes on the same port
        pid = os.fork()
        if pid == 0:
            runner(serve(settings))
            os._exit(0)
        extra.append(pid)
    if extra:
        Path(cfg["pid_file"] + ".extra").write_text(" ".join(map(str, extra)))
    if not profile_path:
        try:
            runner(serve(settings))
        finally:
            for pid in extra:
                os.kill(pid, signal.SIGTERM)
        return 0
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        runner(serve(settings))
    finally:
        profiler.disable()
        profiler.dump_stats(profile_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
