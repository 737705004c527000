"""House tickets after use, rules T9, T10, T12 and T14: cash-out, bonus, settlement with
the developers (90/10 holdback) and the reports, exact to the fen."""

import dataclasses
from datetime import date

import pytest

from shared.errors import CashoutNotDue, InvalidDate
from shared.house_tickets import (
    CancelElection,
    Ticket,
    TicketUse,
    apply_use,
    cancel_use,
    quote_use,
    report_lost,
    split_ticket,
)
from shared.ticket_campaign import SettlementCondition, TicketCampaign
from shared.ticket_payouts import (
    REPORT_COLUMNS,
    LineKind,
    ReportRow,
    Settleable,
    SettlementLine,
    apply_cashout,
    bonus_quote,
    cashout_quote,
    family_view,
    is_settlement_point,
    next_settlement_point,
    payment_due,
    published_transactions,
    seller_totals,
    settlement_lines,
    ticket_report,
)
from tests.unit.ticket_helpers import SN, SQ, WAN, at, contract, issue, listing

SQ_DAY = date(2025, 1, 31)
SN_DAY = date(2025, 9, 30)


def spend(
    campaign: TicketCampaign,
    tickets: list[Ticket],
    signed_on: date,
    amounts: list[int],
    *,
    no: str = "WQ-1",
    seller: str = "dev-1",
    price: int = 200 * WAN,
) -> tuple[list[Ticket], TicketUse]:
    q = quote_use(
        campaign,
        tickets,
        listing(campaign, price=price, seller=seller),
        contract(signed_on, no=no, price=price),
        at(signed_on),
        amounts,
    )
    after, done = apply_use(q, tickets, at(signed_on))
    return list(after), done


# --- T9 residual cash-out ---------------------------------------------------------------


def test_shangqiu_pays_the_balance_once_the_uses_reach_90_percent() -> None:
    # T9: 89.99% is not enough; at 90% the rest is paid, without interest, no deadline
    t = issue(SQ, SQ_DAY, face=100 * WAN)
    (t,), _ = spend(SQ, [t], SQ_DAY, [90 * WAN - 1])
    with pytest.raises(CashoutNotDue) as info:
        cashout_quote(SQ, [t], last_purchase_on=SQ_DAY)
    assert info.value.details == {
        "reason": "below_minimum",
        "used_fen": 90 * WAN - 1,
        "needed_fen": 90 * WAN,
    }
    (t,), _ = spend(SQ, [t], SQ_DAY, [1], no="WQ-2")
    quote = cashout_quote(SQ, [t], last_purchase_on=SQ_DAY)
    assert (quote.amount_fen, quote.due_by) == (10 * WAN, None)
    (paid,) = apply_cashout([t])
    assert (paid.balance_fen, paid.cashed_out_fen) == (0, 10 * WAN)
    with pytest.raises(CashoutNotDue) as again:
        cashout_quote(SQ, [paid], last_purchase_on=SQ_DAY)
    assert again.value.details["reason"] == "nothing_left"


def test_suining_pays_the_rest_within_6_months_of_the_purchase() -> None:
    # T9: at most 10% of the face value, within 6 months (Civil Code months)
    t = issue(SN, SN_DAY, face=100 * WAN)
    (t,), _ = spend(SN, [t], date(2025, 10, 31), [92 * WAN])
    quote = cashout_quote(SN, [t], last_purchase_on=date(2025, 10, 31))
    assert (quote.amount_fen, quote.due_by) == (8 * WAN, date(2026, 4, 30))


def test_the_90_percent_is_measured_on_the_original_ticket_across_its_pieces() -> None:
    # T9 with T6 [choice]: the family's uses against the original face value
    t = issue(SN, SN_DAY, face=100 * WAN)
    parent, (a, b) = split_ticket(
        SN, t, amounts=[60 * WAN, 40 * WAN], numbers=["A", "B"], piece_ids=[2, 3], now=at(SN_DAY)
    )
    (a,), _ = spend(SN, [a], SN_DAY, [60 * WAN])
    with pytest.raises(CashoutNotDue):  # 60% of the original, though 100% of piece A
        cashout_quote(SN, [parent, a, b], last_purchase_on=SN_DAY)
    (b,), _ = spend(SN, [b], SN_DAY, [36 * WAN], no="WQ-2")
    quote = cashout_quote(SN, [parent, a, b], last_purchase_on=SN_DAY)
    assert (quote.used_fen, quote.amount_fen) == (96 * WAN, 4 * WAN)


