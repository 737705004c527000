"""SQL of house tickets (rules T1-T14): programmes, listings, tickets, uses and their audit.

The rules are ``shared/house_tickets.py``'s: a use case reads the ledger here, decides with
the pure functions, and writes the values they returned here. The ledger guards what a stale
decision could break: a use's draw is a conditional update (``balance_fen >= amount`` on an
active ticket), an issuer's act a compare-and-set on the state it was decided from, and the
contract is unique per seller (T5). A refused write changed nothing and raises
``MustDecideAgain`` (decide again from a fresh read) or a domain error, never an asyncpg one.
Persons are the pure core's keys (``docs/HOUSE_TICKETS.md``); a seller is its merchant id as
text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from server.db import Conn, seeding
from shared.errors import (
    Conflict,
    ContractAlreadyCancelled,
    ContractAlreadyUsed,
    IdempotencyKeyInUse,
)
from shared.house_tickets import (
    Cancelled,
    Draw,
    FaceItem,
    Listing,
    Ticket,
    TicketStatus,
    TicketUse,
)
from shared.redemption import MustDecideAgain
from shared.ticket_campaign import (
    PropertyType,
    Relation,
    TicketCampaign,
    load_ticket_campaign_dict,
    ticket_campaign_to_dict,
)

# --- programmes and listings (C1, T4) ---------------------------------------------------


async def upsert_programme(conn: Conn, campaign: TicketCampaign) -> None:
    """Record a loaded house-ticket programme and its districts (a ``campaigns`` row whose
    config says ``kind = "house_ticket"``)."""
    async with conn.transaction():
        await seeding.districts(conn, {c: d.name for c, d in campaign.districts.items()})
        await conn.execute(
            """
            INSERT INTO campaigns (id, name, stacking_group, config) VALUES ($1, $2, $1, $3)
            ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, config = EXCLUDED.config,
                loaded_at = now()
            WHERE campaigns.config IS DISTINCT FROM EXCLUDED.config
            """,
            campaign.id,
            campaign.name,
            json.dumps(ticket_campaign_to_dict(campaign), ensure_ascii=False),
        )


async def stored_programme(conn: Conn, campaign_id: str) -> TicketCampaign | None:
    """The house-ticket programme the ledger holds under ``campaign_id`` (as the server
    recorded it at its start), or None."""
    config = await conn.fetchval(
        "SELECT config FROM campaigns WHERE id = $1 AND config->>'kind' = 'house_ticket'",
        campaign_id,
    )
    if config is None:
        return None
    return load_ticket_campaign_dict(json.loads(config), source=f"ledger:{campaign_id}")


async def stored_programmes(conn: Conn) -> list[dict[str, object]]:
    """Every house-ticket programme recorded in the ledger, as its validated file's JSON (a
    server that no longer names one in its files still serves its tickets)."""
    rows = await conn.fetch(
        "SELECT config FROM campaigns WHERE config->>'kind' = 'house_ticket' ORDER BY id"
    )
    return [json.loads(r["config"]) for r in rows]


async def insert_listing(conn: Conn, campaign_id: str, listing: Listing) -> int:
    """Rule T4: a unit of the pool (``listing.seller`` is the merchant id); admitted when
    ``listing.in_pool``."""
    listing_id: int = await conn.fetchval(
        """
        INSERT INTO listings (campaign_id, merchant_id, unit, district, property_type,
                              area_dm2, listed_price_fen, status)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id
        """,
        campaign_id,
        int(listing.seller),
        listing.unit,
        listing.district,
        listing.property_type.value,
        listing.area_dm2,
        listing.listed_price_fen,
        "admitted" if listing.in_pool else "pending",
    )
    return listing_id


async def listing(
    conn: Conn, merchant_id: int, unit: str, today: date | None = None
) -> tuple[int, Listing] | None:
    """Rule T4: a seller's unit and its id; ``in_pool`` needs the unit admitted and its
    merchant admitted and active (X1), and, given ``today``, the developer not gone after
    its notice (a unit leaves the pool at the end of its ``exits_on``)."""
    row = await conn.fetchrow(
        """
        SELECT l.id, l.merchant_id, l.unit, l.district, l.property_type, l.area_dm2,
               l.listed_price_fen,
               l.status = 'admitted' AND m.admitted AND m.status = 'active'
                   AND ($3::date IS NULL OR l.exits_on IS NULL OR l.exits_on >= $3) AS in_pool
          FROM listings l JOIN merchants m ON m.id = l.merchant_id
         WHERE l.merchant_id = $1 AND l.unit = $2
        """,
        merchant_id,
        unit,
        today,
    )
    if row is None:
        return None
    return row["id"], Listing(
        seller=str(row["merchant_id"]),
        unit=row["unit"],
        district=row["district"],
        property_type=PropertyType(row["property_type"]),
        area_dm2=row["area_dm2"],
        listed_price_fen=row["listed_price_fen"],
        in_pool=row["in_pool"],
    )


# --- tickets (T1-T3, T6, T13) -----------------------------------------------------------

_STATE = (
    "holder",
    "status",
    "balance_fen",
    "used_fen",
    "cashed_out_fen",
    "returned_fen",
    "split_out_fen",
    "transfers",
    "lost_notice_on",
    "number",
    "home_kept_doc",
    "home_kept_on",
)
"""The columns an act changes (the rest of a ticket never changes once issued)."""

_TICKET_SQL = """
SELECT t.*, coalesce(array_agg(h.person) FILTER (WHERE h.person IS NOT NULL), '{}') AS household,
       coalesce((SELECT array_agg(v.number ORDER BY v.number) FROM ticket_void_numbers v
                  WHERE v.ticket_id = t.id), '{}') AS void_numbers
  FROM tickets t LEFT JOIN ticket_household h ON h.ticket_id = t.id
