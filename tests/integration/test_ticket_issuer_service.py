"""The issuer's acts as services on real PostgreSQL (issue 13, rules T1, T3, T5): an act
decided from a ticket that a sales office's use changed before the act's write writes
nothing, is decided again from a fresh read, and is audited once; a ticket that keeps
changing ends in a clear refusal; ID numbers never reach the ledger (X3)."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from datetime import UTC, date, datetime

import asyncpg
import pytest

from server.auth import Principal, Role
from server.campaign_files import bundled_campaigns_dir
from server.db import Conn
from server.db import tickets as tickets_db
from server.services import ticket_issuance as issuance
from server.services.ports import Ports
from server.settings import Settings
from shared.errors import Conflict
from shared.house_tickets import FaceItem, Ticket, apply_use, pass_to_heir, quote_use
from shared.ticket_campaign import TicketCampaign
from shared.tokens import QrKey
from tests import factories as f
from tests.conftest import Services
from tests.e2e.conftest import new_id_number
from tests.unit.ticket_helpers import SQ, TZ, WAN, contract, listing

NOW = datetime(2024, 9, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shangqiu
ISSUER = Principal(Role.TICKET_ISSUER, "issuer-test", district="liangyuan", account_id=None)


@pytest.fixture
async def ports(test_services: Services, db_pool: asyncpg.Pool) -> Ports:
    settings = Settings(
        database_url=test_services.database_url,
        redis_url=test_services.redis_url,
        id_hash_key=secrets.token_bytes(32),
        access_token_secret=secrets.token_bytes(32),
        qr_keys=(QrKey.generate("V"),),
        idp_issuer="https://idp.test",
        idp_keys={},
        campaign_files=(bundled_campaigns_dir() / "liaocheng-2024.toml",),
    )
    async with db_pool.acquire() as conn:
        await tickets_db.upsert_programme(conn, SQ)
    return Ports(
        pool=db_pool,
        settings=settings,
        clock=lambda: NOW,
        tz=TZ,
        campaigns={},
        programmes={SQ.id: SQ},
    )


async def issued(ports: Ports, holder: str) -> Ticket:
    cmd = issuance.IssueTicket(
        campaign_id=SQ.id,
        number=f.ref("SVC"),
        filing_no="BA-1",
        district="liangyuan",
        project="某某片区",
        housing_delivered=False,
        cash_paid=False,
        implementing_unit="梁园区房屋征收服务中心",
        official="经办人",
        agreement_no="XY-1",
        agreement_date=date(2024, 9, 1),
        holder_id_number=holder,
        household_id_numbers=(),
        area_dm2=None,
        items=(FaceItem("compensation", 100 * WAN),),
    )
    return (await issuance.issue(ports, ISSUER, cmd)).ticket


async def a_use_at_the_till(conn: Conn, ticket: Ticket, campaign: TicketCampaign) -> None:
    """What a sales office's use writes, between the act's read and its write."""
    merchant_id = await f.merchant(conn, "liangyuan")
    terminal_id = await f.terminal(conn, merchant_id)
    unit = dataclasses.replace(listing(campaign, price=200 * WAN), seller=str(merchant_id))
    listing_id = await tickets_db.insert_listing(conn, campaign.id, unit)
    deal = contract(date(2024, 9, 10), price=200 * WAN, buyer=ticket.holder, no=f.ref("WQ"))
    q = quote_use(campaign, [ticket], unit, deal, NOW, [10 * WAN])
    _, use = apply_use(q, [ticket], NOW)
    key = f.ref("k")
    await tickets_db.write_use(
        conn,
        use,
        terminal_id=terminal_id,
        listing_id=listing_id,
        idempotency_key=key,
        request_hash=hashlib.sha256(key.encode()).digest(),
        actor="cashier",
    )


async def test_an_act_overtaken_by_a_use_is_decided_again_and_audited_once(
    ports: Ports, db_pool: asyncpg.Pool
) -> None:
    # T3 and T5: the heir's act was decided from the ticket before a use; its compare-and-set
    # finds the ticket changed, writes nothing, and the act is decided again on the fresh one
    ticket = await issued(ports, new_id_number())
    heir = new_id_number()
    calls = 0

    async def decide(conn: Conn, c: TicketCampaign, t: Ticket, now: datetime) -> issuance.Decided:
        nonlocal calls
        calls += 1
        if calls == 1:
            async with db_pool.acquire() as other:
                await a_use_at_the_till(other, t, c)
        (person,) = issuance.persons(ports, [heir], date(2024, 9, 10), "heir_id_number")
        after = pass_to_heir(c, t, heir=person.key, heir_household=frozenset(), certificate_no="J")
        return issuance.Decided(after, {"certificate_no": "J"}, persons=(person,))

    done = await issuance.act_on(ports, ISSUER, ticket.id, "heir", decide)
    assert calls == 2
    assert (done.ticket.used_fen, done.ticket.balance_fen) == (10 * WAN, 90 * WAN)
    assert done.ticket.holder == issuance.persons(ports, [heir], date(2024, 9, 10), "x")[0].key
    assert [e.act for e in done.events] == ["issue", "use", "heir"]
    async with db_pool.acquire() as conn:
        stored = await conn.fetch(
            "SELECT holder FROM tickets WHERE id = $1 UNION ALL "
            "SELECT person FROM ticket_household WHERE ticket_id = $1",
            ticket.id,
        )
        assert heir not in str([tuple(r) for r in stored])  # X3: a key, never the number


async def test_a_ticket_that_keeps_changing_ends_in_a_clear_refusal(
    ports: Ports, db_pool: asyncpg.Pool
) -> None:
    # every attempt is overtaken: after ATTEMPTS, 409 conflict (ticket_changed), nothing written
    ticket = await issued(ports, new_id_number())

    async def decide(conn: Conn, c: TicketCampaign, t: Ticket, now: datetime) -> issuance.Decided:
        async with db_pool.acquire() as other:
            await a_use_at_the_till(other, t, c)
        after = pass_to_heir(c, t, heir="someone", heir_household=frozenset(), certificate_no="J")
        return issuance.Decided(after, {"certificate_no": "J"})

    with pytest.raises(Conflict) as refused:
        await issuance.act_on(ports, ISSUER, ticket.id, "heir", decide)
    assert refused.value.details["reason"] == "ticket_changed"
    async with db_pool.acquire() as conn:
        fresh = (await tickets_db.read_tickets(conn, [ticket.id]))[ticket.id]
        acts = await conn.fetchval(
            "SELECT count(*) FROM ticket_events WHERE ticket_id = $1 AND act = 'heir'", ticket.id
        )
    assert (fresh.holder, acts) == (ticket.holder, 0)
    assert fresh.used_fen == issuance.ATTEMPTS * 10 * WAN
