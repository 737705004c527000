"""Sessions, CSRF and the role guard of the pages (rules X1, X2).

**The session is the access token itself**, in a cookie: ``Secure``, ``HttpOnly``,
``SameSite=Strict``, ``Path=/``, living as long as the token (``access_token_ttl_seconds``).
The server keeps nothing per session, and a page is decided exactly as the API decides a
request: the token's signature, expiry and role (``server.auth.read_access_token``), then the
process's access view (``server.access``), so a revoked citizen, a suspended merchant or a
disabled or changed account is refused on the very next page, whatever cookie it holds. A
server-side session store would have added a second source of truth for who is signed in
(and Redis must never decide), for nothing the token does not already carry.

**CSRF**: every POST of a page carries a token in a hidden field (or the ``X-CSRF-Token``
header, for the wallet's script) that the server checks before anything else. It is an HMAC
of the session cookie under the server's secret (OWASP's HMAC synchronizer token), so it is
per session, cannot be made without the secret, and needs no storage. The sign-in forms,
before there is a session, are bound the same way to a random pre-session cookie. A POST
whose ``Origin`` names another site is refused too, and ``SameSite=Strict`` keeps the
session cookie off every cross-site request in the first place.

**The real-name hand-over** (``POST /wallet/signin/assertion``) is the one cross-site POST
taken, so it cannot carry our CSRF token; it is bound instead as OpenID Connect binds its
``nonce``: the wallet's sign-in page gives the browser a random cookie and sends the citizen
to the app with an HMAC of it, the app's signed assertion carries that HMAC back, and the
hand-over signs in only the browser whose cookie it matches, once (the used ones are kept in
PostgreSQL until they expire), within ten minutes. Without it, anyone holding a fresh
assertion for their own ID number could make a victim's browser post it and sign the victim
in as themselves (login CSRF).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
from aiohttp import web

from server.access import ACCESS_VIEW
from server.auth import PRINCIPAL, Principal, Role, read_access_token
from server.pages.i18n import LANG_COOKIE, LANGS, WORDS, language
from server.web import ACCESS_CACHE, CLOCK, SETTINGS, TZ, status_of
from shared.errors import Forbidden, Unauthenticated, VoucherError

SESSION_COOKIE = "vs_session"
PRE_SESSION_COOKIE = "vs_pre"
# rule X2: the real-name hand-over's nonce, bound to the browser that began the sign-in
SIGN_IN_NONCE_COOKIE = "__Host-vs_nonce"
SIGN_IN_NONCE_TTL_S = 600  # to finish the app's face check; its assertion lives 5 minutes
SIGN_IN_NONCE_KEEP_S = 300  # a page shown later makes a new one (enough time left to finish)
_NONCE_VALUE = re.compile(r"([A-Za-z0-9_-]{43})\.([0-9]{1,12})")
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION: web.RequestKey[PageSession] = web.RequestKey("page_session")

# where each role starts, and where it signs in
HOME = {
    Role.CITIZEN: "/wallet",
    Role.MERCHANT_MANAGER: "/merchant",
    Role.DISTRICT_OPERATOR: "/ops",
    Role.CITY_OPERATOR: "/ops",
    Role.AUDITOR: "/ops",
    Role.TICKET_ISSUER: "/ops/tickets",  # issue 13
    Role.HOUSING_BUREAU: "/ops/tickets",
}


@dataclass(frozen=True, slots=True)
class PageSession:
    principal: Principal | None
    csrf: str  # the token every form of this page carries


def _mac(request: web.Request, purpose: str, value: str) -> str:
    key = request.app[SETTINGS].access_token_secret
    return hmac.new(key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()


def see_other(location: str) -> web.Response:
    """303 to ``location`` (a plain response: aiohttp deprecates returning its exceptions)."""
    return web.Response(status=303, headers={"Location": location})


def set_cookie(response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="Strict"
    )


def start_session(request: web.Request, response: web.StreamResponse, token: str) -> None:
    set_cookie(response, SESSION_COOKIE, token, request.app[SETTINGS].access_token_ttl_seconds)
    response.del_cookie(PRE_SESSION_COOKIE, path="/")


def end_session(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")


def pre_session(request: web.Request) -> tuple[str, str | None]:
    """The sign-in forms' CSRF token, and the new pre-session cookie to set (None: kept)."""
    value = request.cookies.get(PRE_SESSION_COOKIE, "")
    fresh = None
    if len(value) != 43:
        value = fresh = secrets.token_urlsafe(32)
    return _mac(request, "pre", value), fresh


