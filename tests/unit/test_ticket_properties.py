"""Property tests over random house tickets and random sequences of acts (issue 13):
whatever happens, no balance goes below 0; uses + cash-out + returned + balance equal the
face value at every moment (T5, T9, T11; a family's pieces add up to its original, T6);
a use never exceeds its contract's price (T5); and the subsidy follows the month table
exactly at its boundaries, from tickets issued on the 31st and on 29 February (T2, T7)."""

import dataclasses
import itertools
from dataclasses import dataclass, field
from datetime import date, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st

from shared.errors import ContractAlreadyCancelled, VoucherError
from shared.house_tickets import (
    CancelElection,
    Ticket,
    TicketUse,
    apply_use,
    cancel_use,
    least_share_fen,
    quote_use,
    return_balance,
    reward_for,
    split_ticket,
    transfer_ticket,
)
from shared.periods import add_months, month_number
from shared.ticket_campaign import TicketCampaign
from shared.ticket_payouts import FamilyView, apply_cashout, cashout_quote, family_view
from tests.unit.ticket_helpers import HOLDER, SN, SQ, WAN, at, contract, issue, listing

OTHER = "holder-2"  # the person a piece is transferred to (T3)

SQ_FIRST, SQ_LAST = SQ.issuance_opens, SQ.issuance_closes
MONTH_ENDS = [
    d
    for y in (2023, 2024, 2025)
    for m in range(1, 13)
    for d in [date(y, m, 28) + timedelta(days=k) for k in range(4)]
    if d.month == m and SQ_FIRST <= d <= SQ_LAST and (d + timedelta(days=1)).day == 1
]
issue_days = st.one_of(
    st.sampled_from(MONTH_ENDS),  # the 31st, the 30th, 28 and 29 February
    st.just(date(2024, 2, 29)),
    st.dates(SQ_FIRST, SQ_LAST),
)

# an act: ("use", the amount in ‰ of each balance (above 1000: the most allowed), the price
# in ‰ of the amounts, days on), ("cancel", which, elect), ("cashout",), ("return", days on)
acts = st.lists(
    st.one_of(
        st.tuples(
            st.just("use"),
            st.one_of(st.integers(0, 1100), st.integers(880, 1000)),
            st.integers(900, 3000),
            st.integers(0, 60),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 20), st.sampled_from(list(CancelElection))),
        st.tuples(st.just("cashout")),
        st.tuples(st.just("return"), st.integers(0, 900)),
    ),
    max_size=25,
)


