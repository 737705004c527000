"""Rule E3: the registration office's CSV export of certificate records, read and checked.

Pure: bytes in, rows and rejects out. The file is UTF-8 (with or without BOM) or GBK, with a
header row. Column names are accepted in Chinese (as the office exports them) or English:

=====================  =================  ==============================================
Chinese                English            value
=====================  =================  ==============================================
不动产权证号            cert_no            the certificate number
所在区                  district           district code or name (e.g. 东昌府区)
房屋类型                property_type      住宅 / 非住宅 (housing / non_housing)
是否增量房              new_build          是 / 否 (yes / no, true / false, 1 / 0)
不含税价款              invoice_excl_vat   元, up to two decimals
减免税价款              tax_relief         元, up to two decimals (may be empty: 0)
登簿日期                issued_on          YYYY-MM-DD
权利人身份证号          owner_id_numbers   one or more, separated by ; ； 、 or ,
=====================  =================  ==============================================

Every row is checked on its own; a bad row becomes a reject with its line number and reason,
never a half-read record. ID numbers are validated (rule E1) and only their keyed hashes and
masked forms leave this module (rule X3).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from shared.errors import InvalidInput, InvalidRequest
from shared.idnumber import hash_id_number, mask_id_number, validate_id_number
from shared.money import parse_yuan
from shared.rules import PropertyType

MAX_FILE_BYTES = 64 * 1024 * 1024

COLUMNS: Mapping[str, tuple[str, ...]] = {
    "cert_no": ("不动产权证号", "cert_no"),
    "district": ("所在区", "district"),
    "property_type": ("房屋类型", "property_type"),
    "new_build": ("是否增量房", "new_build"),
    "invoice_excl_vat": ("不含税价款", "invoice_excl_vat"),
    "tax_relief": ("减免税价款", "tax_relief"),
    "issued_on": ("登簿日期", "issued_on"),
    "owner_id_numbers": ("权利人身份证号", "owner_id_numbers"),
}
_OPTIONAL = frozenset({"tax_relief"})
_PROPERTY_TYPES = {
    "住宅": PropertyType.HOUSING,
    "housing": PropertyType.HOUSING,
    "非住宅": PropertyType.NON_HOUSING,
    "non_housing": PropertyType.NON_HOUSING,
}
_YES = frozenset({"是", "yes", "true", "1", "y"})
_NO = frozenset({"否", "no", "false", "0", "n"})
_OWNER_SPLIT = re.compile(r"[;；、,，\s]+")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Owner:
    id_hash: bytes
    id_masked: str


@dataclass(frozen=True, slots=True)
class RegistryRow:
    """One certificate record, ready for the ledger (rule E3)."""

    line: int
    cert_no: str
    district: str
    property_type: PropertyType
    new_build: bool
    invoice_excl_vat_fen: int
    tax_relief_fen: int
    issued_on: date
    owners: tuple[Owner, ...]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a row is rejected, in English and in Chinese (operators read the Chinese)."""

    en: str
    zh: str


@dataclass(frozen=True, slots=True)
class Reject:
    """A rejected row with every reason found in it (not only the first)."""

    line: int
    cert_no: str
    reasons: tuple[Reason, ...]

    @classmethod
    def one(cls, line: int, cert_no: str, en: str, zh: str) -> Reject:
        return cls(line, cert_no, (Reason(en, zh),))

    @property
    def reason(self) -> str:
        return "; ".join(r.en for r in self.reasons)


@dataclass(frozen=True, slots=True)
class ParsedRegistry:
    encoding: str
    rows: tuple[RegistryRow, ...]
    rejects: tuple[Reject, ...]


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# rule E1: why an ID number is not valid (shared/idnumber.py's details.reason), in Chinese
_ID_REASONS = {
    "length": "位数不对",
    "characters": "含有无效字符",
    "region": "地区码无效",
    "birth_date": "出生日期无效",
    "checksum": "校验位不符",
}


