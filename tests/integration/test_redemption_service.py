"""The till's services called as the CLI, the load test or a test would: a typed command and
the ports, no aiohttp, no request; against the real PostgreSQL and Redis (issue 10)."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter

from server.batching import Batcher
from server.caches import ExpiringLru, QrVerifier
from server.campaign_files import bundled_campaigns_dir, load_bundled_campaign
from server.db import redemptions as ledger
from server.db.invariants import check_ledger
from server.guard import Guard
from server.services import redemption, refunds, till_reads
from server.services.ports import TillPorts
from server.settings import Settings
from shared.campaign import Campaign, RefundReturns
from shared.errors import IdempotencyKeyReused, TokenReplayed, VoucherError
from shared.tokens import QrKey, issue_qr_token
from tests import factories as f
from tests.conftest import Services

NOW = datetime(2024, 9, 10, 2, tzinfo=UTC)
QR_KEY = QrKey.generate("S")


@dataclass
class Counters:
    registry: CollectorRegistry
    redemptions: Counter
    vouchers_redeemed: Counter
    redis_failures: Counter
    ticket_uses: Counter


def counters() -> Counters:
    registry = CollectorRegistry()
    return Counters(
        registry,
        Counter("redemptions", "by outcome", ["outcome"], registry=registry),
        Counter("vouchers_redeemed", "vouchers", registry=registry),
        Counter("redis_failures", "failures", registry=registry),
        Counter("ticket_uses", "by outcome", ["outcome"], registry=registry),
    )


def kept(exc: VoucherError) -> tuple[int, dict[str, Any]]:
    """A refusal's answer, as any edge might keep it."""
    return 400, {"error": {"code": exc.code, "message": exc.message}}


@dataclass
class Shop:
    """A campaign, a merchant with one till, and what the services are handed."""

    ports: TillPorts
    campaign_id: str
    merchant_id: int
    terminal_id: int
    pool: asyncpg.Pool

    async def citizen(self, vouchers: int = 3) -> tuple[int, list[int]]:
        """A citizen (the holder their QR codes name) and their voucher ids."""
        async with self.pool.acquire() as conn:
            citizen_id = await f.citizen(conn)
            _, ids = await f.claim_with_vouchers(conn, self.campaign_id, citizen_id, vouchers)
        return citizen_id, ids

    def qr(self, citizen_id: int) -> str:
        token, _ = issue_qr_token(key=QR_KEY, holder=citizen_id, now=NOW)
        return token

    def redeem(self, token: str, *, key: str = "", **changes: Any) -> redemption.Redeem:
        asked = {"bill_fen": 40_000, "receipt_no": f.ref("R").upper(), "count": 2, **changes}
        cmd = redemption.Redeem(
            terminal_id=self.terminal_id,
            key=key or uuid.uuid4().hex,
            digest=b"",
            token=token,
            **asked,
        )
        body = repr(sorted(asked.items())).encode()  # the same asking, the same digest
        return replace(cmd, digest=hashlib.sha256(body).digest())

    async def statuses(self, voucher_ids: list[int]) -> list[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT status FROM vouchers WHERE id = ANY($1::bigint[]) ORDER BY id",
                voucher_ids,
            )
        return [r["status"] for r in rows]