def _nonce_cookie(request: web.Request, now: datetime) -> tuple[str, int] | None:
    """The browser's sign-in nonce cookie and when it was made, if it is well-formed and
    neither expired nor from the future (beyond a minute of clock skew)."""
    found = _NONCE_VALUE.fullmatch(request.cookies.get(SIGN_IN_NONCE_COOKIE, ""))
    if found is None:
        return None
    made, at = found[0], int(found[2])
    if not at - 60 <= now.timestamp() < at + SIGN_IN_NONCE_TTL_S:
        return None
    return made, at


def begin_sign_in(request: web.Request, now: datetime) -> tuple[str, str | None]:
    """Rule X2, the real-name hand-over's nonce: what the wallet's sign-in page sends the app
    (an HMAC of the cookie's value under the server's secret, so the cookie itself never
    leaves this browser), and the new cookie to set (None: this browser's is kept, having at
    least ``SIGN_IN_NONCE_KEEP_S`` to run)."""
    kept = _nonce_cookie(request, now)
    if kept is not None and now.timestamp() - kept[1] < SIGN_IN_NONCE_TTL_S - SIGN_IN_NONCE_KEEP_S:
        return _mac(request, "idp-nonce", kept[0]), None
    fresh = f"{secrets.token_urlsafe(32)}.{int(now.timestamp())}"
    return _mac(request, "idp-nonce", fresh), fresh


def sign_in_began(request: web.Request, now: datetime) -> tuple[str, datetime] | None:
    """Rule X2: the nonce this browser's sign-in began with and until when it may be used,
    or None (no cookie, a malformed or expired one)."""
    kept = _nonce_cookie(request, now)
    if kept is None:
        return None
    until = datetime.fromtimestamp(kept[1] + SIGN_IN_NONCE_TTL_S, tz=UTC)
    return _mac(request, "idp-nonce", kept[0]), until


def set_sign_in_nonce(response: web.StreamResponse, value: str) -> None:
    """The nonce cookie: ``__Host-`` (Secure, Path=/, no Domain: no sibling subdomain can
    plant its own), HttpOnly, and ``SameSite=None``, since the app's hand-over is a
    cross-site POST, on which a browser sends no Lax or Strict cookie. It proves nothing on
    its own, so going cross-site costs nothing: it only has to match the assertion's nonce."""
    response.set_cookie(
        SIGN_IN_NONCE_COOKIE,
        value,
        max_age=SIGN_IN_NONCE_TTL_S,
        path="/",
        secure=True,
        httponly=True,
        samesite="None",
    )


def end_sign_in_nonce(response: web.StreamResponse) -> None:
    response.del_cookie(SIGN_IN_NONCE_COOKIE, path="/", secure=True, httponly=True, samesite="None")


async def check_form(request: web.Request, expected: str) -> dict[str, str]:
    """The POSTed form, once its CSRF token and origin are right (else 403, nothing done)."""
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise Forbidden("this form came from another site", reason="csrf")
    form = await request.post()
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        raise Forbidden("the form expired or came from elsewhere", reason="csrf")
    return {k: v for k, v in form.items() if isinstance(v, str)}


def field(form: dict[str, str], name: str, *, max_len: int) -> str:
    """One text field: stripped, non-empty, short and printable, else a refusal."""
    from shared.errors import InvalidRequest

    value = form.get(name, "").strip()
    if not value or len(value) > max_len or not value.isprintable():
        raise InvalidRequest(f"{name} must be 1 to {max_len} printable characters", field=name)
    return value