def test_no_cash_out_while_a_loss_notice_runs() -> None:
    # T9 with T13
    t = issue(SN, SN_DAY, face=100 * WAN)
    (t,), _ = spend(SN, [t], SN_DAY, [95 * WAN])
    lost = report_lost(SN, t, newspaper="遂宁日报", published_on=SN_DAY, today=SN_DAY)
    with pytest.raises(CashoutNotDue) as info:
        cashout_quote(SN, [lost], last_purchase_on=SN_DAY)
    assert info.value.details["reason"] == "lost"


# --- T10 Suining's usage bonus ----------------------------------------------------------


@pytest.mark.parametrize(
    ("used", "rate", "bonus"),
    [
        (100 * WAN, 500, 5 * WAN),  # 100%: 5% of the face value
        (99 * WAN, 300, 3 * WAN),  # 85% to under 100%: 3%
        (85 * WAN, 300, 3 * WAN),
        (85 * WAN - 1, 0, 0),
    ],
)
def test_the_bonus_is_reviewed_at_12_months_on_the_face_value(
    used: int, rate: int, bonus: int
) -> None:
    # T10: pieces of 85 and 15 万, so that under 90% is reachable with 90%-per-use pieces (T6)
    t = issue(SN, SN_DAY, face=100 * WAN)
    parent, (a, b) = split_ticket(
        SN, t, amounts=[85 * WAN, 15 * WAN], numbers=["A", "B"], piece_ids=[2, 3], now=at(SN_DAY)
    )
    first = min(used, 85 * WAN)
    (a,), use_a = spend(SN, [a], SN_DAY, [first])
    uses = [use_a]
    if used > first:
        (b,), use_b = spend(SN, [b], SN_DAY, [used - first], no="WQ-2")
        uses.append(use_b)
    quote = bonus_quote(SN, [parent, a, b], uses, date(2026, 10, 1))
    assert quote is not None
    assert (quote.review_on, quote.reviewed) == (date(2026, 9, 30), True)
    assert (quote.used_fen, quote.rate_bp, quote.amount_fen) == (used, rate, bonus)
    assert quote.due_by == date(2027, 3, 30)


def test_before_the_review_the_bonus_is_only_a_forecast() -> None:
    # T10: reviewed at 12 months
    t = issue(SN, SN_DAY, face=100 * WAN)
    (t,), done = spend(SN, [t], SN_DAY, [100 * WAN])
    quote = bonus_quote(SN, [t], [done], date(2026, 9, 30))
    assert quote is not None
    assert (quote.amount_fen, quote.reviewed) == (5 * WAN, False)


def test_a_cancelled_contract_earns_no_bonus() -> None:
    # T10 with T11: its use is reversed
    t = issue(SN, SN_DAY, face=100 * WAN)
    (t,), done = spend(SN, [t], SN_DAY, [100 * WAN])
    back = cancel_use(
        done,
        [t],
        proof_no="P",
        elect=CancelElection.REISSUE,
        paid_to_seller_fen=0,
        by_issuer=True,
    )
    quote = bonus_quote(SN, list(back.tickets), [back.use], date(2026, 10, 1))
    assert quote is not None and quote.amount_fen == 0


def test_shangqiu_has_no_bonus() -> None:
    # T10
    assert bonus_quote(SQ, [issue(SQ, SQ_DAY)], [], date(2027, 1, 1)) is None


# --- T12 settlement ---------------------------------------------------------------------

ALL_MET = dict.fromkeys(SettlementCondition, date(2026, 1, 10))


