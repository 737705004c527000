"""Claim, QR, quote, redeem, refund and the merchant's day, over HTTP against real services."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypedDict

import pytest

from server.guard import Outcome
from server.web import CLOCK, GUARD
from shared.tokens import QrKey, decode_qr_token, issue_qr_token
from tests.e2e.conftest import Clock, Till, World, shanghai


async def error_code(response: Any) -> str:
    body = await response.json()
    return str(body["error"]["code"])


def code_of_nobody(world: World) -> str:
    """A genuine QR code (the server's key) of a citizen row that does not exist: enough to
    name a citizen's Redis slot (rule U5's MAC), nothing to redeem."""
    key = world.settings.qr_keys[0]
    return issue_qr_token(
        key=key, holder=2**62 + secrets.randbelow(2**40), now=world.client.app[CLOCK]()
    )[0]


def holder_of(world: World, code: str) -> str:
    """The citizen a QR code names, as the guard names it (``server/services/guarded.py``)."""
    return str(decode_qr_token(code, keys=world.settings.qr_keys_by_id).holder)


@asynccontextmanager
async def key_at_work(world: World, terminal_id: int, key: str, code: str) -> AsyncIterator[None]:
    """A first request under ``key`` with the QR code ``code`` still at work: it has begun
    with the guard (rule U7) and not yet ended. Its mark is in the slot of ``code``'s citizen
    (issue 14); its QR token id is of nobody, so a code of that citizen is not used."""
    guard = world.client.app[GUARD]
    jti, citizen = str(uuid.uuid4()), holder_of(world, code)
    outcome, lock = await guard.begin(jti=jti, citizen=citizen, terminal_id=terminal_id, key=key)
    assert outcome is Outcome.OK
    try:
        yield
    finally:
        guard.end_soon(
            token=lock,
            jti=jti,
            citizen=citizen,
            terminal_id=terminal_id,
            key=key,
            used=False,
            jti_ttl_ms=1,
        )
        await guard.drain()


def by_key(till: Till, key: str, code: str | None = None) -> dict[str, Any]:
    """The query and headers of a till asking by ``key``, with its request's QR code."""
    headers = dict(till.headers) | ({} if code is None else {"Voucher-Code": code})
    return {"params": {"idempotency_key": key}, "headers": headers}


async def test_a_claim_issues_the_vouchers_with_their_expiry(world: World) -> None:
    # rules A3, V1: 1,200,000 元 housing in phase 1 -> 48 vouchers; claimed 2024-09-10,
    # valid through the end of 2024-12-09
    person = await world.citizen()
    cert_no = await world.certificate([person.id_number])
    r = await world.client.post(
        "/v1/claims", json={"certificate_no": cert_no}, headers=person.headers
    )
    assert r.status == 201
    body = await r.json()
    assert body["voucher_count"] == 48
    assert body["value_fen"] == 480_000
    assert body["last_valid_day"] == "2024-12-09"
    assert body["expires_at"] == "2024-12-10T00:00:00+08:00"
    assert len(body["vouchers"]) == 48
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["counts"] == {"available": 48, "used": 0, "expired": 0, "revoked": 0}


async def test_a_second_owner_cannot_claim_the_same_certificate(world: World) -> None:
    # rule E4
    first, second = await world.citizen(), await world.citizen()
    cert_no = await world.certificate([first.id_number, second.id_number])
    r = await world.client.post(
        "/v1/claims", json={"certificate_no": cert_no}, headers=first.headers
    )
    assert r.status == 201
    r = await world.client.post(
        "/v1/claims", json={"certificate_no": cert_no}, headers=second.headers
    )
    assert r.status == 409
    assert await error_code(r) == "certificate_already_claimed"


@pytest.mark.parametrize(
    ("kwargs", "owner", "code", "status"),
    [
        ({}, False, "certificate_not_yours", 404),  # rule E3: not told the number exists
        ({"price_fen": 4_999_900}, True, "no_vouchers_due", 422),  # rule A3: 49,999 元 -> 0
        ({"district": "gaoxin", "new_build": False}, True, "certificate_not_eligible", 422),  # E2
    ],
)
async def test_a_refused_claim_records_nothing(
    world: World, kwargs: dict[str, Any], owner: bool, code: str, status: int
) -> None:
    person = await world.citizen()
    owners = [person.id_number] if owner else [(await world.citizen()).id_number]
    cert_no = await world.certificate(owners, **kwargs)
    r = await world.client.post(
        "/v1/claims", json={"certificate_no": cert_no}, headers=person.headers
    )
    assert r.status == status
    assert await error_code(r) == code
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["vouchers"] == [] and wallet["claims"] == []


async def test_no_claim_after_the_hard_end(world: World, clock: Clock) -> None:
    # rule V3
    person = await world.citizen()
    cert_no = await world.certificate([person.id_number])
    clock.now = shanghai(2025, 5, 1, 9, 0)
    person = await world.citizen(person.id_number)
    r = await world.client.post(
        "/v1/claims", json={"certificate_no": cert_no}, headers=person.headers
    )
    assert await error_code(r) == "campaign_ended"


