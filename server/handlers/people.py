"""Signing in (citizens, terminals, staff), claims, the citizen's wallet and QR code."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import jwt
from aiohttp import web

from server.auth import (
    Principal,
    Role,
    issue_access_token,
    password_matches,
    principal_of,
    public,
    requires,
    terminal_secret_matches,
)
from server.db import claims as db
from server.db import parties
from server.qrcodes import qr_png, qr_svg
from server.schemas import WalletQrQuery
from server.settings import QR_AUDIENCE, SERVICE_ISSUER
from server.web import (
    CAMPAIGNS,
    CLOCK,
    GUARD,
    PG,
    SETTINGS,
    TZ,
    allowed_fields,
    get_str,
    read_json,
    read_query,
)
from shared import rules
from shared.errors import (
    CertificateAlreadyClaimed,
    CertificateNotEligible,
    CertificateNotFound,
    InvalidRequest,
    TerminalDisabled,
    TooManyAttempts,
    Unauthenticated,
)
from shared.idnumber import hash_id_number, mask_id_number, validate_id_number
from shared.tokens import issue_qr_token

IDP_AUDIENCE = SERVICE_ISSUER
# failed sign-ins allowed per account or terminal in a window, then 429 until it ends
MAX_FAILURES = 10
FAILURE_WINDOW_S = 15 * 60


async def _refuse_if_guessing(request: web.Request, subject: str) -> None:
    if await request.app[GUARD].failures(subject) >= MAX_FAILURES:
        raise TooManyAttempts(retry_after_s=FAILURE_WINDOW_S)


# --- signing in ---------------------------------------------------------------------------


@public
async def citizen_sign_in(request: web.Request) -> web.Response:
    """Rule X2: exchange the real-name app's signed assertion for an access token."""
    settings = request.app[SETTINGS]
    body = await read_json(request)
    allowed_fields(body, "assertion")
    assertion = get_str(body, "assertion", max_len=4096)
    now = request.app[CLOCK]()
    try:
        kid = jwt.get_unverified_header(assertion).get("kid")
        key = settings.idp_verifying_keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthenticated("the identity assertion is not from the city's app")
        claims = jwt.decode(
            assertion,
            key.public_key,
            algorithms=["ES256"],
            audience=IDP_AUDIENCE,
            issuer=settings.idp_issuer,
            options={"verify_exp": False, "verify_iat": False, "require": ["exp", "id_number"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated("the identity assertion is not valid") from exc
    if type(claims["exp"]) is not int or claims["exp"] <= now.timestamp():
        raise Unauthenticated("the identity assertion has expired")
    tz = request.app[TZ]
    id_number = validate_id_number(str(claims["id_number"]), now.astimezone(tz).date())  # E1
    async with request.app[PG].acquire() as conn:
        citizen = await db.upsert_citizen(
            conn, hash_id_number(id_number, settings.id_hash_key), mask_id_number(id_number)
        )
    principal = Principal(Role.CITIZEN, str(citizen["subject"]), citizen_id=citizen["id"])
    answer = issue_access_token(settings, principal, now)
    answer["masked_id"] = citizen["id_masked"]
    return web.json_response(answer)


@public
async def terminal_sign_in(request: web.Request) -> web.Response:
    """Rule X2: a terminal's credential buys a short-lived access token."""
    body = await read_json(request)
    allowed_fields(body, "terminal_id", "secret")
    terminal_id = body.get("terminal_id")
    secret = get_str(body, "secret", max_len=200)
    if type(terminal_id) is not int or not 0 < terminal_id < 2**62:
        raise InvalidRequest("terminal_id must be a positive whole number", field="terminal_id")
    await _refuse_if_guessing(request, f"terminal:{terminal_id}")
    async with request.app[PG].acquire() as conn:
        row = await parties.terminal_with_merchant(conn, terminal_id)
    if row is None or not terminal_secret_matches(secret, row["credential_hash"]):
        await request.app[GUARD].add_failure(f"terminal:{terminal_id}", FAILURE_WINDOW_S)
        raise Unauthenticated("unknown terminal or wrong credential")
    if row["status"] != "active":
        raise TerminalDisabled()  # rule U1
    principal = Principal(
        Role.CASHIER,
        str(row["id"]),
        terminal_id=row["id"],
        merchant_id=row["merchant_id"],
        district=row["district"],
    )
    answer = issue_access_token(request.app[SETTINGS], principal, request.app[CLOCK]())
    answer["terminal"] = {"id": row["id"], "label": row["label"]}
    answer["merchant"] = {
        "id": row["merchant_id"],
        "name": row["merchant_name"],
        "district": row["district"],
        "status": row["merchant_status"],
        "admitted": row["admitted"],
        "permitted": row["permitted"],
    }
    return web.json_response(answer)


@public
async def staff_sign_in(request: web.Request) -> web.Response:
    body = await read_json(request)
    allowed_fields(body, "username", "password")
    username = get_str(body, "username", max_len=64)
    password = get_str(body, "password", max_len=200)
    await _refuse_if_guessing(request, f"staff:{username}")
    async with request.app[PG].acquire() as conn:
        row = await parties.account(conn, username)
    if (
        row is None
        or row["status"] != "active"
        or not password_matches(password, row["credential_hash"])
    ):
        await request.app[GUARD].add_failure(f"staff:{username}", FAILURE_WINDOW_S)
        raise Unauthenticated("unknown user or wrong password")
    principal = Principal(
        Role(row["role"]),
        row["username"],
        merchant_id=row["merchant_id"],
        district=row["district"],
        account_id=row["id"],
    )
    return web.json_response(
        issue_access_token(request.app[SETTINGS], principal, request.app[CLOCK]())
    )


@public
async def dev_identity_assertion(request: web.Request) -> web.Response:
    """Demo only: the development identity provider vouches for any valid ID number."""
    settings = request.app[SETTINGS]
    if settings.dev_idp_key is None:
        raise web.HTTPNotFound()
    body = await read_json(request)
    allowed_fields(body, "id_number")
    id_number = get_str(body, "id_number", max_len=18)
    now = request.app[CLOCK]()
    tz = request.app[TZ]
    validate_id_number(id_number, now.astimezone(tz).date())  # rule E1
    assertion = jwt.encode(
        {
            "iss": settings.idp_issuer,
            "aud": IDP_AUDIENCE,
            "sub": uuid.uuid4().hex,
            "id_number": id_number,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=5)).timestamp()),
        },
        settings.dev_idp_key.private_key,
        algorithm="ES256",
        headers={"kid": settings.dev_idp_key.kid},
    )
    return web.json_response({"assertion": assertion})


