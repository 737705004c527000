"""Issue 9, items 4 and 6 (rule X1): a revoked terminal, a suspended merchant, a disabled
account or a revoked citizen is refused at once on every route, whatever token it already
holds; the change reaches another server process within the bound of server/access.py; and a
refund returns a revoked citizen's vouchers as revoked.

Every token used below was issued before the change it meets.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from ops import demo as seed
from server import access
from server.access import ACCESS_VIEW
from server.app import create_app
from server.auth import Principal, Role
from server.settings import Settings
from shared.errors import TerminalDisabled
from tests.e2e.conftest import Citizen, Clock, Till, World
from tests.e2e.test_till import error_code

Call = Callable[[TestClient[Any, Any], dict[str, str]], Awaitable[Any]]


async def post(world: World, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return await world.client.post(path, json=body, headers=headers)


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def staff_account(world: World, role: str, **scope: Any) -> tuple[int, str, dict[str, str]]:
    """A staff account signed in: its id, username and Authorization header."""
    username = f"{role.split('_')[0]}-{uuid.uuid4().hex[:10]}"
    async with world.pool.acquire() as conn:
        account_id = await seed.account(
            conn, username=username, password="a long password", role=role, **scope
        )
    headers = await sign_in_staff(world.client, username, "a long password")
    return account_id, username, headers


async def sign_in_staff(client: TestClient[Any, Any], username: str, password: str) -> Any:
    r = await client.post("/v1/auth/staff", json={"username": username, "password": password})
    assert r.status == 200, await r.text()
    return {"Authorization": f"Bearer {(await r.json())['access_token']}"}


async def till_calls(world: World, till: Till, person: Citizen) -> dict[str, Call]:
    """One call per till route family, each valid while the till is in good standing (a
    redemption of two vouchers is made first, for the refund and the look-ups)."""
    r = await world.redeem(till, await world.qr(person), bill_fen=40_000, count=2)
    assert r.status == 201, await r.text()
    done = await r.json()
    token = await world.qr(person)
    rid = done["redemption_id"]

    def quote(c: TestClient[Any, Any], h: dict[str, str]) -> Any:
        return c.post("/v1/quote", json={"token": token, "bill_fen": 20_000}, headers=h)

    def redeem(c: TestClient[Any, Any], h: dict[str, str]) -> Any:
        body = {"token": token, "bill_fen": 20_000, "receipt_no": uuid.uuid4().hex[:12]}
        return c.post("/v1/redemptions", json={**body, "voucher_count": 1}, headers={**h, **key()})

    def refund(c: TestClient[Any, Any], h: dict[str, str]) -> Any:
        return c.post(
            f"/v1/redemptions/{rid}/refunds",
            json={"remaining_bill_fen": 20_000},
            headers={**h, **key()},
        )

    def find(c: TestClient[Any, Any], h: dict[str, str]) -> Any:
        return c.get("/v1/redemptions", params={"receipt_no": done["receipt_no"]}, headers=h)

    def one(c: TestClient[Any, Any], h: dict[str, str]) -> Any:
        return c.get(f"/v1/redemptions/{rid}", headers=h)

    def day(c: TestClient[Any, Any], h: dict[str, str]) -> Any:
        return c.get("/v1/merchant/day", params={"date": "2024-09-10"}, headers=h)

    return {
        "quote": quote,
        "redeem": redeem,
        "refund": refund,
        "find": find,
        "one": one,
        "day": day,
    }


async def refused_everywhere(
    client: TestClient[Any, Any], calls: dict[str, Call], headers: dict[str, str], code: str
) -> None:
    for name, call in calls.items():
        r = await call(client, headers)
        assert r.status in (401, 403), f"{name}: {r.status} {await r.text()}"
        assert await error_code(r) == code, name


async def test_a_revoked_terminals_old_token_is_refused_on_every_till_route(world: World) -> None:
    # item 4: seen, after the revocation, the old token refunded a bill and read the day list
    district = await world.staff("district_operator", district="dongchangfu")
    person = await world.citizen_with_vouchers()
    till = await world.till()
    calls = await till_calls(world, till, person)
    manager = await world.staff("merchant_manager", merchant_id=till.merchant_id)
    r = await post(
        world, f"/v1/terminals/{till.terminal_id}/revocation", {"reason": "设备丢失"}, district
    )
    assert r.status == 200
    await refused_everywhere(world.client, calls, till.headers, "terminal_disabled")
    # nothing was refunded or redeemed by the refused calls
    r = await calls["one"](world.client, manager)
    assert (await r.json())["refunded_count"] == 0
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["counts"]["used"] == 2
    # the shop's manager is not the terminal: the shop's day list still answers them
    assert (await calls["day"](world.client, manager)).status == 200


async def test_a_suspended_merchants_tokens_are_refused_and_work_again_once_lifted(
    world: World,
) -> None:
    # item 4: seen, a suspended merchant's till still refunded
    district = await world.staff("district_operator", district="dongchangfu")
    person = await world.citizen_with_vouchers()
    till = await world.till()
    calls = await till_calls(world, till, person)
    manager = await world.staff("merchant_manager", merchant_id=till.merchant_id)
    base = f"/v1/merchants/{till.merchant_id}/suspension"
    assert (await post(world, base, {"suspended": True, "reason": "套现嫌疑"}, district)).ok
    await refused_everywhere(world.client, calls, till.headers, "merchant_suspended")
    manager_calls = {n: c for n, c in calls.items() if n in ("refund", "find", "one", "day")}
    await refused_everywhere(world.client, manager_calls, manager, "merchant_suspended")
    assert (await post(world, base, {"suspended": False, "reason": "查无问题"}, district)).ok
    for name in ("quote", "refund", "find", "one", "day"):
        r = await calls[name](world.client, till.headers)
        assert r.status in (200, 201), f"{name}: {await r.text()}"
    assert (await calls["day"](world.client, manager)).status == 200


async def test_a_disabled_accounts_token_is_refused_on_every_route_family(
    world: World, clock: Clock
) -> None:
    # item 4: seen, a disabled account's token still read /v1/audit and created a merchant
    _, _, boss = await staff_account(world, "city_operator")
    city_id, city_name, city = await staff_account(world, "city_operator")
    district_id, _, district = await staff_account(
        world, "district_operator", district="dongchangfu"
    )
    auditor_id, _, auditor = await staff_account(world, "auditor")
    till = await world.till()
    manager_id, _, manager = await staff_account(
        world, "merchant_manager", merchant_id=till.merchant_id
    )
    for account_id in (city_id, district_id, auditor_id, manager_id):
        r = await post(
            world,
            f"/v1/accounts/{account_id}/status",
            {"status": "disabled", "reason": "离职"},
            boss,
        )
        assert r.status == 200, await r.text()
    c = world.client
    calls: list[tuple[str, dict[str, str], Any]] = [
        ("audit", city, c.get("/v1/audit", headers=city)),
        (
            "merchants",
            city,
            post(world, "/v1/merchants", {"name": "x", "district": "高新区"}, city),
        ),
        ("accounts", city, c.get("/v1/accounts", headers=city)),
        ("ranking", city, c.get("/v1/reports/ranking", params={"month": "2024-08"}, headers=city)),
        ("settlement", district, c.get("/v1/settlements/1", headers=district)),
        (
            "settle",
            district,
            post(
                world,
                "/v1/settlements",
                {"campaign_id": "liaocheng-2024", "district": "东昌府区", "month": "2024-09"},
                district,
            ),
        ),
        ("merchants-d", district, c.get("/v1/merchants", headers=district)),
        ("audit-a", auditor, c.get("/v1/audit", headers=auditor)),
        ("day", manager, c.get("/v1/merchant/day", headers=manager)),
    ]
    for name, _, pending in calls:
        r = await pending
        assert r.status == 403, f"{name}: {await r.text()}"
        assert await error_code(r) == "account_disabled", name
    merchants = await (await c.get("/v1/merchants", headers=boss)).json()
    assert all(m["name"] != "x" for m in merchants["merchants"])  # the refusal wrote nothing
    # enabled again: the account signs in afresh; the token of before stays dead
    r = await post(
        world, f"/v1/accounts/{city_id}/status", {"status": "active", "reason": "返聘"}, boss
    )
    assert r.status == 200
    r = await c.get("/v1/audit", headers=city)
    assert (r.status, (await r.json())["error"]["details"]) == (401, {"reason": "session_ended"})
    fresh = await sign_in_staff(c, city_name, "a long password")
    assert (await c.get("/v1/audit", headers=fresh)).status == 200


async def test_a_revoked_citizen_reads_the_wallet_but_mints_claims_and_redeems_nothing(
    world: World,
) -> None:
    city = await world.staff("city_operator")
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token = await world.qr(person)  # minted before the revocation
    cert_no = await world.certificate([person.id_number])
    r = await post(
        world,
        "/v1/citizens/revocation",
        {"id_number": person.id_number, "reason": "倒卖消费券"},
        city,
    )
    assert r.status == 200
    r = await world.client.get("/v1/wallet", headers=person.headers)
    assert r.status == 200
    wallet = await r.json()
    assert wallet["participation"]["status"] == "revoked"
    assert wallet["participation"]["reason"] == "倒卖消费券"
    assert wallet["counts"]["revoked"] == 48
    for fmt in ("json", "png"):
        r = await world.client.post("/v1/wallet/qr", params={"format": fmt}, headers=person.headers)
        assert await error_code(r) == "participation_revoked"
    r = await post(world, "/v1/claims", {"certificate_no": cert_no}, person.headers)
    assert await error_code(r) == "participation_revoked"
    assert await error_code(await world.redeem(till, token)) == "participation_revoked"
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert len(wallet["claims"]) == 1 and wallet["counts"]["used"] == 0  # nothing changed
    # a citizen in good standing sees it too
    other = await world.citizen_with_vouchers()
    wallet = await (await world.client.get("/v1/wallet", headers=other.headers)).json()
    assert wallet["participation"] == {"status": "active"}


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    """Poll ``check`` until it holds; the bound is ~1 s, the deadline generous for slow CI."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "the change did not reach the other process"
        await asyncio.sleep(0.1)


