"""House tickets, rules T1-T8, T11 and T13, one test per rule reading (each fails without
the rule it names)."""

import dataclasses
from datetime import date, datetime, time, timedelta

import pytest

from shared.errors import (
    AlreadySettled,
    BuyerNotServed,
    Conflict,
    ContractAlreadyCancelled,
    Forbidden,
    InvalidAmount,
    InvalidDate,
    InvalidRequest,
    IssuanceClosed,
    ListingNotEligible,
    ProjectNotEligible,
    ReplacementNotYet,
    TicketBalanceInsufficient,
    TicketExceedsPrice,
    TicketExpired,
    TicketReportedLost,
    TicketReturnRefused,
    TicketSplitRefused,
    TicketTransferRefused,
    TicketUseBelowMinimum,
    TicketVoid,
)
from shared.house_tickets import (
    CancelElection,
    FaceItem,
    Project,
    Ticket,
    TicketStatus,
    TicketUse,
    apply_use,
    cancel_use,
    check_holds_value,
    check_issuer_district,
    exit_date,
    issue_ticket,
    max_amount_for,
    pass_to_heir,
    quote_use,
    record_home_kept,
    replace_lost,
    replacement_opens,
    report_lost,
    return_balance,
    split_ticket,
    transfer_ticket,
    void_ticket,
)
from shared.ticket_campaign import PropertyType, Relation, TicketCampaign
from tests.unit.ticket_helpers import (
    HOLDER,
    MEMBER,
    SN,
    SPOUSE,
    SQ,
    TZ,
    WAN,
    at,
    contract,
    issue,
    listing,
    request,
)

SQ_DAY = date(2025, 1, 31)  # a Shangqiu issue day (the 31st)
SN_DAY = date(2025, 9, 30)


def use(
    campaign: TicketCampaign,
    tickets: list[Ticket],
    signed_on: date,
    *,
    price: int = 200 * WAN,
    amounts: list[int] | None = None,
    no: str = "WQ-1",
    **kw: object,
) -> tuple[tuple[Ticket, ...], TicketUse]:
    """Quote and apply a use signed and made on ``signed_on``."""
    q = quote_use(
        campaign,
        tickets,
        listing(campaign, price=price),
        contract(signed_on, price=price, no=no, **kw),  # type: ignore[arg-type]
        at(signed_on),
        amounts,
    )
    return apply_use(q, tickets, at(signed_on))


# --- T1 issuance ------------------------------------------------------------------------


def test_a_ticket_records_its_agreement_holder_and_itemised_face_value() -> None:
    # T1
    t = issue(SQ, SQ_DAY, face=123_456_78)
    assert t.face_value_fen == sum(i.amount_fen for i in t.items) == 123_456_78
    assert {i.code for i in t.items} == {"compensation", "policy_reward"}
    assert (t.agreement_no, t.filing_no, t.holder) == ("XY-NO-1", "BA-NO-1", HOLDER)
    assert (t.issued_on, t.balance_fen, t.status) == (SQ_DAY, t.face_value_fen, "active")
    assert t.original_id == t.id and t.parent_id is None


def test_tickets_are_issued_only_while_the_programme_runs() -> None:
    # T1: Shangqiu until 2025-06-30 [choice]; Suining one year from 2025-09-01
    assert issue(SQ, date(2025, 6, 30)).issued_on == date(2025, 6, 30)
    with pytest.raises(IssuanceClosed):
        issue(SQ, date(2025, 7, 1))
    with pytest.raises(IssuanceClosed):
        issue(SN, date(2025, 8, 31))
    assert issue(SN, date(2026, 8, 31)).deadline == date(2027, 8, 31)


def test_only_the_programmes_districts_issue() -> None:
    # T1: the issuer is scoped to its district
    req = dataclasses.replace(request(SQ), district="chuanshan")
    with pytest.raises(ProjectNotEligible) as info:
        issue_ticket(SQ, req, ticket_id=1, issued_on=SQ_DAY)
    assert info.value.details["reason"] == "district"


def test_an_issuer_acts_on_its_own_districts_tickets_only() -> None:
    # T1: the issuer role is scoped to its district
    t = issue(SQ, SQ_DAY)
    assert t.district == "liangyuan"
    check_issuer_district(t, "liangyuan")
    with pytest.raises(Forbidden):
        check_issuer_district(t, "suiyang")


