"""What the API takes and gives, as msgspec Structs: THE definitions both the edge decodes
with (``server.web.read_body_as``/``read_query``: every handler gets its body or query as
one of these, typed) and ``/openapi.json`` is generated from, so the description cannot drift
from the code.

Request bodies forbid unknown fields; every string refuses control characters (NUL
included) and a blank value (spaces alone), and a body's text comes trimmed of surrounding
spaces; every number has a range; lone surrogates never get past the JSON decoder
(msgspec refuses them as invalid UTF-8/UTF-16). Query strings are Structs too, converted from
text. A field's ``Meta(extra={"code": ...})`` names the error code its refusal carries
(``invalid_amount`` for money, ``invalid_date`` for dates and months); every other refusal
is ``invalid_request``.

Responses are described here as well; handlers still build dicts, and the Schemathesis run
in ``tests/e2e/test_schemathesis.py`` checks every answer against these Structs.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field

from shared.money import MAX_AMOUNT_FEN

# the dates the server serves: the day list, the audit log and the ranking refuse others
# (a date far outside makes no sense for a programme, and 9999-12-31 + 1 day overflows)
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
# no C0 control character (NUL included) and no DEL, anywhere in a text field, and at least
# one character that is not a space (a blank name, reason or token is refused, not stored)
NOT_BLANK = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
MONTH_PATTERN = r"^20[0-9]{2}-(0[1-9]|1[0-2])$"
BIGINT_MAX = 2**63 - 1


def text(max_length: int, description: str, *, min_length: int = 1) -> Any:
    """A string field: a length range, not blank, no control characters."""
    return Annotated[
        str,
        Meta(
            min_length=min_length,
            max_length=max_length,
            pattern=NOT_BLANK,
            description=f"{description} (not blank, at most {max_length} characters, "
            "no control characters)",
        ),
    ]


def fen(description: str, *, minimum: int = 0) -> Any:
    """An amount of money: whole fen (1 元 = 100 fen), never a float."""
    return Annotated[
        int,
        Meta(
            ge=minimum,
            le=MAX_AMOUNT_FEN,
            description=f"{description}, in fen (1 元 = 100 fen; an integer)",
            extra={"code": "invalid_amount"},
        ),
    ]


Day = Annotated[
    date,
    Meta(
        description=f"a local date (Asia/Shanghai), YYYY-MM-DD, {FIRST_DAY} to {LAST_DAY}",
        extra={"code": "invalid_date"},
        extra_json_schema={"pattern": r"^20[0-9]{2}-[0-9]{2}-[0-9]{2}$"},
    ),
]
Month = Annotated[
    str,
    Meta(
        pattern=MONTH_PATTERN,
        description="a calendar month, YYYY-MM, 2000-01 to 2099-12",
        extra={"code": "invalid_date"},
    ),
]
Count = Annotated[int, Meta(ge=0, le=BIGINT_MAX)]
RowId = Annotated[int, Meta(ge=1, le=BIGINT_MAX, description="a row id")]
Timestamp = Annotated[str, Meta(description="an instant, ISO 8601 with the local offset")]
DateText = Annotated[str, Meta(description="a local date, YYYY-MM-DD")]
Bp = Annotated[int, Meta(ge=0, le=1_000_000, description="a rate in basis points (1 bp = 0.01%)")]

Token = text(2048, "the citizen's QR token, as scanned")
Reason = text(500, "why, for the audit log")
District = text(64, "a district: its code, short name or full name")


class Body(Struct, forbid_unknown_fields=True):
    """A request body: unknown fields are refused; text comes trimmed of surrounding spaces."""

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if type(value) is str:
                setattr(self, name, value.strip())


class Query(Struct):
    """A route's query string; parameters it does not name are ignored."""


# --- request bodies -------------------------------------------------------------------------


class CitizenSignIn(Body):
    assertion: text(4096, "the real-name app's signed assertion (a JWT)")  # type: ignore[valid-type]


class TerminalSignIn(Body):
    terminal_id: Annotated[int, Meta(ge=1, le=2**62 - 1, description="the terminal's id")]
    secret: text(200, "the terminal's one-time credential")  # type: ignore[valid-type]


class StaffSignIn(Body):
    username: text(64, "the staff account's name")  # type: ignore[valid-type]
    password: text(200, "its password")  # type: ignore[valid-type]


class DevAssertionRequest(Body):
    id_number: text(18, "an 18-digit resident ID number")  # type: ignore[valid-type]


class ClaimRequest(Body):
    certificate_no: text(64, "the property certificate number")  # type: ignore[valid-type]


ReceiptNo = text(64, "the merchant's receipt number of the bill (rule U4)")


class QuoteRequest(Body):
    token: Token  # type: ignore[valid-type]
    bill_fen: fen("the bill", minimum=1)  # type: ignore[valid-type]
    # rule U4: when given, a receipt number already used today is refused here, before the bill
    receipt_no: ReceiptNo | None = None  # type: ignore[valid-type]


class RedeemRequest(Body):
    token: Token  # type: ignore[valid-type]
    bill_fen: fen("the bill", minimum=1)  # type: ignore[valid-type]
    receipt_no: ReceiptNo  # type: ignore[valid-type]
    voucher_count: Annotated[
        int, Meta(ge=1, le=100_000, description="how many vouchers to use (rule U3)")
    ]


class RefundRequest(Body):
    remaining_bill_fen: fen("what the bill comes to after the refund")  # type: ignore[valid-type]


