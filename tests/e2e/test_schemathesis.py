"""Issue 9, "Schemathesis in CI": the real app, on a live local port, fuzzed from its own
``/openapi.json`` for each role (and anonymously), with data that fits the description and
data that does not. Every answer must be below 500, of a documented status and media type,
and match its schema (request and response Structs of ``server.schemas``, each route's error
codes). Bounded: a few examples per operation and mode, no shrinking, a fixed seed.

aiohttp apps are neither ASGI nor WSGI, so the app runs in a thread with its own event loop
(schemathesis calls it with blocking ``requests``), against a database and a Redis index of
its own: what the fuzzer writes (a revoked terminal 1, failed sign-ins) touches no other test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import hypothesis
import msgspec
import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Ok, Result
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ops import demo as seed
from server.app import ROUTES, create_app
from server.settings import Settings
from tests.conftest import Services, create_migrated_database
from tests.e2e.conftest import Clock, World, new_id_number, redis_database, shanghai

ROLES = (
    "anyone",
    "citizen",
    "cashier",
    "merchant_manager",
    "district_operator",
    "city_operator",
    "auditor",
    "ticket_issuer",
    "housing_bureau",
)
STAFF = (
    ("merchant_manager", "merchant"),
    ("district_operator", "dongchangfu"),
    ("city_operator", None),
    ("auditor", None),
    ("ticket_issuer", "liangyuan"),  # issue 13, rule T1
    ("housing_bureau", None),  # rule T4: the city's bureau
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 6
PASSWORD = "a long password"


@schemathesis.serializer("application/toml")
def _toml(ctx: Any, value: Any) -> bytes:
    """The campaign upload is TOML text: send what was generated as it is."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


class LiveServer:
    """The app on 127.0.0.1:<free port>, served by a loop in a thread of its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        app = create_app(self.settings, clock=Clock(shanghai(2024, 9, 10, 10, 0)))
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        if self.runner is not None:
            self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def _with(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


@pytest.fixture(scope="module")
async def own_settings(settings: Settings, test_services: Services) -> AsyncIterator[Settings]:
    """The suite's settings on a fresh database and Redis index (dropped afterwards)."""
    name = f"voucher_fuzz_{secrets.token_hex(4)}"
    database_url = await create_migrated_database(test_services, name)
    yield dataclasses.replace(
        settings, database_url=database_url, redis_url=redis_database(settings.redis_url, 7)
    )
    admin = await asyncpg.connect(test_services.admin_database_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def live(own_settings: Settings) -> Iterator[tuple[LiveServer, dict[str, dict[str, str]]]]:
    with LiveServer(own_settings) as server:
        yield server, server.run(_callers(server))


async def _callers(server: LiveServer) -> dict[str, dict[str, str]]:
    """A signed-in caller of each role: the Authorization header."""
    conn = await asyncpg.connect(server.settings.database_url)
    try:
        till = await seed.merchant_with_terminal(conn, name="fuzzed shop", district="dongchangfu")
        for role, scope in STAFF:
            extra: dict[str, Any] = {}
            if scope == "merchant":
                extra["merchant_id"] = till.merchant_id
            elif scope is not None:
                extra["district"] = scope
            await seed.account(conn, username=role, password=PASSWORD, role=role, **extra)
    finally:
        await conn.close()
    return await asyncio.to_thread(_sign_in, server.url, till.terminal_id, till.secret)


def _sign_in(url: str, terminal_id: int, secret: str) -> dict[str, dict[str, str]]:
    def bearer(path: str, body: dict[str, Any]) -> dict[str, str]:
        r = requests.post(url + path, json=body, timeout=10)
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    r = requests.post(url + "/dev/idp/assertion", json={"id_number": new_id_number()}, timeout=10)
    assert r.status_code == 200, r.text
    headers = {
        "anyone": {},
        "citizen": bearer("/v1/auth/citizen", {"assertion": r.json()["assertion"]}),
        "cashier": bearer("/v1/auth/terminal", {"terminal_id": terminal_id, "secret": secret}),
    }
    for role, _ in STAFF:
        headers[role] = bearer("/v1/auth/staff", {"username": role, "password": PASSWORD})
    return headers


def loaded(
    result: Result[APIOperation[Any, Any, Any, Any], InvalidSchema],
) -> APIOperation[Any, Any, Any, Any]:
    """An operation of the schema; one schemathesis could not load fails the test."""
    assert isinstance(result, Ok), result
    return result.ok()


@pytest.mark.parametrize("role", ROLES)
def test_no_answer_is_a_server_error_or_off_its_schema(
    live: tuple[LiveServer, dict[str, dict[str, str]]], role: str
) -> None:
    server, callers = live
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [
        op
        for op in map(loaded, schema.get_all_operations())
        if role in op.definition.raw.get("x-roles", ())
        or "anyone" in op.definition.raw.get("x-roles", ())
    ]
    assert operations
    session = requests.Session()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            try:
                _fuzz(strategy, server.url, session, callers[role])
            except hypothesis.errors.Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to negate: no inputs


def _fuzz(strategy: Any, url: str, session: requests.Session, auth: dict[str, str]) -> None:
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        headers = {**(case.headers or {}), **auth}
        response = case.call(base_url=url, session=session, headers=headers, timeout=30)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


async def test_the_answers_of_a_till_day_match_their_structs(world: World) -> None:
    # the fuzzer rarely holds a valid QR code: walk the till's day and hold every JSON answer
    # against the response Struct its route names
    def check(method: str, template: str, answer: Any) -> None:
        route = next(r for r in ROUTES if (r.method, r.path) == (method, template))
        assert route.response is not None
        msgspec.convert(answer, route.response)

    person = await world.citizen_with_vouchers()
    till = await world.till()
    r = await world.client.get("/v1/wallet", headers=person.headers)
    check("GET", "/v1/wallet", await r.json())
    token = await world.qr(person)
    r = await world.client.post(
        "/v1/quote", json={"token": token, "bill_fen": 40_000}, headers=till.headers
    )
    assert r.status == 200, await r.text()
    check("POST", "/v1/quote", await r.json())
    r = await world.redeem(till, token, bill_fen=40_000, count=2, key="day-walk")
    assert r.status == 201, await r.text()
    redeemed = await r.json()
    check("POST", "/v1/redemptions", redeemed)
    url = f"/v1/redemptions/{redeemed['redemption_id']}"
    headers = {**till.headers, "Idempotency-Key": uuid.uuid4().hex}
    r = await world.client.post(
        url + "/refunds", json={"remaining_bill_fen": 20_000}, headers=headers
    )
    assert r.status == 201, await r.text()
    check("POST", "/v1/redemptions/{redemption_id}/refunds", await r.json())
    r = await world.client.get(url, headers=till.headers)
    check("GET", "/v1/redemptions/{redemption_id}", await r.json())
    r = await world.client.get(
        "/v1/redemptions", params={"idempotency_key": "day-walk"}, headers=till.headers
    )
    check("GET", "/v1/redemptions", await r.json())
    r = await world.client.get("/v1/merchant/day", headers=till.headers)
    day = await r.json()
    assert day["totals"]["bills"] == 1
    check("GET", "/v1/merchant/day", day)
    r = await world.client.get("/v1/campaigns")
    check("GET", "/v1/campaigns", await r.json())
