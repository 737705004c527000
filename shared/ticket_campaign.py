"""Rule C1 for house tickets (房票, rules T1-T14): a house-ticket programme is data — a TOML
file with ``kind = "house_ticket"``, validated with clear errors, like a voucher campaign
(``shared.campaign``). Every difference between two programmes (Shangqiu, Suining Chuanshan)
is a parameter here, never a literal in the rules (``shared.house_tickets``).

Parsing only: no file is read here. The schema (every key required unless noted; unknown keys
are errors; money in fen, rates in basis points, areas in dm² = 0.01 m²)::

    kind = "house_ticket"; id, name, timezone                     # C1
    issuing_districts, usable_districts                           # T1 issuers, T4 listings
    issuance_opens, issuance_closes                               # T1 dates, inclusive
    project_excluded_when     "delivered_and_paid" | "delivered_or_paid"        # T1
    household_required, ticket_area_required                      # T1 (Suining: both)
    validity_months, validity_months_max                          # T2 default, per-ticket cap
    may_serve                 ["holder", "spouse", "parent", "child", "household_member"]  # T5
    home_kept_for             property types needing a home kept (T4)
    price_not_above_listing, exit_notice_months                   # T4
    qr_token_ttl_seconds, idempotency_retention_hours             # U5, U7 (the till's)
    subsidy                   [{from_month, to_month, rate_bp}]   # T7 (may be empty)
    [face_items]              code = label: the items of a face value (T1)
    [property_types]          type = label: the eligible types (T4)
    [transfer]                max_transfers, requires, unused_only, heir   # T3
    [split]                   mode, min_use_bp, max_splits, max_pieces, combine   # T6
    [reward]                  fen_per_m2, property_types          # T8
    [cashout]                 min_used_bp, pay_within_months      # T9
    [bonus] (optional)        review_months, pay_within_months, tiers = [{min_used_bp, rate_bp}]
    [settlement]              requires, period_months, anchor, first_payment_bp,
                              pay_within_days                     # T12
    [lost_ticket]             notice_working_days                 # T13
    [working_calendar] (needed when notice_working_days > 0)
                              first_day, last_day, holidays, workdays   # T13
    [districts.<code>]        name, full_name (optional)          # C2

``load_any_campaign_text`` reads either kind by its ``kind`` key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from shared.campaign import (
    BP_DENOMINATOR,
    Campaign,
    CampaignKind,
    District,
    campaign_kind,
    load_campaign_dict,
    read_header,
)
from shared.config_reader import MISSING, SLUG_RE, Reader, raise_problems, type_name
from shared.errors import CampaignConfigInvalid, JsonValue
from shared.periods import WorkingCalendar


class PropertyType(StrEnum):
    """Rule T4: the kinds of unit a listing pool may hold (a programme names its own)."""

    RESIDENTIAL = "residential"  # 住宅
    COMMERCIAL = "commercial"  # 商业
    COMMERCIAL_OFFICE = "commercial_office"  # 商办 (Shangqiu)
    OFFICE = "office"  # 办公 (Suining)
    PARKING = "parking"  # 车位, 车库
    STORAGE = "storage"  # 配套储藏室 (Shangqiu)


class Relation(StrEnum):
    """Rule T5: who the buyer is to the holder, recorded at the use."""

    HOLDER = "holder"
    SPOUSE = "spouse"  # 配偶
    PARENT = "parent"  # 父母
    CHILD = "child"  # 子女
    HOUSEHOLD_MEMBER = "household_member"  # listed on the ticket (Suining)


class ProjectExclusion(StrEnum):
    """Rule T1: when an expropriation project (or household) may no longer take tickets."""

    DELIVERED_AND_PAID = "delivered_and_paid"  # resettlement housing delivered and cash paid
    DELIVERED_OR_PAID = "delivered_or_paid"  # either entitlement already fully met


class SplitMode(StrEnum):
    """Rule T6: how the 90% rule reads."""

    CUMULATIVE = "cumulative"  # Shangqiu: the uses together reach min_use_bp of face
    PER_USE = "per_use"  # Suining: each use reaches min_use_bp of its ticket or piece


class TransferRequirement(StrEnum):
    """Rule T3: what a transfer must show (Suining)."""

    HOME_IN_CITY = "home_in_city"  # the transferor's household keeps a home in the city
    ALL_MEMBERS_SIGNED = "all_members_signed"  # every household member signed
    NOTARISED = "notarised"  # 公证


class SettlementCondition(StrEnum):
    """Rule T12: what must have happened before a use is settled to its seller."""

    FILED = "filed"  # 网签备案
    FEES_PAID = "fees_paid"  # maintenance fund and taxes paid
    DELIVERED = "delivered"  # the unit delivered as agreed
    STUB_SURRENDERED = "stub_surrendered"  # the paper 消费联 handed in


@dataclass(frozen=True, slots=True)
class SubsidyBand:
    """Rule T7: contracts signed in months ``from_month`` .. ``to_month`` after issue (both
    inclusive, counted by ``shared.periods.month_number``) earn ``rate_bp`` of the ticket
    amount."""

    from_month: int
    to_month: int
    rate_bp: int


@dataclass(frozen=True, slots=True)
class TransferRules:
    """Rule T3: transfers to another holder and passing to an heir."""

    max_transfers: int  # 0: no transfer (Shangqiu)
    requires: frozenset[TransferRequirement]
    unused_only: bool  # [choice] only a ticket with no use and no cash-out passes on
    heir: bool  # an heir takes the ticket on a notarised inheritance certificate


@dataclass(frozen=True, slots=True)
class SplitRules:
    """Rule T6: the 90% rule, splitting into pieces and combining on one contract."""

    mode: SplitMode
    min_use_bp: int
    max_splits: int  # how many times a lineage may split (Suining 1, Shangqiu 0)
    max_pieces: int  # pieces per split (Suining 3 [choice])
    combine: bool  # several of a holder's tickets may pay one contract


@dataclass(frozen=True, slots=True)
class RewardRules:
    """Rule T8: a reward per m² of the unit bought, applied to its price at the use."""

    fen_per_m2: int  # 0: no reward (Shangqiu)
    property_types: frozenset[PropertyType]


@dataclass(frozen=True, slots=True)
class CashoutRules:
    """Rule T9: the residual cash-out."""

    min_used_bp: int  # the uses reach this share of the original face value
    pay_within_months: int  # after the last purchase; 0: no deadline set (Shangqiu)


@dataclass(frozen=True, slots=True)
class BonusTier:
    """Rule T10: usage of at least ``min_used_bp`` earns ``rate_bp`` of the face value."""

    min_used_bp: int
    rate_bp: int


@dataclass(frozen=True, slots=True)
class BonusRules:
    """Rule T10: the usage bonus (Suining), reviewed ``review_months`` after issue."""

    review_months: int
    pay_within_months: int
    tiers: tuple[BonusTier, ...]  # highest min_used_bp first


@dataclass(frozen=True, slots=True)
class SettlementRules:
    """Rule T12: when and how much a seller is paid for a use."""

    requires: frozenset[SettlementCondition]
    period_months: int  # settlement points every N months from ``anchor``; 0: on submission
    anchor: date
    first_payment_bp: int  # paid before the property certificate (Suining 90%)
    pay_within_days: int  # after the settlement point


@dataclass(frozen=True, slots=True)
class TicketCampaign:
    """Rules C1, T1-T14: one house-ticket programme's parameters. Build it with
    ``load_ticket_campaign_text`` or ``load_ticket_campaign_dict``, which validate."""

    id: str
    name: str
    timezone: str
    districts: Mapping[str, District] = field(hash=False)
    issuing_districts: frozenset[str]
    usable_districts: frozenset[str]
    issuance_opens: date
    issuance_closes: date
    project_excluded_when: ProjectExclusion
    face_items: Mapping[str, str] = field(hash=False)
    household_required: bool
    ticket_area_required: bool
    validity_months: int
    validity_months_max: int
    may_serve: frozenset[Relation]
    property_types: Mapping[PropertyType, str] = field(hash=False)
    home_kept_for: frozenset[PropertyType]
    price_not_above_listing: bool
    exit_notice_months: int
    subsidy: tuple[SubsidyBand, ...]
    transfer: TransferRules
    split: SplitRules
    reward: RewardRules
    cashout: CashoutRules
    bonus: BonusRules | None
    settlement: SettlementRules
    notice_working_days: int
    calendar: WorkingCalendar | None
    qr_token_ttl_seconds: int
    idempotency_retention_hours: int
    kind: CampaignKind = CampaignKind.HOUSE_TICKET

    @property
    def tz(self) -> ZoneInfo:
        """The programme's time zone (Asia/Shanghai for both)."""
        return ZoneInfo(self.timezone)

    def subsidy_bp(self, month: int) -> int:
        """Rule T7: the subsidy rate for a contract signed in ``month`` after issue (0 after
        the table's last band)."""
        for band in self.subsidy:
            if band.from_month <= month <= band.to_month:
                return band.rate_bp
        return 0


