"""House tickets at the issuer over HTTP (issue 13, rules T1-T3, T6, T9-T11, T13): issue, read,
split, transfer, pass to an heir, report lost and reissue, void, return; a use's file, its
cancellation and settlement conditions; cash-outs, bonuses and their payments. Each handler
parses the request with its ``server.schemas`` Struct, calls one service
(``server/services/ticket_issuance.py``, ``ticket_after_use.py``) and shapes its answer."""

from __future__ import annotations

from datetime import date, tzinfo
from typing import Any

from aiohttp import web

from server import schemas as S
from server.auth import Role, principal_of, requires
from server.db.ticket_settlement import Payout
from server.db.tickets import TicketEvent
from server.handlers.ports import ports_of
from server.services import ticket_after_use as after_use
from server.services import ticket_issuance as issuance
from server.services.ticket_after_use import UseFile
from server.services.ticket_issuance import READERS, TicketFile
from server.web import TZ, path_id, read_body_as, read_query
from shared.errors import InvalidRequest
from shared.house_tickets import CancelElection, FaceItem, Ticket, TicketUse, expires_at
from shared.ticket_campaign import TicketCampaign

ISSUER = Role.TICKET_ISSUER


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def ticket_body(
    campaign: TicketCampaign, t: Ticket, masks: dict[str, str], tz: tzinfo
) -> dict[str, Any]:
    """Rules T1-T3, T6, T13: a ticket as the issuer reads it; persons masked (X3)."""
    return {
        "id": t.id,
        "campaign_id": t.campaign_id,
        "number": t.number,
        "filing_no": t.filing_no,
        "district": t.district,
        "project": t.project,
        "implementing_unit": t.implementing_unit,
        "official": t.official,
        "agreement_no": t.agreement_no,
        "agreement_date": t.agreement_date.isoformat(),
        "holder": masks.get(t.holder, ""),
        "household": sorted(masks.get(p, "") for p in t.household),
        "area_dm2": t.area_dm2,
        "items": [
            {
                "code": i.code,
                "label": campaign.face_items.get(i.code, i.code),
                "amount_fen": i.amount_fen,
            }
            for i in t.items
        ],
        "face_value_fen": t.face_value_fen,
        "issued_on": t.issued_on.isoformat(),
        "deadline": t.deadline.isoformat(),
        "expires_at": expires_at(campaign, t).astimezone(tz).isoformat(),
        "original_id": t.original_id,
        "parent_id": t.parent_id,
        "generation": t.generation,
        "status": t.status.value,
        "balance_fen": t.balance_fen,
        "used_fen": t.used_fen,
        "cashed_out_fen": t.cashed_out_fen,
        "returned_fen": t.returned_fen,
        "split_out_fen": t.split_out_fen,
        "transfers": t.transfers,
        "void_numbers": list(t.void_numbers),
        "lost_notice_on": _day(t.lost_notice_on),
        "home_kept_doc": t.home_kept_doc,
        "home_kept_on": _day(t.home_kept_on),
    }


def use_body(use_id: int, u: TicketUse, masks: dict[str, str]) -> dict[str, Any]:
    """Rules T5-T8: a use, its draws, subsidy, reward and what it owes the seller."""
    return {
        "use_id": use_id,
        "campaign_id": u.campaign_id,
        "merchant_id": int(u.seller),
        "contract_no": u.contract_no,
        "unit": u.unit,
        "district": u.district,
        "property_type": u.property_type.value,
        "area_dm2": u.area_dm2,
        "price_fen": u.price_fen,
        "signed_on": u.signed_on.isoformat(),
        "buyer": masks.get(u.buyer, ""),
        "relation": u.relation.value,
        "draws": [
            {
                "ticket_id": d.ticket_id,
                "amount_fen": d.amount_fen,
                "subsidy_bp": d.subsidy_bp,
                "subsidy_fen": d.subsidy_fen,
            }
            for d in u.draws
        ],
        "amount_fen": u.amount_fen,
        "subsidy_fen": u.subsidy_fen,
        "reward_fen": u.reward_fen,
        "seller_due_fen": u.seller_due_fen,
        "buyer_paid_fen": u.price_fen - u.seller_due_fen,
        "cancelled": u.cancelled,
    }


