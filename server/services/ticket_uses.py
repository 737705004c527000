"""A house ticket's use at a developer's sales office (rules T2, T4-T8; issue 13), on the
till's engine: the holder's code (U5), the guard and the key (U7), the seller's standing (U1,
X1), one read, one decision, one write.

``quote``: verify the holder's code, read the context, decide (``shared.ticket_till``):
what the contract may draw on the holder's ticket, the allowed range, the subsidy or reward
and what the buyer still pays. Changes nothing.

``use``, under the guard (``server/services/guarded.py``: a used code, a key in flight, the
holder's lock, refusals kept under the key):

1. The key's first answer, if it has one (U7).
2. One read of the ledger (``server.db.ticket_till.read_use_context``) and the decision.
3. One transaction: the fence (the terminal, seller, holder and unit still in standing,
   ``FOR SHARE``; the code recorded as used) and the use (``server.db.tickets.write_use``:
   once per seller and contract, each draw a conditional update of its ticket's balance).
4. A write refused because the ledger moved (a balance taken, a standing lost, a deadlock)
   is decided again from a fresh read, three times at most; a contract or key that another
   request took meanwhile gets that request's answer when it was the same key, else the
   refusal.

So nothing is drawn twice, whatever the concurrency: 200 uses of one ticket asking 60% of
its face value each over 200 contracts leave exactly one (``tests/e2e/test_ticket_till.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import partial

from server.db import Conn
from server.db import ticket_till as db
from server.db import tickets as tickets_db
from server.db.ticket_till import Fence, PoolUnit, UseQuery
from server.services import guarded
from server.services.guarded import Refused
from server.services.ports import Ports, TillPorts
from shared.errors import (
    ContractAlreadyUsed,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    NotFound,
    TokenReplayed,
    VoucherError,
)
from shared.house_tickets import Ticket, TicketUse, apply_use
from shared.idnumber import hash_id_number, mask_id_number, validate_id_number
from shared.redemption import MustDecideAgain
from shared.ticket_campaign import Relation
from shared.ticket_till import UseAsk, UseDecision, decide_use
from shared.tokens import QrClaims

RETRIES = 3  # decisions of one use before "busy, retry with the same key"
# what the fence and the write refuse with (``server.db.ticket_till``, ``server.db.tickets``)
WRITE_REFUSALS = (MustDecideAgain, ContractAlreadyUsed, IdempotencyKeyInUse, TokenReplayed)


@dataclass(frozen=True, slots=True)
class ContractIn:
    """The purchase contract as the sales office entered it (rule T5). ``buyer_id_number``:
    the buyer's ID number, None for the holder; it is checked (E1) and hashed (X3), never
    kept."""

    contract_no: str  # normalised (``shared.house_tickets.normalise_contract_no``)
    unit: str
    signed_on: date
    price_fen: int
    relation: Relation
    buyer_id_number: str | None = None
    relation_proof: str = ""
    numbers: tuple[str, ...] = ()
    amounts: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class QuoteUse:
    terminal_id: int
    token: str
    contract: ContractIn


@dataclass(frozen=True, slots=True)
class UseTicket:
    """What a sales office confirms. ``digest`` identifies the request under ``key`` (U7)."""

    terminal_id: int
    key: str
    digest: bytes
    token: str
    contract: ContractIn


@dataclass(frozen=True, slots=True)
class Quoted:
    decision: UseDecision
    buyer_masked: str | None  # the buyer's masked ID number, when not the holder
    token_expires_at: datetime


@dataclass(frozen=True, slots=True)
class Used:
    """A use written (or the key's first use, given again). ``tickets``: the tickets drawn on,
    as they are after it (on a replay: as they are now)."""

    use_id: int
    use: TicketUse
    tickets: tuple[Ticket, ...]
    holder_masked: str | None
    replay: bool = False


UseResult = Used | Refused


def _ask(ports: Ports, contract: ContractIn, now: datetime) -> tuple[UseAsk, str | None]:
    """The decision's input, with the buyer's person key (rules E1, X3) and masked number."""
    buyer = masked = None
    if contract.buyer_id_number is not None:
        today = now.astimezone(ports.tz).date()
        number = validate_id_number(contract.buyer_id_number, today)  # rule E1
        buyer = hash_id_number(number, ports.settings.id_hash_key).hex()  # rule X3
        masked = mask_id_number(number)
    ask = UseAsk(
        contract_no=contract.contract_no,
        unit=contract.unit,
        signed_on=contract.signed_on,
        price_fen=contract.price_fen,
        relation=contract.relation,
        buyer=buyer,
        relation_proof=contract.relation_proof,
        numbers=contract.numbers,
        amounts=contract.amounts,
    )
    return ask, masked


def _query(terminal_id: int, claims: QrClaims, contract: ContractIn) -> UseQuery:
    return UseQuery(terminal_id, claims.holder, claims.jti, contract.unit, contract.contract_no)


async def quote(cmd: QuoteUse, ports: TillPorts) -> Quoted:
    """Rules T2, T4-T8 (with U1, U5, X1): what the contract may draw, or the refusal. Changes
    nothing."""
    now = ports.clock()
    claims = ports.qr_verifier.verify(cmd.token, now)  # rule U5
    ask, masked = _ask(ports, cmd.contract, now)
    async with ports.pool.acquire() as conn:
        ctx = await db.read_use_context(conn, _query(cmd.terminal_id, claims, cmd.contract))
    decision = decide_use(ctx, ports.programmes, ask, now)
    return Quoted(decision, masked, claims.expires_at)


async def use(cmd: UseTicket, ports: TillPorts) -> UseResult:
    """Rules T5-T8 with U5, U7: draw the quoted amounts on the holder's tickets for the
    contract, once, or nothing. Raises the errors about the request or its key (never kept);
    a refusal of the use is kept under the key and answered ``Refused``."""
    count = ports.metrics.ticket_uses.labels
    stored = partial(_stored_answer, cmd=cmd)
    try:
        claims = ports.qr_verifier.verify(cmd.token, ports.clock())  # rule U5
    except VoucherError as exc:
        # a retry after the code expired still gets its first answer
        found = await guarded.stored_now(ports, stored)
        if found is not None:
            return found
        count(exc.code).inc()
        raise
    return await guarded.under_guard(
        ports,
        guarded.Keyed(cmd.terminal_id, cmd.key, cmd.digest),
        claims,
        work=lambda locked: _use_in_ledger(ports, cmd, claims),
        stored=stored,
        succeeded=lambda result: isinstance(result, Used),
        count=lambda code: count(code).inc(),
    )


async def _use_in_ledger(ports: TillPorts, cmd: UseTicket, claims: QrClaims) -> UseResult:
    """Steps 1-4 of the module's docstring."""
    async with ports.pool.acquire() as conn:
        for _ in range(RETRIES):
            now = ports.clock()
            found = await _stored_answer(conn, now, cmd=cmd)  # U7: Redis could not say so
            if found is not None:
                return found
            ask, _ = _ask(ports, cmd.contract, now)
            ctx = await db.read_use_context(conn, _query(cmd.terminal_id, claims, cmd.contract))
            decision = decide_use(ctx, ports.programmes, ask, now)
            after, decided = apply_use(decision.quote, decision.tickets, now)  # rule T5
            fence = Fence(
                terminal_id=cmd.terminal_id,
                citizen_id=decision.citizen_id,
                listing_id=decision.listing_id,
                jti=claims.jti,
                jti_expires_at=claims.expires_at,
                key=cmd.key,
                now=now,
            )
            try:
                async with conn.transaction():
                    await db.fence(conn, fence)
                    use_id = await tickets_db.write_use(
                        conn,
                        decided,
                        terminal_id=cmd.terminal_id,
                        listing_id=decision.listing_id,
                        idempotency_key=cmd.key,
                        request_hash=cmd.digest,
                        actor=f"terminal:{cmd.terminal_id}",
                    )
            except (
                MustDecideAgain,
                ContractAlreadyUsed,
                IdempotencyKeyInUse,
                TokenReplayed,
            ) as exc:
                # a concurrent request under the same key may have written first (U7)
                found = await _stored_answer(conn, ports.clock(), cmd=cmd)
                if found is not None:
                    return found
                if isinstance(exc, MustDecideAgain):
                    continue  # a balance taken, a standing lost, a deadlock: again
                raise
            ports.metrics.ticket_uses.labels("ok").inc()
            return Used(use_id, decided, after, decision.ctx.id_masked)
    raise IdempotencyKeyInUse("the holder's tickets are busy; retry with the same key")


async def _used(conn: Conn, found: tickets_db.KeyedUse, *, replay: bool) -> Used:
    ids = [d.ticket_id for d in found.use.draws]
    tickets = await tickets_db.read_tickets(conn, ids)
    drawn = tuple(tickets[i] for i in ids if i in tickets)
    masked = await db.masked_id_of(conn, drawn[0].holder) if drawn else None
    return Used(found.id, found.use, drawn, masked, replay=replay)


async def _stored_answer(conn: Conn, now: datetime, *, cmd: UseTicket) -> UseResult | None:
    """Rule U7: the same key and body get the first answer, the use (its tickets as they are
    now) or the refusal kept under the key; another body is refused
    ``idempotency_key_reused``."""
    found = await tickets_db.use_by_key(conn, cmd.terminal_id, cmd.key)
    if found is not None:
        if found.request_hash != cmd.digest:
            raise IdempotencyKeyReused("this Idempotency-Key was used for another request")
        return await _used(conn, found, replay=True)
    return await guarded.kept_refusal(conn, guarded.Keyed(cmd.terminal_id, cmd.key, cmd.digest))


async def find_by_key(
    terminal_id: int, key: str, ports: TillPorts, code: str | None = None
) -> Used:
    """Rule U7: the use a terminal asked for under ``key`` and lost the answer of. Refused
    ``idempotency_key_in_use`` while that request is still at work, ``not_found`` if it wrote
    nothing (a refusal is kept: sending the same request again answers it). ``code``: the
    holder's code that request carried; the key is marked at work in the holder's Redis slot
    (issue 14), so without it and with nothing under the key the answer is
    ``voucher_code_required`` (``guarded.still_at_work``)."""
    holder = guarded.holder_of(ports, code)  # a forged code: refused before anything is read
    async with ports.pool.acquire() as conn:
        found = await tickets_db.use_by_key(conn, terminal_id, key)
        if found is not None:
            return await _used(conn, found, replay=True)
    await guarded.still_at_work(ports, terminal_id, key, holder)
    raise NotFound("no ticket use under this key at this terminal")


async def listing_pool(merchant_id: int, ports: Ports) -> list[PoolUnit]:
    """Rule T4: the seller's units, for its sales office's till."""
    async with ports.pool.acquire() as conn:
        return await db.pool_of(conn, merchant_id)
