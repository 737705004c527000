"""``create_app(settings)``: the whole HTTP service, reading no environment."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server import db, redis_client
from server import schemas as S
from server.access import ACCESS_VIEW, serve_view
from server.admission import ADMISSION, Admission, Gate, Kind, admission_middleware
from server.auth import Role, public, utcnow
from server.batching import Batcher
from server.breaker import Breaker
from server.caches import ExpiringLru, QrVerifier
from server.campaign_files import load_campaign_files, load_ticket_campaign_files
from server.db import campaigns as campaign_db
from server.db import redemptions as redemption_db
from server.db import retention as retention_db
from server.db import tickets as tickets_db
from server.db.migrate import migrate
from server.db.replica import REPORTS_APPLICATION, Lag, Reports
from server.guard import Guard
from server.handlers import (
    admin,
    listings,
    operators,
    people,
    sales_office,
    settlement,
    ticket_settlement,
    tickets,
    till,
)
from server.pages import install as install_pages
from server.services.ports import TillPorts
from server.settings import Settings
from server.web import (
    ACCESS_CACHE,
    CAMPAIGNS,
    CLOCK,
    GUARD,
    METRICS,
    PG,
    QR_VERIFIER,
    REDIS,
    REPORTS,
    ROUTE_INPUTS,
    SETTINGS,
    TICKET_CAMPAIGNS,
    TILL,
    TZ,
    Metrics,
    RouteInput,
    edge_middleware,
    status_of,
    wire_codes,
)
from shared.campaign import Campaign, campaign_to_dict, load_campaign_dict
from shared.errors import CampaignConfigInvalid, error_classes
from shared.ticket_campaign import (
    load_ticket_campaign_dict,
    ticket_campaign_to_dict,
)

log = logging.getLogger("server")

# retention never keeps less than a day (Stripe keeps idempotency keys 24 h), whatever is set
MIN_RETENTION_HOURS = 24


@dataclass(frozen=True, slots=True)
class Route:
    """One route. ``body`` and ``query`` name its Structs in ``server.schemas``: the edge
    decodes with them and ``/openapi.json`` is generated from them."""

    method: str
    path: str
    handler: Callable[..., Any]
    summary: str
    body: type[msgspec.Struct] | None = None
    query: type[msgspec.Struct] | None = None
    idempotent_key: bool = False
    manager_approval: bool = False  # takes a Manager-Approval header (issue 11 item 5)
    voucher_code: bool = False  # a lookup by key that takes a Voucher-Code header (issue 14)
    upload: str = ""  # media type of a raw (non-JSON) body
    response: type[msgspec.Struct] | None = None  # the JSON answer
    status: tuple[int, ...] = (200,)  # the statuses of an answer that is not a refusal
    media: tuple[str, ...] = ()  # other media types the answer may come in
    errors: tuple[str, ...] = ()  # its own error codes (route_errors adds the generic ones)


@public
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@public
async def readyz(request: web.Request) -> web.Response:
    """Ready when PostgreSQL, the source of truth, answers; "degraded" (still 200) when
    Redis does not. Without Redis the server serves every request correctly, the ledger's
    fence deciding (rule U7), only slower under contention: a load balancer that took every
    host out of rotation because their shared Redis failed would turn a Redis outage into a
    whole one. Redis's state is in ``checks`` for the operators (and in /metrics)."""
    checks: dict[str, str] = {}
    checks["postgres"] = await db.answers(request.app[PG], wait_s=2)
    checks["redis"] = await redis_client.check(request.app[REDIS])
    ok = {name: v == "ok" or v.startswith("ok:") for name, v in checks.items()}
    if not ok["postgres"]:
        return web.json_response({"status": "not_ready", "checks": checks}, status=503)
    status = "ready" if ok["redis"] else "degraded"
    return web.json_response({"status": status, "checks": checks})


