"""Rule U5 at the server (issue 15): a code read once is remembered as read, and every use
of it checks its times again; a code that did not verify is never remembered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.caches import QrVerifier
from shared.errors import TokenExpired, TokenInvalid
from shared.tokens import QrKey, issue_qr_token, verify_qr_token

NOW = datetime(2024, 9, 10, 2, 0, tzinfo=UTC)
KEY = QrKey.generate("A")


def test_a_remembered_code_says_what_reading_it_again_says_and_still_expires() -> None:
    verifier = QrVerifier({KEY.kid: KEY})
    code, _ = issue_qr_token(key=KEY, holder=77, now=NOW, ttl_seconds=30)
    first = verifier.verify(code, NOW)
    assert first == verify_qr_token(code, keys={KEY.kid: KEY}, now=NOW)
    assert verifier.verify(code, NOW + timedelta(seconds=29)) == first
    with pytest.raises(TokenExpired):  # the times are checked on every use
        verifier.verify(code, NOW + timedelta(seconds=30))
    with pytest.raises(TokenInvalid) as early:
        verifier.verify(code, NOW - timedelta(seconds=6))
    assert early.value.details["reason"] == "not_yet_valid"


def test_a_code_that_failed_is_refused_every_time_and_not_remembered() -> None:
    verifier = QrVerifier({KEY.kid: KEY})
    code, _ = issue_qr_token(key=KEY, holder=77, now=NOW)
    forged = code[:-1] + ("0" if code[-1] != "0" else "1")
    for _ in range(2):
        with pytest.raises(TokenInvalid) as refused:
            verifier.verify(forged, NOW)
        assert refused.value.details["reason"] == "signature"
    other = QrVerifier({})  # a code of a key this verifier does not hold
    with pytest.raises(TokenInvalid) as unknown:
        other.verify(code, NOW)
    assert unknown.value.details["reason"] == "unknown_key"


def test_at_most_size_codes_are_remembered() -> None:
    verifier = QrVerifier({KEY.kid: KEY}, size=3)
    codes = [issue_qr_token(key=KEY, holder=h, now=NOW)[0] for h in range(1, 8)]
    for code in codes:
        assert verifier.verify(code, NOW).holder == codes.index(code) + 1
        assert len(verifier._read) <= 3
    assert [verifier.verify(c, NOW).holder for c in codes] == list(range(1, 8))
