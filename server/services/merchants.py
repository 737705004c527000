"""Merchants and their terminals (rules U1, X1, X2). District operators act in their own
district only; every change is audited in its own transaction, and a suspension or a revoked
terminal is recorded for every process (``access_changes``) and told to this one at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from server.auth import Principal, Role, hash_terminal_secret, new_terminal_secret
from server.db import access, parties
from server.db import admin as db
from server.db.admin import Merchant
from server.db.parties import MerchantSettings
from server.services.ports import Ports
from server.services.scope import all_district_codes, require_district
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound


@dataclass(frozen=True, slots=True)
class AddMerchant:
    name: str
    district: str  # a code, short name or full name
    kind: str = "shop"  # or "developer": a sales office of the listing pool (rule T4)


# the merchant's flag -> (its column, the audit action's name)
Flag = Literal["admitted", "permitted", "suspended"]
_FLAGS: dict[Flag, tuple[str, str]] = {
    # rule U1: the commerce bureau (the city's team); rule T4: a developer, the housing bureau
    "admitted": ("admitted", "admit"),
    "permitted": ("permitted", "permit"),  # rule U1: the district
    "suspended": ("status", "suspend"),  # rule X1
}


@dataclass(frozen=True, slots=True)
class ChangeMerchant:
    merchant_id: int
    flag: Flag
    value: bool
    reason: str


@dataclass(frozen=True, slots=True)
class IssueTerminal:
    merchant_id: int
    label: str


@dataclass(frozen=True, slots=True)
class IssuedTerminal:
    terminal_id: int
    merchant_id: int
    label: str
    secret: str  # shown once; only its hash is stored (rule X2)


@dataclass(frozen=True, slots=True)
class RevokeTerminal:
    terminal_id: int
    reason: str


async def merchants(
    ports: Ports, me: Principal, district: str | None, kind: str | None = None
) -> list[Merchant]:
    """Every merchant, or a district's, of a kind; a district operator sees their own
    district only, a housing bureau the developers (of its district, if it has one)."""
    if me.role is Role.DISTRICT_OPERATOR or me.district is not None:
        district = me.district
    if me.role is Role.HOUSING_BUREAU:
        kind = DEVELOPER
    async with ports.pool.acquire() as conn:
        return await db.merchants(conn, district, kind)


DEVELOPER = "developer"


def check_seller_role(me: Principal, kind: str, flag: str) -> None:
    """Rules U1, T4, X1: a developer is admitted by the housing bureau, a shop by the
    commerce bureau (the city's team); the housing bureau acts on developers only."""
    if me.role is Role.HOUSING_BUREAU and kind != DEVELOPER:
        raise Forbidden("the housing bureau acts on developers only")
    if flag == "admitted" and kind == DEVELOPER and me.role is not Role.HOUSING_BUREAU:
        raise Forbidden("a developer is admitted by the housing bureau (rule T4)")
    if flag == "admitted" and kind != DEVELOPER and me.role is not Role.CITY_OPERATOR:
        raise Forbidden("a shop is admitted by the commerce bureau (rule U1)")


async def add_merchant(ports: Ports, me: Principal, cmd: AddMerchant) -> Merchant:
    """A merchant starts not admitted and without permission (rule U1); the same name in the
    same district again is refused (``conflict``, details.reason ``merchant_exists``)."""
    district = all_district_codes(ports).get(cmd.district)
    if district is None:
        raise InvalidRequest("unknown district", field="district")
    if cmd.kind not in ("shop", DEVELOPER):
        raise InvalidRequest("kind is shop or developer", field="kind")
    check_seller_role(me, cmd.kind, "")
    require_district(me, district)
    async with ports.pool.acquire() as conn, conn.transaction():
        existing = await db.same_merchant(conn, cmd.name, district)
        if existing is not None:
            # rule U1: one shop, one ledger. The code stays the generic "conflict" (every code
            # needs the terminal's words, terminal/i18n.py); details.reason says which.
            raise Conflict(
                "A merchant of this name is already registered in this district.",
                reason="merchant_exists",
                merchant_id=existing,
            )
        merchant_id = await parties.create_merchant(
            conn, name=cmd.name, district=district, admitted=False, permitted=False, kind=cmd.kind
        )
        await db.audit(
            conn,
            actor=me.actor,
            action="merchant.add",
            subject=f"merchant:{merchant_id}",
            details={"name": cmd.name, "district": district, "kind": cmd.kind},
        )
        merchant = await db.merchant_for_update(conn, merchant_id)
    assert merchant is not None
    return merchant


async def change_merchant(ports: Ports, me: Principal, cmd: ChangeMerchant) -> Merchant:
    """Rules U1, X1: admit, permit or suspend (or undo it), with a reason; a suspension bites
    on every route at once."""
    column, action = _FLAGS[cmd.flag]
    change = None
    async with ports.pool.acquire() as conn, conn.transaction():
        found = await db.merchant_for_update(conn, cmd.merchant_id)
        if found is None:
            raise NotFound("no such merchant")
        check_seller_role(me, found.kind, cmd.flag)  # rules U1, T4
        require_district(me, found.district)
        stored: bool | str = cmd.value
        if column == "status":
            stored = "suspended" if cmd.value else "active"
        merchant = await db.set_merchant(conn, cmd.merchant_id, column, stored)
        if column == "status":  # rule X1: a suspension bites on every route at once
            change = await access.record(conn, "merchant", cmd.merchant_id, blocked=cmd.value)
        await db.audit(
            conn,
            actor=me.actor,
            action=f"merchant.{action}",
            subject=f"merchant:{cmd.merchant_id}",
            reason=cmd.reason,
            details={cmd.flag: cmd.value},
        )
    if change is not None:
        ports.publish([change])
    return merchant


async def issue_terminal(ports: Ports, me: Principal, cmd: IssueTerminal) -> IssuedTerminal:
    """Rule X2: a terminal and its credential, shown once: only its hash is stored."""
    secret = new_terminal_secret()
    async with ports.pool.acquire() as conn, conn.transaction():
        merchant = await db.merchant_for_update(conn, cmd.merchant_id)
        if merchant is None:
            raise NotFound("no such merchant")
        require_district(me, merchant.district)
        terminal_id = await parties.create_terminal(
            conn,
            merchant_id=cmd.merchant_id,
            label=cmd.label,
            credential_hash=hash_terminal_secret(secret),
        )
        await db.audit(
            conn,
            actor=me.actor,
            action="terminal.issue",
            subject=f"terminal:{terminal_id}",
            details={"merchant_id": cmd.merchant_id, "label": cmd.label},
        )
    return IssuedTerminal(terminal_id, cmd.merchant_id, cmd.label, secret)


async def revoke_terminal(ports: Ports, me: Principal, cmd: RevokeTerminal) -> None:
    """Rule U1: a revoked terminal is refused at once, whatever token it holds. Revoking a
    revoked terminal changes nothing."""
    change = None
    async with ports.pool.acquire() as conn, conn.transaction():
        terminal = await db.terminal_for_update(conn, cmd.terminal_id)
        if terminal is None:
            raise NotFound("no such terminal")
        require_district(me, terminal.district)
        if terminal.status == "active":
            await db.revoke_terminal(conn, cmd.terminal_id, ports.clock())
            change = await access.record(conn, "terminal", cmd.terminal_id, blocked=True)
            await db.audit(
                conn,
                actor=me.actor,
                action="terminal.revoke",
                subject=f"terminal:{cmd.terminal_id}",
                reason=cmd.reason,
            )
    if change is not None:
        ports.publish([change])  # rule U1: refused at once, whatever token


# --- the merchant's own settings (rule U4 [choice], issue 11 item 5) ------------------------


@dataclass(frozen=True, slots=True)
class ChangeSettings:
    """A merchant's settings to change; None leaves one as it is."""

    merchant_id: int
    reason: str
    receipts_per_till: bool | None = None
    refund_needs_manager: bool | None = None


def _own_or_district(me: Principal, found: MerchantSettings | None) -> MerchantSettings:
    """Rule X2: a merchant's manager and tills see their own merchant only (another does not
    exist for them); a district operator acts in their own district."""
    if found is None or (
        me.role in (Role.MERCHANT_MANAGER, Role.CASHIER) and me.merchant_id != found.merchant_id
    ):
        raise NotFound("no such merchant")
    require_district(me, found.district)
    return found


async def settings(ports: Ports, me: Principal, merchant_id: int) -> MerchantSettings:
    async with ports.pool.acquire() as conn:
        return _own_or_district(me, await parties.merchant_settings(conn, merchant_id))


async def change_settings(ports: Ports, me: Principal, cmd: ChangeSettings) -> MerchantSettings:
    """Receipts numbered per till (rule U4: from then on a bill is also its till's; bills
    already made keep the scope they were made under) and refunds approved by a manager
    (issue 11 item 5), changed with a reason, audited."""
    async with ports.pool.acquire() as conn, conn.transaction():
        found = await parties.merchant_settings(conn, cmd.merchant_id, for_update=True)
        now = _own_or_district(me, found)
        per_till = now.receipts_per_till if cmd.receipts_per_till is None else cmd.receipts_per_till
        needs_manager = cmd.refund_needs_manager
        if needs_manager is None:
            needs_manager = now.refund_needs_manager
        changed = await parties.set_merchant_settings(
            conn, cmd.merchant_id, receipts_per_till=per_till, refund_needs_manager=needs_manager
        )
        await db.audit(
            conn,
            actor=me.actor,
            action="merchant.settings",
            subject=f"merchant:{cmd.merchant_id}",
            reason=cmd.reason,
            details={"receipts_per_till": per_till, "refund_needs_manager": needs_manager},
        )
    return changed
