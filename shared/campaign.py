"""Rule C1: a campaign is data — a TOML file the server loads, validated with clear errors.

Parsing only: this module reads no file (``shared/`` does no I/O). The edge reads the files
and hands their text here (``server/campaign_files.py``).

Every SPEC **[choice]** is a parameter here, never a literal in the rules. The schema (all
keys required unless noted; unknown keys are errors)::

    kind (optional)                                 # "voucher" (C1); "house_ticket" files
                                                    # load with shared.ticket_campaign
    id, name, timezone                              # text; timezone an IANA name
    issuing_districts, usable_districts             # lists of district codes (E2, U2)
    face_value_fen, spend_threshold_fen             # A3, U3
    claim_opens, hard_end                           # dates (C1, V1, V3)
    certificate_issued_from, certificate_issued_to  # dates, inclusive (E2)
    eligible_property_kind                          # "new_build" (E2)
    validity_days, validity_counting                # 90, "civil_code" (V1)
    tier_threshold_fen, tier_basis, tier_threshold_inclusive   # A2
    stacking_group                                  # U4
    partial_refund_policy                           # "keep_floor" (F2)
    refund_returns (optional)                       # "latest_expiry_first" (F2)
    settlement_payment_day, last_payment_due        # S1
    qr_token_ttl_seconds                            # U5
    idempotency_retention_hours                     # U7
    [districts.<code>] name, full_name (optional)   # C2
    [[phases]] starts, ends, housing_low_bp, housing_high_bp, non_housing_bp   # A2

Dates are TOML dates (or ISO "YYYY-MM-DD" text, as ``campaign_to_dict`` writes them).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.config_reader import MISSING, SLUG_RE, Reader, raise_problems, type_name
from shared.errors import CampaignConfigInvalid, JsonValue
from shared.money import MAX_AMOUNT_FEN
from shared.tokens import MAX_QR_TTL_SECONDS

BP_DENOMINATOR = 10_000
"""Basis points per unit: a rate of ``r`` bp is ``r / 10_000``."""


class CampaignKind(StrEnum):
    """Rule C1: what a campaign issues. A file names its kind (``kind = "..."``; a file
    without the key is a voucher campaign, as every file was before house tickets)."""

    VOUCHER = "voucher"  # consumption vouchers (Liaocheng): shared.campaign
    HOUSE_TICKET = "house_ticket"  # 房票 (T1-T14): shared.ticket_campaign


class TierBasis(StrEnum):
    """Rule A2 [choice]: which amount picks the ≤/> threshold tier."""

    TOTAL_PRICE = "total_price"  # invoice price excluding VAT (the Liaocheng choice)
    BASE = "base"  # invoice price excluding VAT minus the tax-relief portion


class ValidityCounting(StrEnum):
    """Rule V1 [choice]: how validity_days is counted."""

    CIVIL_CODE = "civil_code"  # Art. 201: start day not counted; Art. 203: ends 24:00 last day


class PartialRefundPolicy(StrEnum):
    """Rule F2 [choice]: how many vouchers a partially refunded bill keeps."""

    KEEP_FLOOR = "keep_floor"  # keep min(k, floor(remaining bill / threshold))


class RefundReturns(StrEnum):
    """Rule F2 [choice]: which of a partially refunded bill's vouchers go back to the citizen
    (how many is ``PartialRefundPolicy``). Ties by voucher id."""

    LATEST_EXPIRY_FIRST = "latest_expiry_first"  # the citizen gets back the most time
    EARLIEST_EXPIRY_FIRST = "earliest_expiry_first"  # the bill keeps its latest vouchers


class EligiblePropertyKind(StrEnum):
    """Rule E2: which properties qualify."""

    NEW_BUILD = "new_build"  # 增量房 (first-hand)


@dataclass(frozen=True, slots=True)
class District:
    """Rule C2: a district a campaign names (code is a stable ASCII slug)."""

    code: str
    name: str
    full_name: str


@dataclass(frozen=True, slots=True)
class Phase:
    """Rule A2: an issuance phase, by certificate issue date (inclusive), with its rates in bp."""

    starts: date
    ends: date
    housing_low_bp: int
    housing_high_bp: int
    non_housing_bp: int

    def contains(self, day: date) -> bool:
        """True if ``day`` lies in this phase (both ends inclusive)."""
        return self.starts <= day <= self.ends


@dataclass(frozen=True, slots=True)
class Campaign:
    """Rule C1: one campaign's parameters. Build it with ``load_campaign_text`` or
    ``load_campaign_dict``, which validate."""

    id: str
    name: str
    timezone: str
    districts: Mapping[str, District] = field(hash=False)
    issuing_districts: frozenset[str]
    usable_districts: frozenset[str]
    face_value_fen: int
    spend_threshold_fen: int
    claim_opens: date
    certificate_issued_from: date
    certificate_issued_to: date
    eligible_property_kind: EligiblePropertyKind
    validity_days: int
    validity_counting: ValidityCounting
    hard_end: date
    phases: tuple[Phase, ...]
    tier_threshold_fen: int
    tier_basis: TierBasis
    tier_threshold_inclusive: bool
    stacking_group: str
    partial_refund_policy: PartialRefundPolicy
    settlement_payment_day: int
    last_payment_due: date
    qr_token_ttl_seconds: int
    idempotency_retention_hours: int
    refund_returns: RefundReturns = RefundReturns.LATEST_EXPIRY_FIRST
    kind: CampaignKind = CampaignKind.VOUCHER  # rule C1: always a voucher campaign here

    @property
    def tz(self) -> ZoneInfo:
        """The campaign's time zone (Asia/Shanghai for Liaocheng)."""
        return ZoneInfo(self.timezone)


