"""A citizen's side of the API, as the load test drives it: sign in through the demo's
development identity provider, claim a certificate's vouchers, show a QR code. (A real
citizen uses the city's app and the wallet pages, not this.)"""

from __future__ import annotations

import aiohttp

from client.http import ApiError, Http
from client.wire import AccessToken, Claimed, DevAssertion, QrToken


class CitizenClient:
    """One citizen: ``await sign_in_demo(id_number)``, then ``claim`` and ``qr``. Pass
    ``session`` to share a connection pool."""

    def __init__(
        self, server: str, *, timeout: float = 30.0, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.http = Http(server, timeout=timeout, session=session)
        self.token = ""

    async def close(self) -> None:
        await self.http.close()

    async def sign_in_demo(self, id_number: str) -> str:
        """An access token through the demo server's development identity provider (rule X2);
        ``ApiError("no_dev_idp")`` when the server has none (production)."""
        body = {"id_number": id_number}
        found = await self.http.send("POST", "/dev/idp/assertion", body=body)
        if found.status == 404:
            raise ApiError("no_dev_idp", "the server has no development identity provider", 404)
        if found.status >= 400:
            raise found.refusal()
        assertion = found.into(DevAssertion).assertion
        access = await self.http.fetch(
            "POST", "/v1/auth/citizen", AccessToken, body={"assertion": assertion}
        )
        self.token = access.access_token
        return self.token

    async def claim(self, certificate_no: str) -> Claimed:
        """POST /v1/claims (rules E2-E4, A1-A3, V1)."""
        body = {"certificate_no": certificate_no}
        return await self.http.fetch("POST", "/v1/claims", Claimed, body=body, token=self.token)

    async def qr(self) -> QrToken:
        """POST /v1/wallet/qr (rule U5): a fresh code for the till to scan."""
        return await self.http.fetch("POST", "/v1/wallet/qr", QrToken, token=self.token)