@public
async def metrics(request: web.Request) -> web.Response:
    data = generate_latest(request.app[METRICS].registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


@public
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(_described())


@functools.cache
def _described() -> dict[str, Any]:
    return openapi_document()


@public
async def campaigns(request: web.Request) -> web.Response:
    return web.json_response(
        {"campaigns": [campaign_to_dict(c) for c in request.app[CAMPAIGNS].values()]}
    )


@public
async def ticket_programmes(request: web.Request) -> web.Response:
    """Issue 13: the loaded house-ticket programmes and their rules (C1, T1-T14)."""
    loaded = request.app[TICKET_CAMPAIGNS].values()
    return web.json_response({"programmes": [ticket_campaign_to_dict(c) for c in loaded]})


# what a till's quote and redemption may be refused for (rules U1-U6, V2, X1)
TILL_REFUSALS = (
    "token_invalid",
    "token_expired",
    "token_replayed",
    "terminal_disabled",
    "participation_revoked",
    "wrong_district",
    "voucher_expired",
    "not_enough_vouchers",
    "merchant_not_permitted",
    "merchant_suspended",
    "bill_too_small",
    "too_many_vouchers",
)

# what a sales office's quote and use of a house ticket may be refused for (rules T2, T4-T8,
# with U1, U5, X1 as at a shop's till)
TICKET_USE_REFUSALS = (
    "token_invalid",
    "token_expired",
    "token_replayed",
    "terminal_disabled",
    "participation_revoked",
    "merchant_not_permitted",
    "merchant_suspended",
    "invalid_id_number",
    "invalid_date",
    "listing_not_eligible",
    "contract_already_used",
    "ticket_not_found",
    "ticket_void",
    "ticket_expired",
    "ticket_reported_lost",
    "buyer_not_served",
    "ticket_balance_insufficient",
    "ticket_exceeds_price",
    "ticket_use_below_minimum",
    "ticket_split_refused",
)

# what a till asking by idempotency key may hear (rule U7): the code it sends (Voucher-Code)
# is read as at a redemption, its times not checked (an old-format code is an expired one)
LOOKUP_BY_KEY_ERRORS = (
    "not_found",
    "idempotency_key_in_use",
    "voucher_code_required",
    "token_invalid",
    "token_expired",
)

# what an issuer's act on a ticket may be refused for (rules T1-T3, T6, T13)
TICKET_ACT_REFUSALS = ("conflict", "ticket_void", "ticket_reported_lost", "invalid_request")

ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", healthz, "Liveness", response=S.Health),
    Route(
        "GET",
        "/readyz",
        readyz,
        "Readiness: PostgreSQL reachable (Redis down: degraded, still ready)",
        response=S.Readiness,
        status=(200, 503),
    ),
    Route("GET", "/metrics", metrics, "Prometheus metrics", response=None, media=("text/plain",)),
    Route("GET", "/openapi.json", openapi, "This description", response=S.OpenApi),
    Route(
        "GET",
        "/v1/campaigns",
        campaigns,
        "The loaded campaigns and their rules (C1)",
        response=S.Campaigns,
    ),
    Route(
        "GET",
        "/v1/ticket-programmes",
        ticket_programmes,
        "The loaded house-ticket programmes and their rules (C1, T1-T14)",
        response=S.TicketProgrammes,
    ),
    Route(
        "POST",
        "/v1/campaigns",
        operators.load_campaign_file,
        "Load a campaign file (TOML), validated; replaces one without claims (C1)",
        upload="application/toml",
        response=S.CampaignRules,
        status=(201,),
        errors=("campaign_config_invalid", "campaign_in_use"),
    ),
    Route(
        "POST",
        "/v1/auth/citizen",
        people.citizen_sign_in,
        "Exchange the real-name app's assertion for an access token (X2)",
        body=S.CitizenSignIn,
        response=S.CitizenAccess,
        errors=("unauthenticated", "invalid_id_number"),
    ),
    Route(
        "POST",
        "/v1/auth/terminal",
        people.terminal_sign_in,
        "Exchange a terminal credential for an access token (X2)",
        body=S.TerminalSignIn,
        response=S.TerminalAccess,
        errors=("unauthenticated", "terminal_disabled", "too_many_attempts"),
    ),
    Route(
        "POST",
        "/v1/auth/staff",
        people.staff_sign_in,
        "Staff sign-in (X2)",
        body=S.StaffSignIn,
        response=S.StaffAccess,
        errors=("unauthenticated", "too_many_attempts"),
    ),
    Route(
        "POST",
        "/v1/claims",
        people.claim,
        "Claim the vouchers of a certificate (E1-E4, A1-A3, V1, V3)",
        body=S.ClaimRequest,
        response=S.Claimed,
        status=(201,),
        errors=(
            "certificate_not_yours",
            "too_many_attempts",
            "certificate_not_eligible",
            "certificate_already_claimed",
            "no_vouchers_due",
            "campaign_not_started",
            "campaign_ended",
            "participation_revoked",
        ),
    ),
    Route(
        "GET",
        "/v1/wallet",
        people.wallet,
        "The citizen's vouchers and claims",
        response=S.Wallet,
    ),
    Route(
        "POST",
        "/v1/wallet/qr",
        people.wallet_qr,
        "A fresh dynamic QR token, as JSON, PNG or SVG (U5)",
        query=S.WalletQrQuery,
        response=S.QrToken,
        media=("image/png", "image/svg+xml"),
        errors=("rate_limited",),
    ),
    Route(
        "POST",
        "/v1/quote",
        till.quote,
        "How many vouchers a bill can use, and whether its receipt number is free today; "
        "changes nothing (U2, U3, U4, U6)",
        body=S.QuoteRequest,
        response=S.Quote,
        errors=(*TILL_REFUSALS, "bill_already_redeemed"),
    ),
    Route(
        "POST",
        "/v1/redemptions",
        till.redeem,
        "Redeem vouchers on a bill (U1-U7)",
        body=S.RedeemRequest,
        idempotent_key=True,
        response=S.Redemption,
        status=(201,),
        errors=(*TILL_REFUSALS, "bill_already_redeemed"),
    ),
    Route(
        "GET",
        "/v1/redemptions",
        till.find_redemption,
        "Find a redemption by receipt number or idempotency key",
        query=S.FindRedemptionQuery,
        voucher_code=True,
        response=S.Redemption,
        errors=LOOKUP_BY_KEY_ERRORS,
    ),
    # issue 13: a house ticket's use at a developer's sales office (rules T2, T4-T8)
    Route(
        "POST",
        "/v1/ticket-uses/quote",
        sales_office.quote,
        "Quote a house ticket's use on a purchase contract: range, subsidy, what the buyer pays",
        body=S.TicketQuoteRequest,
        response=S.TicketQuote,
        errors=TICKET_USE_REFUSALS,
    ),
    Route(
        "POST",
        "/v1/ticket-uses",
        sales_office.use,
        "Use the holder's house ticket on a purchase contract, once (T5-T8, U5, U7)",
        body=S.TicketUseRequest,
        idempotent_key=True,
        response=S.TicketUse,
        status=(201,),
        errors=TICKET_USE_REFUSALS,
    ),
    Route(
        "GET",
        "/v1/ticket-uses",
        sales_office.find_use,
        "Find a house ticket's use by the idempotency key a terminal sent (U7)",
        query=S.FindTicketUseQuery,
        voucher_code=True,
        response=S.TicketUse,
        errors=LOOKUP_BY_KEY_ERRORS,
    ),
    Route(
        "GET",
        "/v1/sales-office/pool",
        sales_office.listing_pool,
        "The seller's units in the listing pool (T4)",
        response=S.ListingPool,
    ),
    Route(
        "GET",
        "/v1/redemptions/{redemption_id}",
        till.get_redemption,
        "One redemption",
        response=S.Redemption,
    ),
    Route(
        "POST",
        "/v1/redemptions/{redemption_id}/refunds",
        till.refund,
        "Refund all or part of a bill (F1-F3)",
        body=S.RefundRequest,
        idempotent_key=True,
        manager_approval=True,
        response=S.Redemption,
        status=(201,),
        errors=(
            "refund_invalid",
            "already_refunded",
            "already_settled",
            "manager_approval_required",
            "approval_for_another_refund",
        ),
    ),
    Route(
        "POST",
        "/v1/redemptions/{redemption_id}/refund-approvals",
        till.approve_refund,
        "A manager of the shop, at the till, approves one refund (issue 11 item 5)",
        body=S.RefundApprovalRequest,
        response=S.RefundApproval,
        status=(201,),
        errors=("manager_approval_required", "too_many_attempts", "not_found"),
    ),
    Route(
        "POST",
        "/v1/registry/imports",
        operators.import_registry,
        "Import the registration office's certificate records, CSV in UTF-8 or GBK (E3)",
        query=S.RegistryImportQuery,
        upload="text/csv",
        response=S.RegistryImport,
        status=(200, 201),
    ),
    Route(
        "GET",
        "/v1/merchants",
        admin.list_merchants,
        "Merchants (a district's, or all)",
        query=S.MerchantsQuery,
        response=S.Merchants,
    ),
    Route(
        "POST",
        "/v1/merchants",
        admin.add_merchant,
        "Add a merchant (U1)",
        body=S.AddMerchantRequest,
        response=S.Merchant,
        status=(201,),
        errors=("conflict",),  # the same name in the same district (details.reason)
    ),
    Route(
        "POST",
        "/v1/merchants/{merchant_id}/admission",
        admin.admit_merchant,
        "Admit or un-admit a merchant: the commerce bureau (U1)",
        body=S.AdmissionRequest,
        response=S.Merchant,
    ),
    Route(
        "POST",
        "/v1/merchants/{merchant_id}/permission",
        admin.permit_merchant,
        "Grant or withdraw redemption permission: the district (U1)",
        body=S.PermissionRequest,
        response=S.Merchant,
    ),
    Route(
        "POST",
        "/v1/merchants/{merchant_id}/suspension",
        admin.suspend_merchant,
        "Suspend a merchant or lift it (X1)",
        body=S.SuspensionRequest,
        response=S.Merchant,
    ),
    Route(
        "GET",
        "/v1/merchants/{merchant_id}/settings",
        admin.merchant_settings,
        "A merchant's settings: receipts numbered per till (U4), refunds approved by a manager",
        response=S.MerchantSettings,
    ),
    Route(
        "POST",
        "/v1/merchants/{merchant_id}/settings",
        admin.change_merchant_settings,
        "Change a merchant's settings, with a reason (U4, X1)",
        body=S.MerchantSettingsRequest,
        response=S.MerchantSettings,
    ),
    Route(
        "POST",
        "/v1/merchants/{merchant_id}/terminals",
        admin.issue_terminal,
        "Issue a terminal and its one-time credential (X2)",
        body=S.IssueTerminalRequest,
        response=S.IssuedTerminal,
        status=(201,),
    ),
    Route(
        "POST",
        "/v1/terminals/{terminal_id}/revocation",
        admin.revoke_terminal,
        "Revoke a terminal (U1)",
        body=S.RevokeTerminalRequest,
        response=S.RevokedTerminal,
    ),
    Route(
        "POST",
        "/v1/citizens/revocation",
        admin.revoke_citizen,
        "Revoke a citizen's participation and claw back unused vouchers (X1)",
        body=S.RevokeCitizenRequest,
        response=S.RevokedCitizen,
        errors=("invalid_id_number", "not_found"),
    ),
    Route(
        "GET",
        "/v1/accounts",
        admin.list_accounts,
        "Staff accounts: all (city, auditor) or the shop's manager accounts (X2)",
        query=S.AccountsQuery,
        response=S.Accounts,
    ),
    Route(
        "POST",
        "/v1/accounts",
        admin.add_account,
        "Create a staff account; a generated password is shown once (X2)",
        body=S.AddAccountRequest,
        response=S.Account,
        status=(201,),
        errors=("username_invalid", "username_taken", "password_too_short"),
    ),
    Route(
        "POST",
        "/v1/accounts/{account_id}/status",
        admin.set_account_status,
        "Disable an account (refused at once, whatever token it holds) or enable it (X1, X2)",
        body=S.AccountStatusRequest,
        response=S.Account,
        errors=("not_found", "own_account"),
    ),
    Route(
        "POST",
        "/v1/accounts/{account_id}/role",
        admin.set_account_role,
        "Change an account's role, district or merchant; its tokens end (X2)",
        body=S.AccountRoleRequest,
        response=S.Account,
        errors=("not_found", "own_account"),
    ),
    Route(
        "POST",
        "/v1/accounts/{account_id}/password",
        admin.reset_account_password,
        "Reset an account's password, given or generated; its sessions end (X2)",
        body=S.AccountPasswordRequest,
        response=S.Account,
        errors=("not_found", "own_account", "password_too_short"),
    ),
    Route(
        "GET",
        "/v1/audit",
        admin.audit_log,
        "The audit log (X1)",
        query=S.AuditQuery,
        response=S.AuditLog,
    ),
    # --- house tickets: the issuer's and the operators' side (issue 13, rules T1-T14) ---
    Route(
        "POST",
        "/v1/tickets",
        tickets.issue,
        "Issue a house ticket from a compensation agreement: its district's issuer (T1, T2)",
        body=S.IssueTicketRequest,
        response=S.TicketFile,
        status=(201,),
        errors=(
            "issuance_closed",
            "project_not_eligible",
            "invalid_id_number",
            "invalid_amount",
            "invalid_date",
            "conflict",
        ),
    ),
    Route(
        "GET",
        "/v1/tickets",
        tickets.find_tickets,
        "A ticket by its printed number (a replaced one too, T13), or a programme's tickets",
        query=S.TicketsQuery,
        response=S.Tickets,
        errors=("not_found",),
    ),
    Route(
        "GET",
        "/v1/tickets/{ticket_id}",
        tickets.show,
        "A ticket's file: its family, uses, audit trail and payouts (T1-T13)",
        response=S.TicketFile,
    ),
    Route(
        "POST",
        "/v1/tickets/{ticket_id}/split",
        tickets.split,
        "Split an unused ticket into pieces with new numbers (T6)",
        body=S.SplitTicketRequest,
        response=S.TicketFile,
        errors=(*TICKET_ACT_REFUSALS, "ticket_split_refused", "ticket_expired", "invalid_amount"),
    ),
    Route(
        "POST",
        "/v1/tickets/{ticket_id}/transfer",
        tickets.transfer,
        "Transfer a ticket to another holder, once, on its conditions (T3)",
        body=S.TransferTicketRequest,
        response=S.TicketFile,
        errors=(*TICKET_ACT_REFUSALS, "ticket_transfer_refused", "invalid_id_number"),
    ),
    Route(
        "POST",
        "/v1/tickets/{ticket_id}/heir",
        tickets.heir,
        "Pass a ticket to the holder's heir on a notarised certificate (T3)",
        body=S.HeirTicketRequest,
        response=S.TicketFile,
        errors=(*TICKET_ACT_REFUSALS, "ticket_transfer_refused", "invalid_id_number"),
    ),
    Route(
        "POST",
        "/v1/tickets/{ticket_id}/loss",
        tickets.lost,
        "Report a paper ticket lost, with its newspaper notice (T13)",
        body=S.LostTicketRequest,
        response=S.TicketFile,
        errors=(*TICKET_ACT_REFUSALS, "invalid_date", "working_calendar_missing"),
    ),
    Route(
        "POST",
        "/v1/tickets/{ticket_id}/reissue",
        tickets.reissue,
        "Reissue a lost ticket under a new number once its notice has run (T13)",
        body=S.ReissueTicketRequest,
        response=S.TicketFile,
        errors=(*TICKET_ACT_REFUSALS, "replacement_not_yet", "working_calendar_missing"),
    ),
    Route(
        "POST",
        "/v1/tickets/{ticket_id}/home-kept",
        tickets.home_kept,
        "Record that the ticket's household keeps a home, with its document (T4, Suining)",
        body=S.HomeKeptRequest,
        response=S.TicketFile,
        errors=TICKET_ACT_REFUSALS,
    ),
    Route(
        "POST",
        "/v1/tickets/{ticket_id}/void",
        tickets.void,
        "Void a ticket issued in error, never used (T1)",
        body=S.VoidTicketRequest,
        response=S.TicketFile,
        errors=(*TICKET_ACT_REFUSALS, "ticket_return_refused"),
    ),
    Route(
        "POST",
        "/v1/tickets/{ticket_id}/return",
        tickets.return_balance,
        "Return an expired ticket's balance for another form of compensation (T2)",
        body=S.ReturnTicketRequest,
        response=S.TicketFile,
        errors=(*TICKET_ACT_REFUSALS, "ticket_return_refused"),
    ),
    Route(
        "POST",
        "/v1/tickets/{ticket_id}/cashout",
        tickets.cashout,
        "Grant the residual cash-out once 90% of the face value is used (T9)",
        body=S.CashoutTicketRequest,
        response=S.TicketFile,
        status=(201,),
        errors=(*TICKET_ACT_REFUSALS, "cashout_not_due"),
    ),
    Route(
        "GET",
        "/v1/ticket-contracts",
        tickets.find_use,
        "A seller's contract's ticket use (T5)",
        query=S.TicketUseQuery,
        response=S.UseFile,
        errors=("not_found",),
    ),
    Route(
        "GET",
        "/v1/ticket-uses/{use_id}",
        tickets.show_use,
        "A ticket use with its conditions and settlement so far (T5-T8, T12)",
        response=S.UseFile,
    ),
    Route(
        "POST",
        "/v1/ticket-uses/{use_id}/cancellation",
        tickets.cancel_use,
        "Reverse a cancelled purchase contract: the issuer's act (T11)",
        body=S.CancelUseRequest,
        response=S.UseFile,
        errors=(*TICKET_ACT_REFUSALS, "contract_already_cancelled", "already_settled"),
    ),
    Route(
        "POST",
        "/v1/ticket-uses/{use_id}/conditions",
        tickets.record_condition,
        "Record a use's settlement condition or property certificate (T12)",
        body=S.UseConditionRequest,
        response=S.UseFile,
        status=(201,),
        errors=("conflict", "invalid_date"),
    ),
    Route(
        "GET",
        "/v1/ticket-payouts",
        tickets.payouts,
        "A programme's cash-outs and bonuses to holders (T9, T10)",
        query=S.PayoutsQuery,
        response=S.Payouts,
    ),
    Route(
        "POST",
        "/v1/ticket-payouts/{payout_id}/payment",
        tickets.pay_payout,
        "Record a cash-out's or bonus's payment to the holder (T9, T10)",
        body=S.PayoutPaymentRequest,
        response=S.PayoutView,
        errors=("conflict",),
    ),
    Route(
        "POST",
        "/v1/ticket-bonuses/reviews",
        tickets.review_bonuses,
        "Review the district's usage bonuses at 12 months (T10)",
        body=S.BonusReviewRequest,
        response=S.BonusReviewed,
        status=(201,),
        errors=("refused", "conflict"),
    ),
    Route(
        "POST",
        "/v1/ticket-settlements",
        ticket_settlement.build,
        "Build a district's settlement with its sellers at a settlement point (T12)",
        body=S.BuildTicketSettlementRequest,
        response=S.TicketSettlement,
        status=(201,),
        errors=("settlement_exists", "invalid_date", "conflict"),
    ),
    Route(
        "GET",
        "/v1/ticket-settlements",
        ticket_settlement.listed,
        "A programme's settlements with the sellers (T12)",
        query=S.TicketSettlementsQuery,
        response=S.TicketSettlements,
    ),
    Route(
        "GET",
        "/v1/ticket-settlements/{settlement_id}",
        ticket_settlement.show,
        "A settlement with the sellers and its lines (T12)",
        response=S.TicketSettlement,
    ),
    Route(
        "POST",
        "/v1/ticket-settlements/{settlement_id}/steps",
        ticket_settlement.step,
        "Review, approve or pay a settlement with the sellers (T12, S1's duties)",
        body=S.SettlementStepRequest,
        response=S.TicketSettlement,
        errors=("settlement_state_invalid", "separation_of_duties"),
    ),
    Route(
        "GET",
        "/v1/ticket-reports",
        ticket_settlement.report,
        "A programme's report per programme, district and seller, JSON or CSV (T14)",
        query=S.TicketReportQuery,
        response=S.TicketReport,
        media=("text/csv",),
    ),
    Route(
        "GET",
        "/v1/ticket-transactions",
        ticket_settlement.transactions,
        "The transactions a programme publishes (T14)",
        query=S.ProgrammeQuery,
        response=S.PublishedTransactions,
    ),
    Route(
        "POST",
        "/v1/listings/imports",
        listings.import_units,
        "Import a developer's units for the listing pool, CSV in UTF-8 or GBK (T4)",
        query=S.ListingImportQuery,
        upload="text/csv",
        response=S.ListingImport,
        status=(200, 201),
        errors=("not_found",),
    ),
    Route(
        "GET",
        "/v1/listings",
        listings.units,
        "The listing pool: admitted units for anyone, every status for staff (T4, T14)",
        query=S.ListingsQuery,
        response=S.ListedUnits,
    ),
    Route(
        "POST",
        "/v1/listings/status",
        listings.set_status,
        "Admit units into the listing pool or remove them: the housing bureau (T4)",
        body=S.ListingStatusRequest,
        response=S.ListedUnits,
        errors=("not_found",),
    ),
    Route(
        "POST",
        "/v1/merchants/{merchant_id}/exit-notice",
        listings.exit_notice,
        "Record a developer's notice of leaving the listing pool (T4)",
        body=S.ExitNoticeRequest,
        response=S.ExitNotice,
        errors=("invalid_date",),
    ),
    Route(
        "POST",
        "/v1/settlements",
        settlement.build,
        "Build a month's settlement batch for a campaign and district (S1)",
        body=S.BuildSettlementRequest,
        response=S.Settlement,
        status=(201,),
        errors=("settlement_exists", "month_not_over"),
    ),
    Route(
        "GET",
        "/v1/settlements/{settlement_id}",
        settlement.show,
        "A settlement batch (S1)",
        response=S.Settlement,
    ),
    Route(
        "GET",
        "/v1/settlements/{settlement_id}/csv",
        settlement.finance_csv,
        "The finance bureau's CSV of a batch (S1)",
        media=("text/csv",),
    ),
    Route(
        "POST",
        "/v1/settlements/{settlement_id}/steps",
        settlement.step,
        "Review, approve or pay a batch (S1)",
        body=S.SettlementStepRequest,
        response=S.Settlement,
        errors=("settlement_state_invalid", "separation_of_duties"),
    ),
    Route(
        "GET",
        "/v1/reports/ranking",
        settlement.ranking,
        "The month's district ranking as JSON, CSV or PNG (S3)",
        query=S.RankingQuery,
        response=S.Ranking,
        media=("text/csv", "image/png"),
    ),
    Route(
        "GET",
        "/v1/merchant/day",
        till.merchant_day,
        "The merchant's redemptions and refunds of a date, as JSON or CSV (S2)",
        query=S.MerchantDayQuery,
        response=S.MerchantDay,
        media=("text/csv",),
    ),
)

