"""The merchant's day as CSV (rule S2), one layout for the till's export
(``terminal/documents.py``) and the manager's page and API (``server/services/merchant_pages.py``):
one row per redemption and per refund, then the total row; amounts in 元 with two decimals
(``shared.money``, never floats).

Gross, returned and net each have their own columns, so every column sums to its total row
(issue 11 item 7: a total once put 48 gross vouchers beside a net 3,000 元). The cash is
what the till collected on a bill (bill - vouchers' value, rule U3) and the cash back what
each refund handed back (rules U3, F2, as the server reckons it: ``cash_back_fen``)."""

from __future__ import annotations

from typing import Literal

from shared.money import format_yuan

Lang = Literal["zh", "en"]

COLUMNS: dict[Lang, tuple[str, ...]] = {
    "zh": (
        "类型",
        "时间",
        "核销单号",
        "退款单号",
        "小票号",
        "收银台",
        "账单金额(元)",
        "收现(元)",
        "退现(元)",
        "用券(张)",
        "券金额(元)",
        "退回(张)",
        "退回券金额(元)",
        "净用券(张)",
        "净券金额(元)",
    ),
    "en": (
        "kind",
        "time",
        "redemption_id",
        "refund_id",
        "receipt_no",
        "terminal",
        "bill_yuan",
        "cash_yuan",
        "cash_back_yuan",
        "vouchers_gross",
        "value_gross_yuan",
        "vouchers_returned",
        "value_returned_yuan",
        "vouchers_net",
        "value_net_yuan",
    ),
}
KINDS: dict[Lang, tuple[str, str, str]] = {
    "zh": ("核销", "退款", "合计"),
    "en": ("redemption", "refund", "total"),
}

Cell = str | int


def redemption_row(
    lang: Lang,
    time: str,
    redemption_id: int,
    receipt_no: str,
    terminal: str,
    bill_fen: int,
    voucher_count: int,
    value_fen: int,
) -> list[Cell]:
    """A bill: its gross vouchers are also its net (refunds have rows of their own)."""
    return [
        KINDS[lang][0],
        time,
        redemption_id,
        "",
        receipt_no,
        terminal,
        format_yuan(bill_fen),
        format_yuan(bill_fen - value_fen),
        "",
        voucher_count,
        format_yuan(value_fen),
        "",
        "",
        voucher_count,
        format_yuan(value_fen),
    ]


def refund_row(
    lang: Lang,
    time: str,
    redemption_id: int,
    refund_id: int,
    receipt_no: str,
    terminal: str,
    cash_back_fen: int,
    returned_count: int,
    value_fen: int,
) -> list[Cell]:
    """A refund: the vouchers it gave back, taken off the net, and the cash it handed back."""
    return [
        KINDS[lang][1],
        time,
        redemption_id,
        refund_id,
        receipt_no,
        terminal,
        "",
        "",
        format_yuan(cash_back_fen),
        "",
        "",
        returned_count,
        format_yuan(value_fen),
        -returned_count,
        format_yuan(-value_fen),
    ]


def total_row(
    lang: Lang,
    day: str,
    *,
    bill_fen: int,
    vouchers: int,
    value_fen: int,
    cash_back_fen: int,
    returned_vouchers: int,
    returned_value_fen: int,
) -> list[Cell]:
    """The day's totals, each under its own column."""
    return [
        KINDS[lang][2],
        day,
        "",
        "",
        "",
        "",
        format_yuan(bill_fen),
        format_yuan(bill_fen - value_fen),
        format_yuan(cash_back_fen),
        vouchers,
        format_yuan(value_fen),
        returned_vouchers,
        format_yuan(returned_value_fen),
        vouchers - returned_vouchers,
        format_yuan(value_fen - returned_value_fen),
    ]
