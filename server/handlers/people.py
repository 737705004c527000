"""Signing in (citizens, terminals, staff), claims, the citizen's wallet and QR code."""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal

import jwt
from aiohttp import hdrs, web

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
from server.db.claims import Citizen
from server.handlers.ports import ports_of
from server.qrcodes import render
from server.schemas import (
    CitizenSignIn,
    ClaimRequest,
    DevAssertionRequest,
    StaffSignIn,
    TerminalSignIn,
    WalletQrQuery,
)
from server.services import claims, sign_in, ticket_wallet
from server.services import wallet as wallets
from server.settings import SERVICE_ISSUER, Settings
from server.web import CLOCK, SETTINGS, TZ, preferred_media, read_body_as, read_query
from shared.errors import SignInNotStartedHere, TerminalDisabled, Unauthenticated
from shared.idnumber import validate_id_number

IDP_AUDIENCE = SERVICE_ISSUER

# --- signing in ---------------------------------------------------------------------------


def id_number_of(
    settings: Settings, assertion: str, now: datetime, tz: tzinfo, *, nonce: str | None = None
) -> str:
    """Rule X2: the ID number the real-name app's signed assertion vouches for (ES256, the
    configured issuer and keys, this service as audience, unexpired), checked by rule E1.
    The API's sign-in and the wallet page's both come through here. The wallet page passes
    the ``nonce`` its sign-in began with: the assertion's ``nonce`` claim must equal it
    (compared in constant time), else ``SignInNotStartedHere`` (login CSRF)."""
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
    if nonce is not None:
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise SignInNotStartedHere("the identity assertion was made for another sign-in")
    return validate_id_number(str(claims["id_number"]), now.astimezone(tz).date())  # E1


def citizen_principal(citizen: Citizen) -> Principal:
    return Principal(Role.CITIZEN, str(citizen.subject), citizen_id=citizen.id)


@public
async def citizen_sign_in(request: web.Request) -> web.Response:
    """Rule X2: exchange the real-name app's signed assertion for an access token. No guess
    limit: the assertion is signed by the city's app, there is nothing to guess.

    No nonce here, on purpose: this is the native app's own call, which gets the token in
    its answer and keeps it; no browser, no cookie, so nothing another site could make a
    victim's browser send to sign it in (login CSRF). The browser's hand-over,
    ``POST /wallet/signin/assertion``, is bound to its browser by a nonce
    (server/pages/signin.py)."""
    settings = request.app[SETTINGS]
    body = await read_body_as(request, CitizenSignIn)
    now = request.app[CLOCK]()
    id_number = id_number_of(settings, body.assertion, now, request.app[TZ])
    citizen = await sign_in.citizen(ports_of(request), id_number)
    answer = issue_access_token(settings, citizen_principal(citizen), now)
    answer["masked_id"] = citizen.id_masked
    return web.json_response(answer)


@public
async def terminal_sign_in(request: web.Request) -> web.Response:
    """Rule X2: a terminal's credential buys a short-lived access token. Guesses are limited
    per terminal and client address, and the terminal backs off (server/throttle.py)."""
    body = await read_body_as(request, TerminalSignIn)
    terminal_id, secret = body.terminal_id, body.secret
    slot = await throttle.sign_in_attempt(request, f"terminal:{terminal_id}")
    async with throttle.checking(request, slot):
        row = await sign_in.terminal(ports_of(request), terminal_id)
    if not terminal_secret_checks(secret, None if row is None else row.credential_hash):
        raise Unauthenticated("unknown terminal or wrong credential")  # the slot stays taken
    assert row is not None
    await throttle.give_back(request, slot)  # the right credential is no guess
    if row.status != "active":
        raise TerminalDisabled()  # rule U1
    principal = Principal(
        Role.CASHIER,
        str(row.id),
        terminal_id=row.id,
        merchant_id=row.merchant_id,
        district=row.district,
    )
    answer = issue_access_token(request.app[SETTINGS], principal, request.app[CLOCK]())
    answer["terminal"] = {"id": row.id, "label": row.label}
    answer["merchant"] = {
        "id": row.merchant_id,
        "name": row.merchant_name,
        "district": row.district,
        "status": row.merchant_status,
        "admitted": row.admitted,
        "permitted": row.permitted,
        "receipts_per_till": row.receipts_per_till,  # rule U4 [choice]
        "refund_needs_manager": row.refund_needs_manager,  # issue 11 item 5
        "kind": row.kind,  # rule T4: a developer's till opens in its sales-office mode
    }
    return web.json_response(answer)


