"""Rule S1 (monthly settlement, F3) and rule S3 (district ranking) over HTTP."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg

from server.app import create_app
from server.campaign_files import bundled_campaigns_dir
from server.settings import Settings
from tests.e2e.conftest import Clock, World, shanghai
from tests.e2e.test_till import error_code


async def isolated_world(
    aiohttp_client: Any, settings: Settings, clock: Clock, pool: asyncpg.Pool, tmp_path: Path
) -> tuple[World, str]:
    """An app whose file campaign is a fresh copy of liaocheng-2024: figures asked for that
    campaign count this test's data and nothing else in the shared database."""
    campaign_id = f"s-{uuid.uuid4().hex[:10]}"
    text = (bundled_campaigns_dir() / "liaocheng-2024.toml").read_text(encoding="utf-8")
    path = tmp_path / f"{campaign_id}.toml"
    path.write_text(text.replace('id = "liaocheng-2024"', f'id = "{campaign_id}"', 1), "utf-8")
    app = create_app(replace(settings, campaign_files=(path,)), clock=clock)
    return World(await aiohttp_client(app), settings, pool), campaign_id


async def post(world: World, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return await world.client.post(path, json=body, headers=headers)


async def test_the_settlement_life_cycle_reconciles_to_the_ledger(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    world, campaign_id = await isolated_world(aiohttp_client, settings, clock, db_pool, tmp_path)
    person = await world.citizen_with_vouchers()
    shop_a, shop_b = await world.till(), await world.till()
    elsewhere = await world.till(district="gaoxin")
    r1 = await (
        await world.redeem(shop_a, await world.qr(person), bill_fen=100_000, count=5)
    ).json()
    await world.redeem(shop_a, await world.qr(person), bill_fen=40_000, count=2)
    await world.redeem(shop_b, await world.qr(person), bill_fen=20_000, count=1)
    await world.redeem(elsewhere, await world.qr(person), bill_fen=20_000, count=1)
    r_gone = await (await world.redeem(shop_b, await world.qr(person))).json()
    for redemption, remaining in ((r1, 45_000), (r_gone, 0)):  # rule F2: 5 -> keeps 2
        r = await world.client.post(
            f"/v1/redemptions/{redemption['redemption_id']}/refunds",
            json={"remaining_bill_fen": remaining},
            headers={
                **(shop_a if redemption is r1 else shop_b).headers,
                "Idempotency-Key": uuid.uuid4().hex,
            },
        )
        assert r.status == 201
    district = await world.staff("district_operator", district="dongchangfu")
    city = await world.staff("city_operator")
    batch = {"campaign_id": campaign_id, "district": "dongchangfu", "month": "2024-09"}
    r = await post(world, "/v1/settlements", batch, district)
    assert await error_code(r) == "month_not_over"

    clock.now = shanghai(2024, 10, 1, 9, 0)
    district = await world.staff("district_operator", district="dongchangfu")
    city = await world.staff("city_operator")
    shop_a = await world.sign_in(shop_a)
    r = await post(world, "/v1/settlements", batch, district)
    assert r.status == 201, await r.text()
    body = await r.json()
    # shop A: 2 + 2 vouchers on 2 bills; shop B: 1 voucher (its fully refunded bill is out)
    assert [(x["merchant_id"], x["redemptions"], x["vouchers"]) for x in body["lines"]] == sorted(
        [(shop_a.merchant_id, 2, 4), (shop_b.merchant_id, 1, 1)]
    )
    assert (body["voucher_count"], body["amount_fen"], body["status"]) == (5, 50_000, "draft")
    assert body["payment_due_before"] == "2024-10-15"  # rule S1
    async with db_pool.acquire() as conn:
        ledger = await conn.fetchval(
            "SELECT sum(v.face_value_fen) FROM redemption_items i "
            "JOIN redemptions r ON r.id = i.redemption_id JOIN vouchers v ON v.id = i.voucher_id "
            "WHERE r.settlement_id = $1 AND i.refund_id IS NULL",
            body["settlement_id"],
        )
    assert ledger == body["amount_fen"]
    assert await error_code(await post(world, "/v1/settlements", batch, district)) == (
        "settlement_exists"
    )
    # rule F3: a settled redemption's vouchers never return
    r = await world.client.post(
        f"/v1/redemptions/{r1['redemption_id']}/refunds",
        json={"remaining_bill_fen": 0},
        headers={**shop_a.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert await error_code(r) == "already_settled"

    steps = f"/v1/settlements/{body['settlement_id']}/steps"
    assert await error_code(await post(world, steps, {"step": "approve"}, city)) == (
        "settlement_state_invalid"
    )
    assert (await post(world, steps, {"step": "review"}, district)).status == 200
    assert (await post(world, steps, {"step": "approve"}, district)).status == 403
    assert (await post(world, steps, {"step": "approve"}, city)).status == 200
    treasury = await world.staff("city_operator")  # rule S1: not the account that approved
    r = await post(world, steps, {"step": "pay", "note": "国库集中支付"}, treasury)
    assert (await r.json())["status"] == "paid"

    r = await world.client.get(f"/v1/settlements/{body['settlement_id']}/csv", headers=city)
    rows = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    assert rows[0][-1] == "结算金额(元)"
    assert rows[-1][5] == "合计" and rows[-1][-1] == "500.00"
    assert sum(int(row[8]) for row in rows[1:-1]) == int(rows[-1][8]) == 5
    # issue 10: the district by its name and the batch's status in Chinese, as the bureau reads
    assert {(row[2], row[4]) for row in rows[1:]} == {("东昌府区", "已支付")}

    other = await world.staff("district_operator", district="gaoxin")
    r = await world.client.get(f"/v1/settlements/{body['settlement_id']}", headers=other)
    assert r.status == 403  # rule X2


async def test_the_district_ranking_on_a_known_data_set(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # rule S3: dongchangfu issues 48 and 36 (two claims), gaoxin 14; dongchangfu's citizens
    # redeem 6, gaoxin's 7: rates 6/84 = 7.14% and 7/14 = 50.00%
    world, campaign_id = await isolated_world(aiohttp_client, settings, clock, db_pool, tmp_path)
    a = await world.citizen_with_vouchers()  # 48, dongchangfu
    b = await world.citizen_with_vouchers(tax_relief_fen=30_000_000)  # 36, dongchangfu
    c = await world.citizen_with_vouchers(
        price_fen=35_000_000, district="gaoxin", property_type="non_housing"
    )  # 14, gaoxin
    till = await world.till()
    await world.redeem(till, await world.qr(a), bill_fen=100_000, count=5)
    await world.redeem(till, await world.qr(b), bill_fen=20_000, count=1)
    await world.redeem(till, await world.qr(c), bill_fen=200_000, count=7)
    auditor = await world.staff("auditor")
    r = await world.client.get(
        "/v1/reports/ranking",
        params={"month": "2024-09", "campaign_id": campaign_id},
        headers=auditor,
    )
    assert r.status == 200, await r.text()
    ranking = {d["district"]: d for d in (await r.json())["districts"]}
    assert ranking["gaoxin"]["rank"] == 1 and ranking["gaoxin"]["redemption_rate_bp"] == 5000
    assert (ranking["dongchangfu"]["claims"], ranking["dongchangfu"]["vouchers_issued"]) == (2, 84)
    assert ranking["dongchangfu"]["vouchers_redeemed"] == 6
    assert ranking["dongchangfu"]["value_redeemed_fen"] == 60_000
    assert ranking["dongchangfu"]["redemption_rate_bp"] == 714
    assert ranking["dongchangfu"]["rank"] == 2
    assert ranking["jingkai"]["vouchers_issued"] == 0 and ranking["jingkai"]["rank"] == 3
    text = await (
        await world.client.get(
            "/v1/reports/ranking",
            params={"month": "2024-09", "format": "csv", "campaign_id": campaign_id},
            headers=auditor,
        )
    ).read()
    assert "高新区" in text.decode("utf-8-sig").splitlines()[1]
    assert "50.00%" in text.decode("utf-8-sig")
    png = await (
        await world.client.get(
            "/v1/reports/ranking",
            params={"month": "2024-09", "format": "png", "campaign_id": campaign_id},
            headers=auditor,
        )
    ).read()
    assert png.startswith(b"\x89PNG")
    # nothing in August
    r = await world.client.get(
        "/v1/reports/ranking",
        params={"month": "2024-08", "campaign_id": campaign_id},
        headers=auditor,
    )
    assert all(d["claims"] == 0 for d in (await r.json())["districts"])
