"""Resident ID numbers (居民身份证号码), GB 11643-1999 — rules E1 and X3.

Layout: 6-digit region code, 8-digit birth date YYYYMMDD, 3-digit sequence, check character
(ISO 7064 MOD 11-2, '0'-'9' or 'X'). A full number never goes into a message or log:
store ``hash_id_number`` plus ``mask_id_number`` (rule X3).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

from shared.errors import InvalidIdNumber, InvalidRequest

ID_LENGTH = 18
WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
"""Check character for (sum of weighted digits) mod 11 = 0..10."""

PROVINCE_CODES: frozenset[str] = frozenset(
    [str(n) for n in range(11, 16)]
    + [str(n) for n in range(21, 24)]
    + [str(n) for n in range(31, 38)]
    + [str(n) for n in range(41, 47)]
    + [str(n) for n in range(50, 55)]
    + [str(n) for n in range(61, 66)]
    + ["71", "81", "82", "83"]
)
"""First two digits of a valid number: the province-level divisions of GB/T 2260."""

EARLIEST_BIRTH = date(1900, 1, 1)
_DIGITS = frozenset("0123456789")


def check_char(first17: str) -> str:
    """Rule E1: the ISO 7064 MOD 11-2 check character of the first 17 digits."""
    if len(first17) != 17 or not set(first17) <= _DIGITS:
        raise InvalidIdNumber("need exactly 17 ASCII digits", reason="characters")
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def _invalid(reason: str, message: str) -> InvalidIdNumber:
    return InvalidIdNumber(f"Invalid ID number: {message}", reason=reason)


def validate_id_number(raw: str, today: date) -> str:
    """Rule E1: validate a resident ID number and return it normalised (upper-case 'X').

    Checks in order, each failing with ``InvalidIdNumber`` whose ``details["reason"]`` is:
    ``length`` (not 18 characters), ``characters`` (first 17 not ASCII digits or last not a
    digit/X), ``region`` (unknown province code), ``birth_date`` (not a real date, before
    1900-01-01 or after ``today``), ``checksum`` (MOD 11-2 check fails). Surrounding
    whitespace is ignored. The number itself never appears in the error.
    """
    if not isinstance(raw, str):
        raise _invalid("characters", "must be text")
    n = raw.strip().upper()
    if len(n) != ID_LENGTH:
        raise _invalid("length", f"must be {ID_LENGTH} characters, got {len(n)}")
    if not set(n[:17]) <= _DIGITS or n[17] not in "0123456789X":
        raise _invalid("characters", "the first 17 must be digits and the last a digit or X")
    if n[:2] not in PROVINCE_CODES:
        raise _invalid("region", "the region code is not a known province")
    try:
        born = date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
    except ValueError:
        raise _invalid("birth_date", "the birth date is not a real date") from None
    if born < EARLIEST_BIRTH or born > today:
        raise _invalid("birth_date", "the birth date is out of range")
    if check_char(n[:17]) != n[17]:
        raise _invalid("checksum", "the check digit does not match")
    return n


def is_valid_id_number(raw: str, today: date) -> bool:
    """Rule E1: True if ``validate_id_number`` accepts ``raw``."""
    try:
        validate_id_number(raw, today)
    except InvalidIdNumber:
        return False
    return True


def birth_date(n: str) -> date:
    """The birth date encoded in digits 7-14 of a (validated) ID number."""
    s = n.strip()
    try:
        return date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise _invalid("birth_date", "the birth date is not a real date") from None


def mask_id_number(n: str) -> str:
    """Rule X3: the displayable masked form, first 4 + 10 stars + last 4 ("3715**********1234")."""
    s = n.strip().upper()
    if len(s) != ID_LENGTH:
        raise _invalid("length", f"must be {ID_LENGTH} characters, got {len(s)}")
    return s[:4] + "*" * 10 + s[-4:]


def hash_id_number(n: str, key: bytes) -> bytes:
    """Rule X3: the keyed hash (HMAC-SHA256) under which an ID number is stored and compared.

    The number is normalised first (whitespace stripped, 'x' upper-cased) so both spellings
    hash alike. ``key`` is the server's secret pepper and must not be empty.
    """
    if not key:
        raise InvalidRequest("the ID hashing key must not be empty")
    return hmac.new(key, n.strip().upper().encode("ascii", "replace"), hashlib.sha256).digest()


def make_id_number(region6: str, birth: date, seq3: str) -> str:
    """Build a valid number from a 6-digit region, a birth date and a 3-digit sequence.

    Computes the rule E1 check character. For tests and seed data.
    """
    if len(region6) != 6 or len(seq3) != 3:
        raise InvalidRequest("region6 must have 6 digits and seq3 3 digits")
    first17 = f"{region6}{birth:%Y%m%d}{seq3}"
    return first17 + check_char(first17)
