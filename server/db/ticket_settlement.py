"""SQL of house tickets after use (rules T9, T10, T12, T14): the settlement conditions a use
gathers, the settlements with the sellers and their lines, and the payouts to holders
(cash-outs and bonuses). What to write is decided by ``shared/ticket_payouts.py``; the
constraints of migration 0010 carry the invariants (a line's sign follows its kind, one bonus
per family, three accounts for a settlement's three steps). Rows come back as frozen
dataclasses; a refused write raises a domain error and changes nothing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from server.db import Conn
from shared.errors import Conflict, NotFound
from shared.ticket_campaign import SettlementCondition

CERTIFICATE = "certificate"
"""Rule T12: the buyer's property certificate, recorded like a condition; it releases the
holdback."""

# --- conditions (T12) -------------------------------------------------------------------


async def record_condition(
    conn: Conn,
    use_id: int,
    condition: str,
    *,
    recorded_on: date,
    document_no: str,
    actor: str,
) -> None:
    """Rule T12: a condition of a use, once (``Conflict``, reason ``condition_recorded``,
    when it was recorded before: the ledger keeps the first with its document)."""
    done = await conn.fetchval(
        "INSERT INTO ticket_settlement_conditions (use_id, condition, recorded_on, "
        "document_no, actor) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (use_id, condition) DO NOTHING RETURNING use_id",
        use_id,
        condition,
        recorded_on,
        document_no,
        actor,
    )
    if done is None:
        raise Conflict(
            "this condition of the use was recorded before",
            reason="condition_recorded",
            condition=condition,
        )


async def conditions_of(
    conn: Conn, use_ids: Iterable[int]
) -> dict[int, dict[str, tuple[date, str]]]:
    """Each use's recorded conditions: condition -> (day, document number)."""
    found: dict[int, dict[str, tuple[date, str]]] = {}
    rows = await conn.fetch(
        "SELECT use_id, condition, recorded_on, document_no FROM ticket_settlement_conditions "
        "WHERE use_id = ANY($1)",
        list(use_ids),
    )
    for r in rows:
        found.setdefault(r["use_id"], {})[r["condition"]] = (r["recorded_on"], r["document_no"])
    return found


def settlement_conditions(
    recorded: Mapping[str, tuple[date, str]],
) -> tuple[dict[SettlementCondition, date], date | None]:
    """A use's conditions as ``shared.ticket_payouts.Settleable`` takes them, and the day of
    its property certificate."""
    conditions = {
        SettlementCondition(name): day for name, (day, _) in recorded.items() if name != CERTIFICATE
    }
    certificate = recorded.get(CERTIFICATE)
    return conditions, None if certificate is None else certificate[0]


# --- settlements (T12) ------------------------------------------------------------------


