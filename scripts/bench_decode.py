"""What the edge and the till decode per bill, timed in this process (no server).

1. One redeem body: msgspec (``server.web.decode_body`` with the ``RedeemRequest`` Struct, as
   the edge does it) against ``json.loads`` followed by the hand checks the handler made
   before (issue 9).
2. The citizen's QR code, verified: today's 52-character code (``shared.tokens``: two HMACs
   and a hash, issue 11 item 2) against the 383-character ES256 compact JWS it replaced,
   verified as ``shared/tokens.py`` did at commit efd3160 (strict base64url, JSON, pyjwt's
   ES256 over ``cryptography``, the claims' checks) and as ``jwt.decode`` does.

Prints the best of five runs per item (ns per body, µs per code).

    PYTHONPATH=$PWD .venv/bin/python scripts/bench_decode.py [--number 200000] [--only body|qr]
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import timeit
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from server.schemas import RedeemRequest
from server.web import decode_body, struct_fields
from shared.money import parse_fen
from shared.rules import normalise_receipt_no
from shared.tokens import QrKey, issue_qr_token, verify_qr_token

BODY = json.dumps(
    {
        "token": "eyJhbGciOiJFUzI1NiIsImtpZCI6InFyLTEiLCJ0eXAiOiJKV1QifQ." + "x" * 300 + ".sig",
        "bill_fen": 40_000,
        "receipt_no": "R20240910-0001",
        "voucher_count": 2,
    }
).encode()
_CONTROL = re.compile(r"[\x00-\x1f]")
FIELDS = ("token", "bill_fen", "receipt_no", "voucher_count")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def by_hand(data: bytes) -> dict[str, Any]:
    """What read_json and the redeem handler did before: json.loads, then a check per field."""
    body = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    if not isinstance(body, dict):
        raise ValueError("not an object")
    if set(body) - set(FIELDS):
        raise ValueError("unknown fields")
    parse_fen(body.get("bill_fen"), positive=True, field="bill_fen")
    normalise_receipt_no(body.get("receipt_no"))  # type: ignore[arg-type]
    count = body.get("voucher_count")
    if type(count) is not int or not 1 <= count <= 100_000:
        raise ValueError("voucher_count")
    token = body.get("token")
    if not isinstance(token, str) or not token.strip() or len(token) > 2048:
        raise ValueError("token")
    if _CONTROL.search(token):
        raise ValueError("token")
    return body


def with_msgspec(data: bytes) -> dict[str, Any]:
    """What the edge does now: one typed decode, and the dict handlers still get."""
    return struct_fields(decode_body(data, RedeemRequest))


# --- the QR code ---------------------------------------------------------------------------

NOW = datetime.now(UTC).replace(microsecond=0)  # jwt.decode reads the clock itself
ISSUER, AUDIENCE, FORMER_TYPE = "liaocheng-vouchers", "voucher-till", "vq+jwt"
_ES256 = ECAlgorithm(ECAlgorithm.SHA256)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def former_token(key: ec.EllipticCurvePrivateKey) -> str:
    """A code as the server minted it before issue 11: the same header and claims."""
    issued = int(NOW.timestamp()) - 10
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "exp": issued + 60,
    }
    headers = {"kid": "demo-qr-1", "typ": FORMER_TYPE}
    return jwt.encode(claims, key, algorithm="ES256", headers=headers)


def _json(segment: str) -> dict[str, Any]:
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("format")
    value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    if not isinstance(value, dict):
        raise ValueError("format")
    return value


def former_verify(token: str, keys: dict[str, ec.EllipticCurvePublicKey]) -> tuple[Any, ...]:
    """The ES256 verification of efd3160's ``decode_qr_token`` + ``check_qr_times``, step by
    step (its error reasons left out)."""
    head_b64, payload_b64, signature_b64 = token.split(".")
    head = _json(head_b64)
    if head.get("typ") != FORMER_TYPE or head.get("alg") != "ES256" or "crit" in head:
        raise ValueError("type")
    public = keys[head["kid"]]
    signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
    if not _ES256.verify(f"{head_b64}.{payload_b64}".encode("ascii"), public, signature):
        raise ValueError("signature")
    payload = _json(payload_b64)
    if payload.get("iss") != ISSUER or payload.get("aud") != AUDIENCE:
        raise ValueError("claims")
    subject, jti, iat, exp = (payload.get(k) for k in ("sub", "jti", "iat", "exp"))
    if not (isinstance(subject, str) and str(uuid.UUID(jti)) == jti):
        raise ValueError("claims")
    if not (type(iat) is int and type(exp) is int and 0 < exp - iat <= 60):
        raise ValueError("lifetime")
    issued_at, expires_at = datetime.fromtimestamp(iat, UTC), datetime.fromtimestamp(exp, UTC)
    if issued_at > NOW + timedelta(seconds=5) or expires_at <= NOW:
        raise ValueError("times")
    return uuid.UUID(subject), uuid.UUID(jti), expires_at


def qr_cases() -> list[tuple[str, Callable[[], object], int]]:
    """(what, one verification, the code's length)."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = {"demo-qr-1": private.public_key()}
    old = former_token(private)
    assert former_verify(old, public)

    def with_pyjwt() -> object:
        return jwt.decode(
            old, public["demo-qr-1"], ["ES256"], options={"require": ["exp", "iat", "jti"]},
            audience=AUDIENCE, issuer=ISSUER, leeway=5,
        )  # fmt: skip

    keys = {k.kid: k for k in (QrKey.generate("B"), QrKey.generate("A"))}  # current, previous
    code, claims = issue_qr_token(key=keys["B"], holder=4_200_017, now=NOW - timedelta(seconds=10))
    assert verify_qr_token(code, keys=keys, now=NOW) == claims
    return [
        ("ES256 JWS, as efd3160 read it", partial(former_verify, old, public), len(old)),
        ("ES256 JWS, through jwt.decode", with_pyjwt, len(old)),
        (
            "HMAC code (shared.tokens)",
            partial(verify_qr_token, code, keys=keys, now=NOW),
            len(code),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--only", choices=("body", "qr"))
    args = parser.parse_args()
    if args.only != "qr":
        assert by_hand(BODY) == with_msgspec(BODY)
        for name, fn in (("json.loads + hand checks", by_hand), ("msgspec Struct", with_msgspec)):
            best = min(timeit.repeat(partial(fn, BODY), number=args.number, repeat=5))
            print(f"{name:30} {best / args.number * 1e9:8.0f} ns per body ({len(BODY)} bytes)")
    if args.only != "body":
        number = max(1, args.number // 20)  # an ES256 check is ~100 times a body's decode
        for name, verify, length in qr_cases():
            best = min(timeit.repeat(verify, number=number, repeat=5))
            print(f"{name:30} {best / number * 1e6:8.1f} µs per code ({length} characters)")


if __name__ == "__main__":
    main()