async def open_shop(
    pool: asyncpg.Pool,
    database_url: str,
    redis_url: str,
    refund_returns: RefundReturns = RefundReturns.LATEST_EXPIRY_FIRST,
) -> AsyncIterator[Shop]:
    async with pool.acquire() as conn:
        campaign_id = await f.campaign(conn)
        merchant_id = await f.merchant(conn)
        terminal_id = await f.terminal(conn, merchant_id)
    campaign: Campaign = replace(
        load_bundled_campaign("liaocheng-2024"), id=campaign_id, refund_returns=refund_returns
    )
    client = aioredis.Redis.from_url(
        redis_url, socket_connect_timeout=0.5, socket_timeout=0.5, retry_on_timeout=False
    )
    guard = Guard(client)
    reads = Batcher(partial(ledger.read_contexts_batch, pool))
    writes = Batcher(partial(ledger.write_redemptions_batch, pool), key=lambda b: b.citizen_id)
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        id_hash_key=secrets.token_bytes(32),
        access_token_secret=secrets.token_bytes(32),
        qr_keys=(QR_KEY,),
        idp_issuer="https://idp.test",
        idp_keys={},
        campaign_files=tuple(sorted(bundled_campaigns_dir().glob("*.toml"))),
    )
    ports = TillPorts(
        pool=pool,
        settings=settings,
        guard=guard,
        context_reads=reads,
        redeem_writes=writes,
        quote_cache=ExpiringLru(100),
        qr_verifier=QrVerifier({QR_KEY.kid: QR_KEY}),
        campaigns={campaign_id: campaign},
        clock=lambda: NOW,
        tz=campaign.tz,
        metrics=counters(),
        refusal_answer=kept,
    )
    yield Shop(ports, campaign_id, merchant_id, terminal_id, pool)
    await reads.drain()
    await writes.drain()
    await guard.drain()
    await client.aclose()


@pytest.fixture
async def shop(db_pool: asyncpg.Pool, test_services: Services) -> AsyncIterator[Shop]:
    async for opened in open_shop(db_pool, test_services.database_url, test_services.redis_url):
        yield opened


def test_the_services_load_without_aiohttp() -> None:
    code = (
        "import sys; import server.services.redemption, server.services.refunds, "
        "server.services.till_reads; print('aiohttp' in sys.modules)"
    )
    out = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


async def test_a_bill_redeems_the_earliest_vouchers_and_a_retry_gets_the_same_answer(
    shop: Shop,
) -> None:
    # rules U3, U6, U7
    citizen, ids = await shop.citizen(3)
    cmd = shop.redeem(shop.qr(citizen))
    first = await redemption.redeem(cmd, shop.ports)
    assert isinstance(first, redemption.Redeemed) and not first.replay
    assert first.redemption.voucher_ids == tuple(ids[:2])
    assert await shop.statuses(ids) == ["redeemed", "redeemed", "available"]
    again = await redemption.redeem(cmd, shop.ports)
    assert isinstance(again, redemption.Redeemed) and again.replay
    assert again.redemption.id == first.redemption.id
    assert await shop.statuses(ids) == ["redeemed", "redeemed", "available"]
    with pytest.raises(IdempotencyKeyReused):
        await redemption.redeem(
            replace(cmd, digest=hashlib.sha256(b"another body").digest()), shop.ports
        )


async def test_a_used_qr_code_redeems_nothing_more(shop: Shop) -> None:
    # rule U5: a second key with the same token
    citizen, ids = await shop.citizen(3)
    token = shop.qr(citizen)
    assert isinstance(
        await redemption.redeem(shop.redeem(token, count=1), shop.ports), redemption.Redeemed
    )
    refused = await redemption.redeem(shop.redeem(token, count=1), shop.ports)
    assert isinstance(refused, redemption.Refused)  # kept under the second key (U7)
    assert refused.code == TokenReplayed.code
    assert await shop.statuses(ids) == ["redeemed", "available", "available"]


async def test_a_refusal_is_kept_under_its_key_even_once_the_ledger_allows_the_bill(
    shop: Shop,
) -> None:
    # rule U7: two vouchers asked, one held; the retry gets the first answer though a second
    # voucher arrived meanwhile
    citizen, _ = await shop.citizen(1)
    cmd = shop.redeem(shop.qr(citizen))
    refused = await redemption.redeem(cmd, shop.ports)
    assert isinstance(refused, redemption.Refused) and not refused.replay
    assert refused.code == "not_enough_vouchers"
    async with shop.pool.acquire() as conn:
        await f.claim_with_vouchers(conn, shop.campaign_id, citizen, 1)
    again = await redemption.redeem(replace(cmd, token=shop.qr(citizen)), shop.ports)
    assert isinstance(again, redemption.Refused) and again.replay
    assert again.answer == refused.answer


