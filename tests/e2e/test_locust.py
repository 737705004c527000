"""Issue 14: the load test's workload as a Locust file, one master and two workers on
loopback driving one run against a real server; Locust merges the workers' percentiles and
the master checks the ledger at the end, as ``ops/loadtest.py`` does.

The master, the workers and the server are separate processes (the server is this test's
app, served on a loopback port); every run is bounded: Locust's own ``-t`` and a timeout."""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import os
import socket
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from server.app import create_app
from server.settings import Settings
from tests.conftest import ROOT
from tests.e2e.conftest import Clock, flushed_redis_database

OPERATIONS = {"claim", "qr", "quote", "redeem", "refund", "day"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def locust(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "locust", "-f", str(ROOT / "ops" / "locustfile.py"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


async def test_two_workers_drive_one_run_with_merged_percentiles_and_a_ledger_check(
    aiohttp_server: Any, settings: Settings, clock: Clock, fresh_database_url: str, tmp_path: Path
) -> None:
    redis_url = await flushed_redis_database(settings.redis_url, 14)
    own = replace(settings, database_url=fresh_database_url, redis_url=redis_url)
    server = await aiohttp_server(create_app(own, clock=clock))
    port = free_port()
    master = await locust(
        "--master", "--headless", "--expect-workers", "2",
        "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
        "-u", "8", "-r", "8", "-t", "8s", "--only-summary",
        "--host", str(server.make_url("")).rstrip("/"),
        "--database-url", fresh_database_url,
        "--id-hash-key-b64", base64.b64encode(settings.id_hash_key).decode(),
        "--campaign", "liaocheng-2024", "--now", clock().isoformat(),
        "--certificates", "300", "--merchants", "5", "--terminals", "8",
        "--csv", str(tmp_path / "run"), "--report-dir", str(tmp_path / "report"),
    )  # fmt: skip
    workers = [
        await locust("--worker", "--master-host", "127.0.0.1", "--master-port", str(port))
        for _ in range(2)
    ]
    try:
        output, _ = await asyncio.wait_for(master.communicate(), 240)
        for worker in workers:
            await asyncio.wait_for(worker.wait(), 30)
    finally:
        for process in (master, *workers):
            if process.returncode is None:
                process.kill()
                await process.wait()
    text = output.decode(errors="replace")
    assert master.returncode == 0, text[-3000:]

    # both workers drove the run: the requests each reported to the master
    reported = json.loads((tmp_path / "report" / "workers.json").read_text())
    assert len(reported) == 2 and all(n > 0 for n in reported.values()), reported
    # the master merged them: one table, per operation, with percentiles
    with (tmp_path / "run_stats.csv").open() as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    assert set(rows) >= OPERATIONS, sorted(rows)
    total = rows["Aggregated"]
    assert int(total["Request Count"]) == sum(reported.values())
    for op in OPERATIONS:
        assert int(rows[op]["Request Count"]) > 0, op
        assert float(rows[op]["99%"]) >= float(rows[op]["50%"]) > 0, op
    # and checked the ledger at the end
    assert "all invariants hold" in (tmp_path / "report" / "ledger.txt").read_text()
