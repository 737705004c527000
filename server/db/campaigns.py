"""SQL of campaigns and districts (rule C1, C2)."""

from __future__ import annotations

import json

from server.db import Conn
from shared.campaign import Campaign, campaign_to_dict


async def upsert(conn: Conn, campaign: Campaign) -> None:
    """Record a loaded campaign file and the districts it names."""
    async with conn.transaction():
        for district in campaign.districts.values():
            await conn.execute(
                "INSERT INTO districts (code, name) VALUES ($1, $2) "
                "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name",
                district.code,
                district.name,
            )
        await conn.execute(
            """
            INSERT INTO campaigns (id, name, stacking_group, config) VALUES ($1, $2, $3, $4)
            ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
                stacking_group = EXCLUDED.stacking_group, config = EXCLUDED.config,
                loaded_at = now()
            WHERE campaigns.config IS DISTINCT FROM EXCLUDED.config
            """,
            campaign.id,
            campaign.name,
            campaign.stacking_group,
            json.dumps(campaign_to_dict(campaign), ensure_ascii=False),
        )


async def stored_configs(conn: Conn) -> list[dict[str, object]]:
    """Every voucher campaign recorded in the ledger, as its validated file's JSON (house-ticket
    programmes, ``kind = "house_ticket"``, are ``server/db/tickets.py``'s)."""
    rows = await conn.fetch(
        "SELECT config FROM campaigns WHERE coalesce(config->>'kind', 'voucher') = 'voucher' "
        "ORDER BY id"
    )
    return [json.loads(r["config"]) for r in rows]


async def has_claims(conn: Conn, campaign_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM claims WHERE campaign_id = $1)", campaign_id
        )
    )
