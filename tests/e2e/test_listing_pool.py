"""The listing pool over HTTP (issue 13, rule T4 with U1, X1, X2): developers are merchants of
kind developer, admitted by the housing bureau; their units come from a CSV (UTF-8 or GBK,
as the registry) and enter the pool once the bureau admits them; a developer's sales office
gets terminals as a shop does; a developer leaves on notice."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from server.db import tickets as tickets_db
from tests.e2e.conftest import Clock, World, new_id_number, shanghai
from tests.e2e.tickets_world import WAN, Tickets, ref, ticket_counts, units_csv
from tests.unit.ticket_helpers import SN, SQ


@pytest.fixture
def t(world: World, clock: Clock) -> Tickets:
    clock.now = shanghai(2025, 10, 9, 10)
    return Tickets(world, clock)


async def developer(t: Tickets, bureau: dict[str, str], district: str = "chuanshan") -> int:
    r = await t.client.post(
        "/v1/merchants",
        json={"name": ref("船山置业"), "district": district, "kind": "developer"},
        headers=bureau,
    )
    assert r.status == 201, await r.text()
    body = await r.json()
    assert (body["kind"], body["admitted"]) == ("developer", False)
    return int(body["id"])


async def import_units(
    t: Tickets, headers: dict[str, str], merchant_id: int, data: bytes, **query: str
) -> Any:
    r = await t.client.post(
        "/v1/listings/imports",
        params={"campaign_id": SN.id, "merchant_id": str(merchant_id), **query},
        data=data,
        headers={**headers, "Content-Type": "text/csv"},
    )
    return r.status, await r.json()


async def test_a_developer_is_admitted_by_the_housing_bureau_not_the_commerce_bureau(
    t: Tickets, world: World
) -> None:
    # T4 (Suining 第五条: 区住建局) and U1: each bureau admits its own kind of seller
    bureau = await t.bureau("chuanshan")
    merchant_id = await developer(t, bureau)
    city = await world.staff("city_operator")
    path = f"/v1/merchants/{merchant_id}/admission"
    r = await t.client.post(path, json={"admitted": True, "reason": "x"}, headers=city)
    assert r.status == 403
    r = await t.client.post(path, json={"admitted": True, "reason": "五证齐全"}, headers=bureau)
    assert r.status == 200 and (await r.json())["admitted"] is True
    shop = await world.till()
    r = await t.client.post(
        f"/v1/merchants/{shop.merchant_id}/admission",
        json={"admitted": False, "reason": "x"},
        headers=bureau,
    )
    assert r.status == 403  # the housing bureau acts on developers only
    other = await t.bureau("liangyuan")
    r = await t.client.post(path, json={"admitted": False, "reason": "x"}, headers=other)
    assert r.status == 403  # X2: a district's bureau acts in its district
    r = await t.client.get("/v1/merchants", headers=bureau)
    kinds = {m["kind"] for m in (await r.json())["merchants"]}
    assert kinds == {"developer"}


async def test_units_come_from_the_developers_csv_and_enter_the_pool_once_admitted(
    t: Tickets,
) -> None:
    # T4: a GBK file; bad rows rejected with line and reasons in Chinese; pending until the
    # bureau admits; the public sees admitted units only (T14: the pool is published)
    bureau = await t.bureau("chuanshan")
    merchant_id = await developer(t, bureau)
    data = units_csv(
        [
            ("1-101", "船山区", "住宅", "89.57", "650000"),
            ("1-102", "chuanshan", "车位", "12.5", "80000.50"),
            ("1-103", "梁园区", "住宅", "90", "600000"),  # not a Suining district
            ("1-104", "船山区", "商办", "90", "600000"),  # not a Suining type
            ("1-105", "船山区", "住宅", "0", "abc"),
            ("1-101", "船山区", "住宅", "89.57", "650000"),  # twice
        ]
    )
    status, dry = await import_units(t, bureau, merchant_id, data, dry_run="true")
    assert (status, dry["inserted"], dry["dry_run"]) == (200, 2, True)
    before = await ticket_counts(t.world)
    status, done = await import_units(t, bureau, merchant_id, data)
    assert (status, done["inserted"], done["rejected"], done["encoding"]) == (201, 2, 4, "gbk")
    assert [r["line"] for r in done["rejects"]] == [4, 5, 6, 7]
    assert "不在本房票可用的区域内" in done["rejects"][0]["reasons"][0]["message_zh"]
    assert len(done["rejects"][2]["reasons"]) == 2  # every reason of the row
    assert (await ticket_counts(t.world))["listings"] == before["listings"] + 2
    r = await t.client.get(
        "/v1/listings", params={"campaign_id": SN.id, "merchant_id": str(merchant_id)}
    )
    assert (await r.json())["units"] == []  # pending: not published
    r = await t.client.get(
        "/v1/listings",
        params={"campaign_id": SN.id, "merchant_id": str(merchant_id)},
        headers=bureau,
    )
    units = {u["unit"]: u for u in (await r.json())["units"]}
    assert units["1-101"]["area_dm2"] == 8957 and units["1-102"]["listed_price_fen"] == 8_000_050
    assert {u["status"] for u in units.values()} == {"pending"}
    r = await t.client.post(
        "/v1/listings/status",
        json={"listing_ids": [units["1-101"]["id"]], "status": "admitted", "reason": "审核通过"},
        headers=bureau,
    )
    assert r.status == 200
    r = await t.client.get(
        "/v1/listings", params={"campaign_id": SN.id, "merchant_id": str(merchant_id)}
    )
    assert [u["unit"] for u in (await r.json())["units"]] == ["1-101"]
    async with t.world.pool.acquire() as conn:
        found = await tickets_db.listing(conn, merchant_id, "1-101")
        assert found is not None and found[1].in_pool is False  # the developer: not admitted


async def test_a_changed_unit_waits_again_and_a_sold_one_does_not_change(
    t: Tickets, clock: Clock
) -> None:
    # T4: the filed price is adjusted (第六条 动态调整) and admitted again; a unit a ticket
    # bought keeps its area and type (the use's reward was counted on them, T8)
    office = await t.office(
        SN, [("2-201", "住宅", "100", "900000"), ("2-202", "住宅", "100", "900000")]
    )
    bureau = await t.bureau()
    changed = units_csv(
        [("2-201", "船山区", "住宅", "100", "880000"), ("2-202", "船山区", "住宅", "100", "900000")]
    )
    status, done = await import_units(t, bureau, office.merchant_id, changed)
    assert (status, done["updated"], done["unchanged"]) == (201, 1, 1)
    r = await t.client.get(
        "/v1/listings",
        params={"campaign_id": SN.id, "merchant_id": str(office.merchant_id)},
        headers=bureau,
    )
    statuses = {u["unit"]: u["status"] for u in (await r.json())["units"]}
    assert statuses == {"2-201": "pending", "2-202": "admitted"}
    issuer = await t.issuer("chuanshan")
    holder = new_id_number()
    made = await t.issue(issuer, t.agreement(SN, holder=holder, face=80 * WAN))
    await t.use(
        office,
        [made["ticket"]["id"]],
        "2-202",
        buyer=holder,
        price=90 * WAN,
        signed_on=date(2025, 10, 9),
    )
    resized = units_csv([("2-202", "船山区", "住宅", "120", "900000")])
    status, done = await import_units(t, bureau, office.merchant_id, resized)
    assert (status, done["updated"], done["rejected"]) == (201, 0, 1)
    assert done["rejects"][0]["reasons"][0]["message_zh"] == "该房源已用房票购买，不能修改"


async def test_a_developers_sales_office_gets_a_terminal_as_a_shop_does(
    t: Tickets, world: World
) -> None:
    # T4 with X2: the existing terminal registration, and the till signs in
    office = await t.office(SN, [("3-301", "住宅", "100", "900000")])
    district = await world.staff("district_operator", district="chuanshan")
    r = await t.client.post(
        f"/v1/merchants/{office.merchant_id}/terminals",
        json={"label": "售楼处 2"},
        headers=district,
    )
    assert r.status == 201, await r.text()
    pairing = (await r.json())["pairing"]
    r = await t.client.post(
        "/v1/auth/terminal",
        json={"terminal_id": pairing["terminal_id"], "secret": pairing["terminal_secret"]},
    )
    assert r.status == 200, await r.text()


async def test_a_developer_leaves_the_pool_three_months_after_its_notice(
    t: Tickets, clock: Clock
) -> None:
    # T4 (第七条): 3 months' notice (Civil Code months); its units leave the pool at the end
    # of the exit day; the notice is the housing bureau's record
    office = await t.office(SN, [("4-401", "住宅", "100", "900000")])
    bureau = await t.bureau()
    path = f"/v1/merchants/{office.merchant_id}/exit-notice"
    body = {"campaign_id": SN.id, "notice_on": "2025-10-31", "reason": "申请退出房源库"}
    r = await t.client.post(path, json=body, headers=bureau)
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_date"  # future
    body["notice_on"] = "2025-08-31"
    r = await t.client.post(path, json=body, headers=bureau)
    assert r.status == 200, await r.text()
    assert (await r.json()) == {
        "merchant_id": office.merchant_id,
        "notice_on": "2025-08-31",
        "exits_on": "2025-11-30",
        "units": 1,
    }
    async with t.world.pool.acquire() as conn:
        found = await tickets_db.listing(conn, office.merchant_id, "4-401", date(2025, 11, 30))
        assert found is not None and found[1].in_pool
        found = await tickets_db.listing(conn, office.merchant_id, "4-401", date(2025, 12, 1))
        assert found is not None and not found[1].in_pool


async def test_the_listing_routes_refuse_other_roles_and_bad_input_changing_nothing(
    t: Tickets, world: World
) -> None:
    # X2: units are admitted by the housing bureau only; bad input writes nothing
    office = await t.office(SQ, [("5-501", "住宅", "100", "900000")], district="liangyuan")
    listing_id = office.listings["5-501"]
    issuer = await t.issuer("liangyuan")
    body = {"listing_ids": [listing_id], "status": "removed", "reason": "x"}
    shop = await world.till()
    bureau = await t.bureau()
    before = await ticket_counts(world)
    r = await t.client.post("/v1/listings/status", json=body, headers=issuer)
    assert r.status == 403
    r = await t.client.post(
        "/v1/listings/status", json=body | {"listing_ids": [listing_id, 2**62]}, headers=bureau
    )
    assert r.status == 404
    r = await t.client.post("/v1/listings/status", json=body | {"status": "sold"}, headers=bureau)
    assert r.status == 400
    status, done = await import_units(t, bureau, office.merchant_id, b"\xff\xfe\x00bad")
    assert status == 400 and done["error"]["code"] == "invalid_request"
    status, done = await import_units(t, bureau, shop.merchant_id, units_csv([]))
    assert status == 400 and done["error"]["details"]["field"] == "merchant_id"
    assert await ticket_counts(world) == before