# --- validation -------------------------------------------------------------------------

_TOP_KEYS = (
    "kind",
    "id",
    "name",
    "timezone",
    "districts",
    "issuing_districts",
    "usable_districts",
    "issuance_opens",
    "issuance_closes",
    "project_excluded_when",
    "face_items",
    "household_required",
    "ticket_area_required",
    "validity_months",
    "validity_months_max",
    "may_serve",
    "property_types",
    "home_kept_for",
    "price_not_above_listing",
    "exit_notice_months",
    "subsidy",
    "transfer",
    "split",
    "reward",
    "cashout",
    "bonus",
    "settlement",
    "lost_ticket",
    "working_calendar",
    "qr_token_ttl_seconds",
    "idempotency_retention_hours",
)
_TOP_REQUIRED = tuple(k for k in _TOP_KEYS if k not in ("bonus", "working_calendar"))
_MAX_BP = BP_DENOMINATOR
_MAX_MONTHS = 120


def _section(r: Reader, top: Mapping[str, object], key: str, keys: tuple[str, ...]) -> Any:
    """The sub-table ``[key]`` with exactly ``keys`` (None if absent or not a table)."""
    raw = top.get(key, MISSING)
    if raw is MISSING:
        return None
    return r.table(raw, key, keys, keys)


def _labels(r: Reader, top: Mapping[str, object], key: str) -> dict[str, str] | None:
    """A table of code = label (both non-empty text), at least one entry."""
    raw = top.get(key, MISSING)
    if raw is MISSING:
        return None
    if not isinstance(raw, Mapping) or not raw:
        r.problem(key, f"must be a non-empty table of code = label, got {type_name(raw)}")
        return None
    out: dict[str, str] = {}
    for code in raw:
        label = r.text(raw, code, f"{key}.{code}")
        if not SLUG_RE.fullmatch(str(code)):
            r.problem(f"{key}.{code}", "code must be a lower-case ASCII slug")
        elif label is not None:
            out[str(code)] = label
    return out if len(out) == len(raw) else None