# --- validation -------------------------------------------------------------------------

_TOP_KEYS = (
    "kind",
    "id",
    "name",
    "timezone",
    "districts",
    "issuing_districts",
    "usable_districts",
    "face_value_fen",
    "spend_threshold_fen",
    "claim_opens",
    "certificate_issued_from",
    "certificate_issued_to",
    "eligible_property_kind",
    "validity_days",
    "validity_counting",
    "hard_end",
    "phases",
    "tier_threshold_fen",
    "tier_basis",
    "tier_threshold_inclusive",
    "stacking_group",
    "partial_refund_policy",
    "settlement_payment_day",
    "last_payment_due",
    "qr_token_ttl_seconds",
    "idempotency_retention_hours",
    "refund_returns",
)
# keys a campaign may leave out, with the default its ``Campaign`` field names
_TOP_OPTIONAL = ("kind", "refund_returns")
_TOP_REQUIRED = tuple(k for k in _TOP_KEYS if k not in _TOP_OPTIONAL)
_PHASE_KEYS = ("starts", "ends", "housing_low_bp", "housing_high_bp", "non_housing_bp")
_DISTRICT_KEYS = ("name", "full_name")
_DISTRICT_REQUIRED = ("name",)


def read_districts(r: Reader, raw: object) -> dict[str, District] | None:
    if raw is MISSING:
        return None
    if not isinstance(raw, Mapping):
        r.problem("districts", f"must be a table of districts, got {type_name(raw)}")
        return None
    if not raw:
        r.problem("districts", "must define at least one district")
        return None
    out: dict[str, District] = {}
    for code, body in raw.items():
        path = f"districts.{code}"
        if not SLUG_RE.fullmatch(str(code)):
            r.problem(path, "district code must be a lower-case ASCII slug")
            continue
        table = r.table(body, path, _DISTRICT_KEYS, _DISTRICT_REQUIRED)
        if table is None:
            continue
        name = r.text(table, "name", f"{path}.name")
        full_name = (
            r.text(table, "full_name", f"{path}.full_name") if "full_name" in table else name
        )
        if name is not None and full_name is not None:
            out[str(code)] = District(code=str(code), name=name, full_name=full_name)
    return out