def _event(e: TicketEvent, tz: tzinfo) -> dict[str, Any]:
    return {
        "at": e.at.astimezone(tz).isoformat(),
        "actor": e.actor,
        "act": e.act,
        "ticket_id": e.ticket_id,
        "use_id": e.use_id,
        "amount_fen": e.amount_fen,
        "documents": {k: str(v) for k, v in e.documents.items()},
    }


def payout_body(p: Payout, number: str) -> dict[str, Any]:
    return {
        "id": p.id,
        "campaign_id": p.campaign_id,
        "original_id": p.original_id,
        "number": number,
        "kind": p.kind,
        "amount_fen": p.amount_fen,
        "rate_bp": p.rate_bp,
        "due_by": _day(p.due_by),
        "decided_on": p.decided_on.isoformat(),
        "document_no": p.document_no,
        "paid_on": _day(p.paid_on),
        "payment_no": p.payment_no,
    }


def file_body(f: TicketFile, tz: tzinfo) -> dict[str, Any]:
    v, c = f.view, f.campaign
    original = next((t for t in f.family if t.id == f.ticket.original_id), f.ticket)
    return {
        "ticket": ticket_body(c, f.ticket, f.masks, tz),
        "family": [ticket_body(c, t, f.masks, tz) for t in f.family],
        "summary": {
            "original_id": v.original_id,
            "numbers": list(v.numbers),
            "face_value_fen": v.face_value_fen,
            "balance_fen": v.balance_fen,
            "used_fen": v.used_fen,
            "cashed_out_fen": v.cashed_out_fen,
            "returned_fen": v.returned_fen,
            "deadline": v.deadline.isoformat(),
            "expired": v.expired,
            "subsidy_fen": v.subsidy_fen,
            "reward_fen": v.reward_fen,
            "cashout": None
            if v.cashout is None
            else {"amount_fen": v.cashout.amount_fen, "due_by": _day(v.cashout.due_by)},
            "cashout_refusal": v.cashout_refusal,
            "bonus": None
            if v.bonus is None
            else {
                "review_on": v.bonus.review_on.isoformat(),
                "used_fen": v.bonus.used_fen,
                "rate_bp": v.bonus.rate_bp,
                "amount_fen": v.bonus.amount_fen,
                "reviewed": v.bonus.reviewed,
                "due_by": v.bonus.due_by.isoformat(),
            },
        },
        "uses": [use_body(i, u, f.masks) for i, u in f.uses],
        "events": [_event(e, tz) for e in f.events],
        "payouts": [payout_body(p, original.number) for p in f.payouts],
        "number_replaced": f.number_replaced,
        "replacement_opens_on": _day(f.replacement_opens_on),
    }


def _answer(request: web.Request, found: TicketFile, status: int = 200) -> web.Response:
    return web.json_response(file_body(found, request.app[TZ]), status=status)


def _ticket_id(request: web.Request) -> int:
    return path_id(request, "ticket_id", "no such ticket")


# --- tickets ------------------------------------------------------------------------------


@requires(ISSUER)
async def issue(request: web.Request) -> web.Response:
    """Rules T1, T2: a ticket from a compensation agreement, by its district's issuer."""
    b = await read_body_as(request, S.IssueTicketRequest)
    cmd = issuance.IssueTicket(
        campaign_id=b.campaign_id,
        number=b.number,
        filing_no=b.filing_no,
        district=b.district,
        project=b.project.name,
        housing_delivered=b.project.housing_delivered,
        cash_paid=b.project.cash_paid,
        implementing_unit=b.implementing_unit,
        official=b.official,
        agreement_no=b.agreement_no,
        agreement_date=b.agreement_date,
        holder_id_number=b.holder_id_number,
        household_id_numbers=tuple(b.household_id_numbers),
        area_dm2=b.area_dm2,
        items=tuple(FaceItem(i.code, i.amount_fen) for i in b.items),
        validity_months=b.validity_months,
        issued_on=b.issued_on,
    )
    made = await issuance.issue(ports_of(request), principal_of(request), cmd)
    return _answer(request, made, 201)