def test_a_project_whose_resettlement_is_met_issues_no_ticket() -> None:
    # T1: Shangqiu excludes delivered-and-paid; Suining [choice] either one met
    delivered = Project("p", housing_delivered=True, cash_paid=False)
    both = Project("p", housing_delivered=True, cash_paid=True)
    assert issue_ticket(SQ, request(SQ, project=delivered), ticket_id=1, issued_on=SQ_DAY)
    with pytest.raises(ProjectNotEligible):
        issue_ticket(SQ, request(SQ, project=both), ticket_id=1, issued_on=SQ_DAY)
    with pytest.raises(ProjectNotEligible):
        issue_ticket(SN, request(SN, project=delivered), ticket_id=1, issued_on=SN_DAY)


def test_a_suining_ticket_lists_its_household_and_its_area() -> None:
    # T1
    no_area = dataclasses.replace(request(SN), area_dm2=None)
    with pytest.raises(InvalidRequest) as info:
        issue_ticket(SN, no_area, ticket_id=1, issued_on=SN_DAY)
    assert info.value.details["field"] == "area_dm2"
    no_holder = dataclasses.replace(request(SN), household=frozenset({MEMBER}))
    with pytest.raises(InvalidRequest):
        issue_ticket(SN, no_holder, ticket_id=1, issued_on=SN_DAY)
    assert issue(SN, SN_DAY).household == {HOLDER, MEMBER}


def test_the_face_value_is_made_of_the_programmes_items() -> None:
    # T1
    foreign = dataclasses.replace(request(SQ), items=(FaceItem("bribe", 100),))
    with pytest.raises(InvalidRequest):
        issue_ticket(SQ, foreign, ticket_id=1, issued_on=SQ_DAY)
    nothing = dataclasses.replace(request(SQ), items=(FaceItem("compensation", 0),))
    with pytest.raises(InvalidAmount):
        issue_ticket(SQ, nothing, ticket_id=1, issued_on=SQ_DAY)


# --- T2 validity ------------------------------------------------------------------------


def test_shangqiu_validity_is_set_per_ticket_18_months_by_default() -> None:
    # T2 [choice]: default 18, at most 36, Civil Code months from the 31st
    assert issue(SQ, SQ_DAY).deadline == date(2026, 7, 31)
    assert issue(SQ, SQ_DAY, validity_months=1).deadline == date(2025, 2, 28)
    assert issue(SQ, date(2024, 2, 29), validity_months=12).deadline == date(2025, 2, 28)
    with pytest.raises(InvalidRequest):
        issue(SQ, SQ_DAY, validity_months=37)


def test_suining_tickets_are_valid_12_months() -> None:
    # T2
    assert issue(SN, SN_DAY).deadline == date(2026, 9, 30)
    with pytest.raises(InvalidRequest):
        issue(SN, SN_DAY, validity_months=13)


def test_a_ticket_is_used_until_24_00_of_its_deadline_and_not_after() -> None:
    # T2: the period ends at 24:00; the Art. 203 holiday extension is not applied [choice]
    t = issue(SQ, SQ_DAY, validity_months=1)  # deadline 2025-02-28, a Friday
    unit, signed = listing(SQ), contract(date(2025, 2, 28))
    last = datetime.combine(date(2025, 2, 28), time(23, 59, 59), tzinfo=TZ)
    assert quote_use(SQ, [t], unit, signed, last).amount_fen > 0
    with pytest.raises(TicketExpired):
        quote_use(SQ, [t], unit, signed, last + timedelta(seconds=1))


def test_an_expired_balance_goes_back_for_another_compensation() -> None:
    # T2 [choice]: only once expired; the number then holds nothing
    t = issue(SN, SN_DAY)
    before = at(t.deadline, 23)
    with pytest.raises(TicketReturnRefused) as info:
        return_balance(SN, t, agreement_no="BC-1", now=before)
    assert info.value.details["reason"] == "not_expired"
    back = return_balance(SN, t, agreement_no="BC-1", now=before + timedelta(hours=1))
    assert (back.status, back.balance_fen, back.returned_fen) == ("returned", 0, t.face_value_fen)
    with pytest.raises(TicketVoid):
        check_holds_value(back)


# --- T3 transfer ------------------------------------------------------------------------


def _transfer(t: Ticket, **overrides: object) -> Ticket:
    args: dict[str, object] = {
        "to_holder": "buyer-2",
        "to_household": frozenset({"buyer-2"}),
        "home_in_city": True,
        "all_members_signed": True,
        "notary_no": "(2025)遂证字第1号",
        "now": at(SN_DAY + timedelta(days=1)),
    }
    args.update(overrides)
    return transfer_ticket(SN, t, **args)  # type: ignore[arg-type]


