"""Issue 13: both house-ticket programmes serve side by side with Liaocheng's vouchers in one
server (rule C1): both kinds are in the ledger, each listed on its own route."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from server.app import create_app
from server.settings import Settings
from tests.e2e.conftest import Clock, World


async def test_one_server_serves_the_vouchers_and_both_ticket_programmes(world: World) -> None:
    r = await world.client.get("/v1/ticket-programmes")
    assert r.status == 200
    programmes = {p["id"]: p for p in (await r.json())["programmes"]}
    # the shipped two (and any programme the shared ledger recorded before: it is served too)
    assert set(programmes) >= {"shangqiu-2025", "suining-chuanshan-2025"}
    assert programmes["suining-chuanshan-2025"]["kind"] == "house_ticket"
    r = await world.client.get("/v1/campaigns")
    vouchers = {c["id"] for c in (await r.json())["campaigns"]}
    assert vouchers >= {"liaocheng-2024", "liaocheng-demo"}
    assert not vouchers & set(programmes)
    async with world.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, coalesce(config->>'kind', 'voucher') AS kind FROM campaigns "
            "WHERE id = ANY($1)",
            ["shangqiu-2025", "suining-chuanshan-2025", "liaocheng-2024", "liaocheng-demo"],
        )
    kinds = {r["id"]: r["kind"] for r in rows}
    assert kinds == {
        "liaocheng-2024": "voucher",
        "liaocheng-demo": "voucher",
        "shangqiu-2025": "house_ticket",
        "suining-chuanshan-2025": "house_ticket",
    }


async def test_a_programme_recorded_in_the_ledger_is_served_without_its_file(
    world: World, aiohttp_client: Any, settings: Settings, clock: Clock
) -> None:
    # C1: as a voucher campaign loaded by an operator, a programme in the ledger keeps being
    # served (its tickets stay readable) when a server's files no longer name it
    assert (await world.client.get("/v1/ticket-programmes")).status == 200  # recorded
    bare = await aiohttp_client(
        create_app(replace(settings, ticket_campaign_files=()), clock=clock)
    )
    r = await bare.get("/v1/ticket-programmes")
    assert {"shangqiu-2025", "suining-chuanshan-2025"} <= {
        p["id"] for p in (await r.json())["programmes"]
    }
