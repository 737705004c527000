"""A house ticket's use at a sales office as a service (``server/services/ticket_uses.py``;
issue 13, rules T5-T8 with U5, U7, X1): a typed command and the ports, no aiohttp, against
the real PostgreSQL and Redis — and against a Redis that does not answer."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial

import asyncpg
import pytest
import redis.asyncio as aioredis

from server.batching import Batcher
from server.caches import ExpiringLru, QrVerifier
from server.campaign_files import bundled_campaigns_dir
from server.db import redemptions as ledger
from server.db import seeding
from server.db import ticket_till as till_db
from server.db import tickets as tickets_db
from server.db.invariants import check_ledger
from server.guard import Guard, Outcome
from server.services import guarded, ticket_uses
from server.services.ports import TillPorts
from server.settings import Settings
from shared.errors import IdempotencyKeyInUse, NotFound, TokenInvalid, VoucherCodeRequired
from shared.house_tickets import Ticket, issue_ticket
from shared.redemption import MustDecideAgain
from shared.ticket_campaign import Relation
from shared.ticket_till import UseAsk, decide_use
from shared.tokens import issue_qr_token
from tests import factories as f
from tests.conftest import Services
from tests.integration.test_redemption_service import QR_KEY, Counters, counters, kept
from tests.unit.ticket_helpers import SQ, WAN, listing, request

NOW = datetime(2025, 7, 10, 2, tzinfo=UTC)  # 10:00 in Shangqiu
ISSUED = date(2025, 6, 20)
FACE = 100 * WAN


@dataclass
class Office:
    """A developer's sales office with one unit, a holder and the holder's ticket."""

    ports: TillPorts
    pool: asyncpg.Pool
    merchant_id: int
    terminal_id: int
    citizen_id: int
    ticket: Ticket
    clock: list[datetime]
    metrics: Counters

    def qr(self) -> str:
        token, _ = issue_qr_token(
            key=QR_KEY, holder=self.citizen_id, now=self.clock[0], ttl_seconds=60
        )
        return token

    def use(
        self, *, amount: int = 60 * WAN, contract_no: str | None = None
    ) -> ticket_uses.UseTicket:
        key = uuid.uuid4().hex
        contract = ticket_uses.ContractIn(
            contract_no=f"WQ-{key[:10].upper()}",
            unit="1-101",
            signed_on=ISSUED + timedelta(days=20),
            price_fen=150 * WAN,
            relation=Relation.HOLDER,
            amounts=(amount,),
        )
        digest = hashlib.sha256(key.encode()).digest()
        return ticket_uses.UseTicket(self.terminal_id, key, digest, self.qr(), contract)

    async def read(self) -> Ticket:
        async with self.pool.acquire() as conn:
            return (await tickets_db.read_tickets(conn, [self.ticket.id]))[self.ticket.id]


async def open_office(
    pool: asyncpg.Pool, services: Services, redis_url: str
) -> AsyncIterator[Office]:
    id_hash = secrets.token_bytes(32)
    async with pool.acquire() as conn:
        await tickets_db.upsert_programme(conn, SQ)
        (citizen_id,) = await seeding.citizens(
            conn, [seeding.CitizenRow(id_hash, "4114**********1234")]
        )
        (merchant_id,) = await seeding.merchants(
            conn, [seeding.MerchantRow(f.ref("置业"), "liangyuan", kind="developer")]
        )
        terminal_id = await f.terminal(conn, merchant_id)
        unit = replace(listing(SQ, price=200 * WAN), seller=str(merchant_id))
        await tickets_db.insert_listing(conn, SQ.id, unit)
        (ticket_id,) = await tickets_db.new_ticket_ids(conn, 1)
        req = replace(request(SQ, face=FACE, holder=id_hash.hex()), number=f.ref("FP"))
        ticket = issue_ticket(SQ, req, ticket_id=ticket_id, issued_on=ISSUED)
        await tickets_db.insert_tickets(conn, [ticket], actor="issuer", act="issue", documents={})
    client = aioredis.Redis.from_url(
        redis_url, socket_connect_timeout=0.2, socket_timeout=0.2, retry_on_timeout=False
    )
    guard = Guard(client)
    reads = Batcher(partial(ledger.read_contexts_batch, pool))
    writes = Batcher(partial(ledger.write_redemptions_batch, pool), key=lambda b: b.citizen_id)
    clock = [NOW]
    metrics = counters()
    ports = TillPorts(
        pool=pool,
        settings=Settings(
            database_url=services.database_url,
            redis_url=redis_url,
            id_hash_key=secrets.token_bytes(32),
            access_token_secret=secrets.token_bytes(32),
            qr_keys=(QR_KEY,),
            idp_issuer="https://idp.test",
            idp_keys={},
            campaign_files=(bundled_campaigns_dir() / "liaocheng-2024.toml",),
        ),
        guard=guard,
        context_reads=reads,
        redeem_writes=writes,
        quote_cache=ExpiringLru(10),
        qr_verifier=QrVerifier({QR_KEY.kid: QR_KEY}),
        campaigns={},
        programmes={SQ.id: SQ},
        clock=lambda: clock[0],
        tz=SQ.tz,
        metrics=metrics,
        refusal_answer=kept,
    )
    yield Office(ports, pool, merchant_id, terminal_id, citizen_id, ticket, clock, metrics)
    await reads.drain()
    await writes.drain()
    await guard.drain()
    await client.aclose()


@pytest.fixture
async def office(db_pool: asyncpg.Pool, test_services: Services) -> AsyncIterator[Office]:
    async for opened in open_office(db_pool, test_services, test_services.redis_url):
        yield opened


@pytest.fixture
async def office_without_redis(
    db_pool: asyncpg.Pool, test_services: Services
) -> AsyncIterator[Office]:
    # a port nothing listens on: every guard call fails, the breaker opens (issue 9 item 11)
    async for opened in open_office(db_pool, test_services, "redis://127.0.0.1:9/0"):
        yield opened


async def ticket_violations(pool: asyncpg.Pool) -> list[str]:
    async with pool.acquire() as conn:
        return [v.check for v in await check_ledger(conn) if v.check.startswith("ticket_")]


async def test_with_redis_down_concurrent_uses_still_draw_once(
    office_without_redis: Office,
) -> None:
    # rules T5, U7: the guard is out of reach, the ledger's fences alone decide
    o = office_without_redis
    results = await asyncio.gather(*(ticket_uses.use(o.use(), o.ports) for _ in range(40)))
    used = [r for r in results if isinstance(r, ticket_uses.Used)]
    refused = {r.code for r in results if isinstance(r, guarded.Refused)}
    assert len(used) == 1 and refused == {"ticket_balance_insufficient"}
    ticket = await o.read()
    assert (ticket.used_fen, ticket.balance_fen) == (60 * WAN, 40 * WAN)
    assert await ticket_violations(o.pool) == []
    assert o.metrics.registry.get_sample_value("redis_failures_total") == 40  # all went without


async def test_a_seller_suspended_after_the_decision_writes_nothing(office: Office) -> None:
    # rules X1, T4: the fence reads the standing FOR SHARE in the write's transaction
    o = office
    cmd = o.use()
    claims = o.ports.qr_verifier.verify(cmd.token, NOW)
    query = till_db.UseQuery(
        o.terminal_id, o.citizen_id, claims.jti, "1-101", cmd.contract.contract_no
    )
    ask = UseAsk(
        cmd.contract.contract_no,
        "1-101",
        cmd.contract.signed_on,
        cmd.contract.price_fen,
        Relation.HOLDER,
        amounts=cmd.contract.amounts,
    )
    async with o.pool.acquire() as conn:
        decision = decide_use(await till_db.read_use_context(conn, query), {SQ.id: SQ}, ask, NOW)
        await conn.execute("UPDATE merchants SET status = 'suspended' WHERE id = $1", o.merchant_id)
        fence = till_db.Fence(
            o.terminal_id, o.citizen_id, decision.listing_id, claims.jti, claims.expires_at,
            cmd.key, NOW,
        )  # fmt: skip
        with pytest.raises(MustDecideAgain):
            async with conn.transaction():
                await till_db.fence(conn, fence)
    refused = await ticket_uses.use(cmd, o.ports)
    assert isinstance(refused, guarded.Refused) and refused.code == "merchant_suspended"
    assert await o.read() == o.ticket


async def test_a_retry_after_the_code_expired_gets_its_first_answer(office: Office) -> None:
    # rules U5, U7
    o = office
    cmd = o.use()
    first = await ticket_uses.use(cmd, o.ports)
    assert isinstance(first, ticket_uses.Used) and not first.replay
    o.clock[0] = NOW + timedelta(minutes=5)
    again = await ticket_uses.use(cmd, o.ports)
    assert isinstance(again, ticket_uses.Used) and again.replay
    assert (again.use_id, again.use) == (first.use_id, first.use)
    found = await ticket_uses.find_by_key(o.terminal_id, cmd.key, o.ports)
    assert found.use_id == first.use_id


async def test_a_refusal_is_kept_under_its_key_once_the_ledger_allows_the_use(
    office: Office,
) -> None:
    # rule U7: a unit not yet admitted; admitted since, the same key still answers the refusal
    o = office
    async with o.pool.acquire() as conn:
        await conn.execute(
            "UPDATE listings SET status = 'pending' WHERE merchant_id = $1", o.merchant_id
        )
    cmd = o.use()
    refused = await ticket_uses.use(cmd, o.ports)
    assert isinstance(refused, guarded.Refused) and refused.code == "listing_not_eligible"
    async with o.pool.acquire() as conn:
        await conn.execute(
            "UPDATE listings SET status = 'admitted' WHERE merchant_id = $1", o.merchant_id
        )
    again = await ticket_uses.use(replace(cmd, token=o.qr()), o.ports)
    assert isinstance(again, guarded.Refused) and again.replay
    assert again.answer == refused.answer
    assert await o.read() == o.ticket


async def test_a_key_at_work_is_answered_in_use_and_nothing_is_drawn(office: Office) -> None:
    # rule U7: a first request under the key has begun and not ended. Its mark is in the
    # holder's Redis slot (issue 14): a lookup finds it by the request's code, and without
    # the code it does not say "not found"
    o = office
    cmd = o.use()
    guard, holder = o.ports.guard, str(o.citizen_id)
    outcome, lock = await guard.begin(
        jti=str(uuid.uuid4()), citizen=holder, terminal_id=o.terminal_id, key=cmd.key
    )
    assert outcome is Outcome.OK
    with pytest.raises(IdempotencyKeyInUse):
        await ticket_uses.use(cmd, o.ports)
    with pytest.raises(IdempotencyKeyInUse):
        await ticket_uses.find_by_key(o.terminal_id, cmd.key, o.ports, cmd.token)
    with pytest.raises(VoucherCodeRequired):
        await ticket_uses.find_by_key(o.terminal_id, cmd.key, o.ports)
    forged = cmd.token[:-1] + ("0" if cmd.token[-1] != "0" else "1")
    with pytest.raises(TokenInvalid):
        await ticket_uses.find_by_key(o.terminal_id, cmd.key, o.ports, forged)
    assert await o.read() == o.ticket
    guard.end_soon(
        token=lock, jti="x", citizen=holder, terminal_id=o.terminal_id, key=cmd.key,
        used=False, jti_ttl_ms=1,
    )  # fmt: skip
    await guard.drain()
    with pytest.raises(NotFound):
        await ticket_uses.find_by_key(o.terminal_id, cmd.key, o.ports, cmd.token)
