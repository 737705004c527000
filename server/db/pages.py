"""SQL the web pages read and the API does not (rules S1, S2, S3, U1, X2): a citizen's
redemptions with their shops, a merchant's month per day and its tills, settlement batches,
claims and redemptions per day. Read only, except for nothing: the pages' one write (a
manager's request to revoke a till) is an audit entry (``server.db.admin.audit``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from server.db import Conn


@dataclass(frozen=True, slots=True)
class CitizenRedemption:
    """One bill the citizen's vouchers paid part of: where, when, how many (the wallet)."""

    id: int
    created_at: datetime
    merchant_name: str
    voucher_count: int
    refunded_count: int
    face_value_fen: int


@dataclass(frozen=True, slots=True)
class DayTotals:
    """A merchant's day, summed (rule S2): bills, vouchers and their value, refunds."""

    day: date
    bills: int
    bill_fen: int
    vouchers: int
    value_fen: int
    returned_vouchers: int
    returned_value_fen: int


@dataclass(frozen=True, slots=True)
class Till:
    id: int
    label: str
    status: str  # active | revoked
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None  # its last redemption or refund


@dataclass(frozen=True, slots=True)
class MerchantBatch:
    """A settlement batch's line for one merchant (rule S1), with the batch's status."""

    settlement_id: int
    campaign_id: str
    month: date
    status: str  # draft | reviewed | approved | paid
    voucher_count: int
    amount_fen: int
    paid_at: datetime | None


@dataclass(frozen=True, slots=True)
class BatchRow:
    id: int
    campaign_id: str
    district: str
    month: date
    status: str
    redemption_count: int
    voucher_count: int
    amount_fen: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DailyActivity:
    day: date
    claims: int
    vouchers_issued: int
    vouchers_redeemed: int


async def citizen_redemptions(
    conn: Conn, citizen_id: int, after: int = 0
) -> list[CitizenRedemption]:
    """The citizen's redemptions (newest first), or only those with an id above ``after``
    (the wallet's live poll asks for what is new since the page was drawn)."""
    rows = await conn.fetch(
        """
        SELECT r.id, r.created_at, m.name AS merchant_name, r.voucher_count, r.refunded_count,
               r.face_value_fen
          FROM redemptions r JOIN merchants m ON m.id = r.merchant_id
         WHERE r.citizen_id = $1 AND r.id > $2
         ORDER BY r.id DESC LIMIT 200
        """,
        citizen_id,
        after,
    )
    return [CitizenRedemption(**dict(r)) for r in rows]


async def masked_id(conn: Conn, citizen_id: int) -> str:
    """Rule X3: the masked form is all the ledger holds of an ID number besides its hash."""
    return str(await conn.fetchval("SELECT id_masked FROM citizens WHERE id = $1", citizen_id))


async def merchant_days(
    conn: Conn, merchant_id: int, start: datetime, end: datetime, tz: str
) -> list[DayTotals]:
    """Rule S2: the merchant's days in [start, end) that had a bill or a refund, in ``tz``."""
    rows = await conn.fetch(
        """
        WITH bills AS (
            SELECT (created_at AT TIME ZONE $4)::date AS day, count(*) AS bills,
                   sum(bill_fen) AS bill_fen, sum(voucher_count) AS vouchers,
                   sum(voucher_count * face_value_fen) AS value_fen
              FROM redemptions
             WHERE merchant_id = $1 AND created_at >= $2 AND created_at < $3
             GROUP BY 1
        ), back AS (
            SELECT (f.created_at AT TIME ZONE $4)::date AS day,
                   sum(f.returned_count) AS returned_vouchers,
                   sum(f.returned_count * r.face_value_fen) AS returned_value_fen
              FROM refunds f JOIN redemptions r ON r.id = f.redemption_id
             WHERE r.merchant_id = $1 AND f.created_at >= $2 AND f.created_at < $3
             GROUP BY 1
        )
        SELECT coalesce(b.day, k.day) AS day, coalesce(b.bills, 0) AS bills,
               coalesce(b.bill_fen, 0)::bigint AS bill_fen,
               coalesce(b.vouchers, 0)::bigint AS vouchers,
               coalesce(b.value_fen, 0)::bigint AS value_fen,
               coalesce(k.returned_vouchers, 0)::bigint AS returned_vouchers,
               coalesce(k.returned_value_fen, 0)::bigint AS returned_value_fen
          FROM bills b FULL JOIN back k ON k.day = b.day
         ORDER BY 1
        """,
        merchant_id,
        start,
        end,
        tz,
    )
    return [DayTotals(**dict(r)) for r in rows]


