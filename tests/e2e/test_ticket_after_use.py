"""House tickets after use, over HTTP (issue 13, rules T9-T12 with S1's duties): a cancelled
contract reversed by the issuer, the residual cash-out granted and paid, the Suining usage
bonus reviewed at 12 months, and the settlement with the developers (Shangqiu in full on
网签备案; Suining 90% at a six-monthly point and the 10% once the property certificate is
recorded, a cancelled use clawed back) — every figure exact to the fen, the ledger check
clean after each."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.db.invariants import check_ledger
from server.settings import Settings
from tests.e2e.conftest import Clock, World, new_id_number, shanghai
from tests.e2e.tickets_world import WAN, Office, Tickets, isolated, ticket_counts


@pytest.fixture
async def t(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool, tmp_path: Path
) -> Tickets:
    """Copies of the two programmes of this test's own: its settlements and reports count
    its data only."""
    return await isolated(aiohttp_client, settings, clock, db_pool, tmp_path)


async def post(
    t: Tickets, path: str, body: dict[str, Any], headers: dict[str, str], status: int = 200
) -> dict[str, Any]:
    r = await t.client.post(path, json=body, headers=headers)
    assert r.status == status, await r.text()
    return dict(await r.json())


async def refused(
    t: Tickets, path: str, body: dict[str, Any], headers: dict[str, str], status: int, code: str
) -> dict[str, Any]:
    before = await ticket_counts(t.world)
    r = await t.client.post(path, json=body, headers=headers)
    assert r.status == status, await r.text()
    error = dict((await r.json())["error"])
    assert error["code"] == code, error
    assert await ticket_counts(t.world) == before
    return error


async def ledger_holds(world: World) -> None:
    async with world.pool.acquire() as conn:
        found = [v.check for v in await check_ledger(conn) if v.check.startswith("ticket_")]
    assert found == []


async def ticket(t: Tickets, ticket_id: int, headers: dict[str, str]) -> dict[str, Any]:
    r = await t.client.get(f"/v1/tickets/{ticket_id}", headers=headers)
    assert r.status == 200, await r.text()
    return dict(await r.json())


# --- Shangqiu -------------------------------------------------------------------------------


@pytest.fixture
async def shangqiu(t: Tickets, clock: Clock) -> tuple[Office, dict[str, str]]:
    clock.now = shanghai(2024, 9, 10, 10)
    office = await t.office(
        t.sq,
        [("A-1", "住宅", "120", "2000000"), ("A-2", "住宅", "90", "1000000")],
        district="suiyang",
    )
    return office, await t.issuer("liangyuan")


async def test_a_cancelled_contract_restores_the_ticket_and_reverses_its_subsidy(
    t: Tickets, shangqiu: tuple[Office, dict[str, str]]
) -> None:
    # T11: on the holder's application with the cancellation proof, the issuer puts the
    # drawn amount back (issue date and expiry kept); the 10% subsidy of month 1 (T7) goes
    office, issuer = shangqiu
    holder = new_id_number()
    made = await t.issue(issuer, t.agreement(t.sq, holder=holder))
    ticket_id = made["ticket"]["id"]
    use_id = await t.use(
        office, [ticket_id], "A-1", buyer=holder, price=200 * WAN, signed_on=date(2024, 9, 10),
        amounts=[60 * WAN],
    )  # fmt: skip
    r = await t.client.get(f"/v1/ticket-uses/{use_id}", headers=issuer)
    use = await r.json()
    assert (use["amount_fen"], use["subsidy_fen"], use["seller_due_fen"]) == (
        60 * WAN,
        6 * WAN,
        66 * WAN,
    )
    assert use["buyer_paid_fen"] == 134 * WAN and use["issuing_district"] == "liangyuan"
    path = f"/v1/ticket-uses/{use_id}/cancellation"
    other = await t.issuer("suiyang")  # the seller's district, not the ticket's
    await refused(t, path, {"proof_no": "JC-1", "elect": "reissue"}, other, 403, "forbidden")
    done = await post(t, path, {"proof_no": "JC-1", "elect": "reissue"}, issuer)
    assert done["cancelled"] is True
    after = await ticket(t, ticket_id, issuer)
    assert after["ticket"]["balance_fen"] == 100 * WAN and after["ticket"]["used_fen"] == 0
    assert after["ticket"]["deadline"] == made["ticket"]["deadline"]
    assert after["summary"]["subsidy_fen"] == 0  # T11: reversed
    assert after["events"][-1]["act"] == "cancel"
    assert after["events"][-1]["documents"]["proof_no"] == "JC-1"
    again = {"proof_no": "JC-2", "elect": "reissue"}
    await refused(t, path, again, issuer, 409, "contract_already_cancelled")
    await ledger_holds(t.world)


async def test_a_cancelled_contract_may_leave_the_ticket_for_other_compensation(
    t: Tickets, shangqiu: tuple[Office, dict[str, str]]
) -> None:
    # T11: the holder elects another form of compensation: the amount leaves the ticket
    office, issuer = shangqiu
    holder = new_id_number()
    ticket_id = (await t.issue(issuer, t.agreement(t.sq, holder=holder)))["ticket"]["id"]
    use_id = await t.use(
        office, [ticket_id], "A-2", buyer=holder, price=100 * WAN, signed_on=date(2024, 9, 10),
        amounts=[30 * WAN],
    )  # fmt: skip
    body = {"proof_no": "JC-9", "elect": "other_compensation"}
    await post(t, f"/v1/ticket-uses/{use_id}/cancellation", body, issuer)
    after = (await ticket(t, ticket_id, issuer))["ticket"]
    assert (after["balance_fen"], after["returned_fen"], after["used_fen"]) == (
        70 * WAN,
        30 * WAN,
        0,
    )


async def test_the_residual_is_cashed_out_once_90_percent_is_used(
    t: Tickets, shangqiu: tuple[Office, dict[str, str]]
) -> None:
    # T9 (Shangqiu 十二): uses reach 90% of the face value in total; the balance is paid on
    # application, without interest; the payment is recorded once
    office, issuer = shangqiu
    holder = new_id_number()
    ticket_id = (await t.issue(issuer, t.agreement(t.sq, holder=holder)))["ticket"]["id"]
    await t.use(
        office, [ticket_id], "A-1", buyer=holder, price=200 * WAN, signed_on=date(2024, 9, 10),
        amounts=[60 * WAN],
    )  # fmt: skip
    path = f"/v1/tickets/{ticket_id}/cashout"
    error = await refused(t, path, {"application_no": "DX-1"}, issuer, 422, "cashout_not_due")
    assert (error["details"]["reason"], error["details"]["needed_fen"]) == (
        "below_minimum",
        90 * WAN,
    )
    await t.use(
        office, [ticket_id], "A-2", buyer=holder, price=100 * WAN, signed_on=date(2024, 9, 10),
        amounts=[30 * WAN + 1],
    )  # fmt: skip
    done = await post(t, path, {"application_no": "DX-1"}, issuer, 201)
    assert done["ticket"]["cashed_out_fen"] == 10 * WAN - 1
    assert done["ticket"]["balance_fen"] == 0
    (payout,) = done["payouts"]
    assert (payout["kind"], payout["amount_fen"], payout["due_by"]) == (
        "cashout",
        10 * WAN - 1,
        None,
    )
    paid = await post(
        t, f"/v1/ticket-payouts/{payout['id']}/payment", {"payment_no": "ZF-1"}, issuer
    )
    assert (paid["paid_on"], paid["payment_no"]) == ("2024-09-10", "ZF-1")
    again = {"payment_no": "ZF-2"}
    error = await refused(
        t, f"/v1/ticket-payouts/{payout['id']}/payment", again, issuer, 409, "conflict"
    )
    assert error["details"]["reason"] == "already_paid"
    await refused(t, path, {"application_no": "DX-2"}, issuer, 422, "cashout_not_due")
    await ledger_holds(t.world)


async def test_shangqiu_settles_a_contract_in_full_once_filed_by_three_accounts(
    t: Tickets, shangqiu: tuple[Office, dict[str, str]]
) -> None:
    # T12 (十五): after 网签备案 the seller is paid the ticket amount with its subsidy; the
    # issuer reviews, the city's finance side approves and pays, three accounts (S1)
    office, issuer = shangqiu
    holder = new_id_number()
    ticket_id = (await t.issue(issuer, t.agreement(t.sq, holder=holder)))["ticket"]["id"]
    use_id = await t.use(
        office, [ticket_id], "A-1", buyer=holder, price=200 * WAN, signed_on=date(2024, 9, 10),
        amounts=[100 * WAN],
    )  # fmt: skip
    build = {"campaign_id": t.sq.id, "district": "梁园区", "point": "2024-09-10"}
    error = await refused(t, "/v1/ticket-settlements", build, issuer, 409, "conflict")
    assert error["details"]["reason"] == "nothing_due"  # not filed yet
    condition = {"condition": "delivered", "recorded_on": "2024-09-10", "document_no": "JF-1"}
    await refused(
        t, f"/v1/ticket-uses/{use_id}/conditions", condition, issuer, 400, "invalid_request"
    )
    condition["condition"] = "filed"
    await post(t, f"/v1/ticket-uses/{use_id}/conditions", condition, issuer, 201)
    error = await refused(
        t, f"/v1/ticket-uses/{use_id}/conditions", condition, issuer, 409, "conflict"
    )
    assert error["details"]["reason"] == "condition_recorded"
    batch = await post(t, "/v1/ticket-settlements", build, issuer, 201)
    assert [(x["use_id"], x["kind"], x["amount_fen"]) for x in batch["lines"]] == [
        (use_id, "full", 110 * WAN)  # 100万 and its 10% subsidy, T7
    ]
    assert (batch["amount_fen"], batch["payment_due"]) == (110 * WAN, "2024-10-10")
    await refused(t, "/v1/ticket-settlements", build, issuer, 409, "settlement_exists")
    path = f"/v1/ticket-settlements/{batch['settlement_id']}/steps"
    finance = await t.world.staff("city_operator")
    await refused(t, path, {"step": "review"}, finance, 403, "forbidden")
    await post(t, path, {"step": "review"}, issuer)
    await post(t, path, {"step": "approve"}, finance)
    error = await refused(t, path, {"step": "pay"}, finance, 403, "separation_of_duties")
    paid = await post(t, path, {"step": "pay"}, await t.world.staff("city_operator"))
    assert paid["status"] == "paid"
    use = await (await t.client.get(f"/v1/ticket-uses/{use_id}", headers=issuer)).json()
    assert use["settled_fen"] == 110 * WAN
    await ledger_holds(t.world)


# --- Suining -------------------------------------------------------------------------------


@pytest.fixture
async def suining(t: Tickets, clock: Clock) -> tuple[Office, dict[str, str]]:
    clock.now = shanghai(2025, 10, 9, 10)
    office = await t.office(
        t.sn, [("B-1", "住宅", "100", "1500000"), ("B-2", "住宅", "100", "1500000")]
    )
    return office, await t.issuer("chuanshan")


CONDITIONS = ("filed", "fees_paid", "delivered", "stub_surrendered")


async def record_all(
    t: Tickets, use_id: int, headers: dict[str, str], day: str, names: tuple[str, ...]
) -> None:
    for name in names:
        body = {"condition": name, "recorded_on": day, "document_no": f"{name}-{use_id}"}
        await post(t, f"/v1/ticket-uses/{use_id}/conditions", body, headers, 201)


async def test_suining_pays_90_percent_at_a_point_and_the_rest_after_the_certificate(
    t: Tickets, suining: tuple[Office, dict[str, str]], clock: Clock
) -> None:
    # T12 (第十六条): at the six-monthly points from 2025-09-01, at most 90% first (rounded
    # down to the fen), the 10% once the buyer's property certificate is recorded; the due
    # is the ticket amount and the 400 元/m² reward (T8): 95万 + 100 m² × 400 元 = 99万
    office, issuer = suining
    holder = new_id_number()
    ticket_id = (await t.issue(issuer, t.agreement(t.sn, holder=holder)))["ticket"]["id"]
    use_id = await t.use(
        office, [ticket_id], "B-1", buyer=holder, price=150 * WAN, signed_on=date(2025, 10, 9),
        amounts=[95 * WAN + 33],
    )  # fmt: skip
    clock.now = shanghai(2025, 10, 21, 9)
    issuer = await t.issuer("chuanshan")
    await record_all(t, use_id, issuer, "2025-10-20", CONDITIONS[:3])
    clock.now = shanghai(2026, 3, 2, 9)
    issuer = await t.issuer("chuanshan")
    build = {"campaign_id": t.sn.id, "district": "chuanshan", "point": "2026-03-01"}
    error = await refused(t, "/v1/ticket-settlements", build, issuer, 409, "conflict")
    assert error["details"]["reason"] == "nothing_due"  # the 消费联 is not surrendered
    await record_all(t, use_id, issuer, "2026-02-28", CONDITIONS[3:])
    not_a_point = build | {"point": "2026-02-28"}
    error = await refused(t, "/v1/ticket-settlements", not_a_point, issuer, 400, "invalid_date")
    assert error["details"]["next"] == "2026-03-01"
    first = await post(t, "/v1/ticket-settlements", build, issuer, 201)
    due = 95 * WAN + 33 + 4 * WAN
    (line,) = first["lines"]
    assert (line["kind"], line["amount_fen"]) == ("first", due * 9 // 10)  # 891,029.70 元
    clock.now = shanghai(2026, 9, 2, 9)
    issuer = await t.issuer("chuanshan")
    await record_all(t, use_id, issuer, "2026-06-15", ("certificate",))
    second = await post(t, "/v1/ticket-settlements", build | {"point": "2026-09-01"}, issuer, 201)
    (line,) = second["lines"]
    assert (line["kind"], line["amount_fen"]) == ("holdback", due - due * 9 // 10)
    use = await (await t.client.get(f"/v1/ticket-uses/{use_id}", headers=issuer)).json()
    assert use["settled_fen"] == due
    await ledger_holds(t.world)


async def test_a_settled_use_cancelled_is_clawed_back_at_the_next_point(
    t: Tickets, suining: tuple[Office, dict[str, str]], clock: Clock
) -> None:
    # T11 with T12: a use already settled is reversed by the issuer; what the seller was paid
    # comes back as a negative line at the next point
    office, issuer = suining
    holder = new_id_number()
    ticket_id = (await t.issue(issuer, t.agreement(t.sn, holder=holder)))["ticket"]["id"]
    use_id = await t.use(
        office, [ticket_id], "B-2", buyer=holder, price=150 * WAN, signed_on=date(2025, 10, 9),
        amounts=[90 * WAN],
    )  # fmt: skip
    clock.now = shanghai(2025, 10, 21, 9)
    issuer = await t.issuer("chuanshan")
    await record_all(t, use_id, issuer, "2025-10-20", CONDITIONS)
    clock.now = shanghai(2026, 3, 2, 9)
    issuer = await t.issuer("chuanshan")
    build = {"campaign_id": t.sn.id, "district": "chuanshan", "point": "2026-03-01"}
    first = await post(t, "/v1/ticket-settlements", build, issuer, 201)
    paid = first["lines"][0]["amount_fen"]
    assert paid == 94 * WAN * 9 // 10
    body = {"proof_no": "JC-遂-1", "elect": "reissue"}
    done = await post(t, f"/v1/ticket-uses/{use_id}/cancellation", body, issuer)
    assert (done["cancelled"], done["settled_fen"]) == (True, paid)
    clock.now = shanghai(2026, 9, 2, 9)
    issuer = await t.issuer("chuanshan")
    second = await post(t, "/v1/ticket-settlements", build | {"point": "2026-09-01"}, issuer, 201)
    assert [(x["kind"], x["amount_fen"]) for x in second["lines"]] == [("clawback", -paid)]
    assert second["amount_fen"] == -paid
    use = await (await t.client.get(f"/v1/ticket-uses/{use_id}", headers=issuer)).json()
    assert use["settled_fen"] == 0
    await ledger_holds(t.world)


async def test_the_suining_bonus_is_reviewed_at_12_months_by_usage(
    t: Tickets, suining: tuple[Office, dict[str, str]], clock: Clock
) -> None:
    # T10 (第十七条): 100% used within 12 months: 5% of the face value; 85% to under 100%:
    # 3%; below: none; reviewed once the 12 months are over, paid within 6 months
    office, issuer = suining
    holders = [new_id_number() for _ in range(3)]
    faces = [100 * WAN, 100 * WAN + 1, 100 * WAN]
    ids = [
        (await t.issue(issuer, t.agreement(t.sn, holder=h, face=f)))["ticket"]["id"]
        for h, f in zip(holders, faces, strict=True)
    ]
    units = [("C-1", "住宅", "100", "1500000"), ("C-2", "住宅", "100", "1500000")]
    more = await t.office(t.sn, units)
    await t.use(
        office, [ids[0]], "B-1", buyer=holders[0], price=150 * WAN, signed_on=date(2025, 10, 9),
        amounts=[100 * WAN],
    )  # fmt: skip
    await t.use(
        more, [ids[1]], "C-1", buyer=holders[1], price=150 * WAN, signed_on=date(2025, 10, 9),
        amounts=[90 * WAN + 1],
    )  # fmt: skip
    review = {"campaign_id": t.sn.id, "review_no": "JL-2026-1"}
    early = await post(t, "/v1/ticket-bonuses/reviews", review, issuer, 201)
    assert (early["reviewed"], early["none_due"], early["not_yet"]) == ([], 0, 3)
    clock.now = shanghai(2026, 10, 10, 9)  # 12 months from 2025-10-09 end with 10-09
    issuer = await t.issuer("chuanshan")
    done = await post(t, "/v1/ticket-bonuses/reviews", review, issuer, 201)
    mine = {p["original_id"]: p for p in done["reviewed"]}
    assert {i: (p["rate_bp"], p["amount_fen"]) for i, p in mine.items()} == {
        ids[0]: (500, 5 * WAN),
        ids[1]: (300, (100 * WAN + 1) * 3 // 100),  # 3% of 100万 and 1 fen, rounded down
    }
    assert mine[ids[0]]["due_by"] == "2027-04-09"
    assert (done["none_due"], done["not_yet"]) == (1, 0)  # the third ticket, never used
    again = await post(t, "/v1/ticket-bonuses/reviews", review, issuer, 201)
    assert again["reviewed"] == []  # a family's bonus is reviewed once
    shangqiu = {"campaign_id": t.sq.id, "review_no": "JL-1"}
    await refused(
        t, "/v1/ticket-bonuses/reviews", shangqiu, await t.issuer("liangyuan"), 422, "refused"
    )
    paid = await post(
        t, f"/v1/ticket-payouts/{mine[ids[0]]['id']}/payment", {"payment_no": "ZF-9"}, issuer
    )
    assert paid["paid_on"] == "2026-10-10"
    await ledger_holds(t.world)