def _read_phases(r: Reader, raw: object) -> list[Phase] | None:
    if raw is MISSING:
        return None
    if not isinstance(raw, list | tuple) or not raw:
        r.problem("phases", "must be a non-empty array of tables ([[phases]])")
        return None
    phases: list[Phase] = []
    ok = True
    for i, body in enumerate(raw):
        path = f"phases[{i}]"
        table = r.table(body, path, _PHASE_KEYS, _PHASE_KEYS)
        if table is None:
            ok = False
            continue
        starts = r.day(table, "starts", f"{path}.starts")
        ends = r.day(table, "ends", f"{path}.ends")
        rates = [r.integer(table, k, f"{path}.{k}", 0, BP_DENOMINATOR) for k in _PHASE_KEYS[2:]]
        if starts is None or ends is None or None in rates:
            ok = False
            continue
        if ends < starts:
            r.problem(f"{path}.ends", f"{ends} is before starts {starts}")
            ok = False
            continue
        low, high, non_housing = (x for x in rates if x is not None)
        phases.append(Phase(starts, ends, low, high, non_housing))
    if not ok:
        return None
    for i in range(1, len(phases)):
        prev, cur = phases[i - 1], phases[i]
        if cur.starts <= prev.ends:
            r.problem(
                f"phases[{i}].starts",
                f"{cur.starts} overlaps phases[{i - 1}] ({prev.starts}..{prev.ends}); "
                "phases must be in date order without overlap",
            )
            return None
        if cur.starts != prev.ends + timedelta(days=1):
            r.problem(
                f"phases[{i}].starts",
                f"gap after phases[{i - 1}] which ends {prev.ends}; "
                f"expected {prev.ends + timedelta(days=1)}",
            )
            return None
    return phases


class Header(NamedTuple):
    """What every campaign file starts with, whatever its kind (rules C1, C2)."""

    id: str | None
    name: str | None
    timezone: str | None
    districts: dict[str, District] | None
    issuing: frozenset[str] | None
    usable: frozenset[str] | None


def read_header(r: Reader, top: Mapping[str, Any]) -> Header:
    """A campaign's id, name, time zone, districts and which districts issue and use it; a
    problem is noted in ``r`` and its part read as None."""
    cid = r.slug(top, "id", "id")
    name = r.text(top, "name", "name")
    tz = r.text(top, "timezone", "timezone")
    if tz is not None:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            r.problem("timezone", f"{tz!r} is not a known IANA time zone")
            tz = None
    raw_districts = top.get("districts", MISSING)
    districts = read_districts(r, raw_districts)
    # codes are checked against the declared districts, even if one of those is broken
    declared = raw_districts if isinstance(raw_districts, Mapping) else None
    return Header(
        cid,
        name,
        tz,
        districts,
        r.codes(top, "issuing_districts", "issuing_districts", declared),
        r.codes(top, "usable_districts", "usable_districts", declared),
    )


