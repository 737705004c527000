"""House tickets at the issuer and the operators (issue 13, rules T1-T14), as ``voucherctl``
speaks to the server: each call a function of a signed-in ``client.staff.StaffClient``, each
answer a frozen Struct (the client's view of ``server/schemas.py``'s answer, fields it reads
only; ``tests/unit/test_ticket_client_wire.py`` holds them to the server's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import Struct

from client.http import T
from client.staff import StaffClient
from client.wire import RejectReason

# --- answers ----------------------------------------------------------------------------


class HouseTicket(Struct, frozen=True):
    """Rules T1-T3, T6, T13: a ticket or piece; persons masked (X3)."""

    id: int
    campaign_id: str
    number: str
    district: str
    holder: str
    face_value_fen: int
    balance_fen: int
    used_fen: int
    cashed_out_fen: int
    returned_fen: int
    split_out_fen: int
    issued_on: str
    deadline: str
    status: str
    original_id: int
    parent_id: int | None
    void_numbers: tuple[str, ...]
    home_kept_doc: str | None = None  # T4: the record that the household keeps a home
    home_kept_on: str | None = None


class TicketEvent(Struct, frozen=True):
    at: str
    actor: str
    act: str
    amount_fen: int | None
    documents: dict[str, str]


class TicketPayout(Struct, frozen=True):
    """Rules T9, T10: a cash-out or bonus to the holder, and its payment."""

    id: int
    original_id: int
    number: str
    kind: str
    amount_fen: int
    due_by: str | None
    decided_on: str
    document_no: str
    paid_on: str | None
    payment_no: str | None


class FamilySummary(Struct, frozen=True):
    face_value_fen: int
    balance_fen: int
    used_fen: int
    cashed_out_fen: int
    subsidy_fen: int
    reward_fen: int
    cashout_refusal: str | None


class TicketFile(Struct, frozen=True):
    ticket: HouseTicket
    family: tuple[HouseTicket, ...]
    summary: FamilySummary
    events: tuple[TicketEvent, ...]
    payouts: tuple[TicketPayout, ...]
    replacement_opens_on: str | None


class Tickets(Struct, frozen=True):
    tickets: tuple[HouseTicket, ...]


class UseCondition(Struct, frozen=True):
    condition: str
    recorded_on: str
    document_no: str


class UseFile(Struct, frozen=True):
    """Rules T5-T8, T11, T12: a use, its conditions and what its seller was settled."""

    use_id: int
    contract_no: str
    merchant_name: str
    unit: str
    price_fen: int
    amount_fen: int
    subsidy_fen: int
    reward_fen: int
    seller_due_fen: int
    cancelled: bool
    issuing_district: str
    conditions: tuple[UseCondition, ...]
    required: tuple[str, ...]
    settled_fen: int


class Payouts(Struct, frozen=True):
    payouts: tuple[TicketPayout, ...]


class BonusReviewed(Struct, frozen=True):
    reviewed: tuple[TicketPayout, ...]
    none_due: int
    not_yet: int


class TicketSettlementLine(Struct, frozen=True):
    use_id: int
    merchant_id: int
    merchant_name: str
    contract_no: str
    kind: str
    amount_fen: int


class TicketSettlement(Struct, frozen=True):
    """Rule T12: a settlement with the sellers at a point."""

    settlement_id: int
    campaign_id: str
    district: str
    point: str
    status: str
    payment_due: str
    amount_fen: int
    lines: tuple[TicketSettlementLine, ...]


class TicketSettlements(Struct, frozen=True):
    settlements: tuple[TicketSettlement, ...]


class ListingReject(Struct, frozen=True):
    line: int
    unit: str
    reason: str
    reasons: tuple[RejectReason, ...]


class ListingImport(Struct, frozen=True):
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    dry_run: bool
    encoding: str
    rejects: tuple[ListingReject, ...]


class ListedUnit(Struct, frozen=True):
    """Rule T4: a unit of the listing pool."""

    id: int
    merchant_id: int
    merchant_name: str
    unit: str
    district: str
    property_type: str
    area_dm2: int
    listed_price_fen: int
    status: str
    exits_on: str | None
    sold: bool


class ListedUnits(Struct, frozen=True):
    units: tuple[ListedUnit, ...]


class ExitNotice(Struct, frozen=True):
    merchant_id: int
    notice_on: str
    exits_on: str
    units: int


class TicketReportRow(Struct, frozen=True):
    scope: str
    key: str
    name: str
    issued: int
    face_fen: int
    used_fen: int
    cashed_out_fen: int
    returned_fen: int
    expired_fen: int
    balance_fen: int
    subsidy_fen: int
    reward_fen: int
    bonus_fen: int
    settlement_due_fen: int
    settlement_paid_fen: int


class TicketReport(Struct, frozen=True):
    """Rule T14: a programme's figures per programme, district and seller."""

    campaign_id: str
    on: str
    district: str | None
    columns: dict[str, str]
    rows: tuple[TicketReportRow, ...]


class Developer(Struct, frozen=True):
    """Rule T4: a developer, a merchant of kind developer."""

    id: int
    name: str
    district: str
    admitted: bool
    status: str
    kind: str


class Programmes(Struct, frozen=True):
    """Rule C1: the loaded house-ticket programmes, as their files' JSON."""

    programmes: tuple[dict[str, Any], ...]

    def district_names(self) -> dict[str, str]:
        return {
            code: str(named.get("name", code))
            for p in self.programmes
            for code, named in dict(p.get("districts", {})).items()
        }


# --- calls -----------------------------------------------------------------------------------


