"""Operators: merchants (U1, X1), terminals (X2), revoking a citizen (X1), the audit log."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.conftest import Till, World, new_id_number
from tests.e2e.test_till import error_code


async def post(world: World, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return await world.client.post(path, json=body, headers=headers)


async def audit(world: World, headers: dict[str, str], **query: str) -> list[dict[str, Any]]:
    r = await world.client.get("/v1/audit", params=query, headers=headers)
    assert r.status == 200, await r.text()
    return list((await r.json())["entries"])


async def test_a_new_merchant_redeems_only_once_admitted_and_permitted(world: World) -> None:
    # rule U1: the commerce bureau admits, the district grants permission
    city = await world.staff("city_operator")
    district = await world.staff("district_operator", district="gaoxin")
    r = await post(world, "/v1/merchants", {"name": "高新超市", "district": "高新区"}, district)
    assert r.status == 201
    merchant = await r.json()
    assert (merchant["district"], merchant["admitted"], merchant["permitted"]) == (
        "gaoxin",
        False,
        False,
    )
    r = await post(
        world, f"/v1/merchants/{merchant['id']}/terminals", {"label": "1号收银台"}, district
    )
    assert r.status == 201
    issued = await r.json()
    assert issued["pairing_qr_svg"].startswith("<?xml")
    till = await world.sign_in(
        Till(issued["terminal_id"], merchant["id"], issued["pairing"]["terminal_secret"])
    )
    person = await world.citizen_with_vouchers()
    assert await error_code(await world.redeem(till, await world.qr(person))) == (
        "merchant_not_permitted"
    )
    base = f"/v1/merchants/{merchant['id']}"
    # a district operator cannot admit (commerce bureau's act), the city can
    assert (
        await post(world, f"{base}/admission", {"admitted": True, "reason": "ok"}, district)
    ).status == 403
    assert (
        await post(world, f"{base}/admission", {"admitted": True, "reason": "资质齐全"}, city)
    ).status == 200
    assert await error_code(await world.redeem(till, await world.qr(person))) == (
        "merchant_not_permitted"
    )
    r = await post(world, f"{base}/permission", {"permitted": True, "reason": "开通核销"}, district)
    assert (await r.json())["permitted"] is True
    assert (await world.redeem(till, await world.qr(person))).status == 201
    actions = [e["action"] for e in await audit(world, city, actor=merchant_actor(district))]
    assert actions[:3] == ["merchant.permit", "terminal.issue", "merchant.add"]


def merchant_actor(headers: dict[str, str]) -> str:
    """How the audit log names the staff member signed in with ``headers``."""
    import jwt

    claims = jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})
    return f"{claims['role']}:{claims['sub']}"


async def test_a_district_operator_cannot_touch_another_districts_merchant(
    world: World,
) -> None:
    # rule X2
    other = await world.staff("district_operator", district="jingkai")
    till = await world.till(district="dongchangfu")
    base = f"/v1/merchants/{till.merchant_id}"
    r = await post(world, f"{base}/suspension", {"suspended": True, "reason": "x"}, other)
    assert r.status == 403
    r = await post(world, "/v1/merchants", {"name": "x", "district": "东昌府区"}, other)
    assert r.status == 403
    listed = await (await world.client.get("/v1/merchants", headers=other)).json()
    assert all(m["district"] == "jingkai" for m in listed["merchants"])


async def test_a_suspension_stops_redemption_at_once_and_is_audited(world: World) -> None:
    # rules U1, X1
    district = await world.staff("district_operator", district="dongchangfu")
    city = await world.staff("city_operator")
    person = await world.citizen_with_vouchers()
    till = await world.till()
    base = f"/v1/merchants/{till.merchant_id}"
    r = await post(world, f"{base}/suspension", {"suspended": True, "reason": "刷单嫌疑"}, district)
    assert (await r.json())["status"] == "suspended"
    assert await error_code(await world.redeem(till, await world.qr(person))) == (
        "merchant_suspended"
    )
    (entry,) = await audit(world, city, action="merchant.suspend", actor=merchant_actor(district))
    assert entry["reason"] == "刷单嫌疑"
    assert entry["subject"] == f"merchant:{till.merchant_id}"
    await post(world, f"{base}/suspension", {"suspended": False, "reason": "查无问题"}, district)
    assert (await world.redeem(till, await world.qr(person))).status == 201


async def test_a_revoked_terminal_can_no_longer_sign_in(world: World) -> None:
    district = await world.staff("district_operator", district="dongchangfu")
    till = await world.till()
    r = await post(
        world, f"/v1/terminals/{till.terminal_id}/revocation", {"reason": "设备丢失"}, district
    )
    assert r.status == 200
    r = await world.client.post(
        "/v1/auth/terminal", json={"terminal_id": till.terminal_id, "secret": till.secret}
    )
    assert await error_code(r) == "terminal_disabled"


async def test_revoking_a_citizen_claws_back_unused_vouchers_only(world: World) -> None:
    # rule X1
    city = await world.staff("city_operator")
    person = await world.citizen_with_vouchers()
    till = await world.till()
    assert (
        await world.redeem(till, await world.qr(person), bill_fen=40_000, count=2)
    ).status == 201
    r = await post(
        world,
        "/v1/citizens/revocation",
        {"id_number": person.id_number, "reason": "倒卖消费券"},
        city,
    )
    assert r.status == 200, await r.text()
    assert (await r.json())["vouchers_clawed_back"] == 46
    person = await world.citizen(person.id_number)
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["counts"] == {"available": 0, "used": 2, "expired": 0, "revoked": 46}
    (entry,) = await audit(world, city, action="citizen.revoke", actor=merchant_actor(city))
    assert entry["details"]["masked_id"] == (
        person.id_number[:4] + "*" * 10 + person.id_number[-4:]
    )
    assert entry["reason"] == "倒卖消费券"
    assert person.id_number not in str(entry)  # rule X3
    r = await post(
        world, "/v1/citizens/revocation", {"id_number": person.id_number, "reason": "again"}, city
    )
    assert r.status == 404


async def test_the_auditor_reads_the_log_but_changes_nothing(world: World) -> None:
    # rule X2: read-only
    auditor = await world.staff("auditor")
    till = await world.till()
    assert (await world.client.get("/v1/audit", headers=auditor)).status == 200
    assert (await world.client.get("/v1/merchants", headers=auditor)).status == 200
    r = await post(
        world,
        f"/v1/merchants/{till.merchant_id}/suspension",
        {"suspended": True, "reason": "x"},
        auditor,
    )
    assert r.status == 403
    r = await world.client.get("/v1/audit", params={"from": "2024-13-01"}, headers=auditor)
    assert await error_code(r) == "invalid_date"  # issue 9: a date has its own code


async def test_an_exact_duplicate_merchant_is_refused_and_changes_nothing(world: World) -> None:
    # issue 10 (voucherctl merchants add): one shop, one ledger (rule U1)
    city = await world.staff("city_operator")
    name = f"高新区重复测试店-{uuid.uuid4().hex[:6]}"
    r = await post(world, "/v1/merchants", {"name": name, "district": "高新区"}, city)
    assert r.status == 201
    first = (await r.json())["id"]
    r = await post(world, "/v1/merchants", {"name": name, "district": "gaoxin"}, city)
    assert r.status == 409
    error = (await r.json())["error"]
    assert error["code"] == "conflict"
    assert error["details"] == {"reason": "merchant_exists", "merchant_id": first}
    listed = await (await world.client.get("/v1/merchants", headers=city)).json()
    assert [m["id"] for m in listed["merchants"] if m["name"] == name] == [first]
    added = [e for e in await audit(world, city, action="merchant.add") if name in str(e)]
    assert len(added) == 1
    # the same name in another district is another shop
    r = await post(world, "/v1/merchants", {"name": name, "district": "东昌府区"}, city)
    assert r.status == 201


async def test_an_imported_owner_revoked_before_their_claim_is_refused_from_the_start(
    world: World,
) -> None:
    # issue 10 (voucherctl citizens revoke), rule X1: the owner never signed in, so there is
    # no citizen row yet; the revocation makes one, already revoked
    city = await world.staff("city_operator")
    number = new_id_number()
    cert_no = await world.certificate([number])
    body = {"id_number": number, "reason": "冒名登记"}
    r = await post(world, "/v1/citizens/revocation", body, city)
    assert r.status == 200, await r.text()
    assert (await r.json())["vouchers_clawed_back"] == 0
    person = await world.citizen(number)
    r = await post(world, "/v1/claims", {"certificate_no": cert_no}, person.headers)
    assert await error_code(r) == "participation_revoked"
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["participation"]["status"] == "revoked"
    assert wallet["participation"]["reason"] == "冒名登记"
    assert wallet["claims"] == []
    # revoked already: nothing more to revoke
    r = await post(world, "/v1/citizens/revocation", body, city)
    assert await error_code(r) == "not_found"
