"""Issue 9, "Bad input": each class of hostile input gets a 400 with a clear code and writes
nothing. Before the one input layer (``server.schemas`` decoded at the edge by
``server.web.read_body_as``/``read_query``) every case here was a 500: deep nesting blew the
recursion limit, a lone surrogate or a NUL reached PostgreSQL's encoder, 9999-12-31 + 1 day
overflowed, and a deeply nested TOML file blew tomllib's recursion.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from server.app import ROUTES, Route
from server.web import wire_codes
from tests.e2e.conftest import World

TABLES = (
    "accounts",
    "audit_log",
    "campaigns",
    "certificates",
    "citizens",
    "claims",
    "merchants",
    "terminals",
    "redemptions",
    "refunds",
    "refused_redemptions",
    "settlements",
    "vouchers",
)
DEEP = b"[" * 10_000
# balanced, and still far past any recursion limit, within the 16 KB a JSON body may have
NESTED = b"[" * 7_000 + b"]" * 7_000
SURROGATE = '"\\ud800"'  # a JSON escape of a lone high surrogate, as a fuzzer sends it


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    async with pool.acquire() as conn:
        return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in TABLES}  # noqa: S608


class Callers:
    """A signed-in caller of each role, made when first asked for, and real ids for paths."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.made: dict[str, dict[str, str]] = {"anyone": {}}
        self.merchant_id = 0
        self.terminal_id = 0

    async def headers(self, role: str) -> dict[str, str]:
        w = self.world
        if role not in self.made:
            if role == "citizen":
                self.made[role] = (await w.citizen()).headers
            elif role == "cashier":
                self.made[role] = (await w.till()).headers
            elif role == "merchant_manager":
                self.made[role] = await w.staff(role, merchant_id=self.merchant_id)
            elif role == "district_operator":
                self.made[role] = await w.staff(role, district="dongchangfu")
            elif role == "ticket_issuer":  # issue 13: an issuer holds one district (T1)
                self.made[role] = await w.staff(role, district="liangyuan")
            else:
                self.made[role] = await w.staff(role)
        return dict(self.made[role])

    async def of(self, route: Route) -> dict[str, str]:
        roles = getattr(route.handler, "roles", None)
        headers = await self.headers("anyone" if not roles else sorted(map(str, roles))[0])
        if route.idempotent_key:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        return headers

    def path(self, route: Route) -> str:
        return (
            route.path.replace("{merchant_id}", str(self.merchant_id))
            .replace("{terminal_id}", str(self.terminal_id))
            .replace("{redemption_id}", "1")
            .replace("{settlement_id}", "1")
            .replace("{account_id}", "1")
            .replace("{ticket_id}", "1")  # issue 13: house tickets, their uses and payouts
            .replace("{use_id}", "1")
            .replace("{payout_id}", "1")
        )


@pytest.fixture
async def callers(world: World) -> Callers:
    made = Callers(world)
    till = await world.till()
    made.merchant_id, made.terminal_id = till.merchant_id, till.terminal_id
    made.made["cashier"] = till.headers
    return made


async def refused(
    world: World, method: str, path: str, headers: dict[str, str], code: str, **kw: Any
) -> None:
    """The request gets 400 with ``code`` and the ledger is unchanged."""
    before = await counts(world.pool)
    r = await world.client.request(method, path, headers=headers, **kw)
    assert r.status == 400, await r.text()
    assert (await r.json())["error"]["code"] == code
    assert await counts(world.pool) == before


JSON_ROUTES = [r for r in ROUTES if r.body]


@pytest.mark.parametrize("nested", ["body", "known_field", "unknown_field"])
@pytest.mark.parametrize("route", JSON_ROUTES, ids=[f"{r.method} {r.path}" for r in JSON_ROUTES])
async def test_deeply_nested_json_is_refused(
    world: World, callers: Callers, route: Route, nested: str
) -> None:
    # issue 9: `[` x 10,000, on every JSON route including the unauthenticated sign-ins
    assert route.body is not None
    first = next(iter(route.body.__struct_encode_fields__))
    data = {
        "body": DEEP,
        "known_field": b'{"' + first.encode() + b'": ' + NESTED + b"}",
        "unknown_field": b'{"zz": ' + NESTED + b"}",
    }[nested]
    headers = {**await callers.of(route), "Content-Type": "application/json"}
    # the field's own code when the nesting sits in a known field (bill_fen: invalid_amount)
    code = (wire_codes(route.body)[first][0] if nested == "known_field" else "") or (
        "invalid_request"
    )
    await refused(world, route.method, callers.path(route), headers, code, data=data)


