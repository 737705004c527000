"""Roles on every route, the API description, health, metrics, logs, and Redis going away."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from server.app import ROUTES, create_app
from server.auth import Principal, Role, issue_access_token
from server.pages import PAGE_ROUTES
from server.settings import Settings
from server.web import JsonLogFormatter
from tests.conftest import Services
from tests.e2e.conftest import Clock, World
from tests.e2e.test_till import (
    concurrent_single_voucher_redemptions,
    error_code,
    key_at_work,
)

PRINCIPALS = {
    Role.CITIZEN: Principal(Role.CITIZEN, "00000000-0000-4000-8000-000000000000", citizen_id=-1),
    Role.CASHIER: Principal(Role.CASHIER, "-1", terminal_id=-1, merchant_id=-1, district="x"),
    Role.MERCHANT_MANAGER: Principal(Role.MERCHANT_MANAGER, "m", merchant_id=-1),
    Role.DISTRICT_OPERATOR: Principal(Role.DISTRICT_OPERATOR, "d", district="dongchangfu"),
    Role.CITY_OPERATOR: Principal(Role.CITY_OPERATOR, "c"),
    Role.AUDITOR: Principal(Role.AUDITOR, "a"),
    Role.TICKET_ISSUER: Principal(Role.TICKET_ISSUER, "i", district="liangyuan"),
    Role.HOUSING_BUREAU: Principal(Role.HOUSING_BUREAU, "h"),
}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_states_who_may_call_it() -> None:
    # rule X2: no handler without an explicit role list (or an explicit "public")
    for route in ROUTES:
        assert hasattr(route.handler, "roles"), f"{route.method} {route.path} states no roles"


@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: str(r or "anonymous"))
async def test_every_route_refuses_every_role_it_does_not_name(
    world: World, settings: Settings, clock: Clock, role: Role | None
) -> None:
    # rule X2: a walk of every route x every role
    headers: dict[str, str] = {}
    if role is not None:
        token = issue_access_token(settings, PRINCIPALS[role], clock())["access_token"]
        headers["Authorization"] = f"Bearer {token}"
    for route in ROUTES:
        allowed = route.handler.roles  # type: ignore[attr-defined]
        r = await world.client.request(
            route.method,
            _concrete(route.path),
            json={},
            headers={**headers, "Idempotency-Key": "k-1"},
        )
        where = f"{route.method} {route.path} as {role}"
        if allowed is None:
            assert r.status not in (401, 403), where
        elif role is None:
            assert r.status == 401, where
            assert await error_code(r) == "unauthenticated"
        elif role in allowed:
            assert r.status not in (401, 403), f"{where}: {await r.text()}"
        else:
            assert r.status == 403, where
            assert await error_code(r) == "forbidden"


async def test_an_expired_or_forged_access_token_is_refused(
    world: World, settings: Settings, clock: Clock
) -> None:
    principal = PRINCIPALS[Role.CASHIER]
    stale = issue_access_token(settings, principal, clock() - timedelta(hours=1))["access_token"]
    forged = Settings.__new__(Settings)
    object.__setattr__(forged, "access_token_secret", b"x" * 32)
    object.__setattr__(forged, "access_token_ttl_seconds", 900)
    fake = issue_access_token(forged, principal, clock())["access_token"]
    for token in (stale, fake, "nonsense"):
        r = await world.client.get("/v1/merchant/day", headers={"Authorization": f"Bearer {token}"})
        assert r.status == 401
        assert await error_code(r) == "unauthenticated"


async def test_the_api_description_matches_the_routes_and_their_bodies(world: World) -> None:
    doc = await (await world.client.get("/openapi.json")).json()
    described = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    pages = {(method, path) for method, path, _ in PAGE_ROUTES}  # issue 12: not the API
    served = {
        (r.method, r.resource.canonical)
        for r in world.client.app.router.routes()
        if r.method != "HEAD"
        and not r.resource.canonical.startswith(("/dev/", "/static"))
        and (r.method, r.resource.canonical) not in pages
    }
    assert described == served
    assert not described & pages
    for route in ROUTES:
        op = doc["paths"][route.path][route.method.lower()]
        roles = route.handler.roles  # type: ignore[attr-defined]
        assert op["x-roles"] == (sorted(str(r) for r in roles) if roles else ["anyone"])
        if route.body:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            props = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
            assert set(props) == set(route.body.__struct_encode_fields__)


async def test_a_handler_refuses_exactly_the_fields_it_does_not_describe(
    world: World,
) -> None:
    # what /openapi.json says a body holds is what the handler takes: a described field is
    # never "unknown", an undescribed one always is
    till = await world.till()
    for path, fields in (
        ("/v1/quote", {"token", "bill_fen"}),
        ("/v1/redemptions", {"token", "bill_fen", "receipt_no", "voucher_count"}),
    ):
        headers = {**till.headers, "Idempotency-Key": "k-fields"}
        body: dict[str, Any] = dict.fromkeys(fields, "x")
        r = await world.client.post(path, json=body, headers=headers)
        assert "unknown field" not in (await r.json())["error"]["message"]
        r = await world.client.post(path, json={**body, "extra": 1}, headers=headers)
        assert r.status == 400
        assert (await r.json())["error"]["details"]["fields"] == ["extra"]


async def test_health_readiness_and_metrics(world: World) -> None:
    assert (await world.client.get("/healthz")).status == 200
    ready = await world.client.get("/readyz")
    assert (await ready.json()) == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}
    person = await world.citizen_with_vouchers()
    till = await world.till()
    assert (await world.redeem(till, await world.qr(person))).status == 201
    text = await (await world.client.get("/metrics")).text()
    assert 'voucher_redemptions_total{outcome="ok"} 1.0' in text
    assert "voucher_http_request_seconds_bucket" in text
    assert 'voucher_batch_size_count{kind="redeem_write"} 1.0' in text


async def test_a_host_whose_database_refuses_it_is_not_ready(
    aiohttp_client: Any,
    settings: Settings,
    clock: Clock,
    fresh_database_url: str,
    test_services: Services,
) -> None:
    # PostgreSQL decides every sale: a host that cannot reach it is taken out of rotation
    own = replace(settings, database_url=fresh_database_url)
    client = await aiohttp_client(create_app(own, clock=clock))
    assert (await client.get("/readyz")).status == 200
    name = urlsplit(fresh_database_url).path.lstrip("/")
    admin = await asyncpg.connect(test_services.admin_database_url)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        ready = await client.get("/readyz")
        assert ready.status == 503
        answer = await ready.json()
        assert answer["status"] == "not_ready"
        assert answer["checks"]["postgres"].startswith("down")
        assert answer["checks"]["redis"] == "ok"
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    assert (await client.get("/readyz")).status == 200  # back once it lets the host in


async def test_unusual_http_methods_share_one_metrics_series(world: World) -> None:
    for method in ("PROPFIND", "MKCOL", "LOCK"):
        r = await world.client.request(method, "/v1/quote")
        assert r.status == 405
        assert (await r.json())["error"]["code"] == "method_not_allowed"
    text = await (await world.client.get("/metrics")).text()
    assert 'method="OTHER",route="unmatched",status="405"' in text
    assert "PROPFIND" not in text


async def test_logs_are_json_lines_without_id_numbers_or_tokens(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # rule X3
    caplog.set_level(logging.INFO)
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token = await world.qr(person)
    assert (await world.redeem(till, token)).status == 201
    lines = [JsonLogFormatter().format(record) for record in caplog.records]
    assert any('"route": "/v1/redemptions"' in line for line in lines)
    secrets = [person.id_number, token, person.headers["Authorization"].split()[1]]
    for line in lines:
        for secret in secrets:
            assert secret not in line


@pytest.fixture
def redis_stopped(test_services: Services, settings: Settings) -> Iterator[Settings]:
    """Redis really stopped (embedded), or the app pointed at a Redis that is not there."""
    if test_services.redis is not None:
        test_services.redis.stop()
        try:
            yield settings
        finally:
            test_services.redis.start()
    else:
        from dataclasses import replace

        yield replace(settings, redis_url="unix:///nonexistent/voucher-redis.sock")


async def test_with_redis_stopped_not_one_voucher_is_redeemed_twice(
    aiohttp_client: Any, redis_stopped: Settings, clock: Clock, db_pool: Any
) -> None:
    # rule U7: PostgreSQL is the fence; Redis only makes contention cheap
    client = await aiohttp_client(create_app(redis_stopped, clock=clock))
    world = World(client, redis_stopped, db_pool)
    ready = await client.get("/readyz")  # it serves, correctly: no reason to take it out
    assert ready.status == 200
    answer = await ready.json()
    assert answer["status"] == "degraded" and answer["checks"]["redis"].startswith("down")
    statuses = await concurrent_single_voucher_redemptions(world, 200)
    assert statuses.count(201) == 10
    assert 500 not in statuses
    text = await (await client.get("/metrics")).text()
    assert "voucher_redis_failures_total 200.0" in text


async def test_after_redis_forgets_its_scripts_the_guard_loads_them_again(
    world: World, settings: Settings
) -> None:
    # a restarted Redis has no scripts: the guard loads them and still holds the lock (U7)
    person = await world.citizen_with_vouchers()
    till = await world.till()
    assert (await world.redeem(till, await world.qr(person))).status == 201
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        await client.script_flush()
        responses = [await world.redeem(till, await world.qr(person)) for _ in range(3)]
        assert [r.status for r in responses] == [201, 201, 201]
        # the guard works in Redis again: a key at work there is told apart (only Redis knows)
        key, token = uuid.uuid4().hex, await world.qr(person)
        async with key_at_work(world, till.terminal_id, key, token):
            r = await world.redeem(till, token, key=key)
            assert await error_code(r) == "idempotency_key_in_use"
    finally:
        await client.aclose()
    text = await (await world.client.get("/metrics")).text()
    assert "voucher_redis_failures_total 0.0" in text


async def test_with_redis_stopped_a_retry_gets_the_first_answer(
    aiohttp_client: Any, redis_stopped: Settings, clock: Clock, db_pool: Any
) -> None:
    # rule U7: the ledger, not Redis, knows a key's first answer (a success or a refusal)
    client = await aiohttp_client(create_app(redis_stopped, clock=clock))
    world = World(client, redis_stopped, db_pool)
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token = await world.qr(person)
    first = await world.redeem(till, token, receipt_no="R-DOWN", key="k-down")
    again = await world.redeem(till, token, receipt_no="R-DOWN", key="k-down")
    assert (first.status, again.status) == (201, 201)
    assert again.headers["Idempotent-Replay"] == "true"
    assert (await again.json()) == (await first.json())
    token = await world.qr(person)
    refused = await world.redeem(till, token, bill_fen=100, receipt_no="R-S", key="k-small")
    retried = await world.redeem(till, token, bill_fen=100, receipt_no="R-S", key="k-small")
    assert (refused.status, await error_code(refused)) == (422, "bill_too_small")
    assert retried.status == 422
    assert (await retried.json()) == (await refused.json())