def test_shangqiu_tickets_are_not_transferred() -> None:
    # T3 [choice]
    with pytest.raises(TicketTransferRefused) as info:
        transfer_ticket(
            SQ,
            issue(SQ, SQ_DAY),
            to_holder="x",
            to_household=frozenset(),
            home_in_city=True,
            all_members_signed=True,
            notary_no="N-1",
            now=at(SQ_DAY),
        )
    assert info.value.details["reason"] == "not_allowed"


@pytest.mark.parametrize(
    ("missing", "reason"),
    [
        ({"home_in_city": False}, "home_in_city"),
        ({"all_members_signed": False}, "all_members_signed"),
        ({"notary_no": " "}, "notarised"),
    ],
)
def test_a_suining_transfer_shows_each_of_its_conditions(
    missing: dict[str, object], reason: str
) -> None:
    # T3
    with pytest.raises(TicketTransferRefused) as info:
        _transfer(issue(SN, SN_DAY), **missing)
    assert info.value.details["reason"] == reason


def test_a_suining_ticket_is_transferred_once_and_keeps_its_expiry() -> None:
    # T3
    t = issue(SN, SN_DAY)
    moved = _transfer(t)
    assert (moved.holder, moved.transfers, moved.deadline) == ("buyer-2", 1, t.deadline)
    with pytest.raises(TicketTransferRefused) as info:
        _transfer(moved, to_holder="buyer-3", to_household=frozenset({"buyer-3"}))
    assert info.value.details["reason"] == "already_transferred"


def test_a_used_ticket_is_not_transferred() -> None:
    # T3 [choice]: only an unused ticket passes on (no cash-out through a transfer)
    (used,), _ = use(SN, [issue(SN, SN_DAY)], SN_DAY, amounts=[95 * WAN])
    with pytest.raises(TicketTransferRefused) as info:
        _transfer(used)
    assert info.value.details["reason"] == "used"


def test_an_heir_takes_the_ticket_on_a_notarised_certificate() -> None:
    # T3: Shangqiu [choice] and Suining; balance, uses and expiry unchanged; not a transfer
    (used,), _ = use(SQ, [issue(SQ, SQ_DAY)], SQ_DAY, amounts=[30 * WAN])
    with pytest.raises(TicketTransferRefused) as info:
        pass_to_heir(SQ, used, heir="heir-1", heir_household=frozenset(), certificate_no="")
    assert info.value.details["reason"] == "certificate"
    heirs = pass_to_heir(SQ, used, heir="heir-1", heir_household=frozenset(), certificate_no="J1")
    assert heirs.holder == "heir-1"
    assert (heirs.balance_fen, heirs.used_fen, heirs.deadline) == (
        used.balance_fen,
        used.used_fen,
        used.deadline,
    )
    inherited = pass_to_heir(
        SN, issue(SN, SN_DAY), heir="h", heir_household=frozenset({"h"}), certificate_no="J2"
    )
    assert _transfer(inherited).transfers == 1  # an inheritance is no transfer


# --- T4 the listing pool ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"in_pool": False}, "not_in_pool"),
        ({"district": "liangyuan"}, "district"),
        ({"property_type": PropertyType.STORAGE}, "property_type"),
        ({"listed_price_fen": 199 * WAN}, "price_above_listing"),
        ({"property_type": PropertyType.PARKING}, "home_not_kept"),
    ],
)
def test_only_eligible_units_of_the_pool_are_bought(change: dict[str, object], reason: str) -> None:
    # T4 (Suining): pool, district, type, filed price, a home kept for a parking space
    unit = dataclasses.replace(listing(SN), **change)  # type: ignore[arg-type]
    with pytest.raises(ListingNotEligible) as info:
        quote_use(SN, [issue(SN, SN_DAY)], unit, contract(SN_DAY), at(SN_DAY))
    assert info.value.details["reason"] == reason


def test_a_parking_space_is_bought_once_the_kept_home_is_verified() -> None:
    # T4 [choice]: verified and recorded by an operator before the use
    unit = listing(SN, kind=PropertyType.PARKING, price=100 * WAN, area_dm2=1_500)
    q = quote_use(
        SN, [issue(SN, SN_DAY)], unit, contract(SN_DAY, price=100 * WAN, home_kept=True), at(SN_DAY)
    )
    assert q.amount_fen == 100 * WAN - 600_000  # the reward (15 m² x 400 元) leaves room


