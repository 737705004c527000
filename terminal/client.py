"""The till's HTTP client: the server's API as typed results, free of any UI.

Failure model (rule U7, "never show a success that was not received"):

- The server answered with an error: ``ApiError(code, message, status)``; the code is the
  server's stable code (``shared/errors.py``), the terminal words it (``terminal/i18n.py``).
- The server could not be reached and the request certainly never arrived (connection
  refused): ``Unreachable``; nothing happened.
- A money-moving request (redeem, refund) may have arrived but no answer came back (timeout,
  dropped connection, 5xx, another attempt still in flight): the SAME request is sent again
  with the SAME ``Idempotency-Key`` (bounded, with backoff). If that still gives no answer,
  the redemption is looked up by its key (``GET /v1/redemptions?idempotency_key=``): found
  means it happened (the stored answer is the truth), ``not_found`` means it did not
  (``ApiError("not_redeemed")``). If even the lookup gets no answer: ``OutcomeUnknown``,
  carrying the key so the terminal can ask again later.

Access tokens live 15 minutes: on a 401 ``unauthenticated`` the client signs in again and
repeats the request once, transparently.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

import aiohttp

from shared.campaign import Campaign, load_campaign_dict
from shared.errors import VoucherError

USER_AGENT = "liaocheng-voucher-terminal/0.1"


class ApiError(Exception):
    """The server refused, with a stable error code."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.details = dict(details or {})


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
    """The server answered something this terminal cannot read."""


# --- typed results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Merchant:
    id: int
    name: str
    district: str
    status: str = "active"
    admitted: bool = True
    permitted: bool = True
    receipts_per_till: bool = False
    """Rule U4: each till numbers its receipts on its own (the merchant's setting)."""
    refund_needs_manager: bool = False
    """A refund needs a manager's approval (the merchant's setting, enforced by the server)."""


@dataclass(frozen=True, slots=True)
class TerminalInfo:
    id: int
    label: str


@dataclass(frozen=True, slots=True)
class Session:
    terminal: TerminalInfo
    merchant: Merchant
    expires_in: int


@dataclass(frozen=True, slots=True)
class Quote:
    """What a bill allows (rules U3, U6). ``usable_count`` is the most the cashier may use."""

    masked_id: str
    campaign_id: str
    bill_fen: int
    face_value_fen: int
    available_count: int
    max_by_bill: int
    usable_count: int
    value_fen: int
    remaining_fen: int
    merchant_name: str
    token_expires_at: str

    def covered_fen(self, count: int) -> int:
        """Rule U3: the value of ``count`` vouchers on this bill; the rest is paid otherwise."""
        return min(count, self.usable_count) * self.face_value_fen

    def to_pay_fen(self, count: int) -> int:
        return self.bill_fen - self.covered_fen(count)


@dataclass(frozen=True, slots=True)
class RefundEntry:
    refund_id: int
    remaining_bill_fen: int
    returned_count: int
    voucher_ids: tuple[int, ...]
    created_at: str
    cash_back_fen: int | None = None
    """The cash this refund handed back, as the server reckons it (rules U3, F2)."""


@dataclass(frozen=True, slots=True)
class Redemption:
    redemption_id: int
    receipt_no: str
    campaign_id: str
    merchant_id: int
    merchant_name: str
    terminal_id: int
    terminal_label: str
    masked_id: str
    bill_fen: int
    current_bill_fen: int
    face_value_fen: int
    voucher_count: int
    value_fen: int
    remaining_fen: int
    refunded_count: int
    live_voucher_count: int
    voucher_ids: tuple[int, ...]
    returned_voucher_ids: tuple[int, ...]
    status: str
    settled: bool
    created_at: str
    refunds: tuple[RefundEntry, ...] = ()
    vouchers_left: int | None = None
    """The citizen's vouchers left after this redemption, when the server says
    (``citizen.vouchers_left``); printed on the receipt."""
    replayed: bool = False
    """The server gave the stored first answer to a retried request (rule U7)."""
    recovered: bool = False
    """The answer was lost on the way; the terminal learnt it by asking for its key."""


@dataclass(frozen=True, slots=True)
class DayRedemption:
    redemption_id: int
    time: str
    receipt_no: str
    terminal_id: int
    terminal_label: str
    bill_fen: int
    voucher_count: int
    refunded_count: int
    value_fen: int