class RefundApprovalRequest(Body):
    """A manager, at the till, approves one refund (issue 11 item 5)."""

    username: text(64, "the merchant manager's account")  # type: ignore[valid-type]
    password: text(200, "its password")  # type: ignore[valid-type]
    remaining_bill_fen: fen("what the bill comes to after the refund approved")  # type: ignore[valid-type]
    refund_key: text(255, "the Idempotency-Key the refund will be sent with")  # type: ignore[valid-type]


class MerchantSettingsRequest(Body):
    """A merchant's own choices; a setting left out stays as it is."""

    reason: Reason  # type: ignore[valid-type]
    receipts_per_till: bool | UnsetType = UNSET  # rule U4 [choice]
    refund_needs_manager: bool | UnsetType = UNSET  # issue 11 item 5


MerchantKind = Literal["shop", "developer"]  # rule T4: a developer's sales office (issue 13)


class AddMerchantRequest(Body):
    name: text(200, "the merchant's name")  # type: ignore[valid-type]
    district: District  # type: ignore[valid-type]
    kind: MerchantKind = "shop"


class AdmissionRequest(Body):
    admitted: bool
    reason: Reason  # type: ignore[valid-type]


class PermissionRequest(Body):
    permitted: bool
    reason: Reason  # type: ignore[valid-type]


class SuspensionRequest(Body):
    suspended: bool
    reason: Reason  # type: ignore[valid-type]


class IssueTerminalRequest(Body):
    label: text(100, "the till's label")  # type: ignore[valid-type]


class RevokeTerminalRequest(Body):
    reason: Reason  # type: ignore[valid-type]


class RevokeCitizenRequest(Body):
    id_number: text(18, "the citizen's 18-digit resident ID number")  # type: ignore[valid-type]
    reason: Reason  # type: ignore[valid-type]


class BuildSettlementRequest(Body):
    campaign_id: text(64, "a loaded campaign's id")  # type: ignore[valid-type]
    district: District  # type: ignore[valid-type]
    month: Month


class SettlementStepRequest(Body):
    step: Literal["review", "approve", "pay"]
    note: text(500, "a note for the audit log") | UnsetType = UNSET  # type: ignore[valid-type]


StaffRole = Literal[
    "merchant_manager",
    "district_operator",
    "city_operator",
    "auditor",
    "ticket_issuer",  # issue 13, rule T1
    "housing_bureau",  # rule T4
]
# the shape (lower-case letters, digits, _ . -) is the handler's check: username_invalid
Username = text(64, "a staff account's name: 3 to 64 of a-z 0-9 _ . -")
# the length is the handler's check: password_too_short (12 to 200)
Password = text(200, "a password of 12 to 200 characters; leave it out to have one generated")


class AddAccountRequest(Body):
    username: Username  # type: ignore[valid-type]
    role: StaffRole
    reason: Reason  # type: ignore[valid-type]
    district: District | UnsetType = UNSET  # type: ignore[valid-type]
    merchant_id: RowId | UnsetType = UNSET
    password: Password | UnsetType = UNSET  # type: ignore[valid-type]


class AccountStatusRequest(Body):
    status: Literal["active", "disabled"]
    reason: Reason  # type: ignore[valid-type]


class AccountRoleRequest(Body):
    role: StaffRole
    reason: Reason  # type: ignore[valid-type]
    district: District | UnsetType = UNSET  # type: ignore[valid-type]
    merchant_id: RowId | UnsetType = UNSET


class AccountPasswordRequest(Body):
    reason: Reason  # type: ignore[valid-type]
    password: Password | UnsetType = UNSET  # type: ignore[valid-type]


# --- house tickets: the issuer's and the operators' side (issue 13, rules T1-T14) ----------

IdNumber = text(18, "an 18-digit resident ID number (kept only hashed and masked, rule X3)")
DocumentNo = text(64, "a document's number, for the audit (rule T1)")
PrintedNumber = text(64, "a ticket's printed number (房票编号)")
ProgrammeId = text(64, "a loaded house-ticket programme's id")
AreaDm2 = Annotated[int, Meta(ge=1, le=2**31 - 1, description="an area in dm² (0.01 m²)")]


class TicketProject(Body):
    name: text(200, "the expropriation project")  # type: ignore[valid-type]
    housing_delivered: bool  # rule T1: resettlement housing delivered (安置房已交付)
    cash_paid: bool  # rule T1: money compensation fully paid (货币补偿已到位)


class FaceItemBody(Body):
    code: text(64, "an item of the programme's face_items")  # type: ignore[valid-type]
    amount_fen: fen("the item's amount", minimum=1)  # type: ignore[valid-type]


class IssueTicketRequest(Body):
    """Rule T1: the compensation agreement (《房票安置补充协议》) as the issuer enters it."""

    campaign_id: ProgrammeId  # type: ignore[valid-type]
    number: PrintedNumber  # type: ignore[valid-type]
    filing_no: text(64, "the filing number (备案号)")  # type: ignore[valid-type]
    district: District  # type: ignore[valid-type]
    project: TicketProject
    implementing_unit: text(200, "the implementing unit (实施单位)")  # type: ignore[valid-type]
    official: text(100, "the official (经办人)")  # type: ignore[valid-type]
    agreement_no: DocumentNo  # type: ignore[valid-type]
    agreement_date: Day
    holder_id_number: IdNumber  # type: ignore[valid-type]
    items: Annotated[list[FaceItemBody], Meta(min_length=1, max_length=10)]
    household_id_numbers: Annotated[list[IdNumber], Meta(max_length=30)] = []  # type: ignore[valid-type]
    area_dm2: AreaDm2 | None = None  # rule T1 (Suining): 房票面积
    validity_months: Annotated[int, Meta(ge=1, le=120)] | None = None  # rule T2
    issued_on: Day | None = None  # today when left out


