"""Receipt numbers as shops number them (rule U4, updated; issue 11 item 3), the merchant's
settings, refunds approved by a manager (item 5), the vouchers left (item 6) and the cash a
refund handed back (item 7), over HTTP against the real app, PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from typing import Any

from ops import demo as seed
from tests.e2e.conftest import Citizen, Clock, Till, World, shanghai


async def error_of(response: Any) -> dict[str, Any]:
    body = await response.json()
    return dict(body["error"])


async def quote(world: World, till: Till, token: str, receipt_no: str | None = None) -> Any:
    body: dict[str, Any] = {"token": token, "bill_fen": 40_000}
    if receipt_no is not None:
        body["receipt_no"] = receipt_no
    return await world.client.post("/v1/quote", json=body, headers=till.headers)


async def set_settings(world: World, headers: dict[str, str], merchant_id: int, **kw: Any) -> Any:
    return await world.client.post(
        f"/v1/merchants/{merchant_id}/settings",
        json={"reason": "how this shop works", **kw},
        headers=headers,
    )


async def wallet_counts(world: World, person: Citizen) -> dict[str, int]:
    wallet = await (await world.client.get("/v1/wallet", headers=person.headers)).json()
    return dict(wallet["counts"])


async def test_a_receipt_number_used_today_is_refused_at_the_quote_with_what_to_do(
    world: World,
) -> None:
    # U4: till 2 used 0002; till 1 then quotes 0002 the same day (the shop numbers receipts
    # shop-wide): refused at the quote, before the cashier takes the money, saying what to do
    person = await world.citizen_with_vouchers()
    till_1 = await world.till()
    till_2 = await world.another_till(till_1)
    assert (await world.redeem(till_2, await world.qr(person), receipt_no="0002")).status == 201
    token = await world.qr(person)
    r = await quote(world, till_1, token, "0002")
    assert r.status == 409
    error = await error_of(r)
    assert error["code"] == "bill_already_redeemed"
    assert error["details"] == {"receipt_no": "0002"}
    assert "check the receipt number, or take the next receipt" in error["message"]
    # a different spelling of the same number is the same number (U4's normal form)
    assert (await error_of(await quote(world, till_1, token, " ０００２ ")))["code"] == (
        "bill_already_redeemed"
    )
    # nothing changed: the same code quotes and redeems the next receipt
    assert (await wallet_counts(world, person))["used"] == 1
    r = await quote(world, till_1, token, "0003")
    assert r.status == 200, await r.text()
    assert (await world.redeem(till_1, token, receipt_no="0003")).status == 201
    # a quote without a receipt number still works (the field is optional)
    assert (await quote(world, till_1, await world.qr(person))).status == 200
    # and the ledger refuses 0002 at the redeem as well, without a quote
    r = await world.redeem(till_1, await world.qr(person), receipt_no="0002")
    assert (r.status, (await error_of(r))["code"]) == (409, "bill_already_redeemed")


async def test_the_same_receipt_number_is_a_new_bill_the_next_business_day(
    world: World, clock: Clock
) -> None:
    # U4: shops restart their counters at midnight, Shanghai time (15:59 and 16:01 UTC are one
    # UTC date, two business dates)
    clock.now = shanghai(2024, 9, 10, 23, 59)
    till = await world.till()
    person = await world.citizen_with_vouchers()
    r = await world.redeem(till, await world.qr(person), receipt_no="0001")
    assert r.status == 201, await r.text()
    assert (await r.json())["business_date"] == "2024-09-10"
    clock.now = shanghai(2024, 9, 11, 0, 1)
    token = await world.qr(person)
    assert (await quote(world, till, token, "0001")).status == 200
    r = await world.redeem(till, token, receipt_no="0001")
    assert r.status == 201, await r.text()
    body = await r.json()
    assert (body["receipt_no"], body["business_date"]) == ("0001", "2024-09-11")
    # later that day, 0001 is taken again
    clock.now = shanghai(2024, 9, 11, 20, 0)  # signed in again: access tokens are short-lived
    till, person = await world.sign_in(till), await world.citizen(person.id_number)
    r = await quote(world, till, await world.qr(person), "0001")
    assert (await error_of(r))["code"] == "bill_already_redeemed"


async def test_tills_that_number_their_own_receipts_share_numbers_when_the_shop_says_so(
    world: World,
) -> None:
    # U4 [choice]: a merchant setting; off, two tills' 0002 are one bill (the test above); on,
    # each till's 0002 is its own bill, and one till's second 0002 is still refused
    person = await world.citizen_with_vouchers()
    till_1 = await world.till()
    till_2 = await world.another_till(till_1)
    manager = await world.staff("merchant_manager", merchant_id=till_1.merchant_id)
    r = await set_settings(world, manager, till_1.merchant_id, receipts_per_till=True)
    assert r.status == 200, await r.text()
    assert await r.json() == {
        "merchant_id": till_1.merchant_id,
        "receipts_per_till": True,
        "refund_needs_manager": False,
    }
    for till in (till_2, till_1):
        token = await world.qr(person)
        assert (await quote(world, till, token, "0002")).status == 200
        assert (await world.redeem(till, token, receipt_no="0002")).status == 201
    r = await quote(world, till_1, await world.qr(person), "0002")
    assert (await error_of(r))["code"] == "bill_already_redeemed"
    r = await world.redeem(till_2, await world.qr(person), receipt_no="0002")
    assert (await error_of(r))["code"] == "bill_already_redeemed"
    assert (await wallet_counts(world, person))["used"] == 2
    # a till's sign-in says how its shop numbers receipts
    r = await world.client.post(
        "/v1/auth/terminal", json={"terminal_id": till_1.terminal_id, "secret": till_1.secret}
    )
    merchant = (await r.json())["merchant"]
    assert (merchant["receipts_per_till"], merchant["refund_needs_manager"]) == (True, False)

    # a receipt number finds the asking till's own bill; the manager must say which till
    r = await world.client.get("/v1/redemptions?receipt_no=0002", headers=till_1.headers)
    assert (await r.json())["terminal"]["id"] == till_1.terminal_id
    r = await world.client.get("/v1/redemptions?receipt_no=0002", headers=manager)
    error = await error_of(r)
    assert (r.status, error["code"]) == (400, "invalid_request")
    assert error["details"]["terminals"] == sorted([till_1.terminal_id, till_2.terminal_id])
    r = await world.client.get(
        f"/v1/redemptions?receipt_no=0002&terminal_id={till_2.terminal_id}", headers=manager
    )
    assert (await r.json())["terminal"]["id"] == till_2.terminal_id
    # ... of the day asked (today unless said)
    r = await world.client.get(
        "/v1/redemptions?receipt_no=0002&date=2024-09-09", headers=till_1.headers
    )
    assert (r.status, (await error_of(r))["code"]) == (404, "not_found")


async def test_only_the_shops_manager_or_its_district_changes_its_settings(
    world: World,
) -> None:
    till = await world.till()
    other = await world.till()
    url = f"/v1/merchants/{till.merchant_id}/settings"
    manager = await world.staff("merchant_manager", merchant_id=till.merchant_id)
    others_manager = await world.staff("merchant_manager", merchant_id=other.merchant_id)
    elsewhere = await world.staff("district_operator", district="gaoxin")
    city = await world.staff("city_operator")

    async def settings() -> dict[str, Any]:
        return dict(await (await world.client.get(url, headers=till.headers)).json())

    before = await settings()
    assert before == {
        "merchant_id": till.merchant_id,
        "receipts_per_till": False,
        "refund_needs_manager": False,
    }
    refused = [
        (await set_settings(world, till.headers, till.merchant_id, receipts_per_till=True), 403),
        (await set_settings(world, others_manager, till.merchant_id, receipts_per_till=True), 404),
        (await set_settings(world, elsewhere, till.merchant_id, receipts_per_till=True), 403),
        (await set_settings(world, manager, till.merchant_id, receipts_per_till="yes"), 400),
        (await world.client.post(url, json={"receipts_per_till": True}, headers=manager), 400),
        (await set_settings(world, manager, till.merchant_id, per_till=True), 400),
    ]
    assert [(r.status, want) for r, want in refused] == [(want, want) for _, want in refused]
    assert (await error_of(refused[0][0]))["code"] == "forbidden"
    assert (await error_of(refused[3][0]))["code"] == "invalid_request"
    assert await settings() == before  # nothing changed
    r = await world.client.get(url, headers=others_manager)
    assert r.status == 404  # another shop's settings do not exist for its manager (X2)

    r = await set_settings(world, manager, till.merchant_id, refund_needs_manager=True)
    assert r.status == 200, await r.text()
    r = await set_settings(world, city, till.merchant_id, receipts_per_till=True)
    assert await r.json() == {**before, "receipts_per_till": True, "refund_needs_manager": True}
    async with world.pool.acquire() as conn:
        audited = await conn.fetch(
            "SELECT actor, reason, details FROM audit_log WHERE action = 'merchant.settings' "
            "AND subject = $1 ORDER BY id",
            f"merchant:{till.merchant_id}",
        )
    assert [a["actor"].split(":")[0] for a in audited] == ["merchant_manager", "city_operator"]
    assert {a["reason"] for a in audited} == {"how this shop works"}


async def _bill_to_refund(world: World, till: Till) -> tuple[str, Citizen]:
    person = await world.citizen_with_vouchers()
    r = await world.redeem(till, await world.qr(person), bill_fen=100_000, count=5)
    assert r.status == 201, await r.text()
    return f"/v1/redemptions/{(await r.json())['redemption_id']}/refunds", person


async def account(world: World, role: str, **scope: Any) -> str:
    """A staff account (password ``a long password``): its username."""
    username = f"{role.split('_')[0]}-{uuid.uuid4().hex[:10]}"
    async with world.pool.acquire() as conn:
        await seed.account(conn, username=username, password="a long password", role=role, **scope)
    return username


async def approval_of(
    world: World,
    till: Till,
    url: str,
    remaining_bill_fen: int,
    key: str,
    username: str,
    password: str = "a long password",  # noqa: S107 - a test account's
) -> Any:
    """POST .../refund-approvals: the manager, at the till, approves one refund."""
    return await world.client.post(
        url.replace("/refunds", "/refund-approvals"),
        json={
            "username": username,
            "password": password,
            "remaining_bill_fen": remaining_bill_fen,
            "refund_key": key,
        },
        headers=till.headers,
    )


async def approved(world: World, till: Till, url: str, remaining: int, key: str, who: str) -> str:
    r = await approval_of(world, till, url, remaining, key, who)
    assert r.status == 201, await r.text()
    assert r.headers["Cache-Control"] == "no-store"
    return str((await r.json())["approval"])


async def send_refund(
    world: World, till: Till, url: str, remaining: int, key: str, approval: str | None = None
) -> Any:
    headers = {**till.headers, "Idempotency-Key": key}
    if approval is not None:
        headers["Manager-Approval"] = approval
    return await world.client.post(url, json={"remaining_bill_fen": remaining}, headers=headers)


async def refusal(response: Any) -> tuple[int, str, Any]:
    error = await error_of(response)
    details = error["details"]
    return response.status, error["code"], details.get("reason", details.get("differs"))


async def test_a_refund_needs_a_managers_approval_of_that_very_refund_when_the_shop_says_so(
    world: World,
) -> None:
    # issue 11 item 5: the server refuses, whatever the till does, and changes nothing
    till = await world.till()
    other = await world.till()
    manager = await account(world, "merchant_manager", merchant_id=till.merchant_id)
    manager_headers = await world.staff("merchant_manager", merchant_id=till.merchant_id)
    assert (
        await set_settings(world, manager_headers, till.merchant_id, refund_needs_manager=True)
    ).status == 200
    url, person = await _bill_to_refund(world, till)
    key = uuid.uuid4().hex

    # who cannot approve at this till: nothing is issued
    others_manager = await account(world, "merchant_manager", merchant_id=other.merchant_id)
    district = await account(world, "district_operator", district="dongchangfu")
    for username, password, reason in (
        (manager, "a wrong password", "wrong_password"),
        ("nobody-at-all", "a long password", "wrong_password"),
        (others_manager, "a long password", "not_this_shops_manager"),
        (district, "a long password", "not_this_shops_manager"),
    ):
        r = await approval_of(world, till, url, 55_000, key, username, password)
        assert await refusal(r) == (403, "manager_approval_required", reason)
    other_url, _ = await _bill_to_refund(world, other)  # another shop's bill: not found (X2)
    r = await approval_of(world, till, other_url, 55_000, key, manager)
    assert (r.status, (await error_of(r))["code"]) == (404, "not_found")

    # what is no approval of this refund: refused, nothing refunded
    access_token = manager_headers["Authorization"].split(" ", 1)[1]
    for approval, reason in (
        (None, "missing"),
        ("not-a-token", "invalid"),
        (access_token, "invalid"),  # the manager's access token is no approval any more
        (till.headers["Authorization"].split(" ", 1)[1], "invalid"),  # nor the till's
    ):
        r = await send_refund(world, till, url, 55_000, key, approval)
        assert await refusal(r) == (403, "manager_approval_required", reason)

    # an approval is for one refund: another key, amount, bill or till is refused by name
    approval = await approved(world, till, url, 55_000, key, manager)
    second_url, _ = await _bill_to_refund(world, till)
    second_till = await world.another_till(till)
    for where, remaining, its_key, differs in (
        (till, 55_000, uuid.uuid4().hex, ["key"]),
        (till, 0, key, ["remaining_bill_fen"]),
        (second_till, 55_000, key, ["terminal_id"]),
    ):
        r = await send_refund(world, where, url, remaining, its_key, approval)
        assert await refusal(r) == (403, "approval_for_another_refund", differs)
    r = await send_refund(world, till, second_url, 55_000, key, approval)
    assert await refusal(r) == (403, "approval_for_another_refund", ["redemption_id"])
    assert (await wallet_counts(world, person))["used"] == 5  # nothing was refunded

    r = await send_refund(world, till, url, 55_000, key, approval)
    assert r.status == 201, await r.text()
    body = await r.json()
    assert (body["refunded_count"], body["refunds"][0]["cash_back_fen"]) == (3, 15_000)
    async with world.pool.acquire() as conn:
        approved_by = await conn.fetchval(
            "SELECT a.username FROM refunds f JOIN accounts a ON a.id = f.approved_by "
            "WHERE f.idempotency_key = $1",
            key,
        )
    assert approved_by == manager
    # used once: the same request again (its answer was lost) is that refund, with or
    # without the approval; any other refund needs an approval of its own
    for again in (approval, None):
        r = await send_refund(world, till, url, 55_000, key, again)
        assert (r.status, (await r.json())["refunded_count"]) == (201, 3)
    r = await send_refund(world, till, url, 0, uuid.uuid4().hex, approval)
    assert await refusal(r) == (403, "approval_for_another_refund", ["remaining_bill_fen", "key"])
    # a manager refunding in person approves it themselves
    r = await world.client.post(
        url,
        json={"remaining_bill_fen": 0},
        headers={**manager_headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert (r.status, (await r.json())["status"]) == (201, "refunded")
    assert (await wallet_counts(world, person))["used"] == 0


async def test_an_approval_lives_two_minutes(world: World, clock: Clock) -> None:
    till = await world.till()
    manager = await account(world, "merchant_manager", merchant_id=till.merchant_id)
    city = await world.staff("city_operator")
    r = await set_settings(world, city, till.merchant_id, refund_needs_manager=True)
    assert r.status == 200
    url, _ = await _bill_to_refund(world, till)
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    r = await approval_of(world, till, url, 55_000, first, manager)
    assert (r.status, (await r.json())["expires_in"]) == (201, 120)
    approval = (await r.json())["approval"]
    clock.advance(seconds=119)
    r = await send_refund(world, till, url, 55_000, first, approval)
    assert r.status == 201, await r.text()
    approval = await approved(world, till, url, 0, second, manager)
    clock.advance(seconds=121)
    r = await send_refund(world, till, url, 0, second, approval)
    assert await refusal(r) == (403, "manager_approval_required", "expired")


async def test_a_disabled_managers_approval_approves_nothing(world: World) -> None:
    # rules X1, X2 with item 5: the approval is checked as a sign-in is, at once
    till = await world.till()
    manager = await account(world, "merchant_manager", merchant_id=till.merchant_id)
    city = await world.staff("city_operator")
    r = await set_settings(world, city, till.merchant_id, refund_needs_manager=True)
    assert r.status == 200
    url, _ = await _bill_to_refund(world, till)
    key = uuid.uuid4().hex
    approval = await approved(world, till, url, 0, key, manager)
    async with world.pool.acquire() as conn:
        account_id = await conn.fetchval("SELECT id FROM accounts WHERE username = $1", manager)
    r = await world.client.post(
        f"/v1/accounts/{account_id}/status",
        json={"status": "disabled", "reason": "left the shop"},
        headers=city,
    )
    assert r.status == 200, await r.text()
    r = await send_refund(world, till, url, 0, key, approval)
    assert await refusal(r) == (403, "manager_approval_required", "disabled")
    r = await approval_of(world, till, url, 0, uuid.uuid4().hex, manager)
    assert await refusal(r) == (403, "manager_approval_required", "wrong_password")


async def test_without_the_setting_a_till_refunds_alone(world: World) -> None:
    till = await world.till()
    url, _ = await _bill_to_refund(world, till)
    r = await world.client.post(
        url,
        json={"remaining_bill_fen": 55_000},
        headers={**till.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status == 201, await r.text()


async def test_the_redeem_answer_says_how_many_vouchers_the_citizen_has_left(
    world: World,
) -> None:
    # issue 11 item 6: printed on the customer's receipt; a retried request gets it too
    person = await world.citizen_with_vouchers()
    till = await world.till()
    token, key = await world.qr(person), uuid.uuid4().hex

    async def first_bill() -> Any:
        return await world.redeem(till, token, bill_fen=100_000, count=3, receipt_no="V1", key=key)

    assert (await (await first_bill()).json())["citizen"]["vouchers_left"] == 45
    again = await first_bill()
    assert again.headers.get("Idempotent-Replay") == "true"
    assert (await again.json())["citizen"]["vouchers_left"] == 45
    await world.redeem(till, await world.qr(person), bill_fen=40_000, count=2)
    again = await first_bill()
    assert (await again.json())["citizen"]["vouchers_left"] == 43  # what is left now


async def test_the_day_lists_refunds_with_their_till_and_the_cash_handed_back(
    world: World,
) -> None:
    # issue 11 item 7: one name for the till on every row; the cash each refund handed back
    till = await world.till()
    url, _ = await _bill_to_refund(world, till)  # 1,000 元, 5 vouchers, 500 元 cash
    for remaining in (95_000, 55_000, 0):  # 50 元, then 400 元, then the rest
        r = await world.client.post(
            url,
            json={"remaining_bill_fen": remaining},
            headers={**till.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status == 201, await r.text()
    found = await r.json()
    assert [f["cash_back_fen"] for f in found["refunds"]] == [0, 15_000, 35_000]
    day = await (await world.client.get("/v1/merchant/day", headers=till.headers)).json()
    assert [(f["terminal"], f["cash_back_fen"]) for f in day["refunds"]] == [
        ({"id": till.terminal_id, "label": "收银台 1"}, back) for back in (0, 15_000, 35_000)
    ]
    assert day["refunds"][0]["terminal_id"] == till.terminal_id
