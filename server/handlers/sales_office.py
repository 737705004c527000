"""At a developer's sales office (rules T2, T4-T8; issue 13): quote and confirm a house
ticket's use on a purchase contract, find a use by the key a terminal lost the answer of,
and the seller's listing pool.

HTTP only: each handler parses the request into a typed command, calls one service
(``server/services/ticket_uses.py``) and turns the result into JSON; a domain error becomes
its answer at the edge (``server/web.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

import msgspec
from aiohttp import web

from server.auth import Role, principal_of, requires
from server.db.ticket_till import PoolUnit
from server.handlers.ports import ports_of, till_ports_of
from server.handlers.till import idempotency_key, request_hash, voucher_code
from server.schemas import (
    FindTicketUseQuery,
    TicketContract,
    TicketQuoteRequest,
    TicketUseRequest,
)
from server.services import ticket_uses
from server.services.guarded import Refused
from server.web import ERROR_CODE, read_body_as, read_query
from shared.house_tickets import Listing, Ticket, TicketStatus, normalise_contract_no
from shared.ticket_campaign import Relation


def _terminal(request: web.Request) -> int:
    terminal_id = principal_of(request).terminal_id
    assert terminal_id is not None  # a cashier's token names its terminal
    return terminal_id


def _contract(body: TicketContract, amounts: Sequence[int] | None) -> ticket_uses.ContractIn:
    return ticket_uses.ContractIn(
        contract_no=normalise_contract_no(body.contract_no),  # rule T5 (as U4)
        unit=body.unit,
        signed_on=body.signed_on,
        price_fen=body.price_fen,
        relation=Relation(body.relation),
        buyer_id_number=body.buyer_id_number,
        relation_proof=body.relation_proof or "",
        numbers=tuple(body.tickets or ()),
        amounts=None if amounts is None else tuple(amounts),
    )


def _unit(listing: Listing, campaign_id: str) -> dict[str, Any]:
    return {
        "unit": listing.unit,
        "campaign_id": campaign_id,
        "district": listing.district,
        "property_type": listing.property_type.value,
        "area_dm2": listing.area_dm2,
        "listed_price_fen": listing.listed_price_fen,
    }


def _held(t: Ticket) -> dict[str, Any]:
    return {
        "number": t.number,
        "status": t.status.value,
        "face_value_fen": t.face_value_fen,
        "balance_fen": t.balance_fen,
        "deadline": t.deadline.isoformat(),
    }


@requires(Role.CASHIER)
async def quote(request: web.Request) -> web.Response:
    """Rules T2, T4-T8: what the contract may draw on the holder's tickets, the allowed range
    (T6's 90% rules), the subsidy or reward and what the buyer still pays. Changes nothing."""
    body = await read_body_as(request, TicketQuoteRequest)
    cmd = ticket_uses.QuoteUse(_terminal(request), body.token, _contract(body, body.amounts_fen))
    tills = till_ports_of(request)
    quoted = await ticket_uses.quote(cmd, tills)
    decision = quoted.decision
    q, ctx = decision.quote, decision.ctx
    held = [t for t in ctx.tickets if t.status in (TicketStatus.ACTIVE, TicketStatus.LOST)]
    return web.json_response(
        {
            "holder": {"masked_id": ctx.id_masked},
            "buyer": {"relation": q.contract.relation.value, "masked_id": quoted.buyer_masked},
            "campaign_id": q.campaign_id,
            "merchant": {"id": ctx.merchant_id, "name": ctx.merchant_name},
            "contract_no": q.contract.contract_no,
            "signed_on": q.contract.signed_on.isoformat(),
            "price_fen": q.contract.price_fen,
            "unit": _unit(q.listing, q.campaign_id),
            "lines": [
                {
                    "number": line.number,
                    "face_value_fen": ticket.face_value_fen,
                    "balance_fen": line.balance_fen,
                    "deadline": ticket.deadline.isoformat(),
                    "min_fen": line.min_fen,
                    "max_fen": line.max_fen,
                    "amount_fen": line.amount_fen,
                    "month": line.month,
                    "subsidy_bp": line.subsidy_bp,
                    "subsidy_fen": line.subsidy_fen,
                    "still_to_use_fen": line.still_to_use_fen,
                }
                for line, ticket in zip(q.lines, decision.tickets, strict=True)
            ],
            "amount_fen": q.amount_fen,
            "subsidy_fen": q.subsidy_fen,
            "reward_fen": q.reward_fen,
            "seller_due_fen": q.seller_due_fen,
            "buyer_pays_fen": q.buyer_pays_fen,
            "tickets": [_held(t) for t in held],
            "token_expires_at": quoted.token_expires_at.astimezone(tills.tz).isoformat(),
        }
    )


def use_body(found: ticket_uses.Used, tz: tzinfo) -> dict[str, Any]:
    """The answer for a use: what the contract records and the tickets after it."""
    u = found.use
    by_id = {t.id: t for t in found.tickets}
    return {
        "use_id": found.use_id,
        "campaign_id": u.campaign_id,
        "merchant_id": int(u.seller),
        "holder": {"masked_id": found.holder_masked or ""},
        "relation": u.relation.value,
        "contract_no": u.contract_no,
        "signed_on": u.signed_on.isoformat(),
        "price_fen": u.price_fen,
        "unit": u.unit,
        "district": u.district,
        "property_type": u.property_type.value,
        "area_dm2": u.area_dm2,
        "draws": [
            {
                "number": by_id[d.ticket_id].number,
                "amount_fen": d.amount_fen,
                "subsidy_bp": d.subsidy_bp,
                "subsidy_fen": d.subsidy_fen,
                "balance_fen": by_id[d.ticket_id].balance_fen,
            }
            for d in u.draws
        ],
        "amount_fen": u.amount_fen,
        "subsidy_fen": u.subsidy_fen,
        "reward_fen": u.reward_fen,
        "seller_due_fen": u.seller_due_fen,
        "buyer_pays_fen": u.price_fen - u.seller_due_fen,
        "used_at": u.used_at.astimezone(tz).isoformat(),
        "cancelled": u.cancelled,
    }


@requires(Role.CASHIER)
async def use(request: web.Request) -> web.Response:
    """Rules T5-T8 with U5, U7: draw the amounts on the holder's tickets for the contract,
    once, or nothing; a retry under the same key gets the first answer."""
    key = idempotency_key(request)
    body = await read_body_as(request, TicketUseRequest)
    cmd = ticket_uses.UseTicket(
        terminal_id=_terminal(request),
        key=key,
        digest=request_hash(request, msgspec.to_builtins(body)),
        token=body.token,
        contract=_contract(body, body.amounts_fen),
    )
    tills = till_ports_of(request)
    result = await ticket_uses.use(cmd, tills)
    replay = {"Idempotent-Replay": "true"} if result.replay else None
    if isinstance(result, Refused):
        request[ERROR_CODE] = result.code
        return web.json_response(result.answer, status=result.status, headers=replay)
    return web.json_response(use_body(result, tills.tz), status=201, headers=replay)


@requires(Role.CASHIER)
async def find_use(request: web.Request) -> web.Response:
    """Rule U7: the use a terminal asked for under a key and lost the answer of, with that
    request's holder's code in ``Voucher-Code``."""
    query = read_query(request, FindTicketUseQuery)
    tills = till_ports_of(request)
    found = await ticket_uses.find_by_key(
        _terminal(request), query.idempotency_key, tills, voucher_code(request)
    )
    return web.json_response(use_body(found, tills.tz))


def _pool_unit(u: PoolUnit) -> dict[str, Any]:
    return {
        "unit": u.unit,
        "campaign_id": u.campaign_id,
        "district": u.district,
        "property_type": u.property_type.value,
        "area_dm2": u.area_dm2,
        "listed_price_fen": u.listed_price_fen,
        "status": u.status,
        "sold": u.sold,
    }


@requires(Role.CASHIER, Role.MERCHANT_MANAGER)
async def listing_pool(request: web.Request) -> web.Response:
    """Rule T4: the seller's units in the listing pool, for its sales office's till."""
    merchant_id = principal_of(request).merchant_id
    assert merchant_id is not None  # a cashier's or manager's token names its merchant
    units = await ticket_uses.listing_pool(merchant_id, ports_of(request))
    return web.json_response({"units": [_pool_unit(u) for u in units]})
