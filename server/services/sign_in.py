"""What signing in reads and writes (rule X2, X3). The credentials themselves (the city app's
assertion, a terminal's secret, a password) are checked at the edge (server/handlers/people.py,
server/auth.py), between the guess limiter's steps (server/throttle.py)."""

from __future__ import annotations

from datetime import datetime

from server.db import claims as db
from server.db import parties
from server.db.claims import Citizen
from server.db.parties import StaffSignIn, TerminalSignIn
from server.services.ports import Ports
from shared.idnumber import hash_id_number, mask_id_number


async def citizen(ports: Ports, id_number: str) -> Citizen:
    """The citizen for a validated ID number, created on first sight; only its keyed hash and
    masked form are stored (rule X3)."""
    digest = hash_id_number(id_number, ports.settings.id_hash_key)
    async with ports.pool.acquire() as conn:
        return await db.upsert_citizen(conn, digest, mask_id_number(id_number))


async def terminal(ports: Ports, terminal_id: int) -> TerminalSignIn | None:
    async with ports.pool.acquire() as conn:
        return await parties.terminal_with_merchant(conn, terminal_id)


async def staff(ports: Ports, username: str) -> StaffSignIn | None:
    async with ports.pool.acquire() as conn:
        return await parties.account(conn, username)


async def use_nonce(ports: Ports, nonce: bytes, expires_at: datetime) -> bool:
    """Rule X2: the wallet sign-in's nonce is good for one sign-in; False: already used."""
    async with ports.pool.acquire() as conn:
        return await parties.use_sign_in_nonce(conn, nonce, expires_at)