"""


async def new_ticket_ids(conn: Conn, count: int) -> list[int]:
    """Ids for tickets about to be issued or split (the pure core takes them)."""
    return await seeding.new_ids(conn, "tickets", count)


def _ticket(row: Mapping[str, Any]) -> Ticket:
    return Ticket(
        id=row["id"],
        campaign_id=row["campaign_id"],
        number=row["number"],
        filing_no=row["filing_no"],
        district=row["district"],
        project=row["project"],
        implementing_unit=row["implementing_unit"],
        official=row["official"],
        agreement_no=row["agreement_no"],
        agreement_date=row["agreement_date"],
        holder=row["holder"],
        household=frozenset(row["household"]),
        area_dm2=row["area_dm2"],
        items=tuple(FaceItem(i["code"], i["amount_fen"]) for i in json.loads(row["items"])),
        face_value_fen=row["face_value_fen"],
        issued_on=row["issued_on"],
        deadline=row["deadline"],
        original_id=row["original_id"],
        parent_id=row["parent_id"],
        generation=row["generation"],
        status=TicketStatus(row["status"]),
        balance_fen=row["balance_fen"],
        used_fen=row["used_fen"],
        cashed_out_fen=row["cashed_out_fen"],
        returned_fen=row["returned_fen"],
        split_out_fen=row["split_out_fen"],
        transfers=row["transfers"],
        void_numbers=tuple(row["void_numbers"]),
        lost_notice_on=row["lost_notice_on"],
        home_kept_doc=row["home_kept_doc"],
        home_kept_on=row["home_kept_on"],
    )


async def read_tickets(conn: Conn, ids: Iterable[int]) -> dict[int, Ticket]:
    """The tickets with these ids (missing ids are simply absent)."""
    rows = await conn.fetch(_TICKET_SQL + " WHERE t.id = ANY($1) GROUP BY t.id", list(ids))
    return {row["id"]: _ticket(row) for row in rows}


async def read_family(conn: Conn, original_id: int) -> list[Ticket]:
    """Rule T6: an original ticket and its pieces, by id."""
    rows = await conn.fetch(
        _TICKET_SQL + " WHERE t.original_id = $1 GROUP BY t.id ORDER BY t.id", original_id
    )
    return [_ticket(row) for row in rows]


async def tickets_of_holder(
    conn: Conn, holder: str, campaign_id: str | None = None
) -> list[Ticket]:
    """Rules T1, T5: a person's tickets (every status), of one programme or all, by id."""
    rows = await conn.fetch(
        _TICKET_SQL + " WHERE t.holder = $1 AND ($2::text IS NULL OR t.campaign_id = $2)"
        " GROUP BY t.id ORDER BY t.id",
        holder,
        campaign_id,
    )
    return [_ticket(row) for row in rows]