def test_shangqiu_settles_in_full_on_each_submission() -> None:
    # T12: after 网签备案; no holdback; paid within the set days [choice]
    filed = Settleable("dev-1", "WQ-1", 44 * WAN, 0, {SettlementCondition.FILED: SQ_DAY}, None)
    assert is_settlement_point(SQ, date(2025, 2, 3))
    assert settlement_lines(SQ, [filed], date(2025, 2, 3)) == (
        SettlementLine("dev-1", "WQ-1", LineKind.FULL, 44 * WAN),
    )
    assert payment_due(SQ, date(2025, 2, 3)) == date(2025, 3, 5)
    unfiled = Settleable("dev-1", "WQ-2", 44 * WAN, 0, {}, None)
    assert settlement_lines(SQ, [unfiled], date(2025, 2, 3)) == ()


def test_suining_settles_90_percent_first_and_the_rest_after_the_certificate() -> None:
    # T12: the first part rounds down to the fen; the holdback takes the rest exactly
    due = 1_000_001
    use = Settleable("dev-1", "WQ-1", due, 0, ALL_MET, None)
    point = date(2026, 3, 1)
    (first,) = settlement_lines(SN, [use], point)
    assert (first.kind, first.amount_fen) == (LineKind.FIRST, 900_000)
    paid = Settleable("dev-1", "WQ-1", due, 900_000, ALL_MET, None)
    assert settlement_lines(SN, [paid], date(2026, 9, 1)) == ()  # no certificate yet
    certified = Settleable("dev-1", "WQ-1", due, 900_000, ALL_MET, date(2026, 5, 5))
    (rest,) = settlement_lines(SN, [certified], date(2026, 9, 1))
    assert (rest.kind, rest.amount_fen) == (LineKind.HOLDBACK, 100_001)


def test_suining_settles_only_once_every_condition_is_recorded() -> None:
    # T12: 网签备案, fund and taxes, delivery, the 消费联
    for missing in SettlementCondition:
        conditions = {c: d for c, d in ALL_MET.items() if c is not missing}
        use = Settleable("dev-1", "WQ-1", 100 * WAN, 0, conditions, None)
        assert settlement_lines(SN, [use], date(2026, 3, 1)) == (), missing
    late = {**ALL_MET, SettlementCondition.DELIVERED: date(2026, 3, 2)}
    assert settlement_lines(SN, [Settleable("d", "W", 1, 0, late, None)], date(2026, 3, 1)) == ()


def test_suining_settles_at_points_every_6_months() -> None:
    # T12: from 2025-09-01 [choice]: 2026-03-01, 2026-09-01, ...
    assert next_settlement_point(SN, date(2025, 9, 30)) == date(2026, 3, 1)
    assert next_settlement_point(SN, date(2026, 3, 1)) == date(2026, 3, 1)
    assert next_settlement_point(SN, date(2026, 3, 2)) == date(2026, 9, 1)
    assert is_settlement_point(SN, date(2026, 9, 1))
    assert not is_settlement_point(SN, date(2026, 6, 1))
    with pytest.raises(InvalidDate):
        settlement_lines(SN, [], date(2026, 6, 1))


def test_a_cancelled_settled_use_is_clawed_back() -> None:
    # T12 with T11
    use = Settleable("dev-1", "WQ-1", 100 * WAN, 90 * WAN, ALL_MET, None, cancelled=True)
    lines = settlement_lines(SN, [use], date(2026, 3, 1))
    assert lines == (SettlementLine("dev-1", "WQ-1", LineKind.CLAWBACK, -90 * WAN),)
    other = SettlementLine("dev-1", "WQ-2", LineKind.FIRST, 45 * WAN)
    assert seller_totals([*lines, other]) == {"dev-1": -45 * WAN}


# --- T14 reports ------------------------------------------------------------------------