DEV_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/dev/idp/assertion",
        people.dev_identity_assertion,
        "Demo only: the development identity provider",
        body=S.DevAssertionRequest,
        response=S.DevAssertion,
        errors=("invalid_id_number",),
    ),
)


# every signed-in route: the token, the role, and the access view (rule X1: a revoked
# terminal or citizen, a suspended merchant, a disabled account is refused at once)
BEARER_ERRORS = (
    "unauthenticated",
    "forbidden",
    "terminal_disabled",
    "merchant_suspended",
    "account_disabled",
    "participation_revoked",
)
# routes that read or write the ledger answer 503 while PostgreSQL is out of reach
_IN_MEMORY = frozenset({"/healthz", "/metrics", "/openapi.json"})
_FROM_MEMORY = frozenset({("GET", "/v1/campaigns"), ("GET", "/v1/ticket-programmes")})


def route_errors(route: Route) -> list[str]:
    """Every error code a route may answer: its own, and those its shape implies (a body, a
    query string, a path id, a sign-in)."""
    codes = set(route.errors)
    if getattr(route.handler, "roles", None):
        codes.update(BEARER_ERRORS)
    for kind in (route.body, route.query):
        if kind is not None:
            codes.add("invalid_request")
            codes.update(c for c, _ in wire_codes(kind).values() if c)
    if route.body is not None or route.upload:
        codes.update(("invalid_request", "body_too_large"))
    if "{" in route.path:
        codes.add("not_found")
    if route.idempotent_key:
        codes.update(("invalid_request", "idempotency_key_reused", "idempotency_key_in_use"))
    if route.path not in _IN_MEMORY and (route.method, route.path) not in _FROM_MEMORY:
        codes.add("database_unavailable")
    if route.path not in _NEVER_SHED:  # issue 14: refused at once under overload
        codes.add("waiting_room" if route.path in _CLAIM_PATHS else "server_busy")
    return sorted(codes)