async def _event(
    conn: Conn,
    *,
    actor: str,
    act: str,
    ticket_id: int | None,
    use_id: int | None = None,
    amount_fen: int | None = None,
    documents: Mapping[str, str] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO ticket_events (actor, act, ticket_id, use_id, amount_fen, documents) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        actor,
        act,
        ticket_id,
        use_id,
        amount_fen,
        json.dumps(dict(documents or {}), ensure_ascii=False),
    )


async def log_event(
    conn: Conn,
    *,
    actor: str,
    act: str,
    ticket_id: int,
    amount_fen: int | None,
    documents: Mapping[str, str],
) -> None:
    """Rule T1: an act on a ticket that changes no ticket column (a bonus reviewed, a payout
    paid), audited with its documents."""
    await _event(
        conn, actor=actor, act=act, ticket_id=ticket_id, amount_fen=amount_fen, documents=documents
    )


async def insert_tickets(
    conn: Conn, tickets: Sequence[Ticket], *, actor: str, act: str, documents: Mapping[str, str]
) -> None:
    """Rules T1/T6: new tickets (issued, or the pieces of a split), each audited. Their ids
    come from ``new_ticket_ids``. A printed number already held by another ticket raises
    ``Conflict`` (details.reason ``ticket_number_taken``), all or nothing."""
    try:
        await _insert_tickets(conn, tickets, actor=actor, act=act, documents=documents)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != "tickets_number_key":
            raise
        raise Conflict("a ticket with this number exists", reason="ticket_number_taken") from exc


async def _insert_tickets(
    conn: Conn, tickets: Sequence[Ticket], *, actor: str, act: str, documents: Mapping[str, str]
) -> None:
    async with conn.transaction():
        for t in tickets:
            await conn.execute(
                """
                INSERT INTO tickets (id, campaign_id, number, filing_no, district, project,
                    implementing_unit, official, agreement_no, agreement_date, holder, area_dm2,
                    items, face_value_fen, issued_on, deadline, original_id, parent_id,
                    generation, status, balance_fen, transfers, home_kept_doc, home_kept_on)
                OVERRIDING SYSTEM VALUE
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                        $16, $17, $18, $19, $20, $21, $22, $23, $24)
                """,
                t.id,
                t.campaign_id,
                t.number,
                t.filing_no,
                t.district,
                t.project,
                t.implementing_unit,
                t.official,
                t.agreement_no,
                t.agreement_date,
                t.holder,
                t.area_dm2,
                json.dumps([{"code": i.code, "amount_fen": i.amount_fen} for i in t.items]),
                t.face_value_fen,
                t.issued_on,
                t.deadline,
                t.original_id,
                t.parent_id,
                t.generation,
                t.status.value,
                t.balance_fen,
                t.transfers,
                t.home_kept_doc,  # T4: a piece keeps its household's record
                t.home_kept_on,
            )
            await conn.executemany(
                "INSERT INTO ticket_household (ticket_id, person) VALUES ($1, $2)",
                [(t.id, person) for person in sorted(t.household)],
            )
            await _event(
                conn,
                actor=actor,
                act=act,
                ticket_id=t.id,
                amount_fen=t.face_value_fen,
                documents=documents,
            )


