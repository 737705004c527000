"""A house ticket's use at a developer's sales office (rules T2, T4-T8 with U1, U5, U7, X1;
issue 13), over HTTP against real PostgreSQL and Redis, in the server that serves the
vouchers: the holder's code is the voucher code, the sales office is a merchant's till."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from ops import demo as seed
from server.db import tickets as tickets_db
from server.db.invariants import check_ledger
from server.web import TICKET_CAMPAIGNS
from shared.house_tickets import FaceItem, Ticket
from shared.idnumber import make_id_number
from shared.ticket_campaign import PropertyType, TicketCampaign
from tests.e2e.conftest import Citizen, Clock, Till, World, new_id_number, shanghai
from tests.e2e.tickets_world import ticket_counts

WAN = 1_000_000  # 1 万元 in fen
FACE = 100 * WAN


async def error_of(response: Any) -> dict[str, Any]:
    body = await response.json()
    return dict(body["error"])


def programme(world: World, campaign_id: str) -> TicketCampaign:
    return world.client.app[TICKET_CAMPAIGNS][campaign_id]


async def sales_office(
    world: World,
    campaign_id: str = "shangqiu-2025",
    *,
    district: str = "liangyuan",
    units: tuple[tuple[str, PropertyType, int, int], ...] = (
        ("1-101", PropertyType.RESIDENTIAL, 12_000, 200 * WAN),
    ),
    kind: str = "developer",
) -> Till:
    """A developer with a signed-in sales-office till and ``units`` (unit, type, area in dm²,
    listed price) in the programme's pool."""
    async with world.pool.acquire() as conn:
        cred = await seed.merchant_with_terminal(
            conn, name=f"置业-{uuid.uuid4().hex[:8]}", district=district, kind=kind
        )
        for unit, kind_of, area, price in units:
            await seed.listing(
                conn,
                campaign_id,
                merchant_id=cred.merchant_id,
                unit=unit,
                district=district,
                property_type=kind_of,
                area_dm2=area,
                price_fen=price,
            )
    return await world.sign_in(Till(cred.terminal_id, cred.merchant_id, cred.secret))


async def ticket_for(
    world: World,
    person: Citizen,
    campaign_id: str = "shangqiu-2025",
    *,
    issued_on: date = date(2025, 6, 20),
    face: int = FACE,
    household: tuple[str, ...] = (),
) -> Ticket:
    campaign = programme(world, campaign_id)
    code = next(iter(campaign.face_items))
    async with world.pool.acquire() as conn:
        return await seed.house_ticket(
            conn,
            campaign,
            number=f"FP-{uuid.uuid4().hex[:10]}",
            holder_id_number=person.id_number,
            id_hash_key=world.settings.id_hash_key,
            issued_on=issued_on,
            items=(FaceItem(code, face),),
            household=household,
            area_dm2=12_000 if campaign.ticket_area_required else None,
        )


async def read_ticket(world: World, ticket: Ticket) -> Ticket:
    async with world.pool.acquire() as conn:
        return (await tickets_db.read_tickets(conn, [ticket.id]))[ticket.id]


def contract(token: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": token,
        "contract_no": f"WQ-{uuid.uuid4().hex[:10]}",
        "unit": "1-101",
        "signed_on": "2025-07-10",
        "price_fen": 150 * WAN,
    }
    return {**body, **changes}


@dataclass
class Sale:
    """A holder with a Shangqiu ticket of 100 万元 issued 2025-06-20, a sales office, and
    the clock on 2025-07-10 (month 1 after issue: 10% subsidy, T7)."""

    world: World
    till: Till
    holder: Citizen
    ticket: Ticket

    async def quote(self, **changes: Any) -> Any:
        body = contract(await self.world.qr(self.holder), **changes)
        return await self.world.client.post(
            "/v1/ticket-uses/quote", json=body, headers=self.till.headers
        )

    async def use(self, body: dict[str, Any], key: str | None = None) -> Any:
        return await self.world.client.post(
            "/v1/ticket-uses",
            json=body,
            headers={**self.till.headers, "Idempotency-Key": key or uuid.uuid4().hex},
        )

    async def new_use(self, **changes: Any) -> Any:
        body = contract(await self.world.qr(self.holder), **changes)
        body.setdefault("amounts_fen", [60 * WAN])
        return await self.use(body)


