"""The citizen's dynamic QR code (rule U5): short, signed, short-lived, single-use, bound to
its holder.

The code (issue 11 item 2) is 52 characters of QR alphanumeric mode (digits and upper-case
letters), so it fits QR version 3 at error correction M, and a keyboard-wedge scanner types
it in one short burst::

    VQ 1 K <48 characters: base32hex (RFC 4648 section 7: 0-9 A-V, no padding) of 30 bytes>
    |  | |   issued  u32  seconds since 1970 (UTC), when the server minted it
    |  | |   ttl     u8   its lifetime in seconds, 1-60 (the campaigns' qr_token_ttl_seconds)
    |  | |   nonce   5    random bytes
    |  | |   holder  8    the citizen's row id (u64) XOR HMAC(mask key, VQ1K|issued|ttl|nonce)
    |  | |   mac     12   HMAC-SHA256(MAC key, VQ1K|issued|ttl|nonce|holder), first 96 bits
    |  | key id: one base32hex character naming the server's key (keys rotate)
    | format version
    prefix: "VQ" (voucher QR), so tills and scanners tell it from other codes

The server mints it (``POST /v1/wallet/qr``, throttled per citizen) and verifies it with no
database read: two HMACs and a hash, a few µs (docs/BENCHMARKS.md). Its id (``jti``, what
Redis and the ledger's ``consumed_tokens`` record when it is used) is a hash of its signed
content, so a code is used once whatever its letters' case. The holder is the citizen's
internal row id, never the ID number (rule X3), and masked under the key: a code says
nothing about who holds it to anyone but the server, and two codes of one citizen cannot be
linked to each other without the key.

Why server-minted and not a TOTP-like code from a seed on the phone: the wallet is a web page,
with no key store to keep a seed out of reach of an injected script or a copied browser
profile; the till must be online to redeem anyway, so a phone without network gains little;
a time-step code is the same for every scan within its step (single use would then allow one
bill per step) and is trusted over a window of steps; and a seed per device needs enrolment,
a seed store the verifier reads, and revocation. A code minted per request, on the servers'
clock, needs none of that.

Threat model. *A stolen screenshot or photo* of a code can be redeemed by whoever gets to a
till first, once, within the code's remaining lifetime (at most 60 s): the first redemption
marks it used (Redis, then the ledger's ``consumed_tokens`` as the fence), so it is worth at
most one bill of the holder's, and the wallet page shows that redemption within a second.
*A stolen key* lets its holder mint codes for every citizen: the keys live only in the
servers' secrets files (0600; never in the database, logs or answers), are named by a
one-character id, and rotate: the first configured key signs, the previous one still verifies
until its codes have expired (60 s), and a key that is dropped makes every code under it an
old code at once. *A guessing till* (or anyone with a terminal's credential) must get a
96-bit MAC right for a citizen it names: each guess succeeds with probability 2^-96; even a
million guesses a second for ten years (far beyond what a server answers; every refused
redemption is counted in ``voucher_redemptions_total{outcome="token_invalid"}``) succeed with
probability below 10^-14, and the terminal's credential can be revoked (rule X1).

Pure: the time is a parameter; only ``issue_qr_token`` draws randomness (the nonce), unless
it is given one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.errors import TokenExpired, TokenInvalid

QR_CODE_PREFIX = "VQ"
QR_CODE_VERSION = "1"
# base32hex, the code's alphabet; one of its characters names a key. Python's int() reads it
# in C (``int(text, 32)``), where base64.b32decode is pure Python and 20 times slower.
BASE32HEX = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
KEY_IDS = BASE32HEX
QR_CODE_LENGTH = 52
MAX_QR_TTL_SECONDS = 60
MIN_KEY_BYTES = 32
NONCE_BYTES = 5
MAC_BYTES = 12  # 96 bits
# Clocks of servers drift a little; a code "issued" up to this far ahead is fine.
CLOCK_SKEW = timedelta(seconds=5)

# What tills recognise as our code (terminal/scanning.py), any case (a scanner whose host
# has Caps Lock on types it in lower case).
QR_CODE_SHAPE = re.compile(f"{QR_CODE_PREFIX}[0-9][{BASE32HEX}]{{49}}", re.IGNORECASE | re.ASCII)
# Today's code before issue 11: a compact JWS (``{"`` in base64url is ``eyJ``), 383 characters.
OLD_QR_CODE_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", re.ASCII)

_HEAD = 4  # "VQ1" and the key id
_SIGNED = 4 + 1 + NONCE_BYTES + 8  # issued, ttl, nonce, masked holder
_MASKED_AT = 4 + 1 + NONCE_BYTES


@dataclass(frozen=True, slots=True)
class QrKey:
    """A secret key of the citizen's codes, named by one base32hex character. Two keys are
    derived from it, one for the MAC and one for the holder's mask."""

    kid: str
    secret: bytes = field(repr=False)
    # keyed once: a copy per use spares hashing the key's pads each time (a third of an HMAC)
    _mac: hmac.HMAC = field(init=False, repr=False, compare=False)
    _mask: hmac.HMAC = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.kid) != 1 or self.kid not in KEY_IDS:
            raise ValueError(f"a QR key id is one character of {KEY_IDS}, not {self.kid!r}")
        if len(self.secret) < MIN_KEY_BYTES:
            raise ValueError(f"QR key {self.kid}: at least {MIN_KEY_BYTES} bytes are needed")
        for name, label in (("_mac", b"vq1 code mac"), ("_mask", b"vq1 holder mask")):
            derived = hmac.digest(self.secret, label, "sha256")
            object.__setattr__(self, name, hmac.new(derived, digestmod=hashlib.sha256))

    def mac(self, message: bytes) -> bytes:
        """The code's MAC of ``message``: HMAC-SHA256 under the MAC key, first 96 bits."""
        return _hmac(self._mac, message)[:MAC_BYTES]

    def mask(self, message: bytes) -> int:
        """The holder's mask for ``message`` (the code's issue time and nonce): unique per
        code, secret without the key."""
        return int.from_bytes(_hmac(self._mask, message)[:8], "big")

    @classmethod
    def generate(cls, kid: str) -> QrKey:
        """A new random key (the demo's first start, tests)."""
        return cls(kid, secrets.token_bytes(MIN_KEY_BYTES))