def test_the_issuer_records_once_that_a_suining_household_keeps_a_home() -> None:
    # T4 [choice]: the record, with its document's number, on the ticket; pieces keep it,
    # a new holder's household does not (it needs its own)
    t = issue(SN, SN_DAY)
    kept = record_home_kept(SN, t, document_no=" BDC-2025-1 ", today=SN_DAY)
    assert (kept.home_kept_doc, kept.home_kept_on) == ("BDC-2025-1", SN_DAY)
    assert dataclasses.replace(kept, home_kept_doc=None, home_kept_on=None) == t
    with pytest.raises(Conflict) as info:
        record_home_kept(SN, kept, document_no="BDC-2", today=SN_DAY)
    assert info.value.details["reason"] == "home_kept_recorded"
    _, pieces = split_ticket(
        SN,
        kept,
        amounts=[50 * WAN] * 2,
        numbers=["P1", "P2"],
        piece_ids=[2, 3],
        now=at(SN_DAY),
    )
    assert {p.home_kept_on for p in pieces} == {SN_DAY}
    moved = _transfer(kept)
    assert (moved.home_kept_doc, moved.home_kept_on) == (None, None)


@pytest.mark.parametrize(
    ("campaign", "changes", "document_no", "error"),
    [
        (SQ, {}, "BDC-1", InvalidRequest),  # Shangqiu needs no such record
        (SN, {}, "  ", InvalidRequest),  # no document
        (SN, {"status": TicketStatus.VOID}, "BDC-1", TicketVoid),
    ],
)
def test_a_home_kept_is_recorded_only_where_it_counts(
    campaign: TicketCampaign, changes: dict[str, object], document_no: str, error: type[Exception]
) -> None:
    # T4: refused, nothing decided
    day = campaign.issuance_opens
    t = dataclasses.replace(issue(campaign, day), **changes)  # type: ignore[arg-type]
    with pytest.raises(error):
        record_home_kept(campaign, t, document_no=document_no, today=day)


def test_shangqiu_buys_storage_rooms_across_its_districts() -> None:
    # T4: 配套储藏室 is a Shangqiu type; any of its three districts
    unit = dataclasses.replace(listing(SQ), property_type=PropertyType.STORAGE, district="suiyang")
    assert quote_use(SQ, [issue(SQ, SQ_DAY)], unit, contract(SQ_DAY), at(SQ_DAY)).amount_fen


def test_a_developer_leaves_the_pool_three_months_after_its_notice() -> None:
    # T4 (Suining, Civil Code months); Shangqiu names no notice [choice]
    assert exit_date(SN, date(2025, 11, 30)) == date(2026, 2, 28)
    assert exit_date(SQ, date(2025, 1, 15)) == date(2025, 1, 15)


# --- T5 the bill ------------------------------------------------------------------------


def test_shangqiu_pays_for_a_spouse_on_a_recorded_proof() -> None:
    # T5: the holder's spouse, parents, children; the relation recorded at the use
    t = issue(SQ, SQ_DAY)
    spouse = contract(SQ_DAY, buyer=SPOUSE, relation=Relation.SPOUSE, proof="结婚证 J123")
    assert quote_use(SQ, [t], listing(SQ), spouse, at(SQ_DAY)).contract.buyer == SPOUSE
    for bad in (
        dataclasses.replace(spouse, relation_proof=""),
        dataclasses.replace(spouse, relation=Relation.HOUSEHOLD_MEMBER),
        dataclasses.replace(spouse, relation=Relation.HOLDER),
    ):
        with pytest.raises(BuyerNotServed):
            quote_use(SQ, [t], listing(SQ), bad, at(SQ_DAY))


def test_suining_pays_for_the_household_members_listed_on_the_ticket() -> None:
    # T5
    t = issue(SN, SN_DAY)
    member = contract(SN_DAY, buyer=MEMBER, relation=Relation.HOUSEHOLD_MEMBER)
    assert quote_use(SN, [t], listing(SN), member, at(SN_DAY)).amount_fen
    stranger = dataclasses.replace(member, buyer="stranger")
    spouse = contract(SN_DAY, buyer=SPOUSE, relation=Relation.SPOUSE, proof="结婚证")
    for bad in (stranger, spouse):
        with pytest.raises(BuyerNotServed):
            quote_use(SN, [t], listing(SN), bad, at(SN_DAY))


def test_a_use_never_takes_more_than_the_balance() -> None:
    # T5
    t = issue(SQ, SQ_DAY, face=50 * WAN)
    with pytest.raises(TicketBalanceInsufficient):
        use(SQ, [t], SQ_DAY, amounts=[50 * WAN + 1])


