"""The till's conversation with the server: a terminal signs in with its credential, quotes,
redeems, refunds and reads its day, with typed answers (``client.wire``), free of any UI. The
cashier terminal uses it, and so does the load test's till.

Failure model (rule U7, "never show a success that was not received"):

- The server refused: ``ApiError(code, message, status)``; the terminal words the code
  (``terminal/i18n.py``).
- The request certainly never arrived (connection refused): ``Unreachable``; nothing happened.
- A money-moving request (redeem, refund) may have arrived but no answer came back (timeout,
  dropped connection, 5xx, another attempt still in flight): the SAME request is sent again
  with the SAME ``Idempotency-Key`` (bounded, with backoff). If that still gives no answer,
  the redemption is looked up by its key (``GET /v1/redemptions?idempotency_key=``, with the
  request's QR code in the ``Voucher-Code`` header: the server finds "still at work" in that
  citizen's Redis slot, issue 14; a header, so the code stays out of access logs): found
  means it happened (the stored answer is the truth), ``not_found`` means it did not
  (``ApiError("not_redeemed")``). If even the lookup gets no answer: ``OutcomeUnknown``,
  carrying the key so the terminal can ask again later.
- The server is at its load limit or its database is away for a moment (503 ``server_busy``,
  ``database_unavailable``; a throttle's 429) and says when to come back (``Retry-After``,
  seconds or an HTTP date): the SAME request (same key: nothing can be redeemed twice) goes
  again no sooner than asked, plus a little jitter so that tills refused together do not come
  back together (``client.http.retry_wait``). These waits do not use up the retries; together
  they are bounded by ``retry_after_cap`` (a server asking for longer than is left is not
  retried early: the refusal stands). ``on_wait`` hears each such wait (the terminal's
  "server busy, retrying in N s").

Access tokens live 15 minutes: on a 401 ``unauthenticated`` the client signs in again and
repeats the request once, transparently.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import msgspec

from client.http import (
    Answer,
    ApiError,
    BadAnswer,
    Http,
    OutcomeUnknown,
    Unreachable,
    retry_after_s,
    retry_wait,
)
from client.wire import (
    AccessToken,
    DayReport,
    ListingPool,
    PublicCampaigns,
    Quote,
    Redemption,
    RefundApproval,
    Session,
    StaffAccess,
    TicketProgrammes,
    TicketQuote,
    TicketUse,
)
from shared.campaign import Campaign
from shared.errors import VoucherError

__all__ = [
    "ApiError",
    "BadAnswer",
    "OutcomeUnknown",
    "RetryWait",
    "StaffSession",
    "TicketContract",
    "TillClient",
    "Unreachable",
    "new_key",
]


@dataclass(frozen=True, slots=True)
class RetryWait:
    """The server refused for now and said when to come back: the same request goes again
    after ``seconds`` (``TillClient``'s ``on_wait``)."""

    seconds: float
    code: str  # the refusal's code: server_busy, database_unavailable, ...
    status: int
    path: str


# the answers that say "not now, come back after Retry-After" (RFC 9110 §10.2.3, RFC 6585)
_COME_BACK = frozenset({429, 503})
_MOST_WAITS = 100  # a server asking for no wait at all still cannot keep a till spinning


@dataclass(frozen=True, slots=True)
class StaffSession:
    """Who signed in with a staff credential (a manager approving at the till), as the
    server's answer says; the username is the one given."""

    username: str
    role: str
    merchant_id: int | None
    token: str = field(default="", repr=False)
    """What the manager's sign-in gave the till: for a refund, the approval of that one
    refund, sent as its ``Manager-Approval`` (issue 11 item 5); never stored."""


@dataclass(frozen=True, slots=True)
class TicketContract:
    """A purchase contract as a sales office enters it (rule T5): the 网签 number, the unit
    of the seller's pool, the signing date and price, and the buyer (the holder, or a person
    the ticket may serve: their ID number and the proof of the relation)."""

    contract_no: str
    unit: str
    signed_on: date
    price_fen: int
    relation: str = "holder"
    buyer_id_number: str | None = None
    relation_proof: str | None = None
    tickets: tuple[str, ...] = ()

    def body(self, token: str, amounts: Sequence[int] | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "token": token,
            "contract_no": self.contract_no,
            "unit": self.unit,
            "signed_on": self.signed_on.isoformat(),
            "price_fen": self.price_fen,
            "relation": self.relation,
        }
        optional = {
            "buyer_id_number": self.buyer_id_number,
            "relation_proof": self.relation_proof,
            "tickets": list(self.tickets) or None,
            "amounts_fen": None if amounts is None else list(amounts),
        }
        body.update((k, v) for k, v in optional.items() if v is not None)
        return body


def new_key() -> str:
    return uuid.uuid4().hex


class TillClient:
    """One terminal's conversation with the server. Create and use it inside one event loop;
    ``await close()`` when done. ``retries=0`` sends each request once (the load test), even
    when the server asks to come back later. ``retry_after_cap``: the most seconds, in all,
    one request waits as the server's ``Retry-After`` asks (see the module)."""

    def __init__(
        self,
        base_url: str,
        terminal_id: int,
        secret: str,
        *,
        timeout: float = 8.0,
        retries: int = 3,
        backoff: float = 0.4,
        retry_after_cap: float = 30.0,
        on_status: Callable[[bool], None] | None = None,
        on_wait: Callable[[RetryWait], None] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.http = Http(base_url, timeout=timeout, session=session, on_status=on_status)
        self.terminal_id = terminal_id
        self._secret = secret
        self.retries = retries
        self.backoff = backoff
        self.retry_after_cap = retry_after_cap
        self.on_wait = on_wait
        self.session_info: Session | None = None
        self._token: str | None = None
        self._sign_in_lock = asyncio.Lock()
        self._campaigns: dict[str, Campaign] = {}

    @property
    def base_url(self) -> str:
        return self.http.server

    async def close(self) -> None:
        await self.http.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        key: str = "",
        auth: bool = True,
        retries: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send, re-signing-in once on 401, and retrying the SAME request (same key) on no
        answer, 5xx, or ``idempotency_key_in_use``, with exponential backoff; a 503 or 429
        with ``Retry-After`` no sooner than the server asks (``_come_back_in``)."""
        budget = self.retries if retries is None else retries
        attempt = 0
        waited = 0.0  # seconds waited as the server asked, for this request
        waits = 0
        signed_in_again = False
        maybe_sent = False
        while True:
            token = ""
            if auth:
                try:
                    token = await self._access_token()
                except Unreachable as exc:  # this request itself was not sent (again)
                    raise Unreachable(str(exc), maybe_sent=maybe_sent) from exc
            try:
                answer = await self.http.send(
                    method, path, body=body, query=query, token=token, key=key, headers=headers
                )
            except Unreachable as exc:
                maybe_sent = maybe_sent or exc.maybe_sent
                if attempt >= budget:
                    raise Unreachable(str(exc), maybe_sent=maybe_sent) from exc
                attempt += 1
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            if answer.status < 400:
                return answer
            refusal = answer.refusal()
            if (
                answer.status == 401
                and refusal.code == "unauthenticated"
                and auth
                and not signed_in_again
            ):
                self._token = None  # the access token expired: sign in again, once
                signed_in_again = True
                continue
            if answer.status >= 500:
                maybe_sent = True
            delay = self._come_back_in(answer, budget, attempt, waited, waits)
            if delay is not None:
                waited += delay
                waits += 1
                if self.on_wait is not None:
                    self.on_wait(RetryWait(delay, refusal.code, answer.status, path))
                await asyncio.sleep(delay)
                continue
            told_when = answer.status in _COME_BACK and answer.retry_after is not None
            if told_when and answer.status >= 500:  # not sooner than asked: no backoff retry
                raise Unreachable(f"server error {answer.status} {refusal.code}", maybe_sent=True)
            if answer.status >= 500 or refusal.code == "idempotency_key_in_use":
                maybe_sent = True
                if attempt < budget:
                    attempt += 1
                    await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
                    continue
                if answer.status >= 500:
                    raise Unreachable(f"server error {answer.status}", maybe_sent=True)
            raise refusal

    def _come_back_in(
        self, answer: Answer, budget: int, attempt: int, waited: float, waits: int
    ) -> float | None:
        """Seconds to wait before sending a 503 / 429 with ``Retry-After`` again, or None
        when it is not to be retried so (no header, retries off, or the server asks for
        longer than ``retry_after_cap`` leaves: never sooner than asked)."""
        if (
            answer.status not in _COME_BACK
            or answer.retry_after is None
            or budget <= 0
            or waits >= _MOST_WAITS
        ):
            return None
        now = datetime.now(UTC)
        left = self.retry_after_cap - waited
        asked = retry_after_s(answer.retry_after, now)
        if asked is not None and asked > left:
            return None
        default = self.backoff * 2**attempt  # an unreadable header: the till's own backoff
        if asked is None and default > left:
            return None
        wait = retry_wait(answer.retry_after, now, default=default, cap=left)
        return max(wait, min(self.backoff, left))  # "now" still waits the till's backoff

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
        self._token = answer.into(AccessToken).access_token
        self.session_info = answer.into(Session)
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
        staff = answer.into(StaffAccess)
        return StaffSession(username, staff.role, staff.merchant_id, staff.access_token)

    async def refund_approval(
        self, redemption_id: int, remaining_bill_fen: int, key: str, username: str, password: str
    ) -> RefundApproval:
        """POST /v1/redemptions/{id}/refund-approvals: a manager of this till's shop, signing in
        at the till, approves one refund: this bill, down to ``remaining_bill_fen``, sent with
        the idempotency key ``key`` (issue 11 item 5). The server checks the password (a wrong
        one: ``manager_approval_required``, reason ``wrong_password``) and that it is this
        shop's manager; the manager's own token never reaches the till. Not retried: each try
        counts as a guess."""
        body = {
            "username": username,
            "password": password,
            "remaining_bill_fen": remaining_bill_fen,
            "refund_key": key,
        }
        path = f"/v1/redemptions/{int(redemption_id)}/refund-approvals"
        answer = await self._call("POST", path, body=body, retries=0)
        return answer.into(RefundApproval)

    async def _public_campaigns(self, retries: int | None = None) -> PublicCampaigns:
        answer = await self._call("GET", "/v1/campaigns", auth=False, retries=retries)
        return answer.into(PublicCampaigns)

    async def campaign(self, campaign_id: str) -> Campaign:
        """One campaign's rules (C1), from the public ``GET /v1/campaigns``; kept once read
        (a campaign's rules do not change once it has claims)."""
        known = self._campaigns.get(campaign_id)
        if known is not None:
            return known
        try:
            self._campaigns.update((await self._public_campaigns()).parsed())
        except VoucherError as exc:
            raise BadAnswer(f"campaign {campaign_id}: {exc}") from exc
        found = self._campaigns.get(campaign_id)
        if found is None:
            raise ApiError("campaign_not_found", f"no campaign {campaign_id!r}", 404)
        return found

    async def health(self) -> bool:
        """GET /healthz, once, without retries: is the server there right now?"""
        try:
            answer = await self.http.send("GET", "/healthz")
        except Unreachable:
            return False
        return answer.status == 200

    async def district_names(self) -> dict[str, str]:
        """District code -> name, from the public campaign descriptions (rule C1)."""
        return (await self._public_campaigns(retries=0)).district_names()

    async def ticket_programmes(self) -> TicketProgrammes:
        """The house-ticket programmes (issue 13), public: a sales office's till names its
        programme and districts with them."""
        answer = await self._call("GET", "/v1/ticket-programmes", auth=False, retries=0)
        return answer.into(TicketProgrammes)

    async def quote(self, token: str, bill_fen: int, receipt_no: str | None = None) -> Quote:
        """POST /v1/quote: changes nothing, so retrying is always safe. With ``receipt_no``
        the server also refuses a receipt number already used today (rule U4)."""
        body: dict[str, Any] = {"token": token, "bill_fen": bill_fen}
        if receipt_no is not None:
            body["receipt_no"] = receipt_no
        answer = await self._call("POST", "/v1/quote", body=body)
        return answer.into(Quote)

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
            return await self.redemption_by_key(key, token)
        return _redemption(answer)

    async def redemption_by_key(self, key: str, token: str) -> Redemption:
        """The truth about a redeem whose answer was lost (rule U7); ``token``: the QR code
        that redeem sent."""
        answer = await self._by_key(
            "/v1/redemptions",
            key,
            token,
            "not_redeemed",
            "the server has no redemption for this request",
        )
        return msgspec.structs.replace(answer.into(Redemption), recovered=True)

    async def _by_key(self, path: str, key: str, token: str, not_done: str, message: str) -> Answer:
        """Rule U7: what a money-moving request sent under ``key`` with the citizen's QR code
        ``token`` did, asked at ``path``: its answer; ``ApiError(not_done)`` if the server did
        nothing; ``OutcomeUnknown`` if the server cannot be asked or the request is still at
        work there. The code goes in a header (``Voucher-Code``), never the URL: it names the
        citizen in whose Redis slot the server marks the key at work (issue 14)."""
        try:
            return await self._call(
                "GET", path, query={"idempotency_key": key}, headers={"Voucher-Code": token}
            )
        except Unreachable as exc:
            raise OutcomeUnknown(key, str(exc)) from exc
        except ApiError as exc:
            if exc.code == "not_found":
                raise ApiError(not_done, message, 404) from exc
            if exc.code == "idempotency_key_in_use":  # still at work on the server: ask later
                raise OutcomeUnknown(key, exc.message) from exc
            raise

    async def find_by_receipt(self, receipt_no: str) -> Redemption:
        answer = await self._call("GET", "/v1/redemptions", query={"receipt_no": receipt_no})
        return answer.into(Redemption)

    async def get_redemption(self, redemption_id: int) -> Redemption:
        answer = await self._call("GET", f"/v1/redemptions/{int(redemption_id)}")
        return answer.into(Redemption)

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
        ``approval``: a manager's approval of this very refund (``refund_approval``, with
        the same ``key``), sent as ``Manager-Approval`` where the merchant's refunds need one
        (issue 11 item 5)."""
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
        return _redemption(answer)

    # -- a sales office (issue 13, rules T4-T8) -----------------------------------------

    async def listing_pool(self) -> ListingPool:
        """GET /v1/sales-office/pool: the seller's units (rule T4)."""
        return (await self._call("GET", "/v1/sales-office/pool")).into(ListingPool)

    async def ticket_quote(
        self, token: str, contract: TicketContract, amounts: Sequence[int] | None = None
    ) -> TicketQuote:
        """POST /v1/ticket-uses/quote: changes nothing, so retrying is always safe. Without
        ``amounts`` the server quotes the most each ticket allows."""
        answer = await self._call(
            "POST", "/v1/ticket-uses/quote", body=contract.body(token, amounts)
        )
        return answer.into(TicketQuote)

    async def use_ticket(
        self,
        token: str,
        contract: TicketContract,
        amounts: Sequence[int],
        *,
        key: str | None = None,
    ) -> TicketUse:
        """POST /v1/ticket-uses (rules T5-T8, U7): the same failure model as ``redeem``."""
        key = key or new_key()
        body = contract.body(token, amounts)
        try:
            answer = await self._call("POST", "/v1/ticket-uses", body=body, key=key)
        except Unreachable as exc:
            if not exc.maybe_sent:
                raise  # it never arrived: nothing was used
            return await self.ticket_use_by_key(key, token)
        found = answer.into(TicketUse)
        return msgspec.structs.replace(found, replayed=True) if answer.replayed else found

    async def ticket_use_by_key(self, key: str, token: str) -> TicketUse:
        """The truth about a ticket use whose answer was lost (rule U7); ``token``: the
        holder's code that use sent."""
        answer = await self._by_key(
            "/v1/ticket-uses",
            key,
            token,
            "not_used",
            "the server has no ticket use for this request",
        )
        return msgspec.structs.replace(answer.into(TicketUse), recovered=True)

    async def day(self, day: date | None = None) -> DayReport:
        """GET /v1/merchant/day (rule S2); without a date the server's today."""
        query = {"date": day.isoformat()} if day is not None else None
        answer = await self._call("GET", "/v1/merchant/day", query=query)
        return answer.into(DayReport)


def _redemption(answer: Answer) -> Redemption:
    found = answer.into(Redemption)
    return msgspec.structs.replace(found, replayed=True) if answer.replayed else found