PieceValue = fen("a piece's face value", minimum=1)


class SplitTicketRequest(Body):
    """Rule T6: the pieces' face values and printed numbers, one each."""

    amounts: Annotated[list[PieceValue], Meta(min_length=1, max_length=10)]  # type: ignore[valid-type]
    numbers: Annotated[list[PrintedNumber], Meta(min_length=1, max_length=10)]  # type: ignore[valid-type]
    application_no: DocumentNo  # type: ignore[valid-type]


class TransferTicketRequest(Body):
    """Rule T3: the new holder and household; what the transfer shows."""

    to_holder_id_number: IdNumber  # type: ignore[valid-type]
    home_in_city: bool
    all_members_signed: bool
    notary_no: DocumentNo  # type: ignore[valid-type]
    to_household_id_numbers: Annotated[list[IdNumber], Meta(max_length=30)] = []  # type: ignore[valid-type]


class HeirTicketRequest(Body):
    heir_id_number: IdNumber  # type: ignore[valid-type]
    certificate_no: DocumentNo  # type: ignore[valid-type]
    heir_household_id_numbers: Annotated[list[IdNumber], Meta(max_length=30)] = []  # type: ignore[valid-type]


class LostTicketRequest(Body):
    newspaper: text(100, "the city newspaper that carried the notice")  # type: ignore[valid-type]
    published_on: Day


class ReissueTicketRequest(Body):
    new_number: PrintedNumber  # type: ignore[valid-type]


class HomeKeptRequest(Body):
    """Rule T4 (Suining): the number of the document verifying the household keeps a home."""

    document_no: DocumentNo  # type: ignore[valid-type]


class VoidTicketRequest(Body):
    decision_no: DocumentNo  # type: ignore[valid-type]


class ReturnTicketRequest(Body):
    agreement_no: DocumentNo  # type: ignore[valid-type]


class CashoutTicketRequest(Body):
    application_no: DocumentNo  # type: ignore[valid-type]


class CancelUseRequest(Body):
    """Rule T11: the contract's cancellation proof and what the holder elects."""

    proof_no: DocumentNo  # type: ignore[valid-type]
    elect: Literal["reissue", "other_compensation"]


SettlementConditionName = Literal[
    "filed", "fees_paid", "delivered", "stub_surrendered", "certificate"
]


class UseConditionRequest(Body):
    condition: SettlementConditionName
    recorded_on: Day
    document_no: DocumentNo  # type: ignore[valid-type]


class BonusReviewRequest(Body):
    campaign_id: ProgrammeId  # type: ignore[valid-type]
    review_no: DocumentNo  # type: ignore[valid-type]


class PayoutPaymentRequest(Body):
    payment_no: DocumentNo  # type: ignore[valid-type]


class BuildTicketSettlementRequest(Body):
    campaign_id: ProgrammeId  # type: ignore[valid-type]
    district: District  # type: ignore[valid-type]
    point: Day


ListingStatus = Literal["pending", "admitted", "removed"]


class ListingStatusRequest(Body):
    listing_ids: Annotated[list[RowId], Meta(min_length=1, max_length=1000)]
    status: ListingStatus
    reason: Reason  # type: ignore[valid-type]


class ExitNoticeRequest(Body):
    campaign_id: ProgrammeId  # type: ignore[valid-type]
    notice_on: Day
    reason: Reason  # type: ignore[valid-type]


# --- query strings --------------------------------------------------------------------------


class WalletQrQuery(Query):
    # without it, the Accept header chooses (JSON when it names none of the three)
    format: Literal["json", "png", "svg"] | None = None


class FindRedemptionQuery(Query):
    receipt_no: text(64, "the receipt number") | None = None  # type: ignore[valid-type]
    # rule U4: a receipt number names a bill of one business date (today when left out) and,
    # where tills number receipts each on their own, of one till
    date: Day | None = None
    terminal_id: RowId | None = None
    idempotency_key: text(255, "the Idempotency-Key the terminal sent") | None = None  # type: ignore[valid-type]


class RegistryImportQuery(Query):
    dry_run: Literal["true", "false"] = "false"


class MerchantsQuery(Query):
    district: District | None = None  # type: ignore[valid-type]
    kind: MerchantKind | None = None


class AccountsQuery(Query):
    role: StaffRole | None = None
    username: Username | None = None  # type: ignore[valid-type]


class AuditQuery(Query):
    actor: text(200, "who acted, e.g. city_operator:demo-city") | None = None  # type: ignore[valid-type]
    action: text(64, "what was done, e.g. merchant.add") | None = None  # type: ignore[valid-type]
    from_: Day | None = field(name="from", default=None)
    to: Day | None = None
    limit: Annotated[int, Meta(ge=1, le=10_000)] = 500


class RankingQuery(Query):
    month: Month
    format: Literal["json", "csv", "png"] = "json"
    campaign_id: text(64, "a loaded campaign's id") | None = None  # type: ignore[valid-type]


class MerchantDayQuery(Query):
    date: Day | None = None
    # csv: the day as the shop's bookkeeping opens it (the merchant's page serves the same)
    format: Literal["json", "csv"] = "json"


class TicketsQuery(Query):
    """A printed number (a replaced one too), or a programme's tickets (of a district)."""

    number: PrintedNumber | None = None  # type: ignore[valid-type]
    campaign_id: ProgrammeId | None = None  # type: ignore[valid-type]
    district: District | None = None  # type: ignore[valid-type]


class TicketUseQuery(Query):
    merchant_id: RowId
    contract_no: text(64, "the 网签 contract number")  # type: ignore[valid-type]


