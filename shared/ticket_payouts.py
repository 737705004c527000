"""House tickets after use, rules T9, T10, T12 and T14, as pure functions: the residual
cash-out, the usage bonus, the settlement lines with the developers (90/10 holdback), and
the programme's reports. Plain data in and out (``shared.house_tickets``'s ``Ticket`` and
``TicketUse``); dates are parameters; money in fen, rounded down (T [choice]).

The 90% and bonus tests are measured on the original ticket: its family is the original and
every piece split from it (T6 [choice]); its face value is the original's.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from shared.campaign import BP_DENOMINATOR
from shared.errors import CashoutNotDue, InvalidDate, InvalidRequest
from shared.house_tickets import Ticket, TicketStatus, TicketUse, least_share_fen, share_fen
from shared.money import format_yuan
from shared.periods import add_months, month_number
from shared.settlement import SettlementStatus, Step
from shared.ticket_campaign import PropertyType, SettlementCondition, TicketCampaign

# --- families (T6) ----------------------------------------------------------------------


def original_of(family: Sequence[Ticket]) -> Ticket:
    """The original ticket of a family (T6), checking every member belongs to it."""
    if not family:
        raise InvalidRequest("a family has at least its original ticket", field="tickets")
    original_id = family[0].original_id
    if any(t.original_id != original_id for t in family):
        raise InvalidRequest("the tickets are of different families", field="tickets")
    for ticket in family:
        if ticket.id == original_id:
            return ticket
    raise InvalidRequest("the family's original ticket is missing", field="tickets")


def reaches(used_fen: int, face_value_fen: int, bp: int) -> bool:
    """True if ``used_fen`` is at least ``bp`` of ``face_value_fen`` (exact, no rounding)."""
    return used_fen * BP_DENOMINATOR >= face_value_fen * bp


# --- residual cash-out (T9) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CashoutQuote:
    """Rule T9: the balance a family may take in money."""

    original_id: int
    face_value_fen: int
    used_fen: int
    amount_fen: int
    due_by: date | None  # Suining: 6 months after the last purchase; Shangqiu: not set


def cashout_quote(
    campaign: TicketCampaign, family: Sequence[Ticket], *, last_purchase_on: date | None
) -> CashoutQuote:
    """Rule T9: once the family's uses reach ``min_used_bp`` of the original face value
    (90% in both programmes), the balance left on it is paid in money, without interest;
    Suining pays within ``pay_within_months`` of the purchase (``last_purchase_on``).
    Raises ``cashout_not_due`` (``below_minimum``, ``nothing_left``, or ``lost`` while a
    member's loss notice runs)."""
    original = original_of(family)
    if any(t.status is TicketStatus.LOST for t in family):
        raise CashoutNotDue("a ticket of the family is reported lost", reason="lost")
    used = sum(t.used_fen for t in family)
    face = original.face_value_fen
    if not reaches(used, face, campaign.cashout.min_used_bp):
        needed = least_share_fen(face, campaign.cashout.min_used_bp)
        raise CashoutNotDue(reason="below_minimum", used_fen=used, needed_fen=needed)
    amount = sum(t.balance_fen for t in family)
    if amount == 0:
        raise CashoutNotDue(reason="nothing_left")
    months = campaign.cashout.pay_within_months
    due_by = add_months(last_purchase_on, months) if months and last_purchase_on else None
    return CashoutQuote(original.id, face, used, amount, due_by)


def apply_cashout(family: Sequence[Ticket]) -> tuple[Ticket, ...]:
    """Rule T9: the family after its cash-out: every balance paid out."""
    return tuple(
        dataclasses.replace(t, cashed_out_fen=t.cashed_out_fen + t.balance_fen, balance_fen=0)
        for t in family
    )


# --- usage bonus (T10) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BonusQuote:
    """Rule T10: the usage bonus of a family, as of a day."""

    original_id: int
    review_on: date  # the last day of the review period (12 months after issue)
    used_fen: int  # uses signed within the period, cancelled ones excluded
    rate_bp: int
    amount_fen: int
    reviewed: bool  # False: a forecast, if the usage stays as it is
    due_by: date


def bonus_quote(
    campaign: TicketCampaign, family: Sequence[Ticket], uses: Iterable[TicketUse], on: date
) -> BonusQuote | None:
    """Rule T10 (Suining): on the face value, 5% when 100% is used within 12 months, 3% from
    85%; reviewed once the 12 months are over and paid within 6 months. The per-m² reward is
    not in the base (T8 [choice]). None where the programme has no bonus."""
    rules = campaign.bonus
    if rules is None:
        return None
    original = original_of(family)
    ids = {t.id for t in family}
    review_on = add_months(original.issued_on, rules.review_months)
    used = sum(
        d.amount_fen
        for u in uses
        if not u.cancelled and u.signed_on <= review_on
        for d in u.draws
        if d.ticket_id in ids
    )
    face = original.face_value_fen
    rate = next((t.rate_bp for t in rules.tiers if reaches(used, face, t.min_used_bp)), 0)
    return BonusQuote(
        original_id=original.id,
        review_on=review_on,
        used_fen=used,
        rate_bp=rate,
        amount_fen=share_fen(face, rate),
        reviewed=on > review_on,
        due_by=add_months(review_on, rules.pay_within_months),
    )


# --- settlement with the sellers (T12) --------------------------------------------------


class LineKind(StrEnum):
    """Rule T12: what a settlement line pays."""

    FULL = "full"  # everything due, at once (Shangqiu)
    FIRST = "first"  # the first part (Suining: 90%)
    HOLDBACK = "holdback"  # the rest, after the property certificate (Suining: 10%)
    CLAWBACK = "clawback"  # a cancelled contract's payments recovered (T11), negative


@dataclass(frozen=True, slots=True)
class Settleable:
    """Rule T12: a use as settlement sees it: what is due to its seller, what was paid, and
    when each condition was recorded."""

    seller: str
    contract_no: str
    due_fen: int  # TicketUse.seller_due_fen
    paid_fen: int
    conditions: Mapping[SettlementCondition, date]
    certificate_on: date | None  # the buyer's property certificate
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class SettlementLine:
    """Rule T12: one payment (or recovery) to a seller for one contract at a point."""

    seller: str
    contract_no: str
    kind: LineKind
    amount_fen: int


TICKET_SETTLEMENT_STEPS: Mapping[str, Step] = {
    # rule T12: the issuer reviews the sellers' submissions (Shangqiu 房票核发人审核; Suining
    # 征收实施单位审核) ...
    "review": Step(SettlementStatus.DRAFT, SettlementStatus.REVIEWED, frozenset({"ticket_issuer"})),
    # ... the finance side approves and pays [choice: the city office's accounts, as S1's;
    # Shangqiu 市财政部门牵头, Suining 区财政局拨付]
    "approve": Step(
        SettlementStatus.REVIEWED, SettlementStatus.APPROVED, frozenset({"city_operator"})
    ),
    "pay": Step(SettlementStatus.APPROVED, SettlementStatus.PAID, frozenset({"city_operator"})),
}
"""Rule T12 (and S1's separation of duties): who takes each step of a ticket settlement."""


def is_settlement_point(campaign: TicketCampaign, day: date) -> bool:
    """Rule T12: Suining settles at points every ``period_months`` after its anchor
    (Civil Code months, never chained); Shangqiu on any day a seller submits."""
    rules = campaign.settlement
    if rules.period_months == 0:
        return True
    if day <= rules.anchor:
        return False
    k = month_number(rules.anchor, day)
    return k % rules.period_months == 0 and add_months(rules.anchor, k) == day


def next_settlement_point(campaign: TicketCampaign, day: date) -> date:
    """Rule T12: the first settlement point on or after ``day``."""
    rules = campaign.settlement
    if rules.period_months == 0:
        return day
    if day <= rules.anchor:
        return add_months(rules.anchor, rules.period_months)
    k = month_number(rules.anchor, day)
    k += -k % rules.period_months
    return add_months(rules.anchor, k)


def payment_due(campaign: TicketCampaign, point: date) -> date:
    """Rule T12: the day by which a point's lines are paid."""
    return point + timedelta(days=campaign.settlement.pay_within_days)


def settlement_lines(
    campaign: TicketCampaign, uses: Iterable[Settleable], point: date
) -> tuple[SettlementLine, ...]:
    """Rule T12: what each use's seller is paid at ``point``. A use is settled once every
    condition the programme requires was recorded by then (Shangqiu: 网签备案; Suining also
    the fund and taxes paid, the unit delivered, the 消费联 surrendered): first at most
    ``first_payment_bp`` of what is due (rounded down to the fen), the rest once the buyer's
    property certificate is recorded. A cancelled use's payments come back (``clawback``,
    T11). Lines already paid are not repeated: each line is what is due less what was paid.
    """
    if not is_settlement_point(campaign, point):
        raise InvalidDate(
            "not a settlement point", point=point, next=next_settlement_point(campaign, point)
        )
    rules = campaign.settlement
    lines: list[SettlementLine] = []
    for use in uses:
        if use.cancelled:
            if use.paid_fen:
                lines.append(
                    SettlementLine(use.seller, use.contract_no, LineKind.CLAWBACK, -use.paid_fen)
                )
            continue
        ready = all(
            (on := use.conditions.get(c)) is not None and on <= point for c in rules.requires
        )
        if not ready:
            continue
        certified = use.certificate_on is not None and use.certificate_on <= point
        target = use.due_fen if certified else share_fen(use.due_fen, rules.first_payment_bp)
        amount = target - use.paid_fen
        if amount <= 0:
            continue
        if use.paid_fen:
            kind = LineKind.HOLDBACK
        else:
            kind = LineKind.FULL if target == use.due_fen else LineKind.FIRST
        lines.append(SettlementLine(use.seller, use.contract_no, kind, amount))
    return tuple(lines)


def seller_totals(lines: Iterable[SettlementLine]) -> dict[str, int]:
    """Rule T12: the net amount per seller of a point's lines."""
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.seller] = totals.get(line.seller, 0) + line.amount_fen
    return totals


