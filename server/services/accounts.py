"""Staff accounts (rule X2, X1): the city manages every account, a merchant manager the manager
accounts of their own shop. Every change is audited and ends the account's old tokens where it
must (a disabled account, a new role, a reset password), in every process."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from server.auth import Principal, Role, hash_password_off_loop
from server.db import Conn, access, parties
from server.db import admin as db
from server.db.admin import Account
from server.services.ports import Ports
from server.services.scope import all_district_codes
from shared.errors import (
    Forbidden,
    InvalidRequest,
    NotFound,
    OwnAccount,
    PasswordTooShort,
    UsernameInvalid,
)

STAFF_ROLES = (
    Role.MERCHANT_MANAGER,
    Role.DISTRICT_OPERATOR,
    Role.CITY_OPERATOR,
    Role.AUDITOR,
    Role.TICKET_ISSUER,  # issue 13, rule T1
    Role.HOUSING_BUREAU,  # rule T4
)
# rule X2: the roles held in one district (T1: an issuer's tickets are its district's); the
# housing bureau may name one or none (the city's bureau) [choice]
DISTRICT_ROLES = (Role.DISTRICT_OPERATOR, Role.TICKET_ISSUER)
USERNAME = re.compile(r"[a-z0-9][a-z0-9_.-]{2,63}")
MIN_PASSWORD = 12


@dataclass(frozen=True, slots=True)
class Scope:
    """The role an account is to have, with the district or merchant the body named (a
    merchant manager's shop defaults to the caller's own)."""

    role: str
    district: str | None = None
    merchant_id: int | None = None


@dataclass(frozen=True, slots=True)
class AddAccount:
    username: str
    scope: Scope
    reason: str
    password: str | None = None  # None: generate one, shown once


@dataclass(frozen=True, slots=True)
class SetStatus:
    account_id: int
    status: str  # active | disabled
    reason: str


@dataclass(frozen=True, slots=True)
class SetRole:
    account_id: int
    scope: Scope
    reason: str


@dataclass(frozen=True, slots=True)
class ResetPassword:
    account_id: int
    reason: str
    password: str | None = None  # None: generate one, shown once


@dataclass(frozen=True, slots=True)
class Changed:
    account: Account
    password: str | None = None  # a generated password, shown once


async def accounts(
    ports: Ports, me: Principal, *, role: str | None, username: str | None
) -> list[Account]:
    """Rule X2: the city and the auditor see every account, a merchant manager their shop's
    manager accounts."""
    if username is not None and not USERNAME.fullmatch(username):
        return []  # no account has such a name
    own_shop = me.role is Role.MERCHANT_MANAGER
    async with ports.pool.acquire() as conn:
        return await db.accounts(
            conn,
            merchant_id=me.merchant_id if own_shop else None,
            role=Role.MERCHANT_MANAGER if own_shop else role,
            username=username,
        )


def _password(given: str | None) -> tuple[str, str | None]:
    """The password to store and the one to show once (None when the manager gave it)."""
    if given is None:
        shown = secrets.token_urlsafe(18)
        return shown, shown
    if len(given) < MIN_PASSWORD:
        raise PasswordTooShort(field="password")
    return given, None


async def _scope(
    ports: Ports, conn: Conn, me: Principal, scope: Scope
) -> tuple[Role, str | None, int | None]:
    """The role, district and merchant an account is to have, checked (rule X2)."""
    try:
        role = Role(scope.role)
    except ValueError:
        role = Role.CITIZEN  # refused just below
    if role not in STAFF_ROLES:
        raise InvalidRequest(
            f"role is one of {', '.join(STAFF_ROLES)}", field="role", roles=list(STAFF_ROLES)
        )
    if me.role is Role.MERCHANT_MANAGER and role is not Role.MERCHANT_MANAGER:
        raise Forbidden("a merchant manager makes only manager accounts of their own shop")
    district: str | None = None
    merchant_id: int | None = None
    if role in DISTRICT_ROLES or (role is Role.HOUSING_BUREAU and scope.district is not None):
        name = (scope.district or "").strip()
        if not name:
            raise InvalidRequest("district must be a non-empty string", field="district")
        district = all_district_codes(ports).get(name)
        if district is None:
            raise InvalidRequest("unknown district", field="district")
    elif scope.district is not None:
        raise InvalidRequest(
            "only a district operator, an issuer or a housing bureau has a district",
            field="district",
        )
    if role is Role.MERCHANT_MANAGER:
        given = scope.merchant_id if scope.merchant_id is not None else me.merchant_id
        if given is None:
            raise InvalidRequest("merchant_id must name a merchant", field="merchant_id")
        if me.role is Role.MERCHANT_MANAGER and given != me.merchant_id:
            raise Forbidden("a merchant manager makes only manager accounts of their own shop")
        if not await parties.merchant_exists(conn, given):
            raise InvalidRequest("unknown merchant", field="merchant_id")
        merchant_id = given
    elif scope.merchant_id is not None:
        raise InvalidRequest("only a merchant manager has a merchant", field="merchant_id")
    return role, district, merchant_id


def _audit_details(account: Account) -> dict[str, object]:
    return {
        "account_id": account.id,
        "role": account.role,
        "district": account.district,
        "merchant_id": account.merchant_id,
        "status": account.status,
    }


async def add(ports: Ports, me: Principal, cmd: AddAccount) -> Changed:
    """Rule X2: a staff account, with a password given (12+ characters) or generated and
    shown once; audited. ``username_taken`` if another account has the name."""
    if not USERNAME.fullmatch(cmd.username):
        raise UsernameInvalid(field="username")
    password, shown = _password(cmd.password)
    credential = await hash_password_off_loop(password)
    async with ports.pool.acquire() as conn, conn.transaction():
        role, district, merchant_id = await _scope(ports, conn, me, cmd.scope)
        account_id = await parties.create_account(
            conn,
            username=cmd.username,
            role=role,
            credential_hash=credential,
            district=district,
            merchant_id=merchant_id,
        )
        account = await db.account_by_id(conn, account_id)
        assert account is not None
        await db.audit(
            conn,
            actor=me.actor,
            action="account.create",
            subject=f"account:{cmd.username}",
            reason=cmd.reason,
            details=_audit_details(account),
        )
    return Changed(account, shown)


async def _theirs(conn: Conn, me: Principal, account_id: int) -> Account:
    """Rule X2: the account, locked, if the caller manages it and it is not their own; a
    merchant manager finds only the manager accounts of their own shop (others look absent)."""
    account = await db.account_for_update(conn, account_id)
    if account is None or (
        me.role is Role.MERCHANT_MANAGER
        and (account.role != Role.MERCHANT_MANAGER or account.merchant_id != me.merchant_id)
    ):
        raise NotFound("no such account")
    if account.id == me.account_id:
        raise OwnAccount()
    return account


async def _commit(
    conn: Conn, me: Principal, account: Account, action: str, reason: str
) -> access.Change:
    """Audit the change and record the account's new state for every process (rule X1)."""
    await db.audit(
        conn,
        actor=me.actor,
        action=action,
        subject=f"account:{account.username}",
        reason=reason,
        details=_audit_details(account),
    )
    return await access.record(
        conn,
        "account",
        account.id,
        blocked=account.status == "disabled",
        generation=account.generation,
    )


