"""The real app (create_app) over real HTTP, against the suite's PostgreSQL and Redis.

The Liaocheng 2024 campaign lies in the past, so the app gets a clock the test sets: the
production clock is never overridden, the app simply takes its clock as a parameter.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from ops import demo as seed
from server.app import create_app
from server.campaign_files import bundled_campaigns_dir, bundled_ticket_campaigns_dir
from server.settings import Settings
from shared.idnumber import make_id_number
from shared.keys import SigningKey
from shared.tokens import QrKey
from tests.conftest import Services


async def flushed_redis_database(url: str, index: int) -> str:
    """``redis_database``, emptied first: what a test with a fresh ledger runs against."""
    own = redis_database(url, index)
    client = aioredis.Redis.from_url(own)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    return own


def redis_database(url: str, index: int) -> str:
    """The same Redis server, another of its databases (the suite uses 0): for a test whose
    ledger is a fresh database, whose ids start again at 1 and must not meet the suite's
    throttles and locks."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return urlunsplit(parts._replace(query=f"db={index}"))
    return urlunsplit(parts._replace(path=f"/{index}"))


SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def shanghai(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def new_id_number() -> str:
    birth = date(1960, 1, 1) + timedelta(days=random.randrange(365 * 40))
    return make_id_number("371502", birth, f"{random.randrange(1000):03d}")


@pytest.fixture(scope="session")
def settings(test_services: Services) -> Settings:
    bundled = bundled_campaigns_dir()
    return Settings(
        database_url=test_services.database_url,
        redis_url=test_services.redis_url,
        id_hash_key=secrets.token_bytes(32),
        access_token_secret=secrets.token_bytes(32),
        qr_keys=(QrKey.generate("T"),),
        idp_issuer="https://idp.test",
        idp_keys={},
        campaign_files=(bundled / "liaocheng-2024.toml", bundled / "liaocheng-demo.toml"),
        # issue 13: both house-ticket programmes beside the vouchers, in one server
        ticket_campaign_files=tuple(sorted(bundled_ticket_campaigns_dir().glob("*.toml"))),
        dev_idp_key=SigningKey.generate("idp-test"),
        pg_pool_min=2,
        pg_pool_max=20,
        # many tests stand for many tills serving one citizen at once: minting is not what
        # they test (tests/e2e/test_hostile_auth.py checks the default limit)
        qr_mint_burst=100_000,
        # the concurrency tests send hundreds of requests at once to test the ledger, not
        # load shedding, which tests/e2e/test_shedding.py tests with narrow gates of its own
        shed_max_in_flight=100_000,
        shed_initial_in_flight=100_000,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(shanghai(2024, 9, 10, 10, 0))


@pytest.fixture
async def client(
    aiohttp_client: Any, settings: Settings, clock: Clock
) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(settings, clock=clock)
    yield await aiohttp_client(app)


@dataclass
class Till:
    terminal_id: int
    merchant_id: int
    secret: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Citizen:
    id_number: str
    headers: dict[str, str]
    certificates: list[str] = field(default_factory=list)


class World:
    """Builds people and places for one test, with fresh random ids."""

    def __init__(
        self, client: TestClient[Any, Any], settings: Settings, pool: asyncpg.Pool
    ) -> None:
        self.client = client
        self.settings = settings
        self.pool = pool

    async def certificate(
        self,
        owners: list[str],
        *,
        district: str = "dongchangfu",
        price_fen: int = 120_000_000,
        issued_on: date = date(2024, 9, 1),
        **kw: Any,
    ) -> str:
        cert_no = f"鲁(2024)聊城市不动产权第{secrets.randbelow(10**9):09d}号-{uuid.uuid4().hex[:6]}"
        async with self.pool.acquire() as conn:
            await seed.certificate(
                conn,
                cert_no=cert_no,
                district=district,
                owners=owners,
                id_hash_key=self.settings.id_hash_key,
                issued_on=issued_on,
                invoice_excl_vat_fen=price_fen,
                **kw,
            )
        return cert_no

    async def citizen(self, id_number: str | None = None) -> Citizen:
        id_number = id_number or new_id_number()
        r = await self.client.post("/dev/idp/assertion", json={"id_number": id_number})
        assert r.status == 200, await r.text()
        assertion = (await r.json())["assertion"]
        r = await self.client.post("/v1/auth/citizen", json={"assertion": assertion})
        assert r.status == 200, await r.text()
        token = (await r.json())["access_token"]
        return Citizen(id_number, {"Authorization": f"Bearer {token}"})

    async def citizen_with_vouchers(self, price_fen: int = 120_000_000, **kw: Any) -> Citizen:
        """A citizen who claimed a certificate: 1,200,000 元 in phase 1 gives 48 (rule A3)."""
        person = await self.citizen()
        cert_no = await self.certificate([person.id_number], price_fen=price_fen, **kw)
        r = await self.client.post(
            "/v1/claims", json={"certificate_no": cert_no}, headers=person.headers
        )
        assert r.status == 201, await r.text()
        person.certificates.append(cert_no)
        return person

    async def till(self, district: str = "dongchangfu", **kw: Any) -> Till:
        async with self.pool.acquire() as conn:
            cred = await seed.merchant_with_terminal(
                conn, name=f"商户-{uuid.uuid4().hex[:8]}", district=district, **kw
            )
        return await self.sign_in(Till(cred.terminal_id, cred.merchant_id, cred.secret))

    async def another_till(self, till: Till, label: str = "收银台 2") -> Till:
        """A second till of ``till``'s merchant, signed in."""
        async with self.pool.acquire() as conn:
            cred = await seed.terminal(conn, merchant_id=till.merchant_id, label=label)
        return await self.sign_in(Till(cred.terminal_id, cred.merchant_id, cred.secret))

    async def sign_in(self, till: Till) -> Till:
        """(Again:) access tokens are short-lived, and some tests move the clock by months."""
        r = await self.client.post(
            "/v1/auth/terminal", json={"terminal_id": till.terminal_id, "secret": till.secret}
        )
        assert r.status == 200, await r.text()
        till.headers = {"Authorization": f"Bearer {(await r.json())['access_token']}"}
        return till

    async def staff(
        self, role: str, *, district: str | None = None, merchant_id: int | None = None
    ) -> dict[str, str]:
        """A staff account of ``role``, signed in: the Authorization header."""
        username = f"{role.split('_')[0]}-{uuid.uuid4().hex[:10]}"
        async with self.pool.acquire() as conn:
            await seed.account(
                conn,
                username=username,
                password="a long password",
                role=role,
                district=district,
                merchant_id=merchant_id,
            )
        r = await self.client.post(
            "/v1/auth/staff", json={"username": username, "password": "a long password"}
        )
        assert r.status == 200, await r.text()
        return {"Authorization": f"Bearer {(await r.json())['access_token']}"}

    async def qr(self, person: Citizen) -> str:
        r = await self.client.post("/v1/wallet/qr", headers=person.headers)
        assert r.status == 200, await r.text()
        return str((await r.json())["token"])

    async def redeem(
        self,
        till: Till,
        token: str,
        *,
        bill_fen: int = 40_000,
        count: int = 1,
        receipt_no: str | None = None,
        key: str | None = None,
    ) -> Any:
        return await self.client.post(
            "/v1/redemptions",
            json={
                "token": token,
                "bill_fen": bill_fen,
                "receipt_no": receipt_no or f"R{uuid.uuid4().hex[:10]}",
                "voucher_count": count,
            },
            headers={**till.headers, "Idempotency-Key": key or uuid.uuid4().hex},
        )


@pytest.fixture
def world(client: TestClient[Any, Any], settings: Settings, db_pool: asyncpg.Pool) -> World:
    return World(client, settings, db_pool)