async def tills(conn: Conn, merchant_id: int) -> list[Till]:
    """Rule U1: the merchant's terminals and when each last redeemed or refunded."""
    rows = await conn.fetch(
        """
        SELECT t.id, t.label, t.status, t.created_at, t.revoked_at,
               greatest((SELECT max(created_at) FROM redemptions WHERE terminal_id = t.id),
                        (SELECT max(created_at) FROM refunds WHERE terminal_id = t.id))
                   AS last_used_at
          FROM terminals t WHERE t.merchant_id = $1 ORDER BY t.id
        """,
        merchant_id,
    )
    return [Till(**dict(r)) for r in rows]


async def merchant_batches(conn: Conn, merchant_id: int, month: date) -> list[MerchantBatch]:
    """Rule S1: the month's settlement batches that hold this merchant's redemptions."""
    rows = await conn.fetch(
        """
        SELECT s.id AS settlement_id, s.campaign_id, s.month, s.status, l.voucher_count,
               l.amount_fen, s.paid_at
          FROM settlement_lines l JOIN settlements s ON s.id = l.settlement_id
         WHERE l.merchant_id = $1 AND s.month = $2 ORDER BY s.id
        """,
        merchant_id,
        month,
    )
    return [MerchantBatch(**dict(r)) for r in rows]


async def unsettled_value(conn: Conn, merchant_id: int, start: datetime, end: datetime) -> int:
    """The month's live voucher value not yet in a batch (due once the month is settled)."""
    value = await conn.fetchval(
        """
        SELECT coalesce(sum((voucher_count - refunded_count) * face_value_fen), 0)::bigint
          FROM redemptions
         WHERE merchant_id = $1 AND created_at >= $2 AND created_at < $3
           AND settlement_id IS NULL
        """,
        merchant_id,
        start,
        end,
    )
    return int(value)


async def batches(conn: Conn, district: str | None, limit: int = 100) -> list[BatchRow]:
    """Rule S1: the latest settlement batches, of one district or all."""
    rows = await conn.fetch(
        """
        SELECT id, campaign_id, district, month, status, redemption_count, voucher_count,
               amount_fen, created_at
          FROM settlements WHERE $1::text IS NULL OR district = $1
         ORDER BY month DESC, district, id DESC LIMIT $2
        """,
        district,
        limit,
    )
    return [BatchRow(**dict(r)) for r in rows]


async def daily_activity(
    conn: Conn,
    *,
    campaign_ids: list[str],
    districts: list[str],
    start: datetime,
    end: datetime,
    tz: str,
) -> list[DailyActivity]:
    """Rule S3 over time: per local day in [start, end), the claims and vouchers issued for
    properties in ``districts`` and the vouchers of theirs redeemed (live, not refunded)."""
    rows = await conn.fetch(
        """
        WITH days AS (
            SELECT generate_series(($3::timestamptz AT TIME ZONE $5::text)::date,
                                   (($4::timestamptz - interval '1 microsecond')
                                        AT TIME ZONE $5::text)::date,
                                   interval '1 day')::date AS day
        ), issued AS (
            SELECT (k.claimed_at AT TIME ZONE $5)::date AS day, count(*) AS claims,
                   sum(k.voucher_count) AS vouchers
              FROM claims k JOIN certificates c ON c.id = k.certificate_id
             WHERE k.campaign_id = ANY($1::text[]) AND c.district = ANY($2::text[])
               AND k.claimed_at >= $3 AND k.claimed_at < $4
             GROUP BY 1
        ), used AS (
            SELECT (r.created_at AT TIME ZONE $5)::date AS day, count(*) AS vouchers
              FROM redemption_items i
              JOIN redemptions r ON r.id = i.redemption_id
              JOIN vouchers v ON v.id = i.voucher_id
              JOIN claims k ON k.id = v.claim_id
              JOIN certificates c ON c.id = k.certificate_id
             WHERE i.refund_id IS NULL AND r.campaign_id = ANY($1::text[])
               AND c.district = ANY($2::text[]) AND r.created_at >= $3 AND r.created_at < $4
             GROUP BY 1
        )
        SELECT d.day, coalesce(i.claims, 0) AS claims,
               coalesce(i.vouchers, 0)::bigint AS vouchers_issued,
               coalesce(u.vouchers, 0) AS vouchers_redeemed
          FROM days d LEFT JOIN issued i ON i.day = d.day LEFT JOIN used u ON u.day = d.day
         ORDER BY d.day
        """,
        campaign_ids,
        districts,
        start,
        end,
        tz,
    )
    return [DailyActivity(**dict(r)) for r in rows]
