"""Operators' changes: merchants (U1, X1), terminals (X2), citizens' participation (X1), the
audit log. District operators act in their own district only; every change is audited."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from aiohttp import web

from server import seed
from server.auth import Principal, Role, principal_of, requires
from server.db import admin as db
from server.db import parties
from server.handlers.operators import district_names
from server.qrcodes import qr_svg
from server.schemas import AuditQuery, MerchantsQuery
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
from shared.errors import Forbidden, InvalidRequest, NotFound
from shared.idnumber import hash_id_number, validate_id_number

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
        await db.audit(
            conn,
            actor=me.actor,
            action=f"merchant.{roles_note}",
            subject=f"merchant:{merchant_id}",
            reason=reason,
            details={field: value},
        )
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
        credential = await seed.terminal(conn, merchant_id=merchant_id, label=label)
        await db.audit(
            conn,
            actor=me.actor,
            action="terminal.issue",
            subject=f"terminal:{credential.terminal_id}",
            details={"merchant_id": merchant_id, "label": label},
        )
    pairing = {
        "server": str(request.url.origin()),
        "terminal_id": credential.terminal_id,
        "terminal_secret": credential.secret,
    }
    return web.json_response(
        {
            "terminal_id": credential.terminal_id,
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
        if row["status"] == "active":
            await db.revoke_terminal(conn, terminal_id, request.app[CLOCK]())
            await db.audit(
                conn,
                actor=me.actor,
                action="terminal.revoke",
                subject=f"terminal:{terminal_id}",
                reason=reason,
            )
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
    async with request.app[PG].acquire() as conn, conn.transaction():
        citizen, clawed_back = await db.revoke_citizen(conn, digest, reason, now)
        if citizen is None:
            raise NotFound("no active participant with this ID number")
        await db.audit(
            conn,
            actor=me.actor,
            action="citizen.revoke",
            subject=f"citizen:{citizen['subject']}",
            reason=reason,
            details={"vouchers_clawed_back": clawed_back, "masked_id": citizen["id_masked"]},
        )
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
