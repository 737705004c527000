"""Operators' changes: merchants (U1, X1), terminals (X2), citizens' participation (X1), staff
accounts (X2), the audit log. District operators act in their own district only; every change
is audited. A revocation, suspension or disabling is written with an ``access_changes`` row in
the same transaction and applied to this process's view as soon as it commits; every other
process has it within about a second (server/access.py)."""

from __future__ import annotations

import json
import re
import secrets
from datetime import timedelta
from typing import Any

import asyncpg
from aiohttp import web

from server import access
from server.access import ACCESS_VIEW
from server.auth import (
    Principal,
    Role,
    hash_password_off_loop,
    new_terminal_credential,
    principal_of,
    requires,
)
from server.db import admin as db
from server.db import parties
from server.handlers.operators import district_names
from server.qrcodes import qr_svg
from server.schemas import AccountsQuery, AuditQuery, MerchantsQuery
from server.web import (
    CLOCK,
    PG,
    SETTINGS,
    TZ,
    allowed_fields,
    get_str,
    path_id,
    read_json,
    read_query,
)
from shared import rules
from shared.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    OwnAccount,
    PasswordTooShort,
    UsernameInvalid,
    UsernameTaken,
)
from shared.idnumber import hash_id_number, mask_id_number, validate_id_number

OPERATORS = (Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR)


def require_district(me: Principal, district: str) -> None:
    """Rule X2: a district operator acts in their own district only."""
    if me.role is Role.DISTRICT_OPERATOR and me.district != district:
        raise Forbidden("this merchant is in another district", district=district)


def _merchant(row: Any, tz: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "district": row["district"],
        "admitted": row["admitted"],
        "permitted": row["permitted"],
        "status": row["status"],
        "created_at": row["created_at"].astimezone(tz).isoformat(),
        **({"active_terminals": row["active_terminals"]} if "active_terminals" in row else {}),
    }


@requires(*OPERATORS, Role.AUDITOR)
async def list_merchants(request: web.Request) -> web.Response:
    me = principal_of(request)
    asked = read_query(request, MerchantsQuery).district
    district = me.district if me.role is Role.DISTRICT_OPERATOR else asked
    async with request.app[PG].acquire() as conn:
        rows = await db.merchants(conn, district)
    return web.json_response({"merchants": [_merchant(r, request.app[TZ]) for r in rows]})


@requires(*OPERATORS)
async def add_merchant(request: web.Request) -> web.Response:
    """A merchant starts not admitted and without permission (rule U1)."""
    me = principal_of(request)
    body = await read_json(request)
    allowed_fields(body, "name", "district")
    name = get_str(body, "name", max_len=200)
    district = district_names(request).get(get_str(body, "district", max_len=64))
    if district is None:
        raise InvalidRequest("unknown district", field="district")
    require_district(me, district)
    async with request.app[PG].acquire() as conn, conn.transaction():
        existing = await db.same_merchant(conn, name, district)
        if existing is not None:
            # rule U1: one shop, one ledger. The code stays the generic "conflict" (every code
            # needs the terminal's words, terminal/i18n.py); details.reason says which.
            raise Conflict(
                "A merchant of this name is already registered in this district.",
                reason="merchant_exists",
                merchant_id=existing,
            )
        merchant_id = await parties.create_merchant(
            conn, name=name, district=district, admitted=False, permitted=False
        )
        await db.audit(
            conn,
            actor=me.actor,
            action="merchant.add",
            subject=f"merchant:{merchant_id}",
            details={"name": name, "district": district},
        )
        row = await db.merchant_for_update(conn, merchant_id)
    return web.json_response(_merchant(row, request.app[TZ]), status=201)


