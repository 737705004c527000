"""The citizen's dynamic QR token (rule U5) and the signed tokens around it.

A QR token is a compact JWS (ES256) with a ``kid`` header naming the signing key (so keys can
rotate), a type (``typ``), an issuer, an audience, a lifetime of at most the campaign's TTL
(60 s), a random UUID ``jti`` (single use: the server records it when it redeems) and a
pseudonymous subject — never the ID number (rule X3).

Pure: the time is a parameter. pyjwt signs and its ES256 algorithm checks signatures; we check
times ourselves against the ``now`` we are given, so tests and replays of history need no
clock tricks.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from shared.errors import TokenExpired, TokenInvalid

QR_TOKEN_TYPE = "vq+jwt"  # noqa: S105 - a JWT "typ", not a secret
QR_ALGORITHM = "ES256"
MAX_QR_TTL_SECONDS = 60
# Clocks of phones and servers drift a little; a token "issued" up to this far ahead is fine.
CLOCK_SKEW = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An EC P-256 private key with its key id."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, kid: str) -> SigningKey:
        """A new random key (for the demo and tests; production loads PEM files)."""
        return cls(kid, ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, kid: str, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError(f"key {kid!r} is not an EC P-256 private key")
        return cls(kid, key)

    def public(self) -> VerifyingKey:
        return VerifyingKey(self.kid, self.private_key.public_key())

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    kid: str
    public_key: ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class QrClaims:
    """What a verified QR token says."""

    subject: str
    jti: str
    issued_at: datetime
    expires_at: datetime


def issue_qr_token(
    *,
    key: SigningKey,
    subject: str,
    issuer: str,
    audience: str,
    now: datetime,
    ttl_seconds: int = MAX_QR_TTL_SECONDS,
    jti: str | None = None,
) -> tuple[str, QrClaims]:
    """Rule U5: sign a short-lived, single-use token bound to the holder's pseudonym."""
    if not 0 < ttl_seconds <= MAX_QR_TTL_SECONDS:
        raise ValueError(f"a QR token lives 1..{MAX_QR_TTL_SECONDS} s, not {ttl_seconds}")
    _require_aware(now)
    issued = now.astimezone(UTC).replace(microsecond=0)
    claims = QrClaims(
        subject=subject,
        jti=jti or str(uuid.uuid4()),
        issued_at=issued,
        expires_at=issued + timedelta(seconds=ttl_seconds),
    )
    payload = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "jti": claims.jti,
        "iat": int(claims.issued_at.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
    }
    token = jwt.encode(
        payload,
        key.private_key,
        algorithm=QR_ALGORITHM,
        headers={"kid": key.kid, "typ": QR_TOKEN_TYPE},
    )
    return token, claims


def verify_qr_token(
    token: str,
    *,
    keys: Mapping[str, VerifyingKey],
    issuer: str,
    audience: str,
    now: datetime,
) -> QrClaims:
    """Rule U5: refuse a forged, foreign-key, wrongly typed, expired or over-long token.

    Raises ``TokenInvalid`` or ``TokenExpired``; replay is for the caller to check (it needs
    the ledger).
    """
    return check_qr_times(decode_qr_token(token, keys=keys, issuer=issuer, audience=audience), now)


def decode_qr_token(
    token: str, *, keys: Mapping[str, VerifyingKey], issuer: str, audience: str
) -> QrClaims:
    """Rule U5, the timeless half: signature, key, type, issuer, audience, claims' shape and
    lifetime. The result depends on the token alone, so a caller may remember it.

    This runs for every bill at every till, so it reads the compact JWS itself (strict
    base64url by a regular expression, the JSON by the standard library) instead of through
    ``jwt.decode``, whose pure-Python character checks cost more than the signature; the
    signature is still checked by pyjwt's ES256 algorithm over ``cryptography``. Only one
    algorithm, one type and known key ids are accepted, so ``alg`` games have nowhere to go.
    """
    if not isinstance(token, str) or not 0 < len(token) <= 2048:
        raise TokenInvalid("the QR code is not a voucher code", reason="format")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid("the QR code is not a voucher code", reason="format")
    header_b64, payload_b64, signature_b64 = parts
    header = _json_segment(header_b64)
    if (
        header.get("typ") != QR_TOKEN_TYPE
        or header.get("alg") != QR_ALGORITHM
        or "crit" in header  # no extensions are understood, so none may be required
    ):
        raise TokenInvalid("the QR code is not a voucher code", reason="type")
    kid = header.get("kid")
    verifying = keys.get(kid) if isinstance(kid, str) else None
    if verifying is None:
        raise TokenInvalid("the QR code was not signed by this programme", reason="unknown_key")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    if not _ES256.verify(signing_input, verifying.public_key, _segment(signature_b64)):
        raise TokenInvalid("the QR code's signature is not valid", reason="signature")
    payload = _json_segment(payload_b64)
    aud = payload.get("aud")
    if payload.get("iss") != issuer or not (
        aud == audience or (isinstance(aud, list) and audience in aud)
    ):
        raise TokenInvalid("the QR code is not a voucher code", reason="claims")
    subject, jti, iat, exp = (payload.get(k) for k in ("sub", "jti", "iat", "exp"))
    if not (
        isinstance(subject, str)
        and isinstance(jti, str)
        and _is_uuid(jti)
        and type(iat) is int
        and type(exp) is int
    ):
        raise TokenInvalid("the QR code is not a voucher code", reason="claims")
    if not 0 < exp - iat <= MAX_QR_TTL_SECONDS:
        raise TokenInvalid("the QR code's lifetime is not allowed", reason="lifetime")
    try:
        issued_at = datetime.fromtimestamp(iat, UTC)
        expires_at = datetime.fromtimestamp(exp, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise TokenInvalid("the QR code is not a voucher code", reason="claims") from exc
    return QrClaims(subject=subject, jti=jti, issued_at=issued_at, expires_at=expires_at)


_ES256 = ECAlgorithm(ECAlgorithm.SHA256)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def _segment(text: str) -> bytes:
    """One base64url part of a compact JWS (RFC 7515: no padding, nothing else allowed)."""
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise TokenInvalid("the QR code is not a voucher code", reason="format")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_segment(text: str) -> dict[str, Any]:
    try:
        value = json.loads(_segment(text))
    except ValueError as exc:  # also UnicodeDecodeError
        raise TokenInvalid("the QR code is not a voucher code", reason="format") from exc
    if not isinstance(value, dict):
        raise TokenInvalid("the QR code is not a voucher code", reason="format")
    return value


def check_qr_times(claims: QrClaims, now: datetime) -> QrClaims:
    """Rule U5, the timed half: not issued in the future, not expired at ``now``."""
    _require_aware(now)
    if claims.issued_at > now + CLOCK_SKEW:
        raise TokenInvalid("the QR code is from the future", reason="not_yet_valid")
    if now >= claims.expires_at:
        raise TokenExpired("the QR code has expired; ask the citizen to refresh it")
    return claims


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
