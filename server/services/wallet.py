"""The citizen's wallet and the QR code that carries it to the till (rules U5, V2, X1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.db import claims as db
from server.db import parties
from server.db.claims import ClaimSummary, HeldVoucher
from server.db.parties import Participation
from server.services.ports import Ports
from shared import rules
from shared.tokens import issue_qr_token

STATES = ("available", "used", "expired", "revoked")


@dataclass(frozen=True, slots=True)
class Wallet:
    vouchers: list[tuple[HeldVoucher, str]]  # each with its state, one of STATES
    counts: dict[str, int]  # vouchers by state
    claims: list[ClaimSummary]
    participation: Participation | None  # rule X1: None reads as active


@dataclass(frozen=True, slots=True)
class QrCode:
    token: str
    expires_at: datetime


def voucher_state(voucher: HeldVoucher, now: datetime) -> str:
    if voucher.status == "available" and rules.is_expired(voucher.expires_at, now):
        return "expired"  # rule V2: void, never redeemable
    return {"available": "available", "redeemed": "used", "revoked": "revoked"}[voucher.status]


async def wallet(ports: Ports, citizen_id: int) -> Wallet:
    """The citizen's vouchers and claims; a revoked citizen still reads it, with the
    revocation and its reason (rule X1)."""
    now = ports.clock()
    async with ports.pool.acquire() as conn:
        held = await db.wallet(conn, citizen_id)
        claims = await db.claims_of(conn, citizen_id)
        standing = await parties.participation(conn, citizen_id)
    vouchers = [(v, voucher_state(v, now)) for v in held]
    counts = dict.fromkeys(STATES, 0)
    for _, state in vouchers:
        counts[state] += 1
    return Wallet(vouchers, counts, claims, standing)


def mint_qr(ports: Ports, citizen_id: int) -> QrCode:
    """Rule U5: a fresh signed, short-lived, single-use code for the citizen (the shortest
    lifetime any loaded campaign or house-ticket programme allows), under the current key."""
    ttls = [c.qr_token_ttl_seconds for c in ports.campaigns.values()]
    ttl = min(ttls + [p.qr_token_ttl_seconds for p in ports.programmes.values()])
    token, claims = issue_qr_token(
        key=ports.settings.qr_keys[0], holder=citizen_id, now=ports.clock(), ttl_seconds=ttl
    )
    return QrCode(token, claims.expires_at)
