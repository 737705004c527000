"""SQL of the redemption aggregate: quote context, the one-statement redeem, refunds, the day.

The context read and the redeem each take a list (one bill or many, batched by the server
when tills are busy: ``server.batching``). The write is a single statement, so it is atomic
without an explicit transaction: it moves exactly the chosen vouchers from available to
redeemed (conditional update), records the QR token id, the redemption with its idempotency
key, and the items. If any chosen voucher was taken meanwhile, or the terminal, merchant or
citizen lost their standing, the statement aborts itself (``ledger_changed``) and changes
nothing.

Every function returns frozen dataclasses (or the ``shared.redemption`` ones) and speaks the
domain: a refused write raises ``MustDecideAgain`` or a domain error, never an asyncpg one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from server.db import Conn
from shared.errors import BillAlreadyRedeemed, IdempotencyKeyInUse, TokenReplayed, VoucherError
from shared.redemption import HeldVoucher, MustDecideAgain, SpentVoucher, TillContext
from shared.rules import RefundStep, cash_handed_back_fen
from shared.values import value

# Each lookup is a LATERAL subquery with LIMIT, so it stays a few index probes per bill: as a
# plain join or EXISTS the planner may hash a whole table (consumed_tokens grows all day)
# once a batch has a few dozen bills.
CONTEXTS_SQL = """
SELECT q.n, tm.terminal_status, tm.terminal_label, tm.merchant_id, tm.merchant_name,
       tm.district, tm.admitted, tm.permitted, tm.merchant_status, tm.receipts_per_till,
       c.citizen_id, c.citizen_status, c.id_masked,
       v.ids, v.campaigns, v.expiries, v.faces,
       -- only asked when nothing is usable: expired (V2) or simply none left?
       CASE WHEN v.ids IS NULL THEN
           (SELECT count(*) FROM vouchers x WHERE x.citizen_id = c.citizen_id
               AND x.status = 'available' AND x.expires_at <= q.now)
       ELSE 0 END AS expired_count,
       k.used IS NOT NULL AS token_used, q.receipt_no, b.used IS NOT NULL AS receipt_used
  FROM unnest($1::till_context_query[]) AS q
  LEFT JOIN LATERAL (
      SELECT t.status AS terminal_status, t.label AS terminal_label,
             m.id AS merchant_id, m.name AS merchant_name, m.district,
             m.admitted, m.permitted, m.status AS merchant_status, m.receipts_per_till
        FROM terminals t JOIN merchants m ON m.id = t.merchant_id
       WHERE t.id = q.terminal_id LIMIT 1
  ) tm ON true
  LEFT JOIN LATERAL (
      SELECT z.id AS citizen_id, z.status AS citizen_status, z.id_masked
        FROM citizens z WHERE z.id = q.citizen_id LIMIT 1
  ) c ON true
  LEFT JOIN LATERAL (
      SELECT array_agg(id ORDER BY expires_at, id) AS ids,
             array_agg(campaign_id ORDER BY expires_at, id) AS campaigns,
             -- microseconds since 1970 (``_expiry``): a few expiries serve all the city's
             -- vouchers, so each is made into a datetime once, not once per voucher read
             array_agg((extract(epoch FROM expires_at) * 1000000)::bigint
                       ORDER BY expires_at, id) AS expiries,
             array_agg(face_value_fen ORDER BY expires_at, id) AS faces
        FROM vouchers
       WHERE citizen_id = c.citizen_id AND status = 'available' AND expires_at > q.now
  ) v ON true
  LEFT JOIN LATERAL (
      SELECT true AS used FROM consumed_tokens WHERE jti = q.jti LIMIT 1
  ) k ON true
  -- rule U4: is the receipt number taken today (at this till, where numbered per till)?
  LEFT JOIN LATERAL (
      SELECT true AS used FROM redemptions r
       WHERE q.receipt_no IS NOT NULL AND r.merchant_id = tm.merchant_id
         AND r.business_date = business_date_of(q.now) AND r.receipt_no = q.receipt_no
         AND r.receipt_till IS NOT DISTINCT FROM
             (CASE WHEN tm.receipts_per_till THEN q.terminal_id END)
       LIMIT 1
  ) b ON true
