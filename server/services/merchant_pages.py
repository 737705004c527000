"""What the merchant manager's pages read (rules S1, S2, U1, X2), and the one thing they write:
a request to revoke a till, recorded in the audit log.

Thin on purpose: the day is the till's own day (``server.services.till_reads.merchant_day``,
the same rows ``GET /v1/merchant/day`` answers), summed per till. A manager sees only their own
merchant: any other merchant's id is simply not found (404), as if it did not exist.

Why a *request* to revoke and not the revocation: rule U1 makes redemption permission and the
terminals the district's business (``POST /v1/terminals/{id}/revocation`` is for operators),
and the API lets no manager revoke a till. The page does not widen that: the request goes
into the append-only audit log (action ``terminal.revoke_request``, with the reason), where
the district's operators see it (``voucherctl audit --action terminal.revoke_request``) and
revoke the till, which is then refused at once (rule X1).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from functools import partial

from server.auth import Principal, Role
from server.db import Conn
from server.db import admin as audit_db
from server.db import pages as db
from server.db.pages import DayTotals, MerchantBatch, Till
from server.services import till_reads
from server.services.ports import Ports
from shared import day_csv as layout
from shared import rules
from shared.day_csv import Lang
from shared.errors import NotFound


@dataclass(frozen=True, slots=True)
class Bill:
    id: int
    time: datetime
    receipt_no: str
    terminal_id: int
    terminal_label: str
    bill_fen: int
    voucher_count: int
    refunded_count: int
    value_fen: int

    @property
    def cash_fen(self) -> int:
        """The cash collected on the bill: what the vouchers did not pay (rule U3)."""
        return self.bill_fen - self.value_fen


@dataclass(frozen=True, slots=True)
class Refund:
    id: int
    time: datetime
    redemption_id: int
    receipt_no: str
    terminal_id: int
    terminal_label: str
    returned_count: int
    value_fen: int
    cash_back_fen: int  # the cash this refund handed back (rules U3, F2)


@dataclass(slots=True)
class Sums:
    """Bills, vouchers and their value, refunds; gross is the vouchers' value, net after
    refunds (rule S2); the cash collected on the bills and handed back by the refunds."""

    label: str = ""
    bills: int = 0
    bill_fen: int = 0
    vouchers: int = 0
    value_fen: int = 0
    refunds: int = 0
    returned_vouchers: int = 0
    returned_value_fen: int = 0
    cash_back_fen: int = 0

    @property
    def net_value_fen(self) -> int:
        return self.value_fen - self.returned_value_fen

    @property
    def cash_fen(self) -> int:
        return self.bill_fen - self.value_fen

    @property
    def net_vouchers(self) -> int:
        return self.vouchers - self.returned_vouchers


@dataclass(frozen=True, slots=True)
class Day:
    merchant_id: int
    day: date
    bills: list[Bill]
    refunds: list[Refund]
    totals: Sums
    per_till: list[Sums] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Month:
    merchant_id: int
    month: date
    days: list[DayTotals]
    totals: Sums
    batches: list[MerchantBatch]  # the month's settlement, once built (rule S1)
    unsettled_fen: int  # live voucher value of the month in no batch yet


def own_merchant(me: Principal, merchant_id: int) -> None:
    """Rule X2: a manager (or one of the shop's tills, for the API's day list) reads their own
    merchant only; another id does not exist for them."""
    if me.role not in (Role.MERCHANT_MANAGER, Role.CASHIER) or me.merchant_id != merchant_id:
        raise NotFound("no such merchant")


async def day(ports: Ports, me: Principal, merchant_id: int, when: date) -> Day:
    """Rule S2: the merchant's bills and refunds of a local date, in total and per till."""
    own_merchant(me, merchant_id)
    # the day has one home: the till's read service, the rows GET /v1/merchant/day answers
    the_day = await till_reads.merchant_day(merchant_id, when, ports)
    paired = await ports.report(partial(db.tills, merchant_id=merchant_id))
    labels = {t.id: t.label for t in paired}
    bills = [
        Bill(
            r.id,
            r.created_at,
            r.receipt_no,
            r.terminal_id,
            r.terminal_label,
            r.bill_fen,
            r.voucher_count,
            r.refunded_count,
            r.voucher_count * r.face_value_fen,
        )
        for r in the_day.redemptions
    ]
    refunds = [
        Refund(
            f.id,
            f.created_at,
            f.redemption_id,
            f.receipt_no,
            f.terminal_id,
            f.terminal_label,
            f.returned_count,
            f.returned_count * f.face_value_fen,
            f.cash_back_fen,
        )
        for f in the_day.refunds
    ]
    totals = Sums()
    tills: dict[int, Sums] = {}
    for b in bills:
        for sums in (totals, tills.setdefault(b.terminal_id, Sums(labels.get(b.terminal_id, "")))):
            sums.bills += 1
            sums.bill_fen += b.bill_fen
            sums.vouchers += b.voucher_count
            sums.value_fen += b.value_fen
    for f in refunds:
        for sums in (totals, tills.setdefault(f.terminal_id, Sums(labels.get(f.terminal_id, "")))):
            sums.refunds += 1
            sums.returned_vouchers += f.returned_count
            sums.returned_value_fen += f.value_fen
            sums.cash_back_fen += f.cash_back_fen
    return Day(merchant_id, when, bills, refunds, totals, [tills[k] for k in sorted(tills)])


