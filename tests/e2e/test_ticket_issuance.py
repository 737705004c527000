"""House tickets at the issuer, over HTTP (issue 13, rules T1-T3, T6, T13, X2, X3): a ticket
issued from a compensation agreement by its district's issuer, split, transferred, passed to
an heir, reported lost and reissued, voided, its expired balance returned; every act audited
with its documents' numbers; every refusal clear and writing nothing."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.e2e.conftest import Clock, World, new_id_number, shanghai
from tests.e2e.tickets_world import WAN, Tickets, ref, ticket_counts
from tests.unit.ticket_helpers import SN, SQ


@pytest.fixture
def t(world: World, clock: Clock) -> Tickets:
    clock.now = shanghai(2024, 9, 10, 10)  # Shangqiu issues (T1); Suining's tests move it
    return Tickets(world, clock)


async def refused(
    t: Tickets, path: str, body: dict[str, Any], headers: dict[str, str], status: int, code: str
) -> dict[str, Any]:
    """The request is refused with ``code`` and the ledger is unchanged."""
    before = await ticket_counts(t.world)
    r = await t.client.post(path, json=body, headers=headers)
    assert r.status == status, await r.text()
    answer = dict((await r.json())["error"])
    assert answer["code"] == code, answer
    assert await ticket_counts(t.world) == before
    return answer


async def act(
    client: TestClient[Any, Any], path: str, body: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    r = await client.post(path, json=body, headers=headers)
    assert r.status == 200, await r.text()
    return dict(await r.json())


async def test_an_issuer_issues_a_shangqiu_ticket_itemised_and_audited(t: Tickets) -> None:
    # T1: the agreement's items make the face value; the holder is masked (X3); T2: 18 months
    issuer = await t.issuer("liangyuan")
    holder = new_id_number()
    body = t.agreement(SQ, holder=holder, face=150 * WAN)
    made = await t.issue(issuer, body)
    ticket = made["ticket"]
    assert ticket["face_value_fen"] == ticket["balance_fen"] == 150 * WAN
    assert [(i["label"], i["amount_fen"]) for i in ticket["items"]] == [
        ("安置补偿权益金额", 135 * WAN),
        ("房票安置政策性奖励金额", 15 * WAN),
    ]
    assert ticket["holder"] == holder[:4] + "*" * 10 + holder[-4:]
    assert holder not in str(made)
    assert (ticket["issued_on"], ticket["deadline"]) == ("2024-09-10", "2026-03-10")
    assert ticket["expires_at"] == "2026-03-11T00:00:00+08:00"
    (event,) = made["events"]
    assert event["act"] == "issue"
    assert event["documents"] == {
        "agreement_no": body["agreement_no"],
        "filing_no": body["filing_no"],
    }
    assert event["amount_fen"] == 150 * WAN
    r = await t.client.get("/v1/tickets", params={"number": body["number"]}, headers=issuer)
    assert (await r.json())["tickets"][0]["id"] == ticket["id"]


async def test_an_issuer_issues_for_its_own_district_only(t: Tickets, world: World) -> None:
    # T1, X2: the issuer of 梁园区 cannot issue 睢阳区's tickets; the city cannot issue
    issuer = await t.issuer("liangyuan")
    body = t.agreement(SQ, district="睢阳区")
    await refused(t, "/v1/tickets", body, issuer, 403, "forbidden")
    city = await world.staff("city_operator")
    await refused(t, "/v1/tickets", t.agreement(SQ), city, 403, "forbidden")
    made = await t.issue(await t.issuer("suiyang"), body)
    r = await t.client.get(f"/v1/tickets/{made['ticket']['id']}", headers=issuer)
    assert r.status == 404  # nor reads another district's tickets: they are not its (X2)
    r = await t.client.post(
        f"/v1/tickets/{made['ticket']['id']}/void", json={"decision_no": "JD"}, headers=issuer
    )
    assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"  # T1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"holder_id_number": "371502198001010011"}, 400, "invalid_id_number"),  # E1
        ({"items": [{"code": "gift", "amount_fen": 100}]}, 400, "invalid_request"),  # T1
        ({"validity_months": 37}, 400, "invalid_request"),  # T2: at most 36 in Shangqiu
        ({"agreement_date": "2024-09-11"}, 400, "invalid_date"),  # after the issue
        ({"issued_on": "2024-09-11"}, 400, "invalid_date"),  # in the future
        ({"campaign_id": "nowhere-2025"}, 400, "invalid_request"),
        ({"district": "东昌府区"}, 403, "forbidden"),  # not the issuer's
        (
            {"project": {"name": "老项目", "housing_delivered": True, "cash_paid": True}},
            422,
            "project_not_eligible",
        ),  # T1 (四)
        ({"issued_on": "2023-06-30"}, 422, "issuance_closed"),  # T1: before the programme
    ],
)
async def test_a_bad_agreement_is_refused_and_writes_nothing(
    t: Tickets, change: dict[str, Any], status: int, code: str
) -> None:
    issuer = await t.issuer("liangyuan")
    await refused(t, "/v1/tickets", t.agreement(SQ) | change, issuer, status, code)


async def test_issuance_closes_with_the_programme_and_a_number_is_issued_once(
    t: Tickets, clock: Clock
) -> None:
    # T1: Shangqiu issues until 2025-06-30; a printed number names one ticket
    issuer = await t.issuer("liangyuan")
    body = t.agreement(SQ)
    await t.issue(issuer, body)
    answer = await refused(
        t, "/v1/tickets", t.agreement(SQ, number=body["number"]), issuer, 409, "conflict"
    )
    assert answer["details"]["reason"] == "ticket_number_taken"
    clock.now = shanghai(2025, 7, 1, 9)
    issuer = await t.issuer("liangyuan")  # a fresh token for the new day
    await refused(t, "/v1/tickets", t.agreement(SQ), issuer, 422, "issuance_closed")


@pytest.fixture
async def suining(t: Tickets, clock: Clock) -> dict[str, str]:
    clock.now = shanghai(2025, 10, 9, 10)
    return await t.issuer("chuanshan")


async def test_a_suining_ticket_lists_its_household_and_area(
    t: Tickets, suining: dict[str, str]
) -> None:
    # T1 (第二条): the household members and the ticket's area; T2: 12 months
    holder, spouse = new_id_number(), new_id_number()
    made = await t.issue(suining, t.agreement(SN, holder=holder, household=(spouse,)))
    ticket = made["ticket"]
    assert len(ticket["household"]) == 2  # the holder is always one of them [choice]
    assert ticket["area_dm2"] == 12_000
    assert ticket["deadline"] == "2026-10-09"
    no_area = t.agreement(SN)
    del no_area["area_dm2"]
    await refused(t, "/v1/tickets", no_area, suining, 400, "invalid_request")


async def test_a_suining_ticket_splits_once_into_at_most_three_pieces(
    t: Tickets, suining: dict[str, str]
) -> None:
    # T6: split once, to buy several homes; the pieces keep the expiry; audited
    made = await t.issue(suining, t.agreement(SN, face=90 * WAN))
    ticket_id = made["ticket"]["id"]
    path = f"/v1/tickets/{ticket_id}/split"
    four = {"amounts": [WAN] * 4, "numbers": [ref("P") for _ in range(4)], "application_no": "FG-1"}
    answer = await refused(t, path, four, suining, 422, "ticket_split_refused")
    assert answer["details"]["reason"] == "pieces"
    uneven = {
        "amounts": [30 * WAN, 30 * WAN],
        "numbers": [ref("P"), ref("P")],
        "application_no": "FG-1",
    }
    assert (await refused(t, path, uneven, suining, 422, "ticket_split_refused"))["details"][
        "reason"
    ] == "amounts"
    numbers = [ref("P") for _ in range(3)]
    body = {"amounts": [30 * WAN] * 3, "numbers": numbers, "application_no": "FG-1"}
    done = await act(t.client, path, body, suining)
    assert done["ticket"]["status"] == "split" and done["ticket"]["balance_fen"] == 0
    pieces = [p for p in done["family"] if p["parent_id"] == ticket_id]
    assert sorted(p["number"] for p in pieces) == sorted(numbers)
    assert {p["deadline"] for p in pieces} == {made["ticket"]["deadline"]}
    assert done["summary"]["balance_fen"] == 90 * WAN
    assert [e["act"] for e in done["events"]].count("split_piece") == 3
    again = {"amounts": [15 * WAN] * 2, "numbers": [ref("P"), ref("P")], "application_no": "FG-2"}
    piece_path = f"/v1/tickets/{pieces[0]['id']}/split"
    assert (await refused(t, piece_path, again, suining, 422, "ticket_split_refused"))["details"][
        "reason"
    ] == "already_split"


async def test_shangqiu_splits_no_ticket_and_transfers_none(t: Tickets) -> None:
    # T6: Shangqiu pays several contracts without a split; T3: no transfer [choice]
    issuer = await t.issuer("liangyuan")
    ticket_id = (await t.issue(issuer, t.agreement(SQ)))["ticket"]["id"]
    body = {"amounts": [50 * WAN] * 2, "numbers": [ref("P"), ref("P")], "application_no": "FG"}
    answer = await refused(
        t, f"/v1/tickets/{ticket_id}/split", body, issuer, 422, "ticket_split_refused"
    )
    assert answer["details"]["reason"] == "not_allowed"
    transfer = {
        "to_holder_id_number": new_id_number(),
        "home_in_city": True,
        "all_members_signed": True,
        "notary_no": "GZ-1",
    }
    answer = await refused(
        t, f"/v1/tickets/{ticket_id}/transfer", transfer, issuer, 422, "ticket_transfer_refused"
    )
    assert answer["details"]["reason"] == "not_allowed"


async def test_a_suining_ticket_is_transferred_once_on_its_conditions(
    t: Tickets, suining: dict[str, str]
) -> None:
    # T3 (第十条): a home in the city, every member signed, notarised; once; expiry unchanged
    made = await t.issue(suining, t.agreement(SN))
    path = f"/v1/tickets/{made['ticket']['id']}/transfer"
    new_holder = new_id_number()
    body = {
        "to_holder_id_number": new_holder,
        "to_household_id_numbers": [new_id_number()],
        "home_in_city": True,
        "all_members_signed": False,
        "notary_no": "GZ-7",
    }
    answer = await refused(t, path, body, suining, 422, "ticket_transfer_refused")
    assert answer["details"]["reason"] == "all_members_signed"
    done = await act(t.client, path, body | {"all_members_signed": True}, suining)
    assert done["ticket"]["holder"].endswith(new_holder[-4:])
    assert done["ticket"]["transfers"] == 1
    assert done["ticket"]["deadline"] == made["ticket"]["deadline"]
    assert done["events"][-1]["documents"] == {"notary_no": "GZ-7"}
    answer = await refused(
        t,
        path,
        body | {"all_members_signed": True, "to_holder_id_number": new_id_number()},
        suining,
        422,
        "ticket_transfer_refused",
    )
    assert answer["details"]["reason"] == "already_transferred"


async def test_an_heir_takes_a_ticket_on_a_notarised_certificate(t: Tickets) -> None:
    # T3: Shangqiu [choice] and Suining: 更名 on a 继承公证书
    issuer = await t.issuer("suiyang")
    made = await t.issue(issuer, t.agreement(SQ, district="suiyang"))
    heir = new_id_number()
    done = await act(
        t.client,
        f"/v1/tickets/{made['ticket']['id']}/heir",
        {"heir_id_number": heir, "certificate_no": "(2024)商证字第 88 号"},
        issuer,
    )
    assert done["ticket"]["holder"].endswith(heir[-4:])
    last = done["events"][-1]
    assert (last["act"], last["documents"]) == ("heir", {"certificate_no": "(2024)商证字第 88 号"})


async def test_a_lost_suining_ticket_is_reissued_ten_working_days_after_the_notice(
    t: Tickets, suining: dict[str, str], clock: Clock, world: World
) -> None:
    # T13 (第十一条): the notice in a city newspaper; a replacement on the 10th working day
    # after it (国庆: 2025-10-01..08 are holidays, 10-11 a make-up working day); the old
    # number is void, the expiry and uses kept
    made = await t.issue(suining, t.agreement(SN))
    ticket_id, old = made["ticket"]["id"], made["ticket"]["number"]
    lost = await act(
        t.client,
        f"/v1/tickets/{ticket_id}/loss",
        {"newspaper": "遂宁日报", "published_on": "2025-10-09"},
        suining,
    )
    assert lost["ticket"]["status"] == "lost"
    # 10-10, the make-up Saturday 10-11, 10-13..17 and 10-20, 21, 22: the 10th working day
    assert lost["replacement_opens_on"] == "2025-10-22"
    path = f"/v1/tickets/{ticket_id}/reissue"
    clock.now = shanghai(2025, 10, 21, 17)
    suining = await t.issuer("chuanshan")
    answer = await refused(t, path, {"new_number": ref("BF")}, suining, 422, "replacement_not_yet")
    assert answer["details"]["opens_on"] == "2025-10-22"
    clock.now = shanghai(2025, 10, 22, 9)
    suining = await t.issuer("chuanshan")
    new_number = ref("BF")
    await refused(t, path, {"new_number": old}, suining, 409, "conflict")  # a void number
    done = await act(t.client, path, {"new_number": new_number}, suining)
    assert (done["ticket"]["number"], done["ticket"]["void_numbers"]) == (new_number, [old])
    assert done["ticket"]["status"] == "active"
    assert done["ticket"]["deadline"] == made["ticket"]["deadline"]
    r = await t.client.get("/v1/tickets", params={"number": old}, headers=suining)
    assert (await r.json())["tickets"][0]["number"] == new_number
    r = await t.client.get(f"/v1/tickets/{ticket_id}", headers=await world.staff("auditor"))
    assert [e["act"] for e in (await r.json())["events"]] == ["issue", "lost", "reissue"]


async def test_a_loss_past_the_working_calendar_is_refused_asking_for_the_year(
    t: Tickets, clock: Clock
) -> None:
    # T13: the calendar of suining-chuanshan-2025 ends 2026-12-31 (2027's 国务院办公厅 notice
    # is not out); a notice whose 10th working day falls in 2027 is refused, not guessed,
    # telling the operator to add the year, and writes nothing; one ending on 12-31 is taken
    clock.now = shanghai(2026, 8, 31, 10)  # the programme's last issuance day (T1)
    made = await t.issue(await t.issuer("chuanshan"), t.agreement(SN))
    ticket_id = made["ticket"]["id"]
    clock.now = shanghai(2026, 12, 18, 10)
    issuer = await t.issuer("chuanshan")
    path = f"/v1/tickets/{ticket_id}/loss"
    body = {"newspaper": "遂宁日报", "published_on": "2026-12-18"}
    answer = await refused(t, path, body, issuer, 422, "working_calendar_missing")
    assert answer["details"]["last_day"] == "2026-12-31"
    assert answer["details"]["year"] == 2027
    assert "add 2027's public holidays" in answer["message"]
    assert "[working_calendar]" in answer["message"]
    r = await t.client.get(f"/v1/tickets/{ticket_id}", headers=issuer)
    assert (await r.json())["ticket"]["status"] == "active"  # not reported lost
    lost = await act(t.client, path, body | {"published_on": "2026-12-17"}, issuer)
    assert lost["replacement_opens_on"] == "2026-12-31"  # the calendar's last day


async def test_a_ticket_issued_in_error_is_voided_before_any_use(t: Tickets) -> None:
    # T1: voided on the issuer's decision; its value leaves the programme
    issuer = await t.issuer("shifanqu")
    made = await t.issue(issuer, t.agreement(SQ, district="shifanqu"))
    path = f"/v1/tickets/{made['ticket']['id']}/void"
    await refused(t, path, {"decision_no": " "}, issuer, 400, "invalid_request")
    done = await act(t.client, path, {"decision_no": "JD-3"}, issuer)
    assert (done["ticket"]["status"], done["ticket"]["returned_fen"]) == ("void", 100 * WAN)
    answer = await refused(t, path, {"decision_no": "JD-4"}, issuer, 409, "ticket_void")
    assert answer["details"]["reason"] == "void"


async def test_an_expired_balance_is_returned_not_before(t: Tickets, clock: Clock) -> None:
    # T2: the holder applies to return the balance for another form of compensation
    issuer = await t.issuer("liangyuan")
    made = await t.issue(issuer, t.agreement(SQ, validity_months=1))
    path = f"/v1/tickets/{made['ticket']['id']}/return"
    answer = await refused(t, path, {"agreement_no": "BC-1"}, issuer, 422, "ticket_return_refused")
    assert answer["details"]["reason"] == "not_expired"
    clock.now = shanghai(2024, 10, 11, 0, 0, 1)  # 24:00 of 2024-10-10 has passed
    issuer = await t.issuer("liangyuan")
    done = await act(t.client, path, {"agreement_no": "BC-1"}, issuer)
    assert (done["ticket"]["status"], done["ticket"]["returned_fen"]) == ("returned", 100 * WAN)
    assert done["summary"]["expired"] is True