def _error_schema(codes: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": codes},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
            }
        },
    }


def _responses(route: Route) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if route.response is not None:
        content["application/json"] = {"schema": {"$ref": _ref(route.response)}}
    for media in route.media:
        content[media] = {"schema": {"type": "string", "format": "binary"}}
    out: dict[str, Any] = {str(s): {"description": "OK", "content": content} for s in route.status}
    by_status: dict[int, list[str]] = {}
    classes = error_classes()
    for code in route_errors(route):
        by_status.setdefault(status_of(classes[code]()), []).append(code)
    for status, codes in sorted(by_status.items()):
        out[str(status)] = {
            "description": "Refused: " + ", ".join(codes),
            "content": {"application/json": {"schema": _error_schema(codes)}},
        }
    return out


def _present(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: ``X | None`` is X (an absent parameter is the None)."""
    options = [o for o in schema.get("anyOf", ()) if o != {"type": "null"}]
    if len(options) == 1:
        return options[0]  # type: ignore[no-any-return]
    return schema


def _ref(kind: type[msgspec.Struct]) -> str:
    return f"#/components/schemas/{kind.__name__}"


def openapi_document(routes: tuple[Route, ...] = ROUTES) -> dict[str, Any]:
    """The API description, generated from the route table and the Structs the edge decodes
    with (``server.schemas``): bodies, query strings, answers and each route's error codes."""
    kinds = {k for r in routes for k in (r.body, r.query, r.response) if k is not None}
    _, components = msgspec.json.schema_components(
        sorted(kinds, key=lambda k: k.__name__), ref_template="#/components/schemas/{name}"
    )
    paths: dict[str, Any] = {}
    for route in routes:
        roles = getattr(route.handler, "roles", None)
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.handler.__name__,
            "x-roles": sorted(str(r) for r in roles) if roles else ["anyone"],
            "responses": _responses(route),
        }
        if roles:
            op["security"] = [{"bearer": []}]
        params: list[dict[str, Any]] = []
        if route.query is not None:
            described = components.pop(route.query.__name__)
            params += [
                {
                    "name": name,
                    "in": "query",
                    "required": name in described.get("required", ()),
                    "schema": _present(schema),
                }
                for name, schema in described["properties"].items()
            ]
        params += [
            {
                "name": name.strip("{}"),
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": S.BIGINT_MAX},
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
                    "description": "1 to 255 printable characters; a retry sends the same",
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,255}$"},
                }
            )
        if route.voucher_code:
            params.append(
                {
                    "name": "Voucher-Code",
                    "in": "header",
                    "required": False,
                    "description": "asking by idempotency_key: the QR code the request under "
                    "the key carried (its citizen's Redis slot holds the key's at-work mark, "
                    "issue 14). Without it, when nothing is kept under the key, the answer is "
                    "voucher_code_required, never not_found (the request may still be at "
                    "work); a code that is not ours: token_invalid",
                    "schema": {"type": "string"},
                }
            )
        if route.manager_approval:
            params.append(
                {
                    "name": "Manager-Approval",
                    "in": "header",
                    "required": False,
                    "description": "a manager's approval of this very refund (POST "
                    "/v1/redemptions/{redemption_id}/refund-approvals), where the merchant's "
                    "refunds need one",
                    "schema": {"type": "string"},
                }
            )
        if params:
            op["parameters"] = params
        if route.upload:
            op["requestBody"] = {
                "required": True,
                "content": {route.upload: {"schema": {"type": "string", "format": "binary"}}},
            }
        if route.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": _ref(route.body)}}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Liaocheng consumption vouchers", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": components,
        },
    }