async def lock_scope(conn: Conn, campaign_id: str, district: str) -> None:
    """Rules T11, T12: a settlement being built and a cancellation being reversed in one
    programme and district take turns (in the caller's transaction), so a clawback is always
    computed from every line written before it."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock("
        "hashtextextended('ticket-settlement/' || $1 || '/' || $2, 0))",
        campaign_id,
        district,
    )


@dataclass(frozen=True, slots=True)
class Batch:
    id: int
    campaign_id: str
    district: str
    point: date
    status: str  # draft | reviewed | approved | paid
    amount_fen: int
    created_at: datetime
    reviewed_at: datetime | None
    approved_at: datetime | None
    paid_at: datetime | None
    reviewed_by: int | None
    approved_by: int | None
    paid_by: int | None


@dataclass(frozen=True, slots=True)
class BatchLine:
    use_id: int
    merchant_id: int
    merchant_name: str
    contract_no: str
    kind: str  # full | first | holdback | clawback
    amount_fen: int


@dataclass(frozen=True, slots=True)
class NewLine:
    use_id: int
    merchant_id: int
    kind: str
    amount_fen: int


async def paid_per_use(conn: Conn, use_ids: Iterable[int]) -> dict[int, int]:
    """Rule T12: what each use's seller has been settled so far, in every batch built (a
    batch counts once built, even as a draft [choice, as F3]), clawbacks netted."""
    rows = await conn.fetch(
        "SELECT use_id, sum(amount_fen) AS paid FROM ticket_settlement_lines "
        "WHERE use_id = ANY($1) GROUP BY use_id",
        list(use_ids),
    )
    return {r["use_id"]: int(r["paid"]) for r in rows}


async def build(
    conn: Conn, *, campaign_id: str, district: str, point: date, lines: Sequence[NewLine]
) -> int | None:
    """Rule T12: a batch and its lines, in the caller's transaction; None when the batch of
    this programme, district and point exists (nothing written)."""
    try:
        async with conn.transaction():
            batch_id = await conn.fetchval(
                "INSERT INTO ticket_settlements (campaign_id, district, point, amount_fen) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                campaign_id,
                district,
                point,
                sum(line.amount_fen for line in lines),
            )
            await conn.executemany(
                "INSERT INTO ticket_settlement_lines (settlement_id, use_id, merchant_id, kind, "
                "amount_fen) VALUES ($1, $2, $3, $4, $5)",
                [(batch_id, x.use_id, x.merchant_id, x.kind, x.amount_fen) for x in lines],
            )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != "ticket_settlements_campaign_id_district_point_key":
            raise
        return None
    return int(batch_id)


_BATCH = {
    False: "SELECT * FROM ticket_settlements WHERE id = $1",
    True: "SELECT * FROM ticket_settlements WHERE id = $1 FOR UPDATE",
}


async def batch(conn: Conn, batch_id: int, *, lock: bool = False) -> Batch | None:
    row = await conn.fetchrow(_BATCH[lock], batch_id)
    return None if row is None else Batch(**dict(row))


async def batch_at(conn: Conn, campaign_id: str, district: str, point: date) -> int | None:
    """The id of the batch of this programme, district and point, if it was built."""
    found = await conn.fetchval(
        "SELECT id FROM ticket_settlements WHERE campaign_id = $1 AND district = $2 AND point = $3",
        campaign_id,
        district,
        point,
    )
    return None if found is None else int(found)


async def batches(
    conn: Conn, *, campaign_id: str | None, district: str | None, limit: int = 100
) -> list[Batch]:
    rows = await conn.fetch(
        "SELECT * FROM ticket_settlements WHERE ($1::text IS NULL OR campaign_id = $1) "
        "AND ($2::text IS NULL OR district = $2) ORDER BY point DESC, id DESC LIMIT $3",
        campaign_id,
        district,
        limit,
    )
    return [Batch(**dict(r)) for r in rows]


async def kind_totals(conn: Conn, batch_ids: list[int]) -> dict[int, dict[str, int]]:
    """Rule T12: each batch's amount by line kind (full, first, holdback, clawback)."""
    rows = await conn.fetch(
        "SELECT settlement_id, kind, sum(amount_fen)::bigint AS fen "
        "FROM ticket_settlement_lines WHERE settlement_id = ANY($1::bigint[]) "
        "GROUP BY settlement_id, kind",
        batch_ids,
    )
    out: dict[int, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["settlement_id"], {})[r["kind"]] = int(r["fen"])
    return out


async def lines(conn: Conn, batch_id: int) -> list[BatchLine]:
    rows = await conn.fetch(
        """
        SELECT x.use_id, x.merchant_id, m.name AS merchant_name, u.contract_no, x.kind,
               x.amount_fen
          FROM ticket_settlement_lines x JOIN merchants m ON m.id = x.merchant_id
          JOIN ticket_uses u ON u.id = x.use_id
         WHERE x.settlement_id = $1 ORDER BY x.merchant_id, x.use_id, x.kind
        """,
        batch_id,
    )
    return [BatchLine(**dict(r)) for r in rows]


_STEP_COLUMNS = {
    "reviewed": ("reviewed_at", "reviewed_by"),
    "approved": ("approved_at", "approved_by"),
    "paid": ("paid_at", "paid_by"),
}


async def set_status(conn: Conn, batch_id: int, status: str, at: datetime, account_id: int) -> None:
    """Rule T12 (S1's steps): the batch's new status, when and by whom."""
    when, who = _STEP_COLUMNS[status]
    await conn.execute(
        f"UPDATE ticket_settlements SET status = $2, {when} = $3, {who} = $4 "  # noqa: S608
        "WHERE id = $1",
        batch_id,
        status,
        at,
        account_id,
    )