async def staff_principal(request: web.Request, username: str, password: str) -> Principal:
    """Rule X2: who a username and password sign in as. The guess is counted before it is
    checked (server/throttle.py); the password is checked off the event loop, against a dummy
    hash for an unknown user (same cost). The API's sign-in and the pages' both use it."""
    slot = await throttle.sign_in_attempt(request, f"staff:{username}")
    async with throttle.checking(request, slot):
        row = await sign_in.staff(ports_of(request), username)
        matches = await verify_password(password, None if row is None else row.credential_hash)
    if row is None or not matches or row.status != "active":
        raise Unauthenticated("unknown user or wrong password")  # the slot stays taken
    await throttle.give_back(request, slot)
    return Principal(
        Role(row.role),
        row.username,
        merchant_id=row.merchant_id,
        district=row.district,
        account_id=row.id,
        generation=row.generation,  # rule X1: a changed account's tokens end
    )


@public
async def staff_sign_in(request: web.Request) -> web.Response:
    """Rule X2: a staff account's password buys a short-lived access token."""
    body = await read_body_as(request, StaffSignIn)
    principal = await staff_principal(request, body.username, body.password)
    answer = issue_access_token(request.app[SETTINGS], principal, request.app[CLOCK]())
    # whose staff this is, said in the answer: a till checking a manager's approval reads it
    # here instead of from the token, whose signature it cannot check
    answer["merchant_id"] = principal.merchant_id
    answer["district"] = principal.district
    return web.json_response(answer)