@dataclass
class Programme:
    """A family of tickets and its uses, as the ledger would hold them."""

    campaign: TicketCampaign
    face: int
    tickets: dict[int, Ticket]
    uses: list[TicketUse] = field(default_factory=list)
    day: date = date(2000, 1, 1)
    contracts: int = 0

    def put(self, tickets: tuple[Ticket, ...] | list[Ticket]) -> None:
        for t in tickets:
            self.tickets[t.id] = t

    def check(self) -> None:
        tickets = list(self.tickets.values())
        live_uses = [u for u in self.uses if not u.cancelled]
        for t in tickets:
            assert t.balance_fen >= 0 and t.used_fen >= 0  # never below 0
            assert t.accounted_fen == t.face_value_fen
            drawn = sum(d.amount_fen for u in live_uses for d in u.draws if d.ticket_id == t.id)
            assert t.used_fen == drawn
        used = sum(t.used_fen for t in tickets)
        cashed = sum(t.cashed_out_fen for t in tickets)
        returned = sum(t.returned_fen for t in tickets)
        balance = sum(t.balance_fen for t in tickets)
        assert used + cashed + returned + balance == self.face  # at every moment
        for u in live_uses:
            assert u.amount_fen + u.subsidy_fen + u.reward_fen <= u.price_fen  # T5
            for d in u.draws:
                t = self.tickets[d.ticket_id]
                rate = self.campaign.subsidy_bp(month_number(t.issued_on, u.signed_on))
                assert (d.subsidy_bp, d.subsidy_fen) == (rate, d.amount_fen * rate // 10_000)

    def act(self, step: tuple[object, ...], sources: list[int]) -> None:
        """One act; a refusal changes nothing (the functions are pure: nothing is put)."""
        kind = step[0]
        try:
            if kind == "use":
                self.use(sources, *step[1:])  # type: ignore[arg-type]
            elif kind == "cancel":
                self.cancel(*step[1:])  # type: ignore[arg-type]
            elif kind == "cashout":
                family = list(self.tickets.values())
                cashout_quote(self.campaign, family, last_purchase_on=self.day)
                self.put(apply_cashout(family))
            else:
                self.day += timedelta(days=step[1])  # type: ignore[arg-type]
                for t in list(self.tickets.values()):
                    self.put(
                        [return_balance(self.campaign, t, agreement_no="BC", now=at(self.day))]
                    )
        except VoucherError as refused:
            event(f"{kind} refused: {refused.code}")
        else:
            event(f"{kind} done")
        self.check()

    def use(self, sources: list[int], per_mille: int, price_pm: int, days: int) -> None:
        self.day += timedelta(days=days)
        tickets = [self.tickets[i] for i in sources]
        amounts = [max(1, t.balance_fen * per_mille // 1000) for t in tickets]
        unit = listing(self.campaign, area_dm2=1 + sum(amounts) % 20_000)
        price = max(1, sum(amounts) * price_pm // 1000) + reward_for(self.campaign, unit)
        self.contracts += 1
        q = quote_use(
            self.campaign,
            tickets,
            dataclasses.replace(unit, listed_price_fen=price),
            contract(self.day, price=price, no=f"WQ-{self.contracts}"),
            at(self.day),
            amounts if per_mille <= 1000 else None,
        )
        after, done = apply_use(q, tickets, at(self.day))
        self.put(after)
        self.uses.append(done)

    def cancel(self, which: int, elect: CancelElection) -> None:
        i = which % max(1, len(self.uses))
        if not self.uses:
            raise ContractAlreadyCancelled("no use to cancel")
        back = cancel_use(
            self.uses[i],
            list(self.tickets.values()),
            proof_no="P",
            elect=elect,
            paid_to_seller_fen=0,
            by_issuer=True,
        )
        self.uses[i] = back.use
        self.put(back.tickets)


@settings(max_examples=150, deadline=None)
@given(issued=issue_days, face=st.integers(1, 500 * WAN), steps=acts)
def test_a_shangqiu_ticket_always_adds_up(issued: date, face: int, steps: list) -> None:
    # T5, T6 (any number of contracts), T7, T9, T11, T2 (return)
    t = issue(SQ, issued, face=face, validity_months=24)
    p = Programme(SQ, face, {t.id: t}, day=issued)
    p.check()
    for step in steps:
        p.act(step, [t.id])


@settings(max_examples=150, deadline=None)
@given(
    issued=st.dates(SN.issuance_opens, SN.issuance_closes),
    face=st.integers(100, 500 * WAN),
    cuts=st.lists(st.integers(1, 999), min_size=0, max_size=2, unique=True),
    steps=acts,
    combine=st.booleans(),
)
def test_a_suining_family_always_adds_up_to_its_original(
    issued: date, face: int, cuts: list[int], steps: list, combine: bool
) -> None:
    # T6: split once into <= 3 pieces, combined or one by one; T8, T9, T11
    t = issue(SN, issued, face=face)
    p = Programme(SN, face, {t.id: t}, day=issued)
    bounds = [0, *sorted(face * c // 1000 for c in cuts), face]
    amounts = [b - a for a, b in itertools.pairwise(bounds) if b > a]
    if len(amounts) >= 2:
        ids = list(range(2, 2 + len(amounts)))
        parent, pieces = split_ticket(
            SN, t, amounts=amounts, numbers=[f"P{i}" for i in ids], piece_ids=ids, now=at(issued)
        )
        p.put([parent, *pieces])
        assert parent.split_out_fen == sum(x.face_value_fen for x in pieces) == face
    p.check()
    live = [i for i, x in p.tickets.items() if x.status != "split"]
    for n, step in enumerate(steps):
        sources = live if combine else [live[n % len(live)]]
        p.act(step, sources)


@settings(max_examples=300, deadline=None)
@given(issued=issue_days, month=st.integers(1, 23))
def test_the_subsidy_turns_exactly_at_each_months_end(issued: date, month: int) -> None:
    # T2, T7: signed on the last day of month k: the rate of month k; the next day: k + 1
    t = issue(SQ, issued, validity_months=24)
    last = add_months(issued, month)
    for day, expected in ((last, month), (last + timedelta(days=1), month + 1)):
        q = quote_use(SQ, [t], listing(SQ), contract(day), at(day), [WAN])
        (line,) = q.lines
        assert line.month == expected
        assert line.subsidy_bp == SQ.subsidy_bp(expected)
        assert line.subsidy_fen == WAN * SQ.subsidy_bp(expected) // 10_000


@settings(max_examples=300, deadline=None)
@given(start=issue_days, months=st.integers(0, 40), days=st.integers(0, 1300))
def test_civil_code_months_agree_with_counting_them_one_by_one(
    start: date, months: int, days: int
) -> None:
    # T2: the month's end has the start's day number, or is the month's last day, never chained
    end = add_months(start, months)
    index = (end.year - start.year) * 12 + end.month - start.month
    assert index == months
    next_month = date(end.year + end.month // 12, end.month % 12 + 1, 1)
    assert end.day == min(start.day, (next_month - timedelta(days=1)).day)
    day = start + timedelta(days=days)
    k = 1
    while day > add_months(start, k):
        k += 1
    assert month_number(start, day) == k


@settings(max_examples=150, deadline=None)
@given(
    issued=st.dates(SN.issuance_opens, SN.issuance_closes - timedelta(days=1)),
    face=st.integers(1000, 500 * WAN),
    cuts=st.lists(st.integers(1, 999), min_size=1, max_size=2, unique=True),
    which=st.integers(0, 2),
    # in ‰ of each piece's balance; a use is at least 90% of its piece (T6)
    spent=st.lists(st.one_of(st.integers(880, 1000), st.integers(0, 1000)), min_size=3, max_size=3),
)
def test_each_holders_wallet_adds_up_after_a_piece_is_transferred(
    issued: date, face: int, cuts: list[int], which: int, spent: list[int]
) -> None:
    # T3, T6, T9: a piece transferred away leaves the transferor's figures; each holder's
    # used + cashed out + returned + balance (+ passed on) is their face value; together the
    # two wallets hold exactly the family's balance and uses; the cash-outs due add up
    t = issue(SN, issued, face=face)
    bounds = [0, *sorted(face * c // 1000 for c in cuts), face]
    amounts = [b - a for a, b in itertools.pairwise(bounds) if b > a]
    if len(amounts) < 2:
        return
    ids = list(range(2, 2 + len(amounts)))
    parent, pieces = split_ticket(
        SN, t, amounts=amounts, numbers=[f"P{i}" for i in ids], piece_ids=ids, now=at(issued)
    )
    given_away = pieces[which % len(pieces)]
    moved = transfer_ticket(
        SN,
        given_away,
        to_holder=OTHER,
        to_household=frozenset({OTHER}),
        home_in_city=True,
        all_members_signed=True,
        notary_no="GZ-1",
        now=at(issued),
    )
    family = [parent, *(moved if x.id == moved.id else x for x in pieces)]
    uses: list[TicketUse] = []
    for n, (piece, share) in enumerate(zip(list(family[1:]), spent, strict=False)):
        amount = piece.balance_fen * share // 1000
        if amount < least_share_fen(piece.face_value_fen, SN.split.min_use_bp) or not amount:
            continue  # T6: below 90% of the piece: no use
        buyer = piece.holder
        q = quote_use(
            SN,
            [piece],
            listing(SN, price=10 * amount + 10 * WAN, seller="dev-1"),
            contract(issued, no=f"WQ-{n}", price=10 * amount + 10 * WAN, buyer=buyer),
            at(issued),
            [amount],
        )
        (after,), done = apply_use(q, [piece], at(issued))
        family = [after if x.id == after.id else x for x in family]
        uses.append(done)
    mine = family_view(SN, family, uses, issued, holder=HOLDER)
    theirs = family_view(SN, family, uses, issued, holder=OTHER)
    whole = family_view(SN, family, uses, issued)

    def accounted(v: FamilyView) -> int:
        return v.used_fen + v.cashed_out_fen + v.returned_fen + v.balance_fen + v.transferred_fen

    assert accounted(mine) == mine.face_value_fen == face
    assert accounted(theirs) == theirs.face_value_fen == given_away.face_value_fen
    assert mine.transferred_fen == given_away.face_value_fen
    assert [p.id for p in mine.transferred] == [given_away.id]
    assert theirs.transferred == () and theirs.numbers in ((), (given_away.number,))
    assert given_away.number not in mine.numbers
    assert mine.balance_fen + theirs.balance_fen == whole.balance_fen
    assert mine.used_fen + theirs.used_fen == whole.used_fen
    assert {u.contract_no for u in mine.uses} | {u.contract_no for u in theirs.uses} == {
        u.contract_no for u in whole.uses
    }
    assert not {u.contract_no for u in mine.uses} & {u.contract_no for u in theirs.uses}
    assert theirs.bonus is None  # T10 [choice]: the original's holder's
    event(f"pieces {len(pieces)}, uses {len(uses)}, cash-out due {whole.cashout is not None}")
    if whole.cashout is not None:
        due = [v.cashout.amount_fen for v in (mine, theirs) if v.cashout is not None]
        assert sum(due) == whole.cashout.amount_fen
    else:
        assert mine.cashout is None and theirs.cashout is None