def _validate(data: object, source: str) -> Campaign:
    if campaign_kind(data, source) is not CampaignKind.VOUCHER:
        raise CampaignConfigInvalid(
            f"{source}: kind: a house-ticket campaign is loaded by shared.ticket_campaign",
            source=source,
            problems=[{"path": "kind", "problem": "not a voucher campaign"}],
        )
    r = Reader(source)
    top = r.table(data, "", _TOP_KEYS, _TOP_REQUIRED)
    if top is None:
        raise_problems(r)

    cid, name, tz, districts, issuing, usable = read_header(r, top)
    face = r.integer(top, "face_value_fen", "face_value_fen", 1, MAX_AMOUNT_FEN)
    threshold = r.integer(top, "spend_threshold_fen", "spend_threshold_fen", 1, MAX_AMOUNT_FEN)
    claim_opens = r.day(top, "claim_opens", "claim_opens")
    cert_from = r.day(top, "certificate_issued_from", "certificate_issued_from")
    cert_to = r.day(top, "certificate_issued_to", "certificate_issued_to")
    kind = r.choice(top, "eligible_property_kind", "eligible_property_kind", EligiblePropertyKind)
    validity_days = r.integer(top, "validity_days", "validity_days", 1, 3660)
    counting = r.choice(top, "validity_counting", "validity_counting", ValidityCounting)
    hard_end = r.day(top, "hard_end", "hard_end")
    phases = _read_phases(r, top.get("phases", MISSING))
    tier_threshold = r.integer(top, "tier_threshold_fen", "tier_threshold_fen", 0, MAX_AMOUNT_FEN)
    tier_basis = r.choice(top, "tier_basis", "tier_basis", TierBasis)
    inclusive = r.boolean(top, "tier_threshold_inclusive", "tier_threshold_inclusive")
    stacking_group = r.slug(top, "stacking_group", "stacking_group")
    refund_policy = r.choice(
        top, "partial_refund_policy", "partial_refund_policy", PartialRefundPolicy
    )
    refund_returns = (
        r.choice(top, "refund_returns", "refund_returns", RefundReturns)
        if "refund_returns" in top
        else RefundReturns.LATEST_EXPIRY_FIRST
    )
    pay_day = r.integer(top, "settlement_payment_day", "settlement_payment_day", 1, 28)
    last_payment = r.day(top, "last_payment_due", "last_payment_due")
    # rule U5: a code lives at most a minute (shared/tokens.py)
    qr_ttl = r.integer(top, "qr_token_ttl_seconds", "qr_token_ttl_seconds", 1, MAX_QR_TTL_SECONDS)
    retention = r.integer(
        top, "idempotency_retention_hours", "idempotency_retention_hours", 1, 24 * 365
    )

    # cross-field checks, only where both sides were read
    if face is not None and threshold is not None and threshold < face:
        r.problem(
            "spend_threshold_fen",
            f"{threshold} is below face_value_fen {face}: a voucher would exceed its bill (U3)",
        )
    if claim_opens is not None and hard_end is not None and hard_end < claim_opens:
        r.problem("hard_end", f"{hard_end} is before claim_opens {claim_opens}")
    if cert_from is not None and cert_to is not None and cert_to < cert_from:
        r.problem(
            "certificate_issued_to", f"{cert_to} is before certificate_issued_from {cert_from}"
        )
    if cert_to is not None and hard_end is not None and hard_end < cert_to:
        r.problem("hard_end", f"{hard_end} is before certificate_issued_to {cert_to}")
    if hard_end is not None and last_payment is not None and last_payment <= hard_end:
        r.problem("last_payment_due", f"{last_payment} must be after hard_end {hard_end} (S1)")
    if phases and cert_from is not None and cert_to is not None and cert_from <= cert_to:
        if phases[0].starts != cert_from:
            r.problem(
                "phases[0].starts",
                f"{phases[0].starts} must equal certificate_issued_from {cert_from}: "
                "the phases must cover the certificate window exactly",
            )
        last = len(phases) - 1
        if phases[last].ends != cert_to:
            r.problem(
                f"phases[{last}].ends",
                f"{phases[last].ends} must equal certificate_issued_to {cert_to}: "
                "the phases must cover the certificate window exactly",
            )

    if r.problems:
        raise_problems(r)
    assert cid is not None and name is not None and tz is not None
    assert districts is not None and issuing is not None and usable is not None
    assert face is not None and threshold is not None and validity_days is not None
    assert claim_opens is not None and cert_from is not None and cert_to is not None
    assert hard_end is not None and phases is not None and tier_threshold is not None
    assert kind is not None and counting is not None and tier_basis is not None
    assert inclusive is not None and stacking_group is not None and refund_policy is not None
    assert pay_day is not None and last_payment is not None and refund_returns is not None
    assert qr_ttl is not None and retention is not None
    return Campaign(
        id=cid,
        name=name,
        timezone=tz,
        districts=MappingProxyType(districts),
        issuing_districts=issuing,
        usable_districts=usable,
        face_value_fen=face,
        spend_threshold_fen=threshold,
        claim_opens=claim_opens,
        certificate_issued_from=cert_from,
        certificate_issued_to=cert_to,
        eligible_property_kind=kind,
        validity_days=validity_days,
        validity_counting=counting,
        hard_end=hard_end,
        phases=tuple(phases),
        tier_threshold_fen=tier_threshold,
        tier_basis=tier_basis,
        tier_threshold_inclusive=inclusive,
        stacking_group=stacking_group,
        partial_refund_policy=refund_policy,
        settlement_payment_day=pay_day,
        last_payment_due=last_payment,
        qr_token_ttl_seconds=qr_ttl,
        idempotency_retention_hours=retention,
        refund_returns=refund_returns,
    )