@dataclass(frozen=True, slots=True)
class QrClaims:
    """What a verified QR code says."""

    holder: int  # the citizen's row id
    jti: uuid.UUID  # the code's id: recorded when it is used (single use)
    kid: str
    issued_at: datetime
    expires_at: datetime


def issue_qr_token(
    *,
    key: QrKey,
    holder: int,
    now: datetime,
    ttl_seconds: int = MAX_QR_TTL_SECONDS,
    nonce: bytes | None = None,
) -> tuple[str, QrClaims]:
    """Rule U5: a short-lived, single-use code bound to the citizen ``holder``."""
    if not 0 < ttl_seconds <= MAX_QR_TTL_SECONDS:
        raise ValueError(f"a QR code lives 1..{MAX_QR_TTL_SECONDS} s, not {ttl_seconds}")
    if not 0 < holder < 2**64:
        raise ValueError(f"a holder is a citizen's row id, not {holder}")
    _require_aware(now)
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"a nonce is {NONCE_BYTES} bytes")
    head = f"{QR_CODE_PREFIX}{QR_CODE_VERSION}{key.kid}".encode("ascii")
    issued = int(now.timestamp())
    clear = issued.to_bytes(4, "big") + ttl_seconds.to_bytes(1, "big") + nonce
    signed = clear + (holder ^ key.mask(head + clear)).to_bytes(8, "big")
    code = head.decode("ascii") + base64.b32hexencode(signed + key.mac(head + signed)).decode()
    return code, _claims(holder, key.kid, head, signed, issued, ttl_seconds)


def verify_qr_token(token: str, *, keys: Mapping[str, QrKey], now: datetime) -> QrClaims:
    """Rule U5: refuse a forged, foreign-key, malformed, expired or over-long code.

    Raises ``TokenInvalid`` or ``TokenExpired``; replay is for the caller to check (it needs
    Redis and the ledger).
    """
    return check_qr_times(decode_qr_token(token, keys=keys), now)


def decode_qr_token(token: str, *, keys: Mapping[str, QrKey]) -> QrClaims:
    """Rule U5, the timeless half: shape, key, MAC, lifetime. The result depends on the code
    alone. A code of the former kind (a compact JWS) is refused as expired, ``old_format``:
    for the cashier and the citizen it is an old code, to be refreshed (issue 11 item 8)."""
    if not isinstance(token, str) or not QR_CODE_SHAPE.fullmatch(token):
        if isinstance(token, str) and len(token) <= 4096 and OLD_QR_CODE_SHAPE.fullmatch(token):
            raise TokenExpired(
                "the QR code is of the former kind; ask the citizen to refresh it",
                reason="old_format",
            )
        raise TokenInvalid("the QR code is not a voucher code", reason="format")
    code = token.upper()
    if code[2] != QR_CODE_VERSION:
        raise TokenInvalid(
            "the QR code is of a version this server does not read", reason="version"
        )
    key = keys.get(code[3])
    if key is None:
        raise TokenInvalid("the QR code was not signed by this programme", reason="unknown_key")
    head = code[:_HEAD].encode("ascii")
    raw = int(code[_HEAD:], 32).to_bytes(_SIGNED + MAC_BYTES, "big")  # 48 digits: checked
    signed, mac = raw[:_SIGNED], raw[_SIGNED:]
    if not hmac.compare_digest(mac, key.mac(head + signed)):
        raise TokenInvalid("the QR code's signature is not valid", reason="signature")
    issued = int.from_bytes(signed[:4], "big")
    ttl = signed[4]
    if not 0 < ttl <= MAX_QR_TTL_SECONDS:
        raise TokenInvalid("the QR code's lifetime is not allowed", reason="lifetime")
    holder = int.from_bytes(signed[_MASKED_AT:], "big") ^ key.mask(head + signed[:_MASKED_AT])
    if holder == 0:
        raise TokenInvalid("the QR code names no citizen", reason="claims")
    return _claims(holder, key.kid, head, signed, issued, ttl)


def check_qr_times(claims: QrClaims, now: datetime) -> QrClaims:
    """Rule U5, the timed half: not issued in the future, not expired at ``now``."""
    _require_aware(now)
    if claims.issued_at > now + CLOCK_SKEW:
        raise TokenInvalid("the QR code is from the future", reason="not_yet_valid")
    if now >= claims.expires_at:
        raise TokenExpired("the QR code has expired; ask the citizen to refresh it")
    return claims


def _claims(holder: int, kid: str, head: bytes, signed: bytes, issued: int, ttl: int) -> QrClaims:
    return QrClaims(
        holder=holder,
        jti=uuid.UUID(bytes=hashlib.sha256(head + signed).digest()[:16]),
        kid=kid,
        issued_at=datetime.fromtimestamp(issued, UTC),
        expires_at=datetime.fromtimestamp(issued + ttl, UTC),  # half a timedelta's cost
    )


def _hmac(keyed: hmac.HMAC, message: bytes) -> bytes:
    mac = keyed.copy()
    mac.update(message)
    return mac.digest()


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