class ListingImportQuery(Query):
    campaign_id: ProgrammeId  # type: ignore[valid-type]
    merchant_id: RowId
    dry_run: Literal["true", "false"] = "false"


class ListingsQuery(Query):
    campaign_id: ProgrammeId  # type: ignore[valid-type]
    merchant_id: RowId | None = None
    district: District | None = None  # type: ignore[valid-type]
    status: ListingStatus | None = None


class PayoutsQuery(Query):
    campaign_id: ProgrammeId  # type: ignore[valid-type]
    unpaid: Literal["true", "false"] = "false"


class TicketSettlementsQuery(Query):
    campaign_id: ProgrammeId | None = None  # type: ignore[valid-type]
    district: District | None = None  # type: ignore[valid-type]


class TicketReportQuery(Query):
    campaign_id: ProgrammeId  # type: ignore[valid-type]
    on: Day | None = None
    format: Literal["json", "csv"] = "json"


class ProgrammeQuery(Query):
    campaign_id: ProgrammeId  # type: ignore[valid-type]


# --- responses ------------------------------------------------------------------------------


class ErrorDetail(Struct):
    code: str
    message: str
    details: dict[str, Any] | UnsetType = UNSET


class Error(Struct):
    error: ErrorDetail


class Health(Struct):
    status: Literal["ok"]


class Readiness(Struct):
    status: Literal["ready", "degraded", "not_ready"]
    checks: dict[str, str]


class OpenApi(Struct):
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


class DistrictNames(Struct):
    name: str
    full_name: str


class PhaseRates(Struct):
    starts: DateText
    ends: DateText
    housing_low_bp: Bp
    housing_high_bp: Bp
    non_housing_bp: Bp


class CampaignRules(Struct):
    id: str
    name: str
    timezone: str
    districts: dict[str, DistrictNames]
    issuing_districts: list[str]
    usable_districts: list[str]
    face_value_fen: fen("one voucher's face value")  # type: ignore[valid-type]
    spend_threshold_fen: fen("the spend per voucher (rule U3)")  # type: ignore[valid-type]
    claim_opens: Timestamp
    certificate_issued_from: DateText
    certificate_issued_to: DateText
    eligible_property_kind: str
    validity_days: int
    validity_counting: str
    hard_end: Timestamp
    phases: list[PhaseRates]
    tier_threshold_fen: fen("the tier threshold (rule A2)")  # type: ignore[valid-type]
    tier_basis: str
    tier_threshold_inclusive: bool
    stacking_group: str
    partial_refund_policy: str
    settlement_payment_day: int
    last_payment_due: DateText
    qr_token_ttl_seconds: int
    idempotency_retention_hours: int
    refund_returns: Literal["latest_expiry_first", "earliest_expiry_first"]  # rule F2 [choice]


class Campaigns(Struct):
    campaigns: list[CampaignRules]


class TicketProgrammes(Struct):
    """Issue 13: the house-ticket programmes, each as its validated file's JSON (C1, T1-T14;
    ``shared.ticket_campaign.ticket_campaign_to_dict``)."""

    programmes: list[dict[str, Any]]


class AccessToken(Struct):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: Annotated[int, Meta(description="seconds")]
    role: Literal[
        "citizen",
        "cashier",
        "merchant_manager",
        "district_operator",
        "city_operator",
        "auditor",
        "ticket_issuer",
        "housing_bureau",
    ]


class StaffAccess(AccessToken):
    merchant_id: int | None = None  # a merchant manager's shop
    district: str | None = None  # a district operator's (an issuer's, a bureau's) district


class RefundApproval(Struct):
    """A manager's approval of one refund (issue 11 item 5): sent as that refund's
    ``Manager-Approval``; good for this bill, this amount and this idempotency key only."""

    approval: str
    expires_in: Annotated[int, Meta(description="seconds")]
    approved_by: str  # the manager's username
    redemption_id: int
    remaining_bill_fen: int


class CitizenAccess(AccessToken):
    masked_id: str


class TerminalRef(Struct):
    id: int
    label: str


class MerchantRef(Struct):
    id: int
    name: str


class TerminalMerchant(Struct):
    id: int
    name: str
    district: str
    status: Literal["active", "suspended"]
    admitted: bool
    permitted: bool
    receipts_per_till: bool  # rule U4 [choice]: a bill is also its till's
    refund_needs_manager: bool  # a refund needs a manager's approval (Manager-Approval)
    # rule T4 (issue 13): a shop, or a developer whose sales office takes house tickets
    kind: Literal["shop", "developer"] = "shop"


class TerminalAccess(AccessToken):
    terminal: TerminalRef
    merchant: TerminalMerchant


class DevAssertion(Struct):
    assertion: str


class ClaimedVoucher(Struct):
    id: int
    expires_at: Timestamp


class Claimed(Struct):
    claim_id: int
    campaign_id: str
    certificate_no: str
    base_fen: fen("the amount vouchers are computed on (rule A1)")  # type: ignore[valid-type]
    rate_bp: Bp
    voucher_count: Count
    face_value_fen: fen("one voucher's face value")  # type: ignore[valid-type]
    value_fen: fen("the vouchers' total value")  # type: ignore[valid-type]
    expires_at: Timestamp
    last_valid_day: DateText
    vouchers: list[ClaimedVoucher]


VoucherState = Literal["available", "used", "expired", "revoked"]


class WalletVoucher(Struct):
    id: int
    campaign_id: str
    face_value_fen: fen("face value")  # type: ignore[valid-type]
    expires_at: Timestamp
    state: VoucherState
    redeemed_at: Timestamp | None


class WalletClaim(Struct):
    claim_id: int
    campaign_id: str
    certificate_no: str
    voucher_count: Count
    claimed_at: Timestamp
    expires_at: Timestamp


