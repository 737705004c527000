"""Loading a campaign file while the server runs (rule C1)."""

from __future__ import annotations

from dataclasses import dataclass

from server.auth import Principal
from server.db import admin as audit_db
from server.db import campaigns as db
from server.services.ports import Ports
from shared.campaign import Campaign, load_campaign_text
from shared.errors import CampaignInUse, InvalidRequest


@dataclass(frozen=True, slots=True)
class Loaded:
    campaign: Campaign
    replaced: bool  # an earlier file of the same id was replaced


async def load(ports: Ports, me: Principal, text: str, *, source: str = "upload") -> Loaded:
    """Rule C1: a campaign is a file, validated with every problem named; a campaign with
    claims keeps the rules its vouchers were issued under (``campaign_in_use``). It serves at
    once in this process; other server processes load it from the ledger when they start."""
    campaign = load_campaign_text(text, source=source)
    if campaign.timezone != str(ports.tz):
        raise InvalidRequest(f"campaigns of this server use {ports.tz}", field="timezone")
    known = ports.campaigns.get(campaign.id)
    async with ports.pool.acquire() as conn, conn.transaction():
        replaced = known is not None and known != campaign
        if replaced and await db.has_claims(conn, campaign.id):
            raise CampaignInUse(campaign_id=campaign.id)
        await db.upsert(conn, campaign)
        await audit_db.audit(
            conn,
            actor=me.actor,
            action="campaign.load",
            subject=f"campaign:{campaign.id}",
            details={"replaced": replaced},
        )
    ports.campaigns[campaign.id] = campaign
    return Loaded(campaign, replaced)