"""

# Redemptions of several bills in one statement, so atomic without an explicit transaction;
# each bill ("item" n) with its chosen vouchers ("want"). Any bill that cannot be written as
# decided (a voucher taken, a standing lost, a token or bill or key already used) makes the
# whole statement change nothing: the caller then writes the bills one by one and learns
# which one it was.
REDEEM_SQL = """
WITH item AS (
    SELECT * FROM unnest($1::till_redeem_item[]) AS i
), want AS (
    SELECT * FROM unnest($2::int[], $3::bigint[]) AS w (n, voucher_id)
), upd AS (
    UPDATE vouchers v SET status = 'redeemed', redeemed_at = i.now
      FROM want w JOIN item i ON i.n = w.n
     WHERE v.id = w.voucher_id AND v.status = 'available' AND v.citizen_id = i.citizen_id
       AND v.expires_at > i.now
    RETURNING v.id, w.n
), checked AS (
    -- rules U1, U7, X1: every voucher taken, and terminal, merchant and citizen still in good
    -- standing at the moment of writing; otherwise the whole statement changes nothing
    -- (LATERAL with LIMIT: a few index probes per bill, never a hash of a whole table)
    SELECT CASE WHEN (SELECT count(*) FROM upd) = (SELECT count(*) FROM want)
                 AND (SELECT count(*) FROM item i
                        CROSS JOIN LATERAL (
                            SELECT 1 FROM terminals t JOIN merchants m ON m.id = t.merchant_id
                             WHERE t.id = i.terminal_id AND t.status = 'active'
                               AND m.status = 'active' AND m.admitted AND m.permitted
                             LIMIT 1) standing
                        CROSS JOIN LATERAL (
                            SELECT 1 FROM citizens z
                             WHERE z.id = i.citizen_id AND z.status = 'active' LIMIT 1) citizen
                     ) = (SELECT count(*) FROM item)
                 -- rule U7: no bill under a key whose first answer was a refusal
                 AND NOT EXISTS (SELECT 1 FROM item i CROSS JOIN LATERAL (
                            SELECT 1 FROM refused_redemptions f
                             WHERE f.terminal_id = i.terminal_id
                               AND f.idempotency_key = i.idempotency_key LIMIT 1) refused)
                THEN 1 ELSE voucher_abort('ledger_changed') END AS ok
), tok AS (
    INSERT INTO consumed_tokens (jti, citizen_id, expires_at, consumed_at)
    SELECT jti, citizen_id, jti_expires_at, now FROM item
    RETURNING jti
), red AS (
    -- rule U4: the receipt number is the shop's, or the till's where the merchant numbers
    -- receipts per till (its setting, read here, by the writing statement itself); the
    -- business date is computed from created_at by the table
    INSERT INTO redemptions (campaign_id, merchant_id, terminal_id, citizen_id, receipt_no,
                             receipt_till, bill_fen, spend_threshold_fen, face_value_fen,
                             voucher_count, token_jti, idempotency_key, request_hash,
                             created_at)
    SELECT i.campaign_id, i.merchant_id, i.terminal_id, i.citizen_id, i.receipt_no,
           CASE WHEN m.receipts_per_till THEN i.terminal_id END, i.bill_fen,
           i.spend_threshold_fen, i.face_value_fen, i.voucher_count, tok.jti,
           i.idempotency_key, i.request_hash, i.now
      FROM item i JOIN tok ON tok.jti = i.jti JOIN merchants m ON m.id = i.merchant_id
     CROSS JOIN checked
    RETURNING id, token_jti
), items AS (
    INSERT INTO redemption_items (redemption_id, voucher_id)
    SELECT red.id, upd.id FROM red JOIN item i ON i.jti = red.token_jti JOIN upd ON upd.n = i.n
)
SELECT i.n, red.id FROM red JOIN item i ON i.jti = red.token_jti
"""

REDEMPTION_SQL = """
SELECT r.id, r.campaign_id, r.merchant_id, m.name AS merchant_name, r.terminal_id,
       t.label AS terminal_label, r.citizen_id, c.id_masked, r.receipt_no, r.business_date,
       r.bill_fen,
       r.face_value_fen, r.spend_threshold_fen, r.voucher_count, r.refunded_count,
       r.created_at, r.settlement_id, r.request_hash, r.idempotency_key,
       coalesce((SELECT min(f.remaining_bill_fen) FROM refunds f
                  WHERE f.redemption_id = r.id), r.bill_fen) AS current_bill_fen,
       (SELECT array_agg(i.voucher_id ORDER BY i.voucher_id) FROM redemption_items i
         WHERE i.redemption_id = r.id) AS voucher_ids,
       (SELECT array_agg(i.voucher_id ORDER BY i.voucher_id) FROM redemption_items i
         WHERE i.redemption_id = r.id AND i.refund_id IS NOT NULL) AS returned_ids
  FROM redemptions r
  JOIN merchants m ON m.id = r.merchant_id
  JOIN terminals t ON t.id = r.terminal_id
  JOIN citizens c ON c.id = r.citizen_id