async def _change_merchant(
    request: web.Request, *, field: str, column: str, roles_note: str
) -> web.Response:
    me = principal_of(request)
    merchant_id = path_id(request, "merchant_id", "no such merchant")
    body = await read_json(request)
    allowed_fields(body, field, "reason")
    value = body.get(field)
    if type(value) is not bool:
        raise InvalidRequest(f"{field} must be true or false", field=field)
    reason = get_str(body, "reason", max_len=500)
    async with request.app[PG].acquire() as conn, conn.transaction():
        row = await db.merchant_for_update(conn, merchant_id)
        if row is None:
            raise NotFound("no such merchant")
        require_district(me, row["district"])
        stored: Any = value
        if column == "status":
            stored = "suspended" if value else "active"
        row = await db.set_merchant(conn, merchant_id, column, stored)
        change = None
        if column == "status":  # rule X1: a suspension bites on every route at once
            change = await access.record(conn, "merchant", merchant_id, blocked=bool(value))
        await db.audit(
            conn,
            actor=me.actor,
            action=f"merchant.{roles_note}",
            subject=f"merchant:{merchant_id}",
            reason=reason,
            details={field: value},
        )
    if change is not None:
        request.app[ACCESS_VIEW].apply([change])
    return web.json_response(_merchant(row, request.app[TZ]))


@requires(Role.CITY_OPERATOR)
async def admit_merchant(request: web.Request) -> web.Response:
    """Rule U1: the commerce bureau (the city's team) admits or un-admits a merchant."""
    return await _change_merchant(request, field="admitted", column="admitted", roles_note="admit")


@requires(*OPERATORS)
async def permit_merchant(request: web.Request) -> web.Response:
    """Rule U1: the district grants or withdraws redemption permission."""
    return await _change_merchant(
        request, field="permitted", column="permitted", roles_note="permit"
    )


@requires(*OPERATORS)
async def suspend_merchant(request: web.Request) -> web.Response:
    """Rule X1: suspend (or lift the suspension of) a merchant, with a reason."""
    return await _change_merchant(request, field="suspended", column="status", roles_note="suspend")


@requires(*OPERATORS)
async def issue_terminal(request: web.Request) -> web.Response:
    """Rule X2: a terminal and its credential, shown once (also as a pairing QR code)."""
    me = principal_of(request)
    merchant_id = path_id(request, "merchant_id", "no such merchant")
    body = await read_json(request)
    allowed_fields(body, "label")
    label = get_str(body, "label", max_len=100)
    async with request.app[PG].acquire() as conn, conn.transaction():
        merchant = await db.merchant_for_update(conn, merchant_id)
        if merchant is None:
            raise NotFound("no such merchant")
        require_district(me, merchant["district"])
        credential = new_terminal_credential()  # rule X2: only its hash is stored
        terminal_id = await parties.create_terminal(
            conn, merchant_id=merchant_id, label=label, credential_hash=credential.credential_hash
        )
        await db.audit(
            conn,
            actor=me.actor,
            action="terminal.issue",
            subject=f"terminal:{terminal_id}",
            details={"merchant_id": merchant_id, "label": label},
        )
    pairing = {
        "server": str(request.url.origin()),
        "terminal_id": terminal_id,
        "terminal_secret": credential.secret,
    }
    return web.json_response(
        {
            "terminal_id": terminal_id,
            "merchant_id": merchant_id,
            "label": label,
            "pairing": pairing,
            "pairing_qr_svg": qr_svg(json.dumps(pairing)).decode(),
            "note": "the credential is shown once; only its hash is stored",
        },
        status=201,
        headers={"Cache-Control": "no-store"},
    )


@requires(*OPERATORS)
async def revoke_terminal(request: web.Request) -> web.Response:
    """Rule U1: a revoked terminal is refused at once, whatever token it holds."""
    me = principal_of(request)
    terminal_id = path_id(request, "terminal_id", "no such terminal")
    body = await read_json(request)
    allowed_fields(body, "reason")
    reason = get_str(body, "reason", max_len=500)
    async with request.app[PG].acquire() as conn, conn.transaction():
        row = await db.terminal_for_update(conn, terminal_id)
        if row is None:
            raise NotFound("no such terminal")
        require_district(me, row["district"])
        change = None
        if row["status"] == "active":
            await db.revoke_terminal(conn, terminal_id, request.app[CLOCK]())
            change = await access.record(conn, "terminal", terminal_id, blocked=True)
            await db.audit(
                conn,
                actor=me.actor,
                action="terminal.revoke",
                subject=f"terminal:{terminal_id}",
                reason=reason,
            )
    if change is not None:
        request.app[ACCESS_VIEW].apply([change])  # rule U1: refused at once, whatever token
    return web.json_response({"terminal_id": terminal_id, "status": "revoked"})


