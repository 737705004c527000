"""The citizen's wallet (rules E1-E4, U5, V2, X1): claim, the vouchers, where they were used,
the house tickets held (issue 13, rules T2, T5-T10), and the code, large. The code is
refreshed by ``static/wallet.js`` before it expires, and the same script asks
``/wallet/live`` every second whether a till redeemed it (plain polling: one indexed query on
a small JSON answer; no build step, nothing from a CDN)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from aiohttp import web

from server import throttle
from server.auth import Role, principal_of
from server.handlers.ports import ports_of
from server.pages.i18n import WORDS, language
from server.pages.session import SESSION, check_form, field, page, render
from server.qrcodes import render as render_qr
from server.services import claims, ticket_wallet, wallet_pages
from server.services import wallet as wallets
from server.web import CAMPAIGNS, CLOCK, TZ
from shared.errors import VoucherError

LIVE_POLL_MS = 1000  # the page shows a redemption within about a second (issue 12: 2 s)


async def _code(request: web.Request) -> dict[str, Any]:
    """A fresh code (rule U5) as an SVG data URL and the seconds it has left; minting is
    throttled per citizen as on the API (issue 9)."""
    me = principal_of(request)
    assert me.citizen_id is not None  # the wallet's session is a citizen's
    await throttle.mint(request, me.subject)
    code = wallets.mint_qr(ports_of(request), me.citizen_id)
    svg = await render_qr("svg", code.token)
    left = (code.expires_at - request.app[CLOCK]()).total_seconds()
    return {
        "token": code.token,
        "src": "data:image/svg+xml;base64," + base64.b64encode(svg).decode(),
        "expires_in": max(0, int(left)),
    }


async def _wallet_page(
    request: web.Request, *, claimed: Any = None, refusal: str | None = None, status: int = 200
) -> web.Response:
    me = principal_of(request)
    assert me.citizen_id is not None
    ports = ports_of(request)
    found = await wallets.wallet(ports, me.citizen_id)
    used = await wallet_pages.redemptions(ports, me.citizen_id)
    masked = await wallet_pages.masked_id(ports, me.citizen_id)
    revoked = found.participation is not None and found.participation.status == "revoked"
    tickets = await ticket_wallet.ticket_cards(ports, me.citizen_id)  # issue 13 (T2, T5-T10)
    available = [v for v, state in found.vouchers if state == "available"]
    next_expiry = None
    if available:
        first = min(v.expires_at for v in available)
        next_expiry = (first, sum(1 for v in available if v.expires_at == first))
    code = None
    code_refusal = None
    # rule U5: the same code carries the vouchers to a shop and a house ticket to a sales office
    usable_ticket = any(c.view.balance_fen and not c.view.expired for c in tickets)
    if (available or usable_ticket) and not revoked:
        try:
            code = await _code(request)
        except VoucherError as exc:
            code_refusal = exc.code
    return render(
        request,
        "wallet.html",
        {
            "masked": masked,
            "found": found,
            "tickets": tickets,
            "revoked": revoked,
            "used": used,
            "last_redemption": used[0].id if used else 0,
            "next_expiry": next_expiry,
            "code": code,
            "code_refusal": code_refusal,
            "ttl": min(c.qr_token_ttl_seconds for c in request.app[CAMPAIGNS].values()),
            "claimed": claimed,
            "refusal": refusal,
            "poll_ms": LIVE_POLL_MS,
        },
        status=status,
    )


@page(Role.CITIZEN, revoked_citizen_may_read=True)
async def wallet(request: web.Request) -> web.StreamResponse:
    return await _wallet_page(request)


@page(Role.CITIZEN)
async def claim(request: web.Request) -> web.StreamResponse:
    """Rules E2-E4, A1-A3, V1, V3: as ``POST /v1/claims``, with the same throttle; the answer
    in plain words: how many vouchers and until when, or why not."""
    form = await check_form(request, request[SESSION].csrf)
    me = principal_of(request)
    try:
        cmd = claims.Claim(me.subject, field(form, "certificate_no", max_len=64))
        slot = await throttle.claim_attempt(request, me.subject)
        done = await claims.claim(ports_of(request), cmd)
        await throttle.give_back(request, slot)
    except VoucherError as exc:
        return await _wallet_page(request, refusal=exc.code, status=200)
    return await _wallet_page(request, claimed=done)


@page(Role.CITIZEN)
async def code(request: web.Request) -> web.StreamResponse:
    """A fresh code for the page's script (POST with the CSRF header): JSON."""
    await check_form(request, request[SESSION].csrf)
    try:
        fresh = await _code(request)
    except VoucherError as exc:
        words = WORDS[language(request)]
        return web.json_response(
            {"error": exc.code, "message": words.refusal(exc.code, exc.message)},
            status=429 if exc.code == "rate_limited" else 400,
            headers={"Cache-Control": "no-store"},
        )
    return web.json_response(fresh, headers={"Cache-Control": "no-store"})


@page(Role.CITIZEN, revoked_citizen_may_read=True)
async def live(request: web.Request) -> web.StreamResponse:
    """The citizen's redemptions since ``after`` (a redemption id), for the page's poll: what
    the till just did, in the reader's language."""
    me = principal_of(request)
    assert me.citizen_id is not None
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        after = 0
    after = min(max(after, 0), 2**62)
    words = WORDS[language(request)]
    tz = request.app[TZ]
    ports = ports_of(request)
    found = await wallet_pages.redemptions(ports, me.citizen_id, after)
    counts: dict[str, int] = {}
    if found:  # something happened: the counts changed too
        counts = (await wallets.wallet(ports, me.citizen_id)).counts
    return web.json_response(
        {
            **({"available": counts["available"], "used": counts["used"]} if counts else {}),
            "redemptions": [
                {
                    "id": r.id,
                    "text": words.used_now.format(
                        shop=r.merchant_name, n=r.voucher_count, time=_clock(r.created_at, tz)
                    ),
                }
                for r in found
            ],
        },
        headers={"Cache-Control": "no-store"},
    )


def _clock(at: datetime, tz: Any) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