# --- reports (T14) ----------------------------------------------------------------------

REPORT_COLUMNS: Mapping[str, str] = {
    "scope": "范围",
    "key": "名称",
    "issued": "核发张数",
    "face_fen": "票面金额",
    "used_fen": "已使用金额",
    "cashed_out_fen": "结余兑付金额",
    "returned_fen": "退回金额",
    "expired_fen": "过期未用金额",
    "balance_fen": "结余金额",
    "subsidy_fen": "购房补贴",
    "reward_fen": "政策性奖励",
    "bonus_fen": "使用奖励",
    "settlement_due_fen": "应结算金额",
    "settlement_paid_fen": "已结算金额",
}
"""Rule T14: the report's columns in Chinese, for /ops and voucherctl."""


@dataclass(frozen=True, slots=True)
class ReportRow:
    """Rule T14: one line of a programme's report (money in fen)."""

    scope: str  # "programme", "district" or "seller"
    key: str
    issued: int = 0
    face_fen: int = 0
    used_fen: int = 0
    cashed_out_fen: int = 0
    returned_fen: int = 0
    expired_fen: int = 0
    # what the tickets still hold (expired balances included): face - used - cashed out -
    # returned; a seller's line has none
    balance_fen: int = 0
    subsidy_fen: int = 0
    reward_fen: int = 0
    bonus_fen: int = 0
    settlement_due_fen: int = 0
    settlement_paid_fen: int = 0

    def plus(self, **amounts: int) -> ReportRow:
        """The row with ``amounts`` added to its columns."""
        return dataclasses.replace(
            self, **{name: getattr(self, name) + value for name, value in amounts.items()}
        )


