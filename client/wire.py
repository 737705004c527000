"""The server's answers as the clients read them: frozen msgspec Structs, decoded and checked in
one pass (money is whole fen: a float or a string where an amount belongs is a ``BadAnswer``).

These are the client's view of the wire, not a second description of it: the server's own
(``server/schemas.py``, which feeds ``/openapi.json``) stays the definition, and
``tests/unit/test_client_wire.py`` proves every field here is a field of the server's answer
with the same type. The client is tolerant of what it does not read: fields the server adds
are ignored. Kept apart rather than shared because the client must not import the server
(``lint-imports``) and ``shared/`` holds rules, not a transport's shapes.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta, Struct, UnsetType, field

from shared.campaign import Campaign, load_campaign_dict

# --- signing in -----------------------------------------------------------------------------


class AccessToken(Struct, frozen=True):
    """What every sign-in answers: a bearer token (short-lived: 15 minutes)."""

    access_token: Annotated[str, Meta(min_length=1)]
    expires_in: int = 0


class TerminalRef(Struct, frozen=True):
    id: int
    label: str


class MerchantRef(Struct, frozen=True):
    id: int
    name: str


class TerminalMerchant(Struct, frozen=True):
    """The merchant a terminal belongs to, as its sign-in says (rule U1)."""

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
    kind: str = "shop"
    """Rule T4: ``developer``: a sales office, whose till takes house tickets (issue 13)."""


class Session(Struct, frozen=True):
    """``POST /v1/auth/terminal``: who this terminal is (its token is kept apart)."""

    terminal: TerminalRef
    merchant: TerminalMerchant
    expires_in: int


class StaffAccess(Struct, frozen=True):
    """``POST /v1/auth/staff``: the account's role and, for a merchant manager, its shop."""

    access_token: Annotated[str, Meta(min_length=1)]
    role: str
    merchant_id: int | None = None
    district: str | None = None


class RefundApproval(Struct, frozen=True):
    """A manager's approval of one refund (issue 11 item 5), to send as that refund's
    ``Manager-Approval``: good for this bill, amount and idempotency key only, for
    ``expires_in`` seconds."""

    approval: Annotated[str, Meta(min_length=1)]
    expires_in: int
    approved_by: str
    redemption_id: int
    remaining_bill_fen: int


class DevAssertion(Struct, frozen=True):
    assertion: str


# --- the citizen ----------------------------------------------------------------------------


class QrToken(Struct, frozen=True):
    """``POST /v1/wallet/qr`` (rule U5): a signed, short-lived, single-use code."""

    token: str
    expires_at: str


class Claimed(Struct, frozen=True):
    """``POST /v1/claims`` (rules A1-A3, V1)."""

    claim_id: int
    campaign_id: str
    certificate_no: str
    voucher_count: int
    face_value_fen: int
    value_fen: int
    expires_at: str


# --- at the till ----------------------------------------------------------------------------


class Citizen(Struct, frozen=True):
    masked_id: str
    vouchers_left: int | UnsetType = UNSET
    """A redeem's answer: the citizen's vouchers of the campaign still usable after it
    (printed on the receipt); other answers leave it out."""


class Quote(Struct, frozen=True):
    """``POST /v1/quote``: what a bill allows (rules U3, U6). ``usable_count`` is the most
    the cashier may use."""

    citizen: Citizen
    campaign_id: str
    bill_fen: int
    face_value_fen: int
    available_count: int
    max_by_bill: int
    usable_count: int
    value_fen: int
    remaining_fen: int
    merchant: MerchantRef
    token_expires_at: str

    def covered_fen(self, count: int) -> int:
        """Rule U3: the value of ``count`` vouchers on this bill; the rest is paid otherwise."""
        return min(count, self.usable_count) * self.face_value_fen

    def to_pay_fen(self, count: int) -> int:
        return self.bill_fen - self.covered_fen(count)


class RefundEntry(Struct, frozen=True):
    refund_id: int
    remaining_bill_fen: int
    returned_count: int
    cash_back_fen: int
    """The cash this refund handed back, as the server reckons it (rules U3, F2)."""
    voucher_ids: tuple[int, ...]
    created_at: str


class Redemption(Struct, frozen=True, kw_only=True):
    """A redemption with its refunds (rules U1-U7, F1-F3). ``replayed`` and ``recovered`` are
    the client's, never sent: how the answer came."""

    redemption_id: int
    campaign_id: str
    merchant: MerchantRef
    terminal: TerminalRef
    citizen: Citizen
    receipt_no: str
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
    replayed: bool = False
    """The server gave the stored first answer to a retried request (rule U7)."""
    recovered: bool = False
    """The answer was lost on the way; the terminal learnt it by asking for its key."""