async def test_a_receipt_number_used_before_is_refused_on_its_own_bill(shop: Shop) -> None:
    # rule U4: the batched write refuses, the bill alone learns why
    first, _ = await shop.citizen(2)
    second, ids = await shop.citizen(2)
    done = await redemption.redeem(shop.redeem(shop.qr(first), receipt_no="DUP-9"), shop.ports)
    assert isinstance(done, redemption.Redeemed)
    refused = await redemption.redeem(shop.redeem(shop.qr(second), receipt_no="DUP-9"), shop.ports)
    assert isinstance(refused, redemption.Refused)
    assert refused.code == "bill_already_redeemed"
    assert await shop.statuses(ids) == ["available", "available"]


async def test_a_redeem_decides_again_when_the_ledger_moved_since_the_quote(shop: Shop) -> None:
    # rule U7: the quote's read is remembered; a voucher it saw is spent elsewhere before the
    # redeem (another process); the write refuses and the bill is decided again, fresh
    citizen, ids = await shop.citizen(3)
    token = shop.qr(citizen)
    quoted = await redemption.quote(redemption.Quote(shop.terminal_id, token, 40_000), shop.ports)
    assert quoted.allowance.usable_count == 2
    async with shop.pool.acquire() as conn:
        await conn.execute(
            "UPDATE vouchers SET status = 'redeemed', redeemed_at = now() WHERE id = $1", ids[0]
        )
    done = await redemption.redeem(shop.redeem(token), shop.ports)
    assert isinstance(done, redemption.Redeemed)
    assert done.redemption.voucher_ids == (ids[1], ids[2])
    async with shop.pool.acquire() as conn:
        problems = await check_ledger(conn)
    # this bill's rows only, by id (the suite's other tests share the database, and ids[0]
    # was spent above without a bill, as another process's half-seen write would be)
    mine = set(done.redemption.voucher_ids)
    assert [
        (p.check, e)
        for p in problems
        for e in p.examples
        if e.get("redemption_id") == done.redemption.id or e.get("voucher_id") in mine
    ] == []


async def test_a_campaign_loaded_between_quote_and_redeem_is_decided_again(shop: Shop) -> None:
    # rules U4, U6 (issue 15): the redeem reuses the quote's decision only with the same
    # campaigns loaded; here the citizen's earliest vouchers are of a campaign loaded after
    # the quote, so the redeem decides again and the bill is of that campaign
    async with shop.pool.acquire() as conn:
        later_id = await f.campaign(conn)
        citizen = await f.citizen(conn)
        _, later = await f.claim_with_vouchers(conn, later_id, citizen, 2)  # lower ids first
        _, known = await f.claim_with_vouchers(conn, shop.campaign_id, citizen, 2)
    token = shop.qr(citizen)
    quoted = await redemption.quote(redemption.Quote(shop.terminal_id, token, 40_000), shop.ports)
    assert quoted.decision.campaign.id == shop.campaign_id  # the other one is not loaded yet
    loaded = shop.ports.campaigns[shop.campaign_id]
    shop.ports.campaigns[later_id] = replace(loaded, id=later_id)
    try:
        done = await redemption.redeem(shop.redeem(token), shop.ports)
    finally:
        del shop.ports.campaigns[later_id]
    assert isinstance(done, redemption.Redeemed)
    assert done.redemption.campaign_id == later_id
    assert done.redemption.voucher_ids == tuple(later)
    assert await shop.statuses(later + known) == ["redeemed"] * 2 + ["available"] * 2