def test_the_report_adds_up_per_programme_district_and_seller() -> None:
    # T14: issued, value, used, cashed out, expired, subsidies, settlements due and paid
    a = issue(SQ, SQ_DAY, face=100 * WAN, ticket_id=1)
    b = issue(SQ, SQ_DAY, face=50 * WAN, ticket_id=2, validity_months=1)
    (a,), u1 = spend(SQ, [a], SQ_DAY, [60 * WAN], seller="dev-1")
    (a,), u2 = spend(SQ, [a], SQ_DAY, [30 * WAN], seller="dev-2", no="WQ-2")
    (a,) = apply_cashout([a])
    rows = ticket_report(
        SQ,
        [a, b],
        [u1, u2],
        bonuses_fen={},
        paid_fen={("dev-1", "WQ-1"): 66 * WAN},
        on=date(2025, 3, 1),
    )
    programme, district, dev1, dev2 = rows
    assert programme == ReportRow(
        "programme",
        "shangqiu-2025",
        issued=2,
        face_fen=150 * WAN,
        used_fen=90 * WAN,
        cashed_out_fen=10 * WAN,
        expired_fen=50 * WAN,  # b expired on 2025-02-28 unused
        balance_fen=50 * WAN,  # b's, expired but still held: face - used - cashed out
        subsidy_fen=9 * WAN,
        settlement_due_fen=99 * WAN,
        settlement_paid_fen=66 * WAN,
    )
    assert district == dataclasses.replace(programme, scope="district", key="liangyuan")
    assert (dev1.used_fen, dev1.settlement_due_fen, dev1.settlement_paid_fen) == (
        60 * WAN,
        66 * WAN,
        66 * WAN,
    )
    assert (dev2.used_fen, dev2.subsidy_fen, dev2.issued) == (30 * WAN, 3 * WAN, 0)
    assert dev1.balance_fen == dev2.balance_fen == 0  # a seller holds no ticket
    assert set(REPORT_COLUMNS) == set(vars_of(programme))


def vars_of(row: ReportRow) -> dict[str, object]:
    return {name: getattr(row, name) for name in ReportRow.__dataclass_fields__}


def test_published_transactions_name_no_buyer() -> None:
    # T14: the programme publishes its transactions
    t = issue(SN, SN_DAY)
    (t,), done = spend(SN, [t], SN_DAY, [95 * WAN])
    (pub,) = published_transactions([done])
    assert (pub.ticket_amount_fen, pub.price_fen, pub.signed_on) == (95 * WAN, 200 * WAN, SN_DAY)
    assert not hasattr(pub, "buyer")


# --- the wallet -------------------------------------------------------------------------


def test_the_wallet_shows_balance_uses_expiry_subsidy_and_what_is_due() -> None:
    # T2, T7, T9 (Shangqiu): after 92% used, the 8% is due in money; no bonus in Shangqiu
    t = issue(SQ, SQ_DAY, face=100 * WAN)
    (t,), u1 = spend(SQ, [t], SQ_DAY, [50 * WAN])
    (t,), u2 = spend(SQ, [t], date(2025, 5, 1), [42 * WAN], no="WQ-2")
    other = issue(SQ, SQ_DAY, face=10 * WAN, ticket_id=9)
    (other,), u3 = spend(SQ, [other], SQ_DAY, [WAN], no="WQ-3")
    view = family_view(SQ, [t], [u1, u2, u3], date(2025, 5, 2))
    assert (view.numbers, view.balance_fen, view.used_fen, view.deadline) == (
        ("NO-1",),
        8 * WAN,
        92 * WAN,
        date(2026, 7, 31),
    )
    assert view.subsidy_fen == 5 * WAN + 42 * WAN * 8 // 100  # 10% in month 1, 8% in month 4
    assert [u.contract_no for u in view.uses] == ["WQ-1", "WQ-2"]
    assert view.cashout is not None and view.cashout.amount_fen == 8 * WAN
    assert (view.cashout_refusal, view.bonus, view.expired) == (None, None, False)


def test_the_wallet_says_why_no_cash_out_is_due_and_forecasts_the_bonus() -> None:
    # T9, T10 (Suining)
    t = issue(SN, SN_DAY, face=100 * WAN)
    view = family_view(SN, [t], [], SN_DAY)
    assert (view.cashout, view.cashout_refusal) == (None, "below_minimum")
    assert view.bonus is not None and (view.bonus.amount_fen, view.bonus.reviewed) == (0, False)
    (t,), done = spend(SN, [t], SN_DAY, [100 * WAN])
    view = family_view(SN, [t], [done], SN_DAY)
    assert view.reward_fen == 4 * WAN  # 100 m² x 400 元
    assert view.cashout_refusal == "nothing_left"
    assert view.bonus is not None and view.bonus.amount_fen == 5 * WAN