def _property_types(r: Reader, top: Mapping[str, object]) -> dict[PropertyType, str] | None:
    labels = _labels(r, top, "property_types")
    if labels is None:
        return None
    out: dict[PropertyType, str] = {}
    for code, label in labels.items():
        kind = r.choice({code: code}, code, f"property_types.{code}", PropertyType)
        if kind is not None:
            out[kind] = label
    return out if len(out) == len(labels) else None


def _subsidy(r: Reader, top: Mapping[str, object]) -> list[SubsidyBand] | None:
    items = r.array(top, "subsidy", "subsidy")
    if items is None:
        return None
    bands: list[SubsidyBand] = []
    keys = ("from_month", "to_month", "rate_bp")
    expected: int | None = 1  # the month the next band starts on (None: not known)
    for i, body in enumerate(items):
        path = f"subsidy[{i}]"
        table = r.table(body, path, keys, keys)
        if table is None:
            expected = None
            continue
        low = r.integer(table, "from_month", f"{path}.from_month", 1, _MAX_MONTHS)
        high = r.integer(table, "to_month", f"{path}.to_month", 1, _MAX_MONTHS)
        rate = r.integer(table, "rate_bp", f"{path}.rate_bp", 0, _MAX_BP)
        runs_on, expected = expected, None if high is None else high + 1
        if low is None or high is None or rate is None:
            continue
        if runs_on is not None and low != runs_on:
            r.problem(f"{path}.from_month", f"must be {runs_on}: the bands run on from month 1")
        elif high < low:
            r.problem(f"{path}.to_month", f"{high} is before from_month {low}")
        else:
            bands.append(SubsidyBand(low, high, rate))
    return bands if len(bands) == len(items) else None


