"""What the districts' and city's working teams do: the registry import (rule E3)."""

from __future__ import annotations

import hashlib
import json

from aiohttp import web

from server.auth import Role, principal_of, requires
from server.db import admin as audit_db
from server.db import campaigns as campaign_db
from server.db import registry as db
from server.schemas import RegistryImportQuery
from server.web import CAMPAIGNS, CLOCK, PG, SETTINGS, TZ, read_body, read_query
from shared.campaign import campaign_to_dict, load_campaign_text
from shared.errors import CampaignInUse, InvalidRequest
from shared.registry import Reject, parse_registry_csv


def district_names(request: web.Request) -> dict[str, str]:
    """Codes, short names and full names of every district the campaigns name -> code."""
    names: dict[str, str] = {}
    for campaign in request.app[CAMPAIGNS].values():
        for district in campaign.districts.values():
            names[district.code] = names[district.name] = district.code
            names[district.full_name] = district.code
    return names


def _district_name(request: web.Request, code: str) -> str:
    """东昌府区 for ``dongchangfu``: the name the campaigns give the district."""
    for campaign in request.app[CAMPAIGNS].values():
        if code in campaign.districts:
            return campaign.districts[code].name
    return code


@requires(Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR)
async def import_registry(request: web.Request) -> web.Response:
    """Rule E3: the office's CSV (UTF-8 or GBK). All accepted rows are written in one
    transaction, or none with ``dry_run=true``; rejects come back with line and reason.
    A district operator imports records of their own district only (rule X2)."""
    me = principal_of(request)
    settings = request.app[SETTINGS]
    dry_run = read_query(request, RegistryImportQuery).dry_run
    data = await read_body(request, settings.max_upload_bytes)
    now = request.app[CLOCK]()
    parsed = parse_registry_csv(
        data,
        districts=district_names(request),
        id_hash_key=settings.id_hash_key,
        today=now.astimezone(request.app[TZ]).date(),
    )
    rows = list(parsed.rows)
    rejects = list(parsed.rejects)
    if me.role is Role.DISTRICT_OPERATOR:
        theirs = [r for r in rows if r.district == me.district]
        rejects += [
            Reject.one(
                r.line,
                r.cert_no,
                f"district {r.district} is not yours",
                f"{_district_name(request, r.district)}不是您所辖的区",
            )
            for r in rows
            if r.district != me.district
        ]
        rows = theirs
    async with request.app[PG].acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            summary = await db.import_rows(conn, rows)
            rejects += summary.rejects
            counts = {
                "inserted": summary.inserted,
                "updated": summary.updated,
                "unchanged": summary.unchanged,
                "rejected": len(rejects),
            }
            if dry_run == "true":
                await transaction.rollback()  # says what would happen, writes nothing
                return _answer(counts, rejects, parsed.encoding, dry_run=True)
            await conn.execute(
                "INSERT INTO audit_log (actor, action, subject, details) "
                "VALUES ($1, 'registry.import', $2, $3)",
                me.actor,
                f"file:sha256:{hashlib.sha256(data).hexdigest()}",
                json.dumps({**counts, "encoding": parsed.encoding}),
            )
        except BaseException:
            await transaction.rollback()
            raise
        await transaction.commit()
    return _answer(counts, rejects, parsed.encoding, dry_run=False)


def _answer(
    counts: dict[str, int], rejects: list[Reject], encoding: str, *, dry_run: bool
) -> web.Response:
    return web.json_response(
        {
            **counts,
            "dry_run": dry_run,
            "encoding": encoding,
            "rejects": [
                {
                    "line": r.line,
                    "cert_no": r.cert_no,
                    "reason": r.reason,
                    "reasons": [{"message": x.en, "message_zh": x.zh} for x in r.reasons],
                }
                for r in sorted(rejects, key=lambda r: r.line)
            ],
        },
        status=200 if dry_run else 201,
    )


@requires(Role.CITY_OPERATOR)
async def load_campaign_file(request: web.Request) -> web.Response:
    """Rule C1: a campaign is a file. Validated with clear errors (400 with every problem);
    a campaign with claims keeps its rules (409). It serves at once in this process; other
    server processes load it from the ledger when they start."""
    me = principal_of(request)
    data = await read_body(request, 1024 * 1024)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("a campaign file is UTF-8 TOML") from exc
    campaign = load_campaign_text(text, source="upload")
    if campaign.timezone != str(request.app[TZ]):
        raise InvalidRequest(f"campaigns of this server use {request.app[TZ]}", field="timezone")
    known = request.app[CAMPAIGNS].get(campaign.id)
    async with request.app[PG].acquire() as conn, conn.transaction():
        replaced = known is not None and known != campaign
        if replaced and await campaign_db.has_claims(conn, campaign.id):
            raise CampaignInUse(campaign_id=campaign.id)
        await campaign_db.upsert(conn, campaign)
        await audit_db.audit(
            conn,
            actor=me.actor,
            action="campaign.load",
            subject=f"campaign:{campaign.id}",
            details={"replaced": replaced},
        )
    request.app[CAMPAIGNS][campaign.id] = campaign
    return web.json_response(campaign_to_dict(campaign), status=201)