"""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EXPIRIES: dict[int, datetime] = {}  # microseconds since 1970: the expiry, as asyncpg decodes


def _expiry(us: int) -> datetime:
    """A voucher's expiry read as microseconds since 1970 (``CONTEXTS_SQL``): the same aware
    UTC datetime asyncpg decodes a timestamptz to, made once per distinct expiry (vouchers of
    a claim share theirs; decoding a timestamptz costs twenty times a bigint)."""
    found = _EXPIRIES.get(us)
    if found is None:
        if len(_EXPIRIES) >= 4096:  # bounded: expiries are days of campaigns, a few dozen
            _EXPIRIES.clear()
        found = _EXPIRIES[us] = _EPOCH + timedelta(microseconds=us)
    return found


@value
class ContextQuery:
    """Whose context a bill needs: this terminal, the citizen the QR code names, now."""

    terminal_id: int
    citizen_id: int
    now: datetime
    jti: uuid.UUID
    receipt_no: str | None = None  # rule U4: is it taken today? (None: not asked)


async def read_contexts(conn: Conn, queries: Sequence[ContextQuery]) -> list[TillContext | None]:
    """For each query: the terminal, its merchant, the citizen, whether the QR token was
    used, whether the receipt number is taken on the business date (U4), and the citizen's
    unexpired available vouchers, earliest expiry first (rule U6). None when there is no such
    terminal. One statement for all of them."""
    # one record per bill (migration 0013): asyncpg checks an array's every element against
    # abstract base classes, so one array of records costs far less than six of scalars
    rows = await conn.fetch(
        CONTEXTS_SQL,
        [
            (n, q.terminal_id, q.citizen_id, q.now, q.jti, q.receipt_no)
            for n, q in enumerate(queries)
        ],
    )
    found: list[TillContext | None] = [None] * len(queries)
    for row in rows:
        if row["terminal_status"] is None:
            continue
        held: tuple[HeldVoucher, ...] = ()
        if row["ids"] is not None:
            known = _EXPIRIES.get
            held = tuple(
                HeldVoucher(i, known(e) or _expiry(e), f, c)
                for i, c, e, f in zip(
                    row["ids"], row["campaigns"], row["expiries"], row["faces"], strict=True
                )
            )
        found[row["n"]] = TillContext(
            terminal_status=row["terminal_status"],
            terminal_label=row["terminal_label"],
            merchant_id=row["merchant_id"],
            merchant_name=row["merchant_name"],
            district=row["district"],
            admitted=row["admitted"],
            permitted=row["permitted"],
            merchant_status=row["merchant_status"],
            citizen_id=row["citizen_id"],
            citizen_status=row["citizen_status"],
            id_masked=row["id_masked"],
            expired_count=row["expired_count"],
            token_used=row["token_used"],
            held=held,
            receipts_per_till=row["receipts_per_till"],
            receipt_no=row["receipt_no"],
            receipt_used=row["receipt_used"],
        )
    return found


async def read_context(conn: Conn, query: ContextQuery) -> TillContext | None:
    return (await read_contexts(conn, [query]))[0]


async def read_contexts_batch(
    pool: asyncpg.Pool, queries: Sequence[ContextQuery]
) -> list[TillContext | None]:
    """``read_contexts`` on a connection of ``pool``: the run of the batched read (a
    ``server.batching.Batcher``)."""
    async with pool.acquire() as conn:
        return await read_contexts(conn, queries)


async def lock_citizen(conn: Conn, citizen_id: int) -> None:
    """Serialise redemptions of one citizen in the database (the slow path, rule U7); no lock
    when the QR code names nobody of the programme.

    FOR NO KEY UPDATE, not FOR UPDATE: it still excludes itself (and a revocation), but not the
    key-share lock that a batched write's foreign keys take on the same citizen after locking
    its vouchers; FOR UPDATE made that a lock-order deadlock between the two paths."""
    await conn.execute("SELECT 1 FROM citizens WHERE id = $1 FOR NO KEY UPDATE", citizen_id)


@value
class Redemption:
    """One bill as decided: the vouchers chosen and everything the ledger records of it."""

    now: datetime
    voucher_ids: tuple[int, ...]
    citizen_id: int
    jti: uuid.UUID
    jti_expires_at: datetime
    campaign_id: str
    merchant_id: int
    terminal_id: int
    receipt_no: str
    bill_fen: int
    spend_threshold_fen: int
    face_value_fen: int
    idempotency_key: str
    request_hash: bytes


@value
class RedemptionRecord:
    """A redemption as the ledger holds it, with its merchant's and terminal's names."""

    id: int
    campaign_id: str
    merchant_id: int
    merchant_name: str
    terminal_id: int
    terminal_label: str
    citizen_id: int
    id_masked: str
    receipt_no: str
    business_date: date
    bill_fen: int
    current_bill_fen: int
    face_value_fen: int
    spend_threshold_fen: int
    voucher_count: int
    refunded_count: int
    voucher_ids: tuple[int, ...]
    returned_ids: tuple[int, ...]
    settlement_id: int | None
    idempotency_key: str
    request_hash: bytes
    created_at: datetime

    @property
    def live_count(self) -> int:
        return self.voucher_count - self.refunded_count


def _record(row: asyncpg.Record | None) -> RedemptionRecord | None:
    if row is None:
        return None
    return RedemptionRecord(
        id=row["id"],
        campaign_id=row["campaign_id"],
        merchant_id=row["merchant_id"],
        merchant_name=row["merchant_name"],
        terminal_id=row["terminal_id"],
        terminal_label=row["terminal_label"],
        citizen_id=row["citizen_id"],
        id_masked=row["id_masked"],
        receipt_no=row["receipt_no"],
        business_date=row["business_date"],
        bill_fen=row["bill_fen"],
        current_bill_fen=row["current_bill_fen"],
        face_value_fen=row["face_value_fen"],
        spend_threshold_fen=row["spend_threshold_fen"],
        voucher_count=row["voucher_count"],
        refunded_count=row["refunded_count"],
        voucher_ids=tuple(row["voucher_ids"] or ()),
        returned_ids=tuple(row["returned_ids"] or ()),
        settlement_id=row["settlement_id"],
        idempotency_key=row["idempotency_key"],
        request_hash=bytes(row["request_hash"]),
        created_at=row["created_at"],
    )


# Answers of the ledger that mean "decide this bill again from a fresh read": a chosen voucher
# or a standing moved (``ledger_changed``), or PostgreSQL broke a lock cycle or a serialisation
# conflict by aborting this statement (two writers on one citizen, e.g. two server processes
# with Redis unavailable). Nothing was written in either case.
DECIDE_AGAIN_SQLSTATES: Mapping[str, str] = {
    "VC001": "ledger_changed",  # voucher_abort
    "40P01": "deadlock_detected",
    "40001": "serialization_failure",
}


BILL_CONSTRAINT = "redemptions_receipt_no_per_day"  # rule U4 (server/migrations/0007)


def _refused(exc: asyncpg.PostgresError, bills: Sequence[Redemption]) -> Exception | None:
    """The domain's name for what the ledger refused (the statement changed nothing); None for
    an error the domain has no name for (a bug: it reaches the edge as a 500)."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        constraint = exc.constraint_name or ""
        if constraint == "consumed_tokens_pkey":
            return TokenReplayed("this QR code was already used")  # rule U5
        if constraint == BILL_CONSTRAINT:
            if len(bills) == 1:
                return BillAlreadyRedeemed(receipt_no=bills[0].receipt_no)  # rule U4
            return BillAlreadyRedeemed()  # rule U4
        if constraint == "redemption_items_one_live":
            return MustDecideAgain("voucher_taken")  # rule U7: someone took a voucher first
        if "idempotency_key" in constraint:
            return IdempotencyKeyInUse("a request with this Idempotency-Key is in progress")
        return None
    reason = DECIDE_AGAIN_SQLSTATES.get(exc.sqlstate or "")
    return None if reason is None else MustDecideAgain(reason)