def test_the_ticket_amount_and_its_subsidy_stay_within_the_price() -> None:
    # T5 with T7: month 1, 10%: the most is the largest a with a + floor(a/10) <= price
    t = issue(SQ, SQ_DAY)
    price = 55 * WAN
    q = quote_use(SQ, [t], listing(SQ, price=price), contract(SQ_DAY, price=price), at(SQ_DAY))
    (line,) = q.lines
    assert line.amount_fen == max_amount_for(price, 1000) == 50 * WAN
    assert (q.subsidy_fen, q.buyer_pays_fen) == (5 * WAN, 0)
    with pytest.raises(TicketExceedsPrice):
        use(SQ, [t], SQ_DAY, price=price, amounts=[50 * WAN + 1])


def test_one_contract_number_reads_the_same_in_any_spelling() -> None:
    # T5 (as U4): the bill is seller + 网签 number; full-width and case do not make a new one
    t = issue(SQ, SQ_DAY)
    q = quote_use(SQ, [t], listing(SQ), contract(SQ_DAY, no=" ｗｑ-２０２５-１ "), at(SQ_DAY))
    assert q.contract.contract_no == "WQ-2025-1"


# --- T6 split use -----------------------------------------------------------------------


def test_shangqiu_pays_any_number_of_contracts_towards_90_percent_in_all() -> None:
    # T6: cumulative; the quote says what is still to use to reach 90%
    t = issue(SQ, SQ_DAY, face=100 * WAN)
    amounts = [10 * WAN, 20 * WAN, 60 * WAN]
    still = []
    for i, amount in enumerate(amounts):
        q = quote_use(SQ, [t], listing(SQ), contract(SQ_DAY, no=f"WQ-{i}"), at(SQ_DAY), [amount])
        still.append(q.lines[0].still_to_use_fen)
        (t,), _ = apply_use(q, [t], at(SQ_DAY))
    assert still == [80 * WAN, 60 * WAN, 0]
    assert (t.used_fen, t.balance_fen) == (90 * WAN, 10 * WAN)


def test_suining_each_use_is_at_least_90_percent_of_the_ticket() -> None:
    # T6: 89.99% refused, 90% taken; what is left can no longer be used (it is cashed out)
    t = issue(SN, SN_DAY, face=100 * WAN)
    with pytest.raises(TicketUseBelowMinimum) as info:
        use(SN, [t], SN_DAY, amounts=[90 * WAN - 1])
    assert info.value.details["min_fen"] == 90 * WAN
    (t,), _ = use(SN, [t], SN_DAY, amounts=[90 * WAN])
    with pytest.raises(TicketUseBelowMinimum):
        use(SN, [t], SN_DAY, no="WQ-2")
    (t,), _ = use(SN, [issue(SN, SN_DAY, ticket_id=2)], SN_DAY, no="WQ-3")
    with pytest.raises(TicketBalanceInsufficient):  # T5: nothing left at all
        use(SN, [t], SN_DAY, no="WQ-4")


def test_suining_90_percent_rounds_up_to_the_fen() -> None:
    # T6: "at least 90%" of 100.01 元 is 90.01 元 (90.009 rounded up)
    t = issue(SN, SN_DAY, face=10_001)
    with pytest.raises(TicketUseBelowMinimum):
        use(SN, [t], SN_DAY, amounts=[9_000])
    (after,), _ = use(SN, [t], SN_DAY, amounts=[9_001])
    assert after.balance_fen == 1_000


def test_a_suining_ticket_splits_once_into_at_most_three_pieces_that_keep_its_expiry() -> None:
    # T6
    t = issue(SN, SN_DAY, face=100 * WAN)
    now = at(SN_DAY)
    parent, pieces = split_ticket(
        SN,
        t,
        amounts=[50 * WAN, 30 * WAN, 20 * WAN],
        numbers=["P-1", "P-2", "P-3"],
        piece_ids=[11, 12, 13],
        now=now,
    )
    assert (parent.status, parent.balance_fen, parent.split_out_fen) == ("split", 0, 100 * WAN)
    assert [p.face_value_fen for p in pieces] == [50 * WAN, 30 * WAN, 20 * WAN]
    assert {(p.deadline, p.holder, p.original_id, p.parent_id) for p in pieces} == {
        (t.deadline, HOLDER, t.id, t.id)
    }
    with pytest.raises(TicketSplitRefused) as info:
        split_ticket(
            SN, pieces[0], amounts=[25 * WAN] * 2, numbers=["Q1", "Q2"], piece_ids=[21, 22], now=now
        )
    assert info.value.details["reason"] == "already_split"
    with pytest.raises(TicketVoid):
        check_holds_value(parent)