async def freeze_heap(app: web.Application) -> None:
    """For a serving process, after start-up: what exists now lives as long as the process,
    so the cyclic collector need not walk it again (``gc.freeze``)."""
    gc.collect()
    gc.freeze()


def load_campaigns(settings: Settings) -> dict[str, Campaign]:
    return load_campaign_files(settings.campaign_files)


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> web.Application:
    # item 10: aiohttp's own cap is a JSON body's; the upload routes stream theirs through
    # ``read_body`` with their own limit, after ``requires`` has checked who is calling
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[admission_middleware, edge_middleware],  # shedding first (issue 14)
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = Metrics()
    app[CAMPAIGNS] = load_campaigns(settings)
    app[TICKET_CAMPAIGNS] = load_ticket_campaign_files(settings.ticket_campaign_files)
    both = app[CAMPAIGNS].keys() & app[TICKET_CAMPAIGNS].keys()
    if both:
        raise CampaignConfigInvalid(f"a voucher campaign and a ticket programme share ids {both}")
    zones = {c.timezone for c in app[CAMPAIGNS].values()}
    zones |= {c.timezone for c in app[TICKET_CAMPAIGNS].values()}
    if len(zones) != 1:
        raise CampaignConfigInvalid(f"all campaigns of one server share a time zone, not {zones}")
    app[TZ] = next(iter(app[CAMPAIGNS].values())).tz
    app[ACCESS_CACHE] = ExpiringLru(50_000)
    app[QR_VERIFIER] = QrVerifier(settings.qr_keys_by_id)
    app.cleanup_ctx.append(_ledger_ready)
    app.cleanup_ctx.append(_pg_pool)
    app.cleanup_ctx.append(serve_view)  # rule X1: who is blocked, refreshed every second
    app.cleanup_ctx.append(_redis)
    app.cleanup_ctx.append(_till)
    app.cleanup_ctx.append(_retention)
    routes = ROUTES + (DEV_ROUTES if settings.dev_idp_key is not None else ())
    app[ROUTE_INPUTS] = {}
    for route in routes:
        added = app.router.add_route(route.method, route.path, route.handler)
        limit = settings.max_upload_bytes if route.upload else settings.max_body_bytes
        name = added.resource.canonical if added.resource is not None else route.path
        app[ROUTE_INPUTS][added] = RouteInput(route.body, route.query, name, limit)
    install_pages(app)  # the wallet, the merchant's pages, the dashboard (issue 12)
    app[ADMISSION] = admission_of(app, settings)
    return app