@dataclass(frozen=True, slots=True)
class DayRefund:
    refund_id: int
    time: str
    redemption_id: int
    receipt_no: str
    terminal_id: int
    returned_count: int
    value_fen: int
    terminal_label: str = ""
    cash_back_fen: int = 0
    """The cash this refund handed back to the customer (issue 11 item 7)."""


@dataclass(frozen=True, slots=True)
class DayTotals:
    bills: int = 0
    vouchers: int = 0
    value_fen: int = 0
    bill_fen: int = 0
    refunds: int = 0
    returned_vouchers: int = 0
    returned_value_fen: int = 0
    net_value_fen: int = 0


@dataclass(frozen=True, slots=True)
class DayReport:
    """Rule S2: the merchant's redemptions and refunds of one date."""

    date: str
    redemptions: tuple[DayRedemption, ...]
    refunds: tuple[DayRefund, ...]
    totals: DayTotals = field(default_factory=DayTotals)


@dataclass(frozen=True, slots=True)
class StaffSession:
    """Who signed in with a staff credential (``POST /v1/auth/staff``): the role and the
    merchant, as the server's answer says them."""

    username: str
    role: str
    merchant_id: int | None
    token: str = field(default="", repr=False)
    """The manager's access token: sent once as a refund's ``Manager-Approval`` (issue 11
    item 5), never stored."""


# --- parsing the server's JSON -----------------------------------------------------------


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if type(value) is not int:
        raise BadAnswer(f"{name} is not a whole number")
    return value


def _fen(data: Mapping[str, Any], name: str) -> int:
    """Money is whole fen, never a float (shared/money.py)."""
    value = data.get(name)
    if type(value) is not int:
        raise BadAnswer(f"{name} is not a whole number of fen")
    return value


def _optional_int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    return value if type(value) is int else None


def _str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    return str(value)