class WalletTicketUse(Struct):
    contract_no: str
    signed_on: str
    unit: str
    amount_fen: fen("the ticket amount")  # type: ignore[valid-type]
    subsidy_fen: fen("the purchase subsidy")  # type: ignore[valid-type]
    reward_fen: fen("the policy reward")  # type: ignore[valid-type]
    cancelled: bool


class WalletTicketBonus(Struct):
    amount_fen: fen("the usage bonus")  # type: ignore[valid-type]
    rate_bp: int
    reviewed: bool
    review_on: str
    due_by: str


class WalletTicketPassedOn(Struct):
    """Rule T3: a piece the holder passed to another person (history only, masked, X3)."""

    number: str
    face_value_fen: fen("the piece's face value")  # type: ignore[valid-type]
    to: str
    kind: Literal["transfer", "heir"]


class WalletTicket(Struct):
    """Rules T2, T3, T5-T10: a house ticket (and its pieces) as far as the holder holds it."""

    campaign_id: str
    numbers: list[str]
    face_value_fen: fen("face value")  # type: ignore[valid-type]
    balance_fen: fen("balance")  # type: ignore[valid-type]
    used_fen: fen("used")  # type: ignore[valid-type]
    cashed_out_fen: fen("cashed out")  # type: ignore[valid-type]
    returned_fen: fen("returned")  # type: ignore[valid-type]
    transferred_fen: fen("passed on")  # type: ignore[valid-type]
    deadline: str
    expired: bool
    subsidy_fen: fen("subsidies")  # type: ignore[valid-type]
    reward_fen: fen("rewards")  # type: ignore[valid-type]
    cashout_due_fen: int | None
    bonus: WalletTicketBonus | None
    uses: list[WalletTicketUse]
    transferred: list[WalletTicketPassedOn]


class Wallet(Struct):
    vouchers: list[WalletVoucher]
    counts: dict[VoucherState, Count]
    claims: list[WalletClaim]
    tickets: list[WalletTicket]  # issue 13: the house tickets held


class QrToken(Struct):
    token: str
    expires_at: Timestamp


class MaskedCitizen(Struct):
    masked_id: str
    # a redeem's answer: the citizen's vouchers of the campaign still usable after it
    vouchers_left: Count | UnsetType = UNSET


class Quote(Struct):
    citizen: MaskedCitizen
    campaign_id: str
    bill_fen: fen("the bill")  # type: ignore[valid-type]
    face_value_fen: fen("one voucher's face value")  # type: ignore[valid-type]
    spend_threshold_fen: fen("the spend per voucher (rule U3)")  # type: ignore[valid-type]
    available_count: Count
    max_by_bill: Count
    usable_count: Count
    value_fen: fen("what the usable vouchers are worth")  # type: ignore[valid-type]
    remaining_fen: fen("what the customer still pays")  # type: ignore[valid-type]
    merchant: MerchantRef
    token_expires_at: Timestamp


class RefundLine(Struct):
    refund_id: int
    remaining_bill_fen: fen("the bill after this refund")  # type: ignore[valid-type]
    returned_count: Count
    cash_back_fen: fen("the cash this refund handed back (rules U3, F2)")  # type: ignore[valid-type]
    voucher_ids: list[int]
    created_at: Timestamp


class Redemption(Struct):
    redemption_id: int
    campaign_id: str
    merchant: MerchantRef
    terminal: TerminalRef
    citizen: MaskedCitizen
    receipt_no: str
    business_date: DateText  # rule U4: the date the receipt number belongs to
    bill_fen: fen("the bill as redeemed")  # type: ignore[valid-type]
    current_bill_fen: fen("the bill after refunds")  # type: ignore[valid-type]
    face_value_fen: fen("one voucher's face value")  # type: ignore[valid-type]
    voucher_count: Count
    value_fen: fen("the vouchers' value")  # type: ignore[valid-type]
    remaining_fen: Annotated[int, Meta(description="what the customer paid, in fen")]
    refunded_count: Count
    live_voucher_count: Count
    voucher_ids: list[int]
    returned_voucher_ids: list[int]
    status: Literal["redeemed", "partially_refunded", "refunded"]
    settled: bool
    created_at: Timestamp
    refunds: list[RefundLine] | UnsetType = UNSET


# --- house tickets at a developer's sales office (rules T2, T4-T8; issue 13) ---------------

Relation = Literal["holder", "spouse", "parent", "child", "household_member"]
PropertyKind = Literal[
    "residential", "commercial", "commercial_office", "office", "parking", "storage"
]
TicketNumber = text(64, "a house ticket's printed number (房票编号)")
ContractNo = text(64, "the purchase contract's 网签 number (rule T5)")
UnitName = text(100, "the unit, as the seller's listing pool names it (rule T4)")
BuyerIdNumber = text(18, "the buyer's 18-digit ID number, when not the holder (rule T5)")
RelationProof = text(100, "the document proving the relation (户口簿, 结婚证 ...)")
TicketAmount = Annotated[
    int,
    Meta(
        ge=1,
        le=MAX_AMOUNT_FEN,
        description="a ticket amount, in fen (1 元 = 100 fen; an integer)",
        extra={"code": "invalid_amount"},
    ),
]
TicketAmounts = Annotated[
    list[TicketAmount],
    Meta(
        min_length=1,
        max_length=10,
        description="whole fen above 0, one per ticket drawn on",
        extra={"code": "invalid_amount"},
    ),
]


