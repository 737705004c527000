"""The words of the house tickets' operators' page (``/ops/tickets``, issue 13, rule T14),
Chinese first: key -> (Chinese, English). ``server.pages.i18n`` merges them with the rest."""

from __future__ import annotations

from shared.ticket_payouts import REPORT_COLUMNS

_ENGLISH_COLUMNS = {
    "scope": "Scope",
    "key": "Name",
    "issued": "Tickets issued",
    "face_fen": "Face value",
    "used_fen": "Used",
    "cashed_out_fen": "Cashed out",
    "returned_fen": "Returned",
    "expired_fen": "Expired unused",
    "balance_fen": "Balance left",
    "subsidy_fen": "Purchase subsidies",
    "reward_fen": "Policy rewards",
    "bonus_fen": "Usage bonuses",
    "settlement_due_fen": "Due to sellers",
    "settlement_paid_fen": "Paid to sellers",
}

WORDS: dict[str, tuple[str, str]] = {
    "tickets_ops": ("房票看板", "House tickets"),
    "to_tickets": (
        "房票看板（核发、使用、兑付、结算）",
        "House tickets (issued, used, paid out, settled)",
    ),
    "table_of": ("{t}：表格（可左右滚动）", "{t}: table (scrolls sideways)"),
    "to_vouchers": ("返回消费券看板", "Back to the vouchers' dashboard"),
    "programme": ("房票项目", "Programme"),
    "on_day": ("统计日期", "As of"),
    "ticket_report": ("房票统计（T14）", "Report (T14)"),
    "download_report": ("下载统计表 CSV", "Download the report (CSV)"),
    "scope_programme": ("全市", "Programme"),
    "scope_district": ("区", "District"),
    "scope_seller": ("开发企业", "Seller"),
    "ticket_settlements": ("开发企业结算（T12）", "Settlements with the sellers (T12)"),
    "point": ("结算点", "Point"),
    "payment_due": ("付款期限", "Pay by"),
    "batch_parts": ("构成（T12）", "Parts (T12)"),
    "line_full": ("全额", "In full"),
    "line_first": ("首付", "First payment"),
    "line_holdback": ("留存款（产权证办妥后）", "Holdback (after the property certificate)"),
    "line_clawback": ("追回", "Clawed back"),
    "ticket_payouts": ("待兑付（T9、T10）", "Payouts to holders (T9, T10)"),
    "ticket_number": ("房票编号", "Ticket"),
    "payout_kind": ("类型", "Kind"),
    "payout_cashout": ("结余兑付", "Residual cash-out"),
    "payout_bonus": ("使用奖励", "Usage bonus"),
    "due_by": ("应付日期", "Due by"),
    "amount": ("金额", "Amount"),
    "issuer_scope": ("核发人：仅显示本区 {d}", "Issuer: your district only, {d}"),
    **{f"col_{k}": (zh, _ENGLISH_COLUMNS[k]) for k, zh in REPORT_COLUMNS.items()},
}