async def write_act(
    conn: Conn,
    before: Ticket,
    after: Ticket,
    *,
    actor: str,
    act: str,
    documents: Mapping[str, str],
    amount_fen: int | None = None,
) -> None:
    """An issuer's act on one ticket (split, transfer, heir, loss, replacement, a home kept,
    void, return, cash-out): the ticket moves from ``before`` to ``after`` only if it is
    still ``before`` (a compare-and-set on the columns acts change), with its household and
    void numbers, and the act is audited with its documents. Raises ``MustDecideAgain`` if
    the ticket changed since it was read (nothing written)."""
    sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(_STATE))
    same = " AND ".join(
        f"{c} IS NOT DISTINCT FROM ${i + 2 + len(_STATE)}" for i, c in enumerate(_STATE)
    )
    values = [_state(after), _state(before)]
    async with conn.transaction():
        done = await conn.fetchval(
            f"UPDATE tickets SET {sets} WHERE id = $1 AND {same} RETURNING id",  # noqa: S608
            before.id,
            *values[0],
            *values[1],
        )
        if done is None:
            raise MustDecideAgain("ticket_changed")
        if after.household != before.household:
            await conn.execute("DELETE FROM ticket_household WHERE ticket_id = $1", before.id)
            await conn.executemany(
                "INSERT INTO ticket_household (ticket_id, person) VALUES ($1, $2)",
                [(after.id, person) for person in sorted(after.household)],
            )
        await conn.executemany(
            "INSERT INTO ticket_void_numbers (number, ticket_id) VALUES ($1, $2)",
            [(n, after.id) for n in after.void_numbers if n not in before.void_numbers],
        )
        await _event(
            conn,
            actor=actor,
            act=act,
            ticket_id=before.id,
            amount_fen=amount_fen,
            documents=documents,
        )


def _state(t: Ticket) -> tuple[object, ...]:
    return (
        t.holder,
        t.status.value,
        t.balance_fen,
        t.used_fen,
        t.cashed_out_fen,
        t.returned_fen,
        t.split_out_fen,
        t.transfers,
        t.lost_notice_on,
        t.number,
        t.home_kept_doc,
        t.home_kept_on,
    )


# --- uses (T5-T8, T11) ------------------------------------------------------------------


def _refused(exc: asyncpg.PostgresError, use: TicketUse) -> Exception | None:
    if isinstance(exc, asyncpg.UniqueViolationError):
        constraint = exc.constraint_name or ""
        if constraint == "ticket_uses_one_per_contract":
            return ContractAlreadyUsed(contract_no=use.contract_no)  # T5 (as U4)
        if constraint == "ticket_uses_idempotency_key":
            return IdempotencyKeyInUse("a request with this Idempotency-Key was made")  # U7
    if exc.sqlstate in ("40P01", "40001"):
        return MustDecideAgain("concurrent_write")
    return None


async def write_use(
    conn: Conn,
    use: TicketUse,
    *,
    terminal_id: int,
    listing_id: int,
    idempotency_key: str,
    request_hash: bytes,
    actor: str,
) -> int:
    """Rule T5: record a use decided by ``shared.house_tickets.apply_use`` — all or nothing,
    in one transaction: the use (once per seller and contract), each draw taken from its
    ticket only if the ticket is still active and holds the amount, and the audit. Its id.

    Raises, having changed nothing: ``ContractAlreadyUsed`` (T5), ``IdempotencyKeyInUse``
    (U7: the key was used; the caller answers with the stored use), ``MustDecideAgain``
    (a ticket no longer holds its draw, or another writer came between: decide again)."""
    try:
        async with conn.transaction():
            use_id: int = await conn.fetchval(
                """
                INSERT INTO ticket_uses (campaign_id, merchant_id, terminal_id, listing_id,
                    contract_no, signed_on, price_fen, buyer, relation, reward_fen,
                    idempotency_key, request_hash, used_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id
                """,
                use.campaign_id,
                int(use.seller),
                terminal_id,
                listing_id,
                use.contract_no,
                use.signed_on,
                use.price_fen,
                use.buyer,
                use.relation.value,
                use.reward_fen,
                idempotency_key,
                request_hash,
                use.used_at,
            )
            for draw in sorted(use.draws, key=lambda d: d.ticket_id):  # one lock order
                taken = await conn.fetchval(
                    """
                    UPDATE tickets SET balance_fen = balance_fen - $2, used_fen = used_fen + $2
                     WHERE id = $1 AND status = 'active' AND balance_fen >= $2 RETURNING id
                    """,
                    draw.ticket_id,
                    draw.amount_fen,
                )
                if taken is None:
                    raise MustDecideAgain("ticket_changed")
                await conn.execute(
                    "INSERT INTO ticket_draws (use_id, ticket_id, amount_fen, subsidy_bp, "
                    "subsidy_fen) VALUES ($1, $2, $3, $4, $5)",
                    use_id,
                    draw.ticket_id,
                    draw.amount_fen,
                    draw.subsidy_bp,
                    draw.subsidy_fen,
                )
                await _event(
                    conn, actor=actor, act="use", ticket_id=draw.ticket_id, use_id=use_id,
                    amount_fen=draw.amount_fen, documents={"contract_no": use.contract_no},
                )  # fmt: skip
    except asyncpg.PostgresError as exc:
        refused = _refused(exc, use)
        if refused is None:
            raise
        raise refused from exc
    return use_id