def _transfer(r: Reader, top: Mapping[str, object]) -> TransferRules | None:
    t = _section(r, top, "transfer", ("max_transfers", "requires", "unused_only", "heir"))
    if t is None:
        return None
    count = r.integer(t, "max_transfers", "transfer.max_transfers", 0, 10)
    requires = r.choices(t, "requires", "transfer.requires", TransferRequirement)
    unused_only = r.boolean(t, "unused_only", "transfer.unused_only")
    heir = r.boolean(t, "heir", "transfer.heir")
    if count is None or requires is None or unused_only is None or heir is None:
        return None
    return TransferRules(count, requires, unused_only, heir)


def _split(r: Reader, top: Mapping[str, object]) -> SplitRules | None:
    keys = ("mode", "min_use_bp", "max_splits", "max_pieces", "combine")
    t = _section(r, top, "split", keys)
    if t is None:
        return None
    mode = r.choice(t, "mode", "split.mode", SplitMode)
    min_bp = r.integer(t, "min_use_bp", "split.min_use_bp", 0, _MAX_BP)
    splits = r.integer(t, "max_splits", "split.max_splits", 0, 5)
    pieces = r.integer(t, "max_pieces", "split.max_pieces", 1, 20)
    combine = r.boolean(t, "combine", "split.combine")
    if mode is None or min_bp is None or splits is None or pieces is None or combine is None:
        return None
    if splits and pieces < 2:
        r.problem("split.max_pieces", "a split makes at least 2 pieces")
        return None
    return SplitRules(mode, min_bp, splits, pieces, combine)


def _reward(r: Reader, top: Mapping[str, object]) -> RewardRules | None:
    t = _section(r, top, "reward", ("fen_per_m2", "property_types"))
    if t is None:
        return None
    rate = r.integer(t, "fen_per_m2", "reward.fen_per_m2", 0, 10_000_000)
    kinds = r.choices(t, "property_types", "reward.property_types", PropertyType)
    if rate is None or kinds is None:
        return None
    return RewardRules(rate, kinds)


def _cashout(r: Reader, top: Mapping[str, object]) -> CashoutRules | None:
    t = _section(r, top, "cashout", ("min_used_bp", "pay_within_months"))
    if t is None:
        return None
    min_bp = r.integer(t, "min_used_bp", "cashout.min_used_bp", 0, _MAX_BP)
    months = r.integer(t, "pay_within_months", "cashout.pay_within_months", 0, _MAX_MONTHS)
    if min_bp is None or months is None:
        return None
    return CashoutRules(min_bp, months)


def _bonus(r: Reader, top: Mapping[str, object]) -> BonusRules | None:
    t = _section(r, top, "bonus", ("review_months", "pay_within_months", "tiers"))
    if t is None:
        return None
    review = r.integer(t, "review_months", "bonus.review_months", 1, _MAX_MONTHS)
    pay = r.integer(t, "pay_within_months", "bonus.pay_within_months", 0, _MAX_MONTHS)
    items = r.array(t, "tiers", "bonus.tiers")
    if review is None or pay is None or items is None:
        return None
    tiers: list[BonusTier] = []
    for i, body in enumerate(items):
        path = f"bonus.tiers[{i}]"
        table = r.table(body, path, ("min_used_bp", "rate_bp"), ("min_used_bp", "rate_bp"))
        if table is None:
            continue
        low = r.integer(table, "min_used_bp", f"{path}.min_used_bp", 1, _MAX_BP)
        rate = r.integer(table, "rate_bp", f"{path}.rate_bp", 0, _MAX_BP)
        if low is None or rate is None:
            continue
        if tiers and low >= tiers[-1].min_used_bp:
            r.problem(f"{path}.min_used_bp", "tiers go from the highest usage down")
            continue
        tiers.append(BonusTier(low, rate))
    if not items:
        r.problem("bonus.tiers", "must name at least one tier (leave [bonus] out for none)")
    if not tiers or len(tiers) != len(items):
        return None
    return BonusRules(review, pay, tuple(tiers))


