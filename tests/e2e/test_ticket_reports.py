"""House tickets' reports over HTTP and on the operators' page (issue 13, rule T14 with X2):
per programme, district and seller — issued, value, used, cashed out, expired, subsidies and
rewards, bonuses, settlements due and paid — in Chinese, as JSON, CSV and ``/ops/tickets``;
an issuer sees its own district; the transactions are published without buyer or ticket."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.settings import Settings
from tests.e2e.conftest import Clock, new_id_number, shanghai
from tests.e2e.test_pages import signed_in_staff
from tests.e2e.tickets_world import WAN, Tickets, isolated


@pytest.fixture
async def t(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool, tmp_path: Path
) -> Tickets:
    clock.now = shanghai(2024, 9, 10, 10)
    return await isolated(aiohttp_client, settings, clock, db_pool, tmp_path)


async def a_month_of_shangqiu(t: Tickets) -> dict[str, Any]:
    """Two districts' tickets, two developers, subsidised uses, a cash-out, a paid settlement:
    梁园区 issues 100万 and 50万, 睢阳区 80万; 梁园's 100万 buys 60万 + 35万 at developer A and
    is cashed out; 睢阳's 80万 buys 40万 at developer B; 梁园's 50万 is voided."""
    a = await t.office(
        t.sq, [("A-1", "住宅", "100", "2000000"), ("A-2", "车位车库", "12", "400000")]
    )
    b = await t.office(t.sq, [("B-1", "商业", "80", "1200000")], district="suiyang")
    liangyuan, suiyang = await t.issuer("liangyuan"), await t.issuer("suiyang")
    h1, h2, h3 = new_id_number(), new_id_number(), new_id_number()
    t1 = (await t.issue(liangyuan, t.agreement(t.sq, holder=h1)))["ticket"]["id"]
    t2 = (await t.issue(liangyuan, t.agreement(t.sq, holder=h2, face=50 * WAN)))["ticket"]["id"]
    t3 = (await t.issue(suiyang, t.agreement(t.sq, district="suiyang", holder=h3, face=80 * WAN)))[
        "ticket"
    ]["id"]
    day = date(2024, 9, 10)
    u1 = await t.use(a, [t1], "A-1", buyer=h1, price=200 * WAN, signed_on=day, amounts=[60 * WAN])
    await t.use(a, [t1], "A-2", buyer=h1, price=40 * WAN, signed_on=day, amounts=[35 * WAN])
    await t.use(b, [t3], "B-1", buyer=h3, price=120 * WAN, signed_on=day, amounts=[40 * WAN])
    r = await t.client.post(
        f"/v1/tickets/{t1}/cashout", json={"application_no": "DX"}, headers=liangyuan
    )
    assert r.status == 201, await r.text()
    r = await t.client.post(f"/v1/tickets/{t2}/void", json={"decision_no": "JD"}, headers=liangyuan)
    assert r.status == 200, await r.text()
    body = {"condition": "filed", "recorded_on": "2024-09-10", "document_no": "BA-1"}
    r = await t.client.post(f"/v1/ticket-uses/{u1}/conditions", json=body, headers=liangyuan)
    assert r.status == 201, await r.text()
    build = {"campaign_id": t.sq.id, "district": "liangyuan", "point": "2024-09-10"}
    r = await t.client.post("/v1/ticket-settlements", json=build, headers=liangyuan)
    batch = (await r.json())["settlement_id"]
    path = f"/v1/ticket-settlements/{batch}/steps"
    for step, who in (
        ("review", liangyuan),
        ("approve", await t.world.staff("city_operator")),
        ("pay", await t.world.staff("city_operator")),
    ):
        r = await t.client.post(path, json={"step": step}, headers=who)
        assert r.status == 200, await r.text()
    return {"a": a.merchant_id, "b": b.merchant_id, "liangyuan": liangyuan}


async def test_the_report_has_every_figure_per_programme_district_and_seller(t: Tickets) -> None:
    # T14, with T7's subsidies (month 1: 10%), T9's cash-out, T12's paid settlement
    made = await a_month_of_shangqiu(t)
    city = await t.world.staff("auditor")
    r = await t.client.get("/v1/ticket-reports", params={"campaign_id": t.sq.id}, headers=city)
    assert r.status == 200, await r.text()
    report = await r.json()
    assert report["columns"]["issued"] == "核发张数"
    rows = {(x["scope"], x["key"]): x for x in report["rows"]}
    whole = rows[("programme", t.sq.id)]
    assert (whole["issued"], whole["face_fen"]) == (3, 230 * WAN)
    assert (whole["used_fen"], whole["subsidy_fen"]) == (135 * WAN, 135 * WAN // 10)
    assert (whole["cashed_out_fen"], whole["returned_fen"]) == (5 * WAN, 50 * WAN)
    assert (whole["settlement_due_fen"], whole["settlement_paid_fen"]) == (
        135 * WAN * 11 // 10,
        66 * WAN,  # 60万 and its subsidy, filed and paid
    )
    liangyuan = rows[("district", "liangyuan")]
    assert (liangyuan["name"], liangyuan["issued"], liangyuan["used_fen"]) == (
        "梁园区",
        2,
        95 * WAN,
    )
    seller = rows[("seller", str(made["b"]))]
    assert (seller["used_fen"], seller["settlement_due_fen"]) == (40 * WAN, 44 * WAN)
    assert seller["name"].startswith("开发企业")
    r = await t.client.get(
        "/v1/ticket-reports", params={"campaign_id": t.sq.id, "format": "csv"}, headers=city
    )
    text = (await r.read()).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][:4] == ["范围", "名称", "核发张数", "票面金额"]
    assert table[1][:4] == ["全市", t.sq.name, "3", "2300000.00"]
    mine = await t.client.get(
        "/v1/ticket-reports", params={"campaign_id": t.sq.id}, headers=made["liangyuan"]
    )
    scoped = await mine.json()
    assert scoped["district"] == "liangyuan"
    assert {x["key"] for x in scoped["rows"] if x["scope"] == "district"} == {"liangyuan"}
    assert scoped["rows"][0]["face_fen"] == 150 * WAN  # an issuer's whole is its district's


async def test_the_programme_publishes_its_transactions_without_buyer_or_ticket(
    t: Tickets,
) -> None:
    # T14: "the listings and transactions the programme publishes": public
    await a_month_of_shangqiu(t)
    r = await t.client.get("/v1/ticket-transactions", params={"campaign_id": t.sq.id})
    assert r.status == 200
    published = (await r.json())["transactions"]
    assert len(published) == 3
    assert set(published[0]) == {
        "seller",
        "district",
        "property_type",
        "area_dm2",
        "price_fen",
        "signed_on",
        "ticket_amount_fen",
    }
    r = await t.client.get("/v1/listings", params={"campaign_id": t.sq.id})
    assert {u["status"] for u in (await r.json())["units"]} == {"admitted"}


async def test_the_operators_page_shows_the_report_in_chinese(t: Tickets) -> None:
    # T14 on /ops: Chinese headings and figures in 元; the issuer's district only (X2)
    await a_month_of_shangqiu(t)
    browser, _ = await signed_in_staff(t.world, "ticket_issuer", district="liangyuan")
    r = await browser.get(f"/ops/tickets?campaign={t.sq.id}")
    assert r.status == 200, await r.text()
    page = await r.text()
    for words in ("房票看板", "核发张数", "结余兑付金额", "开发企业结算", "仅显示本区 梁园区"):
        assert words in page
    assert "1,500,000.00 元" in page  # 梁园区's 100万 and 50万
    assert "睢阳区" not in page
    r = await browser.get(f"/ops/tickets.csv?campaign={t.sq.id}")
    assert r.headers["Content-Type"].startswith("text/csv")
    assert (await r.read()).decode("utf-8-sig").startswith("范围,名称,核发张数")
    city, _ = await signed_in_staff(t.world, "city_operator")
    r = await city.get(f"/ops/tickets?campaign={t.sq.id}&lang=en")
    assert "Tickets issued" in await r.text()
    shop, _ = await signed_in_staff(t.world, "auditor")
    assert (await shop.get(f"/ops/tickets?campaign={t.sq.id}&on=2024-13-01")).status == 400


async def test_the_dashboard_leads_the_city_and_the_auditor_to_the_tickets(t: Tickets) -> None:
    # T14, X2: the city and the auditor reach /ops/tickets from /ops, and back; a district
    # operator (no reader of tickets) is not led there
    for role in ("city_operator", "auditor"):
        page, _ = await signed_in_staff(t.world, role)
        r = await page.get("/ops")
        assert r.status == 200, await r.text()
        assert 'id="to-tickets" href="/ops/tickets"' in await r.text()
        assert 'id="to-vouchers" href="/ops"' in await (await page.get("/ops/tickets")).text()
    page, _ = await signed_in_staff(t.world, "district_operator", district="dongchangfu")
    assert "/ops/tickets" not in await (await page.get("/ops")).text()
    assert (await page.get("/ops/tickets")).status == 403
