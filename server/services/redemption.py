"""The till's quote and redemption (rules U1-U7), read top to bottom.

``quote``: verify the QR token, read the context (batched with other tills' reads), decide,
remember the read for the redeem of the same token.

``redeem``:

1. Verify the QR token (U5); a retry whose token has expired since still gets its first
   answer.
2. Ask Redis's guard (``server/guard.py``) to refuse a used token, mark the key in flight and
   take the citizen's lock. Redis only makes contention cheap; the ledger decides (U7).
3. Fast path, the citizen's lock held (Redis's, or this process's while Redis is
   unavailable): decide from what the quote read (else one read, batched), then one atomic
   write batched with other tills' bills.
4. Slow path, when the fast one could not write (the lock not had in time, the batch refused,
   a remembered read refused): under the citizen's row lock, the key's stored answer, a
   fresh read, the decision and the write, decided again when the ledger moved meanwhile.
5. A refusal is kept under the key (U7), so a retry gets the same answer.
6. Tell the guard the outcome, after the answer is on its way.

The decision is ``shared.redemption``; the SQL is ``server.db.redemptions``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import partial

from server.db import Conn
from server.db import redemptions as db
from server.db.redemptions import ContextQuery, RedemptionRecord
from server.services import guarded
from server.services.guarded import Refused as Refused
from server.services.ports import TillPorts
from shared import redemption as decisions
from shared import rules
from shared.errors import (
    BillAlreadyRedeemed,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    TokenReplayed,
    VoucherError,
)
from shared.redemption import Decision, MustDecideAgain, TillContext
from shared.rules import Quote as Allowance
from shared.tokens import QrClaims
from shared.values import value

RETRIES = 3  # decisions of one bill on the slow path before "busy, retry with the same key"
# what the ledger's write refuses with (``server.db.redemptions.write_redemptions``)
WRITE_REFUSALS = (MustDecideAgain, TokenReplayed, BillAlreadyRedeemed, IdempotencyKeyInUse)


@value
class Quote:
    """What a till asks before the bill: how many vouchers may this QR code use on it?"""

    terminal_id: int
    token: str
    bill_fen: int
    receipt_no: str | None = None  # normalised (U4): refused here if taken today


@value
class Quoted:
    decision: Decision
    allowance: Allowance
    bill_fen: int
    token_expires_at: datetime


@value
class Redeem:
    """What a till asks to redeem. ``digest`` identifies the request under ``key`` (U7)."""

    terminal_id: int
    key: str
    digest: bytes
    bill_fen: int
    receipt_no: str  # normalised (U4)
    count: int
    token: str


@value
class Redeemed:
    redemption: RedemptionRecord
    replay: bool = False  # the first answer under the key, given again
    vouchers_left: int | None = None  # the citizen's usable vouchers of the campaign after it


RedeemResult = Redeemed | Refused


@value
class _Verified:
    """A ``Redeem`` with its QR token verified."""

    cmd: Redeem
    claims: QrClaims
    citizen_id: int  # the code's holder (rule U5)
    jti: uuid.UUID

    def context_query(self, now: datetime) -> ContextQuery:
        return ContextQuery(
            self.cmd.terminal_id, self.citizen_id, now, self.jti, self.cmd.receipt_no
        )


def _verify(ports: TillPorts, token: str) -> tuple[QrClaims, int, uuid.UUID]:
    claims = ports.qr_verifier.verify(token, ports.clock())  # rule U5
    return claims, claims.holder, claims.jti


async def quote(cmd: Quote, ports: TillPorts) -> Quoted:
    """Rules U1-U6: what the bill allows, and whether its receipt number is free today (U4,
    when given: refused ``bill_already_redeemed`` before the cashier takes the money).
    Changes nothing."""
    claims, citizen_id, jti = _verify(ports, cmd.token)
    now = ports.clock()
    asked = ContextQuery(cmd.terminal_id, citizen_id, now, jti, cmd.receipt_no)
    ctx = await ports.context_reads.call(asked)
    decision = decisions.decide(ctx, ports.campaigns, replay=True, receipt_no=cmd.receipt_no)
    # the redeem of this token at this till may start from what was read and decided here
    # (with as many campaigns loaded: they are only ever added, so the same ones)
    quoted = (decision, len(ports.campaigns))
    ports.quote_cache.put((cmd.terminal_id, claims.jti), quoted, claims.expires_at)
    allowance = decisions.quote(decision, cmd.bill_fen, now)  # rules U3, U6
    return Quoted(decision, allowance, cmd.bill_fen, claims.expires_at)


async def redeem(cmd: Redeem, ports: TillPorts) -> RedeemResult:
    """Rules U1-U7: move exactly the chosen vouchers to redeemed, or nothing. Raises the
    domain errors that are about the request or its key (never kept); a refusal of the bill
    is kept under the key and answered ``Refused`` (``server/services/guarded.py``)."""
    metrics = ports.metrics
    stored = partial(_stored_answer, cmd=cmd)
    try:
        claims, citizen_id, jti = _verify(ports, cmd.token)
    except VoucherError as exc:
        # a retry after the token expired still gets its first answer
        found = await guarded.stored_now(ports, stored)
        if found is not None:
            return found
        metrics.redemptions.labels(exc.code).inc()
        raise
    asked = _Verified(cmd, claims, citizen_id, jti)
    return await guarded.under_guard(
        ports,
        guarded.Keyed(cmd.terminal_id, cmd.key, cmd.digest),
        claims,
        work=lambda locked: _redeem_in_ledger(ports, asked, locked=locked),
        stored=stored,
        succeeded=lambda result: isinstance(result, Redeemed),
        count=lambda code: metrics.redemptions.labels(code).inc(),
    )


async def _redeem_in_ledger(ports: TillPorts, asked: _Verified, *, locked: bool) -> RedeemResult:
    """Fast path (the citizen's lock held): decide from what this till's quote of the same
    token read (else one read, batched with other tills' reads), then one atomic write batched
    with other tills' bills. The write re-checks vouchers, terminal, merchant and citizen; if
    anything moved in between (another process, say), the batch deadlocked, or the fast path
    refused from a remembered read, the redemption is decided again from a fresh read under
    the citizen's row lock, where a deadlock is tried again too, never answered 500."""
    now = ports.clock()
    quoted = ports.quote_cache.take((asked.cmd.terminal_id, asked.claims.jti), now)
    if locked:
        try:
            if quoted is None:
                ctx = await ports.context_reads.call(asked.context_query(now))
                bill = _decide_bill(ports, asked, ctx, now)
            else:
                decided, campaigns = quoted
                ctx = decided.ctx
                # the quote's decision on this very read (rules U1, U2, U4, V2, X1, U5),
                # unless a campaign was loaded since; the redeem's receipt number cannot
                # change it: the quote refused a read whose receipt number was taken
                same = campaigns == len(ports.campaigns)
                bill = _decide_bill(ports, asked, ctx, now, decided if same else None)
        except VoucherError:
            if quoted is None:
                raise
            bill = None  # refused from a remembered read: decide again from a fresh one
        if bill is not None:
            redemption_id = await ports.redeem_writes.call(bill)
            if redemption_id is not None:
                assert ctx is not None  # a bill was decided on it
                return _redeemed(ports, bill, ctx, redemption_id)
    return await _redeem_alone(ports, asked, now)


async def _redeem_alone(ports: TillPorts, asked: _Verified, now: datetime) -> RedeemResult:
    """Slow path: one bill in its own transaction, under the citizen's row lock."""
    async with ports.pool.acquire() as conn:
        for _ in range(RETRIES):
            try:
                async with conn.transaction():
                    await db.lock_citizen(conn, asked.citizen_id)
                    # rule U7: a key that already has its answer (Redis could not say so)
                    stored = await _stored_answer(conn, now, cmd=asked.cmd)
                    if stored is not None:
                        return stored
                    ctx = await db.read_context(conn, asked.context_query(now))
                    bill = _decide_bill(ports, asked, ctx, now)
                    (redemption_id,) = await db.write_redemptions(conn, [bill])
            except (
                MustDecideAgain,
                TokenReplayed,
                BillAlreadyRedeemed,
                IdempotencyKeyInUse,
            ) as exc:
                # a concurrent request under the same key may have written first (U7)
                stored = await _stored_answer(conn, now, cmd=asked.cmd)
                if stored is not None:
                    return stored
                if isinstance(exc, MustDecideAgain):
                    continue  # a voucher taken, the ledger changed, a deadlock: again
                raise
            assert ctx is not None  # a bill was decided on it
            return _redeemed(ports, bill, ctx, redemption_id)
    raise IdempotencyKeyInUse("the citizen's vouchers are busy; retry with the same key")


def _decide_bill(
    ports: TillPorts,
    asked: _Verified,
    ctx: TillContext | None,
    now: datetime,
    decided: Decision | None = None,
) -> db.Redemption:
    """Rules U1-U6 on one read of the ledger: the bill as it is to be written. ``decided``:
    what ``decisions.decide`` already said of this read, with these campaigns."""
    cmd = asked.cmd
    decision = decided
    if decision is None:
        decision = decisions.decide(ctx, ports.campaigns, replay=True, receipt_no=cmd.receipt_no)
    return db.Redemption(
        now=now,
        voucher_ids=decisions.choose(decision, cmd.count, cmd.bill_fen, now),  # rules U3, U6
        citizen_id=decision.citizen_id,
        jti=asked.jti,
        jti_expires_at=asked.claims.expires_at,
        campaign_id=decision.campaign.id,
        merchant_id=decision.ctx.merchant_id,
        terminal_id=cmd.terminal_id,
        receipt_no=cmd.receipt_no,
        bill_fen=cmd.bill_fen,
        spend_threshold_fen=decision.campaign.spend_threshold_fen,
        face_value_fen=decision.campaign.face_value_fen,
        idempotency_key=cmd.key,
        request_hash=cmd.digest,
    )


def _redeemed(
    ports: TillPorts, bill: db.Redemption, ctx: TillContext, redemption_id: int
) -> Redeemed:
    ports.metrics.redemptions.labels("ok").inc()
    ports.metrics.vouchers_redeemed.inc(len(bill.voucher_ids))
    # everything the answer says is known here: no need to read the row back
    return Redeemed(
        RedemptionRecord(
            id=redemption_id,
            campaign_id=bill.campaign_id,
            merchant_id=bill.merchant_id,
            merchant_name=ctx.merchant_name,
            terminal_id=bill.terminal_id,
            terminal_label=ctx.terminal_label,
            citizen_id=bill.citizen_id,
            id_masked=ctx.id_masked or "",
            receipt_no=bill.receipt_no,
            business_date=rules.business_date(bill.now),  # rule U4
            bill_fen=bill.bill_fen,
            current_bill_fen=bill.bill_fen,
            face_value_fen=bill.face_value_fen,
            spend_threshold_fen=bill.spend_threshold_fen,
            voucher_count=len(bill.voucher_ids),
            refunded_count=0,
            voucher_ids=bill.voucher_ids,
            returned_ids=(),
            settlement_id=None,
            idempotency_key=bill.idempotency_key,
            request_hash=bill.request_hash,
            created_at=bill.now,
        ),
        vouchers_left=decisions.vouchers_left(
            ctx, bill.campaign_id, len(bill.voucher_ids), bill.now
        ),
    )


async def _stored_answer(conn: Conn, now: datetime, *, cmd: Redeem) -> RedeemResult | None:
    """Rule U7: the same key and body get the first answer, the redemption or the refusal kept
    under the key (with the citizen's vouchers left as of ``now``); another body is refused
    ``idempotency_key_reused``."""
    row = await db.by_idempotency_key(conn, cmd.terminal_id, cmd.key)
    if row is not None:
        if row.request_hash != cmd.digest:
            raise IdempotencyKeyReused("this Idempotency-Key was used for another request")
        left = await db.usable_vouchers(conn, row.citizen_id, row.campaign_id, now)
        return Redeemed(row, replay=True, vouchers_left=left)
    return await guarded.kept_refusal(conn, guarded.Keyed(cmd.terminal_id, cmd.key, cmd.digest))