TEXT_FIELDS = [
    ("/v1/auth/citizen", "assertion", {}),
    ("/v1/auth/staff", "username", {"password": "a long password"}),
    ("/v1/auth/staff", "password", {"username": "someone"}),
    ("/v1/auth/terminal", "secret", {"terminal_id": 1}),
    ("/v1/claims", "certificate_no", {}),
    ("/v1/quote", "token", {"bill_fen": 40_000}),
    ("/v1/redemptions", "token", {"bill_fen": 40_000, "receipt_no": "R1", "voucher_count": 1}),
    ("/v1/redemptions", "receipt_no", {"token": "t", "bill_fen": 40_000, "voucher_count": 1}),
    ("/v1/merchants", "name", {"district": "dongchangfu"}),
    ("/v1/merchants", "district", {"name": "a shop"}),
    ("/v1/merchants/{merchant_id}/terminals", "label", {}),
    ("/v1/merchants/{merchant_id}/suspension", "reason", {"suspended": True}),
    ("/v1/terminals/{terminal_id}/revocation", "reason", {}),
    ("/v1/citizens/revocation", "reason", {"id_number": "371502198001010010"}),
    ("/v1/settlements", "campaign_id", {"district": "dongchangfu", "month": "2024-09"}),
    ("/v1/settlements/{settlement_id}/steps", "note", {"step": "review"}),
]


@pytest.mark.parametrize(
    "escape", [SURROGATE, '"\\udc00x"', '"a\\u0000b"'], ids=["high", "low", "nul"]
)
@pytest.mark.parametrize(
    ("path", "name", "others"), TEXT_FIELDS, ids=[f"{p} {n}" for p, n, _ in TEXT_FIELDS]
)
async def test_a_lone_surrogate_or_nul_in_any_text_field_is_refused(
    world: World, callers: Callers, path: str, name: str, others: dict[str, Any], escape: str
) -> None:
    # issue 9: "\ud800" in the QR token, username, assertion, certificate number, merchant
    # name, terminal label, reason... (and NUL, for the same reason: PostgreSQL refuses both)
    route = next(r for r in ROUTES if r.path == path and r.method == "POST")
    fields = [f'"{k}": {json_value(v)}' for k, v in others.items()]
    data = ("{" + ", ".join([*fields, f'"{name}": {escape}']) + "}").encode()
    headers = {**await callers.of(route), "Content-Type": "application/json"}
    await refused(world, "POST", callers.path(route), headers, "invalid_request", data=data)


@pytest.mark.parametrize(
    ("path", "name", "others"), TEXT_FIELDS, ids=[f"{p} {n}" for p, n, _ in TEXT_FIELDS]
)
async def test_a_blank_text_field_is_refused_naming_it(
    world: World, callers: Callers, path: str, name: str, others: dict[str, Any]
) -> None:
    # issue 10: the handlers read typed bodies (server/schemas.py) instead of re-checking
    # fields one by one; a name, reason, token... of spaces alone is still refused, and said
    # so in /openapi.json ("not blank"), ideographic spaces included
    route = next(r for r in ROUTES if r.path == path and r.method == "POST")
    headers = {**await callers.of(route), "Content-Type": "application/json"}
    data = json_value({**others, name: "  \u3000 "}).encode()
    await refused(world, "POST", callers.path(route), headers, "invalid_request", data=data)
    r = await world.client.post(callers.path(route), data=data, headers=headers)
    error = (await r.json())["error"]
    assert error["details"]["field"] == name and "not blank" in error["message"], error


async def test_text_in_a_body_comes_trimmed_of_surrounding_spaces(
    world: World, callers: Callers
) -> None:
    # as the handlers' field checks did before the typed bodies: "  店 " is stored as "店"
    headers = await callers.headers("city_operator")
    body = {"name": "  聊城修剪示范店\u3000", "district": " dongchangfu "}
    r = await world.client.post("/v1/merchants", json=body, headers=headers)
    assert r.status == 201, await r.text()
    made = await r.json()
    assert (made["name"], made["district"]) == ("聊城修剪示范店", "dongchangfu")


async def test_a_blank_query_value_is_refused(world: World, callers: Callers) -> None:
    # the same text definitions serve the query strings: a district of spaces is no district
    r = await world.client.get(
        "/v1/merchants", params={"district": "   "}, headers=await callers.headers("auditor")
    )
    assert r.status == 400, await r.text()
    assert (await r.json())["error"]["details"]["field"] == "district"


def json_value(value: Any) -> str:
    import json

    return json.dumps(value)


QUERY_NUL = [
    ("/v1/redemptions", "cashier", "idempotency_key"),
    ("/v1/redemptions", "cashier", "receipt_no"),
    ("/v1/merchants", "city_operator", "district"),
    ("/v1/audit", "auditor", "actor"),
    ("/v1/audit", "auditor", "action"),
    ("/v1/reports/ranking", "auditor", "campaign_id"),
    ("/v1/merchant/day", "cashier", "date"),
    ("/v1/audit", "auditor", "from"),
]


