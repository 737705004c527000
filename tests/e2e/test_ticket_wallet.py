"""The holder's wallet after a split and a transfer, over HTTP (issue 13, rules T3, T6, T8,
X3): a Suining ticket split in two, one piece transferred to another person. The transferor's
wallet (``GET /v1/wallet`` and ``/wallet``) counts only what they hold and shows the piece as
a history line with the receiver masked; the receiver's wallet shows the piece and nothing of
the transferor's. A use of the piece moves the receiver's figures only."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
import pytest

from server.schemas import Wallet
from shared.idnumber import mask_id_number
from tests.e2e.conftest import Citizen, Clock, World, new_id_number, shanghai
from tests.e2e.tickets_world import WAN, Tickets, ref, ticket_counts
from tests.unit.ticket_helpers import SN


@pytest.fixture
def t(world: World, clock: Clock) -> Tickets:
    clock.now = shanghai(2025, 10, 9, 10)  # Suining issues (T1)
    return Tickets(world, clock)


async def wallet_tickets(world: World, person: Citizen) -> list[dict[str, Any]]:
    r = await world.client.get("/v1/wallet", headers=person.headers)
    assert r.status == 200, await r.text()
    answer = await r.json()
    msgspec.convert(answer, Wallet)  # the route's documented answer (GET /v1/wallet)
    return list(answer["tickets"])


def accounted(card: dict[str, Any]) -> int:
    """T3, T6: what the holder's figures account for: always their face value."""
    return sum(
        card[k]
        for k in ("used_fen", "cashed_out_fen", "returned_fen", "balance_fen", "transferred_fen")
    )


async def split_and_transfer(t: Tickets) -> dict[str, Any]:
    """A 90万 Suining ticket of A's, split into 60万 and 30万; the 30万 piece transferred to B."""
    issuer = await t.issuer("chuanshan")
    a, b = await t.world.citizen(), await t.world.citizen()
    made = await t.issue(issuer, t.agreement(SN, holder=a.id_number, face=90 * WAN))
    ticket = made["ticket"]
    numbers = [ref("P"), ref("P")]
    r = await t.client.post(
        f"/v1/tickets/{ticket['id']}/split",
        json={"amounts": [60 * WAN, 30 * WAN], "numbers": numbers, "application_no": "FG-9"},
        headers=issuer,
    )
    assert r.status == 200, await r.text()
    pieces = {p["number"]: p["id"] for p in (await r.json())["family"] if p["parent_id"]}
    kept, given = pieces[numbers[0]], pieces[numbers[1]]
    transfer = {
        "to_holder_id_number": b.id_number,
        "to_household_id_numbers": [b.id_number, new_id_number()],
        "home_in_city": True,
        "all_members_signed": True,
        "notary_no": "GZ-31",
    }
    r = await t.client.post(f"/v1/tickets/{given}/transfer", json=transfer, headers=issuer)
    assert r.status == 200, await r.text()
    return {
        "a": a,
        "b": b,
        "issuer": issuer,
        "original": ticket["number"],
        "kept": (kept, numbers[0]),
        "given": (given, numbers[1]),
        "transfer": transfer,
    }


async def test_a_transferred_piece_leaves_the_transferors_wallet_for_the_receivers(
    t: Tickets,
) -> None:
    # T3: the piece is the receiver's; the transferor keeps a history line, receiver masked
    s = await split_and_transfer(t)
    a, b = s["a"], s["b"]
    (mine,) = await wallet_tickets(t.world, a)
    assert mine["numbers"] == [s["kept"][1]]
    assert (mine["face_value_fen"], mine["balance_fen"]) == (90 * WAN, 60 * WAN)
    assert mine["transferred_fen"] == 30 * WAN
    assert mine["transferred"] == [
        {
            "number": s["given"][1],
            "face_value_fen": 30 * WAN,
            "to": mask_id_number(b.id_number),
            "kind": "transfer",
        }
    ]
    assert accounted(mine) == mine["face_value_fen"]
    assert b.id_number not in str(mine)  # X3: masked only

    (theirs,) = await wallet_tickets(t.world, b)
    assert theirs["numbers"] == [s["given"][1]]
    assert (theirs["face_value_fen"], theirs["balance_fen"]) == (30 * WAN, 30 * WAN)
    assert (theirs["transferred_fen"], theirs["transferred"]) == (0, [])
    assert theirs["deadline"] == mine["deadline"]  # T3: expiry unchanged
    assert accounted(theirs) == theirs["face_value_fen"]
    for secret in (s["original"], s["kept"][1], a.id_number, mask_id_number(a.id_number)):
        assert secret not in str(theirs)  # nothing of the transferor's

    # a second transfer of the piece is refused and changes neither wallet (T3: once)
    before = await ticket_counts(t.world)
    again = s["transfer"] | {"to_holder_id_number": new_id_number()}
    again["to_household_id_numbers"] = [again["to_holder_id_number"]]
    r = await t.client.post(
        f"/v1/tickets/{s['given'][0]}/transfer", json=again, headers=s["issuer"]
    )
    assert r.status == 422
    assert (await r.json())["error"]["code"] == "ticket_transfer_refused"
    assert await ticket_counts(t.world) == before
    assert await wallet_tickets(t.world, a) == [mine]
    assert await wallet_tickets(t.world, b) == [theirs]


