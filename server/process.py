"""How one server process runs: JSON logs on stderr, uvloop when there is one, the app on a
port, and a graceful stop. Shared by ``python -m server serve`` and the demo
(``python -m ops demo``)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aiohttp import web

from server import listener
from server.app import create_app, freeze_heap
from server.settings import Settings
from server.web import JsonLogFormatter

log = logging.getLogger("server")

# after the listening socket stopped admitting: time for a connection taken last to deliver
# the request its client sent right after connecting, so that it is answered, not closed
FIRST_REQUEST_GRACE_S = 0.1


def fast_loop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not on every platform
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def json_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def run_server(settings: Settings, *, host: str, port: int, reuse_port: bool = False) -> None:
    """Serve until SIGINT or SIGTERM, then stop gracefully (issue 14)."""
    app = create_app(settings)
    app.on_startup.append(freeze_heap)
    asyncio.run(serve(app, host, port, reuse_port, settings.shutdown_timeout_s))


async def serve(
    app: web.Application, host: str, port: int, reuse_port: bool, shutdown_timeout_s: float
) -> None:
    """Start the app (its cleanup contexts: migrations, pools), listen, and on a signal stop
    in this order: admit no new connection and take those already queued (server/listener.py);
    stop listening; answer every request received, waiting up to ``shutdown_timeout_s``
    (aiohttp's shutdown); only then close the pools and drain the batchers (the cleanup
    contexts, server/app.py). No request is cut off and no answered redemption is lost."""
    stopping = asyncio.Event()  # a signal during start-up stops the server once started
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout_s)
    await runner.setup()
    try:
        sock = listener.listening_socket(host, port, reuse_port=reuse_port)
        await web.SockSite(runner, sock).start()
        await stopping.wait()
        log.info("stopping: admitting no new connection, answering those in flight")
        await listener.drain(sock)
        await asyncio.sleep(FIRST_REQUEST_GRACE_S)
    finally:
        await runner.cleanup()
    log.info("stopped")
