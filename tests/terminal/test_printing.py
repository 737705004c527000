"""Issue 11 item 6: receipts on an ESC/POS receipt printer through python-escpos (Dummy
printer bytes, and a real TCP "network printer"), 58 and 80 mm paper, Chinese in GB18030;
the printer setting; the shift's summary from day lists. No server here."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from escpos.printer import Dummy
from msgspec.structs import replace

from client.wire import MerchantRef, TerminalRef
from terminal.documents import receipt_text, reprint_of
from terminal.printing import (
    CHINESE_ON,
    PrinterInvalid,
    PrinterSettings,
    PrintFailed,
    parse_paper,
    parse_printer,
    print_text,
)
from terminal.shift import Shift, shift_dates, shift_summary, shift_text
from tests.terminal.conftest import free_port
from tests.terminal.data import DAY, REDEMPTION

CUT = b"\x1dV"  # GS V: cut the paper


def printed(text: str) -> bytes:
    dummy = Dummy()
    print_text(parse_printer("device:/dev/usb/lp0"), text, lambda settings: dummy)
    return bytes(dummy.output)


def test_a_chinese_receipt_is_gb18030_in_chinese_mode_and_cut() -> None:
    out = printed(receipt_text(REDEMPTION, "zh"))
    assert out.startswith(b"\x1b@" + CHINESE_ON)
    assert "东昌府区示范超市".encode("gb18030") in out
    assert "还需支付".encode("gb18030") in out and "250.00 元".encode("gb18030") in out
    assert "东昌府区示范超市".encode() not in out  # not UTF-8
    assert CUT in out[-8:]


def test_paper_width_58_and_80_mm() -> None:
    for width in (32, 48):
        text = receipt_text(REDEMPTION, "zh", width=width)
        out = printed(text)
        body = out[out.index(CHINESE_ON) + 2 :].decode("gb18030", errors="ignore")
        assert ("-" * width + "\n") in body and ("-" * (width + 1)) not in body
    assert (parse_paper("58"), parse_paper(80), parse_paper("80mm")) == (58, 80, 80)
    with pytest.raises(PrinterInvalid):
        parse_paper(76)


def test_an_english_receipt_is_plain_ascii() -> None:
    shop = replace(
        REDEMPTION, merchant=MerchantRef(1, "Demo Mart"), terminal=TerminalRef(3, "Till 1")
    )
    out = printed(receipt_text(shop, "en").replace("元", "CNY").replace("×", "x"))
    assert CHINESE_ON not in out and b"Still to pay" in out and CUT in out
    mixed = printed(receipt_text(REDEMPTION, "en"))  # a Chinese shop name: Chinese mode
    assert CHINESE_ON in mixed and "东昌府区示范超市".encode("gb18030") in mixed


def test_printer_settings_round_trip_and_bad_ones_are_refused() -> None:
    for spec in (
        "none",
        "network:192.168.1.50:9100",
        "usb:0x0416:0x5011",
        "serial:/dev/ttyUSB0:19200",
        "device:/dev/usb/lp0",
    ):
        assert parse_printer(spec).spec == spec
    assert parse_printer("network:10.0.0.9") == PrinterSettings("network", host="10.0.0.9")
    for bad in ("lpt1", "network:", "network:a:99999", "usb:0416", "device:lp0", "none:x"):
        with pytest.raises(PrinterInvalid):
            parse_printer(bad)
    with pytest.raises(PrintFailed):
        print_text(PrinterSettings(), "x")


async def test_a_network_printer_receives_the_job_over_tcp() -> None:
    received = bytearray()
    done = asyncio.Event()

    async def printer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.extend(await reader.read())
        writer.close()
        done.set()

    port = free_port()
    server = await asyncio.start_server(printer, "127.0.0.1", port)
    async with server:
        settings = parse_printer(f"network:127.0.0.1:{port}")
        await asyncio.to_thread(print_text, settings, receipt_text(REDEMPTION, "zh"))
        await asyncio.wait_for(done.wait(), 10)
    assert "消费券核销凭证".encode("gb18030") in received and CUT in received
    closed = free_port()  # nothing listens: the cashier is told, nothing hangs
    with pytest.raises(PrintFailed, match="network"):
        await asyncio.to_thread(print_text, parse_printer(f"network:127.0.0.1:{closed}"), "x")


def test_a_reprint_is_built_from_the_day_list_row() -> None:
    text = receipt_text(reprint_of(DAY.redemptions[0], "东昌府区示范超市"), "zh")
    assert "（重印）" in text and "R-0001" in text and "2024-09-10 10:00:05" in text
    assert "2 张 × 100.00 元" in text and "250.00 元" in text  # 450 - 200 still due
    assert "退回消费券" in text  # one of its vouchers came back


def test_the_shift_sums_this_till_since_it_opened() -> None:
    # DAY: bills at 10:00:05 and 10:05 on till 3, a refund at 11:00; another till's bill
    other = replace(DAY.redemptions[1], redemption_id=3, terminal=TerminalRef(4, ""))
    day = replace(DAY, redemptions=(*DAY.redemptions, other))
    shift = Shift(3, "2024-09-10T10:01:00+08:00")
    until = datetime.fromisoformat("2024-09-10T12:00:00+08:00")
    s = shift_summary(shift, [day, day], until)  # a day listed twice counts once
    assert (s.bills, s.vouchers, s.value_fen, s.cash_fen) == (1, 1, 10_000, 10_000)
    assert (s.refunds, s.returned_vouchers, s.returned_value_fen) == (1, 1, 10_000)
    assert s.net_value_fen == 0
    text = shift_text(s, "东昌府区示范超市", "收银台 1", "zh")
    assert "交班汇总" in text and "开班" in text and "收现" in text and "100.00 元" in text
    opened = datetime.fromisoformat("2024-09-09T22:00:00+08:00")
    assert [d.isoformat() for d in shift_dates(opened, until)] == ["2024-09-09", "2024-09-10"]
