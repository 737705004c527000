"""The operators' conversation with the server (``voucherctl``, the load test): a staff account
signs in, then registry imports, merchants, terminals, campaigns, citizens' participation,
accounts, settlement, the ranking and the audit log, each a method with a typed answer
(``client.wire``). One attempt per call: an operator sees a refusal at once
(``ApiError``, the server's code) and a server out of reach as ``Unreachable`` naming it."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal

import aiohttp

from client.http import Http, T
from client.wire import (
    Account,
    Accounts,
    AuditLog,
    IssuedTerminal,
    Merchant,
    Merchants,
    MerchantSettings,
    PublicCampaigns,
    Ranking,
    RegistryImport,
    RevokedCitizen,
    RevokedTerminal,
    Settlement,
    StaffAccess,
)

MerchantChange = Literal["admission", "permission", "suspension"]
FLAG_OF: Mapping[MerchantChange, str] = {
    "admission": "admitted",  # rule U1, the city
    "permission": "permitted",  # rule U1, the district
    "suspension": "suspended",  # rule X1
}


class StaffClient:
    """``async with StaffClient(server) as api: await api.sign_in(user, password); ...``.
    ``token`` resumes a session signed in before."""

    def __init__(
        self,
        server: str,
        *,
        token: str = "",
        timeout: float = 120.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.http = Http(server, timeout=timeout, session=session)
        self.token = token

    @property
    def server(self) -> str:
        return self.http.server

    async def __aenter__(self) -> StaffClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.http.close()

    async def sign_in(self, username: str, password: str) -> StaffAccess:
        """POST /v1/auth/staff (rule X2); the token is kept for the calls that follow."""
        body = {"username": username, "password": password}
        access = await self.http.fetch("POST", "/v1/auth/staff", StaffAccess, body=body)
        self.token = access.access_token
        return access

    async def _post(self, path: str, kind: type[T], body: Any) -> T:
        return await self.http.fetch("POST", path, kind, body=body, token=self.token)

    async def _get(self, path: str, kind: type[T], query: Mapping[str, str] | None = None) -> T:
        return await self.http.fetch("GET", path, kind, query=query, token=self.token)

    async def _bytes(self, path: str, query: Mapping[str, str] | None = None) -> bytes:
        answer = await self.http.checked("GET", path, query=query, token=self.token)
        return answer.body

    # --- public -----------------------------------------------------------------------------

    async def campaigns(self) -> PublicCampaigns:
        """GET /v1/campaigns (rule C1): every campaign's rules, public."""
        return await self.http.fetch("GET", "/v1/campaigns", PublicCampaigns)

    # --- the registry and campaign files (rules E3, C1) --------------------------------------

    async def import_registry(self, csv: bytes, *, dry_run: bool) -> RegistryImport:
        return await self.http.fetch(
            "POST",
            "/v1/registry/imports",
            RegistryImport,
            data=csv,
            content_type="text/csv",
            query={"dry_run": "true" if dry_run else "false"},
            token=self.token,
        )

    async def load_campaign(self, toml: bytes) -> dict[str, Any]:
        """POST /v1/campaigns: the loaded campaign's rules, as ``GET /v1/campaigns`` gives
        them (``shared.campaign.load_campaign_dict`` reads them)."""
        loaded: dict[str, Any] = await self.http.fetch(
            "POST",
            "/v1/campaigns",
            dict[str, Any],
            data=toml,
            content_type="application/toml",
            token=self.token,
        )
        return loaded

    # --- merchants and terminals (rules U1, X1, X2) ------------------------------------------

    async def merchants(self, district: str | None = None) -> Merchants:
        query = {"district": district} if district else None
        return await self._get("/v1/merchants", Merchants, query)

    async def add_merchant(self, name: str, district: str) -> Merchant:
        return await self._post("/v1/merchants", Merchant, {"name": name, "district": district})

    async def change_merchant(
        self, merchant_id: int, change: MerchantChange, value: bool, reason: str
    ) -> Merchant:
        """Admit (or not), permit (or withdraw), suspend (or resume) a merchant."""
        body = {FLAG_OF[change]: value, "reason": reason}
        return await self._post(f"/v1/merchants/{merchant_id}/{change}", Merchant, body)

    async def merchant_settings(self, merchant_id: int) -> MerchantSettings:
        """GET /v1/merchants/{id}/settings: receipts per till (U4), refunds approved by a
        manager (issue 11 item 5)."""
        return await self._get(f"/v1/merchants/{merchant_id}/settings", MerchantSettings)

    async def change_merchant_settings(
        self,
        merchant_id: int,
        reason: str,
        *,
        receipts_per_till: bool | None = None,
        refund_needs_manager: bool | None = None,
    ) -> MerchantSettings:
        """POST /v1/merchants/{id}/settings with a reason (audited, rule X1); a setting left
        None stays as it is."""
        body: dict[str, Any] = {"reason": reason}
        for name, value in (
            ("receipts_per_till", receipts_per_till),
            ("refund_needs_manager", refund_needs_manager),
        ):
            if value is not None:
                body[name] = value
        return await self._post(f"/v1/merchants/{merchant_id}/settings", MerchantSettings, body)

    async def issue_terminal(self, merchant_id: int, label: str) -> IssuedTerminal:
        path = f"/v1/merchants/{merchant_id}/terminals"
        return await self._post(path, IssuedTerminal, {"label": label})

    async def revoke_terminal(self, terminal_id: int, reason: str) -> RevokedTerminal:
        path = f"/v1/terminals/{terminal_id}/revocation"
        return await self._post(path, RevokedTerminal, {"reason": reason})

    # --- citizens (rule X1) -----------------------------------------------------------------

    async def revoke_citizen(self, id_number: str, reason: str) -> RevokedCitizen:
        body = {"id_number": id_number, "reason": reason}
        return await self._post("/v1/citizens/revocation", RevokedCitizen, body)

    # --- staff accounts (rule X2) -----------------------------------------------------------

    async def accounts(self, *, role: str | None = None, username: str | None = None) -> Accounts:
        query = {k: v for k, v in (("role", role), ("username", username)) if v}
        return await self._get("/v1/accounts", Accounts, query or None)

    async def add_account(self, body: Mapping[str, Any]) -> Account:
        """``username``, ``role``, its ``district`` or ``merchant_id``, ``reason`` and
        optionally ``password`` (else the server generates one and shows it once)."""
        return await self._post("/v1/accounts", Account, dict(body))

    async def change_account(
        self,
        account_id: int,
        what: Literal["status", "role", "password"],
        body: Mapping[str, Any],
    ) -> Account:
        return await self._post(f"/v1/accounts/{account_id}/{what}", Account, body)

    # --- settlement, the ranking, the audit log (rules S1, S3, X1) --------------------------

    async def build_settlement(self, campaign_id: str, district: str, month: str) -> Settlement:
        body = {"campaign_id": campaign_id, "district": district, "month": month}
        return await self._post("/v1/settlements", Settlement, body)

    async def settlement(self, settlement_id: int) -> Settlement:
        return await self._get(f"/v1/settlements/{settlement_id}", Settlement, None)

    async def settlement_step(
        self, settlement_id: int, step: str, note: str | None = None
    ) -> Settlement:
        body = {"step": step, **({"note": note} if note else {})}
        path = f"/v1/settlements/{settlement_id}/steps"
        return await self._post(path, Settlement, body)

    async def settlement_csv(self, settlement_id: int) -> bytes:
        """The finance bureau's CSV (UTF-8 with a BOM), as the server wrote it."""
        return await self._bytes(f"/v1/settlements/{settlement_id}/csv")

    async def ranking(self, month: str) -> Ranking:
        return await self._get("/v1/reports/ranking", Ranking, {"month": month})

    async def ranking_file(self, month: str, fmt: Literal["csv", "png"]) -> bytes:
        return await self._bytes("/v1/reports/ranking", {"month": month, "format": fmt})

    async def audit(self, query: Mapping[str, str]) -> AuditLog:
        """Filters: ``actor``, ``action``, ``from``, ``to`` (local dates)."""
        return await self._get("/v1/audit", AuditLog, query or None)