# issue 14: what each gate admits (server/admission.py), by method and path; health and
# metrics are never shed. A sale's redemption has a gate of its own, after its quote's.
_TILL_WRITES = frozenset(
    {("POST", "/v1/redemptions"), ("POST", "/v1/redemptions/{redemption_id}/refunds")}
)
_TILL_READS = frozenset({"/v1/quote", "/v1/redemptions", "/v1/redemptions/{redemption_id}"})
_CLAIM_PATHS = frozenset({"/v1/claims", "/wallet/claim"})
_NEVER_SHED = frozenset({"/healthz", "/readyz", "/metrics"})


def _kind_of(method: str, path: str) -> Kind:
    if (method, path) in _TILL_WRITES:
        return Kind.TILL_WRITE
    if path in _TILL_READS:
        return Kind.TILL_READ
    return Kind.CLAIMS if path in _CLAIM_PATHS else Kind.OTHER


def admission_of(app: web.Application, settings: Settings) -> Admission:
    gate = Gate(
        settings.shed_target_ms / 1000,
        settings.shed_max_in_flight,
        min_limit=min(4, settings.shed_initial_in_flight),
        initial_limit=settings.shed_initial_in_flight,
        queue_wait_s=settings.shed_queue_wait_ms / 1000,
    )
    metrics = app[METRICS]
    metrics.admission_limit.set_function(partial(getattr, gate, "limit"))  # read when scraped
    refused = metrics.shed
    admission = Admission(
        gate,
        on_refuse=lambda kind: refused.labels(kind).inc(),
        tarpit_s=settings.shed_tarpit_s,
    )
    for route in app.router.routes():
        resource = route.resource
        path = resource.canonical if resource is not None else ""
        if path not in _NEVER_SHED and not path.startswith("/static"):
            admission.of_route[route] = _kind_of(route.method, path)
    return admission