def ticket_report(
    campaign: TicketCampaign,
    tickets: Iterable[Ticket],
    uses: Iterable[TicketUse],
    *,
    bonuses_fen: Mapping[int, int],
    paid_fen: Mapping[tuple[str, str], int],
    on: date,
) -> tuple[ReportRow, ...]:
    """Rule T14: the programme's figures, for the whole programme, per issuing district and
    per seller: tickets issued (originals) and their face value, used, cashed out, returned,
    expired unused balances (``on`` is after the deadline), the balances left (programme and
    district lines: face value - used - cashed out - returned), subsidies, rewards, bonuses
    (``bonuses_fen`` by original ticket id), and what is due to and paid to the sellers
    (``paid_fen`` by (seller, contract number)). A use counts for the district of the
    ticket it draws on (its reward and settlement: of its first draw) [choice]."""
    rows: dict[tuple[str, str], ReportRow] = {}

    def add(scope: str, key: str, **amounts: int) -> None:
        row = rows.get((scope, key)) or ReportRow(scope, key)
        rows[(scope, key)] = row.plus(**amounts)

    def everywhere(district: str, seller: str | None, **amounts: int) -> None:
        add("programme", campaign.id, **amounts)
        add("district", district, **amounts)
        if seller is not None:
            add("seller", seller, **amounts)

    district_of: dict[int, str] = {}
    for t in tickets:
        district_of[t.id] = t.district
        expired = t.balance_fen if on > t.deadline and t.status is TicketStatus.ACTIVE else 0
        original = t.parent_id is None
        everywhere(
            t.district,
            None,
            issued=int(original),
            face_fen=t.face_value_fen if original else 0,
            cashed_out_fen=t.cashed_out_fen,
            returned_fen=t.returned_fen,
            expired_fen=expired,
            balance_fen=t.balance_fen,
            bonus_fen=bonuses_fen.get(t.id, 0) if original else 0,
        )
    for u in uses:
        if u.cancelled or not u.draws:
            continue
        for d in u.draws:
            everywhere(
                district_of.get(d.ticket_id, "?"),
                u.seller,
                used_fen=d.amount_fen,
                subsidy_fen=d.subsidy_fen,
            )
        everywhere(
            district_of.get(u.draws[0].ticket_id, "?"),
            u.seller,
            reward_fen=u.reward_fen,
            settlement_due_fen=u.seller_due_fen,
            settlement_paid_fen=paid_fen.get((u.seller, u.contract_no), 0),
        )
    order = {"programme": 0, "district": 1, "seller": 2}
    return tuple(sorted(rows.values(), key=lambda r: (order[r.scope], r.key)))


