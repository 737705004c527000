"""Rule U4 (updated, issue 11 item 3) in the ledger itself: a bill is merchant + business date
+ receipt number, and also the till where the merchant numbers receipts per till. The unique
index refuses a second bill whatever the code above it does; the business date is the
Asia/Shanghai date of the moment the bill was made, in SQL and in shared/rules.py alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared import rules
from tests import factories as f


async def _shop(db: asyncpg.Connection, tills: int = 1) -> tuple[f.Parties, list[int], str]:
    campaign_id = await f.campaign(db)
    merchant_id = await f.merchant(db)
    terminal_ids = [await f.terminal(db, merchant_id) for _ in range(tills)]
    parties: f.Parties = {
        "merchant_id": merchant_id,
        "terminal_id": terminal_ids[0],
        "citizen_id": await f.citizen(db),
    }
    return parties, terminal_ids, campaign_id


# 2024-09-10 23:59 and 2024-09-11 00:01 in Shanghai: one UTC date, two business dates
LATE = datetime(2024, 9, 10, 15, 59, tzinfo=UTC)
EARLY_NEXT = datetime(2024, 9, 10, 16, 1, tzinfo=UTC)


async def test_a_receipt_number_is_a_new_bill_on_the_next_business_day(
    db: asyncpg.Connection,
) -> None:
    parties, _, campaign_id = await _shop(db)
    receipt = f.ref("R")
    await f.redemption(db, campaign_id=campaign_id, receipt_no=receipt, created_at=LATE, **parties)
    # two minutes later it is the next day in Shanghai, though not in UTC: a new bill
    await f.redemption(
        db, campaign_id=campaign_id, receipt_no=receipt, created_at=EARLY_NEXT, **parties
    )
    with pytest.raises(asyncpg.UniqueViolationError, match="redemptions_receipt_no_per_day"):
        await f.redemption(
            db,
            campaign_id=campaign_id,
            receipt_no=receipt,
            created_at=EARLY_NEXT + timedelta(hours=23),
            **parties,
        )
    dates = await db.fetch(
        "SELECT business_date FROM redemptions WHERE merchant_id = $1 ORDER BY id",
        parties["merchant_id"],
    )
    assert [str(r["business_date"]) for r in dates] == ["2024-09-10", "2024-09-11"]


async def test_tills_numbering_their_own_receipts_may_share_a_number_the_same_day(
    db: asyncpg.Connection,
) -> None:
    parties, (till_1, till_2), campaign_id = await _shop(db, tills=2)
    receipt = f.ref("R")

    async def bill(terminal_id: int, receipt_till: int | None) -> int:
        return await f.redemption(
            db,
            campaign_id=campaign_id,
            merchant_id=parties["merchant_id"],
            terminal_id=terminal_id,
            citizen_id=parties["citizen_id"],
            receipt_no=receipt,
            created_at=LATE,
            receipt_till=receipt_till,
        )

    await bill(till_1, till_1)
    await bill(till_2, till_2)  # per till: till 2's 0002 is not till 1's
    with pytest.raises(asyncpg.UniqueViolationError, match="redemptions_receipt_no_per_day"):
        await bill(till_1, till_1)
    # the shop-wide number is one more scope of its own (the setting changed that day)
    await bill(till_1, None)
    with pytest.raises(asyncpg.UniqueViolationError, match="redemptions_receipt_no_per_day"):
        await bill(till_2, None)


async def test_a_bill_cannot_claim_another_tills_receipt_numbers(db: asyncpg.Connection) -> None:
    parties, (_, other_till), campaign_id = await _shop(db, tills=2)
    with pytest.raises(asyncpg.CheckViolationError, match="receipt_till_is_the_terminal"):
        await f.redemption(db, campaign_id=campaign_id, receipt_till=other_till, **parties)


async def test_the_business_date_is_the_shanghai_date_in_sql_and_in_python(
    db: asyncpg.Connection,
) -> None:
    # rule U4: one definition, two homes (server/migrations/0007, shared/rules.py)
    moments = [
        datetime(2024, 9, 10, 15, 59, 59, 999_999, tzinfo=UTC),
        datetime(2024, 9, 10, 16, 0, tzinfo=UTC),
        datetime(2024, 12, 31, 16, 0, tzinfo=UTC),
        datetime(2025, 2, 28, 15, 30, tzinfo=UTC),
        datetime(2024, 9, 11, 0, 0, tzinfo=UTC),
    ]
    in_sql = await db.fetch(
        "SELECT business_date_of(m) AS d FROM unnest($1::timestamptz[]) WITH ORDINALITY AS x (m, n)"
        " ORDER BY n",
        moments,
    )
    assert [r["d"] for r in in_sql] == [rules.business_date(m) for m in moments]
    assert [str(r["d"]) for r in in_sql][:3] == ["2024-09-10", "2024-09-11", "2025-01-01"]
