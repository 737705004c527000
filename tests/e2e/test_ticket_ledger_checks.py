"""The ledger check covers house tickets after use (issue 13, rules T9-T12): a ledger made
through the API holds; each corruption of a settlement, a clawback, a cash-out or a bonus,
made by hand inside a transaction that is then rolled back, is found by its own check."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.db import Conn
from server.db.invariants import check_ledger
from server.settings import Settings
from tests.e2e.conftest import Clock, new_id_number, shanghai
from tests.e2e.tickets_world import WAN, Tickets, isolated


class _Undo(Exception):
    """Rolls a corruption back: the suite shares one ledger, which must stay sound."""


async def findings(conn: Conn) -> dict[str, list[dict[str, object]]]:
    return {v.check: v.examples for v in await check_ledger(conn) if v.check.startswith("ticket_")}


@pytest.fixture
async def made(
    aiohttp_client: Any, settings: Settings, clock: Clock, db_pool: asyncpg.Pool, tmp_path: Path
) -> dict[str, int]:
    """A Suining ledger through the API: a use settled 90% at a point, a cash-out, a bonus."""
    t: Tickets = await isolated(aiohttp_client, settings, clock, db_pool, tmp_path)
    clock.now = shanghai(2025, 10, 9, 10)
    office = await t.office(
        t.sn, [("D-1", "住宅", "100", "1500000"), ("D-2", "住宅", "100", "1500000")]
    )
    issuer = await t.issuer("chuanshan")
    holders = [new_id_number(), new_id_number()]
    ids = [(await t.issue(issuer, t.agreement(t.sn, holder=h)))["ticket"]["id"] for h in holders]
    full = await t.use(
        office, [ids[0]], "D-1", buyer=holders[0], price=150 * WAN, signed_on=date(2025, 10, 9),
        amounts=[100 * WAN],
    )  # fmt: skip
    await t.use(
        office, [ids[1]], "D-2", buyer=holders[1], price=150 * WAN, signed_on=date(2025, 10, 9),
        amounts=[95 * WAN],
    )  # fmt: skip
    clock.now = shanghai(2025, 10, 21, 9)
    issuer = await t.issuer("chuanshan")
    for name in ("filed", "fees_paid", "delivered", "stub_surrendered"):
        body = {"condition": name, "recorded_on": "2025-10-20", "document_no": name}
        r = await t.client.post(f"/v1/ticket-uses/{full}/conditions", json=body, headers=issuer)
        assert r.status == 201, await r.text()
    r = await t.client.post(
        f"/v1/tickets/{ids[1]}/cashout", json={"application_no": "DX"}, headers=issuer
    )
    assert r.status == 201, await r.text()
    clock.now = shanghai(2026, 10, 10, 9)
    issuer = await t.issuer("chuanshan")
    build = {"campaign_id": t.sn.id, "district": "chuanshan", "point": "2026-09-01"}
    r = await t.client.post("/v1/ticket-settlements", json=build, headers=issuer)
    assert r.status == 201, await r.text()
    batch = (await r.json())["settlement_id"]
    review = {"campaign_id": t.sn.id, "review_no": "JL"}
    r = await t.client.post("/v1/ticket-bonuses/reviews", json=review, headers=issuer)
    assert r.status == 201 and len((await r.json())["reviewed"]) == 2, await r.text()
    return {"use": full, "batch": batch, "cashed_out": ids[1], "bonus": ids[0]}


CORRUPTIONS = {
    # rule T12: a seller paid more than its due (and the batch no longer adds up)
    "ticket_settled_over_due": (
        "UPDATE ticket_settlement_lines SET amount_fen = amount_fen + 100000000 WHERE use_id = $1",
        "use",
    ),
    # rule T11: a clawback where no contract was cancelled
    "ticket_clawback_not_cancelled": (
        "INSERT INTO ticket_settlement_lines "
        "(settlement_id, use_id, merchant_id, kind, amount_fen) "
        "SELECT settlement_id, use_id, merchant_id, 'clawback', -1 "
        "FROM ticket_settlement_lines WHERE use_id = $1",
        "use",
    ),
    # rules T11, T12: a contract cancelled before a settlement that paid it, with no clawback
    "ticket_cancelled_still_paid": (
        "UPDATE ticket_uses SET cancelled_at = '2026-01-01T00:00:00+08' WHERE id = $1",
        "use",
    ),
    "ticket_settlement_total": (
        "UPDATE ticket_settlements SET amount_fen = amount_fen + 1 WHERE id = $1",
        "batch",
    ),
    # rule T9: money cashed out without its payout
    "ticket_cashout_vs_payouts": (
        "UPDATE ticket_payouts SET amount_fen = amount_fen - 1 WHERE original_id = $1 "
        "AND kind = 'cashout'",
        "cashed_out",
    ),
    # rule T10: a bonus off its rate by a fen
    "ticket_bonus_rate": (
        "UPDATE ticket_payouts SET amount_fen = amount_fen + 1 WHERE original_id = $1 "
        "AND kind = 'bonus'",
        "bonus",
    ),
}


@pytest.mark.parametrize("check", list(CORRUPTIONS))
async def test_each_corruption_after_use_is_found_by_its_check(
    made: dict[str, int], db_pool: asyncpg.Pool, check: str
) -> None:
    sql, key = CORRUPTIONS[check]
    async with db_pool.acquire() as conn:
        assert await findings(conn) == {}
        with pytest.raises(_Undo):
            async with conn.transaction():
                await conn.execute(sql, made[key])
                found = await findings(conn)
                assert check in found, found
                raise _Undo
        assert await findings(conn) == {}