async def _ledger_ready(app: web.Application) -> AsyncIterator[None]:
    """Before anything serves: the schema migrated, the campaigns in the ledger."""
    conn = await db.connect(app[SETTINGS].database_url)
    try:
        await migrate(conn)
        await _sync_campaigns(app, conn)
    finally:
        await conn.close()
    yield


async def _sync_campaigns(app: web.Application, conn: db.Conn) -> None:
    """Rule C1: the configured campaigns go into the ledger; those loaded by operators
    (POST /v1/campaigns) live in the ledger and come back from it."""
    for campaign in app[CAMPAIGNS].values():
        await campaign_db.upsert(conn, campaign)
    for programme in app[TICKET_CAMPAIGNS].values():  # issue 13: house tickets (T1-T14)
        await tickets_db.upsert_programme(conn, programme)
    for config in await campaign_db.stored_configs(conn):
        if config.get("id") not in app[CAMPAIGNS]:
            stored = load_campaign_dict(config, source=f"ledger:{config.get('id')}")
            if stored.tz.key != app[TZ].key:  # type: ignore[attr-defined]
                raise CampaignConfigInvalid(f"campaign {stored.id} is in another time zone")
            app[CAMPAIGNS][stored.id] = stored
    for config in await tickets_db.stored_programmes(conn):
        if config.get("id") not in app[TICKET_CAMPAIGNS]:
            known = load_ticket_campaign_dict(config, source=f"ledger:{config.get('id')}")
            if known.tz.key != app[TZ].key:  # type: ignore[attr-defined]
                raise CampaignConfigInvalid(f"programme {known.id} is in another time zone")
            app[TICKET_CAMPAIGNS][known.id] = known


