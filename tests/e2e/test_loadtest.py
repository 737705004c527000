"""The operators' load test against a real server, and its ledger check failing on purpose."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg

from ops import loadtest
from server.app import create_app
from server.campaign_files import load_bundled_campaign
from server.db import campaigns as campaign_db
from server.db import seeding
from server.settings import Settings
from tests import factories
from tests.e2e.conftest import Clock, flushed_redis_database


def small_run(
    server: Any,
    database_url: str,
    settings: Settings,
    clock: Clock,
    out: Path,
    *,
    tills: int,
    certificates: int,
    merchants: int,
    duration: float,
    seed: int,
) -> loadtest.Config:
    """A short load test against the test server, one till per concurrent worker."""
    return loadtest.Config(
        server=str(server.make_url("")).rstrip("/"),
        database_url=database_url,
        id_hash_key=settings.id_hash_key,
        campaign_id="liaocheng-2024",
        certificates=certificates,
        merchants=merchants,
        terminals=tills,
        concurrency=tills,
        duration=duration,
        out_dir=out,
        seed=seed,
        quiet=True,
        now=clock(),
        # issue 13: the ticket workload on Shangqiu's own programme (2024-09-10 is within its
        # issuance), a few tickets at two sales offices
        ticket_programme="shangqiu-2025",
        tickets=20,
        offices=2,
    )


async def test_the_load_test_runs_reports_and_checks_the_ledger(
    aiohttp_server: Any, settings: Settings, clock: Clock, fresh_database_url: str, tmp_path: Path
) -> None:
    # a fresh ledger hands out ids from 1 again: it gets a Redis database of its own too, so
    # that other tests' filters on the same ids (throttled terminals, used keys) do not apply
    redis_url = await flushed_redis_database(settings.redis_url, 15)
    app_settings = replace(settings, database_url=fresh_database_url, redis_url=redis_url)
    server = await aiohttp_server(create_app(app_settings, clock=clock))
    cfg = small_run(
        server,
        fresh_database_url,
        settings,
        clock,
        tmp_path / "out",
        tills=8,
        certificates=300,
        merchants=5,
        duration=3,
        seed=7,
    )
    assert await loadtest.run(cfg, "loadtest (test)") == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["violations"] == []
    for op in ("claim", "quote", "redeem", "refund", "day", "ticket_quote", "ticket_use"):
        assert result["operations"][op]["count"] > 0, op
        assert result["operations"][op]["p99_ms"] >= result["operations"][op]["p50_ms"]
    assert (tmp_path / "out" / "latency.png").read_bytes().startswith(b"\x89PNG")
    assert "| redeem |" in (tmp_path / "out" / "results.md").read_text()
    conn = await asyncpg.connect(fresh_database_url)
    try:
        redeemed = await conn.fetchval("SELECT count(*) FROM vouchers WHERE status = 'redeemed'")
        assert redeemed > 0
        # now redeem one voucher twice behind the database's back
        await conn.execute("DROP INDEX redemption_items_one_live")
        await conn.execute(
            """
            INSERT INTO redemption_items (redemption_id, voucher_id)
            SELECT (SELECT max(id) FROM redemptions), voucher_id FROM redemption_items
             WHERE refund_id IS NULL
               AND redemption_id <> (SELECT max(id) FROM redemptions) LIMIT 1
            """
        )
    finally:
        await conn.close()
    code = await asyncio.to_thread(
        loadtest.main, ["--check-only", "--database-url", fresh_database_url]
    )
    assert code == 1
    found = {v.check for v in await loadtest.check_only(fresh_database_url)}
    assert "voucher_redeemed_twice" in found


async def test_a_server_or_database_out_of_reach_is_one_line_naming_the_address(
    fresh_database_url: str, capsys: Any
) -> None:
    # issue 10: no traceback, the address tried (and no password)
    key = base64.b64encode(b"k" * 32).decode()
    argv = ["--server", "http://127.0.0.1:9", "--database-url", fresh_database_url]
    code = await asyncio.to_thread(loadtest.main, [*argv, "--id-hash-key-b64", key, "--quiet"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "http://127.0.0.1:9" in err and "Traceback" not in err, err
    url = "postgresql://someone:hunter2@127.0.0.1:9/ledger"
    code = await asyncio.to_thread(loadtest.main, ["--check-only", "--database-url", url])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "127.0.0.1:9/ledger" in err, err
    assert "hunter2" not in err and "Traceback" not in err


async def test_clean_removes_what_the_load_test_seeded_and_its_bills_only(
    aiohttp_server: Any,
    settings: Settings,
    clock: Clock,
    fresh_database_url: str,
    tmp_path: Path,
    capsys: Any,
) -> None:
    # issue 10: the next ranking counts real bills only
    redis_url = await flushed_redis_database(settings.redis_url, 15)
    app_settings = replace(settings, database_url=fresh_database_url, redis_url=redis_url)
    server = await aiohttp_server(create_app(app_settings, clock=clock))
    conn = await asyncpg.connect(fresh_database_url)
    try:
        # a real shop and a real citizen's bill, which must survive the clean-up
        await campaign_db.upsert(conn, load_bundled_campaign("liaocheng-2024"))
        campaign_id = await factories.campaign(conn)
        shop = await factories.merchant(conn)
        till = await factories.terminal(conn, shop)
        citizen = await factories.citizen(conn)
        _, vouchers = await factories.claim_with_vouchers(conn, campaign_id, citizen)
        # one bill with its voucher, as the ledger holds it
        assert await seeding.past_bills(conn, every=1, terminal_ids=[till], at=clock()) == 1
        real_bill = await conn.fetchval("SELECT id FROM redemptions WHERE citizen_id = $1", citizen)
        out = tmp_path / "out"
        cfg = small_run(
            server,
            fresh_database_url,
            settings,
            clock,
            out,
            tills=4,
            certificates=100,
            merchants=3,
            duration=2,
            seed=11,
        )
        assert await loadtest.run(cfg, "loadtest (test)") == 0
        assert await conn.fetchval("SELECT count(*) FROM redemptions") > 1
        code = await asyncio.to_thread(
            loadtest.main, ["--clean", "--database-url", fresh_database_url]
        )
        assert code == 0
        assert "merchants" in capsys.readouterr().out
        assert (
            await conn.fetchval("SELECT count(*) FROM merchants WHERE name LIKE 'LT-%'")
            == await conn.fetchval("SELECT count(*) FROM certificates WHERE cert_no LIKE 'LT-%'")
            == 0
        )
        assert [r["id"] for r in await conn.fetch("SELECT id FROM redemptions")] == [real_bill]
        for table in ("tickets", "ticket_uses", "listings"):  # issue 13: the ticket workload's
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0  # noqa: S608
        assert await conn.fetchval("SELECT count(*) FROM vouchers") == len(vouchers)
        assert await conn.fetchval("SELECT count(*) FROM citizens") == 1
        assert await loadtest.check_only(fresh_database_url) == []
    finally:
        await conn.close()