async def set_status(ports: Ports, me: Principal, cmd: SetStatus) -> Account:
    """Rules X1, X2: disable an account (refused at once on every route, whatever token it
    holds) or enable it again (it signs in afresh; the tokens of before stay dead)."""
    if cmd.status not in ("active", "disabled"):
        raise InvalidRequest("status is active or disabled", field="status")
    async with ports.pool.acquire() as conn, conn.transaction():
        await _theirs(conn, me, cmd.account_id)
        account = await db.set_account_status(conn, cmd.account_id, cmd.status)
        action = "account.disable" if cmd.status == "disabled" else "account.enable"
        change = await _commit(conn, me, account, action, cmd.reason)
    ports.publish([change])
    return account


async def set_role(ports: Ports, me: Principal, cmd: SetRole) -> Account:
    """Rule X2: a new role (with its district or merchant); the old tokens end at once."""
    async with ports.pool.acquire() as conn, conn.transaction():
        await _theirs(conn, me, cmd.account_id)
        role, district, merchant_id = await _scope(ports, conn, me, cmd.scope)
        account = await db.set_account_role(
            conn, cmd.account_id, role=role, district=district, merchant_id=merchant_id
        )
        change = await _commit(conn, me, account, "account.role", cmd.reason)
    ports.publish([change])
    return account


async def reset_password(ports: Ports, me: Principal, cmd: ResetPassword) -> Changed:
    """Rule X2: a new password, given or generated and shown once; the account's sessions
    end at once (its tokens carry the old generation)."""
    password, shown = _password(cmd.password)
    credential = await hash_password_off_loop(password)
    async with ports.pool.acquire() as conn, conn.transaction():
        await _theirs(conn, me, cmd.account_id)
        account = await db.set_account_password(conn, cmd.account_id, credential)
        change = await _commit(conn, me, account, "account.password_reset", cmd.reason)
    ports.publish([change])
    return Changed(account, shown)