def _sign_in_page(request: web.Request, roles: frozenset[Role]) -> str:
    return "/wallet/signin" if roles == {Role.CITIZEN} else "/signin"


def page(*roles: Role, revoked_citizen_may_read: bool = False) -> Callable[[Handler], Handler]:
    """A page for ``roles`` only (rule X2), decided as ``server.auth.requires`` decides an API
    route: the session cookie's token, then the access view (rule X1). No session: to the
    sign-in page. A blocked principal's cookie is dropped and the page refused. Every POST is
    checked for its CSRF token first. Refusals are pages, in the reader's language."""
    allowed = frozenset(roles)

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            token = request.cookies.get(SESSION_COOKIE, "")
            back = _sign_in_page(request, allowed) + "?next=" + quote(request.path_qs, safe="")
            if not token:
                return see_other(back)
            try:
                me = read_access_token(
                    request.app[SETTINGS], token, request.app[CLOCK](), request.app[ACCESS_CACHE]
                )
                view = request.app[ACCESS_VIEW]
                if view.stale:
                    await view.fresh()
                view.check(me, revoked_citizen_may_read=revoked_citizen_may_read)
            except Unauthenticated:
                response = see_other(back)
                end_session(response)
                return response
            except VoucherError as exc:  # blocked: revoked, suspended, disabled (rule X1)
                response = error_page(request, exc)
                end_session(response)
                return response
            request[PRINCIPAL] = me
            request[SESSION] = PageSession(me, _mac(request, "csrf", token))
            try:
                if me.role not in allowed:
                    raise Forbidden(f"a {me.role} may not see this page")
                return await handler(request)
            except VoucherError as exc:
                return error_page(request, exc)

        guarded.page_roles = allowed  # type: ignore[attr-defined]
        return guarded

    return decorate


def public_page(handler: Handler) -> Handler:
    """A page anyone may open (the sign-in pages): its forms carry the pre-session token."""

    @functools.wraps(handler)
    async def opened(request: web.Request) -> web.StreamResponse:
        csrf, fresh = pre_session(request)
        request[SESSION] = PageSession(None, csrf)
        try:
            response = await handler(request)
        except VoucherError as exc:
            response = error_page(request, exc)
        if fresh is not None and not response.prepared:
            set_cookie(response, PRE_SESSION_COOKIE, fresh, 3600)
        return response

    opened.page_roles = None  # type: ignore[attr-defined]
    return opened


def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """A page in the reader's language, with what every page shows (who is signed in, the
    CSRF token, the language switch). Pages hold personal data: never stored by caches."""
    lang = language(request)
    session = request.get(SESSION)
    other = LANGS[1 - LANGS.index(lang)]
    query = {**request.query, "lang": other}
    me = session.principal if session is not None else None
    response = aiohttp_jinja2.render_template(
        template,
        request,
        {
            "T": WORDS[lang],
            "lang": lang,
            "switch_url": str(request.rel_url.with_query(query)),
            "csrf": session.csrf if session is not None else "",
            "me": me,
            "tz": request.app[TZ],
            "request": request,
            **context,
        },
        status=status,
    )
    response.headers["Cache-Control"] = "no-store"
    if request.query.get("lang") in LANGS:
        response.set_cookie(
            LANG_COOKIE,
            request.query["lang"],
            max_age=365 * 86400,
            path="/",
            secure=True,
            httponly=True,
            samesite="Lax",
        )
    return response


def error_page(request: web.Request, exc: VoucherError) -> web.Response:
    words = WORDS[language(request)]
    titles = {"not_found": words.not_found, "forbidden": words.forbidden}
    if exc.details.get("reason") == "csrf":
        message = words.form_expired
    else:
        message = titles.get(exc.code) or words.refusal(exc.code, exc.message)
    return render(request, "error.html", {"message": message}, status=status_of(exc))