async def test_quote_says_what_the_bill_allows_and_changes_nothing(world: World) -> None:
    # rule U3: 399.99 元 -> 1 voucher; the rest is paid otherwise
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token = await world.qr(person)
    r = await world.client.post(
        "/v1/quote", json={"token": token, "bill_fen": 39_999}, headers=till.headers
    )
    assert r.status == 200, await r.text()
    body = await r.json()
    assert (body["usable_count"], body["value_fen"], body["remaining_fen"]) == (1, 10_000, 29_999)
    assert body["available_count"] == 48
    assert body["citizen"]["masked_id"].startswith("3715**********")
    # the same token still redeems: a quote consumes nothing
    r = await world.redeem(till, token, bill_fen=39_999, count=1)
    assert r.status == 201


async def test_redeem_moves_exactly_the_vouchers_and_the_token_is_single_use(
    world: World,
) -> None:
    # rules U3, U5, U6
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token = await world.qr(person)
    r = await world.redeem(till, token, bill_fen=100_000, count=3)
    assert r.status == 201, await r.text()
    body = await r.json()
    assert body["voucher_count"] == 3 and body["value_fen"] == 30_000
    assert body["remaining_fen"] == 70_000
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["counts"]["used"] == 3 and wallet["counts"]["available"] == 45
    r = await world.redeem(till, token, bill_fen=100_000, count=1)
    assert r.status == 409
    assert await error_code(r) == "token_replayed"


async def test_vouchers_are_used_earliest_expiry_first(world: World, clock: Clock) -> None:
    # rule U6: a later claim's vouchers expire later, so the first claim's go first
    person = await world.citizen()
    for day in (10, 20):
        clock.now = shanghai(2024, 9, day, 10, 0)
        person = await world.citizen(person.id_number)
        cert_no = await world.certificate([person.id_number], price_fen=50_000_000)
        r = await world.client.post(
            "/v1/claims", json={"certificate_no": cert_no}, headers=person.headers
        )
        assert r.status == 201
    till = await world.till()
    r = await world.redeem(till, await world.qr(person), bill_fen=1_000_000, count=12)
    assert r.status == 201, await r.text()
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    used = [v for v in wallet["vouchers"] if v["state"] == "used"]
    assert len(used) == 12
    # 500,000 元 at 20 bp = 10 vouchers per claim: all 10 of the first, 2 of the second
    assert sum(v["expires_at"].startswith("2024-12-10") for v in used) == 10


@pytest.mark.parametrize(
    ("bill_fen", "count", "code"),
    [
        (19_999, 1, "bill_too_small"),  # rule U3
        (39_999, 2, "too_many_vouchers"),  # rule U3
        (100_000_000, 49, "not_enough_vouchers"),  # holds 48
    ],
)
async def test_a_refused_redemption_changes_nothing(
    world: World, bill_fen: int, count: int, code: str
) -> None:
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token = await world.qr(person)
    r = await world.redeem(till, token, bill_fen=bill_fen, count=count)
    assert r.status == 422
    assert await error_code(r) == code
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["counts"]["used"] == 0
    # and the token is still good for a valid bill
    assert (await world.redeem(till, token)).status == 201


async def test_a_bill_is_redeemed_only_once(world: World) -> None:
    # rule U4: same merchant + receipt number, even written in full-width letters
    person = await world.citizen_with_vouchers()
    till = await world.till()
    r = await world.redeem(till, await world.qr(person), receipt_no="A-1001")
    assert r.status == 201
    r = await world.redeem(till, await world.qr(person), receipt_no="ａ-1001")
    assert r.status == 409
    assert await error_code(r) == "bill_already_redeemed"


async def test_vouchers_are_usable_only_in_the_main_four_districts(world: World) -> None:
    # rule U2: a merchant outside the campaign's districts is refused
    async with world.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO districts (code, name) VALUES ('linqing', '临清市') ON CONFLICT DO NOTHING"
        )
    person = await world.citizen_with_vouchers()
    till = await world.till(district="linqing")
    r = await world.redeem(till, await world.qr(person))
    assert await error_code(r) == "wrong_district"


class MerchantFlags(TypedDict, total=False):
    permitted: bool
    admitted: bool


@pytest.mark.parametrize(
    ("merchant", "code"),
    [
        ({"permitted": False}, "merchant_not_permitted"),  # rule U1
        ({"admitted": False}, "merchant_not_permitted"),  # rule U1
    ],
)
async def test_a_merchant_without_permission_cannot_redeem(
    world: World, merchant: MerchantFlags, code: str
) -> None:
    person = await world.citizen_with_vouchers()
    till = await world.till(**merchant)
    r = await world.redeem(till, await world.qr(person))
    assert r.status == 403
    assert await error_code(r) == code


async def test_a_suspended_merchant_cannot_redeem(world: World) -> None:
    # rules U1, X1
    person = await world.citizen_with_vouchers()
    till = await world.till()
    async with world.pool.acquire() as conn:
        await conn.execute(
            "UPDATE merchants SET status = 'suspended' WHERE id = $1", till.merchant_id
        )
    r = await world.redeem(till, await world.qr(person))
    assert await error_code(r) == "merchant_suspended"


