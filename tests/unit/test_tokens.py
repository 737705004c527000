"""Rule U5: the citizen's dynamic QR code (issue 11 item 2), and every way of forging or
stretching one."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import TokenExpired, TokenInvalid
from shared.tokens import (
    MAX_QR_TTL_SECONDS,
    QR_CODE_LENGTH,
    QrKey,
    check_qr_times,
    decode_qr_token,
    issue_qr_token,
    verify_qr_token,
)

NOW = datetime(2024, 9, 10, 2, 0, tzinfo=UTC)
KEY = QrKey.generate("A")
PREVIOUS = QrKey.generate("B")
KEYS = {KEY.kid: KEY, PREVIOUS.kid: PREVIOUS}
HOLDER = 4_200_017
NONCE = bytes.fromhex("0102030405")
# QR alphanumeric mode holds digits, upper-case letters and " $%*+-./:"; ours uses no symbol
QR_ALPHANUMERIC = re.compile(r"[0-9A-Z]+")


def issue(**kw: Any) -> str:
    args: dict[str, Any] = {"key": KEY, "holder": HOLDER, "now": NOW}
    args.update(kw)
    return issue_qr_token(**args)[0]


def decode(token: str) -> Any:
    return decode_qr_token(token, keys=KEYS)


def minted(
    *,
    key: QrKey = KEY,
    head: str | None = None,
    issued: int | None = None,
    ttl: int = 60,
    holder: int = HOLDER,
    mac: bytes | None = None,
) -> str:
    """A code laid out by hand (the layout of shared/tokens.py), MAC'd with ``key`` unless
    ``mac`` is given: what only someone holding the key could make."""
    top = (head or f"VQ1{key.kid}").encode()
    issued = int(NOW.timestamp()) if issued is None else issued
    clear = issued.to_bytes(4, "big") + ttl.to_bytes(1, "big") + NONCE
    signed = clear + (holder ^ key.mask(top + clear)).to_bytes(8, "big")
    tag = key.mac(top + signed) if mac is None else mac
    return top.decode() + base64.b32hexencode(signed + tag).decode()


def fields(code: str) -> dict[str, bytes]:
    raw = base64.b32hexdecode(code[4:])
    return {"clear": raw[:10], "holder": raw[10:18], "mac": raw[18:]}


def test_a_code_is_52_upper_case_alphanumerics_bound_to_its_holder_for_a_minute() -> None:
    code, issued = issue_qr_token(key=KEY, holder=HOLDER, now=NOW)
    assert len(code) == QR_CODE_LENGTH == 52 and QR_ALPHANUMERIC.fullmatch(code)
    assert code.startswith("VQ1A")  # prefix, format version, key id
    got = verify_qr_token(code, keys=KEYS, now=NOW)
    assert got == issued
    assert (got.holder, got.kid) == (HOLDER, "A")
    assert got.expires_at - got.issued_at == timedelta(seconds=60)
    assert isinstance(got.jti, uuid.UUID)


def test_the_lifetime_is_the_campaigns_at_most_a_minute() -> None:
    assert decode(issue(ttl_seconds=30)).expires_at == NOW + timedelta(seconds=30)
    for ttl in (0, MAX_QR_TTL_SECONDS + 1):
        with pytest.raises(ValueError, match="lives"):
            issue(ttl_seconds=ttl)
    for ttl in (0, 61, 255):  # even with a MAC that holds
        with pytest.raises(TokenInvalid) as refused:
            decode(minted(ttl=ttl))
        assert refused.value.details["reason"] == "lifetime"


def test_the_holder_is_masked_so_two_codes_of_one_citizen_cannot_be_linked() -> None:
    first, second = issue(), issue()
    assert first[:4] == second[:4] and first != second
    a, b = fields(first), fields(second)
    # without the key, the holder's field says nothing: it differs between two codes
    assert a["holder"] != b["holder"] != HOLDER.to_bytes(8, "big")
    assert decode(first).holder == decode(second).holder == HOLDER
    # ... and each code has its own id, which is what single use records
    assert decode(first).jti != decode(second).jti


def test_a_codes_id_is_fixed_by_its_content_so_its_case_cannot_make_it_new() -> None:
    code = issue(nonce=NONCE)
    assert decode(code) == decode(code.lower()) == decode(issue(nonce=NONCE))
    assert decode(code).jti != decode(issue(holder=HOLDER + 1, nonce=NONCE)).jti


def test_codes_of_the_previous_key_still_verify_so_keys_can_rotate() -> None:
    code = issue(key=PREVIOUS)
    assert code[3] == "B" and decode(code).holder == HOLDER
    with pytest.raises(TokenInvalid) as refused:
        decode_qr_token(code, keys={KEY.kid: KEY})  # B dropped: its codes are refused
    assert refused.value.details["reason"] == "unknown_key"


def test_expiry_and_issue_time_are_checked_against_the_given_now() -> None:
    claimed = decode(issue())
    assert check_qr_times(claimed, NOW + timedelta(seconds=59)) == claimed
    with pytest.raises(TokenExpired):
        check_qr_times(claimed, NOW + timedelta(seconds=60))
    assert check_qr_times(claimed, NOW - timedelta(seconds=5)) == claimed  # clock skew
    with pytest.raises(TokenInvalid) as refused:
        check_qr_times(claimed, NOW - timedelta(seconds=6))
    assert refused.value.details["reason"] == "not_yet_valid"
    with pytest.raises(TokenExpired):
        verify_qr_token(issue(), keys=KEYS, now=NOW + timedelta(minutes=1))


def _flip(code: str, at: int) -> str:
    """One character changed for another of the alphabet."""
    return code[:at] + ("1" if code[at] != "1" else "2") + code[at + 1 :]


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda c: "not-a-token", "format"),
        (lambda c: "", "format"),
        (lambda c: c + "A", "format"),
        (lambda c: c[:-1], "format"),
        (lambda c: " " + c[1:], "format"),
        (lambda c: c[:10] + "W" + c[11:], "format"),  # W is not base32hex
        (lambda c: c[:10] + "=" + c[11:], "format"),
        (lambda c: c[:10] + "_" + c[11:], "format"),  # int() would skip an underscore
        (lambda c: "VX" + c[2:], "format"),
        (lambda c: "VQ2" + c[3:], "version"),
        (lambda c: c[:3] + "Z" + c[4:], "format"),  # not base32hex
        (lambda c: c[:3] + "C" + c[4:], "unknown_key"),
        (lambda c: c[:3] + "B" + c[4:], "signature"),  # the MAC covers the key id
        (lambda c: _flip(c, 51), "signature"),  # the MAC
        (lambda c: _flip(c, 30), "signature"),  # the holder
        (lambda c: _flip(c, 6), "signature"),  # the issue time
        (lambda c: minted(mac=bytes(12)), "signature"),
        (lambda c: minted(key=QrKey("A", b"another key of the same id......")), "signature"),
        (lambda c: minted(holder=0), "claims"),
    ],
)
def test_forged_and_malformed_codes_are_refused_with_a_reason(forge: Any, reason: str) -> None:
    with pytest.raises(TokenInvalid) as refused:
        decode(forge(issue()))
    assert refused.value.details["reason"] == reason


def test_a_code_of_the_former_kind_reads_as_expired_not_as_strange() -> None:
    # issue 11 item 8: the 383-character ES256 JWS every phone showed before
    old = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImRlbW8tcXItMSIsInR5cCI6InZxK2p3dCJ9.eyJzdWIiOiJ4In0.c2ln"
    with pytest.raises(TokenExpired) as refused:
        decode(old)
    assert refused.value.details["reason"] == "old_format"


def test_minting_refuses_what_no_code_may_say() -> None:
    with pytest.raises(ValueError, match="holder"):
        issue(holder=0)
    with pytest.raises(ValueError, match="holder"):
        issue(holder=2**64)
    with pytest.raises(ValueError, match="nonce"):
        issue(nonce=b"1234")
    with pytest.raises(ValueError, match="timezone"):
        issue(now=datetime(2024, 9, 10, 2, 0))  # naive: the point of the test


def test_a_key_is_named_by_one_character_and_holds_32_bytes_at_least() -> None:
    for kid in ("", "AB", "W", "a", "-"):
        with pytest.raises(ValueError, match="key id"):
            QrKey(kid, bytes(32))
    with pytest.raises(ValueError, match="32 bytes"):
        QrKey("A", bytes(31))
    assert "secret" not in repr(KEY) and KEY.secret.hex() not in repr(KEY)


@given(st.text(max_size=120))
def test_any_text_at_all_is_a_code_or_a_clean_refusal(text: str) -> None:
    try:
        decode(text)
    except TokenInvalid:
        pass
    except TokenExpired as exc:
        assert exc.details["reason"] == "old_format"


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUV", min_size=48, max_size=48))
def test_a_made_up_code_of_the_right_shape_fails_its_mac(body: str) -> None:
    with pytest.raises(TokenInvalid) as refused:
        decode("VQ1A" + body)
    assert refused.value.details["reason"] == "signature"