def _obj(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    return value if isinstance(value, Mapping) else {}


def _ids(data: Mapping[str, Any], name: str) -> tuple[int, ...]:
    value = data.get(name) or []
    if not isinstance(value, list):
        raise BadAnswer(f"{name} is not a list")
    return tuple(int(v) for v in value)


def parse_session(data: Mapping[str, Any]) -> Session:
    terminal, merchant = _obj(data, "terminal"), _obj(data, "merchant")
    return Session(
        terminal=TerminalInfo(_int(terminal, "id"), _str(terminal, "label")),
        merchant=Merchant(
            id=_int(merchant, "id"),
            name=_str(merchant, "name"),
            district=_str(merchant, "district"),
            status=_str(merchant, "status") or "active",
            admitted=bool(merchant.get("admitted", True)),
            permitted=bool(merchant.get("permitted", True)),
            receipts_per_till=merchant.get("receipts_per_till") is True,
            refund_needs_manager=merchant.get("refund_needs_manager") is True,
        ),
        expires_in=int(data.get("expires_in") or 0),
    )


def parse_quote(data: Mapping[str, Any]) -> Quote:
    return Quote(
        masked_id=_str(_obj(data, "citizen"), "masked_id"),
        campaign_id=_str(data, "campaign_id"),
        bill_fen=_fen(data, "bill_fen"),
        face_value_fen=_fen(data, "face_value_fen"),
        available_count=_int(data, "available_count"),
        max_by_bill=_int(data, "max_by_bill"),
        usable_count=_int(data, "usable_count"),
        value_fen=_fen(data, "value_fen"),
        remaining_fen=_fen(data, "remaining_fen"),
        merchant_name=_str(_obj(data, "merchant"), "name"),
        token_expires_at=_str(data, "token_expires_at"),
    )


def parse_redemption(
    data: Mapping[str, Any], *, replayed: bool = False, recovered: bool = False
) -> Redemption:
    merchant, terminal = _obj(data, "merchant"), _obj(data, "terminal")
    refunds = data.get("refunds") or []
    return Redemption(
        redemption_id=_int(data, "redemption_id"),
        receipt_no=_str(data, "receipt_no"),
        campaign_id=_str(data, "campaign_id"),
        merchant_id=int(merchant.get("id") or 0),
        merchant_name=_str(merchant, "name"),
        terminal_id=int(terminal.get("id") or 0),
        terminal_label=_str(terminal, "label"),
        masked_id=_str(_obj(data, "citizen"), "masked_id"),
        bill_fen=_fen(data, "bill_fen"),
        current_bill_fen=_fen(data, "current_bill_fen")
        if "current_bill_fen" in data
        else _fen(data, "bill_fen"),
        face_value_fen=_fen(data, "face_value_fen"),
        voucher_count=_int(data, "voucher_count"),
        value_fen=_fen(data, "value_fen"),
        remaining_fen=_fen(data, "remaining_fen"),
        refunded_count=int(data.get("refunded_count") or 0),
        live_voucher_count=int(data.get("live_voucher_count", data.get("voucher_count")) or 0),
        voucher_ids=_ids(data, "voucher_ids"),
        returned_voucher_ids=_ids(data, "returned_voucher_ids"),
        status=_str(data, "status"),
        settled=bool(data.get("settled", False)),
        created_at=_str(data, "created_at"),
        refunds=tuple(
            RefundEntry(
                refund_id=_int(f, "refund_id"),
                remaining_bill_fen=_fen(f, "remaining_bill_fen"),
                returned_count=_int(f, "returned_count"),
                voucher_ids=_ids(f, "voucher_ids"),
                created_at=_str(f, "created_at"),
                cash_back_fen=_optional_int(f, "cash_back_fen"),
            )
            for f in refunds
            if isinstance(f, Mapping)
        ),
        vouchers_left=_optional_int(_obj(data, "citizen"), "vouchers_left"),
        replayed=replayed,
        recovered=recovered,
    )


def parse_day(data: Mapping[str, Any]) -> DayReport:
    totals = _obj(data, "totals")
    return DayReport(
        date=_str(data, "date"),
        redemptions=tuple(
            DayRedemption(
                redemption_id=_int(r, "redemption_id"),
                time=_str(r, "time"),
                receipt_no=_str(r, "receipt_no"),
                terminal_id=int(_obj(r, "terminal").get("id") or 0),
                terminal_label=_str(_obj(r, "terminal"), "label"),
                bill_fen=_fen(r, "bill_fen"),
                voucher_count=_int(r, "voucher_count"),
                refunded_count=int(r.get("refunded_count") or 0),
                value_fen=_fen(r, "value_fen"),
            )
            for r in data.get("redemptions") or []
        ),
        refunds=tuple(
            DayRefund(
                refund_id=_int(f, "refund_id"),
                time=_str(f, "time"),
                redemption_id=_int(f, "redemption_id"),
                receipt_no=_str(f, "receipt_no"),
                terminal_id=int(f.get("terminal_id") or 0),
                returned_count=_int(f, "returned_count"),
                value_fen=_fen(f, "value_fen"),
                terminal_label=_str(_obj(f, "terminal"), "label"),
                cash_back_fen=int(f.get("cash_back_fen") or 0),
            )
            for f in data.get("refunds") or []
        ),
        totals=DayTotals(**{f.name: int(totals.get(f.name) or 0) for f in fields(DayTotals)}),
    )


# --- the client --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: dict[str, Any]
    replayed: bool


class TillClient:
    """One terminal's conversation with the server. Create and use it inside one event loop;
    ``await close()`` when done."""

    def __init__(
        self,
        base_url: str,
        terminal_id: int,
        secret: str,
        *,
        timeout: float = 8.0,
        retries: int = 3,
        backoff: float = 0.4,
        on_status: Callable[[bool], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.terminal_id = terminal_id
        self._secret = secret
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.on_status = on_status
        self.session_info: Session | None = None
        self._token: str | None = None
        self._http: aiohttp.ClientSession | None = None
        self._sign_in_lock = asyncio.Lock()
        self._campaigns: dict[str, Campaign] = {}

    # -- plumbing ---------------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": USER_AGENT},
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()
        self._http = None

    def _status(self, online: bool) -> None:
        if self.on_status is not None:
            self.on_status(online)

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
    ) -> _Answer:
        """One HTTP exchange. Raises Unreachable (maybe_sent tells whether it may have
        arrived)."""
        try:
            async with self._client().request(
                method, self.base_url + path, json=body, params=params, headers=dict(headers)
            ) as response:
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = None
                status = response.status
                replayed = response.headers.get("Idempotent-Replay", "").lower() == "true"
        except aiohttp.ClientConnectorError as exc:
            # the connection was never made: the request cannot have arrived
            self._status(False)
            raise Unreachable(f"cannot connect to {self.base_url}: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._status(False)
            raise Unreachable(
                f"no answer from {self.base_url}: {type(exc).__name__}", maybe_sent=True
            ) from exc
        self._status(True)
        if not isinstance(data, dict):
            if status >= 500:
                data = {}
            else:
                raise BadAnswer(f"{method} {path}: HTTP {status} without a JSON object")
        return _Answer(status, data, replayed)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        key: str | None = None,
        auth: bool = True,
        retries: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Answer:
        """Send, re-signing-in once on 401, and retrying the SAME request (same key) on no
        answer, 5xx, or ``idempotency_key_in_use``, with exponential backoff."""
        budget = self.retries if retries is None else retries
        attempt = 0
        signed_in_again = False
        maybe_sent = False
        while True:
            sent: dict[str, str] = dict(headers or {})
            if key is not None:
                sent["Idempotency-Key"] = key
            if auth:
                try:
                    sent["Authorization"] = f"Bearer {await self._access_token()}"
                except Unreachable as exc:  # this request itself was not sent (again)
                    raise Unreachable(str(exc), maybe_sent=maybe_sent) from exc
            try:
                answer = await self._exchange(method, path, body=body, params=params, headers=sent)
            except Unreachable as exc:
                maybe_sent = maybe_sent or exc.maybe_sent
                if attempt >= budget:
                    raise Unreachable(str(exc), maybe_sent=maybe_sent) from exc
                attempt += 1
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            if answer.status < 400:
                return answer
            error = _obj(answer.body, "error")
            code = _str(error, "code") or ("internal_error" if answer.status >= 500 else "")
            message = _str(error, "message")
            if answer.status == 401 and code == "unauthenticated" and auth and not signed_in_again:
                self._token = None  # the access token expired: sign in again, once
                signed_in_again = True
                continue
            if answer.status >= 500 or code == "idempotency_key_in_use":
                maybe_sent = True
                if attempt < budget:
                    attempt += 1
                    await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
                    continue
                if answer.status >= 500:
                    raise Unreachable(f"server error {answer.status}", maybe_sent=True)
            raise ApiError(code or "bad_request", message, answer.status, _obj(error, "details"))

    async def _access_token(self) -> str:
        if self._token is None:
            async with self._sign_in_lock:
                if self._token is None:
                    await self.sign_in()
        assert self._token is not None
        return self._token

    # -- the API ----------------------------------------------------------------------

    async def sign_in(self) -> Session:
        """POST /v1/auth/terminal: a fresh access token, and who this terminal is."""
        answer = await self._call(
            "POST",
            "/v1/auth/terminal",
            body={"terminal_id": self.terminal_id, "secret": self._secret},
            auth=False,
        )
        token = answer.body.get("access_token")
        if not isinstance(token, str) or not token:
            raise BadAnswer("no access token in the sign-in answer")
        self._token = token
        self.session_info = parse_session(answer.body)
        return self.session_info

    async def staff_sign_in(self, username: str, password: str) -> StaffSession:
        """POST /v1/auth/staff: a staff member's credential, checked by the server (rule X2),
        for a manager's approval at the till. The token is not kept: the till goes on as
        itself. Not retried: each try counts as a guess (the server's throttle)."""
        answer = await self._call(
            "POST",
            "/v1/auth/staff",
            body={"username": username, "password": password},
            auth=False,
            retries=0,
        )
        token = answer.body.get("access_token")
        if not isinstance(token, str) or not token:
            raise BadAnswer("no access token in the staff sign-in answer")
        return StaffSession(
            username=username,
            role=_str(answer.body, "role"),
            merchant_id=_optional_int(answer.body, "merchant_id"),
            token=token,
        )

    async def campaign(self, campaign_id: str) -> Campaign:
        """One campaign's rules (C1), from the public ``GET /v1/campaigns``; kept once read
        (a campaign's rules do not change once it has claims)."""
        known = self._campaigns.get(campaign_id)
        if known is not None:
            return known
        answer = await self._call("GET", "/v1/campaigns", auth=False)
        for data in answer.body.get("campaigns") or []:
            if isinstance(data, Mapping) and data.get("id") == campaign_id:
                try:
                    found = load_campaign_dict(data, source="GET /v1/campaigns")
                except VoucherError as exc:
                    raise BadAnswer(f"campaign {campaign_id}: {exc}") from exc
                self._campaigns[campaign_id] = found
                return found
        raise ApiError("campaign_not_found", f"no campaign {campaign_id!r}", 404)

    async def health(self) -> bool:
        """GET /healthz, once, without retries: is the server there right now?"""
        try:
            answer = await self._exchange("GET", "/healthz", body=None, params=None, headers={})
        except (Unreachable, BadAnswer):
            return False
        return answer.status == 200

    async def district_names(self) -> dict[str, str]:
        """District code -> name, from the public campaign descriptions (rule C1)."""
        answer = await self._call("GET", "/v1/campaigns", auth=False, retries=0)
        names: dict[str, str] = {}
        for campaign in answer.body.get("campaigns") or []:
            for code, district in (campaign.get("districts") or {}).items():
                if isinstance(district, Mapping) and district.get("name"):
                    names.setdefault(str(code), str(district["name"]))
        return names

    async def quote(self, token: str, bill_fen: int, receipt_no: str | None = None) -> Quote:
        """POST /v1/quote: changes nothing, so retrying is always safe. With ``receipt_no``
        the server also refuses a receipt number already used today (rule U4)."""
        body: dict[str, Any] = {"token": token, "bill_fen": bill_fen}
        if receipt_no is not None:
            body["receipt_no"] = receipt_no
        answer = await self._call("POST", "/v1/quote", body=body)
        return parse_quote(answer.body)

    async def redeem(
        self,
        token: str,
        bill_fen: int,
        receipt_no: str,
        voucher_count: int,
        *,
        key: str | None = None,
    ) -> Redemption:
        """POST /v1/redemptions (rules U1-U7). See the module docstring for failures."""
        key = key or new_key()
        body = {
            "token": token,
            "bill_fen": bill_fen,
            "receipt_no": receipt_no,
            "voucher_count": voucher_count,
        }
        try:
            answer = await self._call("POST", "/v1/redemptions", body=body, key=key)
        except Unreachable as exc:
            if not exc.maybe_sent:
                raise  # it never arrived: nothing was redeemed
            return await self.redemption_by_key(key)
        return parse_redemption(answer.body, replayed=answer.replayed)

    async def redemption_by_key(self, key: str) -> Redemption:
        """The truth about a redeem whose answer was lost (rule U7)."""
        try:
            answer = await self._call(
                "GET", "/v1/redemptions", params={"idempotency_key": key}, retries=self.retries
            )
        except Unreachable as exc:
            raise OutcomeUnknown(key, str(exc)) from exc
        except ApiError as exc:
            if exc.code == "not_found":
                raise ApiError(
                    "not_redeemed", "the server has no redemption for this request", 404
                ) from exc
            if exc.code == "idempotency_key_in_use":  # still at work on the server: ask later
                raise OutcomeUnknown(key, exc.message) from exc
            raise
        return parse_redemption(answer.body, recovered=True)

    async def find_by_receipt(self, receipt_no: str) -> Redemption:
        answer = await self._call("GET", "/v1/redemptions", params={"receipt_no": receipt_no})
        return parse_redemption(answer.body)

    async def get_redemption(self, redemption_id: int) -> Redemption:
        answer = await self._call("GET", f"/v1/redemptions/{int(redemption_id)}")
        return parse_redemption(answer.body)

    async def refund(
        self,
        redemption_id: int,
        remaining_bill_fen: int,
        *,
        key: str | None = None,
        approval: str = "",
    ) -> Redemption:
        """POST /v1/redemptions/{id}/refunds (rules F1-F3). With no answer after the retries:
        ``OutcomeUnknown`` (sending the same key again later gives the first answer).
        ``approval``: a manager's access token, sent as ``Manager-Approval`` where the
        merchant's refunds need one (issue 11 item 5)."""
        key = key or new_key()
        try:
            answer = await self._call(
                "POST",
                f"/v1/redemptions/{int(redemption_id)}/refunds",
                body={"remaining_bill_fen": remaining_bill_fen},
                key=key,
                headers={"Manager-Approval": approval} if approval else None,
            )
        except Unreachable as exc:
            if not exc.maybe_sent:
                raise
            raise OutcomeUnknown(key, str(exc)) from exc
        return parse_redemption(answer.body, replayed=answer.replayed)

    async def day(self, day: date | None = None) -> DayReport:
        """GET /v1/merchant/day (rule S2); without a date the server's today."""
        params = {"date": day.isoformat()} if day is not None else None
        answer = await self._call("GET", "/v1/merchant/day", params=params)
        return parse_day(answer.body)


def new_key() -> str:
    return uuid.uuid4().hex