class DayRedemption(Struct, frozen=True):
    redemption_id: int
    time: str
    receipt_no: str
    terminal: TerminalRef
    bill_fen: int
    voucher_count: int
    refunded_count: int
    value_fen: int


class DayRefund(Struct, frozen=True):
    refund_id: int
    time: str
    redemption_id: int
    receipt_no: str
    terminal: TerminalRef
    returned_count: int
    value_fen: int
    cash_back_fen: int
    """The cash this refund handed back to the customer (issue 11 item 7)."""


class DayTotals(Struct, frozen=True):
    bills: int = 0
    vouchers: int = 0
    value_fen: int = 0
    bill_fen: int = 0
    refunds: int = 0
    returned_vouchers: int = 0
    returned_value_fen: int = 0
    net_value_fen: int = 0


class DayReport(Struct, frozen=True):
    """``GET /v1/merchant/day`` (rule S2): the merchant's redemptions and refunds of one
    date."""

    date: str
    redemptions: tuple[DayRedemption, ...]
    refunds: tuple[DayRefund, ...]
    totals: DayTotals = field(default_factory=DayTotals)


# --- house tickets at a sales office (issue 13, rules T4-T8) --------------------------------


class PoolUnit(Struct, frozen=True):
    """Rule T4: a unit of the seller's listing pool (area in dm², 0.01 m²)."""

    unit: str
    campaign_id: str
    district: str
    property_type: str
    area_dm2: int
    listed_price_fen: int
    status: str = "admitted"
    sold: bool = False


class ListingPool(Struct, frozen=True):
    """``GET /v1/sales-office/pool``: the seller's units, admitted ones first."""

    units: tuple[PoolUnit, ...]


class TicketBuyer(Struct, frozen=True):
    relation: str
    masked_id: str | None = None


class TicketLine(Struct, frozen=True):
    """Rules T5-T7: one ticket's part in a quote: its range and subsidy."""

    number: str
    face_value_fen: int
    balance_fen: int
    deadline: str
    min_fen: int
    max_fen: int
    amount_fen: int
    month: int
    subsidy_bp: int
    subsidy_fen: int
    still_to_use_fen: int


class HeldTicket(Struct, frozen=True):
    number: str
    status: str
    face_value_fen: int
    balance_fen: int
    deadline: str


class TicketQuote(Struct, frozen=True, kw_only=True):
    """``POST /v1/ticket-uses/quote``: what the contract may draw, the subsidy or reward and
    what the buyer still pays. Changes nothing."""

    holder: Citizen
    buyer: TicketBuyer
    campaign_id: str
    merchant: MerchantRef
    contract_no: str
    signed_on: str
    price_fen: int
    unit: PoolUnit
    lines: tuple[TicketLine, ...]
    amount_fen: int
    subsidy_fen: int
    reward_fen: int
    seller_due_fen: int
    buyer_pays_fen: int
    tickets: tuple[HeldTicket, ...]
    token_expires_at: str


class TicketDraw(Struct, frozen=True):
    number: str
    amount_fen: int
    subsidy_bp: int
    subsidy_fen: int
    balance_fen: int


class TicketUse(Struct, frozen=True, kw_only=True):
    """``POST /v1/ticket-uses``: one contract paid by the holder's ticket (rules T5-T8)."""

    use_id: int
    campaign_id: str
    merchant_id: int
    holder: Citizen
    relation: str
    contract_no: str
    signed_on: str
    price_fen: int
    unit: str
    district: str
    property_type: str
    area_dm2: int
    draws: tuple[TicketDraw, ...]
    amount_fen: int
    subsidy_fen: int
    reward_fen: int
    seller_due_fen: int
    buyer_pays_fen: int
    used_at: str
    cancelled: bool
    replayed: bool = False
    """The server gave the stored first answer to a retried request (rule U7)."""
    recovered: bool = False
    """The answer was lost on the way; the terminal learnt it by asking for its key."""


# --- the public campaigns (rule C1) ---------------------------------------------------------


class PublicCampaigns(Struct, frozen=True):
    """``GET /v1/campaigns``: each campaign's rules as ``shared.campaign`` reads them."""

    campaigns: tuple[dict[str, Any], ...]

    def parsed(self, source: str = "GET /v1/campaigns") -> dict[str, Campaign]:
        """Each campaign by id, checked by the same validation as a campaign file (C1)."""
        return {c.id: c for c in (load_campaign_dict(d, source=source) for d in self.campaigns)}

    def district_names(self) -> dict[str, str]:
        """District code -> its name (东昌府区 for dongchangfu), from every campaign."""
        names: dict[str, str] = {}
        for data in self.campaigns:
            districts = data.get("districts")
            for code, district in (districts if isinstance(districts, dict) else {}).items():
                if isinstance(district, dict) and district.get("name"):
                    names.setdefault(str(code), str(district["name"]))
        return names