@pytest.mark.parametrize(
    ("amounts", "reason"),
    [
        ([25 * WAN] * 4, "pieces"),  # at most 3 [choice]
        ([100 * WAN], "pieces"),  # at least 2
        ([50 * WAN, 40 * WAN], "amounts"),  # the pieces add up to the balance
    ],
)
def test_a_split_is_refused_unless_its_pieces_add_up(amounts: list[int], reason: str) -> None:
    # T6
    t = issue(SN, SN_DAY, face=100 * WAN)
    ids = list(range(11, 11 + len(amounts)))
    with pytest.raises(TicketSplitRefused) as info:
        split_ticket(
            SN, t, amounts=amounts, numbers=[f"P{i}" for i in ids], piece_ids=ids, now=at(SN_DAY)
        )
    assert info.value.details["reason"] == reason


def test_shangqiu_needs_no_split_and_refuses_one() -> None:
    # T6
    with pytest.raises(TicketSplitRefused) as info:
        split_ticket(
            SQ,
            issue(SQ, SQ_DAY),
            amounts=[50 * WAN] * 2,
            numbers=["a", "b"],
            piece_ids=[2, 3],
            now=at(SQ_DAY),
        )
    assert info.value.details["reason"] == "not_allowed"


def test_a_piece_is_used_for_at_least_90_percent_of_the_piece() -> None:
    # T6: the minimum is the piece's face value, not the original's
    t = issue(SN, SN_DAY, face=100 * WAN)
    _, (big, small) = split_ticket(
        SN, t, amounts=[70 * WAN, 30 * WAN], numbers=["P1", "P2"], piece_ids=[2, 3], now=at(SN_DAY)
    )
    (small,), _ = use(SN, [small], SN_DAY, amounts=[27 * WAN])
    assert small.balance_fen == 3 * WAN
    with pytest.raises(TicketUseBelowMinimum):
        use(SN, [big], SN_DAY, amounts=[63 * WAN - 1], no="WQ-2")


def test_a_holders_tickets_combine_on_one_contract() -> None:
    # T6: each draw reaches 90% of its own ticket; one holder
    a = issue(SN, SN_DAY, face=60 * WAN, ticket_id=1)
    b = issue(SN, SN_DAY, face=40 * WAN, ticket_id=2)
    (a2, b2), done = use(SN, [a, b], SN_DAY, amounts=[54 * WAN, 36 * WAN])
    assert (a2.balance_fen, b2.balance_fen) == (6 * WAN, 4 * WAN)
    assert [(d.ticket_id, d.amount_fen) for d in done.draws] == [(1, 54 * WAN), (2, 36 * WAN)]
    with pytest.raises(TicketUseBelowMinimum):
        use(SN, [a, b], SN_DAY, amounts=[60 * WAN, 35 * WAN])
    other = issue(SN, SN_DAY, face=40 * WAN, ticket_id=3, holder="someone-else")
    with pytest.raises(TicketSplitRefused) as info:
        use(SN, [a, other], SN_DAY)
    assert info.value.details["reason"] == "holders"
    with pytest.raises(TicketSplitRefused):
        use(SN, [a, a], SN_DAY)


# --- T7 Shangqiu's purchase subsidy ------------------------------------------------------


def _subsidy_on(t: Ticket, signed_on: date) -> tuple[int, int]:
    q = quote_use(SQ, [t], listing(SQ), contract(signed_on), at(signed_on), [10 * WAN])
    return q.lines[0].month, q.lines[0].subsidy_fen


def test_the_subsidy_follows_the_month_table_at_its_boundaries_from_the_31st() -> None:
    # T7: months 1-3 10%, 4-6 8%, 7-12 5%, 13-18 2%, then none; from 2025-01-31
    t = issue(SQ, SQ_DAY, validity_months=24)
    on = {
        date(2025, 1, 31): (1, 10_000_00),
        date(2025, 4, 30): (3, 10_000_00),
        date(2025, 5, 1): (4, 8_000_00),
        date(2025, 7, 31): (6, 8_000_00),
        date(2025, 8, 1): (7, 5_000_00),
        date(2026, 1, 31): (12, 5_000_00),
        date(2026, 2, 1): (13, 2_000_00),
        date(2026, 7, 31): (18, 2_000_00),
        date(2026, 8, 1): (19, 0),
    }
    assert {day: _subsidy_on(t, day) for day in on} == on


