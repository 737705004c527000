"""Rule T4: a developer's units for the listing pool (房源库), from the developer's CSV, read
and checked. Pure: bytes in, rows and rejects out, as the registry import (``shared.registry``:
UTF-8 with or without BOM, or GBK; a header row; every row checked on its own and rejected
with its line and every reason, in English and Chinese).

Columns, in Chinese (as a developer files them) or English:

=========  ==============  ===============================================================
Chinese    English         value
=========  ==============  ===============================================================
房号        unit            the unit (building, floor, number): 1-100 characters
所在区      district        the district's code or name (e.g. 船山区); one the tickets buy in
用途        property_type   the programme's label (住宅, 商业, 商办 ...) or its code
建筑面积    area_m2         m², up to two decimals (89.57)
备案价      price           元, up to two decimals: the filed (or agreed) price of the unit
=========  ==============  ===============================================================
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass

from shared.errors import InvalidInput, InvalidRequest
from shared.house_tickets import DM2_PER_M2
from shared.money import MAX_AMOUNT_FEN, parse_yuan
from shared.registry import Reason, Reject, decode
from shared.ticket_campaign import PropertyType, TicketCampaign

COLUMNS: Mapping[str, tuple[str, ...]] = {
    "unit": ("房号", "unit"),
    "district": ("所在区", "district"),
    "property_type": ("用途", "property_type"),
    "area_m2": ("建筑面积", "area_m2"),
    "price": ("备案价", "price"),
}
_AREA = re.compile(r"^(\d{1,7})(?:\.(\d{1,2}))?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_AREA_DM2 = 2**31 - 1  # the ledger's integer


@dataclass(frozen=True, slots=True)
class ListingRow:
    """One unit as the developer filed it (rule T4)."""

    line: int
    unit: str
    district: str
    property_type: PropertyType
    area_dm2: int
    listed_price_fen: int


@dataclass(frozen=True, slots=True)
class ParsedListings:
    encoding: str
    rows: tuple[ListingRow, ...]
    rejects: tuple[Reject, ...]


def parse_area_dm2(text: str) -> int:
    """``89.57`` (m², at most two decimals) as 8957 dm²; ``InvalidInput`` otherwise."""
    found = _AREA.fullmatch(text.strip())
    if found is None:
        raise InvalidInput("the area is m² with at most two decimals", field="area_m2")
    area = int(found.group(1)) * DM2_PER_M2 + int((found.group(2) or "").ljust(2, "0"))
    if not 0 < area <= MAX_AREA_DM2:
        raise InvalidInput("the area is above 0", field="area_m2")
    return area


def _types(campaign: TicketCampaign) -> dict[str, PropertyType]:
    """Rule T4: the programme's eligible types by label (住宅) and by code (residential)."""
    found: dict[str, PropertyType] = {}
    for kind, label in campaign.property_types.items():
        found[label] = found[kind.value] = kind
    return found


def parse_listings_csv(
    data: bytes, *, campaign: TicketCampaign, districts: Mapping[str, str]
) -> ParsedListings:
    """Rule T4: read a developer's units; ``districts`` maps codes and names to codes. A unit
    outside the programme's districts, of a type it does not take, or named twice, is
    rejected with its line."""
    text, encoding = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration as exc:
        raise InvalidRequest("the file is empty: a header row is needed") from exc
    positions = _header_positions(header)
    types = _types(campaign)
    rows: list[ListingRow] = []
    rejects: list[Reject] = []
    seen: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        raw = {name: cells[i].strip() if i < len(cells) else "" for name, i in positions.items()}
        problems: list[Reason] = []
        row = _row(line, raw, campaign, districts, types, problems)
        if raw["unit"] in seen:
            problems.append(
                Reason(
                    f"repeats the unit of line {seen[raw['unit']]}",
                    f"与第 {seen[raw['unit']]} 行的房号重复",
                )
            )
        if row is None or problems:
            rejects.append(Reject(line, raw["unit"], tuple(problems)))
            continue
        seen[row.unit] = line
        rows.append(row)
    return ParsedListings(encoding, tuple(rows), tuple(rejects))


def _header_positions(header: list[str]) -> dict[str, int]:
    names = [h.strip().lstrip("\ufeff") for h in header]
    positions: dict[str, int] = {}
    for field, aliases in COLUMNS.items():
        found = [i for i, name in enumerate(names) if name in aliases]
        if len(found) > 1:
            raise InvalidRequest(f"the header names {aliases[0]} twice")
        if not found:
            raise InvalidRequest(f"the header lacks the column {aliases[0]} ({aliases[1]})")
        positions[field] = found[0]
    return positions


def _row(
    line: int,
    raw: Mapping[str, str],
    campaign: TicketCampaign,
    districts: Mapping[str, str],
    types: Mapping[str, PropertyType],
    problems: list[Reason],
) -> ListingRow | None:
    """The row, or None with every problem found appended to ``problems``."""
    unit = raw["unit"]
    if not unit or len(unit) > 100 or _CONTROL.search(unit):
        problems.append(
            Reason(
                "the unit is empty, longer than 100 characters or holds control characters",
                "房号为空、超过 100 个字符或含有控制字符",
            )
        )
    district = districts.get(raw["district"])
    if district is None or district not in campaign.usable_districts:
        problems.append(
            Reason(
                f"district {raw['district']!r} is not one the programme's tickets buy in",
                f"所在区“{raw['district']}”不在本房票可用的区域内",
            )
        )
    kind = types.get(raw["property_type"])
    if kind is None:
        known = "、".join(campaign.property_types.values())
        problems.append(
            Reason(
                f"property type {raw['property_type']!r} is not one of the programme's",
                f"用途“{raw['property_type']}”不在房源范围内（{known}）",
            )
        )
    area = price = 0
    try:
        area = parse_area_dm2(raw["area_m2"])
    except InvalidInput:
        problems.append(
            Reason(
                f"area {raw['area_m2']!r} is not m² above 0 with at most two decimals",
                f"建筑面积“{raw['area_m2']}”应为大于 0 的平方米数，最多两位小数",
            )
        )
    try:
        price = parse_yuan(raw["price"], positive=True, field="备案价")
    except InvalidInput:
        problems.append(
            Reason(
                f"price {raw['price']!r} is not an amount in 元 above 0",
                f"备案价“{raw['price']}”不是有效的金额（元）",
            )
        )
    if problems or district is None or kind is None or not 0 < price <= MAX_AMOUNT_FEN:
        return None
    return ListingRow(line, unit, district, kind, area, price)
