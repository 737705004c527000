"""Rule U5: the citizen's dynamic QR token, and every way of forging or stretching one."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm

from shared.errors import TokenExpired, TokenInvalid
from shared.tokens import (
    QR_TOKEN_TYPE,
    SigningKey,
    check_qr_times,
    decode_qr_token,
    issue_qr_token,
    verify_qr_token,
)

NOW = datetime(2024, 9, 10, 2, 0, tzinfo=UTC)
KEY = SigningKey.generate("qr-1")
OTHER = SigningKey.generate("qr-2")
KEYS = {KEY.kid: KEY.public(), OTHER.kid: OTHER.public()}
ISS, AUD = "liaocheng-vouchers", "voucher-till"


def issue(**kw: Any) -> str:
    args: dict[str, Any] = {
        "key": KEY,
        "subject": "subject-1",
        "issuer": ISS,
        "audience": AUD,
        "now": NOW,
    }
    args.update(kw)
    return issue_qr_token(**args)[0]


def decode(token: str) -> Any:
    return decode_qr_token(token, keys=KEYS, issuer=ISS, audience=AUD)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload: dict[str, Any], header: dict[str, Any] | None = None, key: Any = None) -> str:
    """A token pyjwt signs with exactly these claims and header."""
    head = {"kid": KEY.kid, "typ": QR_TOKEN_TYPE}
    head.update(header or {})
    return jwt.encode(payload, key or KEY.private_key, algorithm="ES256", headers=head)


def raw_signed(header: dict[str, Any]) -> str:
    """Signed by KEY with a header pyjwt itself would refuse to write."""
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims()).encode())
    sig = ECAlgorithm(ECAlgorithm.SHA256).sign(f"{head}.{body}".encode(), KEY.private_key)
    return f"{head}.{body}.{b64(sig)}"


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "subject-1",
        "jti": str(uuid.uuid4()),
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 60,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_a_token_carries_a_pseudonym_a_random_id_and_at_most_a_minute() -> None:
    token, issued = issue_qr_token(key=KEY, subject="s-9", issuer=ISS, audience=AUD, now=NOW)
    got = verify_qr_token(token, keys=KEYS, issuer=ISS, audience=AUD, now=NOW)
    assert got == issued
    assert got.subject == "s-9"
    assert uuid.UUID(got.jti).version == 4
    assert got.expires_at - got.issued_at == timedelta(seconds=60)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": "qr-1", "typ": QR_TOKEN_TYPE}


def test_tokens_of_every_configured_key_verify_so_keys_can_rotate() -> None:
    assert decode(issue(key=OTHER)).subject == "subject-1"


def test_a_lifetime_over_sixty_seconds_cannot_be_issued_or_accepted() -> None:
    with pytest.raises(ValueError):
        issue(ttl_seconds=61)
    long = signed(claims(exp=int(NOW.timestamp()) + 61))
    with pytest.raises(TokenInvalid) as refused:
        decode(long)
    assert refused.value.details["reason"] == "lifetime"


def test_expiry_and_issue_time_are_checked_against_the_given_now() -> None:
    claimed = decode(issue())
    assert check_qr_times(claimed, NOW + timedelta(seconds=59)) == claimed
    with pytest.raises(TokenExpired):
        check_qr_times(claimed, NOW + timedelta(seconds=60))
    assert check_qr_times(claimed, NOW - timedelta(seconds=5)) == claimed  # clock skew
    with pytest.raises(TokenInvalid):
        check_qr_times(claimed, NOW - timedelta(seconds=6))


def _tamper_payload(token: str) -> str:
    head, payload, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["sub"] = "someone-else"
    return f"{head}.{b64(json.dumps(body).encode())}.{sig}"


def _none_alg(token: str) -> str:
    head = b64(json.dumps({"alg": "none", "kid": KEY.kid, "typ": QR_TOKEN_TYPE}).encode())
    return f"{head}.{token.split('.')[1]}."


def _hs256_with_public_key(token: str) -> str:
    # the classic confusion: an HMAC "signed" with the public key as the secret
    public_pem = KEY.public().public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = b64(json.dumps({"alg": "HS256", "kid": KEY.kid, "typ": QR_TOKEN_TYPE}).encode())
    payload = token.split(".")[1]
    mac = hmac.new(public_pem, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{b64(mac)}"


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda t: "not-a-token", "format"),
        (lambda t: t + ".extra", "format"),
        (lambda t: t.replace(".", "..", 1), "format"),
        (lambda t: "=" + t, "format"),  # padding and other non-base64url characters
        (lambda t: t[:-3] + "+/A", "format"),
        (lambda t: t[:-3] + "AAA", "signature"),
        (lambda t: t.rsplit(".", 1)[0] + "." + b64(b"\x00" * 10), "signature"),  # wrong length
        (lambda t: t.rsplit(".", 1)[0] + ".", "signature"),
        (_tamper_payload, "signature"),
        (_none_alg, "type"),
        (_hs256_with_public_key, "type"),
        (lambda t: signed(claims(), key=SigningKey.generate("x").private_key), "signature"),
        (lambda t: signed(claims(), header={"kid": "qr-unknown"}), "unknown_key"),
        (lambda t: raw_signed({"alg": "ES256", "kid": 7, "typ": QR_TOKEN_TYPE}), "unknown_key"),
        (lambda t: signed(claims(), header={"typ": "JWT"}), "type"),
        (lambda t: signed(claims(), header={"crit": ["exp"]}), "type"),
        (lambda t: signed(claims(iss="someone")), "claims"),
        (lambda t: signed(claims(aud="another-api")), "claims"),
        (lambda t: signed(claims(aud=None)), "claims"),
        (lambda t: signed(claims(sub=None)), "claims"),
        (lambda t: signed(claims(sub=12)), "claims"),
        (lambda t: signed(claims(jti="not-a-uuid")), "claims"),
        (lambda t: signed(claims(jti=str(uuid.uuid4()).upper())), "claims"),
        (lambda t: signed(claims(iat=1.5)), "claims"),
        (lambda t: signed(claims(exp=True)), "claims"),
        (lambda t: signed(claims(exp=None)), "claims"),
        (lambda t: signed(claims(iat=10**15, exp=10**15 + 30)), "claims"),
        (lambda t: signed(claims(exp=int(NOW.timestamp()))), "lifetime"),
    ],
)
def test_forged_and_malformed_tokens_are_refused_with_a_reason(forge: Any, reason: str) -> None:
    with pytest.raises(TokenInvalid) as refused:
        decode(forge(issue()))
    assert refused.value.details["reason"] == reason


def test_an_audience_list_naming_the_till_is_accepted() -> None:
    assert decode(signed(claims(aud=["other", AUD]))).subject == "subject-1"


def test_json_that_is_no_object_is_refused() -> None:
    for head, payload in [("[]", "{}"), ('{"alg":"ES256"', "{}"), ("{}", "\xff")]:
        token = f"{b64(head.encode('latin-1'))}.{b64(payload.encode('latin-1'))}.AAAA"
        with pytest.raises(TokenInvalid):
            decode(token)


@given(st.text(max_size=300))
def test_any_text_at_all_is_either_a_token_or_token_invalid(text: str) -> None:
    with contextlib.suppress(TokenInvalid):
        decode(text)


@given(st.binary(max_size=200), st.binary(max_size=200), st.binary(max_size=80))
def test_any_three_base64url_parts_are_refused_cleanly(
    head: bytes, body: bytes, sig: bytes
) -> None:
    with pytest.raises(TokenInvalid):
        decode(f"{b64(head)}.{b64(body)}.{b64(sig)}")
