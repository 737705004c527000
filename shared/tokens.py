"""The citizen's dynamic QR token (rule U5) and the signed tokens around it.

A QR token is a compact JWS (ES256) with a ``kid`` header naming the signing key (so keys can
rotate), a type (``typ``), an issuer, an audience, a lifetime of at most the campaign's TTL
(60 s), a random UUID ``jti`` (single use: the server records it when it redeems) and a
pseudonymous subject — never the ID number (rule X3).

Pure: the time is a parameter. pyjwt checks signatures; we check times ourselves against the
``now`` we are given, so tests and replays of history need no clock tricks.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

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
    lifetime. The result depends on the token alone, so a caller may remember it."""
    if not isinstance(token, str) or not 0 < len(token) <= 2048:
        raise TokenInvalid("the QR code is not a voucher code", reason="format")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenInvalid("the QR code is not a voucher code", reason="format") from exc
    if header.get("typ") != QR_TOKEN_TYPE or header.get("alg") != QR_ALGORITHM:
        raise TokenInvalid("the QR code is not a voucher code", reason="type")
    kid = header.get("kid")
    verifying = keys.get(kid) if isinstance(kid, str) else None
    if verifying is None:
        raise TokenInvalid("the QR code was not signed by this programme", reason="unknown_key")
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            verifying.public_key,
            algorithms=[QR_ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={
                "verify_exp": False,  # checked below against `now`, not the wall clock
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["iss", "aud", "sub", "jti", "iat", "exp"],
            },
        )
    except jwt.InvalidSignatureError as exc:
        raise TokenInvalid("the QR code's signature is not valid", reason="signature") from exc
    except jwt.PyJWTError as exc:
        raise TokenInvalid("the QR code is not a voucher code", reason="claims") from exc
    subject, jti, iat, exp = payload["sub"], payload["jti"], payload["iat"], payload["exp"]
    if not (
        isinstance(subject, str)
        and isinstance(jti, str)
        and _is_uuid(jti)
        and type(iat) is int
        and type(exp) is int
    ):
        raise TokenInvalid("the QR code is not a voucher code", reason="claims")
    issued_at = datetime.fromtimestamp(iat, UTC)
    expires_at = datetime.fromtimestamp(exp, UTC)
    if not 0 < exp - iat <= MAX_QR_TTL_SECONDS:
        raise TokenInvalid("the QR code's lifetime is not allowed", reason="lifetime")
    return QrClaims(subject=subject, jti=jti, issued_at=issued_at, expires_at=expires_at)


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
