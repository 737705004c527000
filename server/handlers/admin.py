"""Operators' changes over HTTP: merchants (U1, X1), terminals (X2), citizens' participation
(X1), staff accounts (X2), the audit log. Each handler parses the request, calls one service
(server/services/merchants.py, citizens.py, accounts.py, audit.py) and shapes its answer."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from msgspec import UnsetType

from server.auth import Role, principal_of, requires
from server.db.admin import Account, Merchant
from server.db.parties import MerchantSettings
from server.handlers.ports import ports_of
from server.qrcodes import qr_svg
from server.schemas import (
    AccountPasswordRequest,
    AccountRoleRequest,
    AccountsQuery,
    AccountStatusRequest,
    AddAccountRequest,
    AddMerchantRequest,
    AdmissionRequest,
    AuditQuery,
    IssueTerminalRequest,
    MerchantSettingsRequest,
    MerchantsQuery,
    PermissionRequest,
    RevokeCitizenRequest,
    RevokeTerminalRequest,
    SuspensionRequest,
)
from server.services import accounts, audit, citizens, merchants
from server.web import TZ, path_id, read_body_as, read_query

OPERATORS = (Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR)
T = TypeVar("T")


def _merchant(merchant: Merchant, tz: Any) -> dict[str, Any]:
    return {
        "id": merchant.id,
        "name": merchant.name,
        "district": merchant.district,
        "admitted": merchant.admitted,
        "permitted": merchant.permitted,
        "status": merchant.status,
        "kind": merchant.kind,
        "created_at": merchant.created_at.astimezone(tz).isoformat(),
        **(
            {"active_terminals": merchant.active_terminals}
            if merchant.active_terminals is not None
            else {}
        ),
    }


@requires(*OPERATORS, Role.AUDITOR, Role.HOUSING_BUREAU)
async def list_merchants(request: web.Request) -> web.Response:
    asked = read_query(request, MerchantsQuery)
    found = await merchants.merchants(
        ports_of(request), principal_of(request), asked.district, asked.kind
    )
    return web.json_response({"merchants": [_merchant(m, request.app[TZ]) for m in found]})


@requires(*OPERATORS, Role.HOUSING_BUREAU)
async def add_merchant(request: web.Request) -> web.Response:
    """A merchant starts not admitted and without permission (rule U1); a developer (rule
    T4, issue 13) is a merchant of kind ``developer``."""
    body = await read_body_as(request, AddMerchantRequest)
    cmd = merchants.AddMerchant(name=body.name, district=body.district, kind=body.kind)
    merchant = await merchants.add_merchant(ports_of(request), principal_of(request), cmd)
    return web.json_response(_merchant(merchant, request.app[TZ]), status=201)


def _merchant_id(request: web.Request) -> int:
    return path_id(request, "merchant_id", "no such merchant")


async def _change_merchant(request: web.Request, cmd: merchants.ChangeMerchant) -> web.Response:
    merchant = await merchants.change_merchant(ports_of(request), principal_of(request), cmd)
    return web.json_response(_merchant(merchant, request.app[TZ]))


@requires(Role.CITY_OPERATOR, Role.HOUSING_BUREAU)
async def admit_merchant(request: web.Request) -> web.Response:
    """Rule U1: the commerce bureau (the city's team) admits or un-admits a shop; rule T4:
    the housing bureau a developer."""
    merchant_id = _merchant_id(request)
    body = await read_body_as(request, AdmissionRequest)
    cmd = merchants.ChangeMerchant(merchant_id, "admitted", body.admitted, body.reason)
    return await _change_merchant(request, cmd)


@requires(*OPERATORS)
async def permit_merchant(request: web.Request) -> web.Response:
    """Rule U1: the district grants or withdraws redemption permission."""
    merchant_id = _merchant_id(request)
    body = await read_body_as(request, PermissionRequest)
    cmd = merchants.ChangeMerchant(merchant_id, "permitted", body.permitted, body.reason)
    return await _change_merchant(request, cmd)


@requires(*OPERATORS, Role.HOUSING_BUREAU)
async def suspend_merchant(request: web.Request) -> web.Response:
    """Rule X1: suspend (or lift the suspension of) a merchant, with a reason (T4: the housing
    bureau, a developer)."""
    merchant_id = _merchant_id(request)
    body = await read_body_as(request, SuspensionRequest)
    cmd = merchants.ChangeMerchant(merchant_id, "suspended", body.suspended, body.reason)
    return await _change_merchant(request, cmd)


def _settings(found: MerchantSettings) -> dict[str, Any]:
    return {
        "merchant_id": found.merchant_id,
        "receipts_per_till": found.receipts_per_till,
        "refund_needs_manager": found.refund_needs_manager,
    }


@requires(*OPERATORS, Role.AUDITOR, Role.MERCHANT_MANAGER, Role.CASHIER)
async def merchant_settings(request: web.Request) -> web.Response:
    """A merchant's own choices: receipts numbered per till (rule U4), refunds approved by a
    manager (issue 11 item 5)."""
    merchant_id = _merchant_id(request)
    found = await merchants.settings(ports_of(request), principal_of(request), merchant_id)
    return web.json_response(_settings(found))


@requires(*OPERATORS, Role.MERCHANT_MANAGER)
async def change_merchant_settings(request: web.Request) -> web.Response:
    """Change a merchant's settings, with a reason for the audit log (rule X1)."""
    merchant_id = _merchant_id(request)
    body = await read_body_as(request, MerchantSettingsRequest)
    cmd = merchants.ChangeSettings(
        merchant_id,
        body.reason,
        receipts_per_till=_given(body.receipts_per_till),
        refund_needs_manager=_given(body.refund_needs_manager),
    )
    found = await merchants.change_settings(ports_of(request), principal_of(request), cmd)
    return web.json_response(_settings(found))


@requires(*OPERATORS)
async def issue_terminal(request: web.Request) -> web.Response:
    """Rule X2: a terminal and its credential, shown once (also as a pairing QR code)."""
    merchant_id = _merchant_id(request)
    body = await read_body_as(request, IssueTerminalRequest)
    cmd = merchants.IssueTerminal(merchant_id, body.label)
    issued = await merchants.issue_terminal(ports_of(request), principal_of(request), cmd)
    pairing = {
        "server": str(request.url.origin()),
        "terminal_id": issued.terminal_id,
        "terminal_secret": issued.secret,
    }
    return web.json_response(
        {
            "terminal_id": issued.terminal_id,
            "merchant_id": issued.merchant_id,
            "label": issued.label,
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
    terminal_id = path_id(request, "terminal_id", "no such terminal")
    body = await read_body_as(request, RevokeTerminalRequest)
    cmd = merchants.RevokeTerminal(terminal_id, body.reason)
    await merchants.revoke_terminal(ports_of(request), principal_of(request), cmd)
    return web.json_response({"terminal_id": terminal_id, "status": "revoked"})


@requires(Role.CITY_OPERATOR)
async def revoke_citizen(request: web.Request) -> web.Response:
    """Rule X1: revoke a citizen's participation and claw back unused vouchers, audited."""
    body = await read_body_as(request, RevokeCitizenRequest)
    cmd = citizens.RevokeCitizen(body.id_number, body.reason)
    revoked = await citizens.revoke(ports_of(request), principal_of(request), cmd)
    return web.json_response(
        {
            "masked_id": revoked.masked_id,
            "status": "revoked",
            "vouchers_clawed_back": revoked.vouchers_clawed_back,
        }
    )


@requires(Role.CITY_OPERATOR, Role.AUDITOR)
async def audit_log(request: web.Request) -> web.Response:
    """Rule X1: the audit log, filtered by actor, action and local dates [from, to]."""
    tz = request.app[TZ]
    q = read_query(request, AuditQuery)  # dates within what the server serves
    found = await audit.entries(
        ports_of(request), audit.AuditFilter(q.actor, q.action, q.from_, q.to, q.limit)
    )
    return web.json_response(
        {
            "entries": [
                {
                    "id": e.id,
                    "at": e.at.astimezone(tz).isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "subject": e.subject,
                    "reason": e.reason,
                    "details": e.details,
                }
                for e in found
            ]
        }
    )


# --- staff accounts (rule X2, issue 9 item 5) ----------------------------------------------

ACCOUNT_MANAGERS = (Role.CITY_OPERATOR, Role.MERCHANT_MANAGER)


def _account(account: Account, tz: Any) -> dict[str, Any]:
    return {
        "id": account.id,
        "username": account.username,
        "role": account.role,
        "district": account.district,
        "merchant_id": account.merchant_id,
        "status": account.status,
        "created_at": account.created_at.astimezone(tz).isoformat(),
    }


def _shown_once(done: accounts.Changed, tz: Any, status: int = 200) -> web.Response:
    body = _account(done.account, tz)
    if done.password is not None:
        body["password"] = done.password
        body["note"] = "the password is shown once; only its hash is stored"
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


def _given(value: T | UnsetType) -> T | None:
    """A field the caller may leave out: None when left out (a password to generate, a scope
    without a district or merchant, a merchant's setting left as it is)."""
    return None if isinstance(value, UnsetType) else value


def _scope(body: AddAccountRequest | AccountRoleRequest) -> accounts.Scope:
    return accounts.Scope(
        role=body.role, district=_given(body.district), merchant_id=_given(body.merchant_id)
    )


def _account_id(request: web.Request) -> int:
    return path_id(request, "account_id", "no such account")


@requires(*ACCOUNT_MANAGERS, Role.AUDITOR)
async def list_accounts(request: web.Request) -> web.Response:
    """Rule X2: the city and the auditor see every account, a merchant manager their shop's
    manager accounts."""
    q = read_query(request, AccountsQuery)
    found = await accounts.accounts(
        ports_of(request), principal_of(request), role=q.role, username=q.username
    )
    return web.json_response({"accounts": [_account(a, request.app[TZ]) for a in found]})


@requires(*ACCOUNT_MANAGERS)
async def add_account(request: web.Request) -> web.Response:
    """Rule X2: a staff account, with a password given (12+ characters) or generated and
    shown once; audited."""
    body = await read_body_as(request, AddAccountRequest)
    cmd = accounts.AddAccount(body.username, _scope(body), body.reason, _given(body.password))
    done = await accounts.add(ports_of(request), principal_of(request), cmd)
    return _shown_once(done, request.app[TZ], status=201)


@requires(*ACCOUNT_MANAGERS)
async def set_account_status(request: web.Request) -> web.Response:
    """Rules X1, X2: disable an account (refused at once on every route, whatever token it
    holds) or enable it again (it signs in afresh; the tokens of before stay dead)."""
    account_id = _account_id(request)
    body = await read_body_as(request, AccountStatusRequest)
    cmd = accounts.SetStatus(account_id, body.status, body.reason)
    account = await accounts.set_status(ports_of(request), principal_of(request), cmd)
    return web.json_response(_account(account, request.app[TZ]))


@requires(Role.CITY_OPERATOR)
async def set_account_role(request: web.Request) -> web.Response:
    """Rule X2: a new role (with its district or merchant); the old tokens end at once."""
    account_id = _account_id(request)
    body = await read_body_as(request, AccountRoleRequest)
    cmd = accounts.SetRole(account_id, _scope(body), body.reason)
    account = await accounts.set_role(ports_of(request), principal_of(request), cmd)
    return web.json_response(_account(account, request.app[TZ]))


@requires(*ACCOUNT_MANAGERS)
async def reset_account_password(request: web.Request) -> web.Response:
    """Rule X2: a new password, given or generated and shown once; the account's sessions
    end at once (its tokens carry the old generation)."""
    account_id = _account_id(request)
    body = await read_body_as(request, AccountPasswordRequest)
    cmd = accounts.ResetPassword(account_id, body.reason, _given(body.password))
    done = await accounts.reset_password(ports_of(request), principal_of(request), cmd)
    return _shown_once(done, request.app[TZ])
