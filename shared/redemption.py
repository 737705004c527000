"""The till's decisions as pure functions: which campaign a bill redeems, which vouchers it
uses, and which vouchers a refund gives back. No I/O, no clock: what the ledger said is a
``TillContext`` (read by ``server/db/redemptions.py``), the time is a parameter.

``server/services/redemption.py`` and ``server/services/refunds.py`` call these; the rules
themselves (U1-U6, F2, X1) live in ``shared.rules`` and are cited where they apply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared import rules
from shared.campaign import Campaign, RefundReturns
from shared.errors import (
    AlreadyRefunded,
    BillAlreadyRedeemed,
    NotEnoughVouchers,
    TerminalDisabled,
    TokenInvalid,
    TokenReplayed,
    VoucherExpired,
    WrongDistrict,
)
from shared.values import value


class MustDecideAgain(Exception):
    """The ledger refused a write that was decided on an older read, and changed nothing: a
    chosen voucher or a standing moved (``ledger_changed``), another writer took a voucher
    first, or PostgreSQL broke a deadlock or a serialisation conflict by aborting the
    statement. Deciding the bill again from a fresh read may succeed (rule U7). Never an
    answer to a client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@value
class HeldVoucher(rules.VoucherView):
    """One available, unexpired voucher the citizen holds (any campaign): what the rules see
    of it, and its campaign. ``HeldVoucher(id, expires_at, face_value_fen, campaign_id)``."""

    campaign_id: str


@value
class TillContext:
    """What the ledger says about one bill at one till, in one read: the terminal and its
    merchant, the citizen the QR code names (``citizen_id`` None: nobody of the programme),
    whether the QR token was used, and the citizen's vouchers, earliest expiry first (U6).
    ``expired_count`` is only read when nothing is usable (V2: expired or simply none).
    ``receipt_used``: a bill of this merchant already has ``receipt_no`` on the business date
    read (and at this till where the merchant numbers receipts per till, U4); ``receipt_no``
    None when no receipt number was asked about."""

    terminal_status: str
    terminal_label: str
    merchant_id: int
    merchant_name: str
    district: str
    admitted: bool
    permitted: bool
    merchant_status: str
    citizen_id: int | None
    citizen_status: str | None
    id_masked: str | None
    expired_count: int
    token_used: bool
    held: tuple[HeldVoucher, ...]
    receipts_per_till: bool = False
    receipt_no: str | None = None
    receipt_used: bool = False


@value
class Decision:
    """What the rules decided for one bill from one read: the campaign of the bill (U4) and
    the citizen's vouchers of that campaign."""

    ctx: TillContext
    campaign: Campaign
    views: tuple[rules.VoucherView, ...]

    @property
    def citizen_id(self) -> int:
        assert self.ctx.citizen_id is not None  # decide refuses a context without one
        return self.ctx.citizen_id


