"""What the terminal prints and exports, as pure functions of the server's answers:
the customer's receipt (plain text, fixed width, CJK-aware) and the day's list as CSV."""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from msgspec import UnsetType

from client.wire import (
    DayRedemption,
    DayRefund,
    DayReport,
    Redemption,
    RefundEntry,
    TicketDraw,
    TicketUse,
)
from shared import day_csv as day_csv_layout
from shared.money import format_yuan
from terminal.config import Lang
from terminal.i18n import tr

LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # all dates of the programme are Shanghai dates
RECEIPT_WIDTH = 32  # characters of a 58 mm till printer


def display_width(text: str) -> int:
    """Columns on a terminal or printer: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, width: int, *, right: bool = False) -> str:
    gap = " " * max(0, width - display_width(text))
    return gap + text if right else text + gap


def local_time(iso: str, tz: tzinfo = LOCAL_TZ, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """The server's ISO time as the local wall clock; unreadable text is shown as is."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is None:
        return moment.strftime(fmt)
    return moment.astimezone(tz).strftime(fmt)


def yuan(fen: int) -> str:
    return format_yuan(fen, thousands=True)


def format_ids(ids: tuple[int, ...] | list[int], limit: int = 12) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f" … (+{len(ids) - limit})" if len(ids) > limit else "")


def _line(label: str, value: str, width: int) -> str:
    label_w = 10
    head = pad(label, label_w)
    room = width - display_width(head)
    if display_width(value) > room:
        return f"{label}\n{pad(value, width, right=True)}"
    return head + pad(value, room, right=True)


@dataclass(frozen=True, slots=True)
class ReceiptData:
    """What a printed receipt says; from a redeem answer, or from a day list row for a
    reprint (issue 11 item 6)."""

    merchant_name: str
    terminal_id: int
    terminal_label: str
    time: str
    receipt_no: str
    redemption_id: int
    bill_fen: int
    voucher_count: int
    face_value_fen: int
    value_fen: int
    masked_id: str = ""
    vouchers_left: int | None = None
    refunds: tuple[RefundEntry, ...] = ()
    refunded_count: int = 0
    reprint: bool = False

    @property
    def cash_due_fen(self) -> int:
        """Rule U3: the part of the bill the vouchers do not cover, paid otherwise."""
        return self.bill_fen - self.value_fen


def receipt_of(r: Redemption) -> ReceiptData:
    left = r.citizen.vouchers_left  # a redeem's answer says; a look-up leaves it out
    return ReceiptData(
        merchant_name=r.merchant.name,
        terminal_id=r.terminal.id,
        terminal_label=r.terminal.label,
        time=r.created_at,
        receipt_no=r.receipt_no,
        redemption_id=r.redemption_id,
        bill_fen=r.bill_fen,
        voucher_count=r.voucher_count,
        face_value_fen=r.face_value_fen,
        value_fen=r.value_fen,
        masked_id=r.citizen.masked_id,
        vouchers_left=None if isinstance(left, UnsetType) else left,
        refunds=r.refunds,
        refunded_count=r.refunded_count,
    )


def reprint_of(row: DayRedemption, merchant_name: str, terminal_label: str = "") -> ReceiptData:
    """A receipt again, from the day list's row (issue 11 item 6): what the list does not
    carry (the customer, the refunds' details) is left out; refunded vouchers are counted."""
    return ReceiptData(
        merchant_name=merchant_name,
        terminal_id=row.terminal.id,
        terminal_label=row.terminal.label or terminal_label,
        time=row.time,
        receipt_no=row.receipt_no,
        redemption_id=row.redemption_id,
        bill_fen=row.bill_fen,
        voucher_count=row.voucher_count,
        face_value_fen=row.value_fen // row.voucher_count if row.voucher_count else 0,
        value_fen=row.value_fen,
        refunded_count=row.refunded_count,
        reprint=True,
    )