async def write_redemptions(conn: Conn, bills: Sequence[Redemption]) -> list[int]:
    """Write all the bills or none (one statement); their redemption ids, in order.

    Raises, having changed nothing: ``MustDecideAgain`` when a voucher was taken or a standing
    lost since the decision, or another writer of the same rows came between (a deadlock or a
    serialisation failure); ``TokenReplayed`` (U5), ``BillAlreadyRedeemed`` (U4) or
    ``IdempotencyKeyInUse`` (U7) when a token, a bill or a key was already used.
    """
    try:
        rows = await conn.fetch(
            REDEEM_SQL,
            # one record per bill (migration 0013), as in ``read_contexts``
            [
                (
                    n,
                    b.now,
                    b.citizen_id,
                    b.jti,
                    b.jti_expires_at,
                    b.campaign_id,
                    b.merchant_id,
                    b.terminal_id,
                    b.receipt_no,
                    b.bill_fen,
                    b.spend_threshold_fen,
                    b.face_value_fen,
                    b.idempotency_key,
                    b.request_hash,
                    len(b.voucher_ids),
                )
                for n, b in enumerate(bills)
            ],
            [n for n, b in enumerate(bills) for _ in b.voucher_ids],
            [v for b in bills for v in b.voucher_ids],
        )
    except asyncpg.PostgresError as exc:
        refused = _refused(exc, bills)
        if refused is None:
            raise
        raise refused from exc
    ids: dict[int, int] = {row["n"]: row["id"] for row in rows}
    if len(ids) != len(bills):
        raise RuntimeError(f"{len(bills)} bills written, {len(ids)} redemption ids returned")
    return [int(ids[n]) for n in range(len(bills))]