_USE_SQL = """
SELECT u.*, l.unit, l.district, l.property_type, l.area_dm2,
       array_agg(d.ticket_id ORDER BY d.ticket_id) AS ticket_ids,
       array_agg(d.amount_fen ORDER BY d.ticket_id) AS amounts,
       array_agg(d.subsidy_bp ORDER BY d.ticket_id) AS rates,
       array_agg(d.subsidy_fen ORDER BY d.ticket_id) AS subsidies
  FROM ticket_uses u JOIN listings l ON l.id = u.listing_id
  JOIN ticket_draws d ON d.use_id = u.id
"""


def _use(row: Mapping[str, Any]) -> TicketUse:
    draws = zip(row["ticket_ids"], row["amounts"], row["rates"], row["subsidies"], strict=True)
    return TicketUse(
        campaign_id=row["campaign_id"],
        seller=str(row["merchant_id"]),
        contract_no=row["contract_no"],
        unit=row["unit"],
        district=row["district"],
        property_type=PropertyType(row["property_type"]),
        area_dm2=row["area_dm2"],
        price_fen=row["price_fen"],
        signed_on=row["signed_on"],
        buyer=row["buyer"],
        relation=Relation(row["relation"]),
        draws=tuple(Draw(*d) for d in draws),
        reward_fen=row["reward_fen"],
        used_at=row["used_at"],
        cancelled=row["cancelled_at"] is not None,
    )


async def uses_of(conn: Conn, ticket_ids: Iterable[int]) -> list[TicketUse]:
    """Every use (live or cancelled) drawing on any of these tickets, by signing date."""
    rows = await conn.fetch(
        _USE_SQL  # noqa: S608 (constant text, no input in it)
        + """ WHERE u.id IN (SELECT use_id FROM ticket_draws WHERE ticket_id = ANY($1))
              GROUP BY u.id, l.id ORDER BY u.signed_on, u.id""",
        list(ticket_ids),
    )
    return [_use(row) for row in rows]


async def use_of_contract(conn: Conn, merchant_id: int, contract_no: str) -> TicketUse | None:
    """The use of a seller's contract (T5), if any."""
    row = await conn.fetchrow(
        _USE_SQL + " WHERE u.merchant_id = $1 AND u.contract_no = $2 GROUP BY u.id, l.id",
        merchant_id,
        contract_no,
    )
    return None if row is None else _use(row)


@dataclass(frozen=True, slots=True)
class KeyedUse:
    """Rule U7: the use a terminal wrote under an idempotency key, with its id and the hash of
    the request that made it."""

    id: int
    use: TicketUse
    request_hash: bytes


async def use_by_key(conn: Conn, terminal_id: int, key: str) -> KeyedUse | None:
    """Rule U7: the use written at ``terminal_id`` under ``key``, if any."""
    row = await conn.fetchrow(
        _USE_SQL + " WHERE u.terminal_id = $1 AND u.idempotency_key = $2 GROUP BY u.id, l.id",
        terminal_id,
        key,
    )
    return None if row is None else KeyedUse(row["id"], _use(row), bytes(row["request_hash"]))


