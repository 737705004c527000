"""Signing in (citizens, terminals, staff), claims, the citizen's wallet and QR code."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import jwt
from aiohttp import web

from server import throttle
from server.auth import (
    Principal,
    Role,
    issue_access_token,
    principal_of,
    public,
    requires,
    terminal_secret_checks,
    verify_password,
)
from server.db import claims as db
from server.db import parties
from server.qrcodes import render
from server.schemas import WalletQrQuery
from server.settings import QR_AUDIENCE, SERVICE_ISSUER
from server.throttle import says_when_to_retry
from server.web import (
    CAMPAIGNS,
    CLOCK,
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
    CertificateNotYours,
    InvalidRequest,
    TerminalDisabled,
    Unauthenticated,
)
from shared.idnumber import hash_id_number, mask_id_number, validate_id_number
from shared.tokens import issue_qr_token

IDP_AUDIENCE = SERVICE_ISSUER

# --- signing in ---------------------------------------------------------------------------


@public
async def citizen_sign_in(request: web.Request) -> web.Response:
    """Rule X2: exchange the real-name app's signed assertion for an access token. No guess
    limit: the assertion is signed by the city's app, there is nothing to guess."""
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
@says_when_to_retry
async def terminal_sign_in(request: web.Request) -> web.Response:
    """Rule X2: a terminal's credential buys a short-lived access token. Guesses are limited
    per terminal and client address, and the terminal backs off (server/throttle.py)."""
    body = await read_json(request)
    allowed_fields(body, "terminal_id", "secret")
    terminal_id = body.get("terminal_id")
    secret = get_str(body, "secret", max_len=200)
    if type(terminal_id) is not int or not 0 < terminal_id < 2**62:
        raise InvalidRequest("terminal_id must be a positive whole number", field="terminal_id")
    slot = await throttle.sign_in_attempt(request, f"terminal:{terminal_id}")
    async with throttle.checking(request, slot), request.app[PG].acquire() as conn:
        row = await parties.terminal_with_merchant(conn, terminal_id)
    if not terminal_secret_checks(secret, None if row is None else row["credential_hash"]):
        raise Unauthenticated("unknown terminal or wrong credential")  # the slot stays taken
    assert row is not None
    await throttle.give_back(request, slot)  # the right credential is no guess
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
@says_when_to_retry
async def staff_sign_in(request: web.Request) -> web.Response:
    """Rule X2. The guess is counted before it is checked (server/throttle.py); the password is
    checked off the event loop, against a dummy hash for an unknown user (same cost)."""
    body = await read_json(request)
    allowed_fields(body, "username", "password")
    username = get_str(body, "username", max_len=64)
    password = get_str(body, "password", max_len=200)
    slot = await throttle.sign_in_attempt(request, f"staff:{username}")
    async with throttle.checking(request, slot):
        async with request.app[PG].acquire() as conn:
            row = await parties.account(conn, username)
        matches = await verify_password(password, None if row is None else row["credential_hash"])
    if row is None or not matches or row["status"] != "active":
        raise Unauthenticated("unknown user or wrong password")  # the slot stays taken
    await throttle.give_back(request, slot)
    principal = Principal(
        Role(row["role"]),
        row["username"],
        merchant_id=row["merchant_id"],
        district=row["district"],
        account_id=row["id"],
        generation=row["generation"],  # rule X1: a changed account's tokens end
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
@says_when_to_retry
async def claim(request: web.Request) -> web.Response:
    """Rules E2-E4, A1-A3, V1, V3, X1: claim the vouchers of one certificate.

    A stranger learns nothing about a certificate: whether the number is unknown or lists
    other owners, the answer is ``certificate_not_yours``, before any check that would tell
    the certificate exists (its campaign, district, or an earlier claim: rule E4's
    ``certificate_already_claimed`` is for its owners only). Failed claims are limited per
    citizen (server/throttle.py), counted before the claim is tried.
    """
    me = principal_of(request)
    body = await read_json(request)
    allowed_fields(body, "certificate_no")
    cert_no = get_str(body, "certificate_no", max_len=64)
    slot = await throttle.claim_attempt(request, me.subject)
    now = request.app[CLOCK]()
    campaigns = request.app[CAMPAIGNS]
    async with request.app[PG].acquire() as conn, conn.transaction():
        citizen = await db.citizen_by_subject(conn, uuid.UUID(me.subject))
        if citizen is None:
            raise Unauthenticated("sign in again")
        rules.check_participation(citizen["status"] == "revoked")  # rule X1
        cert = await db.certificate_for_claim(conn, cert_no)
        id_hash = bytes(citizen["id_hash"])
        if cert is None or id_hash not in {bytes(h) for h in cert["owner_hashes"]}:
            raise CertificateNotYours(certificate_no=cert_no)  # rule E3, one answer for both
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
        decision = rules.check_claim(campaign, record, id_hash, now, cert["claimed"])
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
    await throttle.give_back(request, slot)
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


@requires(Role.CITIZEN, revoked_citizen_may_read=True)
async def wallet(request: web.Request) -> web.Response:
    """The citizen's vouchers and claims; a revoked citizen still reads it, with the
    revocation and its reason (rule X1)."""
    me = principal_of(request)
    assert me.citizen_id is not None
    now = request.app[CLOCK]()
    tz = request.app[TZ]
    async with request.app[PG].acquire() as conn:
        rows = await db.wallet(conn, me.citizen_id)
        claims = await db.claims_of(conn, me.citizen_id)
        standing = await parties.participation(conn, me.citizen_id)
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
    participation: dict[str, Any] = {"status": standing["status"] if standing else "active"}
    if standing is not None and standing["status"] == "revoked":
        participation["revoked_at"] = standing["revoked_at"].astimezone(tz).isoformat()
        participation["reason"] = standing["revoked_reason"]
    return web.json_response(
        {
            "participation": participation,
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
@says_when_to_retry
async def wallet_qr(request: web.Request) -> web.Response:
    """Rule U5: a fresh signed, short-lived, single-use code as JSON, PNG or SVG. Minting is
    rate-limited per citizen (a phone needs one about every 50 s), and images are rendered off
    the event loop: one citizen must not stall the tills."""
    me = principal_of(request)
    settings = request.app[SETTINGS]
    fmt = read_query(request, WalletQrQuery).format
    await throttle.mint(request, me.subject)
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
    media = "image/png" if fmt == "png" else "image/svg+xml"
    return web.Response(body=await render(fmt, token), content_type=media, headers=headers)
