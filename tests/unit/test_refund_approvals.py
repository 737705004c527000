"""A manager's approval of one refund (issue 11 item 5), as ``server/auth.py`` signs and reads
it: its own key and type, so that it is never an access token nor an access token an
approval; every claim there and of its type; two minutes. Which refund it approves is the
refund service's check (tests/e2e/test_receipts.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from server.auth import (
    APPROVAL_TOKEN_TYPE,
    Principal,
    RefundGrant,
    Role,
    _approval_key,
    issue_access_token,
    issue_refund_approval,
    read_access_token,
    read_refund_approval,
)
from server.settings import SERVICE_ISSUER
from shared.errors import Unauthenticated
from tests.unit.test_settings import settings

NOW = datetime(2024, 9, 10, 2, 0, tzinfo=UTC)
MANAGER = Principal(
    Role.MERCHANT_MANAGER, "shop-manager", merchant_id=7, account_id=3, generation=2
)
GRANT = RefundGrant(MANAGER, terminal_id=11, redemption_id=42, remaining_bill_fen=55_000, key="k1")


def test_an_approval_reads_back_as_the_grant_it_was_issued_for() -> None:
    s = settings()
    token = issue_refund_approval(s, GRANT, NOW)
    assert read_refund_approval(s, token, NOW + timedelta(seconds=119)) == GRANT
    with pytest.raises(Unauthenticated) as expired:
        read_refund_approval(s, token, NOW + timedelta(seconds=120))
    assert expired.value.details["reason"] == "expired"


def test_an_approval_is_no_access_token_and_an_access_token_no_approval() -> None:
    s = settings()
    approval = issue_refund_approval(s, GRANT, NOW)
    with pytest.raises(Unauthenticated):
        read_access_token(s, approval, NOW)
    access = issue_access_token(s, MANAGER, NOW)["access_token"]
    with pytest.raises(Unauthenticated):
        read_refund_approval(s, access, NOW)


def _forged(secret: bytes, /, **claims: Any) -> str:
    body = {
        "iss": SERVICE_ISSUER,
        "aud": "refund-approval",
        "sub": "shop-manager",
        "role": "merchant_manager",
        "merchant_id": 7,
        "account_id": 3,
        "gen": 2,
        "terminal_id": 11,
        "redemption_id": 42,
        "remaining_bill_fen": 55_000,
        "key": "k1",
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 120,
        **claims,
    }
    return jwt.encode(body, secret, algorithm="HS256", headers={"typ": APPROVAL_TOKEN_TYPE})


@pytest.mark.parametrize(
    "token",
    [
        # signed with the access tokens' secret itself, not the approvals' derived key
        _forged(b"s" * 32),
        # another server's secret
        _forged(b"t" * 32),
    ],
    ids=["access-secret", "other-secret"],
)
def test_an_approval_signed_with_another_key_is_refused(token: str) -> None:
    s = settings()
    assert read_refund_approval(s, _forged(_approval_key(s)), NOW) == GRANT  # the forge is right
    with pytest.raises(Unauthenticated):
        read_refund_approval(s, token, NOW)


@pytest.mark.parametrize(
    "claims",
    [
        {"remaining_bill_fen": "55000"},
        {"redemption_id": None},
        {"key": 1},
        {"role": "emperor"},
        {"gen": 2.0},
    ],
    ids=["amount-text", "no-redemption", "key-number", "unknown-role", "float-generation"],
)
def test_an_approval_with_a_claim_missing_or_of_another_type_is_refused(
    claims: dict[str, Any],
) -> None:
    s = settings()
    assert read_refund_approval(s, _forged(_approval_key(s)), NOW) == GRANT  # the forge is right
    with pytest.raises(Unauthenticated):
        read_refund_approval(s, _forged(_approval_key(s), **claims), NOW)