async def settled_per_contract(conn: Conn, campaign_id: str) -> dict[tuple[str, str], int]:
    """Rule T14: what was paid to each seller per contract (lines of paid batches), by
    (seller, contract number) as ``shared.ticket_payouts.ticket_report`` takes it."""
    rows = await conn.fetch(
        """
        SELECT u.merchant_id, u.contract_no, sum(x.amount_fen) AS paid
          FROM ticket_settlement_lines x JOIN ticket_settlements s ON s.id = x.settlement_id
          JOIN ticket_uses u ON u.id = x.use_id
         WHERE s.campaign_id = $1 AND s.status = 'paid'
         GROUP BY u.merchant_id, u.contract_no
        """,
        campaign_id,
    )
    return {(str(r["merchant_id"]), r["contract_no"]): int(r["paid"]) for r in rows}


# --- payouts to holders (T9, T10) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Payout:
    id: int
    campaign_id: str
    original_id: int
    kind: str  # cashout | bonus
    amount_fen: int
    rate_bp: int | None
    due_by: date | None
    decided_on: date
    document_no: str
    decided_by: str
    paid_on: date | None
    payment_no: str | None
    paid_by: str | None


async def add_payout(
    conn: Conn,
    *,
    campaign_id: str,
    original_id: int,
    kind: str,
    amount_fen: int,
    rate_bp: int | None,
    due_by: date | None,
    decided_on: date,
    document_no: str,
    decided_by: str,
) -> Payout:
    """Rules T9, T10: a cash-out granted or a bonus reviewed, to be paid. A family's second
    bonus raises ``Conflict`` (reason ``bonus_reviewed``) and writes nothing."""
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO ticket_payouts (campaign_id, original_id, kind, amount_fen, "
                "rate_bp, due_by, decided_on, document_no, decided_by) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
                campaign_id,
                original_id,
                kind,
                amount_fen,
                rate_bp,
                due_by,
                decided_on,
                document_no,
                decided_by,
            )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(
            "this ticket's usage bonus was reviewed before", reason="bonus_reviewed"
        ) from exc
    assert row is not None
    return Payout(**dict(row))


_PAYOUT = {
    False: "SELECT * FROM ticket_payouts WHERE id = $1",
    True: "SELECT * FROM ticket_payouts WHERE id = $1 FOR UPDATE",
}


async def payout(conn: Conn, payout_id: int, *, lock: bool = False) -> Payout | None:
    row = await conn.fetchrow(
        _PAYOUT[lock],
        payout_id,
    )
    return None if row is None else Payout(**dict(row))


async def payouts(
    conn: Conn,
    *,
    campaign_id: str | None = None,
    original_ids: Sequence[int] | None = None,
    district: str | None = None,
    unpaid_only: bool = False,
) -> list[Payout]:
    rows = await conn.fetch(
        """
        SELECT p.* FROM ticket_payouts p JOIN tickets t ON t.id = p.original_id
         WHERE ($1::text IS NULL OR p.campaign_id = $1)
           AND ($2::bigint[] IS NULL OR p.original_id = ANY($2))
           AND ($3::text IS NULL OR t.district = $3)
           AND (NOT $4 OR p.paid_on IS NULL)
         ORDER BY p.id
        """,
        campaign_id,
        None if original_ids is None else list(original_ids),
        district,
        unpaid_only,
    )
    return [Payout(**dict(r)) for r in rows]


async def mark_paid(
    conn: Conn, payout_id: int, *, paid_on: date, payment_no: str, paid_by: str
) -> Payout:
    """Rules T9, T10: the payment recorded once (``Conflict``, reason ``already_paid``)."""
    row = await conn.fetchrow(
        "UPDATE ticket_payouts SET paid_on = $2, payment_no = $3, paid_by = $4 "
        "WHERE id = $1 AND paid_on IS NULL RETURNING *",
        payout_id,
        paid_on,
        payment_no,
        paid_by,
    )
    if row is None:
        if await payout(conn, payout_id) is None:
            raise NotFound("no such payout")
        raise Conflict("this payout was paid before", reason="already_paid")
    return Payout(**dict(row))