class TicketContract(Body, kw_only=True):
    """A purchase contract a house ticket pays (rule T5), as a sales office enters it."""

    token: Token  # type: ignore[valid-type]
    contract_no: ContractNo  # type: ignore[valid-type]
    unit: UnitName  # type: ignore[valid-type]
    signed_on: Day  # rule T7: the subsidy goes by the month of signing after issue
    price_fen: fen("the contract price", minimum=1)  # type: ignore[valid-type]
    relation: Relation = "holder"  # rule T5: who the buyer is to the holder
    # checked (E1) and hashed (X3), never kept
    buyer_id_number: BuyerIdNumber | None = None  # type: ignore[valid-type]
    relation_proof: RelationProof | None = None  # type: ignore[valid-type]
    # rule T6: the tickets drawn on (combined when several); none: the earliest-expiring one
    tickets: Annotated[list[TicketNumber], Meta(max_length=10)] | None = None  # type: ignore[valid-type]


class TicketQuoteRequest(TicketContract, kw_only=True):
    """What a use would do; ``amounts_fen`` left out: the most each ticket allows."""

    amounts_fen: TicketAmounts | None = None


class TicketUseRequest(TicketContract, kw_only=True):
    """A use: the ticket amount drawn on each ticket, as the contract records it (T5), in
    the order of ``tickets``."""

    amounts_fen: TicketAmounts


class FindTicketUseQuery(Query):
    idempotency_key: text(255, "the Idempotency-Key the terminal sent")  # type: ignore[valid-type]


class TicketBuyer(Struct):
    relation: Relation
    masked_id: str | None = None  # when not the holder: the number entered, masked


class TicketLine(Struct):
    """Rules T5-T7: one ticket's part in a quote."""

    number: str
    face_value_fen: fen("the ticket's face value")  # type: ignore[valid-type]
    balance_fen: fen("its balance before the use")  # type: ignore[valid-type]
    deadline: DateText  # rule T2: the last day of validity
    min_fen: fen("the least this use may draw on it (T6)")  # type: ignore[valid-type]
    max_fen: fen("the most (its balance; the price less subsidy or reward, T5)")  # type: ignore[valid-type]
    amount_fen: fen("what the use draws on it")  # type: ignore[valid-type]
    month: Annotated[int, Meta(ge=1, description="the month of signing after issue (T7)")]
    subsidy_bp: Bp
    subsidy_fen: fen("the purchase subsidy (T7)")  # type: ignore[valid-type]
    still_to_use_fen: fen("still to use after this to reach 90% (T6, Shangqiu)")  # type: ignore[valid-type]


class HeldTicket(Struct):
    number: str
    status: Literal["active", "lost", "split", "returned", "void"]
    face_value_fen: fen("face value")  # type: ignore[valid-type]
    balance_fen: fen("balance")  # type: ignore[valid-type]
    deadline: DateText


class PoolUnit(Struct):
    """Rule T4: a unit of the listing pool."""

    unit: str
    campaign_id: str
    district: str
    property_type: PropertyKind
    area_dm2: Annotated[int, Meta(ge=1, description="the area in dm² (0.01 m²)")]
    listed_price_fen: fen("the filed or agreed price")  # type: ignore[valid-type]
    status: Literal["pending", "admitted", "removed"] = "admitted"
    sold: bool = False


class ListingPool(Struct):
    units: list[PoolUnit]


class TicketQuote(Struct):
    holder: MaskedCitizen
    buyer: TicketBuyer
    campaign_id: str
    merchant: MerchantRef
    contract_no: str  # normalised (T5)
    signed_on: DateText
    price_fen: fen("the contract price")  # type: ignore[valid-type]
    unit: PoolUnit
    lines: list[TicketLine]
    amount_fen: fen("the ticket amount the contract records (T5)")  # type: ignore[valid-type]
    subsidy_fen: fen("the purchase subsidy, deducted from the price (T7)")  # type: ignore[valid-type]
    reward_fen: fen("the per-m² policy reward, applied to the price (T8)")  # type: ignore[valid-type]
    seller_due_fen: fen("what the issuer owes the seller (T12)")  # type: ignore[valid-type]
    buyer_pays_fen: fen("what the buyer still pays (cash, loans, housing fund)")  # type: ignore[valid-type]
    tickets: list[HeldTicket]  # the holder's tickets of the programme (to draw on others)
    token_expires_at: Timestamp


class TicketDraw(Struct):
    number: str
    amount_fen: fen("the amount drawn")  # type: ignore[valid-type]
    subsidy_bp: Bp
    subsidy_fen: fen("its purchase subsidy (T7)")  # type: ignore[valid-type]
    balance_fen: fen("the ticket's balance after it (on a replay: now)")  # type: ignore[valid-type]


class TicketUse(Struct):
    use_id: int
    campaign_id: str
    merchant_id: int
    holder: MaskedCitizen
    relation: Relation
    contract_no: str
    signed_on: DateText
    price_fen: fen("the contract price")  # type: ignore[valid-type]
    unit: str
    district: str
    property_type: PropertyKind
    area_dm2: Annotated[int, Meta(ge=1, description="the area in dm² (0.01 m²)")]
    draws: list[TicketDraw]
    amount_fen: fen("the ticket amount (T5)")  # type: ignore[valid-type]
    subsidy_fen: fen("the purchase subsidy (T7)")  # type: ignore[valid-type]
    reward_fen: fen("the policy reward (T8)")  # type: ignore[valid-type]
    seller_due_fen: fen("what the issuer owes the seller (T12)")  # type: ignore[valid-type]
    buyer_pays_fen: fen("what the buyer still pays")  # type: ignore[valid-type]
    used_at: Timestamp
    cancelled: bool


class RejectReason(Struct):
    message: str
    message_zh: str


