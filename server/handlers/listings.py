"""The listing pool over HTTP (rule T4): a developer's units imported from its CSV, admitted
or removed by the housing bureau, the developer's notice of leaving; the pool as published
(T14). The use cases are server/services/listings.py."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import schemas as S
from server.access import ACCESS_VIEW
from server.auth import Principal, Role, principal_of, public, read_access_token, requires
from server.db.listings import PoolUnit
from server.handlers.ports import ports_of
from server.services import listings
from server.web import ACCESS_CACHE, CLOCK, SETTINGS, path_id, read_body, read_body_as, read_query
from shared.errors import Forbidden, Unauthenticated

FILERS = (Role.HOUSING_BUREAU, Role.MERCHANT_MANAGER)


def unit_body(u: PoolUnit) -> dict[str, Any]:
    return {
        "id": u.id,
        "campaign_id": u.campaign_id,
        "merchant_id": u.merchant_id,
        "merchant_name": u.merchant_name,
        "unit": u.unit,
        "district": u.district,
        "property_type": u.property_type,
        "area_dm2": u.area_dm2,
        "listed_price_fen": u.listed_price_fen,
        "status": u.status,
        "exit_notice_on": None if u.exit_notice_on is None else u.exit_notice_on.isoformat(),
        "exits_on": None if u.exits_on is None else u.exits_on.isoformat(),
        "sold": u.used,
    }


@requires(*FILERS)
async def import_units(request: web.Request) -> web.Response:
    """Rule T4: a developer's units, CSV in UTF-8 or GBK; all accepted rows written in one
    transaction (none with ``dry_run=true``), rejects with line and reasons."""
    q = read_query(request, S.ListingImportQuery)
    data = await read_body(request, request.app[SETTINGS].max_upload_bytes)
    cmd = listings.ImportUnits(q.campaign_id, q.merchant_id, data, q.dry_run == "true")
    done = await listings.import_units(ports_of(request), principal_of(request), cmd)
    return web.json_response(
        {
            "inserted": done.inserted,
            "updated": done.updated,
            "unchanged": done.unchanged,
            "rejected": len(done.rejects),
            "dry_run": done.dry_run,
            "encoding": done.encoding,
            "rejects": [
                {
                    "line": r.line,
                    "unit": r.cert_no,
                    "reason": r.reason,
                    "reasons": [{"message": x.en, "message_zh": x.zh} for x in r.reasons],
                }
                for r in done.rejects
            ],
        },
        status=200 if done.dry_run else 201,
    )


def _signed_in(request: web.Request) -> Principal | None:
    """The caller of a public route, if it sent a valid token of someone not blocked (X1);
    otherwise the public."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        me = read_access_token(
            request.app[SETTINGS], token.strip(), request.app[CLOCK](), request.app[ACCESS_CACHE]
        )
        request.app[ACCESS_VIEW].check(me)
    except (Unauthenticated, Forbidden):
        return None
    return me


@public
async def units(request: web.Request) -> web.Response:
    """Rule T4/T14: the pool's admitted units, as the programme publishes them; a signed-in
    housing bureau, issuer, city or auditor sees every status (a developer's manager, its
    own units)."""
    q = read_query(request, S.ListingsQuery)
    me = _signed_in(request)
    found = await listings.units(
        ports_of(request),
        me,
        campaign_id=q.campaign_id,
        merchant_id=q.merchant_id,
        district=q.district,
        status=q.status,
    )
    return web.json_response({"units": [unit_body(u) for u in found]})


@requires(Role.HOUSING_BUREAU)
async def set_status(request: web.Request) -> web.Response:
    """Rule T4: the housing bureau admits units into the pool or removes them."""
    b = await read_body_as(request, S.ListingStatusRequest)
    found = await listings.set_status(
        ports_of(request), principal_of(request), list(b.listing_ids), b.status, b.reason
    )
    return web.json_response({"units": [unit_body(u) for u in found]})


@requires(Role.HOUSING_BUREAU)
async def exit_notice(request: web.Request) -> web.Response:
    """Rule T4: a developer's notice of leaving the pool (Suining: 3 months)."""
    b = await read_body_as(request, S.ExitNoticeRequest)
    merchant_id = path_id(request, "merchant_id", "no such developer")
    done = await listings.exit_notice(
        ports_of(request), principal_of(request), b.campaign_id, merchant_id, b.notice_on, b.reason
    )
    return web.json_response(
        {
            "merchant_id": done.merchant_id,
            "notice_on": done.notice_on.isoformat(),
            "exits_on": done.exits_on.isoformat(),
            "units": done.units,
        }
    )