async def write_redemptions_batch(
    pool: asyncpg.Pool, bills: Sequence[Redemption]
) -> list[int | None]:
    """All the bills in one statement (the run of the batched write, a
    ``server.batching.Batcher``); if the ledger refuses any of them, the statement changed
    nothing and every bill gets None: each is then written alone
    (``server.services.redemption``), where the refusal lands on the bill it belongs to. So
    does every bill of a statement that PostgreSQL aborted to break a deadlock (two server
    processes writing one citizen's vouchers while Redis is unavailable, issue 9 item 11):
    the bill alone retries it.

    The statement takes its vouchers' row locks citizen by citizen in ascending order (its
    bills are sorted so), so two batches lock shared citizens in the same order and seldom
    deadlock at all."""
    order = sorted(range(len(bills)), key=lambda n: bills[n].citizen_id)
    async with pool.acquire() as conn:
        try:
            ids = await write_redemptions(conn, [bills[n] for n in order])
        except (MustDecideAgain, VoucherError, asyncpg.PostgresError):
            return [None] * len(bills)
    written: list[int | None] = [None] * len(bills)
    for n, redemption_id in zip(order, ids, strict=True):
        written[n] = redemption_id
    return written


async def get(conn: Conn, redemption_id: int) -> RedemptionRecord | None:
    return _record(await conn.fetchrow(REDEMPTION_SQL + " WHERE r.id = $1", redemption_id))