async def month(ports: Ports, me: Principal, merchant_id: int, first: date) -> Month:
    """Rules S1, S2: the month's totals per day and the state of its settlement."""
    own_merchant(me, merchant_id)
    start, end = rules.month_bounds(first, ports.tz)

    async def read(conn: Conn) -> tuple[list[DayTotals], list[MerchantBatch], int]:
        return (
            await db.merchant_days(conn, merchant_id, start, end, _zone(ports)),
            await db.merchant_batches(conn, merchant_id, first.replace(day=1)),
            await db.unsettled_value(conn, merchant_id, start, end),
        )

    # issue 14: the month and its settlement preview are a report: the replica when there is one
    days, batches, unsettled = await ports.report(read)
    totals = Sums()
    for d in days:
        totals.bills += d.bills
        totals.bill_fen += d.bill_fen
        totals.vouchers += d.vouchers
        totals.value_fen += d.value_fen
        totals.returned_vouchers += d.returned_vouchers
        totals.returned_value_fen += d.returned_value_fen
    return Month(merchant_id, first.replace(day=1), days, totals, batches, unsettled)


async def tills(ports: Ports, me: Principal, merchant_id: int) -> list[Till]:
    """Rule U1: the merchant's paired tills and when each was last used."""
    own_merchant(me, merchant_id)
    async with ports.pool.acquire() as conn:
        return await db.tills(conn, merchant_id)


async def request_revocation(
    ports: Ports, me: Principal, merchant_id: int, terminal_id: int, reason: str
) -> Till:
    """Record the manager's request to revoke one of their tills (see the module's doc)."""
    own_merchant(me, merchant_id)
    async with ports.pool.acquire() as conn, conn.transaction():
        found = [t for t in await db.tills(conn, merchant_id) if t.id == terminal_id]
        if not found:
            raise NotFound("no such till")
        await audit_db.audit(
            conn,
            actor=me.actor,
            action="terminal.revoke_request",
            subject=f"terminal:{terminal_id}",
            reason=reason,
            details={"merchant_id": merchant_id, "label": found[0].label},
        )
    return found[0]


def _zone(ports: Ports) -> str:
    return str(getattr(ports.tz, "key", "Asia/Shanghai"))


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def day_csv(found: Day, tz: tzinfo, lang: Lang = "en") -> str:
    """The day as the shop's bookkeeping opens it, in the till's export's layout
    (``shared.day_csv``): one row per bill and per refund, gross, returned and net in columns
    of their own, the cash collected and handed back, amounts in 元, local times."""
    out = io.StringIO()
    rows = csv.writer(out)
    rows.writerow(layout.COLUMNS[lang])
    for b in found.bills:
        rows.writerow(
            layout.redemption_row(
                lang,
                _local(b.time, tz),
                b.id,
                b.receipt_no,
                b.terminal_label,
                b.bill_fen,
                b.voucher_count,
                b.value_fen,
            )
        )
    for f in found.refunds:
        rows.writerow(
            layout.refund_row(
                lang,
                _local(f.time, tz),
                f.redemption_id,
                f.id,
                f.receipt_no,
                f.terminal_label,
                f.cash_back_fen,
                f.returned_count,
                f.value_fen,
            )
        )
    t = found.totals
    rows.writerow(
        layout.total_row(
            lang,
            found.day.isoformat(),
            bill_fen=t.bill_fen,
            vouchers=t.vouchers,
            value_fen=t.value_fen,
            cash_back_fen=t.cash_back_fen,
            returned_vouchers=t.returned_vouchers,
            returned_value_fen=t.returned_value_fen,
        )
    )
    return out.getvalue()


def _local(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def month_csv(found: Month) -> str:
    """The month per day: bills, vouchers and value, refunds, net (rule S2)."""
    out = io.StringIO()
    rows = csv.writer(out)
    rows.writerow(
        [
            "date",
            "bills",
            "bill_yuan",
            "vouchers",
            "value_yuan",
            "returned_vouchers",
            "returned_value_yuan",
            "net_value_yuan",
        ]
    )
    for d in found.days:
        rows.writerow(
            [
                d.day.isoformat(),
                d.bills,
                _yuan(d.bill_fen),
                d.vouchers,
                _yuan(d.value_fen),
                d.returned_vouchers,
                _yuan(d.returned_value_fen),
                _yuan(d.value_fen - d.returned_value_fen),
            ]
        )
    t = found.totals
    rows.writerow(
        [
            "total",
            t.bills,
            _yuan(t.bill_fen),
            t.vouchers,
            _yuan(t.value_fen),
            t.returned_vouchers,
            _yuan(t.returned_value_fen),
            _yuan(t.net_value_fen),
        ]
    )
    return out.getvalue()
