"""The scan gate's rules (terminal/scanning.py), key by key, without an app: every key fed
comes out once, in order, as typing or as part of exactly one scan (issue 11 item 1), and
what was scanned is named (item 8)."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.tokens import QrKey, issue_qr_token
from terminal.config import (
    ConfigInvalid,
    config_from_dict,
    keep_local_settings,
    load_config,
    save_config,
)
from terminal.scanning import (
    Out,
    ScanGate,
    Scanned,
    ScannerSettings,
    Typed,
    classify_scan,
    looks_like_voucher_code,
)
from tests.terminal.data import CONFIG

# today's code (issue 11 item 2), made as the server makes it, and one of the former kind
CODE = issue_qr_token(
    key=QrKey("A", bytes(32)), holder=1, now=datetime(2026, 12, 1, tzinfo=UTC), nonce=bytes(5)
)[0]
OLD_CODE = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def run(
    gate: ScanGate[str], keys: list[tuple[str, float]], *, end: float | None = None
) -> list[str]:
    """Feed (key, time) pairs; 'enter'/'tab'/'f2' are keys, anything else one character.
    Typed keys come back as themselves, a scan as 'SCAN:<code>'."""
    out: list[Out[str]] = []
    for key, at in keys:
        char = key if len(key) == 1 else {"enter": "\r", "tab": "\t"}.get(key)
        out += gate.feed(key, key, char, at)
    out += gate.quiet(end if end is not None else (keys[-1][1] + 1.0))
    return [o.key if isinstance(o, Typed) else f"SCAN:{o.text}" for o in out]


def burst(
    text: str, start: float, gap: float = 0.002, end: str | None = "enter"
) -> list[tuple[str, float]]:
    keys = [(ch, start + i * gap) for i, ch in enumerate(text)]
    if end:
        keys.append((end, start + len(text) * gap))
    return keys


def slow(text: str, start: float, gap: float = 0.12) -> list[tuple[str, float]]:
    return [(ch, start + i * gap) for i, ch in enumerate(text)]


def test_a_burst_ending_with_enter_is_one_scan_and_its_enter_is_taken() -> None:
    assert run(ScanGate(), burst(CODE, 0.0)) == [f"SCAN:{CODE}"]


def test_a_person_typing_is_typing_enter_included() -> None:
    keys = [*slow("450", 0.0), ("enter", 0.5), *slow("R-0001", 0.7), ("enter", 1.5)]
    assert run(ScanGate(), keys) == ["4", "5", "0", "enter", *"R-0001", "enter"]


def test_a_quick_pair_of_keys_and_enter_is_still_typing() -> None:
    # key rollover: a person can hit two keys and Enter within a few ms
    keys = [("5", 0.0), ("0", 0.2), ("0", 0.21), ("enter", 0.215)]
    assert run(ScanGate(), keys) == ["5", "0", "0", "enter"]


def test_a_key_typed_2_ms_before_the_scanner_started_is_split_off_by_the_shape() -> None:
    keys = [*slow("50", 0.0), ("0", 0.3), *burst(CODE, 0.302)]
    assert run(ScanGate(), keys) == ["5", "0", "0", f"SCAN:{CODE}"]


def test_keys_after_the_scan_are_typing_again() -> None:
    keys = [*burst(CODE, 0.0), *slow("R-9", 1.0), ("enter", 1.5)]
    assert run(ScanGate(), keys) == [f"SCAN:{CODE}", "R", "-", "9", "enter"]


def test_any_fast_burst_of_eight_or_more_with_enter_is_a_scan_whatever_it_is() -> None:
    assert run(ScanGate(), burst("6901234567892", 0.0)) == ["SCAN:6901234567892"]
    assert run(ScanGate(), burst("1234567", 0.0)) == [*"1234567", "enter"]  # too short


def test_the_threshold_is_a_setting() -> None:
    bluetooth = burst(CODE[:20], 0.0, gap=0.04)  # 40 ms a key: typing at 30 ms
    assert run(ScanGate(), bluetooth)[-1] == "enter"
    gate: ScanGate[str] = ScanGate(ScannerSettings(gap_ms=60))
    assert run(gate, bluetooth) == [f"SCAN:{CODE[:20]}"]


def test_a_prefix_marks_a_scan_and_is_taken_off() -> None:
    gate: ScanGate[str] = ScanGate(ScannerSettings(prefix="\x02"))
    keys = [("5", 0.0), *burst("\x02ABC", 0.002)]  # short, any shape: the prefix decides
    assert run(gate, keys) == ["5", "SCAN:ABC"]


def test_a_tab_suffix_and_no_suffix() -> None:
    gate: ScanGate[str] = ScanGate(ScannerSettings(suffix="tab"))
    assert run(gate, burst(CODE, 0.0, end="tab")) == [f"SCAN:{CODE}"]
    assert run(gate, [*slow("12", 0.0), ("enter", 1.0)]) == ["1", "2", "enter"]
    none: ScanGate[str] = ScanGate(ScannerSettings(suffix=""))
    assert run(none, burst("6901234567892", 0.0, end=None)) == ["SCAN:6901234567892"]
    assert run(none, [*burst("12", 0.0, end=None), ("enter", 1.0)]) == ["1", "2", "enter"]


def test_a_code_whose_scanner_sends_no_enter_is_still_a_scan_by_its_shape() -> None:
    assert run(ScanGate(), burst(CODE, 0.0, end=None)) == [f"SCAN:{CODE}"]


def test_a_function_key_ends_a_run_of_typing_in_order() -> None:
    keys = [("1", 0.0), ("2", 0.005), ("f2", 0.006)]
    assert run(ScanGate(), keys) == ["1", "2", "f2"]


def test_held_keys_wait_for_the_gap_then_come_out() -> None:
    gate: ScanGate[str] = ScanGate()
    assert gate.feed("4", "4", "4", 1.0) == []
    assert gate.due() == pytest.approx(1.03)
    assert gate.quiet(1.01) == []
    assert gate.quiet(1.031) == [Typed("4")]
    assert gate.due() is None


def test_a_code_of_the_former_kind_is_still_one_scan_and_named_an_old_code() -> None:
    # issue 11 item 8: it must not land in a field, and it reads as expired, not as strange
    keys = [*slow("50", 0.0), ("0", 0.3), *burst(OLD_CODE, 0.302)]
    assert run(ScanGate(), keys) == ["5", "0", "0", f"SCAN:{OLD_CODE}"]
    assert classify_scan(OLD_CODE) == "old_voucher" and looks_like_voucher_code(OLD_CODE)


def test_a_code_typed_in_lower_case_is_still_our_code() -> None:
    # a scanner whose host has Caps Lock on types the letters in lower case
    assert run(ScanGate(), burst(CODE.lower(), 0.0)) == [f"SCAN:{CODE.lower()}"]
    assert classify_scan(CODE.lower()) == "voucher"


def test_what_was_scanned_is_named() -> None:
    assert len(CODE) == 52 and CODE.startswith("VQ1A")
    assert classify_scan(CODE) == "voucher" and looks_like_voucher_code(CODE)
    assert classify_scan(CODE[:-1]) == "text" and classify_scan(CODE + "0") == "text"
    assert classify_scan("6901234567892") == "product"  # EAN-13 with a good check digit
    assert classify_scan("036000291452") == "product"  # UPC-A
    assert classify_scan("6901234567893") == "text"  # bad check digit
    assert classify_scan("134567890123456789") == "payment"  # WeChat: 18 digits, 10-15
    assert classify_scan("284567890123456789") == "payment"  # Alipay: 25-30
    assert classify_scan("https://example.com/x") == "text"
    assert (
        classify_scan("EYJHBGCIOIJFUZI1NIISIMTPZCI6IMRLBW8TCXITMSISINR5CCI6INZXK2P3DCJ9") == "text"
    )
    assert Scanned("x") == Scanned("x")


def test_the_scanner_settings_are_kept_in_the_config_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    config = replace(CONFIG, scan_gap_ms=50, scan_prefix="\x02", scan_suffix="tab")
    save_config(path, config)
    loaded = load_config(path)
    assert loaded == config and loaded.scanner == ScannerSettings(50, "\x02", "tab", 8)
    # a new pairing keeps them
    assert keep_local_settings(CONFIG, config).scanner == config.scanner
    for bad in ({"scan_gap_ms": 0}, {"scan_suffix": "space"}, {"answer_wait_s": 600}):
        with pytest.raises(ConfigInvalid):
            config_from_dict({**asdict(CONFIG), **bad})