def _settlement(r: Reader, top: Mapping[str, object]) -> SettlementRules | None:
    keys = ("requires", "period_months", "anchor", "first_payment_bp", "pay_within_days")
    t = _section(r, top, "settlement", keys)
    if t is None:
        return None
    requires = r.choices(t, "requires", "settlement.requires", SettlementCondition)
    period = r.integer(t, "period_months", "settlement.period_months", 0, _MAX_MONTHS)
    anchor = r.day(t, "anchor", "settlement.anchor")
    first = r.integer(t, "first_payment_bp", "settlement.first_payment_bp", 1, _MAX_BP)
    days = r.integer(t, "pay_within_days", "settlement.pay_within_days", 0, 3660)
    if requires is None or period is None or anchor is None or first is None or days is None:
        return None
    return SettlementRules(requires, period, anchor, first, days)


def _calendar(r: Reader, top: Mapping[str, object]) -> WorkingCalendar | None:
    keys = ("first_day", "last_day", "holidays", "workdays")
    t = _section(r, top, "working_calendar", keys)
    if t is None:
        return None
    first = r.day(t, "first_day", "working_calendar.first_day")
    last = r.day(t, "last_day", "working_calendar.last_day")
    holidays = r.days(t, "holidays", "working_calendar.holidays")
    workdays = r.days(t, "workdays", "working_calendar.workdays")
    if first is None or last is None or holidays is None or workdays is None:
        return None
    ok = True
    if last < first:
        r.problem("working_calendar.last_day", f"{last} is before first_day {first}")
        ok = False
    for day in sorted(holidays | workdays):
        if not first <= day <= last:
            r.problem("working_calendar", f"{day} is outside {first} .. {last}")
            ok = False
    for day in sorted(holidays & workdays):
        r.problem("working_calendar", f"{day} is both a holiday and a working day")
        ok = False
    for day in sorted(workdays):
        if day.weekday() < 5:
            r.problem("working_calendar.workdays", f"{day} is a weekday: list only make-up days")
            ok = False
    return WorkingCalendar(first, last, holidays, workdays) if ok else None


def _within(
    r: Reader, path: str, items: frozenset[PropertyType] | None, allowed: Mapping[PropertyType, str]
) -> None:
    for item in sorted((items or frozenset()) - allowed.keys()):
        r.problem(path, f"{item.value!r} is not one of the programme's property_types")


