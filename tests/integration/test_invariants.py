"""The ledger check finds a voucher redeemed twice, even one forced past the constraints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Unpack

import asyncpg
import pytest

from server.db.invariants import check_ledger
from server.db.migrate import migrate
from tests import factories as f
from tests.integration.test_migrations import empty_db  # noqa: F401 - a fixture


@pytest.fixture
async def ledger(empty_db: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:  # noqa: F811
    await migrate(empty_db)
    yield empty_db


async def redeem_one(
    conn: asyncpg.Connection, campaign_id: str, voucher_id: int, **ids: Unpack[f.Parties]
) -> int:
    redemption_id = await f.redemption(conn, campaign_id=campaign_id, **ids)
    await conn.execute(
        "INSERT INTO redemption_items (redemption_id, voucher_id) VALUES ($1, $2)",
        redemption_id,
        voucher_id,
    )
    await conn.execute(
        "UPDATE vouchers SET status = 'redeemed', redeemed_at = now() WHERE id = $1 "
        "AND status = 'available'",
        voucher_id,
    )
    return redemption_id


async def test_a_consistent_ledger_passes_and_a_double_redemption_is_found(
    ledger: asyncpg.Connection,
) -> None:
    campaign_id = await f.campaign(ledger)
    citizen_id = await f.citizen(ledger)
    merchant_id = await f.merchant(ledger)
    terminal_id = await f.terminal(ledger, merchant_id)
    _, (first, second, *_) = await f.claim_with_vouchers(ledger, campaign_id, citizen_id)
    ids: f.Parties = {
        "merchant_id": merchant_id,
        "terminal_id": terminal_id,
        "citizen_id": citizen_id,
    }
    await redeem_one(ledger, campaign_id, first, **ids)
    await redeem_one(ledger, campaign_id, second, **ids)
    assert await check_ledger(ledger) == []

    # deliberately redeem `first` twice: only possible by removing the database's own guard
    await ledger.execute("DROP INDEX redemption_items_one_live")
    await redeem_one(ledger, campaign_id, first, **ids)
    found = {v.check: v for v in await check_ledger(ledger)}
    assert set(found) == {"voucher_redeemed_twice"}
    assert found["voucher_redeemed_twice"].examples == [{"voucher_id": first, "live_items": 2}]


async def test_a_refund_that_did_not_return_its_voucher_is_found(
    ledger: asyncpg.Connection,
) -> None:
    campaign_id = await f.campaign(ledger)
    citizen_id = await f.citizen(ledger)
    merchant_id = await f.merchant(ledger)
    terminal_id = await f.terminal(ledger, merchant_id)
    _, (voucher, *_) = await f.claim_with_vouchers(ledger, campaign_id, citizen_id)
    ids: f.Parties = {
        "merchant_id": merchant_id,
        "terminal_id": terminal_id,
        "citizen_id": citizen_id,
    }
    redemption_id = await redeem_one(ledger, campaign_id, voucher, **ids)
    # a refund recorded as returning one voucher, but the item and voucher left as they were
    await ledger.execute(
        "INSERT INTO refunds (redemption_id, terminal_id, remaining_bill_fen, returned_count, "
        "idempotency_key, request_hash) VALUES ($1, $2, 0, 1, 'k', $3)",
        redemption_id,
        terminal_id,
        f.fake_hash(),
    )
    found = {v.check for v in await check_ledger(ledger)}
    assert found == {"refund_mismatch"}