class TicketProgrammes(Struct, frozen=True):
    """``GET /v1/ticket-programmes``: the house-ticket programmes, each as its file's JSON
    (rule C1, issue 13); the till reads their names."""

    programmes: tuple[dict[str, Any], ...]

    def names(self) -> dict[str, str]:
        """Programme id -> its name (商丘市中心城区房屋征收补偿房票安置 for shangqiu-2025)."""
        return {str(p["id"]): str(p.get("name") or p["id"]) for p in self.programmes if p.get("id")}

    def district_names(self) -> dict[str, str]:
        """District code -> its name, from every programme."""
        names: dict[str, str] = {}
        for data in self.programmes:
            districts = data.get("districts")
            for code, district in (districts if isinstance(districts, dict) else {}).items():
                if isinstance(district, dict) and district.get("name"):
                    names.setdefault(str(code), str(district["name"]))
        return names


# --- the operators' answers -----------------------------------------------------------------


class Merchant(Struct, frozen=True):
    id: int
    name: str
    district: str
    admitted: bool
    permitted: bool
    status: str
    created_at: str
    active_terminals: int | UnsetType = UNSET


class Merchants(Struct, frozen=True):
    merchants: tuple[Merchant, ...]


class MerchantSettings(Struct, frozen=True):
    """A merchant's own choices: receipts numbered per till (rule U4 [choice]), refunds
    approved by a manager (issue 11 item 5)."""

    merchant_id: int
    receipts_per_till: bool
    refund_needs_manager: bool


class Pairing(Struct, frozen=True):
    server: str
    terminal_id: int
    terminal_secret: str


class IssuedTerminal(Struct, frozen=True):
    """A terminal and its credential, shown once (rule X2)."""

    terminal_id: int
    merchant_id: int
    label: str
    pairing: Pairing
    pairing_qr_svg: str
    note: str


class RevokedTerminal(Struct, frozen=True):
    terminal_id: int
    status: str


class RevokedCitizen(Struct, frozen=True):
    masked_id: str
    status: str
    vouchers_clawed_back: int


class RejectReason(Struct, frozen=True):
    message: str
    message_zh: str


class RegistryReject(Struct, frozen=True):
    line: int
    cert_no: str
    reason: str
    reasons: tuple[RejectReason, ...] = ()


class RegistryImport(Struct, frozen=True):
    """The office's CSV imported (rule E3): counts and every rejected row."""

    inserted: int
    updated: int
    unchanged: int
    rejected: int
    dry_run: bool
    encoding: str
    rejects: tuple[RegistryReject, ...]


class Account(Struct, frozen=True):
    """A staff account (rule X2); ``password`` only when one was generated (shown once)."""

    id: int
    username: str
    role: str
    district: str | None
    merchant_id: int | None
    status: str
    created_at: str
    password: str | UnsetType = UNSET
    note: str | UnsetType = UNSET


class Accounts(Struct, frozen=True):
    accounts: tuple[Account, ...]


class SettlementLine(Struct, frozen=True):
    merchant_id: int
    merchant_name: str
    redemptions: int
    vouchers: int
    amount_fen: int


class Settlement(Struct, frozen=True):
    """A settlement batch (rule S1) and its steps."""

    settlement_id: int
    campaign_id: str
    district: str
    month: str
    status: str
    payment_due_before: str | None
    redemption_count: int
    voucher_count: int
    amount_fen: int
    created_at: str | None
    reviewed_at: str | None
    approved_at: str | None
    paid_at: str | None
    lines: tuple[SettlementLine, ...]
    reviewed_by: int | None = None  # the account that took each step (rule S1)
    approved_by: int | None = None
    paid_by: int | None = None


class RankedDistrict(Struct, frozen=True):
    rank: int
    district: str
    name: str
    claims: int
    vouchers_issued: int
    vouchers_redeemed: int
    value_redeemed_fen: int
    issued_to_date: int
    redeemed_to_date: int
    redemption_rate_bp: int


class Ranking(Struct, frozen=True):
    """The month's district ranking (rule S3)."""

    month: str
    campaigns: tuple[str, ...]
    districts: tuple[RankedDistrict, ...]


class AuditEntry(Struct, frozen=True):
    id: int
    at: str
    actor: str
    action: str
    subject: str | None
    reason: str | None
    details: Any


class AuditLog(Struct, frozen=True):
    entries: tuple[AuditEntry, ...]
