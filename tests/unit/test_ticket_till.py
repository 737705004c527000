"""The sales office's decision on one read (``shared.ticket_till``; issue 13, rules T2, T4-T6,
T13 with U1, U5, X1): who may use a house ticket where, which ticket a use draws on, and the
order of the refusals."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

import pytest

from shared.errors import (
    ContractAlreadyUsed,
    ListingNotEligible,
    MerchantNotPermitted,
    MerchantSuspended,
    ParticipationRevoked,
    TerminalDisabled,
    TicketExpired,
    TicketNotFound,
    TicketVoid,
    TokenInvalid,
    TokenReplayed,
    VoucherError,
)
from shared.house_tickets import TicketStatus, record_home_kept, replace_lost, report_lost
from shared.ticket_campaign import PropertyType, Relation
from shared.ticket_till import UseAsk, UseContext, decide_use, pick_tickets
from tests.unit.ticket_helpers import HOLDER, SN, SQ, WAN, at, issue, listing

ISSUED = date(2025, 3, 1)
NOW = at(date(2025, 3, 20))


def context(**changes: Any) -> UseContext:
    ctx = UseContext(
        terminal_status="active",
        terminal_label="售楼处 1",
        merchant_id=7,
        merchant_name="某置业",
        merchant_kind="developer",
        admitted=True,
        permitted=True,
        merchant_status="active",
        citizen_id=3,
        citizen_status="active",
        id_masked="4114**********1234",
        holder=HOLDER,
        token_used=False,
        listing_id=11,
        listing=listing(SQ, seller="7"),
        campaign_id=SQ.id,
        contract_used=False,
        tickets=(issue(SQ, ISSUED),),
    )
    return dataclasses.replace(ctx, **changes)


ASK = UseAsk("WQ-1", "1-101", date(2025, 3, 18), 150 * WAN, Relation.HOLDER)


def test_a_use_is_decided_and_quoted_on_one_read() -> None:
    # T5-T7: the holder's only ticket, the most it allows, month 1's 10% subsidy
    decision = decide_use(context(), {SQ.id: SQ}, ASK, NOW)
    (line,) = decision.quote.lines
    assert (line.amount_fen, line.subsidy_bp) == (100 * WAN, 1000)
    assert (decision.listing_id, decision.citizen_id) == (11, 3)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"terminal_status": "revoked"}, TerminalDisabled),  # U1
        ({"merchant_status": "suspended", "admitted": False}, MerchantSuspended),  # X1 first
        ({"permitted": False}, MerchantNotPermitted),  # U1
        ({"merchant_kind": "shop"}, MerchantNotPermitted),  # T4: not a sales office
        ({"citizen_id": None, "holder": None}, TokenInvalid),
        ({"token_used": True, "citizen_status": "revoked"}, TokenReplayed),  # U5
        ({"citizen_status": "revoked", "listing": None}, ParticipationRevoked),  # X1
        ({"listing": None, "contract_used": True}, ListingNotEligible),  # T4: unknown unit
        ({"campaign_id": SN.id, "contract_used": True}, ListingNotEligible),  # not served
        ({"contract_used": True, "tickets": ()}, ContractAlreadyUsed),  # T5
        ({"tickets": ()}, TicketNotFound),  # T1, T5
    ],
)
def test_refusals_come_in_order(changes: dict[str, Any], error: type[VoucherError]) -> None:
    with pytest.raises(error):
        decide_use(context(**changes), {SQ.id: SQ}, ASK, NOW)


def test_a_suining_shop_unit_waits_for_the_record_that_the_household_keeps_a_home() -> None:
    # T4 (Suining) [choice]: 商业/办公/车位 once the issuer recorded the home kept, on every
    # ticket the use draws on
    issued = SN.issuance_opens
    ticket = issue(SN, issued)
    shop = listing(SN, seller="7", kind=PropertyType.COMMERCIAL, price=150 * WAN)
    ctx = context(campaign_id=SN.id, listing=shop, tickets=(ticket,))
    ask = dataclasses.replace(ASK, signed_on=issued + timedelta(days=8))
    now = at(issued + timedelta(days=9))
    with pytest.raises(ListingNotEligible) as info:
        decide_use(ctx, {SN.id: SN}, ask, now)
    assert info.value.details["reason"] == "home_not_kept"
    kept = record_home_kept(SN, ticket, document_no="BDC-1", today=issued)
    decision = decide_use(dataclasses.replace(ctx, tickets=(kept,)), {SN.id: SN}, ask, now)
    assert decision.quote.amount_fen == 100 * WAN


def test_no_terminal_is_a_disabled_one() -> None:
    # U1: a terminal the ledger does not know
    with pytest.raises(TerminalDisabled):
        decide_use(None, {SQ.id: SQ}, ASK, NOW)


def test_a_shops_till_is_told_it_is_no_sales_office() -> None:
    # T4
    with pytest.raises(MerchantNotPermitted) as info:
        decide_use(context(merchant_kind="shop"), {SQ.id: SQ}, ASK, NOW)
    assert info.value.details["reason"] == "not_a_sales_office"


def test_the_earliest_expiring_usable_ticket_is_drawn_on_when_none_is_named() -> None:
    # T2, T6 (as U6: earliest expiry first); a spent or expired one is passed over
    late = issue(SQ, ISSUED, ticket_id=1, validity_months=24)
    early = issue(SQ, ISSUED, ticket_id=2, validity_months=12)
    spent = dataclasses.replace(
        issue(SQ, ISSUED, ticket_id=3, validity_months=6), balance_fen=0, used_fen=100 * WAN
    )
    expired = issue(SQ, date(2023, 7, 1), ticket_id=4, validity_months=1)
    assert pick_tickets(SQ, [late, spent, expired, early], (), NOW) == (early,)
    # none usable: still one, the earliest to expire, so the refusal says why (expired,
    # not "no ticket"); a number holding nothing comes last
    void = dataclasses.replace(expired, id=5, number="NO-5", status=TicketStatus.VOID)
    (best,) = pick_tickets(SQ, [void, spent, expired], (), NOW)
    assert best == expired
    with pytest.raises(TicketExpired):
        decide_use(context(tickets=(void, spent, expired)), {SQ.id: SQ}, ASK, NOW)


def test_a_ticket_is_named_by_its_number_and_a_replaced_number_is_void() -> None:
    # T13: after a loss the old number holds nothing; T1, T5: not the holder's: not found
    ticket = issue(SQ, ISSUED)
    lost = report_lost(SQ, ticket, newspaper="商丘日报", published_on=ISSUED, today=ISSUED)
    replaced = replace_lost(SQ, lost, new_number="NO-1-B", today=ISSUED)
    assert pick_tickets(SQ, [replaced], ("NO-1-B",), NOW) == (replaced,)
    with pytest.raises(TicketVoid) as info:
        pick_tickets(SQ, [replaced], ("NO-1",), NOW)
    assert info.value.details["reason"] == "replaced"
    with pytest.raises(TicketNotFound):
        pick_tickets(SQ, [replaced], ("NO-9",), NOW)
    split = dataclasses.replace(ticket, status=TicketStatus.SPLIT)
    with pytest.raises(TicketVoid):
        pick_tickets(SQ, [split], ("NO-1",), NOW)
