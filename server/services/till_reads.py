"""What a till and its merchant read back: one redemption, a redemption found by receipt or
by the idempotency key a terminal lost the answer of, and the merchant's day (rule S2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial

from server.db import Conn
from server.db import redemptions as db
from server.db.redemptions import DayRedemption, DayRefund, RedemptionRecord, RefundRecord
from server.services import guarded
from server.services.ports import Ports, TillPorts
from shared import rules
from shared.errors import InvalidRequest, NotFound


@dataclass(frozen=True, slots=True)
class RedemptionView:
    """A redemption with its refunds, oldest first."""

    redemption: RedemptionRecord
    refunds: tuple[RefundRecord, ...]

    @property
    def cash_back_fen(self) -> list[int]:
        """Rules U3, F2: the cash each refund handed back, in the order of ``refunds``."""
        r = self.redemption
        steps = [rules.RefundStep(f.remaining_bill_fen, f.returned_count) for f in self.refunds]
        return rules.cash_handed_back_fen(r.bill_fen, r.voucher_count, r.face_value_fen, steps)


def own_redemption(merchant_id: int | None, row: RedemptionRecord | None) -> RedemptionRecord:
    """Rule X2: a merchant's people see only that merchant's redemptions."""
    if row is None or row.merchant_id != merchant_id:
        raise NotFound("no such redemption at this merchant")
    return row


async def view(conn: Conn, row: RedemptionRecord) -> RedemptionView:
    return RedemptionView(row, tuple(await db.refunds_of(conn, row.id)))


async def get_redemption(
    redemption_id: int, merchant_id: int | None, ports: Ports
) -> RedemptionView:
    async with ports.pool.acquire() as conn:
        return await view(conn, own_redemption(merchant_id, await db.get(conn, redemption_id)))


@dataclass(frozen=True, slots=True)
class ByReceipt:
    """A merchant's bill, by its receipt number (normalised, rule U4) on a business date
    (None: today), at a till if given. ``caller_terminal``: the till asking, whose own bill
    is meant when several tills used the number that day."""

    merchant_id: int
    receipt_no: str
    day: date | None = None
    terminal_id: int | None = None
    caller_terminal: int | None = None


@dataclass(frozen=True, slots=True)
class ByKey:
    """The redemption a terminal asked for under ``key`` and lost the answer of. ``code``:
    the QR code that request carried (the ``Voucher-Code`` header), None if not sent; it names
    the citizen in whose Redis slot the key is marked while at work (issue 14)."""

    merchant_id: int | None
    terminal_id: int
    key: str
    code: str | None = None


async def find_redemption(asked: ByReceipt | ByKey, ports: TillPorts) -> RedemptionView:
    # a forged or garbled code is refused before anything is read
    holder = guarded.holder_of(ports, asked.code) if isinstance(asked, ByKey) else None
    async with ports.pool.acquire() as conn:
        if isinstance(asked, ByReceipt):
            day = asked.day or rules.business_date(ports.clock())
            row = _one_bill(
                await db.by_receipt(
                    conn, asked.merchant_id, asked.receipt_no, day, asked.terminal_id
                ),
                asked,
                day,
            )
        else:
            row = await db.by_idempotency_key(conn, asked.terminal_id, asked.key)
            if row is None:
                # rule U7: not "it never happened" while the first request is still at work
                await guarded.still_at_work(ports, asked.terminal_id, asked.key, holder)
        return await view(conn, own_redemption(asked.merchant_id, row))


def _one_bill(
    found: list[RedemptionRecord], asked: ByReceipt, day: date
) -> RedemptionRecord | None:
    """Rule U4: the bill a receipt number names on ``day``. Where several tills used it (the
    merchant numbers receipts per till), the asking till's own; otherwise the caller must say
    which till (``terminal_id``) or ask by the redemption id printed on the receipt."""
    if len(found) > 1 and asked.caller_terminal is not None:
        own = [r for r in found if r.terminal_id == asked.caller_terminal]
        if len(own) == 1:
            return own[0]
    if len(found) > 1:
        raise InvalidRequest(
            f"several tills used receipt number {asked.receipt_no} on {day.isoformat()}: "
            "say which till (terminal_id), or find the bill by its redemption id",
            field="terminal_id",
            terminals=sorted({r.terminal_id for r in found}),
        )
    return found[0] if found else None


@dataclass(frozen=True, slots=True)
class DayTotals:
    bills: int
    vouchers: int
    value_fen: int
    bill_fen: int
    refunds: int
    returned_vouchers: int
    returned_value_fen: int

    @property
    def net_value_fen(self) -> int:
        return self.value_fen - self.returned_value_fen


@dataclass(frozen=True, slots=True)
class MerchantDay:
    merchant_id: int
    day: date
    redemptions: tuple[DayRedemption, ...]
    refunds: tuple[DayRefund, ...]

    @property
    def totals(self) -> DayTotals:
        reds, refs = self.redemptions, self.refunds
        return DayTotals(
            bills=len(reds),
            vouchers=sum(r.voucher_count for r in reds),
            value_fen=sum(r.voucher_count * r.face_value_fen for r in reds),
            bill_fen=sum(r.bill_fen for r in reds),
            refunds=len(refs),
            returned_vouchers=sum(f.returned_count for f in refs),
            returned_value_fen=sum(f.returned_count * f.face_value_fen for f in refs),
        )


async def merchant_day(merchant_id: int, day: date | None, ports: Ports) -> MerchantDay:
    """Rule S2: the merchant's redemptions and refunds of one local date (today if None)."""
    tz = ports.tz
    day = day or ports.clock().astimezone(tz).date()
    start = rules.start_of_day(day, tz)
    end = rules.start_of_day(day + timedelta(days=1), tz)
    # issue 14: a report (the replica when there is one), unlike the lookups above, which the
    # till makes about what just happened and which read the primary
    reds, refs = await ports.report(
        partial(db.merchant_day, merchant_id=merchant_id, start=start, end=end)
    )
    return MerchantDay(merchant_id, day, tuple(reds), tuple(refs))