@requires(Role.CITY_OPERATOR)
async def revoke_citizen(request: web.Request) -> web.Response:
    """Rule X1: revoke a citizen's participation and claw back unused vouchers, audited."""
    me = principal_of(request)
    body = await read_json(request)
    allowed_fields(body, "id_number", "reason")
    reason = get_str(body, "reason", max_len=500)
    now = request.app[CLOCK]()
    number = validate_id_number(
        get_str(body, "id_number", max_len=18), now.astimezone(request.app[TZ]).date()
    )  # rule E1
    digest = hash_id_number(number, request.app[SETTINGS].id_hash_key)  # rule X3
    masked = mask_id_number(number)
    async with request.app[PG].acquire() as conn, conn.transaction():
        citizen, clawed_back = await db.revoke_citizen(conn, digest, masked, reason, now)
        if citizen is None:
            raise NotFound("no active participant with this ID number")
        change = await access.record(conn, "citizen", citizen["id"], blocked=True)
        await db.audit(
            conn,
            actor=me.actor,
            action="citizen.revoke",
            subject=f"citizen:{citizen['subject']}",
            reason=reason,
            details={"vouchers_clawed_back": clawed_back, "masked_id": citizen["id_masked"]},
        )
    request.app[ACCESS_VIEW].apply([change])  # no new QR code, claim or redemption
    return web.json_response(
        {
            "masked_id": citizen["id_masked"],
            "status": "revoked",
            "vouchers_clawed_back": clawed_back,
        }
    )


@requires(Role.CITY_OPERATOR, Role.AUDITOR)
async def audit_log(request: web.Request) -> web.Response:
    """Rule X1: the audit log, filtered by actor, action and local dates [from, to]."""
    tz = request.app[TZ]
    q = read_query(request, AuditQuery)  # dates within what the server serves
    start = rules.start_of_day(q.from_, tz) if q.from_ else None
    end = rules.start_of_day(q.to + timedelta(days=1), tz) if q.to else None
    async with request.app[PG].acquire() as conn:
        rows = await db.audit_entries(
            conn, actor=q.actor, action=q.action, start=start, end=end, limit=q.limit
        )
    return web.json_response(
        {
            "entries": [
                {
                    "id": r["id"],
                    "at": r["at"].astimezone(tz).isoformat(),
                    "actor": r["actor"],
                    "action": r["action"],
                    "subject": r["subject"],
                    "reason": r["reason"],
                    "details": json.loads(r["details"]),
                }
                for r in rows
            ]
        }
    )


# --- staff accounts (rule X2, issue 9 item 5) ----------------------------------------------

STAFF_ROLES = (
    Role.MERCHANT_MANAGER,
    Role.DISTRICT_OPERATOR,
    Role.CITY_OPERATOR,
    Role.AUDITOR,
)
ACCOUNT_MANAGERS = (Role.CITY_OPERATOR, Role.MERCHANT_MANAGER)
_USERNAME = re.compile(r"[a-z0-9][a-z0-9_.-]{2,63}")
MIN_PASSWORD = 12


def _account(row: Any, tz: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "username": row["username"],
        "role": row["role"],
        "district": row["district"],
        "merchant_id": row["merchant_id"],
        "status": row["status"],
        "created_at": row["created_at"].astimezone(tz).isoformat(),
    }


def _in_scope(me: Principal, row: Any) -> Any:
    """Rule X2: the city manages every account; a merchant manager only the manager accounts
    of their own shop (others look absent to them)."""
    if row is None or (
        me.role is Role.MERCHANT_MANAGER
        and (row["role"] != Role.MERCHANT_MANAGER or row["merchant_id"] != me.merchant_id)
    ):
        raise NotFound("no such account")
    return row