def test_the_subsidy_months_of_a_ticket_issued_on_29_february() -> None:
    # T7: month 3 ends on 29 May, month 12 on 28 February
    t = issue(SQ, date(2024, 2, 29))
    assert _subsidy_on(t, date(2024, 5, 29)) == (3, 10_000_00)
    assert _subsidy_on(t, date(2024, 5, 30)) == (4, 8_000_00)
    assert _subsidy_on(t, date(2025, 2, 28)) == (12, 5_000_00)
    assert _subsidy_on(t, date(2025, 3, 1)) == (13, 2_000_00)


def test_the_subsidy_rounds_down_to_the_fen_and_is_deducted_from_the_price() -> None:
    # T7 [choice]: 8% of 1,234.57 元 is 98.7656 元 -> 98.76 元; never paid in cash
    t = issue(SQ, SQ_DAY)
    signed = date(2025, 5, 1)
    q = quote_use(SQ, [t], listing(SQ), contract(signed), at(signed), [123_457])
    assert q.subsidy_fen == 9_876
    assert q.buyer_pays_fen == 200 * WAN - 123_457 - 9_876
    assert q.seller_due_fen == 123_457 + 9_876


def test_a_contract_is_signed_after_the_ticket_and_not_in_the_future() -> None:
    # T7: the month of signing is counted after issue
    t = issue(SQ, SQ_DAY)
    with pytest.raises(InvalidDate):
        quote_use(SQ, [t], listing(SQ), contract(SQ_DAY - timedelta(days=1)), at(SQ_DAY))
    with pytest.raises(InvalidDate):
        quote_use(SQ, [t], listing(SQ), contract(SQ_DAY + timedelta(days=1)), at(SQ_DAY))


# --- T8 Suining's reward per m² ---------------------------------------------------------


def test_suining_rewards_400_yuan_per_m2_on_the_price_outside_the_ticket() -> None:
    # T8: 89.57 m² x 400 元 = 35,828 元, applied to the price; the ticket pays its amount
    t = issue(SN, SN_DAY, face=100 * WAN)
    unit = listing(SN, area_dm2=8_957, price=150 * WAN)
    q = quote_use(SN, [t], unit, contract(SN_DAY, price=150 * WAN), at(SN_DAY))
    assert q.reward_fen == 3_582_800
    assert q.amount_fen == 100 * WAN
    assert q.buyer_pays_fen == 150 * WAN - 100 * WAN - 3_582_800
    (after,), done = apply_use(q, [t], at(SN_DAY))
    assert after.used_fen == 100 * WAN  # the reward is not a use (T8 [choice])
    assert (done.reward_fen, done.seller_due_fen) == (3_582_800, 100 * WAN + 3_582_800)


def test_the_reward_leaves_room_in_the_price_for_the_ticket() -> None:
    # T5 with T8: amount + reward <= price
    t = issue(SN, SN_DAY, face=100 * WAN)
    unit = listing(SN, area_dm2=10_000, price=98 * WAN)  # reward 4 万
    q = quote_use(SN, [t], unit, contract(SN_DAY, price=98 * WAN), at(SN_DAY))
    assert (q.amount_fen, q.reward_fen, q.buyer_pays_fen) == (94 * WAN, 4 * WAN, 0)


def test_shangqiu_pays_no_reward() -> None:
    # T8
    t = issue(SQ, SQ_DAY)
    assert quote_use(SQ, [t], listing(SQ), contract(SQ_DAY), at(SQ_DAY)).reward_fen == 0


# --- T11 cancelled contracts ------------------------------------------------------------


def test_a_cancelled_contract_restores_the_ticket_and_reverses_the_subsidy() -> None:
    # T11: reissued with the original issue date and expiry [choice]
    t = issue(SQ, SQ_DAY)
    (used,), done = use(SQ, [t], SQ_DAY, amounts=[40 * WAN])
    back = cancel_use(
        done,
        [used],
        proof_no="解除证明-1",
        elect=CancelElection.REISSUE,
        paid_to_seller_fen=0,
        by_issuer=False,
    )
    (restored,) = back.tickets
    assert (restored.balance_fen, restored.used_fen, restored.deadline) == (
        t.balance_fen,
        0,
        t.deadline,
    )
    assert (back.reversed_subsidy_fen, back.clawback_fen) == (4 * WAN, 0)
    assert back.use.cancelled


def test_a_cancelled_contracts_amount_may_leave_for_another_compensation() -> None:
    # T11: the holder elects another form of compensation
    (used,), done = use(SQ, [issue(SQ, SQ_DAY)], SQ_DAY, amounts=[40 * WAN])
    back = cancel_use(
        done,
        [used],
        proof_no="P",
        elect=CancelElection.OTHER_COMPENSATION,
        paid_to_seller_fen=0,
        by_issuer=True,
    )
    (t,) = back.tickets
    assert (t.used_fen, t.returned_fen, t.balance_fen) == (0, 40 * WAN, 60 * WAN)


