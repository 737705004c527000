"""The ledger checked against itself (rules U3, U7, F1, F2; T5, T6, T9-T12 for house
tickets): what a load test ends with, and what an operator can run at any time. Each check is
a query returning the offending rows."""

from __future__ import annotations

from dataclasses import dataclass

from server.db import Conn

# what a use owes its seller (rule T12 [choice]): the ticket amount, its subsidy, the reward
_DUE = """(u.reward_fen + (SELECT sum(d.amount_fen + d.subsidy_fen) FROM ticket_draws d
                          WHERE d.use_id = u.id))"""

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
    "ticket_accounts": (
        "rules T5, T9, T11: a house ticket's used, cashed out, returned, split out and balance "
        "do not add up to its face value",
        """
        SELECT id AS ticket_id, face_value_fen,
               used_fen + cashed_out_fen + returned_fen + split_out_fen + balance_fen AS accounted
          FROM tickets
         WHERE used_fen + cashed_out_fen + returned_fen + split_out_fen + balance_fen
               <> face_value_fen OR balance_fen < 0
        """,
    ),
    "ticket_used_vs_draws": (
        "rule T5: a house ticket's used amount differs from its live uses' draws",
        """
        SELECT t.id AS ticket_id, t.used_fen, coalesce(sum(d.amount_fen), 0) AS drawn
          FROM tickets t
          LEFT JOIN ticket_draws d ON d.ticket_id = t.id
               AND d.use_id IN (SELECT id FROM ticket_uses WHERE cancelled_at IS NULL)
         GROUP BY t.id HAVING t.used_fen <> coalesce(sum(d.amount_fen), 0)
        """,
    ),
    "ticket_family_split": (
        "rule T6: a split ticket's split-out amount differs from its pieces' face values",
        """
        SELECT p.id AS ticket_id, p.split_out_fen,
               (SELECT coalesce(sum(c.face_value_fen), 0) FROM tickets c
                 WHERE c.parent_id = p.id) AS pieces
          FROM tickets p
         WHERE p.split_out_fen <> (SELECT coalesce(sum(c.face_value_fen), 0) FROM tickets c
                                    WHERE c.parent_id = p.id)
        """,
    ),
    "ticket_use_over_price": (
        "rule T5: a live house-ticket use pays more than its contract's price",
        """
        SELECT u.id AS use_id, u.price_fen,
               sum(d.amount_fen + d.subsidy_fen) + u.reward_fen AS paid
          FROM ticket_uses u JOIN ticket_draws d ON d.use_id = u.id
         WHERE u.cancelled_at IS NULL
         GROUP BY u.id HAVING sum(d.amount_fen + d.subsidy_fen) + u.reward_fen > u.price_fen
        """,
    ),
    # issue 13: house tickets after use (rules T9-T12), every figure exact to the fen
    "ticket_settled_over_due": (
        "rule T12: a use's settlement lines add up to more than is due to its seller (the "
        "ticket amount, subsidy and reward), or below nothing",
        f"""
        SELECT u.id AS use_id, {_DUE} AS due, sum(x.amount_fen) AS settled
          FROM ticket_uses u JOIN ticket_settlement_lines x ON x.use_id = u.id
         GROUP BY u.id
        HAVING sum(x.amount_fen) < 0
            OR (u.cancelled_at IS NULL AND sum(x.amount_fen) > {_DUE})
        """,  # noqa: S608 (constant text, no input in it)
    ),
    "ticket_clawback_not_cancelled": (
        "rules T11, T12: a clawback on a use whose contract was not cancelled, or a payment "
        "built for a use after its cancellation",
        """
        SELECT x.settlement_id, x.use_id, x.kind, x.amount_fen
          FROM ticket_settlement_lines x JOIN ticket_uses u ON u.id = x.use_id
          JOIN ticket_settlements s ON s.id = x.settlement_id
         WHERE (x.kind = 'clawback' AND u.cancelled_at IS NULL)
            OR (x.kind <> 'clawback' AND u.cancelled_at IS NOT NULL
                AND s.created_at > u.cancelled_at)
        """,
    ),
    "ticket_cancelled_still_paid": (
        "rules T11, T12: a cancelled use still holds what its seller was paid after a later "
        "settlement of its district was built (the clawback is missing)",
        """
        SELECT u.id AS use_id, sum(x.amount_fen) AS settled
          FROM ticket_uses u JOIN ticket_settlement_lines x ON x.use_id = u.id
         WHERE u.cancelled_at IS NOT NULL
         GROUP BY u.id
        HAVING sum(x.amount_fen) <> 0 AND EXISTS (
               SELECT 1 FROM ticket_settlements s
                WHERE s.campaign_id = u.campaign_id AND s.created_at > u.cancelled_at
                  AND s.district = (SELECT t.district FROM ticket_draws d
                                      JOIN tickets t ON t.id = d.ticket_id
                                     WHERE d.use_id = u.id ORDER BY d.ticket_id LIMIT 1))
        """,
    ),
    "ticket_settlement_total": (
        "rule T12: a settlement's amount differs from the sum of its lines",
        """
        SELECT s.id AS settlement_id, s.amount_fen,
               coalesce(sum(x.amount_fen), 0) AS lines
          FROM ticket_settlements s LEFT JOIN ticket_settlement_lines x ON x.settlement_id = s.id
         GROUP BY s.id HAVING s.amount_fen <> coalesce(sum(x.amount_fen), 0)
        """,
    ),
    "ticket_cashout_vs_payouts": (
        "rule T9: a family's cashed-out amount differs from its cash-out payouts",
        """
        SELECT f.original_id, f.cashed_out, coalesce(p.paid, 0) AS payouts
          FROM (SELECT original_id, sum(cashed_out_fen) AS cashed_out FROM tickets
                 GROUP BY original_id) f
          LEFT JOIN (SELECT original_id, sum(amount_fen) AS paid FROM ticket_payouts
                      WHERE kind = 'cashout' GROUP BY original_id) p
                 ON p.original_id = f.original_id
         WHERE f.cashed_out <> coalesce(p.paid, 0)
        """,
    ),
    "ticket_bonus_rate": (
        "rule T10: a usage bonus is not its rate of the original face value, rounded down",
        """
        SELECT p.id AS payout_id, p.amount_fen, p.rate_bp, t.face_value_fen
          FROM ticket_payouts p JOIN tickets t ON t.id = p.original_id
         WHERE p.kind = 'bonus' AND p.amount_fen <> t.face_value_fen * p.rate_bp / 10000
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