@pytest.fixture
async def sale(world: World, clock: Clock) -> Sale:
    clock.now = shanghai(2025, 7, 10, 10)
    holder = await world.citizen()
    return Sale(world, await sales_office(world), holder, await ticket_for(world, holder))


async def test_a_developers_till_signs_in_as_a_sales_office(world: World) -> None:
    # rule T4: the till's mode follows the merchant's kind
    office = await sales_office(world)
    r = await world.client.post(
        "/v1/auth/terminal", json={"terminal_id": office.terminal_id, "secret": office.secret}
    )
    assert (await r.json())["merchant"]["kind"] == "developer"
    shop = await world.till()
    r = await world.client.post(
        "/v1/auth/terminal", json={"terminal_id": shop.terminal_id, "secret": shop.secret}
    )
    assert (await r.json())["merchant"]["kind"] == "shop"
    r = await world.client.get("/v1/sales-office/pool", headers=office.headers)
    (unit,) = (await r.json())["units"]
    assert unit == {
        "unit": "1-101",
        "campaign_id": "shangqiu-2025",
        "district": "liangyuan",
        "property_type": "residential",
        "area_dm2": 12_000,
        "listed_price_fen": 200 * WAN,
        "status": "admitted",
        "sold": False,
    }


async def test_the_quote_shows_the_range_the_subsidy_and_what_the_buyer_pays(sale: Sale) -> None:
    # rules T5-T7: signed in month 1 after issue: 10% on the ticket amount, deducted from
    # the price; the most the ticket may draw is its balance (price 150 万 leaves room)
    r = await sale.quote()
    assert r.status == 200, await r.text()
    q = await r.json()
    (line,) = q["lines"]
    assert line["number"] == sale.ticket.number
    assert (line["balance_fen"], line["min_fen"], line["max_fen"]) == (FACE, 1, FACE)
    assert (line["month"], line["subsidy_bp"]) == (1, 1000)
    assert (q["amount_fen"], q["subsidy_fen"], q["reward_fen"]) == (FACE, 10 * WAN, 0)
    assert q["buyer_pays_fen"] == 150 * WAN - FACE - 10 * WAN
    assert q["seller_due_fen"] == FACE + 10 * WAN
    assert line["still_to_use_fen"] == 0  # T6: 100% used reaches Shangqiu's 90%
    assert q["holder"]["masked_id"].endswith(sale.holder.id_number[-4:])
    assert q["buyer"] == {"relation": "holder", "masked_id": None}
    # an amount asked: 60 万 leaves 30 万 to use to reach 90% of the face value (T6)
    q = await (await sale.quote(amounts_fen=[60 * WAN])).json()
    assert (q["lines"][0]["still_to_use_fen"], q["subsidy_fen"]) == (30 * WAN, 6 * WAN)
    assert q["buyer_pays_fen"] == 150 * WAN - 66 * WAN
    assert await read_ticket(sale.world, sale.ticket) == sale.ticket  # a quote changes nothing


async def test_a_price_too_small_for_the_balance_narrows_the_range(sale: Sale) -> None:
    # rule T5: amount + subsidy <= price: 55 万 at 10% -> at most 500,000.00 元
    q = await (await sale.quote(price_fen=55 * WAN)).json()
    (line,) = q["lines"]
    assert line["max_fen"] == 50 * WAN
    assert q["buyer_pays_fen"] == 0
    r = await sale.quote(price_fen=55 * WAN, amounts_fen=[50 * WAN + 1])
    assert (r.status, (await error_of(r))["code"]) == (422, "ticket_exceeds_price")