def dev_assertion(
    settings: Settings,
    id_number: str,
    now: datetime,
    tz: tzinfo,
    *,
    nonce: str | None = None,
) -> str:
    """Demo only: what the development identity provider signs for a valid ID number (E1),
    with the ``nonce`` of the wallet sign-in it answers when one is given (rule X2)."""
    if settings.dev_idp_key is None:
        raise web.HTTPNotFound()
    validate_id_number(id_number, now.astimezone(tz).date())  # rule E1
    claims: dict[str, Any] = {
        "iss": settings.idp_issuer,
        "aud": IDP_AUDIENCE,
        "sub": uuid.uuid4().hex,
        "id_number": id_number,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    return jwt.encode(
        claims,
        settings.dev_idp_key.private_key,
        algorithm="ES256",
        headers={"kid": settings.dev_idp_key.kid},
    )


@public
async def dev_identity_assertion(request: web.Request) -> web.Response:
    """Demo only: the development identity provider vouches for any valid ID number."""
    settings = request.app[SETTINGS]
    if settings.dev_idp_key is None:
        raise web.HTTPNotFound()
    body = await read_body_as(request, DevAssertionRequest)
    now = request.app[CLOCK]()
    assertion = dev_assertion(settings, body.id_number, now, request.app[TZ])
    return web.json_response({"assertion": assertion})


# --- claims and wallet --------------------------------------------------------------------


@requires(Role.CITIZEN)
async def claim(request: web.Request) -> web.Response:
    """Rules E2-E4, A1-A3, V1, V3, X1: claim the vouchers of one certificate
    (server/services/claims.py). Failed claims are limited per citizen (server/throttle.py),
    counted before the claim is tried."""
    me = principal_of(request)
    body = await read_body_as(request, ClaimRequest)
    cmd = claims.Claim(me.subject, body.certificate_no)
    slot = await throttle.claim_attempt(request, me.subject)
    done = await claims.claim(ports_of(request), cmd)
    await throttle.give_back(request, slot)
    decision, campaign = done.decision, done.campaign
    return web.json_response(
        {
            "claim_id": done.claim_id,
            "campaign_id": campaign.id,
            "certificate_no": done.certificate_no,
            "base_fen": decision.base_fen,
            "rate_bp": decision.rate_bp,
            "voucher_count": decision.voucher_count,
            "face_value_fen": campaign.face_value_fen,
            "value_fen": decision.voucher_count * campaign.face_value_fen,
            "expires_at": decision.expires_at.isoformat(),
            "last_valid_day": decision.last_valid_day.isoformat(),
            "vouchers": [
                {"id": v.id, "expires_at": v.expires_at.isoformat()} for v in done.vouchers
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
    tz = request.app[TZ]
    found = await wallets.wallet(ports_of(request), me.citizen_id)
    cards = await ticket_wallet.ticket_cards(ports_of(request), me.citizen_id)  # issue 13
    standing = found.participation
    participation: dict[str, Any] = {"status": standing.status if standing else "active"}
    if standing is not None and standing.status == "revoked":
        assert standing.revoked_at is not None
        participation["revoked_at"] = standing.revoked_at.astimezone(tz).isoformat()
        participation["reason"] = standing.revoked_reason
    return web.json_response(
        {
            "participation": participation,
            "vouchers": [
                {
                    "id": v.id,
                    "campaign_id": v.campaign_id,
                    "face_value_fen": v.face_value_fen,
                    "expires_at": v.expires_at.astimezone(tz).isoformat(),
                    "state": state,
                    "redeemed_at": v.redeemed_at.astimezone(tz).isoformat()
                    if v.redeemed_at
                    else None,
                }
                for v, state in found.vouchers
            ],
            "counts": found.counts,
            "claims": [
                {
                    "claim_id": c.id,
                    "campaign_id": c.campaign_id,
                    "certificate_no": c.cert_no,
                    "voucher_count": c.voucher_count,
                    "claimed_at": c.claimed_at.astimezone(tz).isoformat(),
                    "expires_at": c.expires_at.astimezone(tz).isoformat(),
                }
                for c in found.claims
            ],
            "tickets": [ticket_card_json(card) for card in cards],
        }
    )


def ticket_card_json(card: ticket_wallet.TicketCard) -> dict[str, Any]:
    """Rules T2, T3, T5-T10: one of the holder's tickets (with its pieces) as the wallet
    shows it: only what the holder holds; pieces passed to another person as history, the
    receiver masked (X3)."""
    v = card.view
    return {
        "campaign_id": card.campaign.id,
        "numbers": list(v.numbers or card.held),
        "face_value_fen": v.face_value_fen,
        "balance_fen": v.balance_fen,
        "used_fen": v.used_fen,
        "cashed_out_fen": v.cashed_out_fen,
        "returned_fen": v.returned_fen,
        "transferred_fen": v.transferred_fen,
        "deadline": v.deadline.isoformat(),
        "expired": v.expired,
        "subsidy_fen": v.subsidy_fen,
        "reward_fen": v.reward_fen,
        "cashout_due_fen": v.cashout.amount_fen if v.cashout else None,
        "bonus": None
        if v.bonus is None
        else {
            "amount_fen": v.bonus.amount_fen,
            "rate_bp": v.bonus.rate_bp,
            "reviewed": v.bonus.reviewed,
            "review_on": v.bonus.review_on.isoformat(),
            "due_by": v.bonus.due_by.isoformat(),
        },
        "uses": [
            {
                "contract_no": u.contract_no,
                "signed_on": u.signed_on.isoformat(),
                "unit": u.unit,
                "amount_fen": u.amount_fen,
                "subsidy_fen": u.subsidy_fen,
                "reward_fen": u.reward_fen,
                "cancelled": u.cancelled,
            }
            for u in v.uses
        ],
        "transferred": [
            {
                "number": p.number,
                "face_value_fen": p.face_value_fen,
                "to": card.receivers.get(p.id, ""),
                "kind": "transfer" if p.transfers else "heir",
            }
            for p in v.transferred
        ],
    }


# what GET /v1/wallet/qr answers, by media type, in the server's order of preference
WALLET_QR_MEDIA: dict[str, Literal["json", "png", "svg"]] = {
    "application/json": "json",
    "image/png": "png",
    "image/svg+xml": "svg",
}


@requires(Role.CITIZEN)
async def wallet_qr(request: web.Request) -> web.Response:
    """Rule U5: a fresh signed, short-lived, single-use code as JSON, PNG or SVG. Minting is
    rate-limited per citizen (a phone needs one about every 50 s), and images are rendered off
    the event loop: one citizen must not stall the tills."""
    me = principal_of(request)
    assert me.citizen_id is not None  # a citizen's access token names the citizen
    fmt = read_query(request, WalletQrQuery).format
    if fmt is None:
        asked = preferred_media(request.headers.get(hdrs.ACCEPT), tuple(WALLET_QR_MEDIA))
        fmt = WALLET_QR_MEDIA[asked or "application/json"]
    await throttle.mint(request, me.subject)
    code = wallets.mint_qr(ports_of(request), me.citizen_id)
    headers = {
        "Cache-Control": "no-store",
        "Vary": "Accept",
        "X-Token-Expires-At": code.expires_at.isoformat(),
    }
    if fmt == "json":
        return web.json_response(
            {"token": code.token, "expires_at": code.expires_at.isoformat()}, headers=headers
        )
    media = "image/png" if fmt == "png" else "image/svg+xml"
    return web.Response(body=await render(fmt, code.token), content_type=media, headers=headers)