async def _post(api: StaffClient, path: str, kind: type[T], body: Any) -> T:
    return await api.http.fetch("POST", path, kind, body=body, token=api.token)


async def _get(
    api: StaffClient, path: str, kind: type[T], query: Mapping[str, str] | None = None
) -> T:
    return await api.http.fetch("GET", path, kind, query=query, token=api.token)


async def programmes(api: StaffClient) -> Programmes:
    """GET /v1/ticket-programmes: public."""
    return await api.http.fetch("GET", "/v1/ticket-programmes", Programmes)


async def issue(api: StaffClient, agreement: Mapping[str, Any]) -> TicketFile:
    """POST /v1/tickets (T1): the compensation agreement as ``IssueTicketRequest``."""
    return await _post(api, "/v1/tickets", TicketFile, dict(agreement))


async def ticket(api: StaffClient, ticket_id: int) -> TicketFile:
    return await _get(api, f"/v1/tickets/{ticket_id}", TicketFile)


async def find(api: StaffClient, query: Mapping[str, str]) -> Tickets:
    """GET /v1/tickets: by ``number``, or a programme's (``campaign_id``, ``district``)."""
    return await _get(api, "/v1/tickets", Tickets, query)


async def act(api: StaffClient, ticket_id: int, act: str, body: Mapping[str, Any]) -> TicketFile:
    """An issuer's act (T2-T4, T6, T9, T13): split, transfer, heir, loss, reissue, home-kept,
    void, return, cashout."""
    return await _post(api, f"/v1/tickets/{ticket_id}/{act}", TicketFile, dict(body))


async def use(api: StaffClient, use_id: int) -> UseFile:
    return await _get(api, f"/v1/ticket-uses/{use_id}", UseFile)


async def use_act(api: StaffClient, use_id: int, act: str, body: Mapping[str, Any]) -> UseFile:
    """T11 ``cancellation``, T12 ``conditions``."""
    return await _post(api, f"/v1/ticket-uses/{use_id}/{act}", UseFile, dict(body))


async def payouts(api: StaffClient, campaign_id: str, *, unpaid: bool) -> Payouts:
    query = {"campaign_id": campaign_id, "unpaid": "true" if unpaid else "false"}
    return await _get(api, "/v1/ticket-payouts", Payouts, query)


async def pay(api: StaffClient, payout_id: int, payment_no: str) -> TicketPayout:
    path = f"/v1/ticket-payouts/{payout_id}/payment"
    return await _post(api, path, TicketPayout, {"payment_no": payment_no})


async def review_bonuses(api: StaffClient, campaign_id: str, review_no: str) -> BonusReviewed:
    body = {"campaign_id": campaign_id, "review_no": review_no}
    return await _post(api, "/v1/ticket-bonuses/reviews", BonusReviewed, body)


async def build_settlement(
    api: StaffClient, campaign_id: str, district: str, point: str
) -> TicketSettlement:
    body = {"campaign_id": campaign_id, "district": district, "point": point}
    return await _post(api, "/v1/ticket-settlements", TicketSettlement, body)


async def settlement(api: StaffClient, settlement_id: int) -> TicketSettlement:
    return await _get(api, f"/v1/ticket-settlements/{settlement_id}", TicketSettlement)


async def settlements(api: StaffClient, query: Mapping[str, str]) -> TicketSettlements:
    return await _get(api, "/v1/ticket-settlements", TicketSettlements, query or None)


async def settlement_step(
    api: StaffClient, settlement_id: int, step: str, note: str | None
) -> TicketSettlement:
    body = {"step": step, **({"note": note} if note else {})}
    path = f"/v1/ticket-settlements/{settlement_id}/steps"
    return await _post(api, path, TicketSettlement, body)


async def add_developer(api: StaffClient, name: str, district: str) -> Developer:
    body = {"name": name, "district": district, "kind": "developer"}
    return await _post(api, "/v1/merchants", Developer, body)


async def import_units(
    api: StaffClient, campaign_id: str, merchant_id: int, csv: bytes, *, dry_run: bool
) -> ListingImport:
    return await api.http.fetch(
        "POST",
        "/v1/listings/imports",
        ListingImport,
        data=csv,
        content_type="text/csv",
        query={
            "campaign_id": campaign_id,
            "merchant_id": str(merchant_id),
            "dry_run": "true" if dry_run else "false",
        },
        token=api.token,
    )


async def units(api: StaffClient, query: Mapping[str, str]) -> ListedUnits:
    return await _get(api, "/v1/listings", ListedUnits, query)


async def set_units(
    api: StaffClient, listing_ids: list[int], status: str, reason: str
) -> ListedUnits:
    body = {"listing_ids": listing_ids, "status": status, "reason": reason}
    return await _post(api, "/v1/listings/status", ListedUnits, body)


async def exit_notice(
    api: StaffClient, merchant_id: int, campaign_id: str, notice_on: str, reason: str
) -> ExitNotice:
    body = {"campaign_id": campaign_id, "notice_on": notice_on, "reason": reason}
    return await _post(api, f"/v1/merchants/{merchant_id}/exit-notice", ExitNotice, body)


async def report(api: StaffClient, campaign_id: str, on: str | None) -> TicketReport:
    query = {"campaign_id": campaign_id, **({"on": on} if on else {})}
    return await _get(api, "/v1/ticket-reports", TicketReport, query)


async def report_csv(api: StaffClient, campaign_id: str, on: str | None) -> bytes:
    query = {"campaign_id": campaign_id, "format": "csv", **({"on": on} if on else {})}
    answer = await api.http.checked("GET", "/v1/ticket-reports", query=query, token=api.token)
    return answer.body