async def test_expired_vouchers_are_void(world: World, clock: Clock) -> None:
    # rule V2: claimed 2024-09-10, valid through 2024-12-09
    person = await world.citizen_with_vouchers()
    till = await world.till()
    clock.now = shanghai(2024, 12, 9, 23, 59)
    person, till = await world.citizen(person.id_number), await world.sign_in(till)
    assert (await world.redeem(till, await world.qr(person))).status == 201
    clock.now = shanghai(2024, 12, 10, 0, 0)
    person, till = await world.citizen(person.id_number), await world.sign_in(till)
    r = await world.redeem(till, await world.qr(person))
    assert await error_code(r) == "voucher_expired"
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["counts"]["expired"] == 47


async def test_an_expired_qr_code_is_refused(world: World, clock: Clock) -> None:
    # rule U5: 60 seconds at most
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token = await world.qr(person)
    clock.advance(seconds=61)
    r = await world.redeem(till, token)
    assert r.status == 422
    assert await error_code(r) == "token_expired"


async def test_the_same_idempotency_key_returns_the_first_answer(world: World) -> None:
    # rule U7
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token = await world.qr(person)
    key = uuid.uuid4().hex
    first = await world.redeem(till, token, receipt_no="R-IDEM", key=key)
    again = await world.redeem(till, token, receipt_no="R-IDEM", key=key)
    assert first.status == again.status == 201
    assert (await first.json()) == (await again.json())
    other = await world.redeem(till, token, receipt_no="R-OTHER", key=key)
    assert other.status == 422
    assert await error_code(other) == "idempotency_key_reused"
    found = await world.client.get(
        "/v1/redemptions", params={"idempotency_key": key}, headers=till.headers
    )
    assert (await found.json())["redemption_id"] == (await first.json())["redemption_id"]


async def concurrent_single_voucher_redemptions(world: World, n: int) -> list[int]:
    """n tills each redeem one voucher of the same citizen at once."""
    person = await world.citizen_with_vouchers(price_fen=25_000_000)  # 250,000 元: 5 vouchers
    cert_no = await world.certificate([person.id_number], price_fen=25_000_000)
    r = await world.client.post(
        "/v1/claims", json={"certificate_no": cert_no}, headers=person.headers
    )
    assert r.status == 201  # now 10 vouchers
    till = await world.till()
    tokens = [await world.qr(person) for _ in range(n)]
    responses = await asyncio.gather(*(world.redeem(till, t) for t in tokens))
    return [resp.status for resp in responses]


async def test_two_hundred_concurrent_redemptions_of_ten_vouchers_redeem_exactly_ten(
    world: World,
) -> None:
    # rule U7
    statuses = await concurrent_single_voucher_redemptions(world, 200)
    assert statuses.count(201) == 10
    assert 500 not in statuses


async def test_full_and_partial_refunds_return_vouchers_with_their_expiry(world: World) -> None:
    # rules F1, F2: 5 vouchers on a 1,000 元 bill; refund down to 450 元 keeps 2, returns 3
    person = await world.citizen_with_vouchers()
    till = await world.till()
    r = await world.redeem(till, await world.qr(person), bill_fen=100_000, count=5)
    redemption = await r.json()
    url = f"/v1/redemptions/{redemption['redemption_id']}/refunds"
    headers = {**till.headers, "Idempotency-Key": uuid.uuid4().hex}
    r = await world.client.post(url, json={"remaining_bill_fen": 45_000}, headers=headers)
    assert r.status == 201, await r.text()
    body = await r.json()
    assert body["refunded_count"] == 3 and body["live_voucher_count"] == 2
    assert body["status"] == "partially_refunded"
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["counts"] == {"available": 46, "used": 2, "expired": 0, "revoked": 0}
    assert {v["expires_at"] for v in wallet["vouchers"]} == {"2024-12-10T00:00:00+08:00"}
    # the same refund again is the same answer, not a second refund
    again = await world.client.post(url, json={"remaining_bill_fen": 45_000}, headers=headers)
    assert (await again.json())["refunded_count"] == 3
    # full refund of the rest
    headers = {**till.headers, "Idempotency-Key": uuid.uuid4().hex}
    r = await world.client.post(url, json={"remaining_bill_fen": 0}, headers=headers)
    assert (await r.json())["status"] == "refunded"
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["counts"]["available"] == 48


