"""House tickets in the ledger (rules T1, T3, T5, T11; issue 13), on real PostgreSQL: a ticket
reads back as issued, a contract is paid once, a stale decision writes nothing, and 200
concurrent uses of one Shangqiu ticket over different contracts, each asking 60% of its face
value, leave exactly one."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from datetime import date

import asyncpg
import pytest

from server.db import Conn
from server.db import campaigns as campaign_db
from server.db import tickets as tickets_db
from server.db.invariants import check_ledger
from shared.errors import (
    ContractAlreadyCancelled,
    ContractAlreadyUsed,
    TicketBalanceInsufficient,
)
from shared.house_tickets import (
    CancelElection,
    Ticket,
    TicketUse,
    apply_use,
    cancel_use,
    issue_ticket,
    pass_to_heir,
    quote_use,
)
from shared.redemption import MustDecideAgain
from tests import factories as f
from tests.unit.ticket_helpers import SQ, WAN, at, contract, listing, request

ISSUED = date(2025, 3, 1)
FACE = 100 * WAN


@dataclasses.dataclass(frozen=True)
class Office:
    """A developer's sales office with one unit in the pool, and a ticket of its own."""

    merchant_id: int
    terminal_id: int
    listing_id: int
    ticket: Ticket


async def office(conn: Conn) -> Office:
    await tickets_db.upsert_programme(conn, SQ)
    merchant_id = await f.merchant(conn, "liangyuan")
    terminal_id = await f.terminal(conn, merchant_id)
    unit = dataclasses.replace(listing(SQ, price=2 * FACE), seller=str(merchant_id))
    listing_id = await tickets_db.insert_listing(conn, SQ.id, unit)
    (ticket_id,) = await tickets_db.new_ticket_ids(conn, 1)
    req = dataclasses.replace(request(SQ, face=FACE), number=f.ref("SQ"))
    ticket = issue_ticket(SQ, req, ticket_id=ticket_id, issued_on=ISSUED)
    await tickets_db.insert_tickets(
        conn, [ticket], actor="issuer", act="issue", documents={"agreement_no": req.agreement_no}
    )
    return Office(merchant_id, terminal_id, listing_id, ticket)


def decided_use(o: Office, ticket: Ticket, contract_no: str, amount: int) -> TicketUse:
    unit = dataclasses.replace(listing(SQ, price=2 * FACE), seller=str(o.merchant_id))
    q = quote_use(
        SQ, [ticket], unit, contract(ISSUED, price=2 * FACE, no=contract_no), at(ISSUED), [amount]
    )
    _, use = apply_use(q, [ticket], at(ISSUED))
    return use


async def ticket_violations(conn: Conn) -> list[str]:
    """The ledger check's house-ticket findings (the suite shares one ledger, where voucher
    tests leave rows of their own making)."""
    return [v.check for v in await check_ledger(conn) if v.check.startswith("ticket_")]


async def write(conn: Conn, o: Office, use: TicketUse, key: str) -> int:
    return await tickets_db.write_use(
        conn,
        use,
        terminal_id=o.terminal_id,
        listing_id=o.listing_id,
        idempotency_key=key,
        request_hash=hashlib.sha256(key.encode()).digest(),
        actor="till",
    )


async def test_an_issued_ticket_reads_back_as_issued_and_its_issue_is_audited(
    db_pool: asyncpg.Pool,
) -> None:
    # T1: every act audited with its documents' numbers
    async with db_pool.acquire() as conn:
        o = await office(conn)
        stored = await tickets_db.read_tickets(conn, [o.ticket.id])
        assert stored == {o.ticket.id: o.ticket}
        assert await tickets_db.read_family(conn, o.ticket.id) == [o.ticket]
        event = await conn.fetchrow(
            "SELECT act, amount_fen, documents FROM ticket_events WHERE ticket_id = $1",
            o.ticket.id,
        )
        assert event is not None
        assert (event["act"], event["amount_fen"]) == ("issue", FACE)
        assert json.loads(event["documents"]) == {"agreement_no": o.ticket.agreement_no}
        found = await tickets_db.listing(conn, o.merchant_id, "1-101")
        assert found is not None and found[1].in_pool


async def test_200_concurrent_uses_asking_60_percent_leave_exactly_one(
    db_pool: asyncpg.Pool,
) -> None:
    # issue 13's figure: T5, one ticket, 200 contracts, each 60% of the face value
    async with db_pool.acquire() as conn:
        o = await office(conn)

    async def attempt(n: int) -> str:
        async with db_pool.acquire() as conn:
            for _ in range(3):  # a stale decision is decided again from a fresh read
                ticket = (await tickets_db.read_tickets(conn, [o.ticket.id]))[o.ticket.id]
                try:
                    use = decided_use(o, ticket, f"WQ-{n}", 60 * WAN)
                except TicketBalanceInsufficient:
                    return "refused"
                try:
                    await write(conn, o, use, f"key-{n}")
                except MustDecideAgain:
                    continue
                return "used"
        return "gave_up"

    outcomes = await asyncio.gather(*(attempt(n) for n in range(200)))
    assert sorted(set(outcomes)) == ["refused", "used"]
    assert outcomes.count("used") == 1
    async with db_pool.acquire() as conn:
        ticket = (await tickets_db.read_tickets(conn, [o.ticket.id]))[o.ticket.id]
        assert (ticket.used_fen, ticket.balance_fen) == (60 * WAN, 40 * WAN)
        assert len(await tickets_db.uses_of(conn, [o.ticket.id])) == 1
        assert await ticket_violations(conn) == []