class RegistryReject(Struct):
    line: int
    cert_no: str
    reason: str  # every reason in English, joined by "; "
    reasons: list[RejectReason]


class RegistryImport(Struct):
    inserted: Count
    updated: Count
    unchanged: Count
    rejected: Count
    dry_run: bool
    encoding: str
    rejects: list[RegistryReject]


class Merchant(Struct):
    id: int
    name: str
    district: str
    admitted: bool
    permitted: bool
    status: Literal["active", "suspended"]
    kind: MerchantKind
    created_at: Timestamp
    active_terminals: Count | UnsetType = UNSET


class Merchants(Struct):
    merchants: list[Merchant]


class MerchantSettings(Struct):
    merchant_id: int
    receipts_per_till: bool
    refund_needs_manager: bool


class Account(Struct):
    id: int
    username: str
    role: StaffRole
    district: str | None
    merchant_id: int | None
    status: Literal["active", "disabled"]
    created_at: Timestamp
    # a generated password, shown once (only its hash is stored)
    password: str | UnsetType = UNSET
    note: str | UnsetType = UNSET


class Accounts(Struct):
    accounts: list[Account]


class Pairing(Struct):
    server: str
    terminal_id: int
    terminal_secret: str


class IssuedTerminal(Struct):
    terminal_id: int
    merchant_id: int
    label: str
    pairing: Pairing
    pairing_qr_svg: str
    note: str


class RevokedTerminal(Struct):
    terminal_id: int
    status: Literal["revoked"]


class RevokedCitizen(Struct):
    masked_id: str
    status: Literal["revoked"]
    vouchers_clawed_back: Count


class AuditEntry(Struct):
    id: int
    at: Timestamp
    actor: str
    action: str
    subject: str | None
    reason: str | None
    details: Any


class AuditLog(Struct):
    entries: list[AuditEntry]


class SettlementLine(Struct):
    merchant_id: int
    merchant_name: str
    redemptions: Count
    vouchers: Count
    amount_fen: fen("owed to the merchant")  # type: ignore[valid-type]


class Settlement(Struct):
    settlement_id: int
    campaign_id: str
    district: str
    month: str
    status: Literal["draft", "reviewed", "approved", "paid"]
    payment_due_before: DateText | None
    redemption_count: Count
    voucher_count: Count
    amount_fen: fen("owed to the district's merchants")  # type: ignore[valid-type]
    created_at: Timestamp | None
    reviewed_at: Timestamp | None
    approved_at: Timestamp | None
    paid_at: Timestamp | None
    # the account (its id) that took each step (rule S1: no account takes two)
    reviewed_by: int | None
    approved_by: int | None
    paid_by: int | None
    lines: list[SettlementLine]


class RankedDistrict(Struct):
    rank: int
    district: str
    name: str
    claims: Count
    vouchers_issued: Count
    vouchers_redeemed: Count
    value_redeemed_fen: fen("value redeemed in the month")  # type: ignore[valid-type]
    issued_to_date: Count
    redeemed_to_date: Count
    redemption_rate_bp: Bp


class Ranking(Struct):
    month: str
    campaigns: list[str]
    districts: list[RankedDistrict]


class DayRedemption(Struct):
    redemption_id: int
    time: Timestamp
    receipt_no: str
    terminal: TerminalRef
    bill_fen: fen("the bill")  # type: ignore[valid-type]
    voucher_count: Count
    refunded_count: Count
    value_fen: fen("the vouchers' value")  # type: ignore[valid-type]
    campaign_id: str


class DayRefund(Struct):
    refund_id: int
    time: Timestamp
    redemption_id: int
    receipt_no: str
    terminal_id: int
    terminal: TerminalRef
    returned_count: Count
    value_fen: fen("the returned vouchers' value")  # type: ignore[valid-type]
    cash_back_fen: fen("the cash this refund handed back (rules U3, F2)")  # type: ignore[valid-type]


class DayTotals(Struct):
    bills: Count
    vouchers: Count
    value_fen: fen("vouchers redeemed")  # type: ignore[valid-type]
    bill_fen: fen("bills")  # type: ignore[valid-type]
    refunds: Count
    returned_vouchers: Count
    returned_value_fen: fen("vouchers returned")  # type: ignore[valid-type]
    net_value_fen: Annotated[int, Meta(description="redeemed less returned, in fen")]


class MerchantDay(Struct):
    merchant_id: int
    date: DateText
    redemptions: list[DayRedemption]
    refunds: list[DayRefund]
    totals: DayTotals


# --- house tickets' answers (issue 13) ------------------------------------------------------

Money = Annotated[int, Meta(description="an amount in fen (1 元 = 100 fen; an integer)")]
TicketStatusName = Literal["active", "lost", "split", "returned", "void"]


class FaceItemView(Struct):
    code: str
    label: str
    amount_fen: Money


class HouseTicket(Struct):
    """Rules T1-T3, T6, T13: a ticket or piece; persons masked (X3)."""

    id: int
    campaign_id: str
    number: str
    filing_no: str
    district: str
    project: str
    implementing_unit: str
    official: str
    agreement_no: str
    agreement_date: DateText
    holder: str
    household: list[str]
    area_dm2: int | None
    items: list[FaceItemView]
    face_value_fen: Money
    issued_on: DateText
    deadline: DateText
    expires_at: Timestamp
    original_id: int
    parent_id: int | None
    generation: int
    status: TicketStatusName
    balance_fen: Money
    used_fen: Money
    cashed_out_fen: Money
    returned_fen: Money
    split_out_fen: Money
    transfers: int
    void_numbers: list[str]
    lost_notice_on: DateText | None
    home_kept_doc: str | None = None  # T4: the verifying document's number, once recorded
    home_kept_on: DateText | None = None