async def test_a_change_reaches_another_server_process(
    world: World, aiohttp_client: Any, settings: Settings, clock: Clock
) -> None:
    # item 4: two apps on one database stand for two server processes
    other = await aiohttp_client(create_app(settings, clock=clock))
    district = await world.staff("district_operator", district="dongchangfu")
    _, _, boss = await staff_account(world, "city_operator")
    account_id, _, auditor = await staff_account(world, "auditor")
    person = await world.citizen_with_vouchers()
    till = await world.till()
    calls = await till_calls(world, till, person)
    assert (await calls["day"](other, till.headers)).status == 200
    assert (await other.get("/v1/audit", headers=auditor)).status == 200

    async def day_code(code: str) -> bool:
        r = await calls["day"](other, till.headers)
        if r.status == 200:
            return code == "ok"
        return bool((await r.json())["error"]["code"] == code)

    base = f"/v1/merchants/{till.merchant_id}/suspension"
    assert (await post(world, base, {"suspended": True, "reason": "核查"}, district)).ok
    await eventually(lambda: day_code("merchant_suspended"))
    assert (await post(world, base, {"suspended": False, "reason": "核查完毕"}, district)).ok
    await eventually(lambda: day_code("ok"))
    r = await post(
        world, f"/v1/terminals/{till.terminal_id}/revocation", {"reason": "被盗"}, district
    )
    assert r.status == 200
    await eventually(lambda: day_code("terminal_disabled"))
    await refused_everywhere(other, calls, till.headers, "terminal_disabled")

    r = await post(
        world, f"/v1/accounts/{account_id}/status", {"status": "disabled", "reason": "离职"}, boss
    )
    assert r.status == 200

    async def auditor_refused() -> bool:
        r = await other.get("/v1/audit", headers=auditor)
        return r.status == 403 and await error_code(r) == "account_disabled"

    await eventually(auditor_refused)