@pytest.mark.parametrize("value", ["a\x00b", "\x00", "a\x1fb"], ids=["nul", "only-nul", "control"])
@pytest.mark.parametrize(("path", "role", "name"), QUERY_NUL, ids=[q[2] for q in QUERY_NUL])
async def test_nul_or_a_control_character_in_a_query_value_is_refused(
    world: World, callers: Callers, path: str, role: str, name: str, value: str
) -> None:
    # issue 9: NUL in idempotency_key, district, actor, action
    params = {name: value}
    if path == "/v1/reports/ranking":
        params["month"] = "2024-09"
    await refused(world, "GET", path, await callers.headers(role), "invalid_request", params=params)


DATES = [
    ("/v1/merchant/day", "cashier", "date", "9999-12-31"),
    ("/v1/merchant/day", "merchant_manager", "date", "0001-01-01"),
    ("/v1/merchant/day", "cashier", "date", "2024-02-30"),
    ("/v1/audit", "auditor", "from", "0001-01-01"),
    ("/v1/audit", "auditor", "to", "9999-12-31"),
    ("/v1/audit", "city_operator", "from", "9999-12-31"),
    ("/v1/reports/ranking", "auditor", "month", "9999-12"),
    ("/v1/reports/ranking", "city_operator", "month", "0001-01"),
    ("/v1/reports/ranking", "auditor", "month", "2024-13"),
]


@pytest.mark.parametrize(
    ("path", "role", "name", "value"), DATES, ids=[f"{d[0]} {d[2]}={d[3]!r}" for d in DATES]
)
async def test_a_date_outside_what_the_server_serves_is_refused(
    world: World, callers: Callers, path: str, role: str, name: str, value: str
) -> None:
    # issue 9: date=9999-12-31, 0001-01-01, month=9999-12 on the day list, audit and ranking
    r = await world.client.get(path, params={name: value}, headers=await callers.headers(role))
    assert r.status == 400, await r.text()
    body = await r.json()
    assert body["error"]["code"] == "invalid_date"
    assert body["error"]["details"]["field"] == name


async def test_the_edges_of_the_served_dates_are_answered(world: World, callers: Callers) -> None:
    # the range is 2000-01-01 .. 2099-12-31, both ends included
    for day in ("2000-01-01", "2099-12-31"):
        r = await world.client.get(
            "/v1/merchant/day", params={"date": day}, headers=await callers.headers("cashier")
        )
        assert r.status == 200, await r.text()
        r = await world.client.get(
            "/v1/audit", params={"from": day, "to": day}, headers=await callers.headers("auditor")
        )
        assert r.status == 200, await r.text()


@pytest.mark.parametrize(
    "toml",
    [
        "a = " + "[" * 10_000 + "]" * 10_000,
        "a = " + "{b = " * 5_000 + "1" + "}" * 5_000,
        'id = "x\\ud800"',
    ],
    ids=["arrays", "inline-tables", "surrogate"],
)
async def test_a_deeply_nested_campaign_file_is_refused(
    world: World, callers: Callers, toml: str
) -> None:
    # issue 9: a deeply nested TOML campaign upload
    headers = {**await callers.headers("city_operator"), "Content-Type": "application/toml"}
    await refused(
        world, "POST", "/v1/campaigns", headers, "campaign_config_invalid", data=toml.encode()
    )


CSV_HEADER = (
    "cert_no,district,property_type,new_build,invoice_excl_vat,tax_relief,issued_on,"
    "owner_id_numbers\n"
)
CSV_ROW = ",dongchangfu,housing,yes,1000000,0,2024-09-01,371502198001010010\n"


async def test_a_registry_file_with_nul_is_refused(world: World, callers: Callers) -> None:
    # issue 9: the same classes in the registry CSV upload
    headers = {**await callers.headers("city_operator"), "Content-Type": "text/csv"}
    data = (
        CSV_HEADER + "C\x00-1,dongchangfu,housing,yes,1000000,0,2024-09-01,371502198001010010\n"
    ).encode()
    await refused(world, "POST", "/v1/registry/imports", headers, "invalid_request", data=data)


async def test_a_certificate_number_with_a_control_character_is_a_rejected_row(
    world: World, callers: Callers
) -> None:
    headers = {**await callers.headers("city_operator"), "Content-Type": "text/csv"}
    data = (
        CSV_HEADER + "C\x01-1,dongchangfu,housing,yes,1000000,0,2024-09-01,371502198001010010\n"
    ).encode()
    before = await counts(world.pool)
    r = await world.client.post("/v1/registry/imports", data=data, headers=headers)
    assert r.status == 201, await r.text()
    answer = await r.json()
    assert answer["inserted"] == 0
    assert "control characters" in answer["rejects"][0]["reason"]
    assert (await counts(world.pool))["certificates"] == before["certificates"]


def test_every_route_that_takes_input_names_its_definition() -> None:
    # the one input layer: a body is read only through a Struct the route table names (a
    # route added without one answers 500 from read_body_as, so it must never be merged so)
    for route in ROUTES:
        if route.method == "POST" and route.path != "/v1/wallet/qr":
            assert route.body is not None or route.upload, route.path
        assert route.body is None or route.body.__struct_config__.forbid_unknown_fields
