"""Issue 9, item 5 (rule X2): staff accounts are made, listed, disabled, enabled, given another
role and a new password over the API; the city manages every account, a merchant manager only
their own shop's manager accounts; every change is audited; a refusal changes nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from ops import demo as seed
from server.app import create_app
from server.settings import Settings
from tests.e2e.conftest import Clock, World
from tests.e2e.test_revocation import eventually, post, sign_in_staff, staff_account
from tests.e2e.test_till import error_code
from tests.e2e.test_voucherctl import Ctl


def name(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def audit(world: World, headers: dict[str, str], **query: str) -> list[dict[str, Any]]:
    r = await world.client.get("/v1/audit", params=query, headers=headers)
    assert r.status == 200, await r.text()
    return list((await r.json())["entries"])


async def accounts(world: World, headers: dict[str, str], **query: str) -> list[dict[str, Any]]:
    r = await world.client.get("/v1/accounts", params=query, headers=headers)
    assert r.status == 200, await r.text()
    return list((await r.json())["accounts"])


async def test_the_city_makes_an_account_of_each_role_that_signs_in(world: World) -> None:
    _, city_name, city = await staff_account(world, "city_operator")
    till = await world.till()
    cases: list[dict[str, object]] = [
        {"role": "district_operator", "district": "高新区"},
        {"role": "merchant_manager", "merchant_id": till.merchant_id},
        {"role": "auditor"},
        {"role": "city_operator"},
    ]
    for scope in cases:
        username = name()
        r = await post(
            world, "/v1/accounts", {"username": username, **scope, "reason": "新员工入职"}, city
        )
        assert r.status == 201, await r.text()
        assert r.headers["Cache-Control"] == "no-store"
        made = await r.json()
        assert (made["username"], made["role"], made["status"]) == (
            username,
            scope["role"],
            "active",
        )
        assert made["district"] == ("gaoxin" if "district" in scope else None)
        assert len(made["password"]) >= 12  # generated, shown once
        headers = await sign_in_staff(world.client, username, made["password"])
        listed = await accounts(world, city, username=username)
        assert [a["id"] for a in listed] == [made["id"]] and "password" not in listed[0]
        (entry,) = (
            await audit(world, city, action="account.create", actor=f"city_operator:{city_name}")
        )[:1]
        assert entry["subject"] == f"account:{username}"
        assert entry["reason"] == "新员工入职"
        assert made["password"] not in str(entry)
        assert headers["Authorization"].startswith("Bearer ")
    # a password given by the manager is used and not echoed
    username = name()
    r = await post(
        world,
        "/v1/accounts",
        {"username": username, "role": "auditor", "password": "twelve chars!", "reason": "审计"},
        city,
    )
    assert r.status == 201 and "password" not in await r.json()
    await sign_in_staff(world.client, username, "twelve chars!")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"username": "Upper-Case", "role": "auditor"}, "username_invalid", "username"),
        ({"username": "ab", "role": "auditor"}, "username_invalid", "username"),
        ({"username": "../etc", "role": "auditor"}, "username_invalid", "username"),
        ({"role": "auditor", "password": "short pass"}, "password_too_short", "password"),
        ({"role": "cashier"}, "invalid_request", "role"),
        ({"role": "root"}, "invalid_request", "role"),
        ({"role": "district_operator"}, "invalid_request", "district"),
        ({"role": "district_operator", "district": "北京"}, "invalid_request", "district"),
        ({"role": "auditor", "district": "高新区"}, "invalid_request", "district"),
        ({"role": "merchant_manager"}, "invalid_request", "merchant_id"),
        ({"role": "merchant_manager", "merchant_id": 2**62}, "invalid_request", "merchant_id"),
        ({"role": "city_operator", "merchant_id": 1}, "invalid_request", "merchant_id"),
    ],
)
async def test_bad_input_is_refused_with_a_clear_code_and_nothing_is_written(
    world: World, body: dict[str, Any], code: str, field: str
) -> None:
    _, city_name, city = await staff_account(world, "city_operator")
    username = body.pop("username", name())
    r = await post(world, "/v1/accounts", {"username": username, **body, "reason": "x"}, city)
    assert r.status == 400, await r.text()
    error = (await r.json())["error"]
    assert (error["code"], error["details"].get("field")) == (code, field)
    assert await accounts(world, city, username=username) == []
    assert await audit(world, city, actor=f"city_operator:{city_name}") == []


async def test_a_taken_username_is_refused_and_the_first_account_is_unchanged(
    world: World,
) -> None:
    _, username, _ = await staff_account(world, "auditor")
    _, _, city = await staff_account(world, "city_operator")
    before = await accounts(world, city, username=username)
    r = await post(
        world,
        "/v1/accounts",
        {"username": username, "role": "city_operator", "reason": "x"},
        city,
    )
    assert (r.status, await error_code(r)) == (409, "username_taken")
    assert await accounts(world, city, username=username) == before


async def test_a_merchant_manager_manages_only_their_own_shops_manager_accounts(
    world: World,
) -> None:
    shop, elsewhere = await world.till(), await world.till()
    me_id, me_name, me = await staff_account(
        world, "merchant_manager", merchant_id=shop.merchant_id
    )
    other_id, _, other = await staff_account(
        world, "merchant_manager", merchant_id=elsewhere.merchant_id
    )
    city_id, _, city = await staff_account(world, "city_operator")
    # a manager of my shop, merchant_id taken from my own account
    r = await post(
        world,
        "/v1/accounts",
        {"username": name(), "role": "merchant_manager", "reason": "店长"},
        me,
    )
    assert r.status == 201, await r.text()
    colleague = await r.json()
    assert colleague["merchant_id"] == shop.merchant_id
    colleague_headers = await sign_in_staff(
        world.client, colleague["username"], colleague["password"]
    )
    for body in (
        {"role": "district_operator", "district": "东昌府区"},
        {"role": "city_operator"},
        {"role": "merchant_manager", "merchant_id": elsewhere.merchant_id},
    ):
        username = name()
        r = await post(world, "/v1/accounts", {"username": username, **body, "reason": "x"}, me)
        assert r.status == 403, f"{body}: {await r.text()}"
        assert await accounts(world, city, username=username) == []
    assert {a["id"] for a in await accounts(world, me)} == {me_id, colleague["id"]}
    # another shop's or the city's accounts look absent
    for target in (other_id, city_id):
        for path, body in (
            ("status", {"status": "disabled"}),
            ("password", {}),
        ):
            r = await post(world, f"/v1/accounts/{target}/{path}", {**body, "reason": "x"}, me)
            assert r.status == 404, await r.text()
    assert (await world.client.get("/v1/merchant/day", headers=other)).status == 200
    r = await post(
        world, f"/v1/accounts/{colleague['id']}/role", {"role": "auditor", "reason": "x"}, me
    )
    assert r.status == 403  # only the city changes roles
    r = await post(world, f"/v1/accounts/{me_id}/status", {"status": "disabled", "reason": "x"}, me)
    assert await error_code(r) == "own_account"
    # disabling my colleague bites at once (item 4)
    r = await post(
        world,
        f"/v1/accounts/{colleague['id']}/status",
        {"status": "disabled", "reason": "离职"},
        me,
    )
    assert (await r.json())["status"] == "disabled"
    r = await world.client.get("/v1/merchant/day", headers=colleague_headers)
    assert await error_code(r) == "account_disabled"
    r = await world.client.post(
        "/v1/auth/staff",
        json={"username": colleague["username"], "password": colleague["password"]},
    )
    assert r.status == 401
    (entry,) = (
        await audit(world, city, action="account.disable", actor=f"merchant_manager:{me_name}")
    )[:1]
    assert entry["subject"] == f"account:{colleague['username']}" and entry["reason"] == "离职"


@pytest.mark.parametrize("role", ["district_operator", "auditor"])
async def test_district_operators_and_auditors_manage_no_account(world: World, role: str) -> None:
    scope = {"district": "dongchangfu"} if role == "district_operator" else {}
    _, _, me = await staff_account(world, role, **scope)
    target_id, _, _ = await staff_account(world, "auditor")
    username = name()
    r = await post(
        world, "/v1/accounts", {"username": username, "role": "auditor", "reason": "x"}, me
    )
    assert (r.status, await error_code(r)) == (403, "forbidden")
    for path, body in (("status", {"status": "disabled"}), ("password", {}), ("role", {})):
        r = await post(world, f"/v1/accounts/{target_id}/{path}", {**body, "reason": "x"}, me)
        assert r.status == 403, path
    listing = await world.client.get("/v1/accounts", headers=me)
    assert listing.status == (200 if role == "auditor" else 403)


async def test_a_new_role_ends_the_old_tokens_and_is_audited(world: World) -> None:
    _, _, city = await staff_account(world, "city_operator")
    target_id, username, old = await staff_account(world, "auditor")
    r = await post(
        world,
        f"/v1/accounts/{target_id}/role",
        {"role": "district_operator", "district": "经开区", "reason": "调岗"},
        city,
    )
    assert r.status == 200, await r.text()
    assert ((await r.json())["role"], (await r.json())["district"]) == (
        "district_operator",
        "jingkai",
    )
    r = await world.client.get("/v1/audit", headers=old)
    assert (r.status, (await r.json())["error"]["details"]) == (401, {"reason": "session_ended"})
    new = await sign_in_staff(world.client, username, "a long password")
    r = await world.client.get("/v1/merchants", headers=new)
    assert r.status == 200  # a district operator's route
    assert (await world.client.get("/v1/audit", headers=new)).status == 403
    (entry,) = (await audit(world, city, action="account.role"))[:1]
    assert entry["subject"] == f"account:{username}" and entry["reason"] == "调岗"
    assert entry["details"]["district"] == "jingkai"
    # an invalid role change changes nothing
    r = await post(
        world, f"/v1/accounts/{target_id}/role", {"role": "merchant_manager", "reason": "x"}, city
    )
    assert await error_code(r) == "invalid_request"
    assert (await world.client.get("/v1/merchants", headers=new)).status == 200


async def test_a_password_reset_ends_the_sessions_and_the_old_password(world: World) -> None:
    _, _, city = await staff_account(world, "city_operator")
    target_id, username, old = await staff_account(world, "auditor")
    r = await post(
        world, f"/v1/accounts/{target_id}/password", {"password": "short", "reason": "x"}, city
    )
    assert await error_code(r) == "password_too_short"
    assert (await world.client.get("/v1/audit", headers=old)).status == 200  # nothing changed
    r = await post(world, f"/v1/accounts/{target_id}/password", {"reason": "忘记密码"}, city)
    assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
    password = (await r.json())["password"]
    assert (await world.client.get("/v1/audit", headers=old)).status == 401
    r = await world.client.post(
        "/v1/auth/staff", json={"username": username, "password": "a long password"}
    )
    assert r.status == 401
    await sign_in_staff(world.client, username, password)
    (entry,) = (await audit(world, city, action="account.password_reset"))[:1]
    assert entry["subject"] == f"account:{username}" and password not in str(entry)


async def test_voucherctl_manages_accounts_with_reasons(
    aiohttp_server: Any, settings: Settings, clock: Clock, world: World, monkeypatch: Any
) -> None:
    # item 5: the same operations from the operators' command line
    server = await aiohttp_server(create_app(settings, clock=clock))
    _, city_name, city = await staff_account(world, "city_operator")
    monkeypatch.setenv("VOUCHER_PASSWORD", "a long password")
    ctl = Ctl(str(server.make_url("")), city_name)
    username = name("ctl")
    code, out = await ctl(
        "--json",
        "accounts",
        "add",
        username,
        "district_operator",
        "--district",
        "高新区",
        "--reason",
        "新员工",
    )
    assert code == 0, out
    made = json.loads(out)
    assert made["district"] == "gaoxin"
    headers = await sign_in_staff(world.client, username, made["password"])
    code, out = await ctl("--json", "accounts", "list", "--role", "district_operator")
    assert username in [a["username"] for a in json.loads(out)]
    code, out = await ctl("accounts", "disable", username, "--reason", "离职")
    assert code == 0, out

    async def refused() -> bool:  # voucherctl spoke to another server process
        r = await world.client.get("/v1/merchants", headers=headers)
        return r.status == 403 and await error_code(r) == "account_disabled"

    await eventually(refused)
    code, out = await ctl("accounts", "enable", username, "--reason", "返聘")
    assert code == 0, out
    code, out = await ctl("--json", "accounts", "reset-password", username, "--reason", "忘记")
    password = json.loads(out)["password"]
    code, out = await ctl("accounts", "role", username, "auditor", "--reason", "调岗")
    assert code == 0, out
    r = await world.client.post("/v1/auth/staff", json={"username": username, "password": password})
    assert (await r.json())["role"] == "auditor"
    code, out = await ctl("accounts", "add", "Bad Name", "auditor", "--reason", "x")
    assert code == 1 and "username_invalid" in out
    code, out = await ctl("accounts", "disable", "nobody-here", "--reason", "x")
    assert code == 1 and "no account nobody-here" in out
    actions = [e["action"] for e in await audit(world, city, actor=f"city_operator:{city_name}")]
    assert actions == [
        "account.role",
        "account.password_reset",
        "account.enable",
        "account.disable",
        "account.create",
    ]


async def test_the_account_list_refuses_bad_filters(world: World) -> None:
    _, _, city = await staff_account(world, "city_operator")
    for role in ("cashier", "auditor\x00"):
        r = await world.client.get("/v1/accounts", params={"role": role}, headers=city)
        assert (r.status, await error_code(r)) == (400, "invalid_request"), role
    # the input layer refuses control characters in any query value (issue 9, bad input)
    r = await world.client.get("/v1/accounts", params={"username": "a\x00b"}, headers=city)
    assert (r.status, await error_code(r)) == (400, "invalid_request")
    assert await accounts(world, city, username="Upper") == []  # no such name can exist


async def test_the_staff_sign_in_answer_says_whose_staff_it_is(world: World) -> None:
    # the till checks a manager's approval against this answer (issue 11 items 5 and 8): it
    # cannot check the access token's signature, so the answer itself names the shop
    till = await world.till()
    username = f"manager-{uuid.uuid4().hex[:10]}"
    async with world.pool.acquire() as conn:
        await seed.account(
            conn,
            username=username,
            password="a long password",
            role="merchant_manager",
            merchant_id=till.merchant_id,
        )
    r = await world.client.post(
        "/v1/auth/staff", json={"username": username, "password": "a long password"}
    )
    answer = await r.json()
    assert (answer["role"], answer["merchant_id"], answer["district"]) == (
        "merchant_manager",
        till.merchant_id,
        None,
    )
