"""The batched redeem statement: all the bills of a batch are written, or none of them."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from server.db import redemptions as ledger
from server.db import seeding
from shared.redemption import MustDecideAgain
from tests import factories as f

NOW = datetime(2024, 9, 10, 2, tzinfo=UTC)


async def bills(conn: asyncpg.Connection, n: int) -> list[ledger.Redemption]:
    campaign_id = await f.campaign(conn)
    merchant_id = await f.merchant(conn)
    terminal_id = await f.terminal(conn, merchant_id)
    out = []
    for _ in range(n):
        citizen_id = await f.citizen(conn)
        _, vouchers = await f.claim_with_vouchers(conn, campaign_id, citizen_id, count=3)
        out.append(
            ledger.Redemption(
                now=NOW,
                voucher_ids=tuple(vouchers[:2]),
                citizen_id=citizen_id,
                jti=uuid.uuid4(),
                jti_expires_at=NOW + timedelta(seconds=60),
                campaign_id=campaign_id,
                merchant_id=merchant_id,
                terminal_id=terminal_id,
                receipt_no=f.ref("R"),
                bill_fen=40_000,
                spend_threshold_fen=20_000,
                face_value_fen=10_000,
                idempotency_key=f.ref("K"),
                request_hash=f.fake_hash(),
            )
        )
    return out


async def redeemed(conn: asyncpg.Connection, batch: list[ledger.Redemption]) -> int:
    ids = [v for b in batch for v in b.voucher_ids]
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM vouchers WHERE id = ANY($1::bigint[]) AND status = 'redeemed'",
            ids,
        )
    )


async def test_a_batch_writes_every_bill_with_its_own_vouchers(db: asyncpg.Connection) -> None:
    # rules U3, U7: three bills, one statement, each redemption holding its own two vouchers
    batch = await bills(db, 3)
    ids = await ledger.write_redemptions(db, batch)
    assert len(set(ids)) == 3
    for bill, redemption_id in zip(batch, ids, strict=True):
        row = await db.fetchrow(
            "SELECT citizen_id, receipt_no, voucher_count, token_jti FROM redemptions "
            "WHERE id = $1",
            redemption_id,
        )
        assert row is not None
        assert tuple(row) == (bill.citizen_id, bill.receipt_no, 2, bill.jti)
        items = await db.fetch(
            "SELECT voucher_id FROM redemption_items WHERE redemption_id = $1 ORDER BY 1",
            redemption_id,
        )
        assert tuple(r["voucher_id"] for r in items) == bill.voucher_ids
    assert await redeemed(db, batch) == 6


async def test_one_taken_voucher_leaves_the_whole_batch_unwritten(db: asyncpg.Connection) -> None:
    # rule U7: the second bill's voucher went elsewhere after the decision
    batch = await bills(db, 3)
    await db.execute(
        "UPDATE vouchers SET status = 'redeemed', redeemed_at = now() WHERE id = $1",
        batch[1].voucher_ids[0],
    )
    with pytest.raises(MustDecideAgain) as refused:
        await ledger.write_redemptions(db, batch)
    assert refused.value.reason == "ledger_changed"  # VC001: nothing written, decide again
    assert await redeemed(db, batch) == 1  # only the one taken before
    assert (
        await db.fetchval(
            "SELECT count(*) FROM consumed_tokens WHERE jti = ANY($1::uuid[])",
            [b.jti for b in batch],
        )
        == 0
    )


async def test_two_bills_on_one_voucher_in_a_batch_write_nothing(db: asyncpg.Connection) -> None:
    # rule U7: even if the caller put the same voucher on two bills, it is spent at most once
    batch = await bills(db, 2)
    twice = replace(batch[1], voucher_ids=batch[0].voucher_ids[:1], citizen_id=batch[0].citizen_id)
    with pytest.raises(MustDecideAgain):
        await ledger.write_redemptions(db, [batch[0], twice])
    assert await redeemed(db, batch) == 0


async def test_the_context_read_gives_each_voucher_its_exact_expiry(
    db: asyncpg.Connection,
) -> None:
    # issue 15: expiries come as microseconds and are made datetimes once each; they must be
    # the very instants the ledger holds (rule V2 compares them with now), in order (U6)
    campaign_id = await f.campaign(db)
    merchant_id = await f.merchant(db)
    terminal_id = await f.terminal(db, merchant_id)
    citizen_id = await f.citizen(db)
    claimed_at = datetime(2024, 9, 1, 2, tzinfo=UTC)
    moved = [  # one claim each (a voucher's expiry is fixed once issued)
        NOW + timedelta(days=30, microseconds=1),
        NOW + timedelta(days=1, seconds=7, microseconds=999_999),
        datetime(2099, 12, 31, 23, 59, 59, 123_456, tzinfo=UTC),
    ]
    vouchers: list[int] = []
    for expires_at, count in zip(moved, (2, 1, 1), strict=True):
        row = seeding.ClaimRow(
            campaign_id=campaign_id,
            certificate_id=await f.certificate(db),
            citizen_id=citizen_id,
            base_fen=120_000_000,
            rate_bp=40,
            voucher_count=count,
            face_value_fen=10_000,
            claimed_at=claimed_at,
            expires_at=expires_at,
        )
        (claim_id,) = await seeding.claims(db, [row])
        vouchers += await seeding.voucher_ids(db, claim_id)
    expected = await db.fetch(
        "SELECT id, expires_at FROM vouchers WHERE id = ANY($1::bigint[]) ORDER BY expires_at, id",
        vouchers,
    )
    asked = ledger.ContextQuery(terminal_id, citizen_id, NOW, uuid.uuid4(), None)
    for _ in range(2):  # the second read finds the expiries already made
        ctx = await ledger.read_context(db, asked)
        assert ctx is not None
        assert [(v.id, v.expires_at) for v in ctx.held] == [tuple(r) for r in expected]
        assert all(v.expires_at.utcoffset() == timedelta(0) for v in ctx.held)
    # a voucher expired at the read's instant is not held (V2): strictly later only
    ctx = await ledger.read_context(db, replace(asked, now=moved[1]))
    assert ctx is not None
    assert [v.id for v in ctx.held] == [r["id"] for r in expected if r["id"] != vouchers[2]]