@pytest.mark.parametrize("whole", [True, False], ids=["full", "partial"])
async def test_a_refund_returns_a_revoked_citizens_vouchers_as_revoked(
    world: World, db_pool: asyncpg.Pool, whole: bool
) -> None:
    # item 6, rule X1: seen, the returned voucher came back available
    city = await world.staff("city_operator")
    person = await world.citizen_with_vouchers()
    till = await world.till()
    r = await world.redeem(till, await world.qr(person), bill_fen=60_000, count=3)
    done = await r.json()
    r = await post(
        world, "/v1/citizens/revocation", {"id_number": person.id_number, "reason": "套现"}, city
    )
    assert (await r.json())["vouchers_clawed_back"] == 45
    r = await world.client.post(
        f"/v1/redemptions/{done['redemption_id']}/refunds",
        json={"remaining_bill_fen": 0 if whole else 20_000},
        headers={**till.headers, **key()},
    )
    assert r.status == 201, await r.text()
    returned = 3 if whole else 2
    assert (await r.json())["refunded_count"] == returned
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["counts"] == {
        "available": 0,
        "used": 3 - returned,
        "expired": 0,
        "revoked": 45 + returned,
    }
    async with db_pool.acquire() as conn:
        states = await conn.fetch(
            "SELECT v.status, v.redeemed_at FROM redemption_items i "
            "JOIN vouchers v ON v.id = i.voucher_id WHERE i.redemption_id = $1 "
            "AND i.refund_id IS NOT NULL",
            done["redemption_id"],
        )
    assert [(s["status"], s["redeemed_at"]) for s in states] == [("revoked", None)] * returned


