"""Entry point of the production server; the only place in ``server/`` that reads the
environment.

python -m server serve     # VOUCHER_* variables (see README)
python -m server migrate   # only apply the pending migrations (VOUCHER_DATABASE_URL), then exit:
                           # the one-shot job before the servers start (docker/compose.yaml)

The demo (embedded services, seeded data, the development identity provider) is an operator
tool: ``python -m ops demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from server import db
from server.db.migrate import migrate
from server.process import fast_loop, json_logging, run_server
from server.settings import Settings, SettingsError, with_files


def serve() -> int:
    """VOUCHER_PROCESSES server processes share the port (SO_REUSEPORT): one per core (on
    the 2-core benchmark machine, two beat one by about a third even with PostgreSQL on the
    same cores; docs/BENCHMARKS.md)."""
    json_logging()
    fast_loop()
    settings = Settings.from_env()
    processes = int(os.environ.get("VOUCHER_PROCESSES", "1"))
    children = []
    for _ in range(processes - 1):
        pid = os.fork()
        if pid == 0:
            _serve_one(settings, reuse_port=True)
            os._exit(0)
        children.append(pid)
    try:
        _serve_one(settings, reuse_port=processes > 1)
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
    return 0


def _serve_one(settings: Settings, *, reuse_port: bool) -> None:
    run_server(settings, host=settings.host, port=settings.port, reuse_port=reuse_port)


def migrate_only() -> int:
    """Apply the pending migrations under their advisory lock (server/db/migrate.py) and exit;
    servers starting afterwards find nothing to apply."""
    json_logging()
    url = with_files(os.environ).get("VOUCHER_DATABASE_URL", "")
    if not url:
        raise SettingsError("VOUCHER_DATABASE_URL is not set")
    applied = asyncio.run(_migrate(url))
    logging.getLogger("server").info("migrations applied: %s", applied or "none pending")
    return 0


async def _migrate(url: str) -> list[int]:
    conn = await db.connect(url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m server")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the server from VOUCHER_* settings")
    sub.add_parser("migrate", help="apply the pending migrations (VOUCHER_DATABASE_URL), exit")
    command = parser.parse_args(argv).command
    try:
        return migrate_only() if command == "migrate" else serve()
    except SettingsError as exc:
        print(f"python -m server {command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