# --- loading ----------------------------------------------------------------------------


def campaign_kind(data: object, source: str = "<dict>") -> CampaignKind:
    """Rule C1: the kind a parsed campaign document names (no ``kind`` key: a voucher
    campaign). Raises ``CampaignConfigInvalid`` for an unknown kind."""
    if not isinstance(data, Mapping):
        return CampaignKind.VOUCHER  # the loader says what is wrong with it
    raw = data.get("kind", CampaignKind.VOUCHER.value)
    try:
        return CampaignKind(raw)
    except ValueError:
        allowed = ", ".join(repr(k.value) for k in CampaignKind)
        raise CampaignConfigInvalid(
            f"{source}: kind: {raw!r} is not supported (allowed: {allowed})",
            source=source,
            problems=[{"path": "kind", "problem": f"{raw!r} is not supported"}],
        ) from None


def load_campaign_dict(data: Mapping[str, object], source: str = "<dict>") -> Campaign:
    """Rule C1: build a validated ``Campaign`` from a parsed document (TOML or JSON shape).

    Raises ``CampaignConfigInvalid`` listing every problem with its key path.
    """
    return _validate(data, source)


def load_campaign_text(text: str, source: str = "<string>") -> Campaign:
    """Rule C1: parse and validate campaign TOML text. ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignConfigInvalid(
            f"{source}: not valid TOML: {exc}",
            source=source,
            problems=[{"path": "<toml>", "problem": str(exc)}],
        ) from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively: a file nested
        # thousands deep is no campaign (issue 9: it was a 500 on the upload route)
        raise CampaignConfigInvalid(
            f"{source}: the TOML nests too deeply",
            source=source,
            problems=[{"path": "<toml>", "problem": "nested too deeply"}],
        ) from None
    return _validate(data, source)


def campaign_to_dict(c: Campaign) -> dict[str, JsonValue]:
    """Rule C1: the campaign as plain JSON (dates ISO, sets sorted), loadable again by
    ``load_campaign_dict``."""
    return {
        "kind": c.kind.value,
        "id": c.id,
        "name": c.name,
        "timezone": c.timezone,
        "districts": {
            code: {"name": d.name, "full_name": d.full_name} for code, d in c.districts.items()
        },
        "issuing_districts": [code for code in sorted(c.issuing_districts)],
        "usable_districts": [code for code in sorted(c.usable_districts)],
        "face_value_fen": c.face_value_fen,
        "spend_threshold_fen": c.spend_threshold_fen,
        "claim_opens": c.claim_opens.isoformat(),
        "certificate_issued_from": c.certificate_issued_from.isoformat(),
        "certificate_issued_to": c.certificate_issued_to.isoformat(),
        "eligible_property_kind": c.eligible_property_kind.value,
        "validity_days": c.validity_days,
        "validity_counting": c.validity_counting.value,
        "hard_end": c.hard_end.isoformat(),
        "phases": [
            {
                "starts": p.starts.isoformat(),
                "ends": p.ends.isoformat(),
                "housing_low_bp": p.housing_low_bp,
                "housing_high_bp": p.housing_high_bp,
                "non_housing_bp": p.non_housing_bp,
            }
            for p in c.phases
        ],
        "tier_threshold_fen": c.tier_threshold_fen,
        "tier_basis": c.tier_basis.value,
        "tier_threshold_inclusive": c.tier_threshold_inclusive,
        "stacking_group": c.stacking_group,
        "partial_refund_policy": c.partial_refund_policy.value,
        "settlement_payment_day": c.settlement_payment_day,
        "last_payment_due": c.last_payment_due.isoformat(),
        "qr_token_ttl_seconds": c.qr_token_ttl_seconds,
        "idempotency_retention_hours": c.idempotency_retention_hours,
        "refund_returns": c.refund_returns.value,
    }
