"""A refund at the till (rules F1-F3), read top to bottom: under the redemption's row lock,
the key's earlier refund (U7), or the manager's approval of this very refund where the
merchant asks for one (issue 11 item 5), the decision
(``shared.redemption.vouchers_returned``) and the write; then the redemption as it now
stands. And the approval itself: a manager signed in at the till approves one refund."""

from __future__ import annotations

from dataclasses import dataclass

from server.db import parties
from server.db import redemptions as db
from server.services.ports import Ports, TillPorts
from server.services.till_reads import RedemptionView, own_redemption, view
from shared.errors import ApprovalForAnotherRefund, IdempotencyKeyReused, ManagerApprovalRequired
from shared.redemption import vouchers_returned

MERCHANT_MANAGER = "merchant_manager"  # server.auth.Role.MERCHANT_MANAGER


@dataclass(frozen=True, slots=True)
class ApprovedRefund:
    """The one refund an approval is for (issue 11 item 5): at one till (None: staff of the
    merchant refunding in person), of one bill, down to one amount, under one idempotency
    key. The ledger makes at most one refund per till and key (and answers the same key
    again with that refund), so an approval bound to a key approves one refund, once."""

    terminal_id: int | None
    redemption_id: int
    remaining_bill_fen: int
    key: str


@dataclass(frozen=True, slots=True)
class Approval:
    """Who approves a refund, and which: the manager of a refund approval a till sent in
    ``Manager-Approval``, or the manager refunding in person (their role, merchant and
    account); or, with ``role`` empty, why it approves nothing (``problem``: ``invalid``,
    ``expired``, ``disabled``)."""

    role: str = ""
    merchant_id: int | None = None
    account_id: int | None = None
    problem: str = ""
    refund: ApprovedRefund | None = None


@dataclass(frozen=True, slots=True)
class Refund:
    """Refund a bill down to ``remaining_bill_fen``. ``terminal_id`` None: staff of the
    merchant refund on behalf of the redemption's terminal (the key's scope). ``approval``:
    the manager's approval a till sent, or the manager in person; None: none."""

    redemption_id: int
    merchant_id: int | None
    terminal_id: int | None
    key: str
    digest: bytes
    remaining_bill_fen: int
    approval: Approval | None = None

    @property
    def asked(self) -> ApprovedRefund:
        """The refund this request asks for, as an approval names it."""
        return ApprovedRefund(
            self.terminal_id, self.redemption_id, self.remaining_bill_fen, self.key
        )


def _shops_manager(approval: Approval, merchant_id: int) -> None:
    """Rule X2 with issue 11 item 5: a valid approval of a manager of this very merchant."""
    if not approval.role:
        raise ManagerApprovalRequired(
            "The manager's approval is not valid (or has expired): the manager must approve "
            "again at the till.",
            reason=approval.problem or "invalid",
        )
    if approval.role != MERCHANT_MANAGER or approval.merchant_id != merchant_id:
        raise ManagerApprovalRequired(
            "Only a manager of this shop can approve its refunds.", reason="not_this_shops_manager"
        )


def approving_manager(cmd: Refund, merchant_id: int) -> int | None:
    """Issue 11 item 5: the account of the merchant manager who approves this refund: a
    refund approval a till sent, or the manager refunding in person. Refused
    ``manager_approval_required`` (``details.reason`` says what was wrong) unless it is a
    valid approval of a manager of this very merchant, and ``approval_for_another_refund``
    (``details.differs``) unless it approves this very refund."""
    approval = cmd.approval
    if approval is None:
        raise ManagerApprovalRequired(reason="missing")
    _shops_manager(approval, merchant_id)
    approved, asked = approval.refund, cmd.asked
    if approved != asked:
        differs = [
            name
            for name in ("terminal_id", "redemption_id", "remaining_bill_fen", "key")
            if approved is None or getattr(approved, name) != getattr(asked, name)
        ]
        raise ApprovalForAnotherRefund(differs=differs)
    return approval.account_id


@dataclass(frozen=True, slots=True)
class ApproveRefund:
    """A manager, signed in at a till (``approver``), approves the refund ``refund`` of that
    till's merchant (``merchant_id``)."""

    approver: Approval
    merchant_id: int
    refund: ApprovedRefund


async def approve(cmd: ApproveRefund, ports: Ports) -> ApprovedRefund:
    """Issue 11 item 5: the manager is one of this shop's, and the bill is this shop's (a
    bill of another does not exist for its tills, rule X2). What is approved is the refund
    named, nothing else; the refund itself checks the rules (F1-F3) when it is made."""
    _shops_manager(cmd.approver, cmd.merchant_id)
    async with ports.pool.acquire() as conn:
        own_redemption(cmd.merchant_id, await db.get(conn, cmd.refund.redemption_id))
    return cmd.refund


async def refund(cmd: Refund, ports: TillPorts) -> RedemptionView:
    """Rules F1-F3: return vouchers of a bill refunded down to ``remaining_bill_fen``; the
    same key and body again change nothing and get the redemption as it stands (U7), with
    no approval asked again. A new refund of a merchant whose setting asks for it needs a
    manager's approval (issue 11 item 5), checked before anything is written."""
    now = ports.clock()
    async with ports.pool.acquire() as conn:
        async with conn.transaction():
            row = own_redemption(cmd.merchant_id, await db.lock_for_refund(conn, cmd.redemption_id))
            terminal_id = cmd.terminal_id or row.terminal_id
            previous = await db.refund_by_key(conn, terminal_id, cmd.key)
            if previous is not None:
                if previous.request_hash != cmd.digest:
                    raise IdempotencyKeyReused("this Idempotency-Key was used for another request")
            else:
                settings = await parties.merchant_settings(conn, row.merchant_id)
                approved_by = None
                if settings is not None and settings.refund_needs_manager:
                    approved_by = approving_manager(cmd, row.merchant_id)
                returned_ids = vouchers_returned(
                    ports.campaigns[row.campaign_id],
                    await db.live_items(conn, row.id),
                    cmd.remaining_bill_fen,
                    bill_fen=row.current_bill_fen,
                    settled=row.settlement_id is not None,
                )  # rules F2, F3
                await db.write_refund(
                    conn,
                    redemption_id=row.id,
                    terminal_id=terminal_id,
                    remaining_bill_fen=cmd.remaining_bill_fen,
                    returned_ids=returned_ids,
                    idempotency_key=cmd.key,
                    request_hash=cmd.digest,
                    now=now,
                    approved_by=approved_by,
                )
        after = await db.get(conn, cmd.redemption_id)
        assert after is not None
        return await view(conn, after)