# --- claims and wallet --------------------------------------------------------------------


def _voucher_state(row: asyncpg.Record, now: Any) -> str:
    if row["status"] == "available" and rules.is_expired(row["expires_at"], now):
        return "expired"  # rule V2: void, never redeemable
    return {"available": "available", "redeemed": "used", "revoked": "revoked"}[row["status"]]


@requires(Role.CITIZEN)
async def claim(request: web.Request) -> web.Response:
    """Rules E2-E4, A1-A3, V1, V3, X1: claim the vouchers of one certificate."""
    me = principal_of(request)
    body = await read_json(request)
    allowed_fields(body, "certificate_no")
    cert_no = get_str(body, "certificate_no", max_len=64)
    now = request.app[CLOCK]()
    campaigns = request.app[CAMPAIGNS]
    async with request.app[PG].acquire() as conn, conn.transaction():
        citizen = await db.citizen_by_subject(conn, uuid.UUID(me.subject))
        if citizen is None:
            raise Unauthenticated("sign in again")
        rules.check_participation(citizen["status"] == "revoked")  # rule X1
        cert = await db.certificate_for_claim(conn, cert_no)
        if cert is None:
            raise CertificateNotFound(certificate_no=cert_no)  # rule E3
        record = rules.CertificateRecord(
            cert_no=cert["cert_no"],
            district=cert["district"],
            property_type=rules.PropertyType(cert["property_type"]),
            new_build=cert["new_build"],
            invoice_excl_vat_fen=cert["invoice_excl_vat_fen"],
            tax_relief_fen=cert["tax_relief_fen"],
            issued_on=cert["issued_on"],
            owner_hashes=frozenset(bytes(h) for h in cert["owner_hashes"]),
        )
        issuing = [c for c in campaigns.values() if record.district in c.issuing_districts]
        # the campaign whose certificate window holds the issue date, else the first one
        issuing.sort(
            key=lambda c: (
                not c.certificate_issued_from <= record.issued_on <= c.certificate_issued_to
            )
        )
        if not issuing:
            raise CertificateNotEligible(
                "No campaign issues vouchers in the property's district.", reason="district"
            )  # rule E2
        campaign = issuing[0]
        decision = rules.check_claim(
            campaign, record, bytes(citizen["id_hash"]), now, cert["claimed"]
        )
        try:
            claim_id, vouchers = await db.insert_claim(
                conn,
                campaign_id=campaign.id,
                certificate_id=cert["id"],
                citizen_id=citizen["id"],
                decision=decision,
                face_value_fen=campaign.face_value_fen,
                now=now,
            )
        except asyncpg.UniqueViolationError as exc:
            raise CertificateAlreadyClaimed() from exc  # rule E4: a concurrent owner won
    return web.json_response(
        {
            "claim_id": claim_id,
            "campaign_id": campaign.id,
            "certificate_no": record.cert_no,
            "base_fen": decision.base_fen,
            "rate_bp": decision.rate_bp,
            "voucher_count": decision.voucher_count,
            "face_value_fen": campaign.face_value_fen,
            "value_fen": decision.voucher_count * campaign.face_value_fen,
            "expires_at": decision.expires_at.isoformat(),
            "last_valid_day": decision.last_valid_day.isoformat(),
            "vouchers": [
                {"id": v["id"], "expires_at": v["expires_at"].isoformat()} for v in vouchers
            ],
        },
        status=201,
    )


