"""``create_app(settings)``: the whole HTTP service, reading no environment."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from server.access import serve_view
from server.auth import Role, public, utcnow
from server.batching import Batcher
from server.breaker import Breaker
from server.caches import ExpiringLru, QrVerifier
from server.db import campaigns as campaign_db
from server.db import redemptions as redemption_db
from server.db import retention as retention_db
from server.db.redemptions import Context, ContextQuery, Redemption
from server.guard import Guard
from server.handlers import admin, operators, people, settlement, till
from server.migrate import migrate
from server.settings import QR_AUDIENCE, SERVICE_ISSUER, Settings
from server.web import (
    ACCESS_CACHE,
    CAMPAIGNS,
    CLOCK,
    CONTEXT_READS,
    GUARD,
    METRICS,
    PG,
    QR_VERIFIER,
    QUOTE_CACHE,
    REDEEM_WRITES,
    REDIS,
    SETTINGS,
    TZ,
    UPLOAD_ROUTES,
    Metrics,
    edge_middleware,
)
from shared.campaign import Campaign, campaign_to_dict, load_campaign, load_campaign_dict
from shared.errors import CampaignConfigInvalid

log = logging.getLogger("server")

# retention never keeps less than a day (Stripe keeps idempotency keys 24 h), whatever is set
MIN_RETENTION_HOURS = 24


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Callable[..., Any]
    summary: str
    body: tuple[str, ...] = ()
    query: tuple[str, ...] = ()
    idempotent_key: bool = False
    upload: str = ""  # media type of a raw (non-JSON) body


@public
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@public
async def readyz(request: web.Request) -> web.Response:
    """Ready when PostgreSQL and Redis both answer."""
    checks: dict[str, str] = {}
    try:
        async with request.app[PG].acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")
        checks["postgres"] = "ok"
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        checks["postgres"] = f"down: {type(exc).__name__}"
    try:
        await request.app[REDIS].ping()
        checks["redis"] = "ok"
    except (RedisError, OSError) as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )


@public
async def metrics(request: web.Request) -> web.Response:
    data = generate_latest(request.app[METRICS].registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


@public
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


@public
async def campaigns(request: web.Request) -> web.Response:
    return web.json_response(
        {"campaigns": [campaign_to_dict(c) for c in request.app[CAMPAIGNS].values()]}
    )


ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", healthz, "Liveness"),
    Route("GET", "/readyz", readyz, "Readiness: PostgreSQL and Redis reachable"),
    Route("GET", "/metrics", metrics, "Prometheus metrics"),
    Route("GET", "/openapi.json", openapi, "This description"),
    Route("GET", "/v1/campaigns", campaigns, "The loaded campaigns and their rules (C1)"),
    Route(
        "POST",
        "/v1/campaigns",
        operators.load_campaign_file,
        "Load a campaign file (TOML), validated; replaces one without claims (C1)",
        upload="application/toml",
    ),
    Route(
        "POST",
        "/v1/auth/citizen",
        people.citizen_sign_in,
        "Exchange the real-name app's assertion for an access token (X2)",
        body=("assertion",),
    ),
    Route(
        "POST",
        "/v1/auth/terminal",
        people.terminal_sign_in,
        "Exchange a terminal credential for an access token (X2)",
        body=("terminal_id", "secret"),
    ),
    Route(
        "POST",
        "/v1/auth/staff",
        people.staff_sign_in,
        "Staff sign-in (X2)",
        body=("username", "password"),
    ),
    Route(
        "POST",
        "/v1/claims",
        people.claim,
        "Claim the vouchers of a certificate (E1-E4, A1-A3, V1, V3)",
        body=("certificate_no",),
    ),
    Route("GET", "/v1/wallet", people.wallet, "The citizen's vouchers and claims"),
    Route(
        "POST",
        "/v1/wallet/qr",
        people.wallet_qr,
        "A fresh dynamic QR token, as JSON, PNG or SVG (U5)",
        query=("format",),
    ),
    Route(
        "POST",
        "/v1/quote",
        till.quote,
        "How many vouchers a bill can use; changes nothing (U2, U3, U6)",
        body=("token", "bill_fen"),
    ),
    Route(
        "POST",
        "/v1/redemptions",
        till.redeem,
        "Redeem vouchers on a bill (U1-U7)",
        body=("token", "bill_fen", "receipt_no", "voucher_count"),
        idempotent_key=True,
    ),
    Route(
        "GET",
        "/v1/redemptions",
        till.find_redemption,
        "Find a redemption by receipt number or idempotency key",
        query=("receipt_no", "idempotency_key"),
    ),
    Route("GET", "/v1/redemptions/{redemption_id}", till.get_redemption, "One redemption"),
    Route(
        "POST",
        "/v1/redemptions/{redemption_id}/refunds",
        till.refund,
        "Refund all or part of a bill (F1-F3)",
        body=("remaining_bill_fen",),
        idempotent_key=True,
    ),
    Route(
        "POST",
        "/v1/registry/imports",
        operators.import_registry,
        "Import the registration office's certificate records, CSV in UTF-8 or GBK (E3)",
        query=("dry_run",),
        upload="text/csv",
    ),
    Route(
        "GET",
        "/v1/merchants",
        admin.list_merchants,
        "Merchants (a district's, or all)",
        query=("district",),
    ),
    Route(
        "POST",
        "/v1/merchants",
        admin.add_merchant,
        "Add a merchant (U1)",
        body=("name", "district"),
    ),
    Route(
        "POST",
        "/v1/merchants/{merchant_id}/admission",
        admin.admit_merchant,
        "Admit or un-admit a merchant: the commerce bureau (U1)",
        body=("admitted", "reason"),
    ),
    Route(
        "POST",
        "/v1/merchants/{merchant_id}/permission",
        admin.permit_merchant,
        "Grant or withdraw redemption permission: the district (U1)",
        body=("permitted", "reason"),
    ),
    Route(
        "POST",
        "/v1/merchants/{merchant_id}/suspension",
        admin.suspend_merchant,
        "Suspend a merchant or lift it (X1)",
        body=("suspended", "reason"),
    ),
    Route(
        "POST",
        "/v1/merchants/{merchant_id}/terminals",
        admin.issue_terminal,
        "Issue a terminal and its one-time credential (X2)",
        body=("label",),
    ),
    Route(
        "POST",
        "/v1/terminals/{terminal_id}/revocation",
        admin.revoke_terminal,
        "Revoke a terminal (U1)",
        body=("reason",),
    ),
    Route(
        "POST",
        "/v1/citizens/revocation",
        admin.revoke_citizen,
        "Revoke a citizen's participation and claw back unused vouchers (X1)",
        body=("id_number", "reason"),
    ),
    Route(
        "GET",
        "/v1/accounts",
        admin.list_accounts,
        "Staff accounts: all (city, auditor) or the shop's manager accounts (X2)",
        query=("role", "username"),
    ),
    Route(
        "POST",
        "/v1/accounts",
        admin.add_account,
        "Create a staff account; a generated password is shown once (X2)",
        body=("username", "role", "district", "merchant_id", "password", "reason"),
    ),
    Route(
        "POST",
        "/v1/accounts/{account_id}/status",
        admin.set_account_status,
        "Disable an account (refused at once, whatever token it holds) or enable it (X1, X2)",
        body=("status", "reason"),
    ),
    Route(
        "POST",
        "/v1/accounts/{account_id}/role",
        admin.set_account_role,
        "Change an account's role, district or merchant; its tokens end (X2)",
        body=("role", "district", "merchant_id", "reason"),
    ),
    Route(
        "POST",
        "/v1/accounts/{account_id}/password",
        admin.reset_account_password,
        "Reset an account's password, given or generated; its sessions end (X2)",
        body=("password", "reason"),
    ),
    Route(
        "GET",
        "/v1/audit",
        admin.audit_log,
        "The audit log (X1)",
        query=("actor", "action", "from", "to", "limit"),
    ),
    Route(
        "POST",
        "/v1/settlements",
        settlement.build,
        "Build a month's settlement batch for a campaign and district (S1)",
        body=("campaign_id", "district", "month"),
    ),
    Route("GET", "/v1/settlements/{settlement_id}", settlement.show, "A settlement batch (S1)"),
    Route(
        "GET",
        "/v1/settlements/{settlement_id}/csv",
        settlement.finance_csv,
        "The finance bureau's CSV of a batch (S1)",
    ),
    Route(
        "POST",
        "/v1/settlements/{settlement_id}/steps",
        settlement.step,
        "Review, approve or pay a batch (S1)",
        body=("step", "note"),
    ),
    Route(
        "GET",
        "/v1/reports/ranking",
        settlement.ranking,
        "The month's district ranking as JSON, CSV or PNG (S3)",
        query=("month", "format", "campaign_id"),
    ),
    Route(
        "GET",
        "/v1/merchant/day",
        till.merchant_day,
        "The merchant's redemptions and refunds of a date (S2)",
        query=("date",),
    ),
)

DEV_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/dev/idp/assertion",
        people.dev_identity_assertion,
        "Demo only: the development identity provider",
        body=("id_number",),
    ),
)


def openapi_document(routes: tuple[Route, ...] = ROUTES) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    error = {"$ref": "#/components/schemas/Error"}
    for route in routes:
        roles = getattr(route.handler, "roles", None)
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.handler.__name__,
            "x-roles": sorted(str(r) for r in roles) if roles else ["anyone"],
            "responses": {
                "200": {"description": "OK"},
                "4XX": {
                    "description": "Refused",
                    "content": {"application/json": {"schema": error}},
                },
            },
        }
        if roles:
            op["security"] = [{"bearer": []}]
        params: list[dict[str, Any]] = [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for name in route.query
        ]
        params += [
            {
                "name": name.strip("{}"),
                "in": "path",
                "required": True,
                "schema": {"type": "integer"},
            }
            for name in route.path.split("/")
            if name.startswith("{")
        ]
        if route.idempotent_key:
            params.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "maxLength": 255},
                }
            )
        if params:
            op["parameters"] = params
        if route.upload:
            op["requestBody"] = {
                "required": True,
                "content": {route.upload: {"schema": {"type": "string", "format": "binary"}}},
            }
        if route.body:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {name: {} for name in route.body},
                        }
                    }
                },
            }
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Liaocheng consumption vouchers", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                }
            },
        },
    }


async def freeze_heap(app: web.Application) -> None:
    """For a serving process, after start-up: what exists now lives as long as the process,
    so the cyclic collector need not walk it again (``gc.freeze``)."""
    gc.collect()
    gc.freeze()


def load_campaigns(settings: Settings) -> dict[str, Campaign]:
    loaded: dict[str, Campaign] = {}
    for path in settings.campaign_files:
        campaign = load_campaign(path)
        if campaign.id in loaded:
            raise CampaignConfigInvalid(f"campaign {campaign.id} is configured twice")
        loaded[campaign.id] = campaign
    return loaded


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> web.Application:
    # item 10: aiohttp's own cap is a JSON body's; the upload routes stream theirs through
    # ``read_body`` with their own limit, after ``requires`` has checked who is calling
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[edge_middleware])
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = Metrics()
    app[CAMPAIGNS] = load_campaigns(settings)
    zones = {c.timezone for c in app[CAMPAIGNS].values()}
    if len(zones) != 1:
        raise CampaignConfigInvalid(f"all campaigns of one server share a time zone, not {zones}")
    app[TZ] = next(iter(app[CAMPAIGNS].values())).tz
    app[ACCESS_CACHE] = ExpiringLru(50_000)
    app[QR_VERIFIER] = QrVerifier(settings.qr_verifying_keys, SERVICE_ISSUER, QR_AUDIENCE)
    app[QUOTE_CACHE] = ExpiringLru(20_000)
    app.cleanup_ctx.append(_postgres)
    app.cleanup_ctx.append(serve_view)  # rule X1: who is blocked, refreshed every second
    app.cleanup_ctx.append(_redis)
    app.cleanup_ctx.append(_retention)
    routes = ROUTES + (DEV_ROUTES if settings.dev_idp_key is not None else ())
    app[UPLOAD_ROUTES] = frozenset((r.method, r.path) for r in routes if r.upload)
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
    return app


async def _postgres(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    conn = await asyncpg.connect(settings.database_url)
    try:
        await migrate(conn)
        for campaign in app[CAMPAIGNS].values():
            await campaign_db.upsert(conn, campaign)
        # rule C1: campaigns loaded by operators (POST /v1/campaigns) live in the ledger
        for config in await campaign_db.stored_configs(conn):
            if config.get("id") not in app[CAMPAIGNS]:
                stored = load_campaign_dict(config, source=f"ledger:{config.get('id')}")
                if stored.tz.key != app[TZ].key:  # type: ignore[attr-defined]
                    raise CampaignConfigInvalid(f"campaign {stored.id} is in another time zone")
                app[CAMPAIGNS][stored.id] = stored
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.pg_pool_min,
        max_size=settings.pg_pool_max,
        command_timeout=30,
        reset=_reset,
    )
    assert pool is not None
    app[PG] = pool
    # The till's batched statements have connections of their own, planned once: batch sizes
    # vary, and PostgreSQL would otherwise plan the context read afresh for each batch (its
    # shape does not depend on the batch: every lookup is an index probe per bill).
    till_pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=2,
        max_size=2 * settings.batch_concurrency,
        command_timeout=30,
        reset=_reset,
        server_settings={"plan_cache_mode": "force_generic_plan"},
    )
    assert till_pool is not None
    app[CONTEXT_READS] = Batcher(
        partial(_read_contexts, till_pool),
        max_batch=settings.batch_max_size,
        max_running=settings.batch_concurrency,
        observe=app[METRICS].batch_size.labels("context_read").observe,
    )
    app[REDEEM_WRITES] = Batcher(
        partial(_write_redemptions, till_pool),
        max_batch=settings.batch_max_size,
        max_running=settings.batch_concurrency,
        key=lambda bill: bill.citizen_id,  # one citizen's bills never share a statement
        observe=app[METRICS].batch_size.labels("redeem_write").observe,
    )
    yield
    await app[CONTEXT_READS].drain()
    await app[REDEEM_WRITES].drain()
    await till_pool.close()
    await pool.close()


async def _read_contexts(pool: asyncpg.Pool, queries: list[ContextQuery]) -> list[Context]:
    async with pool.acquire() as conn:
        return await redemption_db.read_contexts(conn, queries)


async def _write_redemptions(pool: asyncpg.Pool, bills: list[Redemption]) -> list[int | None]:
    """All the bills in one statement; if the ledger refuses any of them, the statement
    changed nothing and every bill gets None: each is then written alone (``till.redeem``),
    where the refusal lands on the bill it belongs to. So does every bill of a statement that
    PostgreSQL aborted to break a deadlock (two server processes writing one citizen's
    vouchers while Redis is unavailable, issue 9 item 11): the bill alone retries it.

    The statement takes its vouchers' row locks citizen by citizen in ascending order (its
    bills are sorted so), so two batches lock shared citizens in the same order and seldom
    deadlock at all."""
    order = sorted(range(len(bills)), key=lambda n: bills[n].citizen_id)
    async with pool.acquire() as conn:
        try:
            ids = await redemption_db.write_redemptions(conn, [bills[n] for n in order])
        except asyncpg.PostgresError:
            return [None] * len(bills)
    written: list[int | None] = [None] * len(bills)
    for n, redemption_id in zip(order, ids, strict=True):
        written[n] = redemption_id
    return written


async def _reset(conn: asyncpg.Connection) -> None:
    """What a connection needs before it goes back to the pool. The handlers leave no session
    state (no SET, LISTEN, cursors or session locks), so asyncpg's full reset query — a round
    trip on every release — is skipped; an abandoned transaction is still rolled back."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def _redis(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = aioredis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5, retry_on_timeout=False
    )
    app[REDIS] = client
    metrics = app[METRICS]
    breaker = Breaker(
        failure_threshold=settings.redis_breaker_failures,
        cool_down_s=settings.redis_breaker_cool_down_s,
        on_state=metrics.redis_breaker_state.set,
        on_skip=metrics.redis_skipped.inc,
    )
    app[GUARD] = Guard(
        client,
        lock_ttl_ms=settings.lock_ttl_ms,
        observe_batch=metrics.batch_size,
        breaker=breaker,
    )
    yield
    await app[GUARD].drain()
    await client.aclose()


