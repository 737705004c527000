"""Known rows written in bulk: the one place that writes the ledger's people, certificates,
claims, vouchers, merchants, terminals and past bills outside the server's use cases. The
demo (ops/demo.py), the tests' factories, the load test (ops/loadtest.py) and the benchmark
(scripts/bench/seed.py) all seed through here, so a schema change touches this module and
the runtime adapters beside it, nothing else.

Rows go in with binary COPY (``copy_records_to_table``), one stream per table whatever the
number of rows. Ids are taken from the tables' own sequences first (one ``nextval`` per row,
in one statement), so every function returns the new rows' ids in the order given without
reading anything back, and later tables can be linked to earlier ones in Python (vouchers, of
which no id is needed back, take theirs from the column default). On a fresh
ledger the ids are 1, 2, 3 … in that order.

Callers hash secrets and ID numbers themselves (rules X2, X3): these functions take what is
stored. Writes obey every constraint and trigger, except inside ``without_triggers`` (the
benchmark's million vouchers), which checks every foreign key set-wise when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from server.db import Conn

# --- rows -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CitizenRow:
    id_hash: bytes
    id_masked: str
    subject: uuid.UUID = field(default_factory=uuid.uuid4)
    status: str = "active"


@dataclass(frozen=True, slots=True)
class CertificateRow:
    """A registration record (rule E3) and its owners as stored: (hashed ID, masked ID)."""

    cert_no: str
    district: str
    issued_on: date
    invoice_excl_vat_fen: int
    owners: tuple[tuple[bytes, str], ...] = ()
    tax_relief_fen: int = 0
    property_type: str = "housing"
    new_build: bool = True


@dataclass(frozen=True, slots=True)
class ClaimRow:
    """A claim (rules A1-A3) and its ``voucher_count`` available vouchers (rule V1)."""

    campaign_id: str
    certificate_id: int
    citizen_id: int
    base_fen: int
    rate_bp: int
    voucher_count: int
    face_value_fen: int
    claimed_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class MerchantRow:
    name: str
    district: str
    admitted: bool = True
    permitted: bool = True
    kind: str = "shop"  # rule T4: or "developer", whose sales office takes house tickets


@dataclass(frozen=True, slots=True)
class TerminalRow:
    merchant_id: int
    label: str
    credential_hash: bytes


@dataclass(frozen=True, slots=True)
class RedemptionRow:
    """A bill as the ledger stores it, without its vouchers (for tests of the ledger's own
    constraints; past bills with vouchers are ``past_bills``)."""

    campaign_id: str
    merchant_id: int
    terminal_id: int
    citizen_id: int
    receipt_no: str
    bill_fen: int
    voucher_count: int
    token_jti: uuid.UUID
    idempotency_key: str
    request_hash: bytes
    spend_threshold_fen: int = 20_000
    face_value_fen: int = 10_000
    created_at: datetime | None = None  # now
    receipt_till: int | None = None  # rule U4: the till, where receipts are numbered per till


# --- writing --------------------------------------------------------------------------------


async def new_ids(conn: Conn, table: str, count: int) -> list[int]:
    """``count`` ids from ``table``'s own sequence, increasing."""
    if count == 0:
        return []
    ids = await conn.fetchval(
        "SELECT array_agg(nextval(pg_get_serial_sequence($1, 'id'))) FROM generate_series(1, $2)",
        table,
        count,
    )
    return sorted(int(i) for i in ids)


async def _copy(
    conn: Conn, table: str, columns: Sequence[str], records: Iterable[tuple[Any, ...]]
) -> None:
    await conn.copy_records_to_table(table, columns=list(columns), records=records)


async def districts(conn: Conn, names: dict[str, str]) -> None:
    """District codes and names; one that exists already keeps its name."""
    await conn.executemany(
        "INSERT INTO districts (code, name) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING",
        list(names.items()),
    )


async def citizens(conn: Conn, rows: Sequence[CitizenRow]) -> list[int]:
    ids = await new_ids(conn, "citizens", len(rows))
    await _copy(
        conn,
        "citizens",
        ("id", "id_hash", "id_masked", "subject", "status"),
        ((i, r.id_hash, r.id_masked, r.subject, r.status) for i, r in zip(ids, rows, strict=True)),
    )
    return ids


