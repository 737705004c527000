"""A citizen's participation (rule X1): revoked by the city, with a reason, audited."""

from __future__ import annotations

from dataclasses import dataclass

from server.auth import Principal
from server.db import access
from server.db import admin as db
from server.services.ports import Ports
from shared.errors import NotFound
from shared.idnumber import hash_id_number, mask_id_number, validate_id_number


@dataclass(frozen=True, slots=True)
class RevokeCitizen:
    id_number: str  # as typed; validated here (rule E1)
    reason: str


@dataclass(frozen=True, slots=True)
class Revoked:
    masked_id: str
    vouchers_clawed_back: int


async def revoke(ports: Ports, me: Principal, cmd: RevokeCitizen) -> Revoked:
    """Rule X1: revoke a citizen's participation and claw back unused vouchers, audited; no
    new QR code, claim or redemption from then on, in any process."""
    now = ports.clock()
    number = validate_id_number(cmd.id_number, now.astimezone(ports.tz).date())  # rule E1
    digest = hash_id_number(number, ports.settings.id_hash_key)  # rule X3
    async with ports.pool.acquire() as conn, conn.transaction():
        citizen, clawed_back = await db.revoke_citizen(
            conn, digest, mask_id_number(number), cmd.reason, now
        )  # an ID number without a citizen row yet gets one, already revoked
        if citizen is None:
            raise NotFound("no active participant with this ID number")
        change = await access.record(conn, "citizen", citizen.id, blocked=True)
        await db.audit(
            conn,
            actor=me.actor,
            action="citizen.revoke",
            subject=f"citizen:{citizen.subject}",
            reason=cmd.reason,
            details={"vouchers_clawed_back": clawed_back, "masked_id": citizen.id_masked},
        )
    ports.publish([change])
    return Revoked(citizen.id_masked, clawed_back)