async def test_a_use_is_written_once_and_its_retry_gets_the_first_answer(sale: Sale) -> None:
    # rules T5, U7: one contract, one use; the key's first answer again; the code used (U5)
    world = sale.world
    body = contract(await world.qr(sale.holder), amounts_fen=[60 * WAN])
    r = await sale.use(body, key="k-1")
    assert r.status == 201, await r.text()
    first = await r.json()
    assert first["draws"] == [
        {
            "number": sale.ticket.number,
            "amount_fen": 60 * WAN,
            "subsidy_bp": 1000,
            "subsidy_fen": 6 * WAN,
            "balance_fen": 40 * WAN,
        }
    ]
    assert (first["seller_due_fen"], first["buyer_pays_fen"]) == (66 * WAN, 84 * WAN)
    again = await sale.use(body, key="k-1")
    assert again.status == 201 and again.headers["Idempotent-Replay"] == "true"
    assert await again.json() == first
    changed = await sale.use({**body, "amounts_fen": [50 * WAN]}, key="k-1")
    assert (await error_of(changed))["code"] == "idempotency_key_reused"
    found = await world.client.get(
        "/v1/ticket-uses", params={"idempotency_key": "k-1"}, headers=sale.till.headers
    )
    assert await found.json() == first
    r = await sale.use(body, key="k-2")  # the same code under another key
    assert (await error_of(r))["code"] == "token_replayed"
    ticket = await read_ticket(world, sale.ticket)
    assert (ticket.used_fen, ticket.balance_fen) == (60 * WAN, 40 * WAN)
    r = await world.client.get("/v1/sales-office/pool", headers=sale.till.headers)
    assert (await r.json())["units"][0]["sold"] is True


async def test_a_contract_is_paid_once_and_the_second_use_changes_nothing(sale: Sale) -> None:
    # rule T5 (as U4): seller + 网签 number, once, however it is spelt
    r = await sale.new_use(contract_no="WQ-2025-0007", amounts_fen=[20 * WAN])
    assert r.status == 201
    before = await read_ticket(sale.world, sale.ticket)
    for spelling in ("WQ-2025-0007", " ｗｑ-2025-0007 "):
        q = await sale.quote(contract_no=spelling)
        assert (await error_of(q))["code"] == "contract_already_used"
        r = await sale.new_use(contract_no=spelling, amounts_fen=[20 * WAN])
        assert (r.status, (await error_of(r))["code"]) == (409, "contract_already_used")
    assert await read_ticket(sale.world, sale.ticket) == before


async def test_200_concurrent_uses_asking_60_percent_over_200_contracts_leave_one(
    sale: Sale,
) -> None:
    # issue 13's figure: one Shangqiu ticket, 200 contracts each asking 60% of its face value,
    # at once over HTTP: exactly one is written, the others are refused (T5), nothing twice
    world = sale.world
    bodies = [
        contract(await world.qr(sale.holder), contract_no=f"WQ-C-{n}", amounts_fen=[60 * WAN])
        for n in range(200)
    ]
    answers = await asyncio.gather(*(sale.use(body) for body in bodies))
    statuses = [r.status for r in answers]
    codes = [(await error_of(r))["code"] for r in answers if r.status != 201]
    assert statuses.count(201) == 1
    assert set(codes) == {"ticket_balance_insufficient"}
    ticket = await read_ticket(world, sale.ticket)
    assert (ticket.used_fen, ticket.balance_fen) == (60 * WAN, 40 * WAN)
    async with world.pool.acquire() as conn:
        assert len(await tickets_db.uses_of(conn, [ticket.id])) == 1
        assert [v.check for v in await check_ledger(conn) if v.check.startswith("ticket_")] == []