def _validate(data: object, source: str) -> TicketCampaign:
    if campaign_kind(data, source) is not CampaignKind.HOUSE_TICKET:
        raise CampaignConfigInvalid(
            f'{source}: kind: a house-ticket campaign says kind = "house_ticket"',
            source=source,
            problems=[{"path": "kind", "problem": "not a house-ticket campaign"}],
        )
    r = Reader(source)
    top = r.table(data, "", _TOP_KEYS, _TOP_REQUIRED)
    if top is None:
        raise_problems(r)

    cid, name, tz, districts, issuing, usable = read_header(r, top)
    opens = r.day(top, "issuance_opens", "issuance_opens")
    closes = r.day(top, "issuance_closes", "issuance_closes")
    excluded = r.choice(top, "project_excluded_when", "project_excluded_when", ProjectExclusion)
    face_items = _labels(r, top, "face_items")
    household = r.boolean(top, "household_required", "household_required")
    area = r.boolean(top, "ticket_area_required", "ticket_area_required")
    months = r.integer(top, "validity_months", "validity_months", 1, _MAX_MONTHS)
    months_max = r.integer(top, "validity_months_max", "validity_months_max", 1, _MAX_MONTHS)
    may_serve = r.choices(top, "may_serve", "may_serve", Relation)
    property_types = _property_types(r, top)
    home_kept_for = r.choices(top, "home_kept_for", "home_kept_for", PropertyType)
    price_cap = r.boolean(top, "price_not_above_listing", "price_not_above_listing")
    exit_notice = r.integer(top, "exit_notice_months", "exit_notice_months", 0, _MAX_MONTHS)
    subsidy = _subsidy(r, top)
    transfer = _transfer(r, top)
    split = _split(r, top)
    reward = _reward(r, top)
    cashout = _cashout(r, top)
    bonus = _bonus(r, top)
    settlement = _settlement(r, top)
    lost = _section(r, top, "lost_ticket", ("notice_working_days",))
    notice_days = (
        r.integer(lost, "notice_working_days", "lost_ticket.notice_working_days", 0, 60)
        if lost is not None
        else None
    )
    calendar = _calendar(r, top)
    qr_ttl = r.integer(top, "qr_token_ttl_seconds", "qr_token_ttl_seconds", 1, 3600)
    retention = r.integer(
        top, "idempotency_retention_hours", "idempotency_retention_hours", 1, 24 * 365
    )

    # cross-field checks, only where both sides were read
    if opens is not None and closes is not None and closes < opens:
        r.problem("issuance_closes", f"{closes} is before issuance_opens {opens}")
    if months is not None and months_max is not None and months_max < months:
        r.problem("validity_months_max", f"{months_max} is below validity_months {months}")
    if may_serve is not None:
        if Relation.HOLDER not in may_serve:
            r.problem("may_serve", "a ticket always serves its holder: name 'holder'")
        if Relation.HOUSEHOLD_MEMBER in may_serve and household is False:
            r.problem("may_serve", "'household_member' needs household_required = true")
    if property_types is not None:
        _within(r, "home_kept_for", home_kept_for, property_types)
        rewarded = reward.property_types if reward is not None else None
        _within(r, "reward.property_types", rewarded, property_types)
    if notice_days and "working_calendar" not in top:
        r.problem("working_calendar", "missing: lost_ticket.notice_working_days counts on it")

    if r.problems:
        raise_problems(r)
    assert cid is not None and name is not None and tz is not None and districts is not None
    assert issuing is not None and usable is not None and opens is not None
    assert closes is not None and excluded is not None and face_items is not None
    assert household is not None and area is not None and months is not None
    assert months_max is not None and may_serve is not None and property_types is not None
    assert home_kept_for is not None and price_cap is not None and exit_notice is not None
    assert subsidy is not None and transfer is not None and split is not None
    assert reward is not None and cashout is not None and settlement is not None
    assert notice_days is not None and qr_ttl is not None and retention is not None
    return TicketCampaign(
        id=cid,
        name=name,
        timezone=tz,
        districts=MappingProxyType(districts),
        issuing_districts=issuing,
        usable_districts=usable,
        issuance_opens=opens,
        issuance_closes=closes,
        project_excluded_when=excluded,
        face_items=MappingProxyType(face_items),
        household_required=household,
        ticket_area_required=area,
        validity_months=months,
        validity_months_max=months_max,
        may_serve=may_serve,
        property_types=MappingProxyType(property_types),
        home_kept_for=home_kept_for,
        price_not_above_listing=price_cap,
        exit_notice_months=exit_notice,
        subsidy=tuple(subsidy),
        transfer=transfer,
        split=split,
        reward=reward,
        cashout=cashout,
        bonus=bonus,
        settlement=settlement,
        notice_working_days=notice_days,
        calendar=calendar,
        qr_token_ttl_seconds=qr_ttl,
        idempotency_retention_hours=retention,
    )


# --- loading ----------------------------------------------------------------------------


def load_ticket_campaign_dict(data: Mapping[str, object], source: str = "<dict>") -> TicketCampaign:
    """Rule C1: a validated ``TicketCampaign`` from a parsed document (TOML or JSON shape).

    Raises ``CampaignConfigInvalid`` listing every problem with its key path.
    """
    return _validate(data, source)


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignConfigInvalid(
            f"{source}: not valid TOML: {exc}",
            source=source,
            problems=[{"path": "<toml>", "problem": str(exc)}],
        ) from None
    except RecursionError:
        raise CampaignConfigInvalid(
            f"{source}: the TOML nests too deeply",
            source=source,
            problems=[{"path": "<toml>", "problem": "nested too deeply"}],
        ) from None


def load_ticket_campaign_text(text: str, source: str = "<string>") -> TicketCampaign:
    """Rule C1: parse and validate a house-ticket campaign's TOML text."""
    return _validate(_parse_toml(text, source), source)


