"""The database itself refuses what the SPEC forbids, whatever the code above it does."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from tests import factories as f


async def test_a_certificate_is_claimed_only_once_by_anyone(db: asyncpg.Connection) -> None:
    # rule E4: one claim per certificate, ever, whichever owner makes it
    campaign_id = await f.campaign(db)
    first, second = await f.citizen(db), await f.citizen(db)
    cert_id = await f.certificate(db)
    insert = """
        INSERT INTO claims (campaign_id, certificate_id, citizen_id, base_fen, rate_bp,
                            voucher_count, face_value_fen, claimed_at, expires_at)
        VALUES ($1, $2, $3, 120000000, 40, 48, 10000, now(), now() + interval '90 days')
    """
    await db.execute(insert, campaign_id, cert_id, first)
    with pytest.raises(asyncpg.UniqueViolationError, match="claims_certificate_id_key"):
        await db.execute(insert, campaign_id, cert_id, second)


async def test_a_claim_cannot_carry_more_vouchers_than_base_times_rate(
    db: asyncpg.Connection,
) -> None:
    # rule A3: 1,200,000 元 at 40 bp is 4,800 元, so 48 vouchers of 100 元 and not 49
    campaign_id = await f.campaign(db)
    citizen_id = await f.citizen(db)
    cert_id = await f.certificate(db)
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            """
            INSERT INTO claims (campaign_id, certificate_id, citizen_id, base_fen, rate_bp,
                                voucher_count, face_value_fen, claimed_at, expires_at)
            VALUES ($1, $2, $3, 120000000, 40, 49, 10000, now(), now() + interval '1 day')
            """,
            campaign_id,
            cert_id,
            citizen_id,
        )


async def test_a_bill_is_redeemed_once_even_against_another_campaign(
    db: asyncpg.Connection,
) -> None:
    # rule U4: merchant + business date + receipt number is unique across campaigns
    first_campaign, other_campaign = await f.campaign(db), await f.campaign(db)
    merchant_id = await f.merchant(db)
    terminal_id = await f.terminal(db, merchant_id)
    citizen_id = await f.citizen(db)
    receipt = f.ref("R")
    common: f.Parties = {
        "merchant_id": merchant_id,
        "terminal_id": terminal_id,
        "citizen_id": citizen_id,
    }
    await f.redemption(db, campaign_id=first_campaign, receipt_no=receipt, **common)
    with pytest.raises(asyncpg.UniqueViolationError, match="redemptions_receipt_no_per_day"):
        await f.redemption(db, campaign_id=other_campaign, receipt_no=receipt, **common)


async def test_the_same_receipt_number_at_another_merchant_is_another_bill(
    db: asyncpg.Connection,
) -> None:
    # rule U4: the bill is merchant + receipt number, not the receipt number alone
    campaign_id = await f.campaign(db)
    citizen_id = await f.citizen(db)
    receipt = f.ref("R")
    ids = []
    for _ in range(2):
        merchant_id = await f.merchant(db)
        terminal_id = await f.terminal(db, merchant_id)
        ids.append(
            await f.redemption(
                db,
                campaign_id=campaign_id,
                merchant_id=merchant_id,
                terminal_id=terminal_id,
                citizen_id=citizen_id,
                receipt_no=receipt,
            )
        )
    assert len(set(ids)) == 2


async def test_a_redemption_cannot_use_more_vouchers_than_the_bill_allows(
    db: asyncpg.Connection,
) -> None:
    # rule U3: 399.99 元 allows one voucher, not two
    campaign_id = await f.campaign(db)
    merchant_id = await f.merchant(db)
    terminal_id = await f.terminal(db, merchant_id)
    citizen_id = await f.citizen(db)
    with pytest.raises(asyncpg.CheckViolationError, match="redemptions_check"):
        await f.redemption(
            db,
            campaign_id=campaign_id,
            merchant_id=merchant_id,
            terminal_id=terminal_id,
            citizen_id=citizen_id,
            bill_fen=39999,
            voucher_count=2,
        )


@pytest.mark.parametrize("bill_fen", [0, -20000, 10**12 + 1])
async def test_a_bill_amount_outside_the_range_is_refused(
    db: asyncpg.Connection, bill_fen: int
) -> None:
    campaign_id = await f.campaign(db)
    merchant_id = await f.merchant(db)
    terminal_id = await f.terminal(db, merchant_id)
    citizen_id = await f.citizen(db)
    with pytest.raises(asyncpg.CheckViolationError):
        await f.redemption(
            db,
            campaign_id=campaign_id,
            merchant_id=merchant_id,
            terminal_id=terminal_id,
            citizen_id=citizen_id,
            bill_fen=bill_fen,
        )


async def test_a_voucher_leaves_available_only_by_a_conditional_update(
    db: asyncpg.Connection,
) -> None:
    # rule U7: the second of two conditional updates finds nothing to change
    campaign_id = await f.campaign(db)
    citizen_id = await f.citizen(db)
    _, (voucher_id, *_) = await f.claim_with_vouchers(db, campaign_id, citizen_id)
    take = (
        "UPDATE vouchers SET status = 'redeemed', redeemed_at = now() "
        "WHERE id = $1 AND status = 'available'"
    )
    assert await db.execute(take, voucher_id) == "UPDATE 1"
    assert await db.execute(take, voucher_id) == "UPDATE 0"


async def test_a_redeemed_voucher_cannot_be_redeemed_again_by_an_unconditional_update(
    db: asyncpg.Connection,
) -> None:
    # rule U7: even code that forgets the condition cannot redeem a voucher twice
    campaign_id = await f.campaign(db)
    citizen_id = await f.citizen(db)
    _, (voucher_id, *_) = await f.claim_with_vouchers(db, campaign_id, citizen_id)
    redeem = "UPDATE vouchers SET status = 'redeemed', redeemed_at = $2 WHERE id = $1"
    await db.execute(redeem, voucher_id, datetime(2024, 9, 2, tzinfo=UTC))
    with pytest.raises(asyncpg.CheckViolationError, match="already redeemed"):
        await db.execute(redeem, voucher_id, datetime(2024, 9, 3, tzinfo=UTC))


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        (["revoked"], "available"),  # rule X1: a clawed-back voucher never comes back
        (["redeemed"], "revoked"),  # a spent voucher cannot be clawed back
    ],
)
async def test_a_voucher_moves_only_along_allowed_transitions(
    db: asyncpg.Connection, path: list[str], refused: str
) -> None:
    campaign_id = await f.campaign(db)
    citizen_id = await f.citizen(db)
    _, (voucher_id, *_) = await f.claim_with_vouchers(db, campaign_id, citizen_id)
    move = (
        "UPDATE vouchers SET status = $2, "
        "redeemed_at = CASE WHEN $2 = 'redeemed' THEN now() END WHERE id = $1"
    )
    for status in path:
        await db.execute(move, voucher_id, status)
    with pytest.raises(asyncpg.CheckViolationError, match="cannot go from"):
        await db.execute(move, voucher_id, refused)


async def test_a_voucher_keeps_its_expiry_for_life(db: asyncpg.Connection) -> None:
    # rule F1: a refunded voucher comes back with its expiry unchanged; nothing may move it
    campaign_id = await f.campaign(db)
    citizen_id = await f.citizen(db)
    _, (voucher_id, *_) = await f.claim_with_vouchers(db, campaign_id, citizen_id)
    with pytest.raises(asyncpg.CheckViolationError, match="fixed"):
        await db.execute(
            "UPDATE vouchers SET expires_at = expires_at + interval '1 day' WHERE id = $1",
            voucher_id,
        )


async def test_a_voucher_is_on_at_most_one_live_redemption(db: asyncpg.Connection) -> None:
    # rule U7: the unique live item refuses a second redemption of the same voucher
    campaign_id = await f.campaign(db)
    citizen_id = await f.citizen(db)
    merchant_id = await f.merchant(db)
    terminal_id = await f.terminal(db, merchant_id)
    _, (voucher_id, *_) = await f.claim_with_vouchers(db, campaign_id, citizen_id)
    common: f.Parties = {
        "merchant_id": merchant_id,
        "terminal_id": terminal_id,
        "citizen_id": citizen_id,
    }
    first = await f.redemption(db, campaign_id=campaign_id, **common)
    second = await f.redemption(db, campaign_id=campaign_id, **common)
    item = "INSERT INTO redemption_items (redemption_id, voucher_id) VALUES ($1, $2)"
    await db.execute(item, first, voucher_id)
    with pytest.raises(asyncpg.UniqueViolationError, match="redemption_items_one_live"):
        await db.execute(item, second, voucher_id)


async def test_a_refunded_voucher_can_be_redeemed_again(db: asyncpg.Connection) -> None:
    # rule F1: once its item is marked refunded the voucher may go on a new redemption
    campaign_id = await f.campaign(db)
    citizen_id = await f.citizen(db)
    merchant_id = await f.merchant(db)
    terminal_id = await f.terminal(db, merchant_id)
    _, (voucher_id, *_) = await f.claim_with_vouchers(db, campaign_id, citizen_id)
    common: f.Parties = {
        "merchant_id": merchant_id,
        "terminal_id": terminal_id,
        "citizen_id": citizen_id,
    }
    first = await f.redemption(db, campaign_id=campaign_id, **common)
    await db.execute(
        "INSERT INTO redemption_items (redemption_id, voucher_id) VALUES ($1, $2)",
        first,
        voucher_id,
    )
    refund_id = await db.fetchval(
        "INSERT INTO refunds (redemption_id, terminal_id, remaining_bill_fen, returned_count, "
        "idempotency_key, request_hash) VALUES ($1, $2, 0, 1, $3, $4) RETURNING id",
        first,
        terminal_id,
        f.ref("idem"),
        f.fake_hash(),
    )
    await db.execute(
        "UPDATE redemption_items SET refund_id = $1 WHERE redemption_id = $2", refund_id, first
    )
    second = await f.redemption(db, campaign_id=campaign_id, **common)
    await db.execute(
        "INSERT INTO redemption_items (redemption_id, voucher_id) VALUES ($1, $2)",
        second,
        voucher_id,
    )
    live = await db.fetchval(
        "SELECT count(*) FROM redemption_items WHERE voucher_id = $1 AND refund_id IS NULL",
        voucher_id,
    )
    assert live == 1


async def test_a_qr_token_id_is_consumed_once(db: asyncpg.Connection) -> None:
    # rule U5: single-use
    citizen_id = await f.citizen(db)
    jti = await f.consumed_token(db, citizen_id)
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute(
            "INSERT INTO consumed_tokens (jti, citizen_id, expires_at) VALUES ($1, $2, now())",
            jti,
            citizen_id,
        )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET reason = 'changed' WHERE id = $1",
        "DELETE FROM audit_log WHERE id = $1",
    ],
)
async def test_the_audit_log_is_append_only(db: asyncpg.Connection, statement: str) -> None:
    # rule X1: who, when and why stays as written
    entry = await db.fetchval(
        "INSERT INTO audit_log (actor, action, subject, reason) "
        "VALUES ('city_operator:1', 'citizen.revoke', 'citizen:1', 'selling vouchers') "
        "RETURNING id"
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db.execute(statement, entry)
    assert await db.fetchval("SELECT reason FROM audit_log WHERE id = $1", entry) == (
        "selling vouchers"
    )


async def test_the_audit_log_cannot_be_truncated(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db.execute("TRUNCATE audit_log")


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        (
            "INSERT INTO merchants (name, district, status) VALUES ('x', $1, 'open')",
            asyncpg.CheckViolationError,
        ),
        (
            "INSERT INTO merchants (name, district) VALUES ('x', 'atlantis' || $1)",
            asyncpg.ForeignKeyViolationError,
        ),
        (
            "INSERT INTO accounts (username, role, credential_hash) "
            "VALUES ('op-' || $1, 'district_operator', '\\x00')",
            asyncpg.CheckViolationError,
        ),
        (
            "INSERT INTO settlements (campaign_id, district, month) "
            "SELECT id, $1, '2024-09-15' FROM campaigns LIMIT 1",
            asyncpg.CheckViolationError,
        ),
        (
            "INSERT INTO terminals (merchant_id, label, credential_hash, status) "
            "SELECT id, $1, '\\x00', 'revoked' FROM merchants LIMIT 1",
            asyncpg.CheckViolationError,
        ),
    ],
    ids=[
        "unknown-merchant-status",
        "unknown-district",
        "district-operator-without-district",
        "settlement-month-not-first-day",
        "revoked-terminal-without-time",
    ],
)
async def test_states_scopes_and_references_are_checked(
    db: asyncpg.Connection, sql: str, error: type[Exception]
) -> None:
    await f.campaign(db)
    await f.merchant(db, "dongchangfu")
    with pytest.raises(error):
        await db.execute(sql, "dongchangfu")


async def test_a_revoked_citizen_must_have_a_reason(db: asyncpg.Connection) -> None:
    # rule X1: revocation is recorded with why
    citizen_id = await f.citizen(db)
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            "UPDATE citizens SET status = 'revoked', revoked_at = now() WHERE id = $1", citizen_id
        )