async def test_the_holder_pays_for_a_spouse_on_a_recorded_proof(sale: Sale) -> None:
    # rule T5 (Shangqiu): the spouse, parents and children, the relation's proof recorded
    spouse = new_id_number()
    r = await sale.quote(relation="spouse", buyer_id_number=spouse)
    assert (await error_of(r))["code"] == "buyer_not_served"  # no proof
    r = await sale.quote(relation="spouse", buyer_id_number=spouse, relation_proof="结婚证 J-1")
    q = await r.json()
    assert q["buyer"] == {"relation": "spouse", "masked_id": f"{spouse[:4]}**********{spouse[-4:]}"}
    r = await sale.quote(relation="household_member", buyer_id_number=spouse)
    assert (await error_of(r))["code"] == "buyer_not_served"  # not a Shangqiu relation
    r = await sale.new_use(relation="spouse", buyer_id_number=spouse, relation_proof="结婚证 J-1")
    assert r.status == 201 and (await r.json())["relation"] == "spouse"


async def test_a_shops_till_takes_no_house_ticket(sale: Sale) -> None:
    # rule T4: only a developer's sales office
    shop = await sale.world.till()
    body = contract(await sale.world.qr(sale.holder), amounts_fen=[10 * WAN])
    r = await sale.world.client.post(
        "/v1/ticket-uses",
        json=body,
        headers={**shop.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    error = await error_of(r)
    assert (r.status, error["code"]) == (403, "merchant_not_permitted")
    assert error["details"]["reason"] == "not_a_sales_office"
    assert await read_ticket(sale.world, sale.ticket) == sale.ticket


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"unit": "9-909"}, 422, "listing_not_eligible"),  # T4: not in the seller's pool
        ({"price_fen": 201 * WAN}, 422, "listing_not_eligible"),  # T4: above its listing
        ({"tickets": ["FP-NOBODYS"]}, 404, "ticket_not_found"),
        ({"signed_on": "2025-06-19"}, 400, "invalid_date"),  # before the ticket's issue
        ({"signed_on": "2025-07-11"}, 400, "invalid_date"),  # after today
        ({"amounts_fen": [101 * WAN]}, 422, "ticket_balance_insufficient"),
        ({"amounts_fen": [0]}, 400, "invalid_amount"),
        ({"amounts_fen": [1.5]}, 400, "invalid_amount"),
        ({"relation": "cousin"}, 400, "invalid_request"),
        ({"relation": "spouse", "buyer_id_number": "110101199003071234"}, 400, "invalid_id_number"),
        ({"contract_no": "\x00"}, 400, "invalid_request"),
        ({"colour": "red"}, 400, "invalid_request"),
    ],
)
async def test_a_refused_use_says_why_and_changes_nothing(
    sale: Sale, changes: dict[str, Any], status: int, code: str
) -> None:
    # clear refusals (T2, T4-T6, E1); the key keeps a refusal of the use (U7)
    body = {**contract(await sale.world.qr(sale.holder), amounts_fen=[60 * WAN]), **changes}
    r = await sale.use(body, key="refused")
    assert (r.status, (await error_of(r))["code"]) == (status, code), await r.text()
    assert await read_ticket(sale.world, sale.ticket) == sale.ticket
    async with sale.world.pool.acquire() as conn:
        assert await tickets_db.uses_of(conn, [sale.ticket.id]) == []


async def test_an_expired_ticket_is_refused_at_its_deadlines_end(
    world: World, clock: Clock
) -> None:
    # rule T2: 18 months from 2023-12-31 end at 24:00 of 2025-06-30 (the printed deadline)
    clock.now = shanghai(2025, 6, 30, 23, 59)
    holder = await world.citizen()
    office = await sales_office(world)
    ticket = await ticket_for(world, holder, issued_on=date(2023, 12, 31))
    assert ticket.deadline == date(2025, 6, 30)
    sale = Sale(world, office, holder, ticket)
    r = await sale.quote(signed_on="2025-06-30")
    assert r.status == 200
    assert (await r.json())["lines"][0]["subsidy_bp"] == 200  # month 18: 2%
    clock.now = shanghai(2025, 7, 1, 0, 0)
    r = await sale.quote(signed_on="2025-06-30")
    assert (await error_of(r))["code"] == "ticket_expired"


