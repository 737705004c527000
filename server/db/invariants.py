"""The ledger checked against itself (rules U3, U7, F1, F2): what a load test ends with, and
what an operator can run at any time. Each check is a query returning the offending rows."""

from __future__ import annotations

from dataclasses import dataclass

from server.db import Conn

CHECKS: dict[str, tuple[str, str]] = {
    "voucher_redeemed_twice": (
        "rule U7: a voucher is on more than one live (unrefunded) redemption",
        """
        SELECT voucher_id, count(*) AS live_items FROM redemption_items
         WHERE refund_id IS NULL GROUP BY voucher_id HAVING count(*) > 1
        """,
    ),
    "redeemed_voucher_without_redemption": (
        "rule U7: a voucher marked redeemed is on no live redemption, or the other way round",
        """
        SELECT v.id AS voucher_id, v.status,
               (SELECT count(*) FROM redemption_items i
                 WHERE i.voucher_id = v.id AND i.refund_id IS NULL) AS live_items
          FROM vouchers v
         WHERE (v.status = 'redeemed') <> EXISTS (
                SELECT 1 FROM redemption_items i WHERE i.voucher_id = v.id AND i.refund_id IS NULL)
        """,
    ),
    "redemption_value_mismatch": (
        "rule U3: a redemption's count and value differ from its vouchers",
        """
        SELECT r.id AS redemption_id, r.voucher_count, r.refunded_count,
               count(i.voucher_id) AS items,
               count(i.voucher_id) FILTER (WHERE i.refund_id IS NULL) AS live_items,
               coalesce(sum(v.face_value_fen), 0) AS items_value,
               r.voucher_count * r.face_value_fen AS stated_value
          FROM redemptions r
          LEFT JOIN redemption_items i ON i.redemption_id = r.id
          LEFT JOIN vouchers v ON v.id = i.voucher_id
         GROUP BY r.id
        HAVING count(i.voucher_id) <> r.voucher_count
            OR count(i.voucher_id) FILTER (WHERE i.refund_id IS NULL)
               <> r.voucher_count - r.refunded_count
            OR coalesce(sum(v.face_value_fen), 0) <> r.voucher_count * r.face_value_fen
        """,
    ),
    "refund_mismatch": (
        "rules F1/F2: a refund returned other vouchers than it records",
        """
        SELECT f.id AS refund_id, f.returned_count,
               (SELECT count(*) FROM redemption_items i WHERE i.refund_id = f.id) AS items
          FROM refunds f
         WHERE f.returned_count <> (SELECT count(*) FROM redemption_items i
                                     WHERE i.refund_id = f.id)
        UNION ALL
        SELECT NULL, r.refunded_count, (SELECT coalesce(sum(returned_count), 0) FROM refunds f
                                          WHERE f.redemption_id = r.id)
          FROM redemptions r
         WHERE r.refunded_count <> (SELECT coalesce(sum(returned_count), 0) FROM refunds f
                                     WHERE f.redemption_id = r.id)
        """,
    ),
    "bill_over_threshold": (
        "rule U3: more vouchers than the bill's full thresholds",
        """
        SELECT id AS redemption_id, bill_fen, voucher_count, spend_threshold_fen
          FROM redemptions WHERE voucher_count::numeric * spend_threshold_fen > bill_fen
        """,
    ),
}


@dataclass(frozen=True, slots=True)
class Violation:
    check: str
    meaning: str
    count: int
    examples: list[dict[str, object]]


async def check_ledger(conn: Conn, *, examples: int = 5) -> list[Violation]:
    """Every failed check with a few offending rows; an empty list means the ledger holds."""
    found: list[Violation] = []
    for name, (meaning, sql) in CHECKS.items():
        rows = await conn.fetch(sql)
        if rows:
            found.append(Violation(name, meaning, len(rows), [dict(r) for r in rows[:examples]]))
    return found
