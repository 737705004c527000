"""At the till: quote, redeem, refund, look a redemption up, and the merchant's day."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

import asyncpg
from aiohttp import web

from server.auth import Principal, Role, principal_of, requires
from server.db import Conn
from server.db import redemptions as db
from server.guard import Outcome
from server.schemas import FindRedemptionQuery, MerchantDayQuery
from server.web import (
    CAMPAIGNS,
    CLOCK,
    CONTEXT_READS,
    ERROR_CODE,
    GUARD,
    METRICS,
    PG,
    QR_VERIFIER,
    QUOTE_CACHE,
    REDEEM_WRITES,
    TZ,
    allowed_fields,
    error_body,
    get_int,
    get_str,
    path_id,
    read_json,
    read_query,
    status_of,
)
from shared import rules
from shared.campaign import Campaign
from shared.errors import (
    AlreadyRefunded,
    BillAlreadyRedeemed,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidRequest,
    NotEnoughVouchers,
    NotFound,
    TerminalDisabled,
    TokenInvalid,
    TokenReplayed,
    VoucherError,
    VoucherExpired,
    WrongDistrict,
)
from shared.money import parse_fen
from shared.tokens import QrClaims

log = logging.getLogger(__name__)

MAX_VOUCHERS_PER_BILL = 100_000  # far above any real bill; U3 sets the real bound
_RETRIES = 3


def _iso(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).isoformat()


def idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise InvalidRequest("send an Idempotency-Key header of 1 to 255 printable characters")
    return key


def request_hash(request: web.Request, body: dict[str, Any]) -> bytes:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).digest()


def _verify(request: web.Request, token: str) -> tuple[QrClaims, uuid.UUID, uuid.UUID]:
    claims = request.app[QR_VERIFIER].verify(token, request.app[CLOCK]())  # rule U5
    try:
        subject = uuid.UUID(claims.subject)
    except ValueError as exc:
        raise TokenInvalid("the QR code names no citizen", reason="subject") from exc
    return claims, subject, uuid.UUID(claims.jti)


def _usable_campaigns(request: web.Request, district: str) -> dict[str, Campaign]:
    return {cid: c for cid, c in request.app[CAMPAIGNS].items() if district in c.usable_districts}


class Decision:
    """What the rules decided for one bill, from one read of the ledger."""

    def __init__(
        self,
        ctx: asyncpg.Record,
        campaign: Campaign,
        views: list[rules.VoucherView],
    ) -> None:
        self.ctx = ctx
        self.campaign = campaign
        self.views = views


def decide(
    request: web.Request, ctx: asyncpg.Record | None, held: list[db.HeldVoucher], *, replay: bool
) -> Decision:
    """Rules U1, U2, V2, X1 and U5 (replay) on the context; U3/U6 are for the caller."""
    if ctx is None or ctx["terminal_status"] != "active":
        raise TerminalDisabled()  # rule U1
    if ctx["citizen_id"] is None:
        raise TokenInvalid("the QR code names no citizen of this programme", reason="subject")
    if replay and ctx["token_used"]:
        raise TokenReplayed("this QR code was already used; ask the citizen to refresh it")
    rules.check_participation(ctx["citizen_status"] == "revoked")  # rule X1
    usable = _usable_campaigns(request, ctx["district"])
    here = [v for v in held if v.campaign_id in usable]
    if held and not here:
        raise WrongDistrict(district=ctx["district"])  # rule U2
    if not here:
        if ctx["expired_count"]:
            raise VoucherExpired("the citizen's vouchers have expired")  # rule V2
        raise NotEnoughVouchers(requested=1, available=0)
    # rule U4: one campaign per bill; the campaign of the earliest-expiring voucher (U6)
    campaign = usable[here[0].campaign_id]
    rules.check_merchant(
        campaign,
        ctx["district"],
        ctx["admitted"],
        ctx["permitted"],
        ctx["merchant_status"] == "suspended",
    )  # rules U1, U2
    views = [
        rules.VoucherView(v.id, v.expires_at, v.face_value_fen)
        for v in here
        if v.campaign_id == campaign.id
    ]
    return Decision(ctx, campaign, views)


def quote_body(decision: Decision, bill_fen: int, now: datetime) -> dict[str, Any]:
    q = rules.quote(decision.campaign, bill_fen, decision.views, now)  # rules U3, U6
    return {
        "citizen": {"masked_id": decision.ctx["id_masked"]},
        "campaign_id": decision.campaign.id,
        "bill_fen": bill_fen,
        "face_value_fen": decision.campaign.face_value_fen,
        "spend_threshold_fen": decision.campaign.spend_threshold_fen,
        "available_count": q.available_count,
        "max_by_bill": q.max_by_bill,
        "usable_count": q.usable_count,
        "value_fen": q.value_fen,
        "remaining_fen": q.remaining_fen,
        "merchant": {"id": decision.ctx["merchant_id"], "name": decision.ctx["merchant_name"]},
    }


@requires(Role.CASHIER)
async def quote(request: web.Request) -> web.Response:
    """Rules U1-U6: what the bill allows. Changes nothing."""
    me = principal_of(request)
    body = await read_json(request)
    allowed_fields(body, "token", "bill_fen")
    bill_fen = parse_fen(body.get("bill_fen"), positive=True, field="bill_fen")
    token = get_str(body, "token", max_len=2048)
    claims, subject, jti = _verify(request, token)
    now = request.app[CLOCK]()
    assert me.terminal_id is not None
    ctx, held = await request.app[CONTEXT_READS].call(
        db.ContextQuery(me.terminal_id, subject, now, jti)
    )
    decision = decide(request, ctx, held, replay=True)
    # the redeem of this token at this till may start from what was read here
    request.app[QUOTE_CACHE].put((me.terminal_id, claims.jti), (ctx, held), claims.expires_at)
    answer = quote_body(decision, bill_fen, now)
    answer["token_expires_at"] = _iso(claims.expires_at, request.app[TZ])
    return web.json_response(answer)


def redemption_body(
    row: Mapping[str, Any] | asyncpg.Record, tz: tzinfo, refunds: list[asyncpg.Record] | None = None
) -> dict[str, Any]:
    live = row["voucher_count"] - row["refunded_count"]
    if row["refunded_count"] == 0:
        status = "redeemed"
    elif live == 0:
        status = "refunded"
    else:
        status = "partially_refunded"
    body: dict[str, Any] = {
        "redemption_id": row["id"],
        "campaign_id": row["campaign_id"],
        "merchant": {"id": row["merchant_id"], "name": row["merchant_name"]},
        "terminal": {"id": row["terminal_id"], "label": row["terminal_label"]},
        "citizen": {"masked_id": row["id_masked"]},
        "receipt_no": row["receipt_no"],
        "bill_fen": row["bill_fen"],
        "current_bill_fen": row["current_bill_fen"],
        "face_value_fen": row["face_value_fen"],
        "voucher_count": row["voucher_count"],
        "value_fen": row["voucher_count"] * row["face_value_fen"],
        "remaining_fen": row["bill_fen"] - row["voucher_count"] * row["face_value_fen"],
        "refunded_count": row["refunded_count"],
        "live_voucher_count": live,
        "voucher_ids": list(row["voucher_ids"] or []),
        "returned_voucher_ids": list(row["returned_ids"] or []),
        "status": status,
        "settled": row["settlement_id"] is not None,
        "created_at": _iso(row["created_at"], tz),
    }
    if refunds is not None:
        body["refunds"] = [
            {
                "refund_id": f["id"],
                "remaining_bill_fen": f["remaining_bill_fen"],
                "returned_count": f["returned_count"],
                "voucher_ids": list(f["voucher_ids"] or []),
                "created_at": _iso(f["created_at"], tz),
            }
            for f in refunds
        ]
    return body


async def _stored_answer(
    conn: Conn, terminal_id: int, key: str, digest: bytes, tz: tzinfo
) -> web.Response | None:
    """Rule U7: the same key and body get the first answer, the redemption or the refusal kept
    under the key; another body gets 422."""
    row = await db.by_idempotency_key(conn, terminal_id, key)
    if row is not None:
        if bytes(row["request_hash"]) != digest:
            raise IdempotencyKeyReused("this Idempotency-Key was used for another request")
        return web.json_response(
            redemption_body(row, tz), status=201, headers={"Idempotent-Replay": "true"}
        )
    refused = await db.refusal_by_key(conn, terminal_id, key)
    if refused is None:
        return None
    if bytes(refused["request_hash"]) != digest:
        raise IdempotencyKeyReused("this Idempotency-Key was used for another request")
    return web.json_response(
        json.loads(refused["answer"]),
        status=refused["status"],
        headers={"Idempotent-Replay": "true"},
    )


async def _keep_refusal(
    request: web.Request, terminal_id: int, key: str, digest: bytes, exc: VoucherError
) -> web.Response:
    """Rule U7, as payment APIs do it: a redemption that began and was refused keeps its
    answer under its key, and a retry with the same key and body gets that answer even if the
    ledger changed since. A redemption made under the same key by a concurrent request (Redis
    down) comes first."""
    status, answer = status_of(exc), error_body(exc.code, exc.message, exc.details)
    request[ERROR_CODE] = exc.code
    async with request.app[PG].acquire() as conn:
        stored = await _stored_answer(conn, terminal_id, key, digest, request.app[TZ])
        if stored is not None:
            return stored
        kept = await db.keep_refusal(
            conn,
            terminal_id=terminal_id,
            key=key,
            request_hash=digest,
            status=status,
            answer=answer,
            now=request.app[CLOCK](),
        )
        if not kept:  # a concurrent request with this key kept its refusal first
            stored = await _stored_answer(conn, terminal_id, key, digest, request.app[TZ])
            if stored is not None:
                return stored
    return web.json_response(answer, status=status)


@requires(Role.CASHIER)
async def redeem(request: web.Request) -> web.Response:
    """Rules U1-U7: move exactly the chosen vouchers to redeemed, or nothing."""
    me = principal_of(request)
    assert me.terminal_id is not None
    key = idempotency_key(request)
    body = await read_json(request)
    allowed_fields(body, "token", "bill_fen", "receipt_no", "voucher_count")
    bill_fen = parse_fen(body.get("bill_fen"), positive=True, field="bill_fen")
    receipt_no = rules.normalise_receipt_no(body.get("receipt_no"))  # type: ignore[arg-type]
    count = get_int(body, "voucher_count", minimum=1, maximum=MAX_VOUCHERS_PER_BILL)
    token = get_str(body, "token", max_len=2048)
    digest = request_hash(request, body)
    metrics = request.app[METRICS]
    pool = request.app[PG]
    try:
        claims, subject, jti = _verify(request, token)
    except VoucherError as exc:
        # a retry after the token expired still gets its first answer
        async with pool.acquire() as conn:
            stored = await _stored_answer(conn, me.terminal_id, key, digest, request.app[TZ])
        if stored is not None:
            return stored
        metrics.redemptions.labels(exc.code).inc()
        raise
    guard = request.app[GUARD]
    outcome, lock = await guard.begin(
        jti=str(jti), citizen=str(subject), terminal_id=me.terminal_id, key=key
    )
    if outcome is Outcome.UNAVAILABLE:
        metrics.redis_failures.inc()  # Redis failed or skipped; not a lock wait (BUSY)
    used = False
    try:
        if outcome in (Outcome.REPLAYED, Outcome.IN_FLIGHT):
            async with pool.acquire() as conn:
                stored = await _stored_answer(conn, me.terminal_id, key, digest, request.app[TZ])
            if stored is not None:
                return stored
            if outcome is Outcome.IN_FLIGHT:
                raise IdempotencyKeyInUse("a request with this Idempotency-Key is in progress")
            raise TokenReplayed("this QR code was already used; ask the citizen to refresh it")
        asked = Asked(
            me.terminal_id, key, digest, bill_fen, receipt_no, count, claims, subject, jti
        )
        if outcome is Outcome.UNAVAILABLE:
            # item 11: Redis down or skipped: the citizen's lock in this process instead, and
            # the batched write as with Redis's lock (the write itself fences, rule U7)
            async with guard.local_lock(str(subject)) as held:
                response = await _redeem_in_ledger(request, asked, locked=held)
        else:
            response = await _redeem_in_ledger(request, asked, locked=outcome is Outcome.OK)
        used = response.status == 201  # not when the key's first answer was a refusal
        return response
    except (IdempotencyKeyInUse, IdempotencyKeyReused) as exc:
        metrics.redemptions.labels(exc.code).inc()
        raise  # about the key, not the bill: nothing to keep
    except VoucherError as exc:
        metrics.redemptions.labels(exc.code).inc()
        return await _keep_refusal(request, me.terminal_id, key, digest, exc)
    finally:
        if outcome not in (Outcome.UNAVAILABLE, Outcome.BUSY):  # else nothing of ours there
            ttl = int((claims.expires_at - request.app[CLOCK]()).total_seconds() * 1000) + 5000
            guard.end_soon(
                token=lock,
                jti=str(jti),
                citizen=str(subject),
                terminal_id=me.terminal_id,
                key=key,
                used=used,
                jti_ttl_ms=ttl,
            )


@dataclass(frozen=True, slots=True)
class Asked:
    """What a till asked to redeem, parsed and its QR token verified."""

    terminal_id: int
    key: str
    digest: bytes
    bill_fen: int
    receipt_no: str
    count: int
    claims: QrClaims
    subject: uuid.UUID
    jti: uuid.UUID

    def context_query(self, now: datetime) -> db.ContextQuery:
        return db.ContextQuery(self.terminal_id, self.subject, now, self.jti)


async def _redeem_in_ledger(request: web.Request, asked: Asked, *, locked: bool) -> web.Response:
    """Fast path (the citizen's lock held: Redis's, or this process's while Redis is
    unavailable): decide from what this till's quote of the same token read (else one read,
    batched with other tills' reads), then one atomic write batched with other tills' bills.
    The write re-checks vouchers, terminal, merchant and citizen; if anything moved in between
    (another process, say), the batch deadlocked, or the fast path refused from a remembered
    read, the redemption is decided again from a fresh read under the citizen's row lock,
    where a deadlock is tried again too, never answered 500."""
    app = request.app
    now = app[CLOCK]()
    cache_key = (asked.terminal_id, asked.claims.jti)
    quoted = app[QUOTE_CACHE].get(cache_key, now)
    app[QUOTE_CACHE].pop(cache_key)
    if locked:
        try:
            ctx, held = quoted or await app[CONTEXT_READS].call(asked.context_query(now))
            bill = _decide_bill(request, asked, ctx, held, now)
        except VoucherError:
            if quoted is None:
                raise
            bill = None  # refused from a remembered read: decide again from a fresh one
        if bill is not None:
            redemption_id = await app[REDEEM_WRITES].call(bill)
            if redemption_id is not None:
                return _redeemed(request, bill, ctx, redemption_id)
    async with app[PG].acquire() as conn:
        for _ in range(_RETRIES):
            try:
                async with conn.transaction():
                    row = await conn.fetchrow(
                        "SELECT id FROM citizens WHERE subject = $1", asked.subject
                    )
                    if row is not None:
                        await db.lock_citizen(conn, row["id"])
                    # rule U7: a key that already has its answer (Redis could not say so)
                    stored = await _stored_answer(
                        conn, asked.terminal_id, asked.key, asked.digest, app[TZ]
                    )
                    if stored is not None:
                        return stored
                    ctx, held = await db.read_context(conn, asked.context_query(now))
                    bill = _decide_bill(request, asked, ctx, held, now)
                    (redemption_id,) = await db.write_redemptions(conn, [bill])
            except asyncpg.UniqueViolationError as exc:
                stored = await _stored_answer(
                    conn, asked.terminal_id, asked.key, asked.digest, app[TZ]
                )
                if stored is not None:
                    return stored
                constraint = exc.constraint_name or ""
                if constraint == "consumed_tokens_pkey":
                    raise TokenReplayed("this QR code was already used") from exc  # rule U5
                if "receipt_no" in constraint:
                    raise BillAlreadyRedeemed(receipt_no=asked.receipt_no) from exc  # rule U4
                if constraint == "redemption_items_one_live":
                    continue  # rule U7: someone else took a voucher; decide again
                raise
            except asyncpg.PostgresError as exc:
                if db.must_decide_again(exc):
                    continue  # ledger_changed, a deadlock or serialisation failure: again
                raise
            return _redeemed(request, bill, ctx, redemption_id)
    raise IdempotencyKeyInUse("the citizen's vouchers are busy; retry with the same key")


def _decide_bill(
    request: web.Request,
    asked: Asked,
    ctx: asyncpg.Record | None,
    held: list[db.HeldVoucher],
    now: datetime,
) -> db.Redemption:
    """Rules U1-U6 on one read of the ledger: the bill as it is to be written."""
    decision = decide(request, ctx, held, replay=True)
    chosen = rules.select_vouchers(
        decision.campaign, decision.views, asked.count, asked.bill_fen, now
    )  # rules U3, U6
    return db.Redemption(
        now=now,
        voucher_ids=tuple(sorted(int(i) for i in chosen)),
        citizen_id=decision.ctx["citizen_id"],
        jti=asked.jti,
        jti_expires_at=asked.claims.expires_at,
        campaign_id=decision.campaign.id,
        merchant_id=decision.ctx["merchant_id"],
        terminal_id=asked.terminal_id,
        receipt_no=asked.receipt_no,
        bill_fen=asked.bill_fen,
        spend_threshold_fen=decision.campaign.spend_threshold_fen,
        face_value_fen=decision.campaign.face_value_fen,
        idempotency_key=asked.key,
        request_hash=asked.digest,
    )


def _redeemed(
    request: web.Request, bill: db.Redemption, ctx: asyncpg.Record | None, redemption_id: int
) -> web.Response:
    assert ctx is not None  # a bill was decided on it
    metrics = request.app[METRICS]
    metrics.redemptions.labels("ok").inc()
    metrics.vouchers_redeemed.inc(len(bill.voucher_ids))
    # everything the answer says is known here: no need to read the row back
    written = {
        "id": redemption_id,
        "campaign_id": bill.campaign_id,
        "merchant_id": bill.merchant_id,
        "merchant_name": ctx["merchant_name"],
        "terminal_id": bill.terminal_id,
        "terminal_label": ctx["terminal_label"],
        "id_masked": ctx["id_masked"],
        "receipt_no": bill.receipt_no,
        "bill_fen": bill.bill_fen,
        "current_bill_fen": bill.bill_fen,
        "face_value_fen": bill.face_value_fen,
        "voucher_count": len(bill.voucher_ids),
        "refunded_count": 0,
        "voucher_ids": list(bill.voucher_ids),
        "returned_ids": [],
        "settlement_id": None,
        "created_at": bill.now,
    }
    return web.json_response(redemption_body(written, request.app[TZ]), status=201)


def _own_redemption(me: Principal, row: asyncpg.Record | None) -> asyncpg.Record:
    """Rule X2: a merchant's people see only that merchant's redemptions."""
    if row is None or row["merchant_id"] != me.merchant_id:
        raise NotFound("no such redemption at this merchant")
    return row


@requires(Role.CASHIER, Role.MERCHANT_MANAGER)
async def get_redemption(request: web.Request) -> web.Response:
    me = principal_of(request)
    redemption_id = path_id(request, "redemption_id", "no such redemption at this merchant")
    async with request.app[PG].acquire() as conn:
        row = _own_redemption(me, await db.get(conn, redemption_id))
        refunds = await db.refunds_of(conn, row["id"])
    return web.json_response(redemption_body(row, request.app[TZ], refunds))


@requires(Role.CASHIER, Role.MERCHANT_MANAGER)
async def find_redemption(request: web.Request) -> web.Response:
    """By receipt number (a merchant's bill) or, for a terminal that lost an answer, by the
    Idempotency-Key it sent."""
    me = principal_of(request)
    asked = read_query(request, FindRedemptionQuery)
    receipt, key = asked.receipt_no, asked.idempotency_key
    if (receipt is None) == (key is None):
        raise InvalidRequest("ask by exactly one of receipt_no or idempotency_key")
    async with request.app[PG].acquire() as conn:
        if receipt is not None:
            assert me.merchant_id is not None
            row = await db.by_receipt(conn, me.merchant_id, rules.normalise_receipt_no(receipt))
        else:
            if me.terminal_id is None:
                raise InvalidRequest("only a terminal can ask by its idempotency key")
            row = await db.by_idempotency_key(conn, me.terminal_id, key or "")
            if row is None and await request.app[GUARD].in_flight(me.terminal_id, key or ""):
                # rule U7: not "it never happened" while the first request is still at work
                raise IdempotencyKeyInUse("the request with this key is still in progress")
        row = _own_redemption(me, row)
        refunds = await db.refunds_of(conn, row["id"])
    return web.json_response(redemption_body(row, request.app[TZ], refunds))


@requires(Role.CASHIER, Role.MERCHANT_MANAGER)
async def refund(request: web.Request) -> web.Response:
    """Rules F1-F3: return vouchers of a bill refunded down to ``remaining_bill_fen``."""
    me = principal_of(request)
    key = idempotency_key(request)
    body = await read_json(request)
    allowed_fields(body, "remaining_bill_fen")
    remaining = parse_fen(body.get("remaining_bill_fen"), field="remaining_bill_fen")
    digest = request_hash(request, body)
    redemption_id = path_id(request, "redemption_id", "no such redemption at this merchant")
    # staff refund on behalf of a terminal of theirs: key scope is the redemption's terminal
    now = request.app[CLOCK]()
    async with request.app[PG].acquire() as conn:
        async with conn.transaction():
            row = _own_redemption(me, await db.lock_for_refund(conn, redemption_id))
            terminal_id = me.terminal_id or row["terminal_id"]
            previous = await db.refund_by_key(conn, terminal_id, key)
            if previous is not None:
                if bytes(previous["request_hash"]) != digest:
                    raise IdempotencyKeyReused("this Idempotency-Key was used for another request")
            else:
                rules.check_refundable(row["settlement_id"] is not None)  # rule F3
                live = row["voucher_count"] - row["refunded_count"]
                if live == 0:
                    raise AlreadyRefunded()
                campaign = request.app[CAMPAIGNS][row["campaign_id"]]
                _, returned = rules.partial_refund_split(
                    campaign, live, remaining, bill_fen=row["current_bill_fen"]
                )  # rule F2
                items = await db.live_items(conn, redemption_id)
                # return the latest-expiring first: the citizen keeps the most time [choice]
                returned_ids = [item["id"] for item in items[:returned]]
                await db.write_refund(
                    conn,
                    redemption_id=redemption_id,
                    terminal_id=terminal_id,
                    remaining_bill_fen=remaining,
                    returned_ids=returned_ids,
                    idempotency_key=key,
                    request_hash=digest,
                    now=now,
                )
        after = await db.get(conn, redemption_id)
        assert after is not None
        refunds = await db.refunds_of(conn, redemption_id)
    return web.json_response(redemption_body(after, request.app[TZ], refunds), status=201)


@requires(Role.CASHIER, Role.MERCHANT_MANAGER)
async def merchant_day(request: web.Request) -> web.Response:
    """Rule S2: the merchant's redemptions and refunds of one local date, with totals."""
    me = principal_of(request)
    assert me.merchant_id is not None
    now = request.app[CLOCK]()
    tz = request.app[TZ]
    day = read_query(request, MerchantDayQuery).date or now.astimezone(tz).date()
    start = rules.start_of_day(day, tz)
    end = rules.start_of_day(day + timedelta(days=1), tz)
    async with request.app[PG].acquire() as conn:
        reds, refs = await db.merchant_day(conn, me.merchant_id, start, end)
    items = [
        {
            "redemption_id": r["id"],
            "time": _iso(r["created_at"], tz),
            "receipt_no": r["receipt_no"],
            "terminal": {"id": r["terminal_id"], "label": r["terminal_label"]},
            "bill_fen": r["bill_fen"],
            "voucher_count": r["voucher_count"],
            "refunded_count": r["refunded_count"],
            "value_fen": r["voucher_count"] * r["face_value_fen"],
            "campaign_id": r["campaign_id"],
        }
        for r in reds
    ]
    refund_items = [
        {
            "refund_id": f["id"],
            "time": _iso(f["created_at"], tz),
            "redemption_id": f["redemption_id"],
            "receipt_no": f["receipt_no"],
            "terminal_id": f["terminal_id"],
            "returned_count": f["returned_count"],
            "value_fen": f["returned_count"] * f["face_value_fen"],
        }
        for f in refs
    ]
    redeemed_vouchers = sum(i["voucher_count"] for i in items)
    returned_vouchers = sum(i["returned_count"] for i in refund_items)
    totals = {
        "bills": len(items),
        "vouchers": redeemed_vouchers,
        "value_fen": sum(i["value_fen"] for i in items),
        "bill_fen": sum(i["bill_fen"] for i in items),
        "refunds": len(refund_items),
        "returned_vouchers": returned_vouchers,
        "returned_value_fen": sum(i["value_fen"] for i in refund_items),
    }
    totals["net_value_fen"] = totals["value_fen"] - totals["returned_value_fen"]
    return web.json_response(
        {
            "merchant_id": me.merchant_id,
            "date": day.isoformat(),
            "redemptions": items,
            "refunds": refund_items,
            "totals": totals,
        }
    )
