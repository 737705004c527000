"""Migrations run on start, are safe to rerun, and refuse a file edited after it was applied."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from server.db.migrate import (
    LOCK_KEY,
    MIGRATIONS_DIR,
    MigrationError,
    load_migrations,
    migrate,
)
from tests import factories as f
from tests.conftest import Services, _with_database

SCHEMA_SNAPSHOT = """
SELECT 'column' AS kind, table_name || '.' || column_name || ':' || data_type
       || ':' || is_nullable || ':' || coalesce(column_default, '') AS what
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass || '.' || conname || ':' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'trigger', tgrelid::regclass || '.' || tgname FROM pg_trigger WHERE NOT tgisinternal
ORDER BY 1, 2
"""


@pytest.fixture
async def empty_db(test_services: Services) -> AsyncIterator[asyncpg.Connection]:
    name = f"voucher_migrate_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(test_services.admin_database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(_with_database(test_services.admin_database_url, name))
    try:
        yield conn
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_migrations_applied_twice_change_nothing_the_second_time(
    empty_db: asyncpg.Connection,
) -> None:
    every_version = [m.version for m in load_migrations()]
    assert await migrate(empty_db) == every_version
    before = [tuple(r) for r in await empty_db.fetch(SCHEMA_SNAPSHOT)]
    recorded = await empty_db.fetch("SELECT version, checksum, applied_at FROM schema_migrations")

    assert await migrate(empty_db) == []

    assert [tuple(r) for r in await empty_db.fetch(SCHEMA_SNAPSHOT)] == before
    again = await empty_db.fetch("SELECT version, checksum, applied_at FROM schema_migrations")
    assert again == recorded
    assert len(before) > 100  # the snapshot really lists the ledger


async def test_a_migration_edited_after_it_was_applied_stops_start_up(
    empty_db: asyncpg.Connection, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    await migrate(empty_db, directory)
    first = sorted(directory.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(empty_db, directory)


async def test_a_failing_migration_leaves_nothing_half_applied(
    empty_db: asyncpg.Connection, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    bad_version = len(load_migrations()) + 1
    (directory / f"{bad_version:04d}_broken.sql").write_text(
        "CREATE TABLE half_done (id int); SELECT no_such_function();"
    )
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await migrate(empty_db, directory)
    assert await empty_db.fetchval("SELECT to_regclass('half_done')") is None
    assert await empty_db.fetchval("SELECT max(version) FROM schema_migrations") == bad_version - 1
    assert await migrate(empty_db) == []


async def test_migrators_started_at_once_apply_each_migration_once(
    empty_db: asyncpg.Connection, test_services: Services
) -> None:
    # issue 14: several servers (hosts) starting together migrate once, under the advisory
    # lock. The lock is held here first, so all four are surely waiting at the same moment.
    url = _with_database(
        test_services.admin_database_url, await empty_db.fetchval("SELECT current_database()")
    )
    migrators = [await asyncpg.connect(url) for _ in range(4)]
    await empty_db.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        runs = [asyncio.create_task(migrate(conn)) for conn in migrators]
        waiting = 0
        for _ in range(200):  # each migrator's session queues behind the lock
            waiting = await empty_db.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND objid = $1",
                LOCK_KEY,
            )
            if waiting == len(migrators):
                break
            await asyncio.sleep(0.01)
        assert waiting == len(migrators)
        assert await empty_db.fetchval("SELECT to_regclass('schema_migrations')") is None
        await empty_db.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        applied = await asyncio.gather(*runs)
    finally:
        for conn in migrators:
            await conn.close()
    every_version = [m.version for m in load_migrations()]
    # one of them applied everything, the others found it done and applied nothing
    assert sorted(applied, key=len) == [[], [], [], every_version]
    rows = await empty_db.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in rows] == every_version


async def test_bills_of_a_ledger_in_use_migrate_to_bills_per_business_day(
    empty_db: asyncpg.Connection, tmp_path: Path
) -> None:
    # rule U4 (issue 11 item 3): a ledger at version 6 (receipt numbers unique per shop
    # forever) takes migration 7 with its bills in place: each gets the Shanghai date it was
    # made on and the shop-wide scope, and the same receipt number is a new bill next day
    before = tmp_path / "migrations"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:4]) <= 6:
            shutil.copy(path, before)
    assert await migrate(empty_db, before) == [1, 2, 3, 4, 5, 6]
    campaign_id = await f.campaign(empty_db)
    merchant_id = await f.merchant(empty_db)
    terminal_id = await f.terminal(empty_db, merchant_id)
    citizen_id = await f.citizen(empty_db)
    old_insert = """
        INSERT INTO redemptions (campaign_id, merchant_id, terminal_id, citizen_id, receipt_no,
                                 bill_fen, spend_threshold_fen, face_value_fen, voucher_count,
                                 token_jti, idempotency_key, request_hash, created_at)
        VALUES ($1, $2, $3, $4, $5, 40000, 20000, 10000, 1, $6, $7, $8, $9)
    """
    # 23:59 on 10 September and 00:01 on 11 September in Shanghai: one UTC date
    late, early_next = (
        datetime(2024, 9, 10, 15, 59, tzinfo=UTC),
        datetime(2024, 9, 10, 16, 1, tzinfo=UTC),
    )
    for receipt_no, at in (("0001", late), ("0002", early_next)):
        await empty_db.execute(
            old_insert,
            campaign_id,
            merchant_id,
            terminal_id,
            citizen_id,
            receipt_no,
            await f.consumed_token(empty_db, citizen_id),
            f.ref("idem"),
            f.fake_hash(),
            at,
        )

    assert await migrate(empty_db) == [m.version for m in load_migrations()][6:]

    rows = await empty_db.fetch(
        "SELECT receipt_no, business_date, receipt_till FROM redemptions ORDER BY receipt_no"
    )
    assert [(r["receipt_no"], str(r["business_date"]), r["receipt_till"]) for r in rows] == [
        ("0001", "2024-09-10", None),
        ("0002", "2024-09-11", None),
    ]
    parties: f.Parties = {
        "merchant_id": merchant_id,
        "terminal_id": terminal_id,
        "citizen_id": citizen_id,
    }
    # 0001 again on the 11th is another day's bill; 0002 again that day is refused
    await f.redemption(
        empty_db, campaign_id=campaign_id, receipt_no="0001", created_at=early_next, **parties
    )
    with pytest.raises(asyncpg.UniqueViolationError, match="redemptions_receipt_no_per_day"):
        await f.redemption(
            empty_db, campaign_id=campaign_id, receipt_no="0002", created_at=early_next, **parties
        )
    settings = await empty_db.fetchrow(
        "SELECT receipts_per_till, refund_needs_manager FROM merchants WHERE id = $1", merchant_id
    )
    assert settings is not None
    assert tuple(settings) == (False, False)  # the settings start off: nothing changes unasked
