"""A refund at the till (rules F1-F3), read top to bottom: under the redemption's row lock,
the key's earlier refund (U7) or the decision (``shared.redemption.vouchers_returned``) and
the write; then the redemption as it now stands."""

from __future__ import annotations

from dataclasses import dataclass

from server.db import redemptions as db
from server.services.ports import TillPorts
from server.services.till_reads import RedemptionView, own_redemption, view
from shared.errors import IdempotencyKeyReused
from shared.redemption import vouchers_returned


@dataclass(frozen=True, slots=True)
class Refund:
    """Refund a bill down to ``remaining_bill_fen``. ``terminal_id`` None: staff of the
    merchant refund on behalf of the redemption's terminal (the key's scope)."""

    redemption_id: int
    merchant_id: int | None
    terminal_id: int | None
    key: str
    digest: bytes
    remaining_bill_fen: int


async def refund(cmd: Refund, ports: TillPorts) -> RedemptionView:
    """Rules F1-F3: return vouchers of a bill refunded down to ``remaining_bill_fen``; the
    same key and body again change nothing and get the redemption as it stands (U7)."""
    now = ports.clock()
    async with ports.pool.acquire() as conn:
        async with conn.transaction():
            row = own_redemption(cmd.merchant_id, await db.lock_for_refund(conn, cmd.redemption_id))
            terminal_id = cmd.terminal_id or row.terminal_id
            previous = await db.refund_by_key(conn, terminal_id, cmd.key)
            if previous is not None:
                if previous.request_hash != cmd.digest:
                    raise IdempotencyKeyReused("this Idempotency-Key was used for another request")
            else:
                returned_ids = vouchers_returned(
                    ports.campaigns[row.campaign_id],
                    await db.live_items(conn, row.id),
                    cmd.remaining_bill_fen,
                    bill_fen=row.current_bill_fen,
                    settled=row.settlement_id is not None,
                )  # rules F2, F3
                await db.write_refund(
                    conn,
                    redemption_id=row.id,
                    terminal_id=terminal_id,
                    remaining_bill_fen=cmd.remaining_bill_fen,
                    returned_ids=returned_ids,
                    idempotency_key=cmd.key,
                    request_hash=cmd.digest,
                    now=now,
                )
        after = await db.get(conn, cmd.redemption_id)
        assert after is not None
        return await view(conn, after)
