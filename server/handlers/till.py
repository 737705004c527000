"""At the till: quote, redeem, refund, look a redemption up, and the merchant's day.

HTTP only: each handler parses the request into a typed command, calls one service
(``server/services/``) and turns the result into JSON; a domain error becomes its answer at
the edge (``server/web.py``)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Any

import msgspec
from aiohttp import web

from server.auth import (
    REFUND_APPROVAL_TTL_S,
    Principal,
    RefundGrant,
    Role,
    approval_of,
    issue_refund_approval,
    principal_of,
    requires,
)
from server.db.redemptions import RedemptionRecord, RefundRecord
from server.handlers.people import staff_principal
from server.handlers.ports import ports_of, till_ports_of
from server.schemas import (
    FindRedemptionQuery,
    MerchantDayQuery,
    QuoteRequest,
    RedeemRequest,
    RefundApprovalRequest,
    RefundRequest,
)
from server.services import merchant_pages, redemption, refunds, till_reads
from server.services.till_reads import ByKey, ByReceipt, RedemptionView
from server.web import (
    CLOCK,
    ERROR_CODE,
    SETTINGS,
    error_body,
    json_answer,
    path_id,
    read_body_as,
    read_query,
    status_of,
)
from shared import rules
from shared.errors import InvalidRequest, ManagerApprovalRequired, Unauthenticated, VoucherError

NO_SUCH_REDEMPTION = "no such redemption at this merchant"


# msgspec's C encoder writes an aware datetime as ``isoformat`` does, in a fifth of the
# instructions (issue 15), but "Z" for a zero offset and whole minutes only: every zone's
# offset has been whole minutes since 1972 (Liberia's -0:44:30 was the last); an earlier
# moment is written by ``isoformat`` itself (tests/unit/test_answers.py compares them)
_ISO = msgspec.json.Encoder()
_WHOLE_MINUTES_SINCE = datetime(1973, 1, 1, tzinfo=UTC)


def _iso(moment: datetime, tz: tzinfo) -> str:
    """``moment.astimezone(tz).isoformat()``, the same text."""
    local = moment.astimezone(tz)
    if moment < _WHOLE_MINUTES_SINCE:
        return local.isoformat()
    text = _ISO.encode(local)[1:-1].decode()
    return text[:-1] + "+00:00" if text[-1] == "Z" else text


def _iso_date(day: date) -> str:
    """``day.isoformat()``, the same text (msgspec's, as ``_iso``)."""
    return _ISO.encode(day)[1:-1].decode()


def idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise InvalidRequest("send an Idempotency-Key header of 1 to 255 printable characters")
    return key


VOUCHER_CODE = "Voucher-Code"


def voucher_code(request: web.Request) -> str | None:
    """Rule U7, issue 14: the QR code of the request a till asks after by its key, sent in a
    header, not the query string: a code is a bearer credential for its remaining seconds and
    must not land in access logs. None when not sent."""
    return request.headers.get(VOUCHER_CODE) or None


# the canonical form of a body: its fields sent, by wire name, sorted, compact, UTF-8; the
# same bytes as ``json.dumps(fields, sort_keys=True, separators=(",", ":"),
# ensure_ascii=False)``, which made the hashes kept before (tests/unit/test_answers.py)
_CANONICAL = msgspec.json.Encoder(order="sorted")


def request_hash(request: web.Request, body: msgspec.Struct) -> bytes:
    """Rule U7: what identifies a request under its idempotency key."""
    head = f"{request.method} {request.path}\n".encode()
    return hashlib.sha256(head + _CANONICAL.encode(body)).digest()


def kept_answer(exc: VoucherError) -> tuple[int, dict[str, Any]]:
    """Rule U7: the status and body a refused redemption is kept under and answered with."""
    return status_of(exc), error_body(exc.code, exc.message, exc.details)


def _terminal(request: web.Request) -> int:
    terminal_id = principal_of(request).terminal_id
    assert terminal_id is not None  # a cashier's token names its terminal
    return terminal_id


@requires(Role.CASHIER)
async def quote(request: web.Request) -> web.Response:
    """Rules U1-U6: what the bill allows, and (U4) whether its receipt number, when sent, is
    free today. Changes nothing."""
    body = await read_body_as(request, QuoteRequest)
    receipt_no = body.receipt_no
    cmd = redemption.Quote(
        _terminal(request),
        body.token,
        body.bill_fen,
        None if receipt_no is None else rules.normalise_receipt_no(receipt_no),  # rule U4
    )
    tills = till_ports_of(request)
    quoted = await redemption.quote(cmd, tills)
    ctx, q = quoted.decision.ctx, quoted.allowance
    campaign = quoted.decision.campaign
    return json_answer(
        {
            "citizen": {"masked_id": ctx.id_masked},
            "campaign_id": campaign.id,
            "bill_fen": quoted.bill_fen,
            "face_value_fen": campaign.face_value_fen,
            "spend_threshold_fen": campaign.spend_threshold_fen,
            "available_count": q.available_count,
            "max_by_bill": q.max_by_bill,
            "usable_count": q.usable_count,
            "value_fen": q.value_fen,
            "remaining_fen": q.remaining_fen,
            "merchant": {"id": ctx.merchant_id, "name": ctx.merchant_name},
            "token_expires_at": _iso(quoted.token_expires_at, tills.tz),
        }
    )


@requires(Role.CASHIER)
async def redeem(request: web.Request) -> web.Response:
    """Rules U1-U7: move exactly the chosen vouchers to redeemed, or nothing."""
    terminal_id = _terminal(request)
    key = idempotency_key(request)
    body = await read_body_as(request, RedeemRequest)
    cmd = redemption.Redeem(
        terminal_id=terminal_id,
        key=key,
        digest=request_hash(request, body),
        bill_fen=body.bill_fen,
        receipt_no=rules.normalise_receipt_no(body.receipt_no),  # rule U4
        count=body.voucher_count,
        token=body.token,
    )
    tills = till_ports_of(request)
    result = await redemption.redeem(cmd, tills)
    replay = {"Idempotent-Replay": "true"} if result.replay else None
    if isinstance(result, redemption.Refused):
        request[ERROR_CODE] = result.code
        return json_answer(result.answer, status=result.status, headers=replay)
    body_out = redemption_body(result.redemption, tills.tz)
    if result.vouchers_left is not None:
        body_out["citizen"]["vouchers_left"] = result.vouchers_left
    return json_answer(body_out, status=201, headers=replay)


def redemption_body(
    row: RedemptionRecord,
    tz: tzinfo,
    refunds: Sequence[RefundRecord] | None = None,
    cash_back_fen: Sequence[int] = (),
) -> dict[str, Any]:
    live = row.live_count
    if row.refunded_count == 0:
        status = "redeemed"
    elif live == 0:
        status = "refunded"
    else:
        status = "partially_refunded"
    body: dict[str, Any] = {
        "redemption_id": row.id,
        "campaign_id": row.campaign_id,
        "merchant": {"id": row.merchant_id, "name": row.merchant_name},
        "terminal": {"id": row.terminal_id, "label": row.terminal_label},
        "citizen": {"masked_id": row.id_masked},
        "receipt_no": row.receipt_no,
        "business_date": _iso_date(row.business_date),
        "bill_fen": row.bill_fen,
        "current_bill_fen": row.current_bill_fen,
        "face_value_fen": row.face_value_fen,
        "voucher_count": row.voucher_count,
        "value_fen": row.voucher_count * row.face_value_fen,
        "remaining_fen": row.bill_fen - row.voucher_count * row.face_value_fen,
        "refunded_count": row.refunded_count,
        "live_voucher_count": live,
        "voucher_ids": list(row.voucher_ids),
        "returned_voucher_ids": list(row.returned_ids),
        "status": status,
        "settled": row.settlement_id is not None,
        "created_at": _iso(row.created_at, tz),
    }
    if refunds is not None:
        body["refunds"] = [
            {
                "refund_id": f.id,
                "remaining_bill_fen": f.remaining_bill_fen,
                "returned_count": f.returned_count,
                "cash_back_fen": back,
                "voucher_ids": list(f.voucher_ids),
                "created_at": _iso(f.created_at, tz),
            }
            for f, back in zip(refunds, cash_back_fen, strict=True)
        ]
    return body


def _viewed(found: RedemptionView, tz: tzinfo, status: int = 200) -> web.Response:
    body = redemption_body(found.redemption, tz, found.refunds, found.cash_back_fen)
    return json_answer(body, status=status)


@requires(Role.CASHIER, Role.MERCHANT_MANAGER)
async def get_redemption(request: web.Request) -> web.Response:
    redemption_id = path_id(request, "redemption_id", NO_SUCH_REDEMPTION)
    tills = till_ports_of(request)
    merchant_id = principal_of(request).merchant_id
    return _viewed(await till_reads.get_redemption(redemption_id, merchant_id, tills), tills.tz)


@requires(Role.CASHIER, Role.MERCHANT_MANAGER)
async def find_redemption(request: web.Request) -> web.Response:
    """By receipt number (a merchant's bill) or, for a terminal that lost an answer, by the
    Idempotency-Key it sent, with that request's QR code in ``Voucher-Code``
    (``till_reads.ByKey``)."""
    me = principal_of(request)
    query = read_query(request, FindRedemptionQuery)
    receipt, key = query.receipt_no, query.idempotency_key
    asked: ByReceipt | ByKey
    if (receipt is None) == (key is None):
        raise InvalidRequest("ask by exactly one of receipt_no or idempotency_key")
    if receipt is not None:
        assert me.merchant_id is not None
        asked = ByReceipt(
            me.merchant_id,
            rules.normalise_receipt_no(receipt),  # rule U4
            query.date,
            query.terminal_id,
            me.terminal_id,
        )
    elif me.terminal_id is None:
        raise InvalidRequest("only a terminal can ask by its idempotency key")
    else:
        asked = ByKey(me.merchant_id, me.terminal_id, key or "", voucher_code(request))
    tills = till_ports_of(request)
    return _viewed(await till_reads.find_redemption(asked, tills), tills.tz)


def _approval(
    request: web.Request, me: Principal, asked: refunds.ApprovedRefund
) -> refunds.Approval | None:
    """Issue 11 item 5: a manager refunding in person approves this very refund; a till sends
    the refund approval a manager gave it at the till (``Manager-Approval``)."""
    if me.role is Role.MERCHANT_MANAGER:
        return refunds.Approval(str(me.role), me.merchant_id, me.account_id, refund=asked)
    sent = approval_of(request)
    if sent is None:
        return None
    grant, problem = sent
    if grant is None:
        return refunds.Approval(problem=problem)
    who = grant.approver
    approved = refunds.ApprovedRefund(
        grant.terminal_id, grant.redemption_id, grant.remaining_bill_fen, grant.key
    )
    return refunds.Approval(str(who.role), who.merchant_id, who.account_id, refund=approved)


@requires(Role.CASHIER, Role.MERCHANT_MANAGER)
async def refund(request: web.Request) -> web.Response:
    """Rules F1-F3: return vouchers of a bill refunded down to ``remaining_bill_fen``. Where
    the merchant asks for it, a till sends a manager's approval of this very refund (issue 11
    item 5) in the ``Manager-Approval`` header."""
    me = principal_of(request)
    key = idempotency_key(request)
    body = await read_body_as(request, RefundRequest)
    redemption_id = path_id(request, "redemption_id", NO_SUCH_REDEMPTION)
    asked = refunds.ApprovedRefund(me.terminal_id, redemption_id, body.remaining_bill_fen, key)
    cmd = refunds.Refund(
        redemption_id=redemption_id,
        merchant_id=me.merchant_id,
        terminal_id=me.terminal_id,
        key=key,
        digest=request_hash(request, body),
        remaining_bill_fen=body.remaining_bill_fen,
        approval=_approval(request, me, asked),
    )
    tills = till_ports_of(request)
    return _viewed(await refunds.refund(cmd, tills), tills.tz, status=201)


@requires(Role.CASHIER)
async def approve_refund(request: web.Request) -> web.Response:
    """Issue 11 item 5: a manager of the till's shop signs in at the till for one refund (this
    bill, down to this amount, under the refund's idempotency key) and the till gets a
    short-lived approval of that refund alone, to send as ``Manager-Approval``. The manager's
    password is checked as a sign-in is (throttled, rule X2; a wrong one is refused
    ``manager_approval_required``, reason ``wrong_password``); no access token is given."""
    me = principal_of(request)
    assert me.merchant_id is not None and me.terminal_id is not None
    body = await read_body_as(request, RefundApprovalRequest)
    redemption_id = path_id(request, "redemption_id", NO_SUCH_REDEMPTION)
    try:
        who = await staff_principal(request, body.username, body.password)
    except Unauthenticated as exc:  # the till itself is signed in (a 401 would say it is not)
        raise ManagerApprovalRequired(
            "Unknown manager or wrong password.", reason="wrong_password"
        ) from exc
    asked = refunds.ApprovedRefund(
        me.terminal_id, redemption_id, body.remaining_bill_fen, body.refund_key
    )
    cmd = refunds.ApproveRefund(
        refunds.Approval(str(who.role), who.merchant_id, who.account_id), me.merchant_id, asked
    )
    await refunds.approve(cmd, ports_of(request))
    grant = RefundGrant(who, me.terminal_id, redemption_id, body.remaining_bill_fen, asked.key)
    token = issue_refund_approval(request.app[SETTINGS], grant, request.app[CLOCK]())
    return web.json_response(
        {
            "approval": token,
            "expires_in": REFUND_APPROVAL_TTL_S,
            "approved_by": who.subject,
            "redemption_id": redemption_id,
            "remaining_bill_fen": body.remaining_bill_fen,
        },
        status=201,
        headers={"Cache-Control": "no-store"},
    )


@requires(Role.CASHIER, Role.MERCHANT_MANAGER)
async def merchant_day(request: web.Request) -> web.Response:
    """Rule S2: the merchant's redemptions and refunds of one local date, with totals."""
    me = principal_of(request)
    merchant_id = me.merchant_id
    assert merchant_id is not None
    query = read_query(request, MerchantDayQuery)
    day = query.date
    tills = till_ports_of(request)
    if query.format == "csv":
        today = tills.clock().astimezone(tills.tz).date()
        found_day = await merchant_pages.day(tills, me, merchant_id, day or today)
        return web.Response(
            text=merchant_pages.day_csv(found_day, tills.tz),
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="merchant-{merchant_id}-'
                f'{found_day.day.isoformat()}.csv"'
            },
        )
    found = await till_reads.merchant_day(merchant_id, day, tills)
    tz, totals = tills.tz, found.totals
    return json_answer(
        {
            "merchant_id": found.merchant_id,
            "date": found.day.isoformat(),
            "redemptions": [
                {
                    "redemption_id": r.id,
                    "time": _iso(r.created_at, tz),
                    "receipt_no": r.receipt_no,
                    "terminal": {"id": r.terminal_id, "label": r.terminal_label},
                    "bill_fen": r.bill_fen,
                    "voucher_count": r.voucher_count,
                    "refunded_count": r.refunded_count,
                    "value_fen": r.voucher_count * r.face_value_fen,
                    "campaign_id": r.campaign_id,
                }
                for r in found.redemptions
            ],
            "refunds": [
                {
                    "refund_id": f.id,
                    "time": _iso(f.created_at, tz),
                    "redemption_id": f.redemption_id,
                    "receipt_no": f.receipt_no,
                    "terminal_id": f.terminal_id,
                    "terminal": {"id": f.terminal_id, "label": f.terminal_label},
                    "returned_count": f.returned_count,
                    "value_fen": f.returned_count * f.face_value_fen,
                    "cash_back_fen": f.cash_back_fen,
                }
                for f in found.refunds
            ],
            "totals": {
                "bills": totals.bills,
                "vouchers": totals.vouchers,
                "value_fen": totals.value_fen,
                "bill_fen": totals.bill_fen,
                "refunds": totals.refunds,
                "returned_vouchers": totals.returned_vouchers,
                "returned_value_fen": totals.returned_value_fen,
                "net_value_fen": totals.net_value_fen,
            },
        }
    )