async def test_a_holder_without_a_ticket_is_told_so(sale: Sale) -> None:
    # rules T1, T5
    other = await sale.world.citizen()
    body = contract(await sale.world.qr(other))
    r = await sale.world.client.post("/v1/ticket-uses/quote", json=body, headers=sale.till.headers)
    assert (r.status, (await error_of(r))["code"]) == (404, "ticket_not_found")


async def test_suining_pays_a_household_member_with_its_reward_and_90_percent_per_use(
    world: World, clock: Clock
) -> None:
    # rules T5 (household members), T6 (each use at least 90% of the ticket), T8 (400 元/m²)
    clock.now = shanghai(2025, 10, 10, 10)
    member = make_id_number("510903", date(1990, 3, 7), "456")
    holder = await world.citizen()
    office = await sales_office(
        world,
        "suining-chuanshan-2025",
        district="chuanshan",
        units=(("A-1-1", PropertyType.RESIDENTIAL, 9_550, 120 * WAN),),
    )
    ticket = await ticket_for(
        world, holder, "suining-chuanshan-2025", issued_on=date(2025, 10, 1), household=(member,)
    )
    sale = Sale(world, office, holder, ticket)
    asks = {"unit": "A-1-1", "signed_on": "2025-10-09", "price_fen": 120 * WAN}
    r = await sale.quote(**asks, amounts_fen=[89 * WAN])
    error = await error_of(r)
    assert error["code"] == "ticket_use_below_minimum"
    assert error["details"]["min_fen"] == 90 * WAN
    q = await (await sale.quote(**asks, relation="household_member", buyer_id_number=member)).json()
    assert q["reward_fen"] == 95 * 40_000 + 20_000  # 95.50 m² x 400 元 = 38,200 元
    assert (q["subsidy_fen"], q["amount_fen"]) == (0, FACE)
    assert q["buyer_pays_fen"] == 120 * WAN - FACE - q["reward_fen"]
    r = await sale.new_use(
        **asks, relation="household_member", buyer_id_number=member, amounts_fen=[FACE]
    )
    assert r.status == 201, await r.text()
    assert (await r.json())["reward_fen"] == 3_820_000


async def test_the_suining_wallet_shows_the_reward_and_the_bonus_forecast(
    world: World, clock: Clock
) -> None:
    # rules T8, T10 on the holder's page: a use of 100% of the face value, with its reward;
    # before the 12-month review the 5% bonus is a forecast; an expired ticket says so (T2)
    from tests.e2e.test_pages import signed_in_citizen

    clock.now = shanghai(2025, 10, 10, 10)
    holder = await world.citizen()
    office = await sales_office(
        world,
        "suining-chuanshan-2025",
        district="chuanshan",
        units=(("A-1-1", PropertyType.RESIDENTIAL, 9_550, 120 * WAN),),
    )
    ticket = await ticket_for(world, holder, "suining-chuanshan-2025", issued_on=date(2025, 10, 1))
    sale = Sale(world, office, holder, ticket)
    asks = {"unit": "A-1-1", "signed_on": "2025-10-09", "price_fen": 120 * WAN}
    r = await sale.new_use(**asks, amounts_fen=[FACE])
    assert r.status == 201, await r.text()
    page = await signed_in_citizen(world, holder.id_number)
    text = await (await page.get("/wallet")).text()
    assert ticket.number in text
    assert "政策性奖励</dt><dd>38,200.00 元" in text
    assert "按目前使用情况，2026-10-01 评定时可得使用奖励 50,000.00 元（5%）" in text
    assert "使用期限至 2026-10-01" in text
    clock.now = shanghai(2026, 10, 2, 9)
    page = await signed_in_citizen(world, holder.id_number)  # a year later: a new session
    text = await (await page.get("/wallet")).text()
    assert "已于 2026-10-01 24 时过期" in text
    assert "使用奖励 50,000.00 元（票面金额的 5%），应于 2027-04-01 前兑付" in text
    assert 'id="qr"' not in text  # nothing left to use: no code


