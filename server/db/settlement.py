"""SQL of settlement batches (rule S1, F3) and the district ranking (rule S3). Rows come back
as frozen dataclasses, lines and figures as the pure rules' own types (shared/settlement.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from server.db import Conn
from shared.settlement import DistrictFigures, Line


@dataclass(frozen=True, slots=True)
class Batch:
    """One month's settlement batch of a campaign and district (rule S1)."""

    id: int
    campaign_id: str
    district: str
    month: date  # its first day
    status: str  # draft | reviewed | approved | paid
    redemption_count: int
    voucher_count: int
    amount_fen: int
    created_at: datetime
    reviewed_at: datetime | None
    approved_at: datetime | None
    paid_at: datetime | None
    reviewed_by: int | None  # the account that took each step (separation of duties)
    approved_by: int | None
    paid_by: int | None


async def build_batch(
    conn: Conn,
    *,
    campaign_id: str,
    district: str,
    month: date,
    start: datetime,
    end: datetime,
    now: datetime,
) -> int | None:
    """In the caller's transaction: the batch of the month's unsettled redemptions at the
    district's merchants, one line per merchant; each redemption joins exactly this batch.
    Redemptions are locked first, so a refund racing the build waits and then sees it settled
    (rule F3). Returns None if the batch exists already."""
    batch_id = await conn.fetchval(
        """
        INSERT INTO settlements (campaign_id, district, month, created_at)
        VALUES ($1, $2, $3, $4) ON CONFLICT (campaign_id, district, month) DO NOTHING
        RETURNING id
        """,
        campaign_id,
        district,
        month,
        now,
    )
    if batch_id is None:
        return None
    await conn.execute(
        """
        WITH picked AS (
            SELECT r.id FROM redemptions r JOIN merchants m ON m.id = r.merchant_id
             WHERE r.campaign_id = $2 AND m.district = $3 AND r.created_at >= $4
               AND r.created_at < $5 AND r.settlement_id IS NULL
               AND r.voucher_count > r.refunded_count
             ORDER BY r.id
               FOR UPDATE OF r
        )
        UPDATE redemptions r SET settlement_id = $1 FROM picked WHERE r.id = picked.id
        """,
        batch_id,
        campaign_id,
        district,
        start,
        end,
    )
    await conn.execute(
        """
        INSERT INTO settlement_lines (settlement_id, merchant_id, redemption_count,
                                      voucher_count, amount_fen)
        SELECT $1, merchant_id, count(*), sum(voucher_count - refunded_count),
               sum((voucher_count - refunded_count) * face_value_fen)
          FROM redemptions WHERE settlement_id = $1 GROUP BY merchant_id
        """,
        batch_id,
    )
    await conn.execute(
        """
        UPDATE settlements s SET redemption_count = t.r, voucher_count = t.v, amount_fen = t.a
          FROM (SELECT coalesce(sum(redemption_count), 0) AS r,
                       coalesce(sum(voucher_count), 0) AS v, coalesce(sum(amount_fen), 0) AS a
                  FROM settlement_lines WHERE settlement_id = $1) t
         WHERE s.id = $1
        """,
        batch_id,
    )
    return int(batch_id)


_BATCH = (
    "SELECT id, campaign_id, district, month, status, redemption_count, voucher_count, "
    "amount_fen, created_at, reviewed_at, approved_at, paid_at, reviewed_by, approved_by, "
    "paid_by FROM settlements WHERE id = $1"
)


async def batch(conn: Conn, batch_id: int, *, lock: bool = False) -> Batch | None:
    row = await conn.fetchrow(_BATCH + " FOR UPDATE" if lock else _BATCH, batch_id)
    return None if row is None else Batch(**dict(row))


async def lines(conn: Conn, batch_id: int) -> list[Line]:
    """The batch's lines, one per merchant, by merchant id."""
    rows = await conn.fetch(
        """
        SELECT l.merchant_id, m.name AS merchant_name, l.redemption_count, l.voucher_count,
               l.amount_fen
          FROM settlement_lines l JOIN merchants m ON m.id = l.merchant_id
         WHERE l.settlement_id = $1 ORDER BY l.merchant_id
        """,
        batch_id,
    )
    return [
        Line(
            r["merchant_id"],
            r["merchant_name"],
            r["redemption_count"],
            r["voucher_count"],
            r["amount_fen"],
        )
        for r in rows
    ]


_STEP_SQL = {
    "reviewed": "UPDATE settlements SET status = 'reviewed', reviewed_at = $2, reviewed_by = $3 "
    "WHERE id = $1",
    "approved": "UPDATE settlements SET status = 'approved', approved_at = $2, approved_by = $3 "
    "WHERE id = $1",
    "paid": "UPDATE settlements SET status = 'paid', paid_at = $2, paid_by = $3 WHERE id = $1",
}


async def set_status(conn: Conn, batch_id: int, status: str, at: datetime, by: int) -> None:
    """Rule S1: the step and the account that took it (the table's CHECK refuses one account
    on two steps of a batch, whatever the code above it does)."""
    await conn.execute(_STEP_SQL[status], batch_id, at, by)


async def district_figures(
    conn: Conn, *, campaign_ids: list[str], districts: list[str], start: datetime, end: datetime
) -> list[DistrictFigures]:
    """Rule S3: per issuing district, the month's claims and vouchers, vouchers redeemed in the
    month (live, not refunded), and both to date (through the month's end)."""
    rows = await conn.fetch(
        """
        WITH issued AS (
            SELECT c.district, k.claimed_at, k.voucher_count FROM claims k
              JOIN certificates c ON c.id = k.certificate_id
             WHERE k.campaign_id = ANY($1::text[]) AND k.claimed_at < $3
        ), used AS (
            SELECT c.district, r.created_at, r.face_value_fen
              FROM redemption_items i
              JOIN redemptions r ON r.id = i.redemption_id
              JOIN vouchers v ON v.id = i.voucher_id
              JOIN claims k ON k.id = v.claim_id
              JOIN certificates c ON c.id = k.certificate_id
             WHERE i.refund_id IS NULL AND r.campaign_id = ANY($1::text[]) AND r.created_at < $3
        )
        SELECT d.code AS district, d.name,
               (SELECT count(*) FROM issued WHERE district = d.code AND claimed_at >= $2) AS claims,
               (SELECT coalesce(sum(voucher_count), 0)::bigint FROM issued
                 WHERE district = d.code AND claimed_at >= $2) AS vouchers_issued,
               (SELECT count(*) FROM used WHERE district = d.code AND created_at >= $2)
                   AS vouchers_redeemed,
               (SELECT coalesce(sum(face_value_fen), 0)::bigint FROM used
                 WHERE district = d.code AND created_at >= $2) AS value_redeemed_fen,
               (SELECT coalesce(sum(voucher_count), 0)::bigint FROM issued
                 WHERE district = d.code) AS issued_to_date,
               (SELECT count(*) FROM used WHERE district = d.code) AS redeemed_to_date
          FROM districts d
         WHERE d.code = ANY($4::text[])
        """,
        campaign_ids,
        start,
        end,
        districts,
    )
    return [DistrictFigures(**dict(r)) for r in rows]
