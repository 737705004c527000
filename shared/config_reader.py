"""Reading a parsed configuration document (a campaign file's TOML) with clear errors: every
problem is collected with its key path, then raised at once as ``CampaignConfigInvalid``.

Shared by the campaign kinds (rule C1): ``shared.campaign`` (vouchers) and
``shared.ticket_campaign`` (house tickets). Parsing only, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any, NoReturn, TypeVar

from shared.errors import CampaignConfigInvalid

E = TypeVar("E", bound=StrEnum)
ISO_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}", re.ASCII)
MISSING: Any = object()
"""The value of a key a document leaves out (``data.get(key, MISSING)``)."""


def type_name(value: object) -> str:
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


class Reader:
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
            self.problem(path or "<root>", f"must be a table, got {type_name(data)}")
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
        value = data.get(key, MISSING)
        if value is MISSING:
            return None
        if not isinstance(value, str):
            self.problem(path, f"must be a string, got {type_name(value)}")
            return None
        if not value.strip():
            self.problem(path, "must not be empty")
            return None
        return value

    def slug(self, data: Mapping[str, object], key: str, path: str) -> str | None:
        value = self.text(data, key, path)
        if value is not None and not SLUG_RE.fullmatch(value):
            self.problem(path, f"{value!r} must be a lower-case ASCII slug (a-z, 0-9, '-', '_')")
            return None
        return value

    def integer(
        self, data: Mapping[str, object], key: str, path: str, low: int, high: int
    ) -> int | None:
        value = data.get(key, MISSING)
        if value is MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(path, f"must be an integer, got {type_name(value)}")
            return None
        if value < 0 <= low:
            self.problem(path, f"must not be negative, got {value}")
            return None
        if not low <= value <= high:
            self.problem(path, f"must be between {low} and {high}, got {value}")
            return None
        return value

    def boolean(self, data: Mapping[str, object], key: str, path: str) -> bool | None:
        value = data.get(key, MISSING)
        if value is MISSING:
            return None
        if not isinstance(value, bool):
            self.problem(path, f"must be true or false, got {type_name(value)}")
            return None
        return value

    def day(self, data: Mapping[str, object], key: str, path: str) -> date | None:
        value = data.get(key, MISSING)
        if value is MISSING:
            return None
        if isinstance(value, str):
            try:
                if not ISO_DATE_RE.fullmatch(value):
                    raise ValueError(value)
                return date.fromisoformat(value)
            except ValueError:
                self.problem(path, f"must be a date YYYY-MM-DD, got {value!r}")
                return None
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        self.problem(path, f"must be a date (YYYY-MM-DD, no time), got {type_name(value)}")
        return None

    def choice(self, data: Mapping[str, object], key: str, path: str, enum: type[E]) -> E | None:
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
        value = data.get(key, MISSING)
        if value is MISSING:
            return None
        if not isinstance(value, list | tuple):
            self.problem(path, f"must be an array of district codes, got {type_name(value)}")
            return None
        if not value:
            self.problem(path, "must name at least one district")
            return None
        out: set[str] = set()
        ok = True
        for i, item in enumerate(value):
            item_path = f"{path}[{i}]"
            if not isinstance(item, str):
                self.problem(item_path, f"must be a string, got {type_name(item)}")
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

    def array(self, data: Mapping[str, object], key: str, path: str) -> list[object] | None:
        """The array at ``key`` (None, with a problem, if it is not an array)."""
        value = data.get(key, MISSING)
        if value is MISSING:
            return None
        if not isinstance(value, list | tuple):
            self.problem(path, f"must be an array, got {type_name(value)}")
            return None
        return list(value)

    def choices(
        self, data: Mapping[str, object], key: str, path: str, enum: type[E]
    ) -> frozenset[E] | None:
        """An array of distinct values of ``enum`` (may be empty)."""
        items = self.array(data, key, path)
        if items is None:
            return None
        out: set[E] = set()
        ok = True
        for i, item in enumerate(items):
            value = self.choice({key: item}, key, f"{path}[{i}]", enum)
            if value is None:
                ok = False
            elif value in out:
                self.problem(f"{path}[{i}]", f"duplicate {value.value!r}")
                ok = False
            else:
                out.add(value)
        return frozenset(out) if ok else None

    def days(self, data: Mapping[str, object], key: str, path: str) -> frozenset[date] | None:
        """An array of distinct dates (may be empty)."""
        items = self.array(data, key, path)
        if items is None:
            return None
        out: set[date] = set()
        ok = True
        for i, item in enumerate(items):
            value = self.day({key: item}, key, f"{path}[{i}]")
            if value is None:
                ok = False
            elif value in out:
                self.problem(f"{path}[{i}]", f"duplicate date {value}")
                ok = False
            else:
                out.add(value)
        return frozenset(out) if ok else None


def raise_problems(r: Reader) -> NoReturn:
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