async def test_with_redis_out_of_reach_the_ledger_still_redeems_exactly_once(
    db_pool: asyncpg.Pool, test_services: Services
) -> None:
    # item 11, rule U7: Redis refused; the lock of this process and the ledger decide
    async for shop in open_shop(db_pool, test_services.database_url, "redis://127.0.0.1:1/0"):
        citizen, ids = await shop.citizen(3)
        cmd = shop.redeem(shop.qr(citizen), count=3, bill_fen=60_000)
        done = await redemption.redeem(cmd, shop.ports)
        assert isinstance(done, redemption.Redeemed)
        again = await redemption.redeem(cmd, shop.ports)
        assert isinstance(again, redemption.Redeemed) and again.replay
        assert await shop.statuses(ids) == ["redeemed"] * 3
        assert shop.ports.metrics.redis_failures._value.get() == 2


@pytest.mark.parametrize(
    ("order", "returned"),
    [(RefundReturns.LATEST_EXPIRY_FIRST, [2]), (RefundReturns.EARLIEST_EXPIRY_FIRST, [0])],
)
async def test_a_partial_refund_returns_the_vouchers_the_campaign_names(
    db_pool: asyncpg.Pool, test_services: Services, order: RefundReturns, returned: list[int]
) -> None:
    # rules F1, F2 [choice]: a 600 元 bill with 3 vouchers refunded down to 400 元 keeps 2;
    # which one goes back is the campaign's refund_returns (one expiry: ties go by id)
    async for shop in open_shop(
        db_pool, test_services.database_url, test_services.redis_url, order
    ):
        citizen, ids = await shop.citizen(3)
        done = await redemption.redeem(
            shop.redeem(shop.qr(citizen), count=3, bill_fen=60_000), shop.ports
        )
        assert isinstance(done, redemption.Redeemed)
        cmd = refunds.Refund(
            redemption_id=done.redemption.id,
            merchant_id=shop.merchant_id,
            terminal_id=shop.terminal_id,
            key=uuid.uuid4().hex,
            digest=hashlib.sha256(b"refund to 400").digest(),
            remaining_bill_fen=40_000,
        )
        after = await refunds.refund(cmd, shop.ports)
        expected = [ids[n] for n in returned]
        assert list(after.redemption.returned_ids) == expected
        assert [list(r.voucher_ids) for r in after.refunds] == [expected]
        again = await refunds.refund(cmd, shop.ports)  # rule U7: the same key changes nothing
        assert again == after
        day = await till_reads.merchant_day(shop.merchant_id, NOW.date(), shop.ports)
        assert (day.totals.vouchers, day.totals.returned_vouchers) == (3, 1)
        assert day.totals.net_value_fen == 20_000


async def test_a_merchant_sees_only_its_own_redemptions(shop: Shop) -> None:
    # rule X2
    citizen, _ = await shop.citizen(2)
    done = await redemption.redeem(shop.redeem(shop.qr(citizen)), shop.ports)
    assert isinstance(done, redemption.Redeemed)
    seen = await till_reads.get_redemption(done.redemption.id, shop.merchant_id, shop.ports)
    assert seen.redemption == done.redemption
    found = await till_reads.find_redemption(
        till_reads.ByReceipt(shop.merchant_id, done.redemption.receipt_no), shop.ports
    )
    assert found.redemption.id == done.redemption.id
    with pytest.raises(VoucherError) as refused:
        await till_reads.get_redemption(done.redemption.id, shop.merchant_id + 1, shop.ports)
    assert refused.value.code == "not_found"


async def test_the_day_is_the_local_date(shop: Shop) -> None:
    # rule S2: 02:00 UTC is 10:00 in Shanghai, the same date; the day before holds nothing
    citizen, _ = await shop.citizen(2)
    assert isinstance(
        await redemption.redeem(shop.redeem(shop.qr(citizen)), shop.ports), redemption.Redeemed
    )
    today = await till_reads.merchant_day(shop.merchant_id, None, shop.ports)
    assert today.day == NOW.date() and today.totals.bills == 1
    before = await till_reads.merchant_day(
        shop.merchant_id, NOW.date() - timedelta(days=1), shop.ports
    )
    assert before.totals.bills == 0
