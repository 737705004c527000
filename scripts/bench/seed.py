"""Seed the benchmark ledger with COPY: citizens, certificates with their owners, one claim
per certificate, ~10 vouchers per claim, merchants and terminals with known credentials, and
the bills of the days before (``HISTORY_SQL``).

Rows are built in Python and streamed with asyncpg's binary COPY
(``copy_records_to_table``); ids are given explicitly (COPY writes identity columns as
given), so no row has to be read back to link the next table, and the identity sequences
are moved past them afterwards. Vouchers are split over two connections (two COPY streams
in parallel: one per core).

Bulk-load pattern: the COPY sessions run with ``session_replication_role = replica``, which
skips the per-row foreign-key triggers (3 million look-ups for the vouchers alone: 10 of the
13 seconds). Every single-column foreign key of the seeded tables is then verified with one
set-wise anti-join, so the data set is exactly as consistent as with the triggers on.
CHECK, NOT NULL and UNIQUE constraints and the indexes are maintained as usual.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from server.auth import hash_terminal_secret, new_terminal_secret
from server.campaign_files import load_bundled_campaign
from server.db import campaigns as campaign_db
from server.db.migrate import migrate

CAMPAIGN_ID = "liaocheng-demo"
MAIN_DISTRICTS = ("dongchangfu", "jingkai", "gaoxin", "dujia")
FACE_VALUE_FEN = 10_000
VALIDITY = timedelta(days=90)


SEEDED_TABLES = (
    "citizens", "certificates", "certificate_owners", "claims", "vouchers", "merchants",
    "terminals", "consumed_tokens", "redemptions", "redemption_items",
)  # fmt: skip

# Bills already paid before the measured day: every n-th citizen spent one voucher (earliest
# expiry first) a day ago, at a terminal picked by citizen id. A ledger in the middle of its
# campaign, not a fresh one: with empty redemption tables PostgreSQL plans the foreign-key
# checks of the first inserts as scans of a (then) empty table and keeps those plans until
# the next ANALYZE, so every later check reads the whole, growing table.
HISTORY_SQL = """
WITH picked AS (
    SELECT DISTINCT ON (v.citizen_id) v.id, v.citizen_id, v.campaign_id, v.face_value_fen,
           t.id AS terminal_id, t.merchant_id
      FROM vouchers v
      JOIN terminals t ON t.id = v.citizen_id % $2 + 1
     WHERE v.citizen_id % $1 = 0 AND v.status = 'available'
     ORDER BY v.citizen_id, v.expires_at, v.id
), tok AS (
    INSERT INTO consumed_tokens (jti, citizen_id, expires_at, consumed_at)
    SELECT gen_random_uuid(), citizen_id, $3::timestamptz + interval '60 seconds', $3
      FROM picked
    RETURNING jti, citizen_id
), red AS (
    INSERT INTO redemptions (campaign_id, merchant_id, terminal_id, citizen_id, receipt_no,
                             bill_fen, spend_threshold_fen, face_value_fen, voucher_count,
                             token_jti, idempotency_key, request_hash, created_at)
    SELECT p.campaign_id, p.merchant_id, p.terminal_id, p.citizen_id, 'H' || p.citizen_id,
           25000, 20000, p.face_value_fen, 1, tok.jti, 'history-' || p.citizen_id,
           sha256(convert_to('history-' || p.citizen_id, 'UTF8')), $3
      FROM picked p JOIN tok USING (citizen_id)
    RETURNING id, citizen_id
), items AS (
    INSERT INTO redemption_items (redemption_id, voucher_id)
    SELECT red.id, p.id FROM red JOIN picked p USING (citizen_id)
)
UPDATE vouchers v SET status = 'redeemed', redeemed_at = $3 FROM picked p WHERE v.id = p.id
"""


async def check_foreign_keys(conn: asyncpg.Connection, tables: tuple[str, ...]) -> None:
    """Every row of ``tables`` has its referenced rows: one anti-join per foreign key."""
    fks = await conn.fetch(
        """
        SELECT c.conname, c.conrelid::regclass::text AS tbl, a.attname AS col,
               c.confrelid::regclass::text AS ref, af.attname AS refcol
          FROM pg_constraint c
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
          JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1]
         WHERE c.contype = 'f' AND cardinality(c.conkey) = 1
           AND c.conrelid::regclass::text = ANY($1::text[])
        """,
        list(tables),
    )
    if not fks:
        raise RuntimeError("no foreign keys found to check: is the schema migrated?")
    for fk in fks:
        missing = await conn.fetchval(
            f"SELECT count(*) FROM {fk['tbl']} x WHERE x.{fk['col']} IS NOT NULL "  # noqa: S608
            f"AND NOT EXISTS (SELECT 1 FROM {fk['ref']} r WHERE r.{fk['refcol']} = x.{fk['col']})"
        )
        if missing:
            raise RuntimeError(f"seed broke foreign key {fk['conname']}: {missing} rows")


@dataclass
class SeedResult:
    citizens: int
    vouchers: int
    merchants: int
    terminals: list[tuple[int, str]]  # (terminal id, secret)
    past_bills: int
    subjects: list[uuid.UUID]  # index i is citizen id i + 1
    seconds: dict[str, float] = field(default_factory=dict)


def _masked(i: int) -> str:
    """A masked ID number of the valid shape: 4 digits, 10 stars, 3 digits, digit or X."""
    region = ("3715", "3716", "3725", "3702")[i % 4]
    last = "0123456789X"[i % 11]
    return f"{region}{'*' * 10}{(i // 11) % 1000:03d}{last}"


async def seed(
    database_url: str,
    *,
    citizens: int = 100_000,
    vouchers_per_citizen: int = 10,
    merchants: int = 1_000,
    terminals: int = 200,
    history_every: int = 5,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> SeedResult:
    now = now or datetime.now(UTC)
    rng = rng or random.Random(20261122)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        await campaign_db.upsert(conn, load_bundled_campaign(CAMPAIGN_ID))
        timings["migrate"] = time.perf_counter() - started
        await conn.execute("SET session_replication_role = replica")

        t = time.perf_counter()
        hashes = os.urandom(32 * citizens)
        subjects = [uuid.UUID(bytes=os.urandom(16), version=4) for _ in range(citizens)]
        masked = [_masked(i) for i in range(citizens)]
        await conn.copy_records_to_table(
            "citizens",
            columns=["id", "id_hash", "id_masked", "subject", "status", "created_at"],
            records=[
                (i + 1, hashes[32 * i : 32 * i + 32], masked[i], subjects[i], "active", now)
                for i in range(citizens)
            ],
        )
        timings["citizens"] = time.perf_counter() - t

        t = time.perf_counter()
        # rule A2 (demo campaign, first phase): housing low tier is 20 bp, so a base of
        # 500,000 元 buys exactly 10 vouchers of 100 元 (A3 holds with equality)
        base_fen = vouchers_per_citizen * FACE_VALUE_FEN * 10_000 // 20
        issued = [date(2026, 9, 1) + timedelta(days=i % 80) for i in range(citizens)]
        districts = [MAIN_DISTRICTS[i % 4] for i in range(citizens)]
        await conn.copy_records_to_table(
            "certificates",
            columns=[
                "id",
                "cert_no",
                "district",
                "property_type",
                "new_build",
                "invoice_excl_vat_fen",
                "tax_relief_fen",
                "issued_on",
            ],
            records=[
                (
                    i + 1,
                    f"鲁(2026)聊城市不动产权第{i + 1:07d}号",
                    districts[i],
                    "housing",
                    True,
                    base_fen,
                    0,
                    issued[i],
                )
                for i in range(citizens)
            ],
        )
        await conn.copy_records_to_table(
            "certificate_owners",
            columns=["certificate_id", "id_hash", "id_masked"],
            records=[(i + 1, hashes[32 * i : 32 * i + 32], masked[i]) for i in range(citizens)],
        )
        # claimed 1-60 days ago; vouchers live 90 days from the claim, so all are unexpired
        claimed = [now - timedelta(days=1 + rng.random() * 59) for _ in range(citizens)]
        await conn.copy_records_to_table(
            "claims",
            columns=[
                "id", "campaign_id", "certificate_id", "citizen_id", "base_fen", "rate_bp",
                "voucher_count", "face_value_fen", "claimed_at", "expires_at",
            ],
            records=[
                (
                    i + 1, CAMPAIGN_ID, i + 1, i + 1, base_fen, 20, vouchers_per_citizen,
                    FACE_VALUE_FEN, claimed[i], claimed[i] + VALIDITY,
                )
                for i in range(citizens)
            ],
        )  # fmt: skip
        timings["certificates_claims"] = time.perf_counter() - t

        t = time.perf_counter()
        total_vouchers = citizens * vouchers_per_citizen
        half = citizens // 2

        async def copy_vouchers(first: int, last: int) -> None:
            c = conn if first == 0 else await asyncpg.connect(database_url)
            try:
                await c.execute("SET session_replication_role = replica")
                await c.copy_records_to_table(
                    "vouchers",
                    columns=[
                        "id", "campaign_id", "claim_id", "citizen_id", "face_value_fen",
                        "expires_at", "status",
                    ],
                    records=(
                        (
                            i * vouchers_per_citizen + k + 1, CAMPAIGN_ID, i + 1, i + 1,
                            FACE_VALUE_FEN, claimed[i] + VALIDITY, "available",
                        )
                        for i in range(first, last)
                        for k in range(vouchers_per_citizen)
                    ),
                )  # fmt: skip
            finally:
                if c is not conn:
                    await c.close()

        await asyncio.gather(copy_vouchers(0, half), copy_vouchers(half, citizens))
        timings["vouchers"] = time.perf_counter() - t

        t = time.perf_counter()
        await conn.copy_records_to_table(
            "merchants",
            columns=["id", "name", "district", "admitted", "permitted", "status", "created_at"],
            records=[
                (j + 1, f"示范商户{j + 1:04d}", MAIN_DISTRICTS[j % 4], True, True, "active", now)
                for j in range(merchants)
            ],
        )
        creds: list[tuple[int, str]] = []
        rows: list[tuple[Any, ...]] = []
        step = max(1, merchants // terminals)
        for j in range(terminals):
            secret = new_terminal_secret()
            creds.append((j + 1, secret))
            merchant_id = (j * step) % merchants + 1
            rows.append(
                (j + 1, merchant_id, f"收银台 {j + 1}", hash_terminal_secret(secret), "active", now)
            )
        await conn.copy_records_to_table(
            "terminals",
            columns=["id", "merchant_id", "label", "credential_hash", "status", "created_at"],
            records=rows,
        )
        for table in ("citizens", "certificates", "claims", "vouchers", "merchants", "terminals"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
        timings["merchants_terminals"] = time.perf_counter() - t

        t = time.perf_counter()
        status = await conn.execute(HISTORY_SQL, history_every, terminals, now - timedelta(days=1))
        past_bills = int(status.split()[-1])
        timings["history"] = time.perf_counter() - t

        t = time.perf_counter()
        await conn.execute("SET session_replication_role = origin")
        await check_foreign_keys(conn, SEEDED_TABLES)
        timings["check_foreign_keys"] = time.perf_counter() - t

        t = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze"] = time.perf_counter() - t
    finally:
        await conn.close()
    timings["total"] = time.perf_counter() - started
    return SeedResult(
        citizens=citizens,
        vouchers=total_vouchers,
        merchants=merchants,
        terminals=creds,
        past_bills=past_bills,
        subjects=subjects,
        seconds=timings,
    )
