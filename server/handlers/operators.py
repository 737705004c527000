"""What the districts' and city's working teams upload: the registry (rule E3) and campaign
files (rule C1). The use cases are server/services/registry.py and campaigns.py."""

from __future__ import annotations

from aiohttp import web

from server.auth import Role, principal_of, requires
from server.handlers.ports import ports_of
from server.schemas import RegistryImportQuery
from server.services import campaigns, registry
from server.web import SETTINGS, read_body, read_query
from shared.campaign import campaign_to_dict
from shared.errors import InvalidRequest


@requires(Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR)
async def import_registry(request: web.Request) -> web.Response:
    """Rule E3: the office's CSV (UTF-8 or GBK). All accepted rows are written in one
    transaction, or none with ``dry_run=true``; rejects come back with line and reason.
    A district operator imports records of their own district only (rule X2)."""
    me = principal_of(request)
    dry_run = read_query(request, RegistryImportQuery).dry_run == "true"
    data = await read_body(request, request.app[SETTINGS].max_upload_bytes)
    done = await registry.import_file(ports_of(request), me, registry.ImportFile(data, dry_run))
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
                    "cert_no": r.cert_no,
                    "reason": r.reason,
                    "reasons": [{"message": x.en, "message_zh": x.zh} for x in r.reasons],
                }
                for r in done.rejects
            ],
        },
        status=200 if done.dry_run else 201,
    )


@requires(Role.CITY_OPERATOR)
async def load_campaign_file(request: web.Request) -> web.Response:
    """Rule C1: a campaign is a file. Validated with clear errors (400 with every problem);
    a campaign with claims keeps its rules (409). It serves at once in this process; other
    server processes load it from the ledger when they start."""
    data = await read_body(request, 1024 * 1024)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("a campaign file is UTF-8 TOML") from exc
    loaded = await campaigns.load(ports_of(request), principal_of(request), text)
    return web.json_response(campaign_to_dict(loaded.campaign), status=201)
