"""What the citizen's wallet page reads beyond the wallet itself: where the vouchers were
used (shop, time, how many), also for the page's live poll after a till redeemed the code."""

from __future__ import annotations

from server.db import pages as db
from server.db.pages import CitizenRedemption
from server.services.ports import Ports


async def redemptions(ports: Ports, citizen_id: int, after: int = 0) -> list[CitizenRedemption]:
    """The citizen's redemptions, newest first; with ``after``, only those made since."""
    async with ports.pool.acquire() as conn:
        return await db.citizen_redemptions(conn, citizen_id, after)


async def masked_id(ports: Ports, citizen_id: int) -> str:
    """The citizen's ID number as stored: masked (rule X3); no page ever shows more."""
    async with ports.pool.acquire() as conn:
        return await db.masked_id(conn, citizen_id)
