"""Issue 13: both house-ticket programmes serve side by side with Liaocheng's vouchers in one
server (rule C1): both kinds are in the ledger, each listed on its own route."""

from __future__ import annotations

from tests.e2e.conftest import World


async def test_one_server_serves_the_vouchers_and_both_ticket_programmes(world: World) -> None:
    r = await world.client.get("/v1/ticket-programmes")
    assert r.status == 200
    programmes = {p["id"]: p for p in (await r.json())["programmes"]}
    assert set(programmes) == {"shangqiu-2025", "suining-chuanshan-2025"}
    assert programmes["suining-chuanshan-2025"]["kind"] == "house_ticket"
    r = await world.client.get("/v1/campaigns")
    vouchers = {c["id"] for c in (await r.json())["campaigns"]}
    assert vouchers == {"liaocheng-2024", "liaocheng-demo"}
    async with world.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, coalesce(config->>'kind', 'voucher') AS kind FROM campaigns "
            "WHERE id = ANY($1)",
            [*programmes, *vouchers],
        )
    kinds = {r["id"]: r["kind"] for r in rows}
    assert kinds == {
        "liaocheng-2024": "voucher",
        "liaocheng-demo": "voucher",
        "shangqiu-2025": "house_ticket",
        "suining-chuanshan-2025": "house_ticket",
    }