async def test_a_settled_redemption_cannot_be_refunded(world: World) -> None:
    # rule F3
    person = await world.citizen_with_vouchers()
    till = await world.till()
    redemption = await (await world.redeem(till, await world.qr(person))).json()
    async with world.pool.acquire() as conn:
        settlement = await conn.fetchval(
            "INSERT INTO settlements (campaign_id, district, month, status, reviewed_at, "
            "approved_at, paid_at) VALUES ('liaocheng-2024', 'dongchangfu', "
            "date '2024-09-01' + (random() * 1000)::int * interval '1 month', 'paid', now(), "
            "now(), now()) RETURNING id"
        )
        await conn.execute(
            "UPDATE redemptions SET settlement_id = $1 WHERE id = $2",
            settlement,
            redemption["redemption_id"],
        )
    r = await world.client.post(
        f"/v1/redemptions/{redemption['redemption_id']}/refunds",
        json={"remaining_bill_fen": 0},
        headers={**till.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status == 409
    assert await error_code(r) == "already_settled"


async def test_the_merchants_day_lists_its_own_redemptions_only(world: World) -> None:
    # rules S2, X2
    person = await world.citizen_with_vouchers()
    mine, other = await world.till(), await world.till()
    await world.redeem(mine, await world.qr(person), bill_fen=60_000, count=3)
    await world.redeem(mine, await world.qr(person), bill_fen=20_000, count=1)
    await world.redeem(other, await world.qr(person), bill_fen=20_000, count=1)
    r = await world.client.get(
        "/v1/merchant/day", params={"date": "2024-09-10"}, headers=mine.headers
    )
    day = await r.json()
    assert day["totals"]["bills"] == 2
    assert day["totals"]["vouchers"] == 4
    assert day["totals"]["value_fen"] == 40_000
    other_id = (await world.redeem(other, await world.qr(person))).headers
    assert other_id  # the other till works too; its redemption is not in my list
    assert all(item["terminal"]["id"] == mine.terminal_id for item in day["redemptions"])


async def test_the_merchants_day_downloads_as_csv(world: World) -> None:
    # rule S2; issue 12: GET /v1/merchant/day ignored format=csv
    person = await world.citizen_with_vouchers()
    mine, other = await world.till(), await world.till()
    await world.redeem(mine, await world.qr(person), bill_fen=60_000, count=3, receipt_no="C-1")
    await world.redeem(other, await world.qr(person), bill_fen=20_000, count=1, receipt_no="C-2")
    r = await world.client.get(
        "/v1/merchant/day",
        params={"date": "2024-09-10", "format": "csv"},
        headers=mine.headers,
    )
    assert r.status == 200, await r.text()
    assert r.content_type == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await r.text())))
    assert rows[0][:5] == ["kind", "time", "redemption_id", "refund_id", "receipt_no"]
    receipts = [row[4] for row in rows[1:] if row and row[0] == "redemption"]
    assert receipts == ["C-1"]  # the other merchant's bill is not in mine (rule X2)
    refused = await world.client.get(
        "/v1/merchant/day", params={"format": "xls"}, headers=mine.headers
    )
    assert refused.status == 400


@pytest.mark.parametrize(
    "bill",
    [-100, 1.5, "40000", 10**12 + 1, None, True],
    ids=["negative", "fractional", "string", "too-large", "missing", "bool"],
)
async def test_amounts_are_whole_fen_within_range(world: World, bill: Any) -> None:
    person = await world.citizen_with_vouchers()
    till = await world.till()
    r = await world.redeem(till, await world.qr(person), bill_fen=bill)
    assert r.status == 400
    assert await error_code(r) == "invalid_amount"


async def test_an_oversized_body_is_refused_cleanly(world: World) -> None:
    till = await world.till()
    r = await world.client.post(
        "/v1/quote",
        data=b'{"token": "' + b"x" * 100_000 + b'"}',
        headers={**till.headers, "Content-Type": "application/json"},
    )
    assert r.status == 413
    assert await error_code(r) == "body_too_large"


@pytest.mark.parametrize(
    ("forge", "code"),
    [
        ("garbage", "token_invalid"),
        ("foreign-key", "token_invalid"),  # a key of the same id, not the server's
        ("tampered", "token_invalid"),
        ("unknown-key", "token_invalid"),
        ("former-kind", "token_expired"),  # issue 11 item 8: an old code is an expired one
    ],
)
async def test_forged_and_old_qr_codes_are_refused(
    world: World, clock: Clock, forge: str, code: str
) -> None:
    # rule U5
    person = await world.citizen_with_vouchers()
    till = await world.till()
    genuine = await world.qr(person)
    holder = decode_qr_token(genuine, keys=world.settings.qr_keys_by_id).holder
    now = clock.now  # what the server's clock says
    if forge == "garbage":
        token = "not-a-token"
    elif forge == "foreign-key":
        token, _ = issue_qr_token(key=QrKey.generate(genuine[3]), holder=holder, now=now)
    elif forge == "tampered":
        token = genuine[:-4] + ("AAAA" if genuine[-4:] != "AAAA" else "BBBB")
    elif forge == "unknown-key":
        token, _ = issue_qr_token(key=QrKey.generate("9"), holder=holder, now=now)
    else:
        token = "eyJhbGciOiJFUzI1NiIsImtpZCI6InFyLTEiLCJ0eXAiOiJ2cStqd3QifQ.eyJzdWIiOiJ4In0.c2ln"
    r = await world.redeem(till, token)
    assert r.status == 422
    assert await error_code(r) == code
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["counts"]["used"] == 0