async def by_idempotency_key(conn: Conn, terminal_id: int, key: str) -> RedemptionRecord | None:
    return _record(
        await conn.fetchrow(
            REDEMPTION_SQL + " WHERE r.terminal_id = $1 AND r.idempotency_key = $2",
            terminal_id,
            key,
        )
    )


async def by_receipt(
    conn: Conn, merchant_id: int, receipt_no: str, day: date, terminal_id: int | None = None
) -> list[RedemptionRecord]:
    """Rule U4: the merchant's bills with this receipt number on this business date (at this
    till, if given): one, or several where tills number their receipts each on their own."""
    rows = await conn.fetch(
        REDEMPTION_SQL + " WHERE r.merchant_id = $1 AND r.business_date = $2"
        " AND r.receipt_no = $3 AND ($4::bigint IS NULL OR r.terminal_id = $4) ORDER BY r.id",
        merchant_id,
        day,
        receipt_no,
        terminal_id,
    )
    return [r for r in map(_record, rows) if r is not None]


async def usable_vouchers(conn: Conn, citizen_id: int, campaign_id: str, now: datetime) -> int:
    """The citizen's available, unexpired vouchers of a campaign (rule V2)."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM vouchers WHERE citizen_id = $1 AND campaign_id = $2"
            " AND status = 'available' AND expires_at > $3",
            citizen_id,
            campaign_id,
            now,
        )
    )


@dataclass(frozen=True, slots=True)
class KeptRefusal:
    """Rule U7: the first answer to a redemption refused under a key, as it was sent."""

    request_hash: bytes
    status: int
    answer: dict[str, Any]


async def refusal_by_key(conn: Conn, terminal_id: int, key: str) -> KeptRefusal | None:
    row = await conn.fetchrow(
        "SELECT request_hash, status, answer FROM refused_redemptions "
        "WHERE terminal_id = $1 AND idempotency_key = $2",
        terminal_id,
        key,
    )
    if row is None:
        return None
    return KeptRefusal(bytes(row["request_hash"]), row["status"], json.loads(row["answer"]))


async def keep_refusal(
    conn: Conn,
    *,
    terminal_id: int,
    key: str,
    request_hash: bytes,
    status: int,
    answer: dict[str, Any],
    now: datetime,
) -> bool:
    """Rule U7: keep the first refusal under a key; False if the key already holds one."""
    kept = await conn.fetchval(
        """
        INSERT INTO refused_redemptions (terminal_id, idempotency_key, request_hash, status,
                                         answer, created_at)
        VALUES ($1, $2, $3, $4, $5::jsonb, $6)
        ON CONFLICT (terminal_id, idempotency_key) DO NOTHING
        RETURNING true
        """,
        terminal_id,
        key,
        request_hash,
        status,
        json.dumps(answer, ensure_ascii=False),
        now,
    )
    return bool(kept)


async def lock_for_refund(conn: Conn, redemption_id: int) -> RedemptionRecord | None:
    await conn.execute("SELECT 1 FROM redemptions WHERE id = $1 FOR UPDATE", redemption_id)
    return await get(conn, redemption_id)


async def live_items(conn: Conn, redemption_id: int) -> list[SpentVoucher]:
    """The vouchers still spent on the bill (a refund returns some of them)."""
    rows = await conn.fetch(
        """
        SELECT v.id, v.expires_at FROM redemption_items i JOIN vouchers v ON v.id = i.voucher_id
         WHERE i.redemption_id = $1 AND i.refund_id IS NULL
        """,
        redemption_id,
    )
    return [SpentVoucher(row["id"], row["expires_at"]) for row in rows]


async def write_refund(
    conn: Conn,
    *,
    redemption_id: int,
    terminal_id: int,
    remaining_bill_fen: int,
    returned_ids: list[int],
    idempotency_key: str,
    request_hash: bytes,
    now: datetime,
    approved_by: int | None = None,
) -> int:
    """Rule F1: the returned vouchers go back to available with their expiry unchanged, or to
    revoked if the citizen's participation was revoked (rule X1). ``approved_by``: the
    merchant manager's account that approved it (issue 11 item 5), if one did."""
    refund_id = await conn.fetchval(
        """
        INSERT INTO refunds (redemption_id, terminal_id, remaining_bill_fen, returned_count,
                             idempotency_key, request_hash, created_at, approved_by)
        VALUES ($1, $2, $3, cardinality($4::bigint[]), $5, $6, $7, $8) RETURNING id
        """,
        redemption_id,
        terminal_id,
        remaining_bill_fen,
        returned_ids,
        idempotency_key,
        request_hash,
        now,
        approved_by,
    )
    if returned_ids:
        await conn.execute(
            "UPDATE redemption_items SET refund_id = $1 "
            "WHERE redemption_id = $2 AND voucher_id = ANY($3::bigint[])",
            refund_id,
            redemption_id,
            returned_ids,
        )
        # rule X1: vouchers returned to a revoked citizen come back revoked, never available.
        # The owner's row is locked FOR SHARE: a revocation racing this refund either waits
        # and then claws these vouchers back, or committed first and is seen here.
        owner_status = await conn.fetchval(
            "SELECT z.status FROM citizens z JOIN redemptions r ON r.citizen_id = z.id "
            "WHERE r.id = $1 FOR SHARE OF z",
            redemption_id,
        )
        changed = await conn.execute(
            "UPDATE vouchers SET status = $2, redeemed_at = NULL "
            "WHERE id = ANY($1::bigint[]) AND status = 'redeemed'",
            returned_ids,
            "revoked" if owner_status == "revoked" else "available",
        )
        if changed != f"UPDATE {len(returned_ids)}":
            raise RuntimeError(f"refund {refund_id}: vouchers were not all redeemed ({changed})")
        await conn.execute(
            "UPDATE redemptions SET refunded_count = refunded_count + $2 WHERE id = $1",
            redemption_id,
            len(returned_ids),
        )
    return int(refund_id)


