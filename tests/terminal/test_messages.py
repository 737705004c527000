"""Issue 11 item 8: messages that say what happened. Other barcodes are named for what
they are; our code is 消费券码; a code signed before a restart reads as expired; a refused
scan clears the earlier quote; checkout's notifications have their own lines; an unexpected
error is a short message in the log, not a traceback."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import pytest

from client.http import ApiError
from terminal.app import TerminalApp
from terminal.config import TerminalConfig
from terminal.i18n import TEXTS, describe_error
from terminal.screens.checkout import CheckoutScreen
from tests.terminal.conftest import World, settle
from tests.terminal.keyboard import Typing

MakeApp = Callable[..., TerminalApp]


def errors(app: TerminalApp) -> list[str]:
    return [f"{title}: {text}" for severity, title, text in app.history if severity == "error"]


async def test_a_product_barcode_a_payment_code_and_text_each_get_their_own_words(
    till_config: TerminalConfig, make_app: MakeApp
) -> None:
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CheckoutScreen)
        said = []
        for code in ("6901234567892", "134567890123456789", "https://example.com/x"):
            await Typing().scanner(code).send_and_drain(pilot)
            said.append(errors(app)[-1])
        assert "商品条码" in said[0] and "付款码" in said[1] and "不是消费券码" in said[2]
        assert len(set(said)) == 3 and not any("刷新" in s for s in said)
        assert screen.query_one("#bill").value == ""  # type: ignore[attr-defined]
        assert app._notifications._notifications == {}  # in the notice lines, not toasts
        assert "商品条码" not in str(screen.query_one("#notice").content)  # type: ignore[attr-defined]
        assert "不是消费券码" in str(screen.query_one("#notice").content)  # type: ignore[attr-defined]


async def test_a_code_of_the_former_kind_is_named_an_old_code_to_refresh(
    till_config: TerminalConfig, make_app: MakeApp
) -> None:
    # issue 11 items 2 and 8: a 383-character code from before the change is ours, expired
    old = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImRlbW8tcXItMSJ9." + "A" * 270 + "." + "B" * 86
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CheckoutScreen)
        await Typing().person("450").press("enter").scanner(old).send_and_drain(pilot)
        said = errors(app)[-1]
        assert said.startswith("请顾客刷新消费券码: ") and "旧版消费券码" in said
        assert screen.held_token == "" and screen.query_one("#receipt").value == ""  # type: ignore[attr-defined]


def test_our_code_is_called_a_voucher_code_not_a_payment_code() -> None:
    zh = [pair[0] for key, pair in TEXTS.items() if key != "scan.payment"]
    assert not any("付款码" in text for text in zh)
    exc = ApiError("token_invalid", "not signed by this programme", 400, {"reason": "unknown_key"})
    code, title, words = describe_error(exc, "zh")
    assert code == "token_expired" and "已过期" in words and "刷新" in title
    other = ApiError("token_invalid", "bad", 400, {"reason": "signature"})
    assert describe_error(other, "zh")[0] == "token_invalid"


async def test_a_refused_scan_clears_the_earlier_quote(
    world: World, till_config: TerminalConfig, make_app: MakeApp
) -> None:
    person = await world.citizen_with_vouchers()
    used = await world.qr(person)
    other = await world.till()
    assert (await world.redeem(other, used, bill_fen=40_000, count=1)).status == 201
    app = make_app(till_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CheckoutScreen)
        await (
            Typing()
            .person("450")
            .press("enter")
            .person(f"R-{uuid.uuid4().hex[:4]}")
            .press("enter")
            .scanner(await world.qr(person))
            .send_and_drain(pilot)
        )
        assert screen.quote is not None
        await Typing().scanner(used).send_and_drain(pilot)  # the next one is refused
        assert screen.outcome == "refused" and screen.quote is None
        assert screen.query_one("#covered").text == "-"


async def test_an_unexpected_error_is_a_short_message_and_a_log_line(
    till_config: TerminalConfig,
    make_app: MakeApp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(self: CheckoutScreen) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(CheckoutScreen, "action_receipt", broken)
    app = make_app(till_config, catch_errors=True)
    with caplog.at_level(logging.ERROR, logger="terminal"):
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("f7")
            await settle(pilot)
            assert app.is_running and app.return_code is None
            assert "出了点意外，已记录" in errors(app)[-1]
            await pilot.press("f4")  # the till goes on
            await settle(pilot)
            assert app.current_mode == "day"
    assert any("a bug" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