async def test_a_suining_shop_unit_is_sold_once_the_issuer_records_a_home_kept(
    world: World, clock: Clock
) -> None:
    # rule T4 (Suining) [choice]: 商业/办公/车位 need the household to keep a home, verified
    # and recorded by the ticket's issuer before the use; refused home_not_kept until then
    clock.now = shanghai(2025, 10, 10, 10)
    holder = await world.citizen()
    office = await sales_office(
        world,
        "suining-chuanshan-2025",
        district="chuanshan",
        units=(("S-1", PropertyType.COMMERCIAL, 8_000, 150 * WAN),),
    )
    ticket = await ticket_for(world, holder, "suining-chuanshan-2025", issued_on=date(2025, 10, 1))
    sale = Sale(world, office, holder, ticket)
    asks = {"unit": "S-1", "signed_on": "2025-10-09", "price_fen": 150 * WAN}
    for r in (await sale.quote(**asks), await sale.new_use(**asks, amounts_fen=[FACE])):
        error = await error_of(r)
        assert (r.status, error["code"]) == (422, "listing_not_eligible")
        assert error["details"]["reason"] == "home_not_kept"
    path = f"/v1/tickets/{ticket.id}/home-kept"
    issuer = await world.staff("ticket_issuer", district="chuanshan")
    refusals = [
        ({"document_no": "BDC-1"}, await world.staff("housing_bureau"), 403, "forbidden"),
        ({"document_no": "BDC-1"}, await world.staff("city_operator"), 403, "forbidden"),
        (
            {"document_no": "BDC-1"},
            await world.staff("ticket_issuer", district="liangyuan"),  # another district's
            403,
            "forbidden",
        ),
        ({"document_no": "   "}, issuer, 400, "invalid_request"),
        ({"document_no": "B" * 65}, issuer, 400, "invalid_request"),
        ({}, issuer, 400, "invalid_request"),
    ]
    counts = await ticket_counts(world)
    for body, headers, status, code in refusals:
        r = await world.client.post(path, json=body, headers=headers)
        assert (r.status, (await error_of(r))["code"]) == (status, code), (body, await r.text())
        assert await read_ticket(world, ticket) == ticket  # nothing changes, nothing audited
        assert await ticket_counts(world) == counts
    r = await world.client.post(path, json={"document_no": "BDC-2025-7"}, headers=issuer)
    assert r.status == 200, await r.text()
    answer = await r.json()
    assert (answer["ticket"]["home_kept_doc"], answer["ticket"]["home_kept_on"]) == (
        "BDC-2025-7",
        "2025-10-10",
    )
    event = answer["events"][-1]
    assert (event["act"], event["documents"]) == ("home_kept", {"document_no": "BDC-2025-7"})
    r = await world.client.post(path, json={"document_no": "BDC-9"}, headers=issuer)
    error = await error_of(r)
    assert (r.status, error["code"], error["details"]["reason"]) == (
        409,
        "conflict",
        "home_kept_recorded",
    )
    assert (await read_ticket(world, ticket)).home_kept_doc == "BDC-2025-7"
    q = await sale.quote(**asks)
    assert q.status == 200, await q.text()
    assert (await q.json())["amount_fen"] == FACE
    r = await sale.new_use(**asks, amounts_fen=[FACE])
    assert r.status == 201, await r.text()
    assert (await read_ticket(world, ticket)).balance_fen == 0


async def test_a_shangqiu_ticket_needs_no_record_of_a_home_kept(sale: Sale) -> None:
    # rule T4: only Suining asks it; the act is refused and changes nothing
    issuer = await sale.world.staff("ticket_issuer", district=sale.ticket.district)
    r = await sale.world.client.post(
        f"/v1/tickets/{sale.ticket.id}/home-kept", json={"document_no": "BDC-1"}, headers=issuer
    )
    assert (r.status, (await error_of(r))["code"]) == (400, "invalid_request")
    assert await read_ticket(sale.world, sale.ticket) == sale.ticket
