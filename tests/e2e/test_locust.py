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

import asyncpg

from server.app import create_app
from server.campaign_files import load_bundled_campaign
from server.db import campaigns as campaign_db
from server.db import seeding
from server.settings import Settings
from tests import factories
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


async def run(
    aiohttp_server: Any,
    settings: Settings,
    clock: Clock,
    database_url: str,
    out: Path,
    *,
    workers: int,
    seconds: int,
) -> tuple[int, str]:
    """A master and ``workers`` workers against this test's server: exit status, output."""
    redis_url = await flushed_redis_database(settings.redis_url, 14)
    own = replace(settings, database_url=database_url, redis_url=redis_url)
    server = await aiohttp_server(create_app(own, clock=clock))
    port = free_port()
    master = await locust(
        "--master", "--headless", "--expect-workers", str(workers),
        "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
        "-u", "8", "-r", "8", "-t", f"{seconds}s", "--only-summary",
        "--host", str(server.make_url("")).rstrip("/"),
        "--database-url", database_url,
        "--id-hash-key-b64", base64.b64encode(settings.id_hash_key).decode(),
        "--campaign", "liaocheng-2024", "--now", clock().isoformat(),
        "--certificates", "300", "--merchants", "5", "--terminals", "8",
        "--csv", str(out / "run"), "--report-dir", str(out / "report"),
    )  # fmt: skip
    started = [
        await locust("--worker", "--master-host", "127.0.0.1", "--master-port", str(port))
        for _ in range(workers)
    ]
    try:
        output, _ = await asyncio.wait_for(master.communicate(), 240)
        for worker in started:
            await asyncio.wait_for(worker.wait(), 30)
    finally:
        for process in (master, *started):
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert master.returncode is not None
    return master.returncode, output.decode(errors="replace")


async def test_two_workers_drive_one_run_with_merged_percentiles_and_a_ledger_check(
    aiohttp_server: Any, settings: Settings, clock: Clock, fresh_database_url: str, tmp_path: Path
) -> None:
    code, text = await run(
        aiohttp_server, settings, clock, fresh_database_url, tmp_path, workers=2, seconds=8
    )
    assert code == 0, text[-3000:]

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


async def test_a_ledger_that_does_not_hold_fails_the_run(
    aiohttp_server: Any, settings: Settings, clock: Clock, fresh_database_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:  # one voucher redeemed twice behind the database's back, before the run
        await campaign_db.upsert(conn, load_bundled_campaign("liaocheng-2024"))
        campaign_id = await factories.campaign(conn)
        till = await factories.terminal(conn, await factories.merchant(conn))
        for _ in range(2):
            await factories.claim_with_vouchers(conn, campaign_id, await factories.citizen(conn))
        assert await seeding.past_bills(conn, every=1, terminal_ids=[till], at=clock()) == 2
        await conn.execute("DROP INDEX redemption_items_one_live")
        await conn.execute(
            """
            INSERT INTO redemption_items (redemption_id, voucher_id)
            SELECT (SELECT max(id) FROM redemptions), voucher_id FROM redemption_items
             WHERE redemption_id <> (SELECT max(id) FROM redemptions) LIMIT 1
            """
        )
    finally:
        await conn.close()
    code, text = await run(
        aiohttp_server, settings, clock, fresh_database_url, tmp_path, workers=1, seconds=3
    )
    assert code == 1, text[-3000:]
    assert "voucher_redeemed_twice" in (tmp_path / "report" / "ledger.txt").read_text()
