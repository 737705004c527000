"""The HTTP edge: app keys, JSON in and out, errors as ``{"error": {"code", "message"}}``,
request ids, JSON logs and Prometheus metrics. Domain errors become responses only here."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import re
import time
import typing
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from server import schemas
from server.caches import ExpiringLru, QrVerifier
from server.db import Pool, database_down
from server.db.replica import Reports
from server.guard import Guard, RedisClient
from server.services.ports import TillPorts
from server.settings import Settings
from shared.campaign import Campaign
from shared.ticket_campaign import TicketCampaign

if TYPE_CHECKING:
    from server.auth import Principal
from shared.errors import (
    BodyTooLarge,
    Category,
    DatabaseUnavailable,
    InvalidAmount,
    InvalidDate,
    InvalidInput,
    InvalidRequest,
    NotFound,
    VoucherError,
)

log = logging.getLogger("server")
access_log = logging.getLogger("server.access")

SETTINGS = web.AppKey("settings", Settings)
PG = web.AppKey("pg", Pool)
REDIS: web.AppKey[RedisClient] = web.AppKey("redis")  # one Redis or a Redis Cluster
CAMPAIGNS = web.AppKey("campaigns", dict[str, Campaign])
# rules C1, T1-T14: the house-ticket programmes by id (issue 13), beside the voucher campaigns
TICKET_CAMPAIGNS = web.AppKey("ticket_campaigns", dict[str, TicketCampaign])
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
GUARD: web.AppKey[Guard] = web.AppKey("guard")
ACCESS_CACHE: web.AppKey[ExpiringLru[str, Principal]] = web.AppKey("access_cache")
QR_VERIFIER: web.AppKey[QrVerifier] = web.AppKey("qr_verifier")
# where read-only reports run: the replica when configured and near, else the primary
REPORTS: web.AppKey[Reports] = web.AppKey("reports")
# what the till's services are handed (server/services/ports.py), built at start-up
TILL: web.AppKey[TillPorts] = web.AppKey("till")
# the programme's local time zone (all loaded campaigns share it): dates and times are shown in it
TZ: web.AppKey[tzinfo] = web.AppKey("tz")

REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
# the code of a refusal a handler answered without raising (a kept idempotent refusal), for the log
ERROR_CODE: web.RequestKey[str] = web.RequestKey("error_code")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# request ids: a random prefix per process and a counter (no syscall per request, unlike uuid4)
_ID_PREFIX = uuid.uuid4().hex[:12] + "-"
_ID_SEQ = itertools.count(1)


class Metrics:
    """One registry per app, so tests can build many apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "voucher_http_request_seconds",
            "HTTP request latency by route and status",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.redemptions = Counter(
            "voucher_redemptions_total",
            "Redemption attempts by outcome (ok or the error code)",
            ["outcome"],
            registry=self.registry,
        )
        self.vouchers_redeemed = Counter(
            "voucher_vouchers_redeemed_total",
            "Vouchers moved to redeemed",
            registry=self.registry,
        )
        self.ticket_uses = Counter(
            "voucher_ticket_uses_total",
            "House-ticket uses at sales offices by outcome (ok or the error code; issue 13)",
            ["outcome"],
            registry=self.registry,
        )
        self.redis_failures = Counter(
            "voucher_redis_failures_total",
            "Redis calls that failed; the database alone then guards correctness",
            registry=self.registry,
        )
        self.redis_breaker_state = Gauge(
            "voucher_redis_breaker_state",
            "The Redis circuit breaker: 0 closed (calls go to Redis), 1 half-open (one probe), "
            "2 open (Redis skipped until the cool-down ends)",
            registry=self.registry,
        )
        self.throttle_fail_open = Counter(
            "voucher_throttle_fail_open_total",
            "Throttle decisions Redis could not make: the request went on unthrottled",
            registry=self.registry,
        )
        self.redis_skipped = Counter(
            "voucher_redis_skipped_total",
            "Redis calls not made because the circuit breaker was open",
            registry=self.registry,
        )
        # issue 14: the read replica (server/db/replica.py)
        self.replica_lag_seconds = Gauge(
            "voucher_replica_lag_seconds",
            "How long ago the primary wrote the oldest WAL the replica has not replayed",
            registry=self.registry,
        )
        self.replica_lag_bytes = Gauge(
            "voucher_replica_lag_bytes",
            "The primary's WAL position minus the replica's replayed position",
            registry=self.registry,
        )
        self.replica_up = Gauge(
            "voucher_replica_up",
            "1 while reports read the replica (it answers and is within the lag bound), else 0",
            registry=self.registry,
        )
        self.report_reads = Counter(
            "voucher_report_reads_total",
            "Read-only report queries by where they ran (replica, primary), and fallbacks: "
            "replica reads that failed and ran again on the primary",
            ["source"],
            registry=self.registry,
        )
        self.shed = Counter(
            "voucher_shed_total",
            "Requests refused at once under overload (issue 14), by kind: till_write (redemptions, "
            "refunds), till_read (quotes, lookups), claims, other",
            ["kind"],
            registry=self.registry,
        )
        self.admission_limit = Gauge(
            "voucher_admission_limit",
            "Requests this process admits at once now (issue 14: adapts to the latency target)",
            registry=self.registry,
        )
        self._latency_of: dict[tuple[str, str, int], Any] = {}
        self.batch_size = Histogram(
            "voucher_batch_size",
            "Calls carried by one batched round trip to PostgreSQL or Redis, by kind",
            ["kind"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )

    def observe_latency(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request's latency; each (method, route, status) series is looked up once."""
        if method not in _METHODS:
            method = "OTHER"  # clients choose the method: keep the series bounded
        key = (method, route, status)
        series = self._latency_of.get(key)
        if series is None:
            series = self._latency_of[key] = self.latency.labels(method, route, str(status))
        series.observe(seconds)


# The one table from a domain error to its HTTP status (errors know nothing of HTTP): each
# category has its status, and a few codes read better otherwise.
STATUS_OF_CATEGORY: Mapping[Category, int] = {
    Category.INVALID_INPUT: 400,
    Category.UNAUTHENTICATED: 401,
    Category.FORBIDDEN: 403,
    Category.NOT_FOUND: 404,
    Category.CONFLICT: 409,
    Category.REFUSED: 422,
    Category.INTERNAL: 500,
    Category.CONFIG: 500,
    Category.UNAVAILABLE: 503,
}
STATUS_OVERRIDES: Mapping[str, int] = {
    # the citizen's QR code is the payload of an authenticated cashier's request, so a bad QR
    # must not look like the terminal's own session failing (401)
    "token_invalid": 422,
    "token_expired": 422,
    "token_replayed": 409,
    "idempotency_key_reused": 422,
    "body_too_large": 413,
    "too_many_attempts": 429,
    "rate_limited": 429,
    # a campaign file that reaches the HTTP edge was sent by a client (voucherctl)
    "campaign_config_invalid": 400,
}


def status_of(error: VoucherError) -> int:
    return STATUS_OVERRIDES.get(error.code, STATUS_OF_CATEGORY[error.category])


def error_body(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = dict(details)
    return {"error": body}


JSON_CONTENT_TYPE = "application/json; charset=utf-8"
_JSON = msgspec.json.Encoder()


def json_answer(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """``body`` (dicts, lists, Structs) as a JSON answer, encoded by msgspec straight to UTF-8
    bytes. aiohttp's ``json_response`` goes through ``json.dumps``, a str, its encoding and
    the content type's setters: five times the cost (issue 15, docs/BENCHMARKS.md)."""
    fields = {"Content-Type": JSON_CONTENT_TYPE}
    if headers:
        fields.update(headers)
    return web.Response(body=_JSON.encode(body), status=status, headers=fields)


def error_response(
    status: int, code: str, message: str, details: Mapping[str, Any] | None = None
) -> web.Response:
    return json_answer(error_body(code, message, details), status=status)


def error_from(exc: VoucherError) -> web.Response:
    return error_response(status_of(exc), exc.code, exc.message, exc.details)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``limit``: up front when the
    Content-Length says so, else while it streams in (a chunked body is never read past the
    limit, whatever the app-wide cap). The edge then closes the connection instead of
    draining the rest (``edge_middleware``)."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(limit_bytes=limit)
    content = request.content
    if content.is_eof():  # the whole body came with the headers (a till's is small): at once
        data = content.read_nowait()
        if len(data) > limit:
            raise BodyTooLarge(limit_bytes=limit)
        return data
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit_bytes=limit)
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class RouteInput:
    """What a route takes: its body and query-string definitions (``server.schemas``), and
    what the edge needs of it on every request, found once: its name in the metrics (the
    canonical path) and the largest body it takes (an upload's or JSON's, item 10)."""

    body: type[msgspec.Struct] | None = None
    query: type[msgspec.Struct] | None = None
    name: str = ""
    max_body: int = 0


# each aiohttp route -> its definitions, filled by create_app from the route table
ROUTE_INPUTS: web.AppKey[dict[Any, RouteInput]] = web.AppKey("route_inputs")
S = TypeVar("S", bound=msgspec.Struct)
# what no text the server takes may hold: C0 controls (NUL included), DEL, lone surrogates
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_AT_FIELD = re.compile(r"(?:at `\$\.|field `)([^`.\[]+)")


_NO_INPUT = RouteInput()


def _route_input(request: web.Request) -> RouteInput:
    return request.app[ROUTE_INPUTS].get(request.match_info.route, _NO_INPUT)


def _sends_json(request: web.Request) -> bool:
    # the header as tills send it, compared as is; anything else is parsed (parameters, case)
    return request.headers.get("Content-Type") == "application/json" or (
        request.content_type == "application/json"
    )


async def read_body_as(request: web.Request, kind: type[S]) -> S:
    """The request body as ``kind``, the route's body Struct (named again for the type
    checker), decoded and validated in one pass (``decode_body``), or a clear 400."""
    declared = _route_input(request).body
    if declared is not kind:
        raise RuntimeError(f"{request.method} {request.path}: the route table names {declared}")
    if not _sends_json(request):
        raise InvalidRequest("send the body as application/json")
    return decode_body(await read_body(request, request.app[SETTINGS].max_body_bytes), kind)


def decode_body(data: bytes, kind: type[S]) -> S:
    """One JSON body as ``kind``: msgspec decodes and validates in one pass. It refuses
    invalid UTF-8 and lone surrogates (``"\\ud800"``) as malformed JSON; the typed decoder
    stops at the first value of the wrong shape, so nesting never goes deep, and a
    ``RecursionError`` from anywhere else is refused too."""
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        raise _refusal(data, kind, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(
            "the body is not valid JSON (UTF-8, no lone surrogates)", reason="json"
        ) from exc
    except RecursionError:
        raise InvalidRequest("the body nests too deeply", reason="depth") from None


def _refusal(data: bytes, kind: type[msgspec.Struct], problem: str) -> InvalidInput:
    """Unknown fields first, all of them (as Stripe does), else the first bad field with the
    code its Struct names."""
    try:
        sent = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        sent = {}
    unknown = sorted(set(sent) - set(wire_codes(kind)))
    if unknown:
        return InvalidRequest(f"unknown field(s): {', '.join(unknown)}", fields=unknown)
    return _field_error(kind, problem)


def _field_error(kind: type[msgspec.Struct], problem: str) -> InvalidInput:
    found = _AT_FIELD.search(problem)
    if found is None:
        return InvalidRequest(f"the request is not valid: {problem}")
    name = found.group(1)
    code, description = wire_codes(kind).get(name, ("", ""))
    error = InvalidAmount if code == "invalid_amount" else InvalidDate if code else InvalidRequest
    message = f"{name} must be {description}" if description else f"{name}: {problem}"
    return error(message, field=name, problem=problem)


@functools.cache
def wire_codes(kind: type[msgspec.Struct]) -> dict[str, tuple[str, str]]:
    """The Struct's fields by wire name -> the error code a refusal of it carries ("" for
    ``invalid_request``, from ``Meta(extra={"code": ...})``) and its description."""
    hints = typing.get_type_hints(kind, include_extras=True)
    codes: dict[str, tuple[str, str]] = {}
    for f in msgspec.structs.fields(kind):
        code = description = ""
        for part in _annotated_parts(hints[f.name]):
            if isinstance(part, msgspec.Meta):
                code = str((part.extra or {}).get("code", code))
                description = part.description or description
        codes[f.encode_name] = (code, description)
    return codes


def _annotated_parts(hint: Any) -> list[Any]:
    """The ``Annotated`` metadata in a hint, looking through ``X | None``."""
    parts: list[Any] = list(getattr(hint, "__metadata__", ()))
    for arg in typing.get_args(hint):
        parts += getattr(arg, "__metadata__", ())
    return parts


def struct_fields(value: msgspec.Struct) -> dict[str, Any]:
    """A decoded body as a dict of the fields that were sent (by wire name)."""
    out: dict[str, Any] = {}
    for name, wire in zip(value.__struct_fields__, value.__struct_encode_fields__, strict=True):
        field = getattr(value, name)
        if field is not msgspec.UNSET:
            out[wire] = field
    return out


def read_query(request: web.Request, kind: type[S]) -> S:
    """The query string, decoded with the route's query Struct (``kind`` names it, for the
    type checker): every value free of control characters and lone surrogates, given once,
    numbers and dates parsed, dates within what the server serves (FIRST_DAY..LAST_DAY)."""
    declared = _route_input(request).query
    if declared is not kind:
        raise RuntimeError(f"{request.method} {request.path}: the route table names {declared}")
    sent: dict[str, str] = {}
    for name in wire_codes(kind):
        values = request.query.getall(name, [])
        if len(values) > 1:
            raise InvalidRequest(f"give {name} once", field=name)
        if values:
            if _UNSAFE.search(values[0]):
                raise InvalidRequest(f"{name} holds control characters", field=name)
            sent[name] = values[0]
    try:
        parsed = msgspec.convert(sent, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise _field_error(kind, str(exc)) from None
    for name, value in struct_fields(parsed).items():
        if isinstance(value, date) and not schemas.FIRST_DAY <= value <= schemas.LAST_DAY:
            raise InvalidDate(
                f"{name} is from {schemas.FIRST_DAY} to {schemas.LAST_DAY}", field=name
            )
    return parsed


def path_id(request: web.Request, name: str, missing: str) -> int:
    """A row id from the URL path; anything that is not one (text, 0, past bigint) is simply
    not found, never a database error."""
    try:
        value = int(request.match_info[name])
    except ValueError as exc:
        raise NotFound(missing) from exc
    if not 0 < value < 2**63:
        raise NotFound(missing)
    return value


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


DATABASE_RETRY_AFTER_S = 2


def _edge_facts(request: web.Request) -> RouteInput:
    """The route's name and body limit: from the route table (``create_app`` fills
    ``ROUTE_INPUTS``), else (the pages, a path no route matches) found now: the canonical
    path, or "unmatched", and a JSON body's limit."""
    app = request.app
    found = app[ROUTE_INPUTS].get(request.match_info.route)
    if found is not None and found.name:
        return found
    resource = request.match_info.route.resource
    name = resource.canonical if resource is not None else "unmatched"
    return RouteInput(name=name, max_body=app[SETTINGS].max_body_bytes)


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, JSON errors, one JSON log line and a latency sample per request."""
    incoming = request.headers.get("X-Request-Id")
    if incoming is not None and _REQUEST_ID_RE.match(incoming):
        request_id = incoming
    else:
        request_id = f"{_ID_PREFIX}{next(_ID_SEQ):x}"
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    code = ""
    facts = _edge_facts(request)
    try:
        length = request.content_length
        if length is not None and length > facts.max_body:
            # item 10: refused on its Content-Length, before anything (sign-in included) runs
            raise BodyTooLarge(limit_bytes=facts.max_body)
        response = await handler(request)
    except VoucherError as exc:
        code = exc.code
        response = error_from(exc)
        if "retry_after_s" in exc.details:  # a throttle's 429 says when (RFC 9110)
            response.headers["Retry-After"] = str(exc.details["retry_after_s"])
    except web.HTTPRequestEntityTooLarge:
        code = "body_too_large"
        response = error_response(413, code, "the request body is too large")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _http_code(exc.status)
        response = error_response(exc.status, code, exc.reason)
    except Exception as exc:
        if database_down(exc):
            log.warning(
                "database unavailable: %s", type(exc).__name__, extra={"request_id": request_id}
            )
            code = DatabaseUnavailable.code
            response = error_from(DatabaseUnavailable())
            response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        else:
            log.exception("unhandled error", extra={"request_id": request_id})
            code = "internal_error"
            response = error_response(500, code, "internal error; quote the request id", None)
    elapsed = time.perf_counter() - started
    response.headers["X-Request-Id"] = request_id
    route = facts.name
    metrics: Metrics = request.app[METRICS]
    metrics.observe_latency(request.method, route, response.status, elapsed)
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method,
                "route": route,
                "status": response.status,
                "ms": round(elapsed * 1000, 2),
                "error_code": code or request.get(ERROR_CODE),
            },
        )
    if not request.content.is_eof() and not response.prepared:
        await _answer_and_close(request, response)
    return response


# RFC 9112, 9.6: closing at once with unread data in the socket makes the kernel send a reset,
# which can destroy the answer before the client reads it. So the answer is followed by a
# half-close (FIN) and a short linger that discards, bounded in time and bytes, then the close.
LINGER_S = 1.0
LINGER_BYTES = 1024 * 1024


async def _answer_and_close(request: web.Request, response: web.StreamResponse) -> None:
    """Item 10: a body still arriving that nobody will read (refused as too large, or before
    authentication) is not drained: the answer goes out with ``Connection: close``, then a
    half-close, at most LINGER_BYTES discarded for at most LINGER_S, and the connection is
    closed, so a client cannot make the server swallow megabytes it refused."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    transport = request.transport
    if transport is not None and transport.can_write_eof():
        transport.write_eof()
    discarded = 0
    with contextlib.suppress(Exception):
        async with asyncio.timeout(LINGER_S):
            while discarded < LINGER_BYTES and not request.content.is_eof():
                discarded += len(await request.content.readany())
    if request.protocol is not None:
        request.protocol.force_close()


def _http_code(status: int) -> str:
    return {
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        415: "unsupported_media_type",
    }.get(status, "bad_request" if status < 500 else "internal_error")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line. Fields are whitelisted: ID numbers and tokens never get in
    (rule X3), whatever a caller passes as ``extra``."""

    FIELDS = ("request_id", "method", "route", "status", "ms", "error_code", "event")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in self.FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def preferred_media(accept: str | None, offered: Sequence[str]) -> str | None:
    """Which of ``offered`` (the server's order of preference) the ``Accept`` header asks for
    most (RFC 9110 section 12.5.1: quality values; an exact type outranks ``type/*``, which
    outranks ``*/*``); None when it accepts none of them. No header accepts the first."""
    if not accept or not accept.strip():
        return offered[0] if offered else None
    ranges: list[tuple[str, str, float]] = []
    for part in accept.split(","):
        media, *params = part.split(";")
        kind, _, sub = media.strip().lower().partition("/")
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        ranges.append((kind, sub, quality))

    def quality_of(media: str) -> float:
        kind, _, sub = media.partition("/")
        found = (-1, 0.0)  # (how specific the matching range is, its quality)
        for k, s, quality in ranges:
            specific = 2 if (k, s) == (kind, sub) else 1 if (k, s) == (kind, "*") else 0
            if (k, s) in ((kind, sub), (kind, "*"), ("*", "*")) and specific > found[0]:
                found = (specific, quality)
        return found[1]

    scored = [(quality_of(m), -i, m) for i, m in enumerate(offered)]
    quality, _, media = max(scored, default=(0.0, 0, ""))
    return media if quality > 0 else None