def retention_hours(app: web.Application) -> int:
    """How long consumed token ids and kept refusals stay: the setting, every loaded
    campaign's ``idempotency_retention_hours`` (rule U7), and never under a day."""
    campaigns = [c.idempotency_retention_hours for c in app[CAMPAIGNS].values()]
    return max(MIN_RETENTION_HOURS, app[SETTINGS].retention_hours, *campaigns)


async def purge_once(app: web.Application) -> dict[str, int] | None:
    """One purge pass (issue 9, retention), with the app's clock: rows deleted per table."""
    before = app[CLOCK]() - timedelta(hours=retention_hours(app))
    async with app[PG].acquire() as conn:
        return await retention_db.purge(conn, before=before, batch=app[SETTINGS].retention_batch)


async def _purge_forever(app: web.Application) -> None:
    while True:
        await asyncio.sleep(app[SETTINGS].retention_interval_s)
        try:
            deleted = await purge_once(app)
        except Exception:  # the next pass tries again; serving goes on
            log.exception("retention purge failed")
            continue
        if deleted:
            log.info("retention purge: %s", deleted)


async def _retention(app: web.Application) -> AsyncIterator[None]:
    """The purge job, every ``retention_interval_s``, for as long as the app serves."""
    task = asyncio.create_task(_purge_forever(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


__all__ = ["ROUTES", "Role", "create_app", "openapi_document", "purge_once"]