def _not_own(me: Principal, row: Any) -> None:
    if row["id"] == me.account_id:
        raise OwnAccount()


def _password(body: dict[str, Any]) -> str | None:
    """A password given by the manager (12 to 200 characters), or None to generate one."""
    if body.get("password") is None:
        return None
    password = get_str(body, "password", max_len=200)
    if len(password) < MIN_PASSWORD:
        raise PasswordTooShort(field="password")
    return password


async def _scope(
    request: web.Request, conn: Any, me: Principal, body: dict[str, Any]
) -> tuple[Role, str | None, int | None]:
    """The role, district and merchant an account is to have, checked (rule X2)."""
    raw_role = get_str(body, "role", max_len=32)
    try:
        role = Role(raw_role)
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
    if role is Role.DISTRICT_OPERATOR:
        district = district_names(request).get(get_str(body, "district", max_len=64))
        if district is None:
            raise InvalidRequest("unknown district", field="district")
    elif body.get("district") is not None:
        raise InvalidRequest("only a district operator has a district", field="district")
    if role is Role.MERCHANT_MANAGER:
        given = body.get("merchant_id", me.merchant_id)
        if type(given) is not int or not 0 < given < 2**63:
            raise InvalidRequest("merchant_id must name a merchant", field="merchant_id")
        if me.role is Role.MERCHANT_MANAGER and given != me.merchant_id:
            raise Forbidden("a merchant manager makes only manager accounts of their own shop")
        if await parties.merchant(conn, given) is None:
            raise InvalidRequest("unknown merchant", field="merchant_id")
        merchant_id = given
    elif body.get("merchant_id") is not None:
        raise InvalidRequest("only a merchant manager has a merchant", field="merchant_id")
    return role, district, merchant_id


def _audit_details(row: Any) -> dict[str, Any]:
    return {
        "account_id": row["id"],
        "role": row["role"],
        "district": row["district"],
        "merchant_id": row["merchant_id"],
        "status": row["status"],
    }


def _shown_once(row: Any, tz: Any, password: str | None, status: int = 200) -> web.Response:
    body = _account(row, tz)
    if password is not None:
        body["password"] = password
        body["note"] = "the password is shown once; only its hash is stored"
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


@requires(*ACCOUNT_MANAGERS, Role.AUDITOR)
async def list_accounts(request: web.Request) -> web.Response:
    """Rule X2: the city and the auditor see every account, a merchant manager their shop's
    manager accounts."""
    me = principal_of(request)
    q = read_query(request, AccountsQuery)
    role, username = q.role, q.username
    if username is not None and not _USERNAME.fullmatch(username):
        return web.json_response({"accounts": []})  # no account has such a name
    own_shop = me.role is Role.MERCHANT_MANAGER
    async with request.app[PG].acquire() as conn:
        rows = await db.accounts(
            conn,
            merchant_id=me.merchant_id if own_shop else None,
            role=Role.MERCHANT_MANAGER if own_shop else role,
            username=username,
        )
    return web.json_response({"accounts": [_account(r, request.app[TZ]) for r in rows]})


@requires(*ACCOUNT_MANAGERS)
async def add_account(request: web.Request) -> web.Response:
    """Rule X2: a staff account, with a password given (12+ characters) or generated and
    shown once; audited."""
    me = principal_of(request)
    body = await read_json(request)
    allowed_fields(body, "username", "role", "district", "merchant_id", "password", "reason")
    username = body.get("username")
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise UsernameInvalid(field="username")
    reason = get_str(body, "reason", max_len=500)
    password = _password(body)
    shown = None if password is not None else secrets.token_urlsafe(18)
    credential = await hash_password_off_loop(password or shown or "")
    async with request.app[PG].acquire() as conn, conn.transaction():
        role, district, merchant_id = await _scope(request, conn, me, body)
        try:
            async with conn.transaction():
                account_id = await parties.create_account(
                    conn,
                    username=username,
                    role=role,
                    credential_hash=credential,
                    district=district,
                    merchant_id=merchant_id,
                )
        except asyncpg.UniqueViolationError as exc:
            raise UsernameTaken(username=username) from exc
        row = await db.account_by_id(conn, account_id)
        await db.audit(
            conn,
            actor=me.actor,
            action="account.create",
            subject=f"account:{username}",
            reason=reason,
            details=_audit_details(row),
        )
    return _shown_once(row, request.app[TZ], shown, status=201)