def test_a_settled_use_is_reversed_by_the_issuer_never_at_the_till() -> None:
    # T11: its payment to the seller is clawed back (T12)
    (used,), done = use(SQ, [issue(SQ, SQ_DAY)], SQ_DAY, amounts=[40 * WAN])
    args = {"proof_no": "P", "elect": CancelElection.REISSUE, "paid_to_seller_fen": 44 * WAN}
    with pytest.raises(AlreadySettled):
        cancel_use(done, [used], by_issuer=False, **args)  # type: ignore[arg-type]
    back = cancel_use(done, [used], by_issuer=True, **args)  # type: ignore[arg-type]
    assert back.clawback_fen == 44 * WAN
    with pytest.raises(ContractAlreadyCancelled):
        cancel_use(back.use, list(back.tickets), by_issuer=True, **args)  # type: ignore[arg-type]


# --- T13 lost paper tickets -------------------------------------------------------------


def test_a_lost_ticket_is_not_used_while_its_notice_runs() -> None:
    # T13 [choice]
    t = report_lost(SN, issue(SN, SN_DAY), newspaper="遂宁日报", published_on=SN_DAY, today=SN_DAY)
    assert t.status is TicketStatus.LOST
    with pytest.raises(TicketReportedLost):
        use(SN, [t], SN_DAY)


def test_a_replacement_comes_10_working_days_after_the_notice_with_the_same_uses() -> None:
    # T13: notice Friday 2025-09-26 -> 2025-10-16 (National Day and two make-up days)
    issued = date(2025, 9, 1)
    (used,), _ = use(SN, [issue(SN, issued)], issued, amounts=[95 * WAN])
    notice = date(2025, 9, 26)
    lost = report_lost(SN, used, newspaper="遂宁日报", published_on=notice, today=notice)
    assert replacement_opens(SN, notice) == date(2025, 10, 16)
    with pytest.raises(ReplacementNotYet) as info:
        replace_lost(SN, lost, new_number="NO-1B", today=date(2025, 10, 15))
    assert info.value.details["opens_on"] == "2025-10-16"
    new = replace_lost(SN, lost, new_number="NO-1B", today=date(2025, 10, 16))
    assert (new.number, new.void_numbers, new.status) == ("NO-1B", ("NO-1",), "active")
    assert (new.used_fen, new.balance_fen, new.deadline) == (95 * WAN, 5 * WAN, used.deadline)
    with pytest.raises(TicketVoid) as void:
        check_holds_value(new, number="NO-1")
    assert void.value.details["reason"] == "replaced"


def test_shangqiu_replaces_a_lost_ticket_at_once() -> None:
    # T13 [choice]: Shangqiu is silent; the old number is void in the ledger at once
    lost = report_lost(
        SQ, issue(SQ, SQ_DAY), newspaper="商丘日报", published_on=SQ_DAY, today=SQ_DAY
    )
    assert replace_lost(SQ, lost, new_number="NEW", today=SQ_DAY).number == "NEW"


# --- T1 voiding -------------------------------------------------------------------------


def test_the_issuer_voids_only_a_ticket_never_used() -> None:
    # T1: a ticket issued in error
    t = issue(SQ, SQ_DAY)
    void = void_ticket(t, decision_no="作废决定-1")
    assert (void.status, void.returned_fen, void.balance_fen) == ("void", t.face_value_fen, 0)
    (used,), _ = use(SQ, [t], SQ_DAY, amounts=[1])
    with pytest.raises(TicketReturnRefused):
        void_ticket(used, decision_no="作废决定-2")


def test_a_reissued_amount_on_a_returned_ticket_can_be_returned_in_turn() -> None:
    # T11 with T2: the drawn amount comes back on the ticket, which holds value again
    t = issue(SQ, SQ_DAY, validity_months=1)
    (used,), done = use(SQ, [t], SQ_DAY, amounts=[40 * WAN])
    after = at(used.deadline + timedelta(days=1))
    returned = return_balance(SQ, used, agreement_no="BC-1", now=after)
    back = cancel_use(
        done,
        [returned],
        proof_no="解除证明",
        elect=CancelElection.REISSUE,
        paid_to_seller_fen=0,
        by_issuer=True,
    )
    (again,) = back.tickets
    assert (again.status, again.balance_fen) == ("active", 40 * WAN)
    final = return_balance(SQ, again, agreement_no="BC-2", now=after)
    assert (final.returned_fen, final.used_fen) == (t.face_value_fen, 0)
