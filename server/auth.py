"""Who is calling (rule X2): short-lived access tokens, credentials, and a role guard per route.

- Citizens come through the city's real-name app: its signed assertion (ES256, configured
  issuer and keys) is exchanged for an access token carrying only a pseudonymous subject.
- Cashier terminals exchange the credential an operator issued (stored as SHA-256: it is 256
  random bits, so a slow hash adds nothing) for an access token bound to terminal + merchant.
- Staff (merchant managers, district operators, city operators, auditors) log in with a
  password stored with scrypt.

Every handler is wrapped by ``requires(...)`` naming the roles that may call it; a route
without it is refused by a test that walks every route and role. ``requires`` also refuses a
revoked terminal, a suspended merchant, a disabled (or changed) account and a revoked citizen
at once, whatever token it holds (rule X1), from the process's in-memory view of blocked
principals (server/access.py: no query per request, at most ~1 s behind another process).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt
from aiohttp import web

from server.access import ACCESS_VIEW
from server.caches import ExpiringLru
from server.settings import ACCESS_AUDIENCE, SERVICE_ISSUER, Settings
from server.web import ACCESS_CACHE, CLOCK, SETTINGS
from shared.errors import Forbidden, Unauthenticated

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JWT "typ", not a secret


class Role(StrEnum):
    CITIZEN = "citizen"
    CASHIER = "cashier"
    MERCHANT_MANAGER = "merchant_manager"
    DISTRICT_OPERATOR = "district_operator"
    CITY_OPERATOR = "city_operator"
    AUDITOR = "auditor"
    # issue 13 (house tickets): rule T1, the issuer (房票核发人) of one district's tickets
    TICKET_ISSUER = "ticket_issuer"
    # rule T4: the housing bureau (住建局) admitting developers and their units: the city's,
    # or a district's when the account names one [choice]
    HOUSING_BUREAU = "housing_bureau"


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    subject: str  # citizen: pseudonym uuid; cashier: terminal id; staff: username
    citizen_id: int | None = None
    terminal_id: int | None = None
    merchant_id: int | None = None
    district: str | None = None
    account_id: int | None = None
    generation: int = 0  # staff: the account's generation when the token was issued

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"{self.role}:{self.subject}"


def issue_access_token(settings: Settings, principal: Principal, now: datetime) -> dict[str, Any]:
    expires = now + timedelta(seconds=settings.access_token_ttl_seconds)
    claims: dict[str, Any] = {
        "iss": SERVICE_ISSUER,
        "aud": ACCESS_AUDIENCE,
        "sub": principal.subject,
        "role": str(principal.role),
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
    }
    for name in ("citizen_id", "terminal_id", "merchant_id", "district", "account_id"):
        value = getattr(principal, name)
        if value is not None:
            claims[name] = value
    if principal.account_id is not None:
        claims["gen"] = principal.generation  # rule X1: a changed account's tokens end
    token = jwt.encode(
        claims, settings.access_token_secret, algorithm="HS256", headers={"typ": ACCESS_TOKEN_TYPE}
    )
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": settings.access_token_ttl_seconds,
        "role": str(principal.role),
    }


def read_access_token(
    settings: Settings,
    token: str,
    now: datetime,
    cache: ExpiringLru[str, Principal] | None = None,
) -> Principal:
    """The caller of a request; ``cache`` remembers checked tokens until they expire."""
    if cache is not None:
        known = cache.get(token, now)
        if known is not None:
            return known
    try:
        if jwt.get_unverified_header(token).get("typ") != ACCESS_TOKEN_TYPE:
            raise Unauthenticated("not an access token of this service")
        claims = jwt.decode(
            token,
            settings.access_token_secret,
            algorithms=["HS256"],
            audience=ACCESS_AUDIENCE,
            issuer=SERVICE_ISSUER,
            options={"verify_exp": False, "verify_iat": False, "require": ["exp", "sub", "role"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated("the access token is not valid") from exc
    if type(claims["exp"]) is not int or claims["exp"] <= now.timestamp():
        raise Unauthenticated("the access token has expired; sign in again", reason="expired")
    try:
        role = Role(claims["role"])
    except ValueError as exc:
        raise Unauthenticated("the access token names an unknown role") from exc
    principal = Principal(
        role=role,
        subject=str(claims["sub"]),
        citizen_id=claims.get("citizen_id"),
        terminal_id=claims.get("terminal_id"),
        merchant_id=claims.get("merchant_id"),
        district=claims.get("district"),
        account_id=claims.get("account_id"),
        generation=claims.get("gen", 0),
    )
    if type(principal.generation) is not int:
        raise Unauthenticated("the access token is not valid")
    if cache is not None:
        cache.put(token, principal, datetime.fromtimestamp(claims["exp"], UTC))
    return principal


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def requires(*roles: Role, revoked_citizen_may_read: bool = False) -> Callable[[Handler], Handler]:
    """Only callers holding one of ``roles`` reach the handler (rule X2), and only while they
    are not blocked (rule X1): a revoked terminal, a suspended merchant, a disabled or changed
    account, a revoked citizen (except where ``revoked_citizen_may_read``: the wallet) is
    refused at once, whatever token it holds. The check is the process's in-memory view
    (server/access.py): no database query, at most ``STALE_AFTER_S`` behind the ledger."""
    allowed = frozenset(roles)

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise Unauthenticated("sign in first: send Authorization: Bearer <token>")
            app = request.app
            principal = read_access_token(
                app[SETTINGS], token.strip(), app[CLOCK](), app[ACCESS_CACHE]
            )
            view = app[ACCESS_VIEW]
            if view.stale:
                await view.fresh()
            view.check(principal, revoked_citizen_may_read=revoked_citizen_may_read)
            if principal.role not in allowed:
                raise Forbidden(f"a {principal.role} may not do this", role=str(principal.role))
            request[PRINCIPAL] = principal
            return await handler(request)

        guarded.roles = allowed  # type: ignore[attr-defined]
        return guarded

    return decorate


def public(handler: Handler) -> Handler:
    """Mark a route as open to anyone (health checks, sign-in, the API description)."""
    handler.roles = None  # type: ignore[attr-defined]
    return handler


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]


# --- a manager's approval of one refund (issue 11 item 5) ----------------------------------

MANAGER_APPROVAL = "Manager-Approval"
APPROVAL_TOKEN_TYPE = "refund-approval+jwt"  # noqa: S105 - a JWT "typ", not a secret
APPROVAL_AUDIENCE = "refund-approval"
REFUND_APPROVAL_TTL_S = 120
"""Long enough to send the refund and retry it (a till waits 10 s per try), short enough
that an approval left unused is soon worth nothing."""


@dataclass(frozen=True, slots=True)
class RefundGrant:
    """What a refund approval says: which manager (``approver``: role, shop, account and its
    generation) approved which one refund: at one till, of one bill, down to one amount,
    under one idempotency key (the refund's, so the ledger makes at most one refund of it)."""

    approver: Principal
    terminal_id: int
    redemption_id: int
    remaining_bill_fen: int
    key: str


def _approval_key(settings: Settings) -> bytes:
    """The approvals' own signing key, derived from the access tokens' secret: an approval
    is never an access token, nor an access token an approval (and their ``typ`` differ)."""
    return hmac.new(settings.access_token_secret, b"refund-approval", hashlib.sha256).digest()


def issue_refund_approval(settings: Settings, grant: RefundGrant, now: datetime) -> str:
    who = grant.approver
    claims = {
        "iss": SERVICE_ISSUER,
        "aud": APPROVAL_AUDIENCE,
        "sub": who.subject,
        "role": str(who.role),
        "merchant_id": who.merchant_id,
        "account_id": who.account_id,
        "gen": who.generation,
        "terminal_id": grant.terminal_id,
        "redemption_id": grant.redemption_id,
        "remaining_bill_fen": grant.remaining_bill_fen,
        "key": grant.key,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + REFUND_APPROVAL_TTL_S,
    }
    return jwt.encode(
        claims, _approval_key(settings), algorithm="HS256", headers={"typ": APPROVAL_TOKEN_TYPE}
    )


def _claim(claims: dict[str, Any], name: str, kind: type[int] | type[str]) -> Any:
    value = claims.get(name)
    if type(value) is not kind:
        raise Unauthenticated("the approval is not valid")
    return value


def read_refund_approval(settings: Settings, token: str, now: datetime) -> RefundGrant:
    """The grant an approval token carries, once its type, signature and expiry are right;
    else ``Unauthenticated`` (``reason="expired"`` for one too old)."""
    try:
        if jwt.get_unverified_header(token).get("typ") != APPROVAL_TOKEN_TYPE:
            raise Unauthenticated("not a refund approval of this service")
        claims = jwt.decode(
            token,
            _approval_key(settings),
            algorithms=["HS256"],
            audience=APPROVAL_AUDIENCE,
            issuer=SERVICE_ISSUER,
            options={"verify_exp": False, "verify_iat": False, "require": ["exp", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated("the approval is not valid") from exc
    if _claim(claims, "exp", int) <= now.timestamp():
        raise Unauthenticated("the approval has expired", reason="expired")
    try:
        role = Role(_claim(claims, "role", str))
    except ValueError as exc:
        raise Unauthenticated("the approval names an unknown role") from exc
    approver = Principal(
        role,
        str(claims["sub"]),
        merchant_id=_claim(claims, "merchant_id", int),
        account_id=_claim(claims, "account_id", int),
        generation=_claim(claims, "gen", int),
    )
    return RefundGrant(
        approver,
        terminal_id=_claim(claims, "terminal_id", int),
        redemption_id=_claim(claims, "redemption_id", int),
        remaining_bill_fen=_claim(claims, "remaining_bill_fen", int),
        key=_claim(claims, "key", str),
    )


def approval_of(request: web.Request) -> tuple[RefundGrant | None, str] | None:
    """Issue 11 item 5: the refund approval a till sent in its ``Manager-Approval`` header
    (``POST /v1/redemptions/{id}/refund-approvals`` gave it): None without the header;
    ``(grant, "")`` for a valid one of a staff member not blocked now (rule X1: a manager
    disabled since is refused at once); ``(None, problem)`` otherwise (``expired``,
    ``invalid``, ``disabled``). Whether it approves this refund is the use case's business."""
    raw = request.headers.get(MANAGER_APPROVAL, "").strip()
    if not raw:
        return None
    try:
        grant = read_refund_approval(request.app[SETTINGS], raw, request.app[CLOCK]())
        request.app[ACCESS_VIEW].check(grant.approver)  # fresh: the request just passed requires
    except Unauthenticated as exc:
        return None, "expired" if exc.details.get("reason") == "expired" else "invalid"
    except Forbidden:
        return None, "disabled"
    return grant, ""


# --- credentials --------------------------------------------------------------------------


def new_terminal_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_terminal_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True, slots=True)
class TerminalCredential:
    """A terminal's new credential: the secret, shown once, and the hash that is stored
    (rule X2: the ledger never holds the secret)."""

    secret: str
    credential_hash: bytes


def new_terminal_credential() -> TerminalCredential:
    secret = new_terminal_secret()
    return TerminalCredential(secret, hash_terminal_secret(secret))


def terminal_secret_matches(secret: str, stored: bytes) -> bool:
    return hmac.compare_digest(hash_terminal_secret(secret), bytes(stored))


def terminal_secret_checks(secret: str, stored: bytes | None) -> bool:
    """Item 2 of issue 9: an unknown terminal costs the same comparison as a known one."""
    return terminal_secret_matches(secret, _DUMMY_TERMINAL_HASH if stored is None else stored) and (
        stored is not None
    )


_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def _scrypt(password: str, salt: bytes) -> bytes:
    """The one place a password is stretched (a seam: tests count the calls and their threads)."""
    return hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


def hash_password(password: str) -> bytes:
    salt = secrets.token_bytes(16)
    return salt + _scrypt(password, salt)


def password_matches(password: str, stored: bytes) -> bool:
    stored = bytes(stored)
    salt, digest = stored[:16], stored[16:]
    return hmac.compare_digest(_scrypt(password, salt), digest)


# Made once at start: an unknown or disabled username is checked against it, so that the
# time a sign-in takes does not tell whether the username exists (issue 9, item 2).
_DUMMY_PASSWORD_HASH = hash_password(secrets.token_urlsafe(24))
_DUMMY_TERMINAL_HASH = hash_terminal_secret(secrets.token_urlsafe(32))

# scrypt costs ~30 ms of CPU and 16 MB: it runs on a few threads of its own, never on the event
# loop (90 concurrent sign-ins stalled till quotes for 5 s), and never more of them at once.
_HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="scrypt")


async def verify_password(password: str, stored: bytes | None) -> bool:
    """Does ``password`` match ``stored`` (None: no such account)? Off the event loop, and at the
    same cost whether or not the account exists (the dummy hash stands in)."""
    loop = asyncio.get_running_loop()
    against = _DUMMY_PASSWORD_HASH if stored is None else bytes(stored)
    ok = await loop.run_in_executor(_HASHING, password_matches, password, against)
    return ok and stored is not None


async def hash_password_off_loop(password: str) -> bytes:
    """``hash_password`` for handlers (creating or resetting an account)."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password, password)


def utcnow() -> datetime:
    """The production clock (tests pass their own to ``create_app``)."""
    return datetime.now(UTC)