async def test_a_revoked_terminal_is_refused(world: World) -> None:
    # rule U1: revoking takes effect at once, even on an access token already issued
    person = await world.citizen_with_vouchers()
    till = await world.till()
    async with world.pool.acquire() as conn:
        await conn.execute(
            "UPDATE terminals SET status = 'revoked', revoked_at = now() WHERE id = $1",
            till.terminal_id,
        )
    r = await world.redeem(till, await world.qr(person))
    assert r.status == 403
    assert await error_code(r) == "terminal_disabled"
    r = await world.client.post(
        "/v1/auth/terminal", json={"terminal_id": till.terminal_id, "secret": till.secret}
    )
    assert await error_code(r) == "terminal_disabled"


async def test_an_unknown_terminal_or_wrong_credential_cannot_sign_in(world: World) -> None:
    till = await world.till()
    for body in (
        {"terminal_id": till.terminal_id, "secret": till.secret + "x"},
        {"terminal_id": 2**40, "secret": till.secret},
    ):
        r = await world.client.post("/v1/auth/terminal", json=body)
        assert r.status == 401
        assert await error_code(r) == "unauthenticated"
    r = await world.client.post("/v1/auth/terminal", json={"terminal_id": "1", "secret": "s"})
    assert await error_code(r) == "invalid_request"


async def test_a_revoked_citizen_can_neither_claim_nor_redeem(world: World) -> None:
    # rule X1
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token = await world.qr(person)
    async with world.pool.acquire() as conn:
        await conn.execute(
            "UPDATE citizens SET status = 'revoked', revoked_at = now(), "
            "revoked_reason = 'cashing out' WHERE id_masked = $1 AND id IN "
            "(SELECT citizen_id FROM claims k JOIN certificates c ON c.id = k.certificate_id "
            "WHERE c.cert_no = $2)",
            person.id_number[:4] + "*" * 10 + person.id_number[-4:],
            person.certificates[0],
        )
    r = await world.redeem(till, token)
    assert r.status == 403
    assert await error_code(r) == "participation_revoked"
    cert_no = await world.certificate([person.id_number])
    r = await world.client.post(
        "/v1/claims", json={"certificate_no": cert_no}, headers=person.headers
    )
    assert await error_code(r) == "participation_revoked"


async def test_an_unknown_certificate_and_a_claim_before_the_start_are_refused(
    world: World, clock: Clock
) -> None:
    # rules E3, C1
    person = await world.citizen()
    r = await world.client.post(
        "/v1/claims", json={"certificate_no": "no-such-certificate"}, headers=person.headers
    )
    assert r.status == 404
    assert await error_code(r) == "certificate_not_yours"
    cert_no = await world.certificate([person.id_number], issued_on=shanghai(2024, 8, 1).date())
    clock.now = shanghai(2024, 8, 15, 12, 0)
    person = await world.citizen(person.id_number)
    r = await world.client.post(
        "/v1/claims", json={"certificate_no": cert_no}, headers=person.headers
    )
    assert await error_code(r) == "campaign_not_started"


async def test_a_request_still_in_flight_with_the_same_key_gets_409(world: World) -> None:
    # rule U7: the in-flight marker is what a first request holds while it works
    person = await world.citizen_with_vouchers()
    till = await world.till()
    key = uuid.uuid4().hex
    async with key_at_work(world, till.terminal_id, key, await world.qr(person)):
        # a retry carries the code of the first request; another code of the same citizen
        # is caught too, the mark being the citizen's (issue 14)
        r = await world.redeem(till, await world.qr(person), key=key)
        assert r.status == 409
        assert await error_code(r) == "idempotency_key_in_use"
    assert (await world.redeem(till, await world.qr(person), key=key)).status == 201


async def test_one_key_sent_at_once_with_two_citizens_codes_redeems_once(world: World) -> None:
    # rule U7, issue 14: the key's mark is per citizen, so the two requests do not see each
    # other's in Redis; the ledger's unique (terminal, key) writes one, the other is refused
    one, other = await world.citizen_with_vouchers(), await world.citizen_with_vouchers()
    till = await world.till()
    key = uuid.uuid4().hex
    answers = await asyncio.gather(
        world.redeem(till, await world.qr(one), key=key),
        world.redeem(till, await world.qr(other), key=key),
    )
    assert sorted(r.status for r in answers) == [201, 422]
    refused = next(r for r in answers if r.status == 422)
    assert await error_code(refused) == "idempotency_key_reused"
    async with world.pool.acquire() as conn:
        rows = await conn.fetchval(
            "SELECT count(*) FROM redemptions WHERE terminal_id = $1 AND idempotency_key = $2",
            till.terminal_id,
            key,
        )
    assert rows == 1