class UseDraw(Struct):
    ticket_id: int
    amount_fen: Money
    subsidy_bp: Bp
    subsidy_fen: Money


class TicketUseView(Struct):
    """Rules T5-T8: one purchase contract paid with tickets."""

    use_id: int
    campaign_id: str
    merchant_id: int
    contract_no: str
    unit: str
    district: str
    property_type: str
    area_dm2: int
    price_fen: Money
    signed_on: DateText
    buyer: str
    relation: str
    draws: list[UseDraw]
    amount_fen: Money
    subsidy_fen: Money
    reward_fen: Money
    seller_due_fen: Money
    buyer_paid_fen: Money
    cancelled: bool


class TicketEventView(Struct):
    at: Timestamp
    actor: str
    act: str
    ticket_id: int | None
    use_id: int | None
    amount_fen: int | None
    documents: dict[str, str]


class PayoutView(Struct):
    """Rules T9, T10: a cash-out or bonus to the holder, and its payment."""

    id: int
    campaign_id: str
    original_id: int
    number: str
    kind: Literal["cashout", "bonus"]
    amount_fen: Money
    rate_bp: int | None
    due_by: DateText | None
    decided_on: DateText
    document_no: str
    paid_on: DateText | None
    payment_no: str | None


class CashoutDue(Struct):
    amount_fen: Money
    due_by: DateText | None


class BonusDue(Struct):
    review_on: DateText
    used_fen: Money
    rate_bp: Bp
    amount_fen: Money
    reviewed: bool
    due_by: DateText


class FamilySummary(Struct):
    """Rules T2, T5-T10: the family as its holder sees it."""

    original_id: int
    numbers: list[str]
    face_value_fen: Money
    balance_fen: Money
    used_fen: Money
    cashed_out_fen: Money
    returned_fen: Money
    deadline: DateText
    expired: bool
    subsidy_fen: Money
    reward_fen: Money
    cashout: CashoutDue | None
    cashout_refusal: str | None
    bonus: BonusDue | None


class TicketFile(Struct):
    ticket: HouseTicket
    family: list[HouseTicket]
    summary: FamilySummary
    uses: list[TicketUseView]
    events: list[TicketEventView]
    payouts: list[PayoutView]
    number_replaced: bool
    replacement_opens_on: DateText | None


class Tickets(Struct):
    tickets: list[HouseTicket]


class UseCondition(Struct):
    condition: str
    recorded_on: DateText
    document_no: str


class UseFile(TicketUseView):
    """Rules T11, T12: a use with its settlement so far."""

    issuing_district: str
    merchant_name: str
    conditions: list[UseCondition]
    required: list[str]
    settled_fen: Money


class Payouts(Struct):
    payouts: list[PayoutView]


class BonusReviewed(Struct):
    reviewed: list[PayoutView]
    none_due: Count
    not_yet: Count


class TicketSettlementLine(Struct):
    use_id: int
    merchant_id: int
    merchant_name: str
    contract_no: str
    kind: Literal["full", "first", "holdback", "clawback"]
    amount_fen: Money


class TicketSettlement(Struct):
    """Rule T12: a settlement with the sellers at a point, and its steps."""

    settlement_id: int
    campaign_id: str
    district: str
    point: DateText
    status: Literal["draft", "reviewed", "approved", "paid"]
    payment_due: DateText
    amount_fen: Money
    created_at: Timestamp
    reviewed_at: Timestamp | None
    approved_at: Timestamp | None
    paid_at: Timestamp | None
    lines: list[TicketSettlementLine]


class TicketSettlements(Struct):
    settlements: list[TicketSettlement]


class ListingReject(Struct):
    line: int
    unit: str
    reason: str
    reasons: list[RejectReason]


class ListingImport(Struct):
    inserted: Count
    updated: Count
    unchanged: Count
    rejected: Count
    dry_run: bool
    encoding: str
    rejects: list[ListingReject]


class ListedUnit(Struct):
    """Rule T4: a unit of the listing pool."""

    id: int
    campaign_id: str
    merchant_id: int
    merchant_name: str
    unit: str
    district: str
    property_type: str
    area_dm2: int
    listed_price_fen: Money
    status: ListingStatus
    exit_notice_on: DateText | None
    exits_on: DateText | None
    sold: bool


class ListedUnits(Struct):
    units: list[ListedUnit]


class ExitNotice(Struct):
    merchant_id: int
    notice_on: DateText
    exits_on: DateText
    units: Count


class TicketReportRow(Struct):
    scope: Literal["programme", "district", "seller"]
    key: str
    name: str
    issued: Count
    face_fen: Money
    used_fen: Money
    cashed_out_fen: Money
    returned_fen: Money
    expired_fen: Money
    balance_fen: Money  # programme and district lines (a seller's: 0)
    subsidy_fen: Money
    reward_fen: Money
    bonus_fen: Money
    settlement_due_fen: Money
    settlement_paid_fen: Money


class TicketReport(Struct):
    """Rule T14: a programme's figures per programme, district and seller."""

    campaign_id: str
    on: DateText
    district: str | None
    columns: dict[str, str]
    rows: list[TicketReportRow]


class PublishedTransaction(Struct):
    seller: str
    district: str
    property_type: str
    area_dm2: int
    price_fen: Money
    signed_on: DateText
    ticket_amount_fen: Money


class PublishedTransactions(Struct):
    campaign_id: str
    transactions: list[PublishedTransaction]


def encode_names(kind: type[Struct]) -> dict[str, str]:
    """Python attribute name -> the name on the wire."""
    return {f.name: f.encode_name for f in msgspec.structs.fields(kind)}
