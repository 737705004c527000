"""The terminal's core without a screen or a server: the layering, the pairing file, the
cashier's words, the receipt and the CSV."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from msgspec.structs import replace

import terminal
from client.http import ApiError, OutcomeUnknown, Unreachable
from client.wire import RefundEntry
from shared.errors import error_classes
from terminal.__main__ import build_parser, main, resolve_config
from terminal.config import (
    ConfigInvalid,
    TerminalConfig,
    config_from_credentials,
    default_config_path,
    load_config,
    save_config,
)
from terminal.documents import day_csv, display_width, receipt_text
from terminal.i18n import DISTRICTS, ERRORS, REFRESH_QR_CODES, TEXTS, describe_error, tr
from tests.terminal.data import DAY, QUOTE, REDEMPTION

TERMINAL_DIR = Path(terminal.__file__).resolve().parent
CORE = (
    "client.till, terminal.config, terminal.i18n, terminal.documents, terminal.refunds, "
    "terminal.printing, terminal.shift"
)


def _modules_after(imports: str) -> set[str]:
    code = f"import {imports}; import sys; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    return {name.split(".")[0] for name in out}


def test_the_terminal_core_runs_without_textual_or_the_server() -> None:
    loaded = _modules_after(CORE)
    assert "terminal" in loaded and "shared" in loaded
    assert "textual" not in loaded
    assert "server" not in loaded


def test_the_whole_terminal_app_never_imports_the_server() -> None:
    loaded = _modules_after("terminal.app, terminal.__main__")
    assert "textual" in loaded
    assert "server" not in loaded


def test_no_terminal_source_mentions_an_import_of_the_server() -> None:
    pattern = re.compile(r"^\s*(from\s+server\b|import\s+server\b)", re.M)
    offenders = [
        str(p.relative_to(TERMINAL_DIR))
        for p in TERMINAL_DIR.rglob("*.py")
        if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# --- pairing file --------------------------------------------------------------------------


def test_the_pairing_is_saved_readable_by_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "config.json"
    config = TerminalConfig("http://till.example:8080", 7, "s3cret", "en")
    save_config(path, config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(path) == config
    assert "s3cret" not in repr(config)
    save_config(path, config.with_lang("zh"))  # rewriting keeps 0600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(path) == config.with_lang("zh")


def test_a_too_open_pairing_file_is_closed_again(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"server_url": "http://x:1", "terminal_id": 1, "secret": "s"}))
    path.chmod(0o644)
    assert load_config(path) == TerminalConfig("http://x:1", 1, "s")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_config_path_follows_the_environment(tmp_path: Path) -> None:
    env = {"VOUCHER_TERMINAL_CONFIG": str(tmp_path / "t.json")}
    assert default_config_path(env) == tmp_path / "t.json"
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert default_config_path(env) == tmp_path / "liaocheng-voucher-terminal" / "config.json"


@pytest.mark.parametrize(
    "data",
    [
        {"server_url": "ftp://x", "terminal_id": 1, "secret": "s"},
        {"server_url": "http://x:1", "terminal_id": 0, "secret": "s"},
        {"server_url": "http://x:1", "terminal_id": 1, "secret": " "},
        {"server_url": "http://x:1", "terminal_id": 1, "secret": "s", "lang": "fr"},
    ],
)
def test_a_bad_pairing_file_is_refused_with_a_reason(
    tmp_path: Path, data: dict[str, object]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigInvalid):
        load_config(path)


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_pairing_from_the_demo_credential_file_then_starting_without_arguments(
    tmp_path: Path,
) -> None:
    creds = tmp_path / "demo-credentials.json"
    creds.write_text(
        json.dumps({"terminal_id": 3, "terminal_secret": "abc", "merchant_id": 1}),
        encoding="utf-8",
    )
    config_path = tmp_path / "cfg" / "config.json"
    path, config = resolve_config(
        _args(
            "--config", str(config_path), "--server", "http://127.0.0.1:9999/", "--pair", str(creds)
        )
    )
    assert path == config_path
    assert config == TerminalConfig("http://127.0.0.1:9999", 3, "abc", "zh")
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    # later: no arguments at all
    _, again = resolve_config(_args("--config", str(config_path)))
    assert again == config
    # the language is a saved setting too
    _, english = resolve_config(_args("--config", str(config_path), "--lang", "en"))
    assert english is not None and english.lang == "en"
    assert load_config(config_path) == english


def test_pairing_by_id_needs_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid):
        resolve_config(_args("--config", str(tmp_path / "c.json"), "--terminal-id", "3"))
    _, config = resolve_config(
        _args("--config", str(tmp_path / "c.json"), "--terminal-id", "3", "--secret", "x")
    )
    assert config == TerminalConfig("http://127.0.0.1:8080", 3, "x", "zh")


def test_bad_arguments_stop_before_any_screen_opens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(tmp_path / "c.json"), "--terminal-id", "3"]) == 2
    assert "--terminal-id needs --secret" in capsys.readouterr().err


def test_unpaired_without_arguments_opens_the_settings(tmp_path: Path) -> None:
    path, config = resolve_config(_args("--config", str(tmp_path / "none.json")))
    assert config is None and not path.exists()


def test_a_credential_file_without_a_secret_is_refused(tmp_path: Path) -> None:
    creds = tmp_path / "c.json"
    creds.write_text(json.dumps({"terminal_id": 3}))
    with pytest.raises(ConfigInvalid):
        config_from_credentials(creds, "http://x:1")


# --- words ---------------------------------------------------------------------------------

EDGE_CODES = {
    "body_too_large",
    "method_not_allowed",
    "unsupported_media_type",
    "bad_request",
    "internal_error",
}
TERMINAL_CODES = {
    "unreachable",
    "outcome_unknown",
    "not_redeemed",
    "not_used",  # a sales office: the server has no use under the key (issue 13)
    "bad_answer",
    "unexpected",
}


def test_every_error_code_has_plain_words_in_both_languages() -> None:
    codes = set(error_classes()) | EDGE_CODES | TERMINAL_CODES
    missing = sorted(codes - set(ERRORS))
    assert missing == []
    for code, (zh, en) in ERRORS.items():
        assert zh and en and zh != en, code
        assert "_" not in zh + en, code  # words, not codes
        assert re.search(r"[\u4e00-\u9fff]", zh), code
        assert not re.search(r"[\u4e00-\u9fff]", en.replace("元", "")), code


def test_every_label_exists_in_both_languages() -> None:
    for key, (zh, en) in TEXTS.items():
        assert zh and en, key
        assert re.findall(r"\{\w+\}", zh) == re.findall(r"\{\w+\}", en) or sorted(
            re.findall(r"\{\w+\}", zh)
        ) == sorted(re.findall(r"\{\w+\}", en)), key
    for code, (zh, en) in DISTRICTS.items():
        assert zh.endswith("区") and en, code


def test_an_expired_or_used_code_asks_the_citizen_to_refresh_it() -> None:
    # rule U5
    assert {"token_expired", "token_replayed", "token_invalid"} <= REFRESH_QR_CODES
    for code in REFRESH_QR_CODES:
        assert "刷新" in ERRORS[code][0]
        assert "refresh" in ERRORS[code][1]
        _, title, _ = describe_error(ApiError(code, "x", 422), "zh")
        assert title == tr("title.refresh", "zh")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ApiError("bill_already_redeemed", "server words", 409), "bill_already_redeemed"),
        (ApiError("brand_new_code", "server words", 422), "brand_new_code"),
        (Unreachable("down"), "unreachable"),
        (OutcomeUnknown("k"), "outcome_unknown"),
        (RuntimeError("boom"), "unexpected"),
    ],
)
def test_any_failure_becomes_words_never_a_traceback(error: BaseException, code: str) -> None:
    got, title, text = describe_error(error, "en")
    assert got == code and title and text
    assert "Traceback" not in text and "boom" not in text
    if code == "brand_new_code":
        assert text == "server words"  # an unknown code shows the server's own message


def test_labels_switch_language() -> None:
    assert tr("key.checkout", "zh") == "收款"
    assert tr("key.checkout", "en") == "Pay"
    assert tr("quote.held", "en", n=3) == "3 vouchers held"


# --- quote arithmetic (rule U3) --------------------------------------------------------------


def test_lowering_the_count_lowers_what_is_covered_and_raises_what_is_left() -> None:
    # rule U3: the citizen may use fewer; the rest is paid otherwise
    assert (QUOTE.covered_fen(2), QUOTE.to_pay_fen(2)) == (20_000, 25_000)
    assert (QUOTE.covered_fen(1), QUOTE.to_pay_fen(1)) == (10_000, 35_000)
    assert QUOTE.covered_fen(5) == 20_000  # never more than the quote allows


# --- receipt and CSV ---------------------------------------------------------------------------


RECEIPT_ZH = """\
         消费券核销凭证