async def test_refunds_refuse_what_makes_no_sense(world: World) -> None:
    # rules F2, F3: a remaining bill not below the bill; refunding a refunded bill
    person = await world.citizen_with_vouchers()
    till = await world.till()
    redemption = await (await world.redeem(till, await world.qr(person), bill_fen=40_000)).json()
    url = f"/v1/redemptions/{redemption['redemption_id']}/refunds"

    async def refund(remaining: Any) -> Any:
        headers = {**till.headers, "Idempotency-Key": uuid.uuid4().hex}
        return await world.client.post(url, json={"remaining_bill_fen": remaining}, headers=headers)

    assert await error_code(await refund(40_000)) == "refund_invalid"
    assert await error_code(await refund(-1)) == "invalid_amount"
    assert (await refund(0)).status == 201
    r = await refund(0)
    assert r.status == 409
    assert await error_code(r) == "already_refunded"
    other = await world.till()
    r = await world.client.post(
        url,
        json={"remaining_bill_fen": 0},
        headers={**other.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status == 404  # rule X2: another merchant does not even see it


async def test_a_merchant_manager_sees_the_day_of_their_merchant_only(world: World) -> None:
    # rules S2, X2
    from ops import demo as seed

    person = await world.citizen_with_vouchers()
    till = await world.till()
    await world.redeem(till, await world.qr(person), bill_fen=60_000, count=3)
    username = f"mgr-{uuid.uuid4().hex[:8]}"
    async with world.pool.acquire() as conn:
        await seed.account(
            conn,
            username=username,
            password="a long password",
            role="merchant_manager",
            merchant_id=till.merchant_id,
        )
    r = await world.client.post(
        "/v1/auth/staff", json={"username": username, "password": "a long password"}
    )
    assert r.status == 200
    headers = {"Authorization": f"Bearer {(await r.json())['access_token']}"}
    day = await (
        await world.client.get("/v1/merchant/day", params={"date": "2024-09-10"}, headers=headers)
    ).json()
    assert day["merchant_id"] == till.merchant_id
    assert day["totals"]["vouchers"] == 3
    r = await world.client.post(
        "/v1/auth/staff", json={"username": username, "password": "wrong password"}
    )
    assert r.status == 401


@pytest.mark.parametrize(("fmt", "magic"), [("png", b"\x89PNG"), ("svg", b"<?xml")])
async def test_the_qr_code_renders_as_an_image(world: World, fmt: str, magic: bytes) -> None:
    # rule U5: the image carries a fresh token; the ID number is nowhere in it
    person = await world.citizen_with_vouchers()
    r = await world.client.post(f"/v1/wallet/qr?format={fmt}", headers=person.headers)
    assert r.status == 200
    body = await r.read()
    assert body.startswith(magic)
    assert person.id_number.encode() not in body
    assert r.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("image/png", "image/png"),
        ("image/svg+xml", "image/svg+xml"),
        ("image/*;q=0.5, application/json;q=0.1", "image/png"),
        ("application/json", "application/json"),
        ("text/html", "application/json"),  # none of ours: JSON, as without the header
    ],
)
async def test_the_qr_code_comes_as_the_accept_header_asks(
    world: World, accept: str, media: str
) -> None:
    # issue 11 item 2: Accept: image/png got JSON; ?format= still decides when given
    person = await world.citizen_with_vouchers()
    r = await world.client.post("/v1/wallet/qr", headers={**person.headers, "Accept": accept})
    assert r.status == 200 and r.content_type == media
    assert r.headers["Vary"] == "Accept"
    if media == "application/json":
        assert len((await r.json())["token"]) == 52
    asked = {**person.headers, "Accept": "image/png"}
    r = await world.client.post("/v1/wallet/qr", params={"format": "svg"}, headers=asked)
    assert r.content_type == "image/svg+xml"


async def test_asking_by_key_while_the_first_request_is_at_work_says_so(
    world: World, clock: Clock
) -> None:
    # rule U7: a terminal that lost an answer must not hear "never happened" too early. The
    # key's mark is in the citizen's Redis slot (issue 14): the till sends the request's code
    till = await world.till()
    key, code = uuid.uuid4().hex, code_of_nobody(world)
    async with key_at_work(world, till.terminal_id, key, code):
        r = await world.client.get("/v1/redemptions", **by_key(till, key, code))
        assert (r.status, await error_code(r)) == (409, "idempotency_key_in_use")
        clock.advance(seconds=120)  # the code expired since: it still names its citizen
        r = await world.client.get("/v1/redemptions", **by_key(till, key, code))
        assert (r.status, await error_code(r)) == (409, "idempotency_key_in_use")
        # without the code the server cannot tell "at work" from "never": never not_found
        r = await world.client.get("/v1/redemptions", **by_key(till, key))
        assert (r.status, await error_code(r)) == (400, "voucher_code_required")
        # a code that is not ours is refused, and nothing else is said
        forged = code[:-1] + ("0" if code[-1] != "0" else "1")
        r = await world.client.get("/v1/redemptions", **by_key(till, key, forged))
        assert (r.status, await error_code(r)) == (422, "token_invalid")
        r = await world.client.get("/v1/redemptions", **by_key(till, key, "not a code"))
        assert (r.status, await error_code(r)) == (422, "token_invalid")
    r = await world.client.get("/v1/redemptions", **by_key(till, key, code))
    assert (r.status, await error_code(r)) == (404, "not_found")
    r = await world.client.get("/v1/redemptions", **by_key(till, key))
    assert (r.status, await error_code(r)) == (400, "voucher_code_required")