def decide(
    ctx: TillContext | None,
    campaigns: Mapping[str, Campaign],
    *,
    replay: bool = True,
    receipt_no: str | None = None,
) -> Decision:
    """Rules U1, U2, U4, V2, X1 and U5 (replay) on one read of the ledger; U3 and U6 (how many,
    which) are ``quote`` and ``choose``. ``ctx`` None: there is no such terminal.

    Raises, in order: ``terminal_disabled`` (U1), ``token_invalid`` (the QR code names no
    citizen of the programme), ``token_replayed`` (U5, when ``replay``),
    ``bill_already_redeemed`` (U4: the read found a bill with ``receipt_no`` today; the
    ledger's unique index refuses it anyway, this says so before the write),
    ``participation_revoked`` (X1), ``wrong_district`` (U2: vouchers held, none usable here),
    ``voucher_expired`` (V2) or ``not_enough_vouchers`` (none at all), and the merchant's
    refusals of ``rules.check_merchant`` (U1, U2).
    """
    if ctx is None or ctx.terminal_status != "active":
        raise TerminalDisabled()  # rule U1
    if ctx.citizen_id is None:
        raise TokenInvalid("the QR code names no citizen of this programme", reason="subject")
    if replay and ctx.token_used:
        raise TokenReplayed("this QR code was already used; ask the citizen to refresh it")
    if receipt_no is not None and ctx.receipt_no == receipt_no and ctx.receipt_used:
        raise BillAlreadyRedeemed(receipt_no=receipt_no)  # rule U4
    rules.check_participation(ctx.citizen_status == "revoked")  # rule X1
    district = ctx.district
    here = [
        v
        for v in ctx.held
        if (c := campaigns.get(v.campaign_id)) is not None and district in c.usable_districts
    ]
    if ctx.held and not here:
        raise WrongDistrict(district=district)  # rule U2
    if not here:
        if ctx.expired_count:
            raise VoucherExpired("the citizen's vouchers have expired")  # rule V2
        raise NotEnoughVouchers(requested=1, available=0)
    # rule U4: one campaign per bill; the campaign of the earliest-expiring voucher (U6)
    campaign = campaigns[here[0].campaign_id]
    rules.check_merchant(
        campaign, district, ctx.admitted, ctx.permitted, ctx.merchant_status == "suspended"
    )  # rules U1, U2
    views = tuple(v for v in here if v.campaign_id == campaign.id)
    return Decision(ctx, campaign, views)


def quote(decision: Decision, bill_fen: int, now: datetime) -> rules.Quote:
    """Rules U3, U6: what the bill allows with the vouchers of the decided campaign."""
    return rules.quote(decision.campaign, bill_fen, decision.views, now)


def choose(decision: Decision, count: int, bill_fen: int, now: datetime) -> tuple[int, ...]:
    """Rules U3, U6: the ``count`` vouchers the bill uses, earliest expiry first, as the
    ledger's ids in ascending order (the write locks them in that order)."""
    chosen = rules.select_vouchers(decision.campaign, decision.views, count, bill_fen, now)
    return tuple(sorted(int(i) for i in chosen))


def vouchers_left(ctx: TillContext, campaign_id: str, used: int, now: datetime) -> int:
    """The citizen's vouchers of ``campaign_id`` still usable after a bill used ``used`` of
    them (printed on the customer's receipt, issue 11 item 6): unexpired at ``now`` (V2)."""
    held = sum(1 for v in ctx.held if v.campaign_id == campaign_id and v.expires_at > now)
    return max(0, held - used)


@dataclass(frozen=True, slots=True)
class SpentVoucher:
    """A voucher still spent on a bill (not yet returned by a refund)."""

    id: int
    expires_at: datetime


def vouchers_returned(
    campaign: Campaign,
    live: Sequence[SpentVoucher],
    remaining_bill_fen: int,
    *,
    bill_fen: int,
    settled: bool,
) -> list[int]:
    """Rules F1-F3: the vouchers a refund down to ``remaining_bill_fen`` gives back. How
    many: ``rules.partial_refund_split`` (the bill keeps min(k, floor(remaining / threshold))).
    Which: the campaign's ``refund_returns`` [choice]; ``latest_expiry_first`` gives back
    the vouchers with the most time left, ``earliest_expiry_first`` those with the least;
    ties by id, the higher first (latest) or the lower first (earliest).

    Raises, in order: ``already_settled`` (F3), ``already_refunded`` (nothing left on the
    bill), ``refund_invalid`` (F2: a remaining bill not below ``bill_fen``).
    """
    rules.check_refundable(settled)  # rule F3
    if not live:
        raise AlreadyRefunded()
    _, returned = rules.partial_refund_split(
        campaign, len(live), remaining_bill_fen, bill_fen=bill_fen
    )  # rule F2
    latest = campaign.refund_returns is RefundReturns.LATEST_EXPIRY_FIRST
    ordered = sorted(live, key=lambda v: (v.expires_at, v.id), reverse=latest)
    return [v.id for v in ordered[:returned]]
