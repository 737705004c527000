"""The money of a refund, before it is sent: pure functions of the redemption as the server
gave it and the campaign's rules (no I/O, no Textual).

The cashier types the amount refunded; the API takes the bill left after the refund
(``remaining_bill_fen`` = the current bill − the amount refunded). Rule F2 (via
``shared.rules.partial_refund_split``) says how many of the vouchers still on the bill stay;
the rest go back to the citizen. The cash to hand back follows from rule U3 (vouchers cover
part of the bill, the rest is paid otherwise, vouchers give no change):

- the cash paid is the bill − the value of the vouchers used;
- after the refund the customer owes the remaining bill − the value of the vouchers kept
  (never below 0);
- hand back = cash paid − that, never negative.

Example (issue 11 item 5): a bill of 1,000 元 paid with 5 vouchers of 100 元 and 500 元 cash,
450 元 refunded: 550 元 remain, floor(550 / 200) = 2 vouchers stay, 3 go back; the customer
owes 550 − 200 = 350 元 and gets 500 − 350 = 150 元 back.
"""

from __future__ import annotations

from dataclasses import dataclass

from client.wire import Redemption
from shared.campaign import Campaign
from shared.errors import AlreadyRefunded, RefundInvalid
from shared.rules import RefundStep, cash_held_fen, partial_refund_split


def cash_paid_fen(r: Redemption) -> int:
    """The cash the customer has paid for this bill so far, net of what earlier refunds
    handed back (``shared.rules.cash_held_fen``, the server's own reckoning)."""
    steps = [
        RefundStep(f.remaining_bill_fen, f.returned_count)
        for f in sorted(r.refunds, key=lambda f: f.refund_id)
    ]
    return cash_held_fen(r.bill_fen, r.voucher_count, r.face_value_fen, steps)[-1]


@dataclass(frozen=True, slots=True)
class RefundPreview:
    """What one refund will do, shown to the cashier before it is confirmed."""

    redemption_id: int
    bill_fen: int
    """The bill before this refund (after any earlier refund)."""
    refund_fen: int
    remaining_bill_fen: int
    kept: int
    returned: int
    face_value_fen: int
    cash_paid_fen: int
    owed_fen: int
    hand_back_fen: int

    @property
    def full(self) -> bool:
        return self.remaining_bill_fen == 0

    @property
    def returned_value_fen(self) -> int:
        return self.returned * self.face_value_fen

    @property
    def kept_value_fen(self) -> int:
        return self.kept * self.face_value_fen


def preview_refund(r: Redemption, campaign: Campaign, refund_fen: int) -> RefundPreview:
    """Rule F2: what refunding ``refund_fen`` of the current bill does. Raises
    ``refund_invalid`` if the amount is not from 0.01 元 to the whole current bill, and
    ``already_refunded`` if no voucher is left on the bill (the server would refuse both)."""
    live = r.live_voucher_count
    if live < 1:
        raise AlreadyRefunded()
    if refund_fen <= 0 or refund_fen > r.current_bill_fen:
        raise RefundInvalid(
            "The refund must be more than 0 and at most the bill.",
            bill_fen=r.current_bill_fen,
            refund_fen=refund_fen,
        )
    remaining = r.current_bill_fen - refund_fen
    kept, returned = partial_refund_split(
        campaign, live, remaining, bill_fen=r.current_bill_fen
    )  # rule F2
    paid = cash_paid_fen(r)
    owed = max(0, remaining - kept * r.face_value_fen)  # rule U3
    return RefundPreview(
        redemption_id=r.redemption_id,
        bill_fen=r.current_bill_fen,
        refund_fen=refund_fen,
        remaining_bill_fen=remaining,
        kept=kept,
        returned=returned,
        face_value_fen=r.face_value_fen,
        cash_paid_fen=paid,
        owed_fen=owed,
        hand_back_fen=max(0, paid - owed),
    )


def handed_back_fen(before: Redemption, after: Redemption) -> int:
    """The cash a refund handed back, from the server's answers before and after it."""
    return max(0, cash_paid_fen(before) - cash_paid_fen(after))


def shown_status(r: Redemption) -> str:
    """The status the cashier sees: a refund that returned no voucher still changed the bill,
    so it reads as partly refunded (the server says ``redeemed`` while no voucher came
    back; issue 11 item 5)."""
    if r.status == "redeemed" and r.refunds:
        return "partially_refunded"
    return r.status
