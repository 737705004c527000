"""One error hierarchy for the whole system, each error with a stable string code.

Domain code raises these; only the edges translate them: the server into an HTTP status
plus ``{"error": {"code", "message", "details"}}`` (one table in ``server/web.py`` maps each
``category``, and the few codes that read better otherwise, to a status), the terminal into a
notification in the cashier's language. Errors know nothing of HTTP. Codes never change once
shipped; messages may.

Categories (``Category``, one class each):

- ``InvalidInput``     the request itself is malformed
- ``Unauthenticated``  a credential (session, or the citizen's QR token) is not valid
- ``Forbidden``        the caller may not do this
- ``NotFound``         the thing does not exist (or the caller may not know it does)
- ``Conflict``         the state of the world forbids it (already claimed, redeemed, ...)
- ``Refused``          a business rule of the SPEC refuses the operation
- ``ConfigError``      a campaign file or setting is invalid
- ``Unavailable``      a service it needs is out of reach for now (retry later)

Details must stay plain JSON values and must never hold a full ID number (rule X3).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


class Category(StrEnum):
    """What kind of failure an error is; the edges map it (the server to an HTTP status)."""

    INTERNAL = "internal"
    INVALID_INPUT = "invalid_input"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    REFUSED = "refused"
    CONFIG = "config"
    UNAVAILABLE = "unavailable"


def _to_json(value: object, key: str) -> JsonValue:
    """Normalise a detail value into plain JSON (tuples/sets become lists, dates ISO text)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _to_json(v, key) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v, key) for v in value]
    if isinstance(value, set | frozenset):
        return [_to_json(v, key) for v in sorted(value, key=str)]
    raise TypeError(f"error detail {key!r} is not JSON-able: {type(value).__name__}")