async def test_the_ledger_refuses_returning_a_revoked_citizens_voucher_as_available(
    world: World, db_pool: asyncpg.Pool
) -> None:
    # item 6: whatever the code does, the trigger holds rule X1
    city = await world.staff("city_operator")
    person = await world.citizen_with_vouchers()
    active = await world.citizen_with_vouchers()
    till = await world.till()
    spent = await (await world.redeem(till, await world.qr(person))).json()
    spent_active = await (await world.redeem(till, await world.qr(active))).json()
    r = await post(
        world, "/v1/citizens/revocation", {"id_number": person.id_number, "reason": "套现"}, city
    )
    assert r.status == 200
    move = (
        "UPDATE vouchers SET status = $2, redeemed_at = NULL WHERE id = "
        "(SELECT voucher_id FROM redemption_items WHERE redemption_id = $1)"
    )
    async with db_pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="its owner is revoked"):
            await conn.execute(move, spent["redemption_id"], "available")
        with pytest.raises(asyncpg.CheckViolationError, match="its owner is active"):
            await conn.execute(move, spent_active["redemption_id"], "revoked")
        tx = conn.transaction()
        await tx.start()
        try:  # the allowed edge, rolled back: the bill itself was not refunded
            assert await conn.execute(move, spent["redemption_id"], "revoked") == "UPDATE 1"
        finally:
            await tx.rollback()


async def test_a_stale_view_is_refreshed_before_a_request_is_decided(
    world: World, db_pool: asyncpg.Pool
) -> None:
    # the bound holds even when the poller fell behind: a view older than STALE_AFTER_S is
    # refreshed before a request is decided. A view of its own (no poller) sees a revocation
    # written to the ledger as another process would, only once it is refreshed.
    till = await world.till()
    me = Principal(
        Role.CASHIER,
        str(till.terminal_id),
        terminal_id=till.terminal_id,
        merchant_id=till.merchant_id,  # its own shop's (merchant 1 may be another test's)
    )
    view = access.AccessView(db_pool)
    async with db_pool.acquire() as conn:
        await view.load(conn)
        view.check(me)
        async with conn.transaction():
            await conn.execute(
                "UPDATE terminals SET status = 'revoked', revoked_at = now() WHERE id = $1",
                till.terminal_id,
            )
            await access.record(conn, "terminal", till.terminal_id, blocked=True)
    view.check(me)  # not polled yet: the window the bound speaks of
    view.refreshed_at -= access.STALE_AFTER_S + 1
    assert view.stale
    await view.fresh()
    with pytest.raises(TerminalDisabled):
        view.check(me)
    # the app's own view, made stale, refreshes inside the request
    world.client.app[ACCESS_VIEW].refreshed_at -= access.STALE_AFTER_S + 1
    r = await world.client.get("/v1/merchant/day", headers=till.headers)
    assert await error_code(r) == "terminal_disabled"
    assert not world.client.app[ACCESS_VIEW].stale
