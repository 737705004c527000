"""Money is an integer number of fen (1 元 = 100 fen); a float never holds money.

Parsing is strict: a JSON ``12.5`` or ``"1250"`` is refused as an amount in fen, and
yuan text is converted by string operations only.
"""

from __future__ import annotations

import re

from shared.errors import InvalidAmount

Fen = int
"""An amount of money in fen. A plain ``int`` alias, for readability."""

FEN_PER_YUAN = 100
MAX_AMOUNT_FEN: Fen = 10**12
"""The largest amount accepted anywhere (10 billion 元); guards against absurd input."""

_YUAN_RE = re.compile(r"([0-9]+)(?:\.([0-9]{1,2}))?", re.ASCII)


def yuan(n: int) -> Fen:
    """``n`` whole 元 in fen: ``yuan(200) == 20000``."""
    return n * FEN_PER_YUAN


def parse_fen(value: object, *, positive: bool = False, field: str = "amount") -> Fen:
    """Validate an amount in fen: a real ``int`` (not bool/float/str), 0 <= v <= MAX_AMOUNT_FEN.

    ``positive=True`` also refuses 0. Raises ``InvalidAmount`` naming ``field``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmount(
            f"{field} must be a whole number of fen (an integer), got {type(value).__name__}",
            field=field,
        )
    if value < 0:
        raise InvalidAmount(f"{field} must not be negative", field=field)
    if positive and value == 0:
        raise InvalidAmount(f"{field} must be greater than zero", field=field)
    if value > MAX_AMOUNT_FEN:
        raise InvalidAmount(f"{field} exceeds the maximum of {MAX_AMOUNT_FEN} fen", field=field)
    return value


def parse_yuan(text: str, *, positive: bool = False, field: str = "amount") -> Fen:
    """Parse yuan text ("123", "123.4", "123.45") into fen, exactly, without floats.

    Accepted: ASCII digits, optionally '.' and one or two decimals; surrounding whitespace
    is ignored. Refused: signs, exponents, thousands separators, full-width digits, more
    than two decimals, empty text. Raises ``InvalidAmount``.
    """
    if not isinstance(text, str):
        raise InvalidAmount(f"{field} must be text, got {type(text).__name__}", field=field)
    m = _YUAN_RE.fullmatch(text.strip())
    if m is None:
        raise InvalidAmount(
            f"{field} must be an amount in 元 like 123 or 123.45 (digits, at most 2 decimals)",
            field=field,
        )
    whole, frac = m.group(1), m.group(2) or ""
    if len(whole) > 15:
        raise InvalidAmount(f"{field} exceeds the maximum of {MAX_AMOUNT_FEN} fen", field=field)
    fen = int(whole) * FEN_PER_YUAN + int(frac.ljust(2, "0"))
    return parse_fen(fen, positive=positive, field=field)


def format_yuan(fen: int, *, thousands: bool = False) -> str:
    """Format fen as 元 with exactly two decimals: 12345 -> "123.45", 5 -> "0.05".

    ``thousands=True`` groups the whole part: 123456789 -> "1,234,567.89".
    """
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise InvalidAmount(f"amount must be an integer number of fen, got {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    whole_text = f"{whole:,}" if thousands else str(whole)
    return f"{sign}{whole_text}.{cents:02d}"
