"""Rule C1: a campaign is data — a TOML file the server loads, validated with clear errors.

Parsing only: this module reads no file (``shared/`` does no I/O). The edge reads the files
and hands their text here (``server/campaign_files.py``).

Every SPEC **[choice]** is a parameter here, never a literal in the rules. The schema (all
keys required unless noted; unknown keys are errors)::

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

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import CampaignConfigInvalid, JsonValue
from shared.money import MAX_AMOUNT_FEN
from shared.tokens import MAX_QR_TTL_SECONDS

BP_DENOMINATOR = 10_000
"""Basis points per unit: a rate of ``r`` bp is ``r / 10_000``."""


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

    @property
    def tz(self) -> ZoneInfo:
        """The campaign's time zone (Asia/Shanghai for Liaocheng)."""
        return ZoneInfo(self.timezone)


# --- validation -------------------------------------------------------------------------

_E = TypeVar("_E", bound=StrEnum)
_ISO_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}", re.ASCII)
_MISSING: Any = object()

_TOP_KEYS = (
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
_TOP_OPTIONAL = ("refund_returns",)
_TOP_REQUIRED = tuple(k for k in _TOP_KEYS if k not in _TOP_OPTIONAL)
_PHASE_KEYS = ("starts", "ends", "housing_low_bp", "housing_high_bp", "non_housing_bp")
_DISTRICT_KEYS = ("name", "full_name")
_DISTRICT_REQUIRED = ("name",)


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str):
        return "string"
    if isinstance(value, float):
        return "float"
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