async def test_the_receivers_use_of_the_piece_moves_only_the_receivers_figures(
    t: Tickets,
) -> None:
    # T3, T5, T8: B buys with the piece; A's balance, uses and rewards stay as they were
    s = await split_and_transfer(t)
    a, b = s["a"], s["b"]
    (before_a,) = await wallet_tickets(t.world, a)
    office = await t.office(t.sn, [("A-1-1", "住宅", "95.5", "1200000")])
    await t.use(
        office,
        [s["given"][0]],
        "A-1-1",
        buyer=b.id_number,
        price=120 * WAN,
        signed_on=date(2025, 10, 9),
        amounts=[30 * WAN],
    )
    (theirs,) = await wallet_tickets(t.world, b)
    assert (theirs["used_fen"], theirs["balance_fen"]) == (30 * WAN, 0)
    assert theirs["reward_fen"] == 3_820_000  # T8: 95.5 m² x 400 元
    (use,) = theirs["uses"]
    assert (use["amount_fen"], use["unit"], use["cancelled"]) == (30 * WAN, "A-1-1", False)
    assert theirs["numbers"] == [s["given"][1]]  # used up: still named by its number
    assert await wallet_tickets(t.world, a) == [before_a]
    assert before_a["uses"] == [] and before_a["reward_fen"] == 0


async def test_the_wallet_pages_show_the_same_split(t: Tickets) -> None:
    # T3 on /wallet: the transferor's balance without the piece and its history line; the
    # receiver's card with the piece only
    from tests.e2e.test_pages import signed_in_citizen

    s = await split_and_transfer(t)
    a, b = s["a"], s["b"]
    page = await signed_in_citizen(t.world, a.id_number)
    text = await (await page.get("/wallet")).text()
    assert '<dd class="ticket-balance">600,000.00 元</dd>' in text
    line = f"已转让：房票 {s['given'][1]}，300,000.00 元，受让人 {mask_id_number(b.id_number)}"
    assert line in text
    assert b.id_number not in text
    page = await signed_in_citizen(t.world, b.id_number)
    text = await (await page.get("/wallet")).text()
    assert '<dd class="ticket-balance">300,000.00 元</dd>' in text
    assert s["given"][1] in text
    assert s["kept"][1] not in text and s["original"] not in text
    assert "ticket-transfers" not in text and "已转让：" not in text  # no history line
    # T6 [choice], T9: the 90% test is the original's: B's use counts in A's hint
    office = await t.office(t.sn, [("A-1-1", "住宅", "95.5", "1200000")])
    await t.use(
        office, [s["given"][0]], "A-1-1", buyer=b.id_number, price=120 * WAN,
        signed_on=date(2025, 10, 9), amounts=[27 * WAN],
    )  # fmt: skip
    page = await signed_in_citizen(t.world, a.id_number)
    text = await (await page.get("/wallet")).text()
    assert "原房票（含已转让部分）累计使用达到原票面金额的 90% 后" in text
    assert "（目前共已使用 270,000.00 元）" in text


async def test_a_transferred_pieces_balance_is_cashed_out_to_its_receiver_only(
    t: Tickets,
) -> None:
    # T3, T6 [choice], T9: the 90% test is the original's (87万 of 90万 used), but each
    # holder applies for the balance they hold: A holds none, B holds 3万
    s = await split_and_transfer(t)
    a, b, issuer = s["a"], s["b"], s["issuer"]
    office = await t.office(
        t.sn, [("A-1-1", "住宅", "95.5", "1200000"), ("A-1-2", "住宅", "80", "1000000")]
    )
    day = date(2025, 10, 9)
    await t.use(
        office, [s["kept"][0]], "A-1-1", buyer=a.id_number, price=120 * WAN, signed_on=day,
        amounts=[60 * WAN],
    )  # fmt: skip
    await t.use(
        office, [s["given"][0]], "A-1-2", buyer=b.id_number, price=100 * WAN, signed_on=day,
        amounts=[27 * WAN],
    )  # fmt: skip
    (mine,) = await wallet_tickets(t.world, a)
    (theirs,) = await wallet_tickets(t.world, b)
    assert (mine["balance_fen"], mine["cashout_due_fen"]) == (0, None)
    assert (theirs["balance_fen"], theirs["cashout_due_fen"]) == (3 * WAN, 3 * WAN)

    before = await ticket_counts(t.world)
    r = await t.client.post(
        f"/v1/tickets/{s['kept'][0]}/cashout", json={"application_no": "DX-A"}, headers=issuer
    )
    assert r.status == 422, await r.text()
    error = (await r.json())["error"]
    assert (error["code"], error["details"]["reason"]) == ("cashout_not_due", "nothing_left")
    assert await ticket_counts(t.world) == before  # B's 3万 is not paid on A's application
    assert await wallet_tickets(t.world, b) == [theirs]

    r = await t.client.post(
        f"/v1/tickets/{s['given'][0]}/cashout", json={"application_no": "DX-B"}, headers=issuer
    )
    assert r.status == 201, await r.text()
    (payout,) = (await r.json())["payouts"]
    assert (payout["kind"], payout["amount_fen"]) == ("cashout", 3 * WAN)
    (theirs,) = await wallet_tickets(t.world, b)
    assert (theirs["cashed_out_fen"], theirs["balance_fen"]) == (3 * WAN, 0)
    assert theirs["cashout_due_fen"] is None
    assert accounted(theirs) == theirs["face_value_fen"]
    assert await wallet_tickets(t.world, a) == [mine]