@dataclass(frozen=True, slots=True)
class RefundKey:
    """A refund made under an idempotency key, and the hash of the request that made it."""

    id: int
    redemption_id: int
    request_hash: bytes


async def refund_by_key(conn: Conn, terminal_id: int, key: str) -> RefundKey | None:
    row = await conn.fetchrow(
        "SELECT id, redemption_id, request_hash FROM refunds "
        "WHERE terminal_id = $1 AND idempotency_key = $2",
        terminal_id,
        key,
    )
    if row is None:
        return None
    return RefundKey(row["id"], row["redemption_id"], bytes(row["request_hash"]))


@dataclass(frozen=True, slots=True)
class RefundRecord:
    """One refund of a redemption, with the vouchers it returned."""

    id: int
    remaining_bill_fen: int
    returned_count: int
    created_at: datetime
    terminal_id: int
    voucher_ids: tuple[int, ...]


async def refunds_of(conn: Conn, redemption_id: int) -> list[RefundRecord]:
    rows = await conn.fetch(
        """
        SELECT f.id, f.remaining_bill_fen, f.returned_count, f.created_at, f.terminal_id,
               (SELECT array_agg(i.voucher_id ORDER BY i.voucher_id) FROM redemption_items i
                 WHERE i.refund_id = f.id) AS voucher_ids
          FROM refunds f WHERE f.redemption_id = $1 ORDER BY f.id
        """,
        redemption_id,
    )
    return [
        RefundRecord(
            id=f["id"],
            remaining_bill_fen=f["remaining_bill_fen"],
            returned_count=f["returned_count"],
            created_at=f["created_at"],
            terminal_id=f["terminal_id"],
            voucher_ids=tuple(f["voucher_ids"] or ()),
        )
        for f in rows
    ]


