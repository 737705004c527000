"""The plumbing every client shares: one server, one aiohttp connection pool, one exchange at
a time, answers as typed Structs and refusals as ``ApiError``.

Failures, as the callers meet them:

- ``ApiError(code, message, status, details)``: the server answered with a refusal; ``code``
  is its stable code (``shared/errors.py``), the callers word it.
- ``Unreachable``: no answer; the message names the address tried. ``maybe_sent`` is False
  when the request certainly never arrived (the connection was refused), True when it may
  have (a timeout, a dropped connection, a 5xx after the retries).
- ``BadAnswer``: an answer this client cannot read (not JSON, or not of the expected shape:
  money that is not whole fen, a missing field).
- ``OutcomeUnknown``: a money-moving request (redeem, refund) that may have happened, and the
  server could not be asked (``client.till``, rule U7).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import msgspec

from shared.errors import VoucherError, error_classes

USER_AGENT = "liaocheng-vouchers-client/0.1"
T = TypeVar("T")


class ApiError(Exception):
    """The server refused, with a stable error code."""

    def __init__(
        self, code: str, message: str, status: int, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.details = dict(details or {})

    @property
    def error_class(self) -> type[VoucherError] | None:
        """The domain error of ``shared/errors.py`` the server's code names (its category
        included), or None for a code this client does not know (a newer server's)."""
        return _ERROR_CLASSES.get(self.code)


_ERROR_CLASSES = error_classes()


class Unreachable(Exception):
    """No answer from the server (network down, timeout, server error)."""

    def __init__(self, message: str, *, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class OutcomeUnknown(Exception):
    """A redeem or refund was maybe done, and the server could not be asked. Ask again later
    with the same ``key``; never tell the cashier it succeeded."""

    def __init__(self, key: str, message: str = "the outcome is unknown") -> None:
        super().__init__(message)
        self.key = key


class BadAnswer(Exception):
    """The server answered something this client cannot read."""


class _ErrorDetail(msgspec.Struct):
    code: str = ""
    message: str = ""
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class _ErrorBody(msgspec.Struct):
    error: _ErrorDetail


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer: its status, body and whether it is a stored first answer replayed
    (``Idempotent-Replay: true``, rule U7)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    replayed: bool = False
    retry_after: str | None = None
    """The ``Retry-After`` header as sent (RFC 9110 §10.2.3), if any: read it with
    ``retry_after_s``."""

    def into(self, kind: type[T]) -> T:
        """The body decoded and checked as ``kind`` (``client.wire``), or ``BadAnswer``."""
        try:
            return msgspec.json.decode(self.body, type=kind)
        except msgspec.ValidationError as exc:
            raise BadAnswer(f"HTTP {self.status}: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise BadAnswer(f"HTTP {self.status} without a JSON answer") from exc

    def refusal(self) -> ApiError:
        """The server's ``{"error": {"code", "message", "details"}}``; an answer without one
        is named by its status (``http_502``)."""
        try:
            error = msgspec.json.decode(self.body, type=_ErrorBody).error
        except (msgspec.ValidationError, msgspec.DecodeError):
            text = self.body.decode(errors="replace")[:200]
            return ApiError(f"http_{self.status}", text, self.status)
        return ApiError(
            error.code or f"http_{self.status}", error.message, self.status, error.details
        )


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds from ``now``: delay-seconds
    (``"3"``) or an HTTP date (``"Wed, 21 Oct 2026 07:28:00 GMT"``); a date already past
    (or a negative number) asks for no wait (0). None when there is no header or it is
    neither (the caller then keeps its own backoff)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _NUMBER.fullmatch(text):
        return max(0.0, float(text))  # a huge one is capped by ``retry_wait``
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110: an HTTP date is GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def retry_wait(
    value: str | None,
    now: datetime,
    *,
    default: float,
    cap: float,
    jitter: float = 0.1,
    rand: Callable[[], float] = random.random,
) -> float:
    """How long to wait before sending again after an answer with ``Retry-After: value``:
    what the server asked (``retry_after_s``) or, without a readable header, ``default``
    (the caller's own backoff); never below 0 nor above ``cap``. Up to ``jitter`` of it is
    added at random (never taken off: never sooner than asked), so that tills refused
    together do not come back together."""
    asked = retry_after_s(value, now)
    base = min(max(default if asked is None else asked, 0.0), cap)
    return min(cap, base * (1.0 + jitter * rand()))


class Http:
    """One server and a connection pool: ``async with Http(server) as http`` or ``close()``.
    Pass ``session`` to share a pool (the load test's workers); it is then not closed here.
    ``on_status(online)`` hears whether the last exchange got an answer (the till's status
    line)."""

    def __init__(
        self,
        server: str,
        *,
        timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        on_status: Callable[[bool], None] | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.timeout = timeout
        self.on_status = on_status
        self._session = session
        self._own = session is None

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": USER_AGENT},
            )
            self._own = True
        return self._session

    async def close(self) -> None:
        if self._own and self._session is not None and not self._session.closed:
            await self._session.close()
        if self._own:
            self._session = None

    async def __aenter__(self) -> Http:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _status(self, online: bool) -> None:
        if self.on_status is not None:
            self.on_status(online)

    async def send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        data: bytes | None = None,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
        token: str = "",
        key: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One exchange, whatever the status. ``body`` is sent as JSON, ``data`` as it is;
        ``token`` is the bearer, ``key`` the ``Idempotency-Key``, ``headers`` any others.
        Raises ``Unreachable``."""
        sent: dict[str, str] = dict(headers or {})
        if body is not None:
            data = msgspec.json.encode(body)
        if data is not None:
            sent["Content-Type"] = content_type
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if key:
            sent["Idempotency-Key"] = key
        try:
            async with self._pool().request(
                method, self.server + path, data=data, params=query, headers=sent
            ) as r:
                replayed = r.headers.get("Idempotent-Replay", "").lower() == "true"
                answer = Answer(
                    r.status,
                    await r.read(),
                    r.content_type,
                    replayed,
                    r.headers.get("Retry-After"),
                )
        except aiohttp.ClientConnectorError as exc:
            # the connection was never made: the request cannot have arrived
            self._status(False)
            raise Unreachable(f"cannot reach {self.server}: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._status(False)
            raise Unreachable(
                f"no answer from {self.server}: {type(exc).__name__}", maybe_sent=True
            ) from exc
        self._status(True)
        return answer

    async def fetch(self, method: str, path: str, kind: type[T], **kw: Any) -> T:
        """One exchange whose refusal raises ``ApiError`` and whose answer is ``kind``."""
        answer = await self.checked(method, path, **kw)
        return answer.into(kind)

    async def checked(self, method: str, path: str, **kw: Any) -> Answer:
        """One exchange whose refusal (4xx, 5xx) raises ``ApiError``."""
        answer = await self.send(method, path, **kw)
        if answer.status >= 400:
            raise answer.refusal()
        return answer
