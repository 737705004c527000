"""The operators' load test against a real server, and its ledger check failing on purpose."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis.asyncio as aioredis

from ops import loadtest
from server.app import create_app
from server.settings import Settings
from tests.e2e.conftest import Clock


def fresh_redis_database(url: str) -> str:
    """The same Redis server, its database 15 (the suite uses 0)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return urlunsplit(parts._replace(query="db=15"))
    return urlunsplit(parts._replace(path="/15"))


async def test_the_load_test_runs_reports_and_checks_the_ledger(
    aiohttp_server: Any, settings: Settings, clock: Clock, fresh_database_url: str, tmp_path: Path
) -> None:
    # a fresh ledger hands out ids from 1 again: it gets a Redis database of its own too, so
    # that other tests' filters on the same ids (throttled terminals, used keys) do not apply
    redis_url = fresh_redis_database(settings.redis_url)
    flush = aioredis.Redis.from_url(redis_url)
    try:
        await flush.flushdb()
    finally:
        await flush.aclose()
    app_settings = replace(settings, database_url=fresh_database_url, redis_url=redis_url)
    server = await aiohttp_server(create_app(app_settings, clock=clock))
    cfg = loadtest.Config(
        server=str(server.make_url("")).rstrip("/"),
        database_url=fresh_database_url,
        id_hash_key=settings.id_hash_key,
        campaign_id="liaocheng-2024",
        certificates=300,
        merchants=5,
        terminals=8,
        concurrency=8,
        duration=3,
        out_dir=tmp_path / "out",
        seed=7,
        quiet=True,
        now=clock(),
    )
    assert await loadtest.run(cfg, "loadtest (test)") == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["violations"] == []
    for op in ("claim", "quote", "redeem", "refund", "day"):
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