async def test_asking_by_key_for_a_written_redemption_needs_no_code(world: World) -> None:
    # rule U7: the ledger's row is the answer, with the code or without; a forged code is
    # refused all the same
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token, key = await world.qr(person), uuid.uuid4().hex
    first = await world.redeem(till, token, key=key)
    assert first.status == 201
    for code in (None, token):
        r = await world.client.get("/v1/redemptions", **by_key(till, key, code))
        assert r.status == 200
        assert (await r.json())["redemption_id"] == (await first.json())["redemption_id"]
    r = await world.client.get("/v1/redemptions", **by_key(till, key, code_of_nobody(world)[:51]))
    assert (r.status, await error_code(r)) == (422, "token_invalid")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("UPDATE merchants SET status = 'suspended' WHERE id = $1", "merchant_suspended"),
        ("UPDATE merchants SET permitted = false WHERE id = $1", "merchant_not_permitted"),
        (
            "UPDATE terminals SET status = 'revoked', revoked_at = now() WHERE merchant_id = $1",
            "terminal_disabled",
        ),
    ],
)
async def test_what_changes_between_quote_and_redeem_is_seen_by_the_redeem(
    world: World, change: str, code: str
) -> None:
    # rules U1, U7: the redeem may start from its quote's read, but writes only if the
    # terminal and merchant are still in good standing at that moment
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token = await world.qr(person)
    r = await world.client.post(
        "/v1/quote", json={"token": token, "bill_fen": 40_000}, headers=till.headers
    )
    assert r.status == 200
    async with world.pool.acquire() as conn:
        await conn.execute(change, till.merchant_id)
    r = await world.redeem(till, token)
    assert await error_code(r) == code
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["counts"]["used"] == 0


async def test_vouchers_spent_elsewhere_after_the_quote_are_not_spent_twice(
    world: World,
) -> None:
    # rule U7: the quote saw 48; another till takes 47 before this till redeems 2
    person = await world.citizen_with_vouchers()
    mine, other = await world.till(), await world.till()
    token = await world.qr(person)
    r = await world.client.post(
        "/v1/quote", json={"token": token, "bill_fen": 40_000}, headers=mine.headers
    )
    assert (await r.json())["usable_count"] == 2
    r = await world.redeem(other, await world.qr(person), bill_fen=47 * 20_000, count=47)
    assert r.status == 201
    r = await world.redeem(mine, token, bill_fen=40_000, count=2)
    assert await error_code(r) == "not_enough_vouchers"
    r = await world.redeem(mine, await world.qr(person), bill_fen=40_000, count=1)
    assert r.status == 201
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["counts"] == {"available": 0, "used": 48, "expired": 0, "revoked": 0}


async def test_guessing_a_terminal_credential_is_stopped_after_ten_failures(
    world: World,
) -> None:
    # the limit is per terminal, kept in Redis: after 10 failures even the right secret waits
    till = await world.till()
    wrong = {"terminal_id": till.terminal_id, "secret": "not-the-secret"}
    statuses = [
        (await world.client.post("/v1/auth/terminal", json=wrong)).status for _ in range(10)
    ]
    assert statuses == [401] * 10
    r = await world.client.post(
        "/v1/auth/terminal", json={"terminal_id": till.terminal_id, "secret": till.secret}
    )
    assert r.status == 429
    assert await error_code(r) == "too_many_attempts"
    other = await world.till()  # another terminal is not affected
    assert (await world.sign_in(other)).headers


async def test_owners_claiming_at_once_get_exactly_one_claim(world: World) -> None:
    # rule E4: the first successful claim wins, the database decides the race
    owners = [await world.citizen() for _ in range(3)]
    cert_no = await world.certificate([o.id_number for o in owners])
    responses = await asyncio.gather(
        *(
            world.client.post("/v1/claims", json={"certificate_no": cert_no}, headers=o.headers)
            for o in owners * 4
        )
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] + [409] * 11
    codes = {(await r.json()).get("error", {}).get("code") for r in responses if r.status == 409}
    assert codes == {"certificate_already_claimed"}
    async with world.pool.acquire() as conn:
        issued = await conn.fetchval(
            "SELECT count(*) FROM vouchers v JOIN claims k ON k.id = v.claim_id "
            "JOIN certificates c ON c.id = k.certificate_id WHERE c.cert_no = $1",
            cert_no,
        )
    assert issued == 48


