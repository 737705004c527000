"""Issue 9, item 8 (rule S1): the batch's district reviews, the city office approves, the city
records the payment, and no account takes two of review, approve, pay on one batch (seen: one
city account built, reviewed, approved and paid a batch in a row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.settings import Settings
from tests.e2e.conftest import Clock, World, shanghai
from tests.e2e.test_revocation import post, sign_in_staff, staff_account
from tests.e2e.test_settlement import isolated_world
from tests.e2e.test_till import error_code
from tests.e2e.test_voucherctl import Ctl


async def draft_batch(world: World, campaign_id: str, clock: Clock) -> str:
    """A built batch with one redemption; the path of its steps."""
    person = await world.citizen_with_vouchers()
    till = await world.till()
    assert (await world.redeem(till, await world.qr(person))).status == 201
    clock.now = shanghai(2024, 10, 2, 9, 0)
    _, _, builder = await staff_account(world, "district_operator", district="dongchangfu")
    batch = {"campaign_id": campaign_id, "district": "dongchangfu", "month": "2024-09"}
    r = await post(world, "/v1/settlements", batch, builder)
    assert r.status == 201, await r.text()
    return f"/v1/settlements/{(await r.json())['settlement_id']}/steps"


async def status_of(world: World, steps: str, headers: dict[str, str]) -> str:
    r = await world.client.get(steps.removesuffix("/steps"), headers=headers)
    return str((await r.json())["status"])


@pytest.fixture
async def setup(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool, tmp_path: Path
) -> tuple[World, str]:
    world, campaign_id = await isolated_world(aiohttp_client, settings, clock, db_pool, tmp_path)
    return world, await draft_batch(world, campaign_id, clock)


async def test_each_step_has_its_role_and_no_account_takes_two(
    setup: tuple[World, str], db_pool: asyncpg.Pool
) -> None:
    world, steps = setup
    reviewer_id, _, reviewer = await staff_account(
        world, "district_operator", district="dongchangfu"
    )
    _, _, elsewhere = await staff_account(world, "district_operator", district="gaoxin")
    approver_id, _, approver = await staff_account(world, "city_operator")
    payer_id, _, payer = await staff_account(world, "city_operator")
    # rule S1: the district reviews, not the city, and only the batch's own district
    assert await error_code(await post(world, steps, {"step": "review"}, approver)) == "forbidden"
    assert (await post(world, steps, {"step": "review"}, elsewhere)).status == 403
    assert (await post(world, steps, {"step": "review"}, reviewer)).status == 200
    assert await error_code(await post(world, steps, {"step": "approve"}, reviewer)) == (
        "forbidden"
    )
    assert (await post(world, steps, {"step": "approve"}, approver)).status == 200
    # separation of duties: the approver may not also record the payment
    r = await post(world, steps, {"step": "pay"}, approver)
    assert (r.status, await error_code(r)) == (403, "separation_of_duties")
    assert await status_of(world, steps, payer) == "approved"  # the refusal changed nothing
    r = await post(world, steps, {"step": "pay", "note": "国库集中支付"}, payer)
    assert r.status == 200
    body = await r.json()
    assert (body["status"], body["reviewed_by"], body["approved_by"], body["paid_by"]) == (
        "paid",
        reviewer_id,
        approver_id,
        payer_id,
    )


async def test_an_account_given_another_role_still_cannot_take_a_second_step(
    setup: tuple[World, str],
) -> None:
    # separation of duties follows the account, not the role it holds today
    world, steps = setup
    _, _, city = await staff_account(world, "city_operator")
    reviewer_id, reviewer_name, reviewer = await staff_account(
        world, "district_operator", district="dongchangfu"
    )
    assert (await post(world, steps, {"step": "review"}, reviewer)).status == 200
    r = await post(
        world,
        f"/v1/accounts/{reviewer_id}/role",
        {"role": "city_operator", "reason": "调入市局"},
        city,
    )
    assert r.status == 200
    promoted = await sign_in_staff(world.client, reviewer_name, "a long password")
    r = await post(world, steps, {"step": "approve"}, promoted)
    assert (r.status, await error_code(r)) == (403, "separation_of_duties")
    assert await status_of(world, steps, city) == "reviewed"
    assert (await post(world, steps, {"step": "approve"}, city)).status == 200
    r = await post(world, steps, {"step": "pay"}, promoted)
    assert await error_code(r) == "separation_of_duties"


async def test_the_ledger_itself_refuses_one_account_on_two_steps(
    setup: tuple[World, str], db_pool: asyncpg.Pool
) -> None:
    world, steps = setup
    _, _, reviewer = await staff_account(world, "district_operator", district="dongchangfu")
    assert (await post(world, steps, {"step": "review"}, reviewer)).status == 200
    batch_id = int(steps.split("/")[3])
    async with db_pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="separation_of_duties"):
            await conn.execute(
                "UPDATE settlements SET status = 'approved', approved_at = now(), "
                "approved_by = reviewed_by WHERE id = $1",
                batch_id,
            )
        assert await conn.fetchval("SELECT status FROM settlements WHERE id = $1", batch_id) == (
            "reviewed"
        )


async def test_the_voucherctl_flow_takes_each_step_with_its_own_account(
    setup: tuple[World, str], monkeypatch: Any
) -> None:
    world, steps = setup
    url = str(world.client.make_url(""))  # the test server listens on a real port
    batch_id = steps.split("/")[3]
    monkeypatch.setenv("VOUCHER_PASSWORD", "a long password")
    _, district, _ = await staff_account(world, "district_operator", district="dongchangfu")
    _, city, _ = await staff_account(world, "city_operator")
    _, treasury, _ = await staff_account(world, "city_operator")
    for user, action, expected in (
        (city, "review", "forbidden"),
        (district, "review", "已复核"),  # issue 10: statuses in Chinese (reviewed)
        (city, "approve", "已批准"),  # approved
        (city, "pay", "separation_of_duties"),
        (treasury, "pay", "已支付"),  # paid
    ):
        code, out = await Ctl(url, user)("settlements", action, batch_id)
        assert expected in out, out
        assert code == (1 if "_" in expected or expected == "forbidden" else 0), out
