"""The front page and signing in and out of the pages (rule X2): staff with a password, the
citizen through the real-name identity flow (in the demo, the development identity provider)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from server.auth import Role, issue_access_token
from server.handlers.people import (
    citizen_principal,
    dev_assertion,
    id_number_of,
    staff_principal,
)
from server.handlers.ports import ports_of
from server.pages.session import (
    HOME,
    SESSION,
    begin_sign_in,
    check_form,
    end_session,
    end_sign_in_nonce,
    field,
    page,
    public_page,
    render,
    see_other,
    set_sign_in_nonce,
    sign_in_began,
    start_session,
)
from server.services import sign_in
from server.web import CLOCK, SETTINGS, TZ
from shared.errors import (
    InvalidInput,
    InvalidRequest,
    RateLimited,
    SignInNotStartedHere,
    TooManyAttempts,
    Unauthenticated,
)


def _next(request: web.Request, default: str) -> str:
    """Where to go after signing in: a path of this site only (no open redirect)."""
    target = request.query.get("next", "")
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


@public_page
async def home(request: web.Request) -> web.StreamResponse:
    return render(request, "home.html", {})


@public_page
async def staff_form(request: web.Request) -> web.StreamResponse:
    return render(request, "signin.html", {"error": None, "username": ""})


@public_page
async def staff_submit(request: web.Request) -> web.StreamResponse:
    """Rule X2, as ``POST /v1/auth/staff``: the same throttles and password check."""
    form = await check_form(request, request[SESSION].csrf)
    username = form.get("username", "").strip()[:64]
    try:
        principal = await staff_principal(
            request, field(form, "username", max_len=64), field(form, "password", max_len=200)
        )
    except (Unauthenticated, InvalidInput, TooManyAttempts, RateLimited) as exc:
        status = 429 if isinstance(exc, TooManyAttempts | RateLimited) else 401
        return render(
            request, "signin.html", {"error": exc.code, "username": username}, status=status
        )
    if principal.role not in HOME:
        return render(
            request, "signin.html", {"error": "forbidden", "username": username}, status=403
        )
    token = issue_access_token(request.app[SETTINGS], principal, request.app[CLOCK]())
    response = see_other(_next(request, HOME[principal.role]))
    start_session(request, response, token["access_token"])
    return response


def _idp_url(base: str, nonce: str) -> str:
    """The real-name app's sign-in address with this browser's ``nonce`` added to its query."""
    parts = urlsplit(base)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), ("nonce", nonce)])
    return urlunsplit(parts._replace(query=query))


def _citizen_page(
    request: web.Request, error: str | None = None, *, status: int = 200
) -> web.Response:
    """The wallet's sign-in page. In production it begins the real-name flow (rule X2): a
    nonce bound to this browser by a cookie, and a link to the app carrying it."""
    settings = request.app[SETTINGS]
    idp_url, fresh = None, None
    if settings.idp_sign_in_url is not None:
        nonce, fresh = begin_sign_in(request, request.app[CLOCK]())
        idp_url = _idp_url(settings.idp_sign_in_url, nonce)
    context = {"dev": settings.dev_idp_key is not None, "error": error, "idp_url": idp_url}
    response = render(request, "wallet_signin.html", context, status=status)
    if fresh is not None:
        set_sign_in_nonce(response, fresh)
    return response


@public_page
async def citizen_form(request: web.Request) -> web.StreamResponse:
    return _citizen_page(request)


async def _citizen_session(request: web.Request, id_number: str) -> web.Response:
    citizen = await sign_in.citizen(ports_of(request), id_number)
    token = issue_access_token(
        request.app[SETTINGS], citizen_principal(citizen), request.app[CLOCK]()
    )
    response = see_other(_next(request, "/wallet"))
    start_session(request, response, token["access_token"])
    return response


@public_page
async def citizen_dev_submit(request: web.Request) -> web.StreamResponse:
    """Demo only: the development identity provider signs an assertion for the ID number
    typed in, and the page signs in with it exactly as the real-name app's would."""
    settings = request.app[SETTINGS]
    if settings.dev_idp_key is None:
        raise web.HTTPNotFound()
    form = await check_form(request, request[SESSION].csrf)
    now, tz = request.app[CLOCK](), request.app[TZ]
    try:
        typed = field(form, "id_number", max_len=18)
        assertion = dev_assertion(settings, typed.upper(), now, tz)
        id_number = id_number_of(settings, assertion, now, tz)
    except InvalidInput as exc:  # an ID number that is not one (rule E1)
        return _citizen_page(request, exc.code, status=400)
    return await _citizen_session(request, id_number)


@public_page
async def citizen_assertion(request: web.Request) -> web.StreamResponse:
    """Production: the city's real-name app posts its signed assertion here (a form POST from
    the app, so no CSRF token of ours). Rule X2: it signs in only the browser that began this
    sign-in on the wallet's sign-in page: the assertion's ``nonce`` claim must match that
    browser's nonce cookie, unexpired and never used before (login CSRF: else anyone holding
    an assertion for their own ID number could sign a victim's browser in as themselves).
    Anything else is refused with ``sign_in_not_started_here``; a refusal starts no session
    and changes nothing. The answer is a page that moves on to the wallet by itself, since
    the browser holds back a SameSite=Strict cookie on a redirect that a cross-site POST
    began."""
    form = await request.post()
    assertion = form.get("assertion")
    if not isinstance(assertion, str) or not 0 < len(assertion) <= 4096:
        raise InvalidRequest("post the identity assertion as the form field assertion")
    settings, now = request.app[SETTINGS], request.app[CLOCK]()
    began = sign_in_began(request, now)
    if began is None:
        raise SignInNotStartedHere("no sign-in was started in this browser, or it expired")
    nonce, until = began
    id_number = id_number_of(settings, assertion, now, request.app[TZ], nonce=nonce)
    if not await sign_in.use_nonce(ports_of(request), bytes.fromhex(nonce), until):
        raise SignInNotStartedHere("this sign-in was already used")
    citizen = await sign_in.citizen(ports_of(request), id_number)
    token = issue_access_token(settings, citizen_principal(citizen), now)
    response = render(request, "handover.html", {})
    start_session(request, response, token["access_token"])
    end_sign_in_nonce(response)
    return response


@page(
    Role.CITIZEN,
    Role.MERCHANT_MANAGER,
    Role.DISTRICT_OPERATOR,
    Role.CITY_OPERATOR,
    Role.AUDITOR,
    Role.TICKET_ISSUER,
    Role.HOUSING_BUREAU,
    revoked_citizen_may_read=True,
)
async def sign_out(request: web.Request) -> web.StreamResponse:
    await check_form(request, request[SESSION].csrf)
    response = see_other("/")
    end_session(response)
    return response