@requires(*READERS)
async def find_tickets(request: web.Request) -> web.Response:
    """A printed number's ticket (T13: a replaced number says so), or a programme's tickets
    (an issuer's: its district's)."""
    q = read_query(request, S.TicketsQuery)
    ports, me, tz = ports_of(request), principal_of(request), request.app[TZ]
    if q.number is not None:
        found = await issuance.find(ports, me, q.number)
        return web.json_response(
            {"tickets": [ticket_body(found.campaign, found.ticket, found.masks, tz)]}
        )
    if q.campaign_id is None:
        raise InvalidRequest("name a number, or a programme's campaign_id", field="campaign_id")
    campaign, tickets, masks = await issuance.listed(ports, me, q.campaign_id, q.district)
    return web.json_response({"tickets": [ticket_body(campaign, t, masks, tz) for t in tickets]})


@requires(*READERS)
async def show(request: web.Request) -> web.Response:
    return _answer(
        request, await issuance.show(ports_of(request), principal_of(request), _ticket_id(request))
    )


@requires(ISSUER)
async def split(request: web.Request) -> web.Response:
    """Rule T6: split an unused ticket into pieces with new printed numbers."""
    b = await read_body_as(request, S.SplitTicketRequest)
    done = await issuance.split(
        ports_of(request),
        principal_of(request),
        _ticket_id(request),
        amounts=b.amounts,
        numbers=b.numbers,
        application_no=b.application_no,
    )
    return _answer(request, done)


@requires(ISSUER)
async def transfer(request: web.Request) -> web.Response:
    """Rule T3: pass the ticket to another holder, once, on its conditions."""
    b = await read_body_as(request, S.TransferTicketRequest)
    done = await issuance.transfer(
        ports_of(request),
        principal_of(request),
        _ticket_id(request),
        to_holder_id_number=b.to_holder_id_number,
        to_household_id_numbers=b.to_household_id_numbers,
        home_in_city=b.home_in_city,
        all_members_signed=b.all_members_signed,
        notary_no=b.notary_no,
    )
    return _answer(request, done)


@requires(ISSUER)
async def heir(request: web.Request) -> web.Response:
    """Rule T3: the heir takes the ticket on a notarised inheritance certificate."""
    b = await read_body_as(request, S.HeirTicketRequest)
    done = await issuance.heir(
        ports_of(request),
        principal_of(request),
        _ticket_id(request),
        heir_id_number=b.heir_id_number,
        heir_household_id_numbers=b.heir_household_id_numbers,
        certificate_no=b.certificate_no,
    )
    return _answer(request, done)


@requires(ISSUER)
async def lost(request: web.Request) -> web.Response:
    """Rule T13: the paper ticket reported lost, with its newspaper notice."""
    b = await read_body_as(request, S.LostTicketRequest)
    done = await issuance.lost(
        ports_of(request),
        principal_of(request),
        _ticket_id(request),
        newspaper=b.newspaper,
        published_on=b.published_on,
    )
    return _answer(request, done)


@requires(ISSUER)
async def reissue(request: web.Request) -> web.Response:
    """Rule T13: the replacement, a new number, once the notice has run."""
    b = await read_body_as(request, S.ReissueTicketRequest)
    done = await issuance.reissue(
        ports_of(request), principal_of(request), _ticket_id(request), new_number=b.new_number
    )
    return _answer(request, done)


@requires(ISSUER)
async def home_kept(request: web.Request) -> web.Response:
    """Rule T4 (Suining): record that the ticket's household keeps a home."""
    b = await read_body_as(request, S.HomeKeptRequest)
    done = await issuance.home_kept(
        ports_of(request), principal_of(request), _ticket_id(request), document_no=b.document_no
    )
    return _answer(request, done)


@requires(ISSUER)
async def void(request: web.Request) -> web.Response:
    """Rule T1: void a ticket issued in error, never used."""
    b = await read_body_as(request, S.VoidTicketRequest)
    done = await issuance.void(
        ports_of(request), principal_of(request), _ticket_id(request), decision_no=b.decision_no
    )
    return _answer(request, done)


@requires(ISSUER)
async def return_balance(request: web.Request) -> web.Response:
    """Rule T2: return an expired ticket's balance for another form of compensation."""
    b = await read_body_as(request, S.ReturnTicketRequest)
    done = await issuance.return_expired(
        ports_of(request), principal_of(request), _ticket_id(request), agreement_no=b.agreement_no
    )
    return _answer(request, done)