async def _change_account(
    request: web.Request, fields: tuple[str, ...]
) -> tuple[Principal, int, dict[str, Any], str]:
    me = principal_of(request)
    account_id = path_id(request, "account_id", "no such account")
    body = await read_json(request)
    allowed_fields(body, *fields, "reason")
    return me, account_id, body, get_str(body, "reason", max_len=500)


async def _commit_change(
    request: web.Request, conn: Any, me: Principal, row: Any, action: str, reason: str
) -> access.Change:
    """Audit the change and record the account's new state for every process (rule X1)."""
    await db.audit(
        conn,
        actor=me.actor,
        action=action,
        subject=f"account:{row['username']}",
        reason=reason,
        details=_audit_details(row),
    )
    return await access.record(
        conn,
        "account",
        row["id"],
        blocked=row["status"] == "disabled",
        generation=row["generation"],
    )


@requires(*ACCOUNT_MANAGERS)
async def set_account_status(request: web.Request) -> web.Response:
    """Rules X1, X2: disable an account (refused at once on every route, whatever token it
    holds) or enable it again (it signs in afresh; the tokens of before stay dead)."""
    me, account_id, body, reason = await _change_account(request, ("status",))
    status = body.get("status")
    if status not in ("active", "disabled"):
        raise InvalidRequest("status is active or disabled", field="status")
    async with request.app[PG].acquire() as conn, conn.transaction():
        row = _in_scope(me, await db.account_for_update(conn, account_id))
        _not_own(me, row)
        row = await db.set_account_status(conn, account_id, status)
        action = "account.disable" if status == "disabled" else "account.enable"
        change = await _commit_change(request, conn, me, row, action, reason)
    request.app[ACCESS_VIEW].apply([change])
    return web.json_response(_account(row, request.app[TZ]))


@requires(Role.CITY_OPERATOR)
async def set_account_role(request: web.Request) -> web.Response:
    """Rule X2: a new role (with its district or merchant); the old tokens end at once."""
    me, account_id, body, reason = await _change_account(
        request, ("role", "district", "merchant_id")
    )
    async with request.app[PG].acquire() as conn, conn.transaction():
        row = _in_scope(me, await db.account_for_update(conn, account_id))
        _not_own(me, row)
        role, district, merchant_id = await _scope(request, conn, me, body)
        row = await db.set_account_role(
            conn, account_id, role=role, district=district, merchant_id=merchant_id
        )
        change = await _commit_change(request, conn, me, row, "account.role", reason)
    request.app[ACCESS_VIEW].apply([change])
    return web.json_response(_account(row, request.app[TZ]))


@requires(*ACCOUNT_MANAGERS)
async def reset_account_password(request: web.Request) -> web.Response:
    """Rule X2: a new password, given or generated and shown once; the account's sessions
    end at once (its tokens carry the old generation)."""
    me, account_id, body, reason = await _change_account(request, ("password",))
    password = _password(body)
    shown = None if password is not None else secrets.token_urlsafe(18)
    credential = await hash_password_off_loop(password or shown or "")
    async with request.app[PG].acquire() as conn, conn.transaction():
        row = _in_scope(me, await db.account_for_update(conn, account_id))
        _not_own(me, row)
        row = await db.set_account_password(conn, account_id, credential)
        change = await _commit_change(request, conn, me, row, "account.password_reset", reason)
    request.app[ACCESS_VIEW].apply([change])
    return _shown_once(row, request.app[TZ], shown)