SCOPE_NAMES: Mapping[str, str] = {"programme": "全市", "district": "区", "seller": "开发企业"}
"""Rule T14: a report row's scope, in Chinese."""

COUNT_COLUMNS = frozenset({"issued"})
"""Rule T14: the report's columns that count tickets; every other figure is money."""

TICKET_COLUMNS = frozenset({"balance_fen"})
"""Rule T14: figures of the tickets themselves, left blank on a seller's line."""


def report_csv(rows: Iterable[ReportRow], names: Mapping[str, str]) -> str:
    """Rule T14: the report as CSV with Chinese headings, money in 元 with two decimals
    (exact to the fen); ``names`` turns district codes and seller ids into their names."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*REPORT_COLUMNS.values()])
    for row in rows:
        cells: list[str] = [SCOPE_NAMES[row.scope], names.get(row.key, row.key)]
        for column in list(REPORT_COLUMNS)[2:]:
            value = getattr(row, column)
            if row.scope == "seller" and column in TICKET_COLUMNS:
                cells.append("")
            else:
                cells.append(str(value) if column in COUNT_COLUMNS else format_yuan(value))
        writer.writerow(cells)
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class PublishedTransaction:
    """Rule T14: a transaction as the programme publishes it — no buyer, no ticket number."""

    seller: str
    district: str
    property_type: PropertyType
    area_dm2: int
    price_fen: int
    signed_on: date
    ticket_amount_fen: int


def published_transactions(uses: Iterable[TicketUse]) -> tuple[PublishedTransaction, ...]:
    """Rule T14: the programme's transactions to publish (cancelled ones left out), by date."""
    out = [
        PublishedTransaction(
            u.seller,
            u.district,
            u.property_type,
            u.area_dm2,
            u.price_fen,
            u.signed_on,
            u.amount_fen,
        )
        for u in uses
        if not u.cancelled
    ]
    return tuple(sorted(out, key=lambda p: (p.signed_on, p.seller)))


# --- the holder's view (wallet) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FamilyView:
    """Rules T2, T5-T10: what the holder's wallet shows for one ticket and its pieces.
    Seen by a holder (``family_view(..., holder=)``), only the tickets that person holds
    count; pieces they passed to someone else (T3) are listed in ``transferred`` only."""

    original_id: int
    numbers: tuple[str, ...]  # the numbers that hold value now
    face_value_fen: int
    balance_fen: int
    used_fen: int
    cashed_out_fen: int
    returned_fen: int
    deadline: date
    expired: bool
    subsidy_fen: int  # T7, on the family's live uses
    reward_fen: int  # T8, on live uses whose first draw is of the family
    uses: tuple[TicketUse, ...]  # live and cancelled, by signing date
    cashout: CashoutQuote | None  # T9: due now, or None (``cashout_refusal`` says why)
    cashout_refusal: str | None
    bonus: BonusQuote | None  # T10: reviewed, or the forecast; None without a bonus
    # T3: pieces split from the holder's ticket and passed to another person (history only;
    # their face values are out of the holder's figures: used + cashed out + returned +
    # balance + transferred = face value)
    transferred: tuple[Ticket, ...] = ()
    transferred_fen: int = 0
    # T6 [choice], T9: the 90% test is the original's: what the whole family used (other
    # holders' pieces too), and whether part of the family is held by someone else
    family_used_fen: int = 0
    shared: bool = False