def decode(data: bytes) -> tuple[str, str]:
    """The text of the file and its encoding: UTF-8 (BOM or not) first, then GBK."""
    if len(data) > MAX_FILE_BYTES:
        raise InvalidRequest(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    for encoding in ("utf-8-sig", "gbk"):
        try:
            # strict decoding: an encoded surrogate is not UTF-8, so none reaches a row
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            raise InvalidRequest("the file holds NUL characters: it is not CSV text")  # issue 9
        return text, "utf-8" if encoding == "utf-8-sig" else encoding
    raise InvalidRequest("the file is neither UTF-8 nor GBK text")


def parse_registry_csv(
    data: bytes, *, districts: Mapping[str, str], id_hash_key: bytes, today: date
) -> ParsedRegistry:
    """Rule E3: read the office's export; ``districts`` maps codes and names to codes."""
    text, encoding = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration as exc:
        raise InvalidRequest("the file is empty: a header row is needed") from exc
    positions = _header_positions(header)
    rows: list[RegistryRow] = []
    rejects: list[Reject] = []
    seen: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        raw = {name: cells[i].strip() if i < len(cells) else "" for name, i in positions.items()}
        cert_no = raw["cert_no"]
        problems: list[Reason] = []
        row = _row(line, raw, districts, id_hash_key, today, problems)
        if cert_no in seen:
            problems.append(
                Reason(
                    f"repeats the certificate of line {seen[cert_no]}",
                    f"与第 {seen[cert_no]} 行的证号重复",
                )
            )
        if row is None or problems:
            rejects.append(Reject(line, cert_no, tuple(problems)))
            continue
        seen[row.cert_no] = line
        rows.append(row)
    return ParsedRegistry(encoding, tuple(rows), tuple(rejects))


def _header_positions(header: list[str]) -> dict[str, int]:
    names = [h.strip().lstrip("\ufeff") for h in header]
    positions: dict[str, int] = {}
    for field, aliases in COLUMNS.items():
        found = [i for i, name in enumerate(names) if name in aliases]
        if len(found) > 1:
            raise InvalidRequest(f"the header names {aliases[0]} twice")
        if found:
            positions[field] = found[0]
        elif field not in _OPTIONAL:
            raise InvalidRequest(f"the header lacks the column {aliases[0]} ({aliases[1]})")
    return positions


def _row(
    line: int,
    raw: Mapping[str, str],
    districts: Mapping[str, str],
    key: bytes,
    today: date,
    problems: list[Reason],
) -> RegistryRow | None:
    """The row, or None with every problem found appended to ``problems`` (each cell is
    checked on its own, so an office fixing its export sees all of them at once)."""
    cert_no = raw["cert_no"]
    if not cert_no or len(cert_no) > 64:
        problems.append(
            Reason(
                "the certificate number is empty or longer than 64 characters",
                "不动产权证号为空或超过 64 个字符",
            )
        )
    elif _CONTROL.search(cert_no):
        problems.append(
            Reason("the certificate number holds control characters", "不动产权证号含有控制字符")
        )
    district = districts.get(raw["district"])
    if district is None:
        problems.append(
            Reason(f"unknown district {raw['district']!r}", f"所在区“{raw['district']}”不存在")
        )
    property_type = _PROPERTY_TYPES.get(raw["property_type"].lower())
    if property_type is None:
        problems.append(
            Reason(
                f"property type {raw['property_type']!r} is not 住宅 or 非住宅",
                f"房屋类型“{raw['property_type']}”应为住宅或非住宅",
            )
        )
    flag = raw["new_build"].lower()
    if flag not in _YES | _NO:
        problems.append(
            Reason(
                f"new-build flag {raw['new_build']!r} is not 是 or 否",
                f"是否增量房“{raw['new_build']}”应为是或否",
            )
        )
    amounts = {}
    for name, label, text in (
        ("invoice", "不含税价款", raw["invoice_excl_vat"]),
        ("relief", "减免税价款", raw.get("tax_relief") or "0"),
    ):
        try:
            amounts[name] = parse_yuan(text, field=label)
        except InvalidInput as exc:
            problems.append(Reason(exc.message, f"{label}“{text}”不是有效的金额（元）"))
    issued_text = raw["issued_on"]
    issued_on: date | None = None
    if not _DATE.match(issued_text):
        problems.append(
            Reason(
                f"issue date {issued_text!r} is not YYYY-MM-DD",
                f"登簿日期“{issued_text}”应为 YYYY-MM-DD",
            )
        )
    else:
        try:
            issued_on = date.fromisoformat(issued_text)
        except ValueError:
            problems.append(
                Reason(
                    f"issue date {issued_text!r} is not a calendar date",
                    f"登簿日期“{issued_text}”不是有效日期",
                )
            )
        if issued_on is not None and issued_on > today:
            problems.append(
                Reason(
                    f"issue date {issued_text} is in the future", f"登簿日期 {issued_text} 晚于今天"
                )
            )
    numbers = [n for n in _OWNER_SPLIT.split(raw["owner_id_numbers"]) if n]
    if not numbers:
        problems.append(Reason("no owner ID number", "缺少权利人身份证号"))
    owners: dict[bytes, Owner] = {}
    for position, number in enumerate(numbers, start=1):
        try:
            valid = validate_id_number(number, today)  # rule E1
        except InvalidInput as exc:
            why = str(exc.details.get("reason", "invalid"))
            problems.append(
                Reason(
                    f"owner {position}: ID number is not valid ({why})",
                    f"第 {position} 位权利人的身份证号无效（{_ID_REASONS.get(why, why)}）",
                )
            )
            continue
        digest = hash_id_number(valid, key)  # rule X3
        owners[digest] = Owner(digest, mask_id_number(valid))
    if problems or district is None or property_type is None or issued_on is None:
        return None
    invoice, relief = amounts["invoice"], amounts["relief"]
    return RegistryRow(
        line=line,
        cert_no=cert_no,
        district=district,
        property_type=property_type,
        new_build=flag in _YES,
        invoice_excl_vat_fen=invoice,
        tax_relief_fen=relief,
        issued_on=issued_on,
        owners=tuple(owners.values()),
    )
