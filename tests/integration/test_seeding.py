"""Issue 10, one seeding module and one ledger check: the demo, the tests' factories, the
load test and the benchmark all write known rows through ``server/db/seeding.py``, and what it
writes is a ledger that holds (rules U3, U7, F1, F2 as server/db/invariants.py checks them,
the one check the load test and the benchmark end with)."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from server.db import seeding
from server.db.invariants import check_ledger
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
SEEDED = "citizens|certificates|certificate_owners|claims|vouchers|merchants|terminals|redemptions"
WRITES = re.compile(rf"INSERT\s+INTO\s+({SEEDED})\b|copy_records_to_table\(\s*\"({SEEDED})\"")


def test_only_the_seeding_module_writes_known_rows_outside_the_use_cases() -> None:
    """The tools and the factories hold no SQL of their own for these tables (the ledger's
    constraint tests write bad rows on purpose, and stay out of this)."""
    places = [ROOT / "tests" / "factories.py", *(ROOT / "ops").rglob("*.py")]
    places += (ROOT / "scripts").rglob("*.py")
    offenders = [str(p.relative_to(ROOT)) for p in places if WRITES.search(p.read_text("utf-8"))]
    assert offenders == []


async def test_the_factories_write_through_the_seeding_module(db: asyncpg.Connection) -> None:
    campaign_id = await f.campaign(db)
    citizen_id = await f.citizen(db)
    claim_id, vouchers = await f.claim_with_vouchers(db, campaign_id, citizen_id, count=4)
    assert len(vouchers) == len(set(vouchers)) == 4
    rows = await db.fetch(
        "SELECT claim_id, citizen_id, status FROM vouchers WHERE id = ANY($1::bigint[])", vouchers
    )
    assert {(r["claim_id"], r["citizen_id"], r["status"]) for r in rows} == {
        (claim_id, citizen_id, "available")
    }


async def test_the_benchmark_seeds_a_ledger_that_holds(fresh_database_url: str) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import bench_redeem
        from bench.seed import seed
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    result = await seed(
        fresh_database_url,
        citizens=200,
        vouchers_per_citizen=3,
        merchants=10,
        terminals=4,
        history_every=5,
        now=datetime(2026, 11, 20, 2, tzinfo=UTC),
    )
    assert result.past_bills == 40  # citizens 5, 10, … 200
    conn = await asyncpg.connect(fresh_database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM vouchers") == 600
        assert await conn.fetchval("SELECT max(id) FROM citizens") == 200  # ids 1 … n, in order
        assert await check_ledger(conn) == []
        # the sequences moved past the seeded ids: the next row takes the next id
        (merchant_id,) = await seeding.merchants(conn, [seeding.MerchantRow("next", "gaoxin")])
        assert merchant_id == 11
    finally:
        await conn.close()
    # issue 10, one ledger check: the benchmark's verdict is server/db/invariants.py's
    verdict = await bench_redeem.check_ledger(fresh_database_url)
    assert verdict["violations"] == [] and verdict["consistent"]
    assert verdict["redemptions"] == 40 and verdict["vouchers_redeemed"] == 40
