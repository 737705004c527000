"""How one server process runs: JSON logs on stderr, uvloop when there is one, the app on a
port. Shared by ``python -m server serve`` and the demo (``python -m ops demo``)."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiohttp import web

from server.app import create_app, freeze_heap
from server.settings import Settings
from server.web import JsonLogFormatter


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
    """Serve until SIGINT or SIGTERM."""
    app = create_app(settings)
    app.on_startup.append(freeze_heap)
    web.run_app(app, host=host, port=port, print=None, access_log=None, reuse_port=reuse_port)