@requires(Role.CITIZEN)
async def wallet(request: web.Request) -> web.Response:
    me = principal_of(request)
    assert me.citizen_id is not None
    now = request.app[CLOCK]()
    tz = request.app[TZ]
    async with request.app[PG].acquire() as conn:
        rows = await db.wallet(conn, me.citizen_id)
        claims = await db.claims_of(conn, me.citizen_id)
    vouchers = [
        {
            "id": r["id"],
            "campaign_id": r["campaign_id"],
            "face_value_fen": r["face_value_fen"],
            "expires_at": r["expires_at"].astimezone(tz).isoformat(),
            "state": _voucher_state(r, now),
            "redeemed_at": r["redeemed_at"].astimezone(tz).isoformat()
            if r["redeemed_at"]
            else None,
        }
        for r in rows
    ]
    counts = {s: 0 for s in ("available", "used", "expired", "revoked")}
    for v in vouchers:
        counts[str(v["state"])] += 1
    return web.json_response(
        {
            "vouchers": vouchers,
            "counts": counts,
            "claims": [
                {
                    "claim_id": c["id"],
                    "campaign_id": c["campaign_id"],
                    "certificate_no": c["cert_no"],
                    "voucher_count": c["voucher_count"],
                    "claimed_at": c["claimed_at"].astimezone(tz).isoformat(),
                    "expires_at": c["expires_at"].astimezone(tz).isoformat(),
                }
                for c in claims
            ],
        }
    )


@requires(Role.CITIZEN)
async def wallet_qr(request: web.Request) -> web.Response:
    """Rule U5: a fresh signed, short-lived, single-use code as JSON, PNG or SVG."""
    me = principal_of(request)
    settings = request.app[SETTINGS]
    fmt = read_query(request, WalletQrQuery).format
    ttl = min(c.qr_token_ttl_seconds for c in request.app[CAMPAIGNS].values())
    token, claims = issue_qr_token(
        key=settings.qr_keys[0],
        subject=me.subject,
        issuer=SERVICE_ISSUER,
        audience=QR_AUDIENCE,
        now=request.app[CLOCK](),
        ttl_seconds=ttl,
    )
    headers = {"Cache-Control": "no-store", "X-Token-Expires-At": claims.expires_at.isoformat()}
    if fmt == "json":
        return web.json_response(
            {"token": token, "expires_at": claims.expires_at.isoformat()}, headers=headers
        )
    if fmt == "png":
        return web.Response(body=qr_png(token), content_type="image/png", headers=headers)
    return web.Response(body=qr_svg(token), content_type="image/svg+xml", headers=headers)