class _Reader:
    """Collects every problem of one document, each with its key path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[tuple[str, str]] = []

    def problem(self, path: str, text: str) -> None:
        self.problems.append((path, text))

    def table(
        self, data: object, path: str, keys: tuple[str, ...], required: tuple[str, ...]
    ) -> Mapping[str, object] | None:
        if not isinstance(data, Mapping):
            self.problem(path or "<root>", f"must be a table, got {_type_name(data)}")
            return None
        prefix = f"{path}." if path else ""
        for key in data:
            if key not in keys:
                self.problem(f"{prefix}{key}", "unknown key")
        for key in required:
            if key not in data:
                self.problem(f"{prefix}{key}", "missing required key")
        return data

    def text(self, data: Mapping[str, object], key: str, path: str) -> str | None:
        value = data.get(key, _MISSING)
        if value is _MISSING:
            return None
        if not isinstance(value, str):
            self.problem(path, f"must be a string, got {_type_name(value)}")
            return None
        if not value.strip():
            self.problem(path, "must not be empty")
            return None
        return value

    def slug(self, data: Mapping[str, object], key: str, path: str) -> str | None:
        value = self.text(data, key, path)
        if value is not None and not _SLUG_RE.fullmatch(value):
            self.problem(path, f"{value!r} must be a lower-case ASCII slug (a-z, 0-9, '-', '_')")
            return None
        return value

    def integer(
        self, data: Mapping[str, object], key: str, path: str, low: int, high: int
    ) -> int | None:
        value = data.get(key, _MISSING)
        if value is _MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(path, f"must be an integer, got {_type_name(value)}")
            return None
        if value < 0 <= low:
            self.problem(path, f"must not be negative, got {value}")
            return None
        if not low <= value <= high:
            self.problem(path, f"must be between {low} and {high}, got {value}")
            return None
        return value

    def boolean(self, data: Mapping[str, object], key: str, path: str) -> bool | None:
        value = data.get(key, _MISSING)
        if value is _MISSING:
            return None
        if not isinstance(value, bool):
            self.problem(path, f"must be true or false, got {_type_name(value)}")
            return None
        return value

    def day(self, data: Mapping[str, object], key: str, path: str) -> date | None:
        value = data.get(key, _MISSING)
        if value is _MISSING:
            return None
        if isinstance(value, str):
            try:
                if not _ISO_DATE_RE.fullmatch(value):
                    raise ValueError(value)
                return date.fromisoformat(value)
            except ValueError:
                self.problem(path, f"must be a date YYYY-MM-DD, got {value!r}")
                return None
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        self.problem(path, f"must be a date (YYYY-MM-DD, no time), got {_type_name(value)}")
        return None

    def choice(self, data: Mapping[str, object], key: str, path: str, enum: type[_E]) -> _E | None:
        value = self.text(data, key, path)
        if value is None:
            return None
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in enum)
            self.problem(path, f"{value!r} is not supported (allowed: {allowed})")
            return None

    def codes(
        self, data: Mapping[str, object], key: str, path: str, known: Mapping[str, object] | None
    ) -> frozenset[str] | None:
        value = data.get(key, _MISSING)
        if value is _MISSING:
            return None
        if not isinstance(value, list | tuple):
            self.problem(path, f"must be an array of district codes, got {_type_name(value)}")
            return None
        if not value:
            self.problem(path, "must name at least one district")
            return None
        out: set[str] = set()
        ok = True
        for i, item in enumerate(value):
            item_path = f"{path}[{i}]"
            if not isinstance(item, str):
                self.problem(item_path, f"must be a string, got {_type_name(item)}")
                ok = False
            elif item in out:
                self.problem(item_path, f"duplicate district code {item!r}")
                ok = False
            elif known is not None and item not in known:
                names = ", ".join(sorted(known))
                self.problem(item_path, f"unknown district code {item!r} (known: {names})")
                ok = False
            else:
                out.add(item)
        return frozenset(out) if ok else None


def _read_districts(r: _Reader, raw: object) -> dict[str, District] | None:
    if raw is _MISSING:
        return None
    if not isinstance(raw, Mapping):
        r.problem("districts", f"must be a table of districts, got {_type_name(raw)}")
        return None
    if not raw:
        r.problem("districts", "must define at least one district")
        return None
    out: dict[str, District] = {}
    for code, body in raw.items():
        path = f"districts.{code}"
        if not _SLUG_RE.fullmatch(str(code)):
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


def _read_phases(r: _Reader, raw: object) -> list[Phase] | None:
    if raw is _MISSING:
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


def _validate(data: object, source: str) -> Campaign:
    r = _Reader(source)
    top = r.table(data, "", _TOP_KEYS, _TOP_REQUIRED)
    if top is None:
        _raise(r)

    cid = r.slug(top, "id", "id")
    name = r.text(top, "name", "name")
    tz = r.text(top, "timezone", "timezone")
    if tz is not None:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            r.problem("timezone", f"{tz!r} is not a known IANA time zone")
            tz = None
    raw_districts = top.get("districts", _MISSING)
    districts = _read_districts(r, raw_districts)
    # codes are checked against the declared districts, even if one of those is broken
    declared = raw_districts if isinstance(raw_districts, Mapping) else None
    issuing = r.codes(top, "issuing_districts", "issuing_districts", declared)
    usable = r.codes(top, "usable_districts", "usable_districts", declared)
    face = r.integer(top, "face_value_fen", "face_value_fen", 1, MAX_AMOUNT_FEN)
    threshold = r.integer(top, "spend_threshold_fen", "spend_threshold_fen", 1, MAX_AMOUNT_FEN)
    claim_opens = r.day(top, "claim_opens", "claim_opens")
    cert_from = r.day(top, "certificate_issued_from", "certificate_issued_from")
    cert_to = r.day(top, "certificate_issued_to", "certificate_issued_to")
    kind = r.choice(top, "eligible_property_kind", "eligible_property_kind", EligiblePropertyKind)
    validity_days = r.integer(top, "validity_days", "validity_days", 1, 3660)
    counting = r.choice(top, "validity_counting", "validity_counting", ValidityCounting)
    hard_end = r.day(top, "hard_end", "hard_end")
    phases = _read_phases(r, top.get("phases", _MISSING))
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
        _raise(r)
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


def _raise(r: _Reader) -> NoReturn:
    problems = r.problems
    if len(problems) == 1:
        path, text = problems[0]
        message = f"{r.source}: {path}: {text}"
    else:
        lines = "\n".join(f"  {path}: {text}" for path, text in problems)
        message = f"{r.source}: {len(problems)} problems in campaign:\n{lines}"
    raise CampaignConfigInvalid(
        message,
        source=r.source,
        problems=[{"path": p, "problem": t} for p, t in problems],
    )


# --- loading ----------------------------------------------------------------------------


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