@pytest.mark.parametrize("raw", ["abc", "0", "-5", str(2**63), "9" * 30])
async def test_an_id_in_the_path_that_is_no_id_is_simply_not_found(world: World, raw: str) -> None:
    # never a database error for anything a client can send
    till = await world.till()
    r = await world.client.get(f"/v1/redemptions/{raw}", headers=till.headers)
    assert r.status == 404
    assert await error_code(r) == "not_found"
    r = await world.client.post(
        f"/v1/redemptions/{raw}/refunds",
        json={"remaining_bill_fen": 0},
        headers={**till.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status == 404


async def redeem_writes(world: World) -> tuple[float, float]:
    """The batched write's statements and the bills they carried so far, as /metrics says."""
    text = await (await world.client.get("/metrics")).text()
    found = {}
    for part in ("count", "sum"):
        pattern = rf'^voucher_batch_size_{part}{{kind="redeem_write"}} (\S+)$'
        match = re.search(pattern, text, re.MULTILINE)
        found[part] = float(match[1]) if match else 0.0
    return found["count"], found["sum"]


async def test_bills_of_many_tills_share_statements_and_each_gets_its_own_answer(
    world: World,
) -> None:
    # rules U4, U7: 24 tills redeem at once; one bill repeats a receipt number already
    # redeemed at its merchant. The others are written together; that one alone is refused.
    tills = [await world.till() for _ in range(24)]
    people = [await world.citizen_with_vouchers() for _ in range(24)]
    r = await world.redeem(tills[5], await world.qr(people[5]), receipt_no="DUP-1")
    assert r.status == 201
    tokens = [await world.qr(p) for p in people]
    statements, bills = await redeem_writes(world)
    responses = await asyncio.gather(
        *(
            world.redeem(
                till, token, count=2, receipt_no="DUP-1" if i == 5 else f"OK-{i}", bill_fen=40_000
            )
            for i, (till, token) in enumerate(zip(tills, tokens, strict=True))
        )
    )
    statements_after, bills_after = await redeem_writes(world)
    assert bills_after - bills > statements_after - statements  # statements were shared
    for i, resp in enumerate(responses):
        if i == 5:
            assert resp.status == 409
            assert await error_code(resp) == "bill_already_redeemed"
        else:
            assert resp.status == 201, await resp.text()
            body = await resp.json()
            assert (body["receipt_no"], body["voucher_count"]) == (f"OK-{i}", 2)
            assert body["terminal"]["id"] == tills[i].terminal_id
    for i, person in enumerate(people):
        wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
        assert wallet["counts"]["used"] == (1 if i == 5 else 2)
    ids = [(await r.json())["redemption_id"] for i, r in enumerate(responses) if i != 5]
    async with world.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT i.redemption_id, v.status, r.voucher_count FROM redemption_items i"
            " JOIN vouchers v ON v.id = i.voucher_id JOIN redemptions r ON r.id = i.redemption_id"
            " WHERE i.redemption_id = ANY($1::bigint[]) AND i.refund_id IS NULL",
            ids,
        )
    assert len(rows) == 2 * 23  # each bill holds its own two vouchers, all redeemed
    assert {(r["status"], r["voucher_count"]) for r in rows} == {("redeemed", 2)}
    assert {r["redemption_id"] for r in rows} == set(ids)


async def test_a_refusal_is_the_first_answer_for_its_key(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # rule U7, as payment APIs do it: the merchant is suspended, the bill refused; after the
    # suspension is lifted, a retry with the same key and body still gets that refusal, and
    # only a new key is decided afresh
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token = await world.qr(person)
    async with world.pool.acquire() as conn:
        await conn.execute(
            "UPDATE merchants SET status = 'suspended' WHERE id = $1", till.merchant_id
        )
    key = uuid.uuid4().hex
    caplog.set_level(logging.INFO, logger="server.access")
    first = await world.redeem(till, token, receipt_no="R-KEEP", key=key)
    assert (first.status, await error_code(first)) == (403, "merchant_suspended")
    logged = [r for r in caplog.records if getattr(r, "route", "") == "/v1/redemptions"]
    assert [getattr(r, "error_code", None) for r in logged] == ["merchant_suspended"]
    async with world.pool.acquire() as conn:
        await conn.execute("UPDATE merchants SET status = 'active' WHERE id = $1", till.merchant_id)
    again = await world.redeem(till, token, receipt_no="R-KEEP", key=key)
    assert again.status == 403
    assert again.headers["Idempotent-Replay"] == "true"
    assert (await again.json()) == (await first.json())
    other_body = await world.redeem(till, token, receipt_no="R-OTHER", key=key)
    assert (other_body.status, await error_code(other_body)) == (422, "idempotency_key_reused")
    fresh = await world.redeem(till, token, receipt_no="R-KEEP")
    assert fresh.status == 201, await fresh.text()
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    assert wallet["counts"]["used"] == 1


async def test_a_request_refused_before_it_began_keeps_nothing(world: World) -> None:
    # a malformed body is not a first answer: corrected, the same key goes through
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token = await world.qr(person)
    key = uuid.uuid4().hex
    bad = await world.client.post(
        "/v1/redemptions",
        json={"token": token, "bill_fen": -5, "receipt_no": "R-FIX", "voucher_count": 1},
        headers={**till.headers, "Idempotency-Key": key},
    )
    assert bad.status == 400
    good = await world.redeem(till, token, receipt_no="R-FIX", key=key)
    assert good.status == 201, await good.text()
