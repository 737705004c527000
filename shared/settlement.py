"""Rules S1 and S3: the monthly settlement batch's life, its finance CSV, the district ranking.

Pure: plain data in, plain data out; the time is a parameter.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from enum import StrEnum

from shared.errors import (
    Forbidden,
    InvalidRequest,
    MonthNotOver,
    SeparationOfDuties,
    SettlementStateInvalid,
)
from shared.money import format_yuan
from shared.rules import month_bounds


class SettlementStatus(StrEnum):
    DRAFT = "draft"  # built by the district's team from the ledger
    REVIEWED = "reviewed"  # checked by the district
    APPROVED = "approved"  # approved by the city office
    PAID = "paid"  # paid to the merchants (before the 15th of the next month)


@dataclass(frozen=True, slots=True)
class Step:
    before: SettlementStatus
    after: SettlementStatus
    roles: frozenset[str]


# rule S1: reviewed by the district, approved by the city office, then paid (by the city)
STEPS: dict[str, Step] = {
    "review": Step(
        SettlementStatus.DRAFT, SettlementStatus.REVIEWED, frozenset({"district_operator"})
    ),
    "approve": Step(
        SettlementStatus.REVIEWED, SettlementStatus.APPROVED, frozenset({"city_operator"})
    ),
    "pay": Step(SettlementStatus.APPROVED, SettlementStatus.PAID, frozenset({"city_operator"})),
}


def next_status(
    current: str, step: str, role: str, steps: Mapping[str, Step] = STEPS
) -> SettlementStatus:
    """Rule S1: the status after ``step``, or why it may not be taken (``steps``: whose each
    step is; the house tickets' settlement names its own, rule T12)."""
    rule = steps.get(step)
    if rule is None:
        raise InvalidRequest(f"unknown settlement step {step!r}")
    if role not in rule.roles:
        raise Forbidden(f"a {role} may not {step} a settlement batch")
    if current != rule.before:
        raise SettlementStateInvalid(
            f"only a {rule.before} batch can be {rule.after}", status=current, step=step
        )
    return rule.after


def check_separation(step: str, actor: int | None, taken_by: Mapping[str, int | None]) -> None:
    """Rule S1 (separation of duties): no account takes two of review, approve, pay on one
    batch. ``taken_by`` names the account that took each step so far (None: not taken)."""
    if actor is None:
        raise Forbidden("only a named staff account takes a settlement step")
    for earlier, account in taken_by.items():
        if earlier != step and account == actor:
            raise SeparationOfDuties(
                f"this account already took the step {earlier!r} of this batch; "
                f"another account must {step} it",
                step=step,
                earlier_step=earlier,
            )


def parse_month(text: str) -> date:
    """``YYYY-MM`` → the first day of that month."""
    try:
        year, month = text.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError(text)
        return date(int(year), int(month), 1)
    except ValueError as exc:
        raise InvalidRequest("month is YYYY-MM", field="month") from exc


def check_month_over(month: date, now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """Rule S1: a month is settled once over; returns its [start, end) instants."""
    start, end = month_bounds(month, tz)
    if now < end:
        raise MonthNotOver(month=month.strftime("%Y-%m"))
    return start, end


@dataclass(frozen=True, slots=True)
class Line:
    merchant_id: int
    merchant_name: str
    redemptions: int
    vouchers: int
    amount_fen: int


STATUS_NAMES = {"draft": "待复核", "reviewed": "已复核", "approved": "已批准", "paid": "已支付"}
"""Rule S1: a batch's steps as the finance bureau and the districts name them."""


def finance_csv(
    *,
    batch_id: int,
    campaign_id: str,
    district: str,
    month: date,
    status: str,
    lines: Sequence[Line],
) -> str:
    """Rule S1: the CSV the finance bureau pays from; its total row reconciles to the lines."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "结算批次",
            "活动",
            "区",
            "月份",
            "状态",
            "商户编号",
            "商户名称",
            "核销笔数",
            "核销券数",
            "结算金额(元)",
        ]
    )
    head = [batch_id, campaign_id, district, month.strftime("%Y-%m"), status]
    for line in lines:
        writer.writerow(
            [
                *head,
                line.merchant_id,
                line.merchant_name,
                line.redemptions,
                line.vouchers,
                format_yuan(line.amount_fen),
            ]
        )
    writer.writerow(
        [
            *head,
            "合计",
            f"{len(lines)} 户",
            sum(x.redemptions for x in lines),
            sum(x.vouchers for x in lines),
            format_yuan(sum(x.amount_fen for x in lines)),
        ]
    )
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class DistrictFigures:
    """Rule S3: one district's month, vouchers counted by the district that issued them."""

    district: str
    name: str
    claims: int
    vouchers_issued: int
    vouchers_redeemed: int
    value_redeemed_fen: int
    issued_to_date: int
    redeemed_to_date: int


@dataclass(frozen=True, slots=True)
class Ranked:
    rank: int
    figures: DistrictFigures
    redemption_rate_bp: int  # redeemed to date / issued to date, in basis points


def rank_districts(rows: Sequence[DistrictFigures]) -> list[Ranked]:
    """Rule S3: districts ranked by redemption rate to date, then by value redeemed in the
    month; equal figures share a rank. Integer arithmetic only."""

    def rate(f: DistrictFigures) -> int:
        return f.redeemed_to_date * 10_000 // f.issued_to_date if f.issued_to_date else 0

    ordered = sorted(rows, key=lambda f: (-rate(f), -f.value_redeemed_fen, f.district))
    ranked: list[Ranked] = []
    for position, figures in enumerate(ordered, start=1):
        previous = ranked[-1] if ranked else None
        same = (
            previous is not None
            and previous.redemption_rate_bp == rate(figures)
            and previous.figures.value_redeemed_fen == figures.value_redeemed_fen
        )
        ranked.append(
            Ranked(previous.rank if same and previous else position, figures, rate(figures))
        )
    return ranked


def ranking_csv(month: date, ranked: Sequence[Ranked]) -> str:
    """Rule S3: the ranking as the city government's table."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "月份",
            "名次",
            "区",
            "领取笔数",
            "发放券数",
            "核销券数",
            "核销金额(元)",
            "累计发放",
            "累计核销",
            "核销率",
        ]
    )
    for r in ranked:
        f = r.figures
        writer.writerow(
            [
                month.strftime("%Y-%m"),
                r.rank,
                f.name,
                f.claims,
                f.vouchers_issued,
                f.vouchers_redeemed,
                format_yuan(f.value_redeemed_fen),
                f.issued_to_date,
                f.redeemed_to_date,
                f"{r.redemption_rate_bp // 100}.{r.redemption_rate_bp % 100:02d}%",
            ]
        )
    return out.getvalue()
