"""Telling a scan from a person typing (issue 11 item 1), without Textual.

A keyboard-wedge scanner types a code as a burst of keys, a few milliseconds apart, and
ends it with a suffix key (Enter, by default); many can add a prefix. A person is slower
than ``gap_ms`` between two keys. ``ScanGate`` is fed every key with the moment it was
typed (the driver's time stamp, not the moment it is handled, so a busy machine cannot
turn a scan into typing) and holds back a run of fast keys until it knows what the run
is: a scan (one ``Scanned`` with the code) or typing (the same keys, in the same order,
as ``Typed``). Nothing is dropped and nothing is merged: every key fed comes out exactly
once, as itself or as part of one scan.

A run is a scan when it ends with the suffix and
- it holds the configured prefix (what comes before the prefix was typed by a person), or
- it ends with something shaped like our code (``VOUCHER_CODE_SHAPES``; what comes before
  it was typed by a person a few milliseconds before the scanner started), or
- it is at least ``min_length`` keys long (no person types that fast for that long).
Without a suffix (``suffix=""``) a run is a scan when the scanner goes quiet and the run
holds the prefix or is at least ``min_length`` keys; with a suffix, a run that goes quiet
is still a scan when it holds the prefix or has our code's shape.

``classify_scan`` names what was scanned, so each kind gets its own words (item 8); a code
of the former kind (a 383-character compact JWS) is named an old code, to be refreshed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from shared.tokens import OLD_QR_CODE_SHAPE, QR_CODE_SHAPE

K = TypeVar("K")

SUFFIX_KEYS = ("enter", "tab", "")
ScanKind = Literal["voucher", "old_voucher", "product", "payment", "text"]

# Our code's shapes (shared/tokens.py), anchored at the end of a run: today's 52-character
# ``VQ1…`` code (issue 11 item 2), and the former compact JWS, still recognised as a scan so it
# never lands in a field, and named an old code.
VOUCHER_CODE_SHAPES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(shape.pattern + r"\Z", shape.flags) for shape in (QR_CODE_SHAPE, OLD_QR_CODE_SHAPE)
)
_PRODUCT = re.compile(r"[0-9]{8}|[0-9]{12,14}")  # EAN-8, UPC-A, EAN-13, GTIN-14
# WeChat Pay 付款码: 18 digits from 10-15; Alipay: 16-24 digits from 25-30
_WECHAT = re.compile(r"1[0-5][0-9]{16}")
_ALIPAY = re.compile(r"(2[5-9]|30)[0-9]{14,22}")


@dataclass(frozen=True, slots=True)
class ScannerSettings:
    """How this till's scanner types (docs/TERMINAL.md, "Scanner set-up")."""

    gap_ms: int = 30
    """Keys closer than this belong to one burst. Scanners type a key every 2-5 ms (some
    Bluetooth ones 10-20 ms); people rarely go below 60 ms."""
    prefix: str = ""
    """Characters the scanner sends before each code (optional)."""
    suffix: str = "enter"
    """The key the scanner sends after each code: ``enter``, ``tab``, or ``""`` (none)."""
    min_length: int = 8
    """A fast burst at least this long is a scan whatever its shape (EAN-8 is 8)."""


def gtin_check_ok(digits: str) -> bool:
    """The GS1 check digit of EAN-8/UPC-A/EAN-13/GTIN-14."""
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def looks_like_voucher_code(text: str) -> bool:
    return any(shape.fullmatch(text) for shape in VOUCHER_CODE_SHAPES)


def voucher_code_start(text: str) -> int | None:
    """Where a code of our shape that ends ``text`` begins, or None."""
    starts = [m.start() for shape in VOUCHER_CODE_SHAPES if (m := shape.search(text))]
    return min(starts) if starts else None


def classify_scan(text: str) -> ScanKind:
    """What a scan is: our voucher code, our code of the former kind (expired for good), a
    product barcode, a WeChat/Alipay 付款码, or text (anything else: a URL, a receipt
    number...)."""
    code = text.strip()
    if QR_CODE_SHAPE.fullmatch(code):
        return "voucher"
    if OLD_QR_CODE_SHAPE.fullmatch(code):
        return "old_voucher"
    if _WECHAT.fullmatch(code) or _ALIPAY.fullmatch(code):
        return "payment"
    if _PRODUCT.fullmatch(code) and gtin_check_ok(code):
        return "product"
    return "text"


@dataclass(frozen=True, slots=True)
class Typed(Generic[K]):
    """A key a person typed: deliver it where the focus is."""

    key: K


@dataclass(frozen=True, slots=True)
class Scanned:
    """A whole scan, prefix and suffix taken off: send it to checkout."""

    text: str


Out = Typed[K] | Scanned


@dataclass(slots=True)
class _Held(Generic[K]):
    item: K
    char: str
    at: float


class ScanGate(Generic[K]):
    """Feed keys in the order they were typed; get back what to deliver, in order."""

    def __init__(self, settings: ScannerSettings | None = None) -> None:
        self.settings = settings or ScannerSettings()
        self.held: list[_Held[K]] = []

    @property
    def gap(self) -> float:
        return self.settings.gap_ms / 1000

    def due(self) -> float | None:
        """When ``quiet`` should be called (the held run ends if nothing comes by then)."""
        return self.held[-1].at + self.gap if self.held else None

    def feed(self, item: K, key: str, char: str | None, at: float) -> list[Out[K]]:
        out: list[Out[K]] = []
        if self.held and at - self.held[-1].at > self.gap:
            out += self._release(quiet=True)  # the run ended before this key
        suffix = self.settings.suffix
        if suffix and key == suffix:
            if self.held:
                scan = self._scan_in(self._text(), ended=True)
                if scan is not None:
                    start, text = scan
                    out += [Typed(h.item) for h in self.held[:start]]
                    out.append(Scanned(text))
                    self.held.clear()
                    return out  # the suffix belongs to the scan
            out += self._release(quiet=False)
            out.append(Typed(item))
            return out
        if (
            char is not None
            and len(char) == 1
            and (char.isprintable() or char in self.settings.prefix)
        ):
            self.held.append(_Held(item, char, at))
            return out
        out += self._release(quiet=False)
        out.append(Typed(item))
        return out

    def quiet(self, now: float) -> list[Out[K]]:
        """Called at ``due()``: release the run if nothing came within the gap."""
        due = self.due()
        if due is None or now < due:
            return []
        return self._release(quiet=True)

    def _text(self) -> str:
        return "".join(h.char for h in self.held)

    def _scan_in(self, text: str, *, ended: bool) -> tuple[int, str] | None:
        """(index of the run's first scanned key, the code) or None if the run is typing."""
        s = self.settings
        if s.prefix:
            at = text.find(s.prefix)
            if at >= 0 and len(text) > at + len(s.prefix):
                return at, text[at + len(s.prefix) :]
        start = voucher_code_start(text)
        if start is not None:
            return start, text[start:]
        if (ended or not s.suffix) and len(text) >= s.min_length:
            return 0, text
        return None

    def _release(self, *, quiet: bool) -> list[Out[K]]:
        """The held run, as a scan when it went quiet and is one, else as typing."""
        if not self.held:
            return []
        out: list[Out[K]] = []
        scan = self._scan_in(self._text(), ended=False) if quiet else None
        if scan is not None:
            start, text = scan
            out += [Typed(h.item) for h in self.held[:start]]
            out.append(Scanned(text))
        else:
            out += [Typed(h.item) for h in self.held]
        self.held.clear()
        return out