def _held_part(
    family: Sequence[Ticket], holder: str | None
) -> tuple[list[Ticket], list[Ticket], int]:
    """Rule T3: the family's tickets ``holder`` holds, the pieces split from those and now
    held by someone else, and the face value the holder's figures start from (the original's
    if the holder holds it, else the sum of the pieces passed to them). ``holder`` None: the
    whole family (the issuer's view)."""
    original = original_of(family)
    if holder is None:
        return list(family), [], original.face_value_fen
    held = [t for t in family if t.holder == holder]
    ids = {t.id for t in held}
    away = [t for t in family if t.holder != holder and t.parent_id in ids]
    if original.id in ids:
        return held, away, original.face_value_fen
    tops = [t for t in held if t.parent_id not in ids]  # the pieces passed to this holder
    return held, away, sum(t.face_value_fen for t in tops)


def family_view(
    campaign: TicketCampaign,
    family: Sequence[Ticket],
    uses: Iterable[TicketUse],
    on: date,
    *,
    holder: str | None = None,
) -> FamilyView:
    """Rules T2, T5-T10: the view of a family on ``on`` (its uses among ``uses``): the whole
    family for the issuer, or only what ``holder`` holds (T3: a piece transferred away is no
    longer the transferor's; the receiver sees only the piece). The 90% and bonus tests stay
    measured on the original ticket (T6 [choice]); the cash-out shown to a holder is the
    balance they hold; the bonus is shown to the original's holder [choice]."""
    original = original_of(family)
    everything = list(uses)
    held, away, face = _held_part(family, holder)
    ids = {t.id for t in held}
    family_ids = {t.id for t in family}
    in_family = [u for u in everything if any(d.ticket_id in family_ids for d in u.draws)]
    mine = sorted(
        (u for u in in_family if any(d.ticket_id in ids for d in u.draws)),
        key=lambda u: (u.signed_on, u.contract_no),
    )
    live = [u for u in mine if not u.cancelled]
    family_live = [u for u in in_family if not u.cancelled]
    last_purchase = max((u.signed_on for u in family_live), default=None)
    cashout: CashoutQuote | None
    try:
        cashout = cashout_quote(campaign, family, last_purchase_on=last_purchase)
        refusal = None
    except CashoutNotDue as exc:
        cashout, refusal = None, str(exc.details.get("reason"))
    balance = sum(t.balance_fen for t in held)
    if cashout is not None and holder is not None:
        if balance:
            cashout = dataclasses.replace(cashout, amount_fen=balance)
        else:
            cashout, refusal = None, "nothing_left"
    bonus = bonus_quote(campaign, family, in_family, on)
    if holder is not None and original.id not in ids:
        bonus = None
    holding = [t for t in held if t.status in (TicketStatus.ACTIVE, TicketStatus.LOST)]
    return FamilyView(
        original_id=original.id,
        numbers=tuple(t.number for t in holding),
        face_value_fen=face,
        balance_fen=balance,
        used_fen=sum(t.used_fen for t in held),
        cashed_out_fen=sum(t.cashed_out_fen for t in held),
        returned_fen=sum(t.returned_fen for t in held),
        deadline=original.deadline,
        expired=on > original.deadline,
        subsidy_fen=sum(d.subsidy_fen for u in live for d in u.draws if d.ticket_id in ids),
        reward_fen=sum(u.reward_fen for u in live if u.draws[0].ticket_id in ids),
        uses=tuple(mine),
        cashout=cashout,
        cashout_refusal=refusal,
        bonus=bonus,
        transferred=tuple(away),
        transferred_fen=sum(t.face_value_fen for t in away),
        family_used_fen=sum(t.used_fen for t in family),
        shared=len(held) < len(family),
    )