async def certificates(conn: Conn, rows: Sequence[CertificateRow]) -> list[int]:
    ids = await new_ids(conn, "certificates", len(rows))
    await _copy(
        conn,
        "certificates",
        (
            "id",
            "cert_no",
            "district",
            "property_type",
            "new_build",
            "invoice_excl_vat_fen",
            "tax_relief_fen",
            "issued_on",
        ),
        (
            (i, r.cert_no, r.district, r.property_type, r.new_build, r.invoice_excl_vat_fen,
             r.tax_relief_fen, r.issued_on)
            for i, r in zip(ids, rows, strict=True)
        ),
    )  # fmt: skip
    await _copy(
        conn,
        "certificate_owners",
        ("certificate_id", "id_hash", "id_masked"),
        (
            (i, id_hash, masked)
            for i, r in zip(ids, rows, strict=True)
            for id_hash, masked in r.owners
        ),
    )
    return ids


async def claims(
    conn: Conn, rows: Sequence[ClaimRow], *, voucher_conns: Sequence[Conn] = ()
) -> list[int]:
    """Claims and their vouchers. The vouchers' COPY is split over ``voucher_conns`` (streams
    in parallel, one per core) when given, else written on ``conn``."""
    ids = await new_ids(conn, "claims", len(rows))
    await _copy(
        conn,
        "claims",
        (
            "id", "campaign_id", "certificate_id", "citizen_id", "base_fen", "rate_bp",
            "voucher_count", "face_value_fen", "claimed_at", "expires_at",
        ),
        (
            (i, r.campaign_id, r.certificate_id, r.citizen_id, r.base_fen, r.rate_bp,
             r.voucher_count, r.face_value_fen, r.claimed_at, r.expires_at)
            for i, r in zip(ids, rows, strict=True)
        ),
    )  # fmt: skip
    # vouchers take their ids from the column default (no id is needed back, and a million
    # ids fetched up front cost more than the COPY saves)
    claimed = list(zip(ids, rows, strict=True))
    streams = list(voucher_conns) or [conn]
    share = -(-len(claimed) // len(streams))
    await asyncio.gather(
        *(
            _vouchers(stream, claimed[n * share : (n + 1) * share])
            for n, stream in enumerate(streams)
        )
    )
    return ids


async def _vouchers(conn: Conn, claimed: Sequence[tuple[int, ClaimRow]]) -> None:
    await _copy(
        conn,
        "vouchers",
        ("campaign_id", "claim_id", "citizen_id", "face_value_fen", "expires_at", "status"),
        (
            (r.campaign_id, claim_id, r.citizen_id, r.face_value_fen, r.expires_at, "available")
            for claim_id, r in claimed
            for _ in range(r.voucher_count)
        ),
    )


async def voucher_ids(conn: Conn, claim_id: int) -> list[int]:
    rows = await conn.fetch("SELECT id FROM vouchers WHERE claim_id = $1 ORDER BY id", claim_id)
    return [int(r["id"]) for r in rows]


async def merchants(conn: Conn, rows: Sequence[MerchantRow]) -> list[int]:
    ids = await new_ids(conn, "merchants", len(rows))
    columns: tuple[str, ...] = ("id", "name", "district", "admitted", "permitted")
    values: list[tuple[Any, ...]] = [
        (i, r.name, r.district, r.admitted, r.permitted) for i, r in zip(ids, rows, strict=True)
    ]
    if any(r.kind != "shop" for r in rows):  # shops take the column's default (and a ledger
        columns += ("kind",)  # older than migration 0009, which has no kind, still seeds)
        values = [(*v, r.kind) for v, r in zip(values, rows, strict=True)]
    await _copy(conn, "merchants", columns, values)
    return ids


async def terminals(conn: Conn, rows: Sequence[TerminalRow]) -> list[int]:
    ids = await new_ids(conn, "terminals", len(rows))
    await _copy(
        conn,
        "terminals",
        ("id", "merchant_id", "label", "credential_hash"),
        ((i, r.merchant_id, r.label, r.credential_hash) for i, r in zip(ids, rows, strict=True)),
    )
    return ids


async def consumed_token(conn: Conn, citizen_id: int, expires_at: datetime) -> uuid.UUID:
    jti = uuid.uuid4()
    await conn.execute(
        "INSERT INTO consumed_tokens (jti, citizen_id, expires_at) VALUES ($1, $2, $3)",
        jti,
        citizen_id,
        expires_at,
    )
    return jti


async def redemption(conn: Conn, row: RedemptionRow) -> int:
    return int(
        await conn.fetchval(
            """
            INSERT INTO redemptions (campaign_id, merchant_id, terminal_id, citizen_id, receipt_no,
                                     bill_fen, spend_threshold_fen, face_value_fen,
                                     voucher_count, token_jti, idempotency_key, request_hash,
                                     created_at, receipt_till)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, coalesce($13, now()), $14)
            RETURNING id
            """,
            row.campaign_id,
            row.merchant_id,
            row.terminal_id,
            row.citizen_id,
            row.receipt_no,
            row.bill_fen,
            row.spend_threshold_fen,
            row.face_value_fen,
            row.voucher_count,
            row.token_jti,
            row.idempotency_key,
            row.request_hash,
            row.created_at,
            row.receipt_till,
        )
    )


# Bills already paid before the measured day: every n-th citizen spent one voucher (earliest
# expiry first) a day ago, at a terminal picked by citizen id. A ledger in the middle of its
# campaign, not a fresh one: with empty redemption tables PostgreSQL plans the foreign-key
# checks of the first inserts as scans of a (then) empty table and keeps those plans until
# the next ANALYZE, so every later check reads the whole, growing table.
_PAST_BILLS = """
WITH picked AS (
    SELECT DISTINCT ON (v.citizen_id) v.id, v.citizen_id, v.campaign_id, v.face_value_fen,
           t.id AS terminal_id, t.merchant_id
      FROM vouchers v
      JOIN terminals t ON t.id = ($2::bigint[])[1 + v.citizen_id % cardinality($2::bigint[])]
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


async def past_bills(conn: Conn, *, every: int, terminal_ids: Sequence[int], at: datetime) -> int:
    """Every ``every``-th citizen (by id) paid one voucher at ``at``; returns the bills."""
    status = await conn.execute(_PAST_BILLS, every, list(terminal_ids), at)
    return int(status.split()[-1])


async def analyze(conn: Conn) -> None:
    """Fresh planner statistics after a bulk seed, so the first requests plan for the tables'
    real sizes."""
    await conn.execute("ANALYZE")


# --- bulk loading without per-row triggers --------------------------------------------------


@contextlib.asynccontextmanager
async def without_triggers(*conns: Conn, check: Sequence[str]) -> AsyncIterator[None]:
    """Bulk-load pattern: ``session_replication_role = replica`` skips the per-row triggers,
    foreign-key checks included (3 million look-ups for the benchmark's vouchers alone: 10 of
    its 13 seconds). On the way out every single-column foreign key of the ``check`` tables is
    verified with one set-wise anti-join, so the data is exactly as consistent as with the
    triggers on. CHECK, NOT NULL, UNIQUE and the indexes are kept as usual; the voucher
    trigger's transition rule is not needed, since every seeded voucher starts available."""
    for conn in conns:
        await conn.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        for conn in conns:
            await conn.execute("SET session_replication_role = origin")
    await check_foreign_keys(conns[0], check)


async def check_foreign_keys(conn: Conn, tables: Sequence[str]) -> None:
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


# --- removing what a load test seeded -------------------------------------------------------

LOAD_TEST_TAG = "LT-"
"""Certificates and merchants the load test seeds are named ``LT-<run>-…`` (its terminals
``LT till …``), so that what it left can be found and removed: a ranking or settlement after
a load test must not count its bills."""

_REMOVE_TAGGED = """
CREATE TEMP TABLE lt_merchants ON COMMIT DROP AS
    SELECT id FROM merchants WHERE starts_with(name, $1);
CREATE TEMP TABLE lt_terminals ON COMMIT DROP AS
    SELECT id FROM terminals WHERE merchant_id IN (SELECT id FROM lt_merchants);
CREATE TEMP TABLE lt_certificates ON COMMIT DROP AS
    SELECT id FROM certificates WHERE starts_with(cert_no, $1);
CREATE TEMP TABLE lt_claims ON COMMIT DROP AS
    SELECT id, citizen_id FROM claims WHERE certificate_id IN (SELECT id FROM lt_certificates);
-- the citizens made for the load test: they own tagged certificates and no other claim
CREATE TEMP TABLE lt_citizens ON COMMIT DROP AS
    SELECT z.id FROM citizens z
     WHERE z.id_hash IN (SELECT o.id_hash FROM certificate_owners o
                          WHERE o.certificate_id IN (SELECT id FROM lt_certificates))
       AND NOT EXISTS (SELECT 1 FROM claims k WHERE k.citizen_id = z.id
                          AND k.id NOT IN (SELECT id FROM lt_claims));
CREATE TEMP TABLE lt_redemptions ON COMMIT DROP AS
    SELECT id, settlement_id FROM redemptions
     WHERE merchant_id IN (SELECT id FROM lt_merchants)
        OR citizen_id IN (SELECT id FROM lt_citizens);
-- issue 13: house tickets numbered LT-<run>-…, and the uses at tagged sales offices or on them
CREATE TEMP TABLE lt_tickets ON COMMIT DROP AS
    SELECT id FROM tickets WHERE starts_with(number, $1);
CREATE TEMP TABLE lt_uses ON COMMIT DROP AS
    SELECT id FROM ticket_uses
     WHERE merchant_id IN (SELECT id FROM lt_merchants)
        OR id IN (SELECT use_id FROM ticket_draws WHERE ticket_id IN (SELECT id FROM lt_tickets));
"""

_REMOVE_STEPS = (
    ("ticket_events", "DELETE FROM ticket_events WHERE ticket_id IN (SELECT id FROM lt_tickets) "
     "OR use_id IN (SELECT id FROM lt_uses)"),
    ("ticket_draws", "DELETE FROM ticket_draws WHERE use_id IN (SELECT id FROM lt_uses)"),
    ("ticket_uses", "DELETE FROM ticket_uses WHERE id IN (SELECT id FROM lt_uses)"),
    ("ticket_household", "DELETE FROM ticket_household "
     "WHERE ticket_id IN (SELECT id FROM lt_tickets)"),
    ("ticket_void_numbers", "DELETE FROM ticket_void_numbers "
     "WHERE ticket_id IN (SELECT id FROM lt_tickets)"),
    ("tickets", "DELETE FROM tickets WHERE id IN (SELECT id FROM lt_tickets)"),
    ("listings", "DELETE FROM listings WHERE merchant_id IN (SELECT id FROM lt_merchants)"),
    ("redemption_items", "DELETE FROM redemption_items "
     "WHERE redemption_id IN (SELECT id FROM lt_redemptions)"),
    ("refunds", "DELETE FROM refunds WHERE redemption_id IN (SELECT id FROM lt_redemptions)"),
    ("redemptions", "DELETE FROM redemptions WHERE id IN (SELECT id FROM lt_redemptions)"),
    ("refused_redemptions", "DELETE FROM refused_redemptions "
     "WHERE terminal_id IN (SELECT id FROM lt_terminals)"),
    ("consumed_tokens", "DELETE FROM consumed_tokens "
     "WHERE citizen_id IN (SELECT id FROM lt_citizens)"),
    ("vouchers", "DELETE FROM vouchers WHERE claim_id IN (SELECT id FROM lt_claims)"),
    ("claims", "DELETE FROM claims WHERE id IN (SELECT id FROM lt_claims)"),
    ("certificates", "DELETE FROM certificates WHERE id IN (SELECT id FROM lt_certificates)"),
    ("citizens", "DELETE FROM citizens WHERE id IN (SELECT id FROM lt_citizens)"),
    ("terminals", "DELETE FROM terminals WHERE id IN (SELECT id FROM lt_terminals)"),
    ("merchants", "DELETE FROM merchants WHERE id IN (SELECT id FROM lt_merchants)"),
)  # fmt: skip


class TaggedDataSettled(Exception):
    """A settlement batch already holds some of the tagged bills: they are money now."""


async def remove_tagged(conn: Conn, tag: str = LOAD_TEST_TAG) -> dict[str, int]:
    """Remove everything seeded under ``tag`` and every bill made with it, in one transaction;
    returns the rows removed per table. Refused (nothing removed) when a settlement batch
    already counts one of those bills."""
    async with conn.transaction():
        await conn.execute(_REMOVE_TAGGED.replace("$1", "'" + tag.replace("'", "''") + "'"))
        settled = await conn.fetchval(
            "SELECT (SELECT count(*) FROM lt_redemptions WHERE settlement_id IS NOT NULL) "
            "+ (SELECT count(*) FROM settlement_lines "
            "   WHERE merchant_id IN (SELECT id FROM lt_merchants))"
        )
        if settled:
            raise TaggedDataSettled(f"{settled} settled bills or lines hold load-test data")
        removed: dict[str, int] = {}
        for table, sql in _REMOVE_STEPS:
            status = await conn.execute(sql)
            removed[table] = int(status.split()[-1])
    return removed