@requires(ISSUER)
async def cashout(request: web.Request) -> web.Response:
    """Rule T9: the residual cash-out granted on the holder's application."""
    b = await read_body_as(request, S.CashoutTicketRequest)
    done = await after_use.cashout(
        ports_of(request),
        principal_of(request),
        _ticket_id(request),
        application_no=b.application_no,
    )
    return _answer(request, done, 201)


# --- uses (T11, T12) ----------------------------------------------------------------------


def use_file_body(f: UseFile, masks_buyer: str) -> dict[str, Any]:
    body = use_body(f.use_id, f.use, {f.use.buyer: masks_buyer})
    body |= {
        "issuing_district": f.district,
        "merchant_name": f.merchant_name,
        "conditions": [
            {"condition": name, "recorded_on": day.isoformat(), "document_no": number}
            for name, (day, number) in sorted(f.conditions.items())
        ],
        "required": list(f.required),
        "settled_fen": f.paid_fen,
    }
    return body


def _use_answer(f: UseFile, status: int = 200) -> web.Response:
    return web.json_response(use_file_body(f, f.buyer_masked), status=status)


def _use_id(request: web.Request) -> int:
    return path_id(request, "use_id", "no such ticket use")


@requires(*READERS)
async def find_use(request: web.Request) -> web.Response:
    """Rule T5: a seller's contract's use."""
    q = read_query(request, S.TicketUseQuery)
    found = await after_use.find_use(
        ports_of(request), principal_of(request), q.merchant_id, q.contract_no
    )
    return _use_answer(found)


@requires(*READERS)
async def show_use(request: web.Request) -> web.Response:
    return _use_answer(
        await after_use.show_use(ports_of(request), principal_of(request), _use_id(request))
    )


@requires(ISSUER)
async def cancel_use(request: web.Request) -> web.Response:
    """Rule T11: a cancelled contract reversed by the issuer."""
    b = await read_body_as(request, S.CancelUseRequest)
    done = await after_use.cancel(
        ports_of(request),
        principal_of(request),
        _use_id(request),
        proof_no=b.proof_no,
        elect=CancelElection(b.elect),
    )
    return _use_answer(done)


@requires(ISSUER)
async def record_condition(request: web.Request) -> web.Response:
    """Rule T12: a settlement condition (or the property certificate) of a use."""
    b = await read_body_as(request, S.UseConditionRequest)
    done = await after_use.record_condition(
        ports_of(request),
        principal_of(request),
        _use_id(request),
        condition=b.condition,
        recorded_on=b.recorded_on,
        document_no=b.document_no,
    )
    return _use_answer(done, 201)


# --- payouts to holders (T9, T10) -----------------------------------------------------------


@requires(*READERS)
async def payouts(request: web.Request) -> web.Response:
    q = read_query(request, S.PayoutsQuery)
    found, numbers = await after_use.payouts(
        ports_of(request), principal_of(request), q.campaign_id, unpaid_only=q.unpaid == "true"
    )
    return web.json_response(
        {"payouts": [payout_body(p, numbers.get(p.original_id, "")) for p in found]}
    )


@requires(ISSUER)
async def review_bonuses(request: web.Request) -> web.Response:
    """Rule T10: the district's usage bonuses reviewed at 12 months."""
    b = await read_body_as(request, S.BonusReviewRequest)
    done = await after_use.review_bonuses(
        ports_of(request), principal_of(request), b.campaign_id, review_no=b.review_no
    )
    return web.json_response(
        {
            "reviewed": [payout_body(p, done.numbers[p.original_id]) for p in done.reviewed],
            "none_due": done.none_due,
            "not_yet": done.not_yet,
        },
        status=201,
    )


@requires(ISSUER)
async def pay_payout(request: web.Request) -> web.Response:
    """Rules T9, T10: a cash-out or bonus paid, with its payment's number."""
    b = await read_body_as(request, S.PayoutPaymentRequest)
    payout_id = path_id(request, "payout_id", "no such payout")
    paid, number = await after_use.pay(
        ports_of(request), principal_of(request), payout_id, payment_no=b.payment_no
    )
    return web.json_response(payout_body(paid, number))