--------------------------------
商户            东昌府区示范超市
终端                    收银台 1
时间         2024-09-10 10:00:05
小票号                    R-0001
顾客          3715**********1234
--------------------------------
账单金额               450.00 元
使用消费券      2 张 × 100.00 元
券抵扣                -200.00 元
还需支付               250.00 元
--------------------------------
核销单号                    1234
--------------------------------
消费券不找零，不兑现。
"""


def test_the_receipt_names_everything_the_customer_needs() -> None:
    text = receipt_text(REDEMPTION, "zh")
    assert text == RECEIPT_ZH
    assert all(display_width(line) <= 32 for line in text.splitlines())


def test_the_receipt_in_english_and_with_a_refund() -> None:
    refunded = replace(
        REDEMPTION, refunds=(RefundEntry(9, 25_000, 1, 10_000, (12,), "2024-09-10T03:00:00+00:00"),)
    )
    text = receipt_text(refunded, "en")
    assert "VOUCHER REDEMPTION RECEIPT" in text
    assert "Time         2024-09-10 10:00:05" in text
    assert "Still to pay" in text and "250.00 元" in text
    assert "Bill after             250.00 元" in text
    assert "Returned              1 vouchers" in text
    assert "2024-09-10 11:00:00" in text  # the refund's time, Shanghai
    assert all(display_width(line) <= 32 for line in text.splitlines())


def test_the_day_exports_as_csv() -> None:
    # rule S2; issue 11 item 7: local times, one name per till (the refund row said 3), and
    # gross, returned and net in their own columns (the total row put 3 gross vouchers
    # beside a net 200.00 元)
    # and the cash each refund handed back, in a column of its own (the server's reckoning)
    assert day_csv(DAY, "en") == (
        "kind,time,redemption_id,refund_id,receipt_no,terminal,bill_yuan,cash_yuan,"
        "cash_back_yuan,vouchers_gross,value_gross_yuan,vouchers_returned,value_returned_yuan,"
        "vouchers_net,value_net_yuan\r\n"
        "redemption,2024-09-10 10:00:05,1,,R-0001,收银台 1,450.00,250.00,,2,200.00,,,2,200.00\r\n"
        'redemption,2024-09-10 10:05:00,2,,"R,2",收银台 1,200.00,100.00,,1,100.00,,,1,100.00\r\n'
        "refund,2024-09-10 11:00:00,1,9,R-0001,收银台 1,,,100.00,,,1,100.00,-1,-100.00\r\n"
        "total,2024-09-10,,,,,650.00,350.00,100.00,3,300.00,1,100.00,2,200.00\r\n"
    )
    rows = list(csv.reader(io.StringIO(day_csv(DAY, "en"))))
    body, total = rows[1:-1], rows[-1]
    for column in range(6, 15):  # every amount column sums to its total
        cells = [r[column] for r in body if r[column]]
        assert sum(Decimal(c) for c in cells) == Decimal(total[column]), rows[0][column]
    zh = day_csv(DAY, "zh")
    assert zh.startswith("类型,时间,核销单号,退款单号,小票号,收银台,")
    assert "\r\n合计,2024-09-10," in zh