async def test_a_contract_is_paid_once_and_a_second_use_changes_nothing(
    db_pool: asyncpg.Pool,
) -> None:
    # T5 (as U4): seller + contract number, once
    async with db_pool.acquire() as conn:
        o = await office(conn)
        await write(conn, o, decided_use(o, o.ticket, "WQ-7", 10 * WAN), "k1")
        after_one = (await tickets_db.read_tickets(conn, [o.ticket.id]))[o.ticket.id]
        again = decided_use(o, after_one, " ｗｑ-7 ", 10 * WAN)  # the same contract, respelled
        with pytest.raises(ContractAlreadyUsed):
            await write(conn, o, again, "k2")
        assert (await tickets_db.read_tickets(conn, [o.ticket.id]))[o.ticket.id] == after_one
        stored = await tickets_db.use_of_contract(conn, o.merchant_id, "WQ-7")
        assert stored is not None and stored.amount_fen == 10 * WAN


async def test_a_stale_issuers_act_writes_nothing(db_pool: asyncpg.Pool) -> None:
    # T3: an heir decided from a ticket that was used since is decided again
    async with db_pool.acquire() as conn:
        o = await office(conn)
        heirs = pass_to_heir(
            SQ, o.ticket, heir="heir", heir_household=frozenset(), certificate_no="J"
        )
        await write(conn, o, decided_use(o, o.ticket, "WQ-1", 10 * WAN), "k1")
        with pytest.raises(MustDecideAgain):
            await tickets_db.write_act(
                conn, o.ticket, heirs, actor="issuer", act="heir", documents={"certificate_no": "J"}
            )
        fresh = (await tickets_db.read_tickets(conn, [o.ticket.id]))[o.ticket.id]
        assert fresh.holder == o.ticket.holder
        heirs = pass_to_heir(SQ, fresh, heir="heir", heir_household=frozenset(), certificate_no="J")
        await tickets_db.write_act(
            conn, fresh, heirs, actor="issuer", act="heir", documents={"certificate_no": "J"}
        )
        assert (await tickets_db.read_tickets(conn, [o.ticket.id]))[o.ticket.id] == heirs


async def test_a_cancelled_contract_restores_the_ticket_once(db_pool: asyncpg.Pool) -> None:
    # T11
    async with db_pool.acquire() as conn:
        o = await office(conn)
        await write(conn, o, decided_use(o, o.ticket, "WQ-1", 30 * WAN), "k1")
        (used,) = (await tickets_db.read_tickets(conn, [o.ticket.id])).values()
        (stored,) = await tickets_db.uses_of(conn, [o.ticket.id])
        back = cancel_use(
            stored,
            [used],
            proof_no="解除证明",
            elect=CancelElection.REISSUE,
            paid_to_seller_fen=0,
            by_issuer=False,
        )
        await tickets_db.write_cancel(conn, [used], back, actor="issuer", proof_no="解除证明")
        restored = (await tickets_db.read_tickets(conn, [o.ticket.id]))[o.ticket.id]
        assert restored == o.ticket
        (cancelled,) = await tickets_db.uses_of(conn, [o.ticket.id])
        assert cancelled.cancelled
        with pytest.raises(ContractAlreadyCancelled):
            await tickets_db.write_cancel(conn, [restored], back, actor="issuer", proof_no="P")
        assert await ticket_violations(conn) == []


async def test_the_ledger_refuses_accounts_that_do_not_add_up(db_pool: asyncpg.Pool) -> None:
    # T5: the constraint, whatever the code
    async with db_pool.acquire() as conn:
        o = await office(conn)
        with pytest.raises(asyncpg.CheckViolationError, match="tickets_accounts_add_up"):
            await conn.execute(
                "UPDATE tickets SET balance_fen = balance_fen - 1 WHERE id = $1", o.ticket.id
            )


class _Undo(Exception):
    """Rolls a test's corruption back: the suite shares one ledger, which must stay sound."""


async def test_the_ledger_check_finds_a_ticket_used_without_a_use(db_pool: asyncpg.Pool) -> None:
    # T5: used_fen moved without a draw (the accounts still add up) is found
    async with db_pool.acquire() as conn:
        o = await office(conn)
        with pytest.raises(_Undo):
            async with conn.transaction():
                await conn.execute(
                    "UPDATE tickets SET balance_fen = balance_fen - 5, used_fen = used_fen + 5 "
                    "WHERE id = $1",
                    o.ticket.id,
                )
                found = {v.check: v for v in await check_ledger(conn)}
                assert found["ticket_used_vs_draws"].examples[0]["ticket_id"] == o.ticket.id
                raise _Undo
        assert await ticket_violations(conn) == []


async def test_house_ticket_programmes_are_not_loaded_as_voucher_campaigns(
    db_pool: asyncpg.Pool,
) -> None:
    # C1: a server starting on this ledger loads only voucher campaigns from it
    async with db_pool.acquire() as conn:
        await tickets_db.upsert_programme(conn, SQ)
        kinds = {c.get("kind", "voucher") for c in await campaign_db.stored_configs(conn)}
        assert kinds <= {"voucher"}
        assert await conn.fetchval("SELECT count(*) FROM campaigns WHERE id = $1", SQ.id) == 1