async def _pg_pool(app: web.Application) -> AsyncIterator[None]:
    """The pool every handler's statements use, and where read-only reports run: a streaming
    replica's pool when one is configured (issue 14), its lag polled every second."""
    settings = app[SETTINGS]
    pool = await db.open_pool(
        settings.database_url, min_size=settings.pg_pool_min, max_size=settings.pg_pool_max
    )
    app[PG] = pool
    replica = None
    if settings.database_replica_url:
        replica = await db.open_pool(
            settings.database_replica_url,
            min_size=0,  # the server starts, and serves from the primary, with the replica down
            max_size=settings.replica_pool_max,
            application_name=REPORTS_APPLICATION,
            connect_timeout_s=settings.replica_connect_timeout_s,
        )
    metrics = app[METRICS]
    reads = {s: metrics.report_reads.labels(s) for s in ("replica", "primary", "fallback")}
    app[REPORTS] = reports = Reports(
        pool,
        replica,
        max_lag_s=settings.replica_max_lag_s,
        poll_s=settings.replica_poll_s,
        wait_s=settings.replica_connect_timeout_s,
        on_read=lambda source: reads[source].inc(),
        on_lag=functools.partial(_show_lag, metrics, settings.replica_max_lag_s),
    )
    watching = asyncio.create_task(reports.watch()) if replica is not None else None
    yield
    if watching is not None:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
    if replica is not None:
        await replica.close()
    await pool.close()


def _show_lag(metrics: Metrics, max_lag_s: float, lag: Lag) -> None:
    metrics.replica_lag_seconds.set(lag.seconds)
    metrics.replica_lag_bytes.set(lag.bytes)
    metrics.replica_up.set(1 if lag.up and lag.seconds <= max_lag_s else 0)


async def _till(app: web.Application) -> AsyncIterator[None]:
    """What the till's services are handed (``server/services/ports.py``), with the batched
    reads and writes of the ledger on a pool of their own: the statements are planned once
    there (batch sizes vary, and PostgreSQL would otherwise plan the context read afresh for
    each batch; its shape does not depend on the batch: every lookup is an index probe per
    bill)."""
    settings, metrics, campaigns = app[SETTINGS], app[METRICS], app[CAMPAIGNS]
    till_pool = await db.open_pool(
        settings.database_url,
        min_size=2,
        max_size=2 * settings.batch_concurrency,
        generic_plans=True,
    )
    context_reads = Batcher(
        partial(redemption_db.read_contexts_batch, till_pool),
        max_batch=settings.batch_max_size,
        max_running=settings.batch_concurrency,
        observe=metrics.batch_size.labels("context_read").observe,
    )
    redeem_writes = Batcher(
        partial(redemption_db.write_redemptions_batch, till_pool),
        max_batch=settings.batch_max_size,
        max_running=settings.batch_concurrency,
        key=lambda bill: bill.citizen_id,  # one citizen's bills never share a statement
        observe=metrics.batch_size.labels("redeem_write").observe,
    )
    view = app.get(ACCESS_VIEW)
    app[TILL] = TillPorts(
        pool=app[PG],
        reports=app[REPORTS],
        settings=settings,
        guard=app[GUARD],
        context_reads=context_reads,
        redeem_writes=redeem_writes,
        quote_cache=ExpiringLru(20_000),
        qr_verifier=app[QR_VERIFIER],
        campaigns=campaigns,
        programmes=app[TICKET_CAMPAIGNS],
        clock=app[CLOCK],
        tz=app[TZ],
        metrics=metrics,
        refusal_answer=till.kept_answer,
        **({"publish": view.apply} if view is not None else {}),
    )
    yield
    await context_reads.drain()
    await redeem_writes.drain()
    await till_pool.close()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = redis_client.connect(settings)  # one Redis, or a Redis Cluster (issue 14)
    await redis_client.discover(client)
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
