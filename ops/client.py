"""The operators' API client: one typed client over the server's HTTP API for ``voucherctl``
and the load test (aiohttp, asyncio). Errors come back as ``ApiError`` with the server's stable
code (``{"error": {"code", "message", "details"}}``), an absent server as ``Unreachable``
naming the address tried.

The cashier terminal has its own client (terminal/client.py: retries under the same
idempotency key, asks for the truth after a lost answer), and the benchmark its own lean load
generator (scripts/bench/loadgen.py: pre-formatted HTTP/1.1 so that the measuring tool costs
little next to what it measures).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp


class Unreachable(Exception):
    """No answer from the server: the message names the address tried."""


@dataclass
class ApiError(Exception):
    """The server refused: its HTTP status and stable error code."""

    status: int
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str | None:
        """The server's stable error code of a refusal, or None."""
        if self.status < 400:
            return None
        try:
            return str(self.json()["error"]["code"])
        except (ValueError, KeyError, TypeError):
            return f"http_{self.status}"


class Client:
    """``async with Client(server) as api: ...``; pass ``session`` to share connections (the
    load test's workers share one pool)."""

    def __init__(
        self,
        server: str,
        *,
        token: str = "",
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 120,
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self._session = session
        self._own = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def __aenter__(self) -> Client:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        query: dict[str, str] | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
        token: str | None = None,
        idempotency_key: str = "",
        check: bool = True,
    ) -> Response:
        """One call. ``token``: whose (default: the client's own; "" for none). With
        ``check`` a refusal raises ``ApiError``; without, it is returned."""
        assert self._session is not None, "use the client in `async with`"
        bearer = self.token if token is None else token
        headers: dict[str, str] = {}
        data = raw
        if data is None and json_body is not None:
            data = json.dumps(json_body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            async with self._session.request(
                method, self.server + path, data=data, params=query, headers=headers
            ) as r:
                answer = Response(r.status, await r.read(), r.content_type)
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise Unreachable(f"cannot reach {self.server}: {exc}") from exc
        if check and answer.status >= 400:
            raise _error(answer)
        return answer

    async def json(self, method: str, path: str, **kw: Any) -> Any:
        return (await self.request(method, path, **kw)).json()

    # --- signing in -------------------------------------------------------------------------

    async def sign_in_staff(self, username: str, password: str) -> str:
        body = {"username": username, "password": password}
        self.token = str(
            (await self.json("POST", "/v1/auth/staff", json_body=body, token=""))["access_token"]
        )
        return self.token

    async def sign_in_terminal(self, terminal_id: int, secret: str) -> str:
        body = {"terminal_id": terminal_id, "secret": secret}
        answer = await self.json("POST", "/v1/auth/terminal", json_body=body, token="")
        return str(answer["access_token"])

    async def citizen_token(self, id_number: str) -> str:
        """A citizen's access token through the demo's development identity provider."""
        found = await self.request(
            "POST", "/dev/idp/assertion", json_body={"id_number": id_number}, token="", check=False
        )
        if found.status == 404:
            raise ApiError(404, "not_found", "the server has no development identity provider")
        if found.status >= 400:
            raise _error(found)
        body = {"assertion": found.json()["assertion"]}
        return str(
            (await self.json("POST", "/v1/auth/citizen", json_body=body, token=""))["access_token"]
        )

    # --- reading ----------------------------------------------------------------------------

    async def campaigns(self) -> list[dict[str, Any]]:
        return list((await self.json("GET", "/v1/campaigns", token=""))["campaigns"])


def _error(answer: Response) -> ApiError:
    try:
        error = answer.json()["error"]
        return ApiError(answer.status, error["code"], error["message"], error.get("details") or {})
    except (ValueError, KeyError, TypeError):
        text = answer.body.decode(errors="replace")[:200]
        return ApiError(answer.status, f"http_{answer.status}", text)