def receipt_text(
    redemption: Redemption | ReceiptData,
    lang: Lang = "zh",
    *,
    tz: tzinfo = LOCAL_TZ,
    width: int = RECEIPT_WIDTH,
) -> str:
    """The customer's receipt: merchant, till, time, receipt number, the bill, the vouchers
    used and their value, the cash still due (rule U3: no change given), the citizen's
    vouchers left when the server said, the redemption id and any refunds."""
    r = receipt_of(redemption) if isinstance(redemption, Redemption) else redemption
    rule = "-" * width
    title = tr("receipt.title", lang)
    lines = [
        pad(" " * ((width - display_width(title)) // 2) + title, width).rstrip(),
    ]
    if r.reprint:
        lines.append(_centred(tr("receipt.reprint", lang), width))
    lines += [
        rule,
        _line(tr("receipt.merchant", lang), r.merchant_name, width),
        _line(
            tr("receipt.terminal", lang),
            terminal_name(r.terminal_id, r.terminal_label, lang),
            width,
        ),
        _line(tr("receipt.time", lang), local_time(r.time, tz), width),
        _line(tr("receipt.receipt_no", lang), r.receipt_no, width),
    ]
    if r.masked_id:
        lines.append(_line(tr("receipt.customer", lang), r.masked_id, width))
    lines += [
        rule,
        _line(tr("receipt.bill", lang), f"{yuan(r.bill_fen)} 元", width),
        _line(
            tr("receipt.vouchers", lang),
            tr("receipt.vouchers.value", lang, n=r.voucher_count, f=yuan(r.face_value_fen)),
            width,
        ),
        _line(tr("receipt.value", lang), f"-{yuan(r.value_fen)} 元", width),
        _line(tr("receipt.to_pay", lang), f"{yuan(r.cash_due_fen)} 元", width),
    ]
    if r.vouchers_left is not None:
        lines.append(
            _line(
                tr("receipt.vouchers_left", lang),
                tr("receipt.refund.count", lang, n=r.vouchers_left),
                width,
            )
        )
    lines += [
        rule,
        _line(tr("receipt.redemption_id", lang), str(r.redemption_id), width),
    ]
    for refund in r.refunds:  # rules F1, F2
        lines += [
            _line(tr("receipt.refund", lang), local_time(refund.created_at, tz), width),
            _line(tr("receipt.refund.bill", lang), f"{yuan(refund.remaining_bill_fen)} 元", width),
            _line(
                tr("receipt.refund.returned", lang),
                tr("receipt.refund.count", lang, n=refund.returned_count),
                width,
            ),
        ]
    if not r.refunds and r.refunded_count:
        lines.append(
            _line(
                tr("receipt.refund.returned", lang),
                tr("receipt.refund.count", lang, n=r.refunded_count),
                width,
            )
        )
    lines += [rule, tr("receipt.footer", lang)]
    return "\n".join(lines) + "\n"


# --- a house ticket's use at a sales office (issue 13, rules T5-T8) ----------------------


@dataclass(frozen=True, slots=True)
class TicketReceiptData:
    """What the printed receipt of a ticket use says: the programme, the developer and its
    sales office, the contract, the unit, the holder and the buyer (masked, rule X3), each
    ticket drawn with its amount and the balance left, the subsidy (T7) or reward (T8), what
    the buyer still pays, the use id and the time."""

    programme: str
    developer: str
    terminal_id: int
    terminal_label: str
    time: str
    contract_no: str
    unit: str
    area_dm2: int
    price_fen: int
    holder_masked: str
    relation: str
    buyer_masked: str | None  # the buyer's masked ID number, when not the holder (T5)
    draws: tuple[TicketDraw, ...]
    amount_fen: int
    subsidy_fen: int
    reward_fen: int
    buyer_pays_fen: int
    use_id: int
    reprint: bool = False


def ticket_receipt_of(
    use: TicketUse,
    *,
    programme: str,
    developer: str,
    terminal_id: int,
    terminal_label: str = "",
    buyer_masked: str | None = None,
    reprint: bool = False,
) -> TicketReceiptData:
    """A use's answer as its receipt; what the answer does not carry (the programme's and
    the developer's names, the buyer's masked number, the till) comes from the till."""
    return TicketReceiptData(
        programme=programme,
        developer=developer,
        terminal_id=terminal_id,
        terminal_label=terminal_label,
        time=use.used_at,
        contract_no=use.contract_no,
        unit=use.unit,
        area_dm2=use.area_dm2,
        price_fen=use.price_fen,
        holder_masked=use.holder.masked_id,
        relation=use.relation,
        buyer_masked=None if use.relation == "holder" else buyer_masked,
        draws=use.draws,
        amount_fen=use.amount_fen,
        subsidy_fen=use.subsidy_fen,
        reward_fen=use.reward_fen,
        buyer_pays_fen=use.buyer_pays_fen,
        use_id=use.use_id,
        reprint=reprint,
    )


def _chunks(text: str, width: int) -> list[str]:
    """``text`` cut into pieces at most ``width`` columns wide (CJK characters take two)."""
    pieces, piece = [], ""
    for ch in text:
        if display_width(piece + ch) > width:
            pieces.append(piece)
            piece = ""
        piece += ch
    return [*pieces, piece] if piece or not pieces else pieces


def _long_line(label: str, value: str, width: int) -> str:
    """A label and a value that may be wider than the paper: the value on lines of its own."""
    if display_width(pad(label, 10) + value) <= width:
        return _line(label, value, width)
    return "\n".join([label, *_chunks(value, width)])


def _centred(text: str, width: int) -> str:
    return pad(" " * ((width - display_width(text)) // 2) + text, width).rstrip()


def ticket_receipt_text(
    r: TicketReceiptData, lang: Lang = "zh", *, tz: tzinfo = LOCAL_TZ, width: int = RECEIPT_WIDTH
) -> str:
    """The receipt of a ticket use (rules T5-T8): amounts in 元 to the fen, each ticket
    drawn with the balance it has left, the time on Shanghai's clock."""
    lines = [_centred(tr("ticket_receipt.title", lang), width)]
    if r.reprint:
        lines.append(_centred(tr("receipt.reprint", lang), width))
    buyer = tr(f"relation.{r.relation}", lang)
    lines += [
        "-" * width,
        _long_line(tr("ticket_receipt.programme", lang), r.programme, width),
        _long_line(tr("ticket_receipt.developer", lang), r.developer, width),
        _line(
            tr("ticket_receipt.office", lang),
            terminal_name(r.terminal_id, r.terminal_label, lang),
            width,
        ),
        _line(tr("receipt.time", lang), local_time(r.time, tz), width),
        _long_line(tr("ticket_receipt.contract", lang), r.contract_no, width),
        _long_line(tr("ticket_receipt.unit", lang), r.unit, width),
        _line(
            tr("ticket_receipt.area", lang),
            f"{r.area_dm2 // 100}.{r.area_dm2 % 100:02d} ㎡",
            width,
        ),
        _line(tr("ticket_receipt.price", lang), f"{yuan(r.price_fen)} 元", width),
        _line(tr("ticket_receipt.holder", lang), r.holder_masked, width),
        _line(tr("ticket_receipt.buyer", lang), buyer, width),
    ]
    if r.buyer_masked:
        lines.append(_line("", r.buyer_masked, width))
    lines.append("-" * width)
    for draw in r.draws:  # rule T6: each ticket drawn, and what it has left
        lines += [
            _long_line(tr("ticket_receipt.ticket", lang), draw.number, width),
            _line(tr("ticket_receipt.drawn", lang), f"{yuan(draw.amount_fen)} 元", width),
            _line(tr("ticket_receipt.left", lang), f"{yuan(draw.balance_fen)} 元", width),
        ]
    if len(r.draws) > 1:
        lines.append(_line(tr("ticket_receipt.total", lang), f"{yuan(r.amount_fen)} 元", width))
    if r.subsidy_fen or not r.reward_fen:  # rule T7 (a Suining use shows its reward only)
        lines.append(_line(tr("ticket_receipt.subsidy", lang), f"{yuan(r.subsidy_fen)} 元", width))
    if r.reward_fen:  # rule T8
        lines.append(_line(tr("ticket_receipt.reward", lang), f"{yuan(r.reward_fen)} 元", width))
    lines += [
        _line(tr("ticket_receipt.pays", lang), f"{yuan(r.buyer_pays_fen)} 元", width),
        "-" * width,
        _line(tr("ticket_receipt.use_id", lang), str(r.use_id), width),
        "-" * width,
        tr("ticket_receipt.footer", lang),
    ]
    return "\n".join(lines) + "\n"


def terminal_name(terminal_id: int, label: str = "", lang: Lang = "zh") -> str:
    """One name for a till everywhere (status line, day list, CSV, receipt): its label, as
    the server gives it on every row, or ``收银台 3`` when it has none (issue 11 item 7)."""
    return label or tr("terminal.name", lang, id=terminal_id)


def terminal_names(report: DayReport, known: dict[int, str] | None = None) -> dict[int, str]:
    """Labels by terminal id, from the day's own rows."""
    names = dict(known or {})
    rows: list[DayRedemption | DayRefund] = [*report.redemptions, *report.refunds]
    for row in rows:
        if row.terminal.label:
            names.setdefault(row.terminal.id, row.terminal.label)
    return names


@dataclass(frozen=True, slots=True)
class TillTotals:
    """One till's part of the day: bills, vouchers and their value (gross), vouchers given
    back by refunds made at this till, and the cash collected at redemption (bill - value,
    rule U3: the rest of the bill is paid otherwise)."""

    terminal_id: int
    bills: int = 0
    vouchers: int = 0
    value_fen: int = 0
    cash_fen: int = 0
    returned: int = 0
    returned_value_fen: int = 0
    cash_back_fen: int = 0
    """The cash refunds made at this till handed back (issue 11 item 7)."""


_TILL_SUMS = ("b", "v", "val", "cash", "ret", "rv", "back")


def till_totals(report: DayReport) -> list[TillTotals]:
    by: dict[int, dict[str, int]] = {}
    for r in report.redemptions:
        t = by.setdefault(r.terminal.id, dict.fromkeys(_TILL_SUMS, 0))
        t["b"] += 1
        t["v"] += r.voucher_count
        t["val"] += r.value_fen
        t["cash"] += r.bill_fen - r.value_fen
    for f in report.refunds:
        t = by.setdefault(f.terminal.id, dict.fromkeys(_TILL_SUMS, 0))
        t["ret"] += f.returned_count
        t["rv"] += f.value_fen
        t["back"] += f.cash_back_fen
    return [TillTotals(tid, *(t[k] for k in _TILL_SUMS)) for tid, t in sorted(by.items())]


def cash_back_fen(report: DayReport) -> int:
    """The cash the day's refunds handed back (issue 11 item 7)."""
    return sum(f.cash_back_fen for f in report.refunds)


def day_csv(report: DayReport, lang: Lang = "zh", *, tz: tzinfo = LOCAL_TZ) -> str:
    """Rule S2: the day's redemptions and refunds, one row each, then the totals, in the
    layout the manager's page downloads too (``shared.day_csv``: gross, returned and net in
    columns of their own, the cash collected and handed back); local wall-clock times."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(day_csv_layout.COLUMNS[lang])
    names = terminal_names(report)

    def till(terminal_id: int) -> str:
        return terminal_name(terminal_id, names.get(terminal_id, ""), lang)

    for r in report.redemptions:
        writer.writerow(
            day_csv_layout.redemption_row(
                lang,
                local_time(r.time, tz),
                r.redemption_id,
                r.receipt_no,
                till(r.terminal.id),
                r.bill_fen,
                r.voucher_count,
                r.value_fen,
            )
        )
    for f in report.refunds:
        writer.writerow(
            day_csv_layout.refund_row(
                lang,
                local_time(f.time, tz),
                f.redemption_id,
                f.refund_id,
                f.receipt_no,
                till(f.terminal.id),
                f.cash_back_fen,
                f.returned_count,
                f.value_fen,
            )
        )
    t = report.totals
    writer.writerow(
        day_csv_layout.total_row(
            lang,
            report.date,
            bill_fen=t.bill_fen,
            vouchers=t.vouchers,
            value_fen=t.value_fen,
            cash_back_fen=cash_back_fen(report),
            returned_vouchers=t.returned_vouchers,
            returned_value_fen=t.returned_value_fen,
        )
    )
    return out.getvalue()


def write_text_file(path: Path, text: str, *, bom: bool = False) -> Path:
    """Write ``text`` to ``path`` (parents made). ``bom`` helps spreadsheet programs read
    Chinese CSV as UTF-8."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ("\ufeff" if bom else "") + text
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(data, encoding="utf-8", newline="")
    tmp.replace(path)
    return path


def safe_file_part(text: str) -> str:
    """A receipt number as part of a file name."""
    kept = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)
    return kept[:40] or "receipt"