async def write_cancel(
    conn: Conn,
    before: Sequence[Ticket],
    cancelled: Cancelled,
    *,
    actor: str,
    proof_no: str,
) -> None:
    """Rule T11: record a cancellation decided by ``shared.house_tickets.cancel_use``: the use
    marked cancelled (once: ``ContractAlreadyCancelled``) and each ticket moved as decided
    (``MustDecideAgain`` if one changed since it was read), all or nothing."""
    use = cancelled.use
    by_id = {t.id: t for t in before}
    async with conn.transaction():
        use_id = await conn.fetchval(
            "UPDATE ticket_uses SET cancelled_at = now() WHERE merchant_id = $1 "
            "AND contract_no = $2 AND cancelled_at IS NULL RETURNING id",
            int(use.seller),
            use.contract_no,
        )
        if use_id is None:
            raise ContractAlreadyCancelled(contract_no=use.contract_no)
        for after in cancelled.tickets:
            await write_act(
                conn,
                by_id[after.id],
                after,
                actor=actor,
                act="cancel",
                documents={"contract_no": use.contract_no, "proof_no": proof_no},
                amount_fen=sum(d.amount_fen for d in use.draws if d.ticket_id == after.id),
            )


# --- the issuer's and the operators' reads (issue 13: T1, T5, T10-T14) ------------------


async def programme_tickets(
    conn: Conn, campaign_id: str, district: str | None = None
) -> list[Ticket]:
    """Rules T14 and T10: every ticket and piece of a programme (of one issuing district), by
    id: what the reports and the bonus reviews go through."""
    rows = await conn.fetch(
        _TICKET_SQL
        + " WHERE t.campaign_id = $1 AND ($2::text IS NULL OR t.district = $2)"
        + " GROUP BY t.id ORDER BY t.id",
        campaign_id,
        district,
    )
    return [_ticket(row) for row in rows]


async def ticket_by_number(conn: Conn, number: str) -> tuple[int, bool] | None:
    """The ticket a printed number names and whether that number was replaced after a loss
    (T13: it is void), or None."""
    row = await conn.fetchrow(
        "SELECT id, false AS replaced FROM tickets WHERE number = $1 UNION ALL "
        "SELECT ticket_id, true FROM ticket_void_numbers WHERE number = $1",
        number,
    )
    return None if row is None else (row["id"], row["replaced"])


@dataclass(frozen=True, slots=True)
class TicketEvent:
    """One audited act (T1): who, when, what, on which ticket or use, with its documents."""

    id: int
    at: datetime
    actor: str
    act: str
    ticket_id: int | None
    use_id: int | None
    amount_fen: int | None
    documents: dict[str, str]


async def events_of(conn: Conn, ticket_ids: Iterable[int]) -> list[TicketEvent]:
    """Rule T1: the audit trail of these tickets, oldest first."""
    rows = await conn.fetch(
        "SELECT id, at, actor, act, ticket_id, use_id, amount_fen, documents "
        "FROM ticket_events WHERE ticket_id = ANY($1) ORDER BY id",
        list(ticket_ids),
    )
    return [TicketEvent(**{**dict(r), "documents": json.loads(r["documents"])}) for r in rows]


async def programme_uses(
    conn: Conn,
    campaign_id: str | None,
    *,
    use_ids: Sequence[int] | None = None,
    ticket_ids: Sequence[int] | None = None,
) -> list[tuple[int, TicketUse]]:
    """Rules T11, T12, T14: a programme's uses (live and cancelled) — all, those of
    ``use_ids``, or those drawing on ``ticket_ids`` — each with its ledger id, by signing
    date (``campaign_id`` None: of any programme)."""
    rows = await conn.fetch(
        _USE_SQL  # noqa: S608 (constant text, no input in it)
        + """ WHERE ($1::text IS NULL OR u.campaign_id = $1)
                AND ($2::bigint[] IS NULL OR u.id = ANY($2))
                AND ($3::bigint[] IS NULL OR u.id IN (
                     SELECT use_id FROM ticket_draws WHERE ticket_id = ANY($3)))
              GROUP BY u.id, l.id ORDER BY u.signed_on, u.id""",
        campaign_id,
        None if use_ids is None else list(use_ids),
        None if ticket_ids is None else list(ticket_ids),
    )
    return [(row["id"], _use(row)) for row in rows]


async def use_ids_of_contract(conn: Conn, merchant_id: int, contract_no: str) -> int | None:
    """The ledger id of a seller's contract's use (T5), if any."""
    found = await conn.fetchval(
        "SELECT id FROM ticket_uses WHERE merchant_id = $1 AND contract_no = $2",
        merchant_id,
        contract_no,
    )
    return None if found is None else int(found)
