"""Seed the benchmark ledger with COPY: citizens, certificates with their owners, one claim
per certificate, ~10 vouchers per claim, merchants and terminals with known credentials, and
the bills of the days before (``seeding.past_bills``).

Every row goes through ``server/db/seeding.py`` (the one seeding module, issue 10): binary
COPY with ids taken from the tables' sequences (1, 2, 3 … on the fresh ledger), so no row has
to be read back to link the next table. Vouchers are split over two connections (two COPY
streams in parallel: one per core). The load runs inside ``seeding.without_triggers``: the
per-row foreign-key triggers are skipped (3 million look-ups for the vouchers alone: 10 of
the 13 seconds) and every foreign key is verified set-wise afterwards.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import asyncpg

from server.auth import new_terminal_credential
from server.campaign_files import load_bundled_campaign
from server.db import campaigns as campaign_db
from server.db import seeding
from server.db.migrate import migrate

CAMPAIGN_ID = "liaocheng-demo"
MAIN_DISTRICTS = ("dongchangfu", "jingkai", "gaoxin", "dujia")
FACE_VALUE_FEN = 10_000
VALIDITY = timedelta(days=90)


SEEDED_TABLES = (
    "citizens", "certificates", "certificate_owners", "claims", "vouchers", "merchants",
    "terminals", "consumed_tokens", "redemptions", "redemption_items",
)  # fmt: skip


@dataclass
class SeedResult:
    citizens: int
    vouchers: int
    merchants: int
    terminals: list[tuple[int, str]]  # (terminal id, secret)
    past_bills: int
    citizen_ids: list[int]  # what the citizens' QR codes name (rule U5)
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
    second = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        await campaign_db.upsert(conn, load_bundled_campaign(CAMPAIGN_ID))
        timings["migrate"] = time.perf_counter() - started
        async with seeding.without_triggers(conn, second, check=SEEDED_TABLES):
            t = time.perf_counter()
            hashes = os.urandom(32 * citizens)
            subjects = [uuid.UUID(bytes=os.urandom(16), version=4) for _ in range(citizens)]
            masked = [_masked(i) for i in range(citizens)]
            owners = [(hashes[32 * i : 32 * i + 32], masked[i]) for i in range(citizens)]
            citizen_ids = await seeding.citizens(
                conn,
                [seeding.CitizenRow(*owners[i], subject=subjects[i]) for i in range(citizens)],
            )
            timings["citizens"] = time.perf_counter() - t

            t = time.perf_counter()
            # rule A2 (demo campaign, first phase): housing low tier is 20 bp, so a base of
            # 500,000 元 buys exactly 10 vouchers of 100 元 (A3 holds with equality)
            base_fen = vouchers_per_citizen * FACE_VALUE_FEN * 10_000 // 20
            certificate_ids = await seeding.certificates(
                conn,
                [
                    seeding.CertificateRow(
                        cert_no=f"鲁(2026)聊城市不动产权第{i + 1:07d}号",
                        district=MAIN_DISTRICTS[i % 4],
                        issued_on=date(2026, 9, 1) + timedelta(days=i % 80),
                        invoice_excl_vat_fen=base_fen,
                        owners=(owners[i],),
                    )
                    for i in range(citizens)
                ],
            )
            timings["certificates"] = time.perf_counter() - t

            t = time.perf_counter()
            # claimed 1-60 days ago; vouchers live 90 days from the claim, so all are unexpired
            claimed = [now - timedelta(days=1 + rng.random() * 59) for _ in range(citizens)]
            await seeding.claims(
                conn,
                [
                    seeding.ClaimRow(
                        CAMPAIGN_ID,
                        certificate_ids[i],
                        citizen_ids[i],
                        base_fen,
                        20,
                        vouchers_per_citizen,
                        FACE_VALUE_FEN,
                        claimed[i],
                        claimed[i] + VALIDITY,
                    )
                    for i in range(citizens)
                ],
                voucher_conns=(conn, second),
            )
            timings["claims_vouchers"] = time.perf_counter() - t

            t = time.perf_counter()
            merchant_ids = await seeding.merchants(
                conn,
                [
                    seeding.MerchantRow(f"示范商户{j + 1:04d}", MAIN_DISTRICTS[j % 4])
                    for j in range(merchants)
                ],
            )
            credentials = [new_terminal_credential() for _ in range(terminals)]
            step = max(1, merchants // terminals)
            terminal_ids = await seeding.terminals(
                conn,
                [
                    seeding.TerminalRow(
                        merchant_ids[(j * step) % merchants], f"收银台 {j + 1}", c.credential_hash
                    )
                    for j, c in enumerate(credentials)
                ],
            )
            timings["merchants_terminals"] = time.perf_counter() - t

            t = time.perf_counter()
            past_bills = await seeding.past_bills(
                conn, every=history_every, terminal_ids=terminal_ids, at=now - timedelta(days=1)
            )
            timings["history"] = time.perf_counter() - t
            t = time.perf_counter()
        timings["check_foreign_keys"] = time.perf_counter() - t

        t = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze"] = time.perf_counter() - t
    finally:
        await second.close()
        await conn.close()
    timings["total"] = time.perf_counter() - started
    return SeedResult(
        citizens=citizens,
        vouchers=citizens * vouchers_per_citizen,
        merchants=merchants,
        terminals=[(t, c.secret) for t, c in zip(terminal_ids, credentials, strict=True)],
        past_bills=past_bills,
        citizen_ids=citizen_ids,
        seconds=timings,
    )