def load_any_campaign_dict(
    data: Mapping[str, object], source: str = "<dict>"
) -> Campaign | TicketCampaign:
    """Rule C1: a campaign of either kind, by its ``kind`` key (absent: a voucher campaign)."""
    if campaign_kind(data, source) is CampaignKind.HOUSE_TICKET:
        return load_ticket_campaign_dict(data, source)
    return load_campaign_dict(data, source)


def load_any_campaign_text(text: str, source: str = "<string>") -> Campaign | TicketCampaign:
    """Rule C1: parse and validate campaign TOML text of either kind."""
    return load_any_campaign_dict(_parse_toml(text, source), source)


def _days(days: frozenset[date]) -> list[JsonValue]:
    return [d.isoformat() for d in sorted(days)]


def _values(items: frozenset[StrEnum]) -> list[JsonValue]:
    return [item.value for item in sorted(items)]


def ticket_campaign_to_dict(c: TicketCampaign) -> dict[str, JsonValue]:
    """Rule C1: the programme as plain JSON (dates ISO, sets sorted), loadable again by
    ``load_ticket_campaign_dict``."""
    out: dict[str, JsonValue] = {
        "kind": c.kind.value,
        "id": c.id,
        "name": c.name,
        "timezone": c.timezone,
        "districts": {
            code: {"name": d.name, "full_name": d.full_name} for code, d in c.districts.items()
        },
        "issuing_districts": [code for code in sorted(c.issuing_districts)],
        "usable_districts": [code for code in sorted(c.usable_districts)],
        "issuance_opens": c.issuance_opens.isoformat(),
        "issuance_closes": c.issuance_closes.isoformat(),
        "project_excluded_when": c.project_excluded_when.value,
        "face_items": dict(c.face_items),
        "household_required": c.household_required,
        "ticket_area_required": c.ticket_area_required,
        "validity_months": c.validity_months,
        "validity_months_max": c.validity_months_max,
        "may_serve": _values(c.may_serve),
        "property_types": {t.value: label for t, label in c.property_types.items()},
        "home_kept_for": _values(c.home_kept_for),
        "price_not_above_listing": c.price_not_above_listing,
        "exit_notice_months": c.exit_notice_months,
        "subsidy": [
            {"from_month": b.from_month, "to_month": b.to_month, "rate_bp": b.rate_bp}
            for b in c.subsidy
        ],
        "transfer": {
            "max_transfers": c.transfer.max_transfers,
            "requires": _values(c.transfer.requires),
            "unused_only": c.transfer.unused_only,
            "heir": c.transfer.heir,
        },
        "split": {
            "mode": c.split.mode.value,
            "min_use_bp": c.split.min_use_bp,
            "max_splits": c.split.max_splits,
            "max_pieces": c.split.max_pieces,
            "combine": c.split.combine,
        },
        "reward": {
            "fen_per_m2": c.reward.fen_per_m2,
            "property_types": _values(c.reward.property_types),
        },
        "cashout": {
            "min_used_bp": c.cashout.min_used_bp,
            "pay_within_months": c.cashout.pay_within_months,
        },
        "settlement": {
            "requires": _values(c.settlement.requires),
            "period_months": c.settlement.period_months,
            "anchor": c.settlement.anchor.isoformat(),
            "first_payment_bp": c.settlement.first_payment_bp,
            "pay_within_days": c.settlement.pay_within_days,
        },
        "lost_ticket": {"notice_working_days": c.notice_working_days},
        "qr_token_ttl_seconds": c.qr_token_ttl_seconds,
        "idempotency_retention_hours": c.idempotency_retention_hours,
    }
    if c.bonus is not None:
        out["bonus"] = {
            "review_months": c.bonus.review_months,
            "pay_within_months": c.bonus.pay_within_months,
            "tiers": [{"min_used_bp": t.min_used_bp, "rate_bp": t.rate_bp} for t in c.bonus.tiers],
        }
    if c.calendar is not None:
        out["working_calendar"] = {
            "first_day": c.calendar.first_day.isoformat(),
            "last_day": c.calendar.last_day.isoformat(),
            "holidays": _days(c.calendar.holidays),
            "workdays": _days(c.calendar.workdays),
        }
    return out
