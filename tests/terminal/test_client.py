"""The terminal's HTTP client against the real server: typed answers, refusals with their
codes, a fresh sign-in when the access token expires, and the failure model of rule U7:
the same request with the same key on no answer, the truth asked by key, never a success
that was not received."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from client.http import ApiError, OutcomeUnknown, Unreachable
from client.till import TillClient, new_key
from terminal.config import TerminalConfig
from tests.e2e.test_till import key_at_work
from tests.terminal.conftest import FAST_CLIENT, Clock, LiveServer, LossyProxy, World, wallet_counts


@pytest.fixture
async def till(till_config: TerminalConfig) -> AsyncIterator[TillClient]:
    client = TillClient(
        till_config.server_url, till_config.terminal_id, till_config.secret, **FAST_CLIENT
    )
    yield client
    await client.close()


@pytest.fixture
async def via_proxy(till_config: TerminalConfig, proxy: LossyProxy) -> AsyncIterator[TillClient]:
    client = TillClient(proxy.url, till_config.terminal_id, till_config.secret, **FAST_CLIENT)
    yield client
    await client.close()


def receipt() -> str:
    return f"R-{uuid.uuid4().hex[:8]}"


async def test_sign_in_tells_who_the_terminal_is(till: TillClient) -> None:
    session = await till.sign_in()
    assert session.merchant.district == "dongchangfu"
    assert session.terminal.label and session.merchant.name.startswith("商户-")
    assert await till.health()
    assert (await till.district_names())["dongchangfu"] == "东昌府区"


async def test_a_wrong_secret_is_refused_in_words_not_retried(
    till_config: TerminalConfig,
) -> None:
    client = TillClient(till_config.server_url, till_config.terminal_id, "wrong", **FAST_CLIENT)
    try:
        with pytest.raises(ApiError) as refused:
            await client.sign_in()
        assert (refused.value.code, refused.value.status) == ("unauthenticated", 401)
    finally:
        await client.close()


async def test_quote_then_redeem_fewer_than_allowed(world: World, till: TillClient) -> None:
    # rules U3, U6: 450 元 allows 2; the citizen uses 1
    person = await world.citizen_with_vouchers()
    token = await world.qr(person)
    quote = await till.quote(token, 45_000)
    assert (quote.available_count, quote.max_by_bill, quote.usable_count) == (48, 2, 2)
    assert (quote.value_fen, quote.remaining_fen) == (20_000, 25_000)
    assert quote.citizen.masked_id.startswith("3715")
    number = receipt()
    done = await till.redeem(token, 45_000, number, 1)
    assert (done.voucher_count, done.value_fen, done.remaining_fen) == (1, 10_000, 35_000)
    assert done.receipt_no == number.upper() and len(done.voucher_ids) == 1
    assert not done.replayed and not done.recovered
    assert (await wallet_counts(world, person))["used"] == 1


async def test_the_same_key_gives_the_first_answer_and_redeems_once(
    world: World, till: TillClient
) -> None:
    # rule U7
    person = await world.citizen_with_vouchers()
    token, key, number = await world.qr(person), new_key(), receipt()
    first = await till.redeem(token, 45_000, number, 2, key=key)
    again = await till.redeem(token, 45_000, number, 2, key=key)
    assert again.replayed and again.redemption_id == first.redemption_id
    assert (await wallet_counts(world, person))["used"] == 2


@pytest.mark.parametrize(
    ("bill_fen", "count", "code"),
    [(19_999, 1, "bill_too_small"), (45_000, 3, "too_many_vouchers")],  # rule U3
)
async def test_refusals_come_with_their_code(
    world: World, till: TillClient, bill_fen: int, count: int, code: str
) -> None:
    person = await world.citizen_with_vouchers()
    with pytest.raises(ApiError) as refused:
        await till.redeem(await world.qr(person), bill_fen, receipt(), count)
    assert refused.value.code == code
    assert (await wallet_counts(world, person))["used"] == 0


async def test_an_expired_access_token_is_renewed_without_the_cashier_noticing(
    world: World, till: TillClient, clock: Clock
) -> None:
    await till.sign_in()
    clock.advance(minutes=16)  # access tokens live 15 minutes
    person = await world.citizen_with_vouchers()
    quote = await till.quote(await world.qr(person), 40_000)
    assert quote.usable_count == 2


async def test_a_stopped_server_is_unreachable_and_nothing_is_redeemed(
    world: World, till: TillClient, live: LiveServer
) -> None:
    person = await world.citizen_with_vouchers()
    token = await world.qr(person)
    await till.quote(token, 45_000)
    await live.stop()
    with pytest.raises(Unreachable) as down:
        await till.redeem(token, 45_000, receipt(), 1)
    assert not down.value.maybe_sent  # refused connections: it never arrived
    assert not await till.health()
    await live.start()
    assert (await wallet_counts(world, person))["used"] == 0
    done = await till.redeem(token, 45_000, receipt(), 1)  # the same code, once it is back
    assert done.voucher_count == 1


def _posts_to(path: str) -> Any:
    def lose(request: web.Request) -> bool:
        return request.method == "POST" and request.path == path

    return lose


async def test_a_lost_answer_is_retried_with_the_same_key_and_redeems_once(
    world: World, via_proxy: TillClient, proxy: LossyProxy
) -> None:
    person = await world.citizen_with_vouchers()
    token = await world.qr(person)
    lost = {"n": 0}

    def lose_first(request: web.Request) -> bool:
        if request.method == "POST" and request.path == "/v1/redemptions" and lost["n"] == 0:
            lost["n"] += 1
            return True
        return False

    proxy.lose = lose_first
    done = await via_proxy.redeem(token, 45_000, receipt(), 2)
    assert done.replayed  # the second attempt got the stored first answer
    assert proxy.dropped == ["POST /v1/redemptions"]
    assert proxy.forwarded.count("POST /v1/redemptions") == 2
    assert (await wallet_counts(world, person))["used"] == 2


async def test_when_every_answer_is_lost_the_terminal_asks_by_key(
    world: World, via_proxy: TillClient, proxy: LossyProxy
) -> None:
    person = await world.citizen_with_vouchers()
    token = await world.qr(person)
    codes: list[str | None] = []

    def lose(request: web.Request) -> bool:
        if request.method == "GET":
            codes.append(request.headers.get("Voucher-Code"))
        return request.method == "POST" and request.path == "/v1/redemptions"

    proxy.lose = lose
    key = new_key()
    done = await via_proxy.redeem(token, 45_000, receipt(), 1, key=key)
    assert done.recovered and done.voucher_count == 1
    # issue 14: the request's code goes with the question, in a header, never in the URL
    assert proxy.forwarded[-1] == f"GET /v1/redemptions?idempotency_key={key}"
    assert codes == [token]
    assert (await wallet_counts(world, person))["used"] == 1


async def test_with_no_answer_at_all_the_outcome_stays_unknown_until_asked(
    world: World, via_proxy: TillClient, proxy: LossyProxy
) -> None:
    person = await world.citizen_with_vouchers()
    token = await world.qr(person)
    await via_proxy.sign_in()
    proxy.lose = lambda request: True
    with pytest.raises(OutcomeUnknown) as unknown:
        await via_proxy.redeem(token, 45_000, receipt(), 1)
    assert proxy.dropped[0] == "POST /v1/redemptions"
    proxy.lose = lambda request: False  # the network is back
    truth = await via_proxy.redemption_by_key(unknown.value.key, token)
    assert truth.recovered and truth.voucher_count == 1
    assert (await wallet_counts(world, person))["used"] == 1


async def test_a_sign_in_that_gets_no_answer_sends_nothing_else(
    world: World, via_proxy: TillClient, proxy: LossyProxy
) -> None:
    person = await world.citizen_with_vouchers()
    proxy.lose = _posts_to("/v1/auth/terminal")
    with pytest.raises(Unreachable) as down:
        await via_proxy.redeem(await world.qr(person), 45_000, receipt(), 1)
    assert not down.value.maybe_sent  # the redeem itself never left
    assert "POST /v1/redemptions" not in proxy.forwarded


async def test_asking_by_key_for_what_never_happened_says_not_redeemed(
    world: World, till: TillClient
) -> None:
    token = await world.qr(await world.citizen_with_vouchers())
    with pytest.raises(ApiError) as refused:
        await till.redemption_by_key(new_key(), token)
    assert refused.value.code == "not_redeemed"


async def test_asking_by_key_while_the_request_is_at_work_leaves_the_outcome_unknown(
    world: World, till: TillClient, till_config: TerminalConfig
) -> None:
    # rule U7 with issue 14: the server finds the key's mark in the citizen's slot by the
    # code the till sends, and says "still at work", never "not redeemed", until it is done
    token, key = await world.qr(await world.citizen_with_vouchers()), new_key()
    async with key_at_work(world, till_config.terminal_id, key, token):
        with pytest.raises(OutcomeUnknown) as unknown:
            await till.redemption_by_key(key, token)
        assert unknown.value.key == key
    with pytest.raises(ApiError) as refused:
        await till.redemption_by_key(key, token)
    assert refused.value.code == "not_redeemed"


async def test_refunds_part_then_all_and_a_lost_refund_answer_is_replayed(
    world: World, till: TillClient, via_proxy: TillClient, proxy: LossyProxy
) -> None:
    # rules F1, F2: 3 vouchers on 600 元; the bill becomes 250 元 -> keep 1, return 2
    person = await world.citizen_with_vouchers()
    number = receipt()
    done = await till.redeem(await world.qr(person), 60_000, number, 3)
    found = await till.find_by_receipt(number)
    assert found.redemption_id == done.redemption_id
    part = await till.refund(done.redemption_id, 25_000)
    assert part.status == "partially_refunded" and part.live_voucher_count == 1
    assert len(part.refunds) == 1 and part.refunds[0].returned_count == 2
    assert set(part.refunds[0].voucher_ids) <= set(done.voucher_ids)
    await via_proxy.sign_in()
    proxy.lose = _posts_to(f"/v1/redemptions/{done.redemption_id}/refunds")
    with pytest.raises(OutcomeUnknown) as unknown:
        await via_proxy.refund(done.redemption_id, 0)
    proxy.lose = lambda request: False
    rest = await via_proxy.refund(done.redemption_id, 0, key=unknown.value.key)
    assert rest.status == "refunded" and rest.live_voucher_count == 0
    assert len(rest.refunds) == 2  # the retried key did it once
    assert (await wallet_counts(world, person))["available"] == 48
    with pytest.raises(ApiError) as again:
        await till.refund(done.redemption_id, 0)
    assert again.value.code == "already_refunded"
    day = await till.day()
    assert day.date == "2024-09-10"
    mine = [r for r in day.redemptions if r.receipt_no == number.upper()]
    assert mine and mine[0].voucher_count == 3 and mine[0].refunded_count == 3
    assert day.totals.returned_vouchers >= 3