class VoucherError(Exception):
    """Base of every domain error. Never raised itself: raise a concrete subclass."""

    code: ClassVar[str] = "voucher_error"
    category: ClassVar[Category] = Category.INTERNAL
    default_message: ClassVar[str] = "The operation failed."

    message: str
    details: dict[str, JsonValue]

    def __init__(self, message: str | None = None, **details: object) -> None:
        self.message = message if message is not None else self.default_message
        self.details = {k: _to_json(v, k) for k, v in details.items()}
        super().__init__(self.message)

    def to_dict(self) -> dict[str, JsonValue]:
        """The JSON body of the error: ``{"code", "message", "details"}``."""
        return {"code": self.code, "message": self.message, "details": dict(self.details)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


# --- categories -------------------------------------------------------------------------


class InvalidInput(VoucherError, ValueError):
    """The request is malformed: a bad number, amount, date or missing field."""

    code = "invalid_input"
    category = Category.INVALID_INPUT
    default_message = "The request is not valid."


class Unauthenticated(VoucherError):
    """No valid credential was presented (terminal/user session or the citizen's QR)."""

    code = "unauthenticated"
    category = Category.UNAUTHENTICATED
    default_message = "Authentication is required."


class Forbidden(VoucherError):
    """Rule X2: the caller's role or scope does not allow this operation."""

    code = "forbidden"
    category = Category.FORBIDDEN
    default_message = "You are not allowed to do this."


class NotFound(VoucherError):
    """The requested thing does not exist."""

    code = "not_found"
    category = Category.NOT_FOUND
    default_message = "Not found."


class Conflict(VoucherError):
    """The current state forbids the operation (something already happened)."""

    code = "conflict"
    category = Category.CONFLICT
    default_message = "The operation conflicts with the current state."


class Refused(VoucherError):
    """A business rule of the SPEC refuses the operation."""

    code = "refused"
    category = Category.REFUSED
    default_message = "The operation is refused by the campaign rules."


class ConfigError(VoucherError, ValueError):
    """A configuration (campaign file, setting) is invalid."""

    code = "config_error"
    category = Category.CONFIG
    default_message = "The configuration is invalid."


class Unavailable(VoucherError):
    """A service the operation needs is out of reach for now; the request changed nothing
    and may be retried (with the same idempotency key) after ``Retry-After`` seconds."""

    code = "service_unavailable"
    category = Category.UNAVAILABLE
    default_message = "The service is unavailable for a moment; try again."


# --- input ------------------------------------------------------------------------------


class InvalidIdNumber(InvalidInput):
    """Rule E1: not a valid 18-digit resident ID number (GB 11643, ISO 7064 MOD 11-2).

    ``details["reason"]`` is one of: length, characters, region, birth_date, checksum.
    """

    code = "invalid_id_number"
    default_message = "The ID number is not a valid 18-digit resident ID number."


class InvalidAmount(InvalidInput):
    """An amount of money is not a whole number of fen in the allowed range."""

    code = "invalid_amount"
    default_message = "The amount is not valid."


class InvalidRequest(InvalidInput):
    """A request field is missing, of the wrong type or out of range."""

    code = "invalid_request"
    default_message = "The request is not valid."


class InvalidDate(InvalidInput):
    """A date or month is malformed, or outside the dates the server serves (2000-01-01 to
    2099-12-31)."""

    code = "invalid_date"
    default_message = "The date is not valid."


class RefundInvalid(InvalidInput):
    """Rule F2: the refund is inconsistent (remaining bill negative, not below the bill...)."""

    code = "refund_invalid"
    default_message = "The refund is not valid for this bill."


class IdempotencyKeyReused(InvalidInput):
    """Rule U7: an idempotency key was reused with a different request body."""

    code = "idempotency_key_reused"
    default_message = "This idempotency key was already used for a different request."


class VoucherCodeRequired(InvalidInput):
    """Rule U7: a terminal asked by its idempotency key alone what became of a request, and
    the ledger has nothing under the key. Whether that request never happened or is still at
    work is known in its citizen's Redis slot only (issue 14): the terminal sends the QR code
    the request carried (``Voucher-Code``) and asks again. Never "not found" without it."""

    code = "voucher_code_required"
    default_message = "Send the QR code of the request (Voucher-Code) to ask by its key."


class BodyTooLarge(InvalidInput):
    """The request body is larger than the endpoint accepts."""

    code = "body_too_large"
    default_message = "The request body is too large."


class UsernameInvalid(InvalidInput):
    """Rule X2: a username is 3 to 64 of a-z, 0-9, '_', '.', '-', starting with a letter or
    digit."""

    code = "username_invalid"
    default_message = (
        "A username is 3 to 64 characters: a-z, 0-9, '_', '.', '-', first a letter or digit."
    )


class PasswordTooShort(InvalidInput):
    """Rule X2: a staff password has 12 to 200 characters."""

    code = "password_too_short"
    default_message = "A password has at least 12 characters (and at most 200)."


# --- not found --------------------------------------------------------------------------


class CertificateNotYours(NotFound):
    """Rule E3: no certificate with this number lists the claimant as an owner.

    One answer whether the number exists or not, so that claims cannot enumerate certificates
    (issue 9): the pure rule (``shared.rules.check_claim``) and the claim route both answer it.
    """

    code = "certificate_not_yours"
    default_message = "No property certificate with this number lists you as an owner."


class TicketNotFound(NotFound):
    """Rules T1, T5: no house ticket of the programme with this number (or none at all) is
    held by the person asked for, the holder whose code was scanned at a sales office."""

    code = "ticket_not_found"
    default_message = "No such house ticket is held by this person."


# --- forbidden --------------------------------------------------------------------------


class MerchantNotPermitted(Forbidden):
    """Rule U1: the merchant is not admitted or not granted redemption permission."""

    code = "merchant_not_permitted"
    default_message = "This merchant is not permitted to redeem vouchers of this campaign."


class MerchantSuspended(Forbidden):
    """Rules U1/X1: the merchant is suspended."""

    code = "merchant_suspended"
    default_message = "This merchant is suspended."


class TerminalDisabled(Forbidden):
    """Rule U1: the cashier terminal is disabled."""

    code = "terminal_disabled"
    default_message = "This terminal is disabled."


class ParticipationRevoked(Forbidden):
    """Rule X1: the citizen's participation was revoked by an operator."""

    code = "participation_revoked"
    default_message = "Your participation in this campaign was revoked."


class AccountDisabled(Forbidden):
    """Rule X1: the staff account was disabled; every token it holds is refused at once."""

    code = "account_disabled"
    default_message = "This account is disabled."


class SeparationOfDuties(Forbidden):
    """Rule S1: no account takes two of the steps review, approve, pay on one batch."""

    code = "separation_of_duties"
    default_message = "This account already took another step of this settlement batch."


class OwnAccount(Forbidden):
    """Rule X2: an account does not change its own status or role, nor reset its own password
    through the managers' routes (another manager does)."""

    code = "own_account"
    default_message = "Ask another manager to change your own account."


class ManagerApprovalRequired(Forbidden):
    """Issue 11 item 5: this merchant's refunds need the approval of one of its managers (a
    merchant setting), and the request carried none, or one that is not a valid approval of
    a manager of this merchant (``details.reason``)."""

    code = "manager_approval_required"
    default_message = (
        "A manager of this shop must approve this refund: sign the manager in at the till."
    )


class ApprovalForAnotherRefund(Forbidden):
    """Issue 11 item 5: a manager's approval is for one refund (one till, one bill, one amount,
    one idempotency key) and this request is another; ``details.differs`` names what."""

    code = "approval_for_another_refund"
    default_message = (
        "This approval is for another refund: the manager must approve this one at the till."
    )


# --- conflict ---------------------------------------------------------------------------


class CertificateAlreadyClaimed(Conflict):
    """Rule E4: this certificate was already claimed (one claim per certificate, ever)."""

    code = "certificate_already_claimed"
    default_message = "Vouchers were already claimed for this property certificate."


class BillAlreadyRedeemed(Conflict):
    """Rule U4: this bill (merchant + business date + receipt number, and the till where the
    merchant numbers receipts per till) was already redeemed, in any campaign."""

    code = "bill_already_redeemed"
    default_message = (
        "This receipt number was already used today: check the receipt number, "
        "or take the next receipt."
    )


class AlreadySettled(Conflict):
    """Rule F3: the redemption is settled to the merchant; its vouchers never return."""

    code = "already_settled"
    default_message = (
        "These vouchers are already settled to the merchant; the merchant refunds the money."
    )


class CampaignInUse(Conflict):
    """Rule C1: a campaign with claims keeps the rules its vouchers were issued under."""

    code = "campaign_in_use"
    default_message = "This campaign already has claims; its file cannot be replaced."


class SettlementExists(Conflict):
    """Rule S1: the month's batch for this campaign and district was already built."""

    code = "settlement_exists"
    default_message = "This month's settlement batch already exists."


class SettlementStateInvalid(Conflict):
    """Rule S1: the batch is not in the state this step needs (draft → reviewed → approved →
    paid, in that order)."""

    code = "settlement_state_invalid"
    default_message = "The settlement batch is not in the state this step needs."


class AlreadyRefunded(Conflict):
    """Rule F1: the redemption was already (fully) refunded."""

    code = "already_refunded"
    default_message = "This redemption was already refunded."


class TooManyAttempts(Forbidden):
    """Too many failed sign-ins (or claims) from this caller; wait and try again.

    ``details["retry_after_s"]`` says how long, as the Retry-After header does.
    """

    code = "too_many_attempts"
    default_message = "Too many failed attempts; wait a few minutes and try again."


class RateLimited(Forbidden):
    """Asked more often than the route allows (a citizen minting QR codes); wait and ask again.

    ``details["retry_after_s"]`` says how long, as the Retry-After header does.
    """

    code = "rate_limited"
    default_message = "Too many requests; wait a moment and try again."


class UsernameTaken(Conflict):
    """Rule X2: another account already has this username."""

    code = "username_taken"
    default_message = "This username is taken."


class IdempotencyKeyInUse(Conflict):
    """Rule U7: a request with this idempotency key is still being processed."""

    code = "idempotency_key_in_use"
    default_message = "A request with this idempotency key is still in progress."


# --- conflict: house tickets (T1-T14) ----------------------------------------------------


class TicketVoid(Conflict):
    """Rules T1, T6, T13: this ticket number holds nothing any more: the ticket was split
    into pieces (T6), replaced after a loss (T13: the old number is void), voided by its
    issuer (T1) or its balance returned for another form of compensation (T2).

    ``details["reason"]`` is one of: split, replaced, void, returned.
    """

    code = "ticket_void"
    default_message = "This house ticket number is no longer valid."


class ContractAlreadyUsed(Conflict):
    """Rule T5 (as U4): this purchase contract (seller + 网签 number) was already paid by a
    house ticket."""

    code = "contract_already_used"
    default_message = "A house ticket was already used on this purchase contract."


class ContractAlreadyCancelled(Conflict):
    """Rule T11: the use of this purchase contract was already cancelled."""

    code = "contract_already_cancelled"
    default_message = "This purchase contract's ticket use was already cancelled."


# --- unauthenticated (the citizen's QR token) -------------------------------------------


class TokenInvalid(Unauthenticated):
    """Rule U5: the QR token is malformed, forged, signed by a foreign key or uses alg none."""

    code = "token_invalid"
    default_message = "The QR code is not valid."


class TokenExpired(Unauthenticated):
    """Rule U5: the QR token is past its short lifetime."""

    code = "token_expired"
    default_message = "The QR code has expired; ask the customer to refresh it."


class TokenReplayed(Unauthenticated):
    """Rule U5: the QR token was already used (single use)."""

    code = "token_replayed"
    default_message = "The QR code was already used; ask the customer to refresh it."


class SignInNotStartedHere(Unauthenticated):
    """Rule X2: a real-name assertion posted to the wallet page in a browser that did not start
    that sign-in: no nonce cookie, an expired one, another browser's, or one already used
    (login CSRF: someone else's assertion must not sign this browser in as them)."""

    code = "sign_in_not_started_here"
    default_message = "This sign-in was not started in this browser; start it again here."


# --- refused by a business rule ---------------------------------------------------------


class CertificateNotEligible(Refused):
    """Rule E2: wrong district, not a new build, or issued outside the campaign window.

    ``details["reason"]`` is one of: district, not_new_build, issued_outside_window,
    issued_after_claim.
    """

    code = "certificate_not_eligible"
    default_message = "This property certificate is not eligible for the campaign."


class NoVouchersDue(Refused):
    """Rule A3: the computed amount is below one voucher; nothing is issued or recorded."""

    code = "no_vouchers_due"
    default_message = "The property's amount entitles to no voucher."


class CampaignNotStarted(Refused):
    """Rule C1: claims are not yet open."""

    code = "campaign_not_started"
    default_message = "The campaign has not started yet."


class MonthNotOver(Refused):
    """Rule S1: a month is settled once it is over."""

    code = "month_not_over"
    default_message = "The month is not over yet."


class CampaignEnded(Refused):
    """Rule V3: no claim after the hard end of the campaign."""

    code = "campaign_ended"
    default_message = "The campaign has ended."


class VoucherExpired(Refused):
    """Rule V2: an expired voucher is void."""

    code = "voucher_expired"
    default_message = "The voucher has expired."


class WrongDistrict(Refused):
    """Rule U2: the vouchers are not usable at a merchant in this district."""

    code = "wrong_district"
    default_message = "These vouchers cannot be used at a merchant in this district."


class BillTooSmall(Refused):
    """Rule U3: the bill is below the spend threshold of one voucher."""

    code = "bill_too_small"
    default_message = "The bill is too small to use a voucher."


class TooManyVouchers(Refused):
    """Rule U3: more vouchers asked than floor(bill / threshold) allows."""

    code = "too_many_vouchers"
    default_message = "Too many vouchers for this bill."


class NotEnoughVouchers(Refused):
    """Rule U3/U6: the citizen holds fewer available (unexpired, unused) vouchers."""

    code = "not_enough_vouchers"
    default_message = "The customer does not hold enough valid vouchers."


# --- refused: house tickets (T1-T14) -----------------------------------------------------


class IssuanceClosed(Refused):
    """Rule T1: house tickets are issued only while the programme runs."""

    code = "issuance_closed"
    default_message = "House tickets are not issued on this date."


class ProjectNotEligible(Refused):
    """Rule T1: the expropriation project may not issue house tickets (its resettlement
    housing is delivered and its compensation paid), or the issuer's district issues none."""

    code = "project_not_eligible"
    default_message = "This project may not issue house tickets."


class TicketExpired(Refused):
    """Rule T2: the ticket's use deadline has passed (24:00 of the printed day)."""

    code = "ticket_expired"
    default_message = "The house ticket has expired."


class TicketReportedLost(Refused):
    """Rule T13: the ticket was reported lost; it is not used while the notice runs."""

    code = "ticket_reported_lost"
    default_message = "The house ticket was reported lost; it cannot be used until replaced."


class ListingNotEligible(Refused):
    """Rule T4: the unit is not one a ticket may buy: not in the listing pool, in another
    district, of a type the programme excludes, priced above its listing, or (Suining) a
    commercial unit, office or parking space without a home kept by the household.

    ``details["reason"]`` is one of: not_in_pool, district, property_type,
    price_above_listing, home_not_kept, unknown_unit (the seller lists no such unit).
    """

    code = "listing_not_eligible"
    default_message = "This unit cannot be bought with a house ticket."


class BuyerNotServed(Refused):
    """Rule T5: the buyer is neither the holder nor a person the ticket may serve."""

    code = "buyer_not_served"
    default_message = "This house ticket cannot pay for this buyer."


class TicketBalanceInsufficient(Refused):
    """Rule T5: the amount asked is above the ticket's balance."""

    code = "ticket_balance_insufficient"
    default_message = "The amount is above the house ticket's balance."


class TicketExceedsPrice(Refused):
    """Rule T5: the ticket amount plus the subsidy or reward would exceed the contract price."""

    code = "ticket_exceeds_price"
    default_message = "The ticket amount and subsidy would exceed the contract price."


class TicketUseBelowMinimum(Refused):
    """Rule T6: a single use is below the share of the ticket's (or piece's) face value the
    programme requires (Suining: 90%)."""

    code = "ticket_use_below_minimum"
    default_message = "A single use must reach the required share of the ticket's face value."


class TicketSplitRefused(Refused):
    """Rule T6: the ticket may not be split (or combined) as asked.

    ``details["reason"]`` is one of: not_allowed, already_split, used, pieces, amounts,
    combine_not_allowed, holders, duplicate.
    """

    code = "ticket_split_refused"
    default_message = "The house ticket cannot be split or combined this way."


class TicketTransferRefused(Refused):
    """Rule T3: the ticket may not pass to another holder (no transfer allowed, already
    transferred, used, expired, a document missing) or to an heir.

    ``details["reason"]`` names which.
    """

    code = "ticket_transfer_refused"
    default_message = "The house ticket cannot be transferred."


class TicketReturnRefused(Refused):
    """Rules T1/T2: the ticket's balance cannot be returned for another form of
    compensation (not expired yet, nothing left) or the ticket voided (already used)."""

    code = "ticket_return_refused"
    default_message = "The house ticket cannot be returned or voided now."


class CashoutNotDue(Refused):
    """Rule T9: the residual cash-out is not due: the uses have not reached the required
    share of the face value, or nothing is left.

    ``details["reason"]`` is one of: below_minimum, nothing_left, lost.
    """

    code = "cashout_not_due"
    default_message = "The ticket's balance cannot be paid out yet."


class ReplacementNotYet(Refused):
    """Rule T13: a lost ticket is replaced only once its notice has run its working days."""

    code = "replacement_not_yet"
    default_message = "The lost ticket's notice is still running."


class WorkingCalendarMissing(Refused):
    """Rule T13: the campaign's working-day calendar does not cover the day asked (the
    year's holidays are not yet in the campaign file)."""

    code = "working_calendar_missing"
    default_message = "The working-day calendar does not cover this date."


# --- unavailable ------------------------------------------------------------------------


class DatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached (down, restarting, out of connections); the caller may
    retry after a moment. The ledger decides every write, so nothing was decided; a retry with the
    same idempotency key gets one consistent answer (rule U7)."""

    code = "database_unavailable"
    default_message = "The database is unavailable for a moment; try again shortly."


class ServerBusy(Unavailable):
    """Issue 14: the server is at the load it can serve within its latency target and refused
    this request at once, before it did anything; retry after ``details["retry_after_s"]``
    (the Retry-After header), with the same idempotency key."""

    code = "server_busy"
    default_message = "The server is busy; try again in a moment."


class WaitingRoom(Unavailable):
    """Issue 14: claims are coming in faster than the server serves them (a claim opening);
    this one waits outside, and nothing was decided: come back after
    ``details["retry_after_s"]`` seconds (spread so that the waiting do not return together)."""

    code = "waiting_room"
    default_message = "Many people are claiming right now: you are in the waiting room."


# --- configuration ----------------------------------------------------------------------


class CampaignConfigInvalid(ConfigError):
    """Rule C1: a campaign file is invalid. The message names the file, key path and problem.

    ``details``: ``source`` and ``problems`` (a list of ``{"path", "problem"}``).
    """

    code = "campaign_config_invalid"
    default_message = "The campaign configuration is invalid."


def _all_subclasses(cls: type[VoucherError]) -> list[type[VoucherError]]:
    out: list[type[VoucherError]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


def error_classes() -> dict[str, type[VoucherError]]:
    """Every error class by its stable code (categories included). Raises if codes clash."""
    result: dict[str, type[VoucherError]] = {}
    for cls in _all_subclasses(VoucherError):
        if cls.code in result and result[cls.code] is not cls:
            raise RuntimeError(f"duplicate error code {cls.code!r}")
        result[cls.code] = cls
    return result