@dataclass(frozen=True, slots=True)
class DayRedemption:
    """A line of the merchant's day (rule S2): one bill."""

    id: int
    created_at: datetime
    receipt_no: str
    terminal_id: int
    terminal_label: str
    bill_fen: int
    voucher_count: int
    refunded_count: int
    face_value_fen: int
    campaign_id: str


@dataclass(frozen=True, slots=True)
class DayRefund:
    """A line of the merchant's day (rule S2): one refund, with the bill it refunded and the
    bill's refunds up to this one (oldest first) for the cash it handed back."""

    id: int
    created_at: datetime
    redemption_id: int
    receipt_no: str
    terminal_id: int
    terminal_label: str
    returned_count: int
    face_value_fen: int
    remaining_bill_fen: int
    bill_fen: int
    voucher_count: int
    steps: tuple[RefundStep, ...]

    @property
    def cash_back_fen(self) -> int:
        """Rules U3, F2: the cash this refund handed back to the customer."""
        backs = cash_handed_back_fen(
            self.bill_fen, self.voucher_count, self.face_value_fen, self.steps
        )
        return backs[-1]


async def merchant_day(
    conn: Conn, merchant_id: int, start: datetime, end: datetime
) -> tuple[list[DayRedemption], list[DayRefund]]:
    """Rule S2: the merchant's redemptions and refunds made in [start, end)."""
    redemptions = await conn.fetch(
        """
        SELECT r.id, r.created_at, r.receipt_no, r.terminal_id, t.label AS terminal_label,
               r.bill_fen, r.voucher_count, r.refunded_count, r.face_value_fen, r.campaign_id
          FROM redemptions r JOIN terminals t ON t.id = r.terminal_id
         WHERE r.merchant_id = $1 AND r.created_at >= $2 AND r.created_at < $3
         ORDER BY r.created_at, r.id
        """,
        merchant_id,
        start,
        end,
    )
    refunds = await conn.fetch(
        """
        SELECT f.id, f.created_at, f.redemption_id, r.receipt_no, f.terminal_id,
               t.label AS terminal_label, f.returned_count, r.face_value_fen,
               f.remaining_bill_fen, r.bill_fen, r.voucher_count,
               (SELECT array_agg(p.remaining_bill_fen ORDER BY p.id) FROM refunds p
                 WHERE p.redemption_id = f.redemption_id AND p.id <= f.id) AS step_bills,
               (SELECT array_agg(p.returned_count ORDER BY p.id) FROM refunds p
                 WHERE p.redemption_id = f.redemption_id AND p.id <= f.id) AS step_counts
          FROM refunds f JOIN redemptions r ON r.id = f.redemption_id
          JOIN terminals t ON t.id = f.terminal_id
         WHERE r.merchant_id = $1 AND f.created_at >= $2 AND f.created_at < $3
         ORDER BY f.created_at, f.id
        """,
        merchant_id,
        start,
        end,
    )
    return [DayRedemption(**dict(r)) for r in redemptions], [_day_refund(f) for f in refunds]


def _day_refund(row: asyncpg.Record) -> DayRefund:
    fields = dict(row)
    bills, counts = fields.pop("step_bills"), fields.pop("step_counts")
    steps = tuple(RefundStep(b, c) for b, c in zip(bills, counts, strict=True))
    return DayRefund(**fields, steps=steps)
