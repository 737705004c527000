"""Issue 13: the printed receipt of a house ticket's use at a sales office (rules T5-T8):
the programme, the developer and its office, the contract and unit, the holder and the
buyer masked (X3), each ticket drawn with the balance it has left, the subsidy (T7) or the
reward (T8), what the buyer still pays, the use id and Shanghai's time; exact to the fen, on
58 and 80 mm paper, in GB18030 on an ESC/POS printer. And the amount asked, drawn on
combined tickets (T6). No server here."""

from __future__ import annotations

from typing import Any

import pytest
from msgspec.structs import replace

from shared.idnumber import mask_id_number
from terminal.config import Lang
from terminal.documents import display_width, ticket_receipt_of, ticket_receipt_text
from terminal.i18n import tr
from terminal.printing import CHINESE_ON
from terminal.screens.sales import AmountNotSplit, split_amount
from tests.terminal.data import BUYER_ID, COMBINED_QUOTE, TICKET_USE
from tests.terminal.test_printing import printed

PROGRAMME = "商丘市中心城区房屋征收补偿房票安置"
DEVELOPER = "商丘示范置业有限公司"


def receipt(lang: Lang = "zh", width: int = 32, label: str = "售楼处 1", **changes: Any) -> str:
    """The receipt of ``TICKET_USE`` (with ``changes``) at till 7 of the developer."""
    data = ticket_receipt_of(
        replace(TICKET_USE, **changes),
        programme=PROGRAMME,
        developer=DEVELOPER,
        terminal_id=7,
        terminal_label=label,
        buyer_masked=mask_id_number(BUYER_ID),
    )
    return ticket_receipt_text(data, lang, width=width)


def test_two_tickets_on_one_contract_as_printed_on_58_mm_paper() -> None:
    # rules T5-T7: 120 万 of two tickets, 12 万 subsidy, 18 万 still the buyer's; the spouse
    # buys (T5), masked as a voucher's citizen is (X3); 02:03 UTC is 10:03 in Shanghai
    assert receipt() == (
        "          房票使用凭证\n"
        "--------------------------------\n"
        "项目\n"
        "商丘市中心城区房屋征收补偿房票安\n"
        "置\n"
        "开发商      商丘示范置业有限公司\n"
        "售楼处                  售楼处 1\n"
        "时间         2025-07-10 10:03:04\n"
        "网签合同号          WQ-2025-0001\n"
        "房源                       1-101\n"
        "面积                   120.00 ㎡\n"
        "合同总价         1,500,000.00 元\n"
        "持票人        4114**********0275\n"
        "购房人                      配偶\n"
        "              3715**********1234\n"
        "--------------------------------\n"
        "房票              FP-2025-000001\n"
        "  本次使用       1,000,000.00 元\n"
        "  剩余金额               0.00 元\n"
        "房票              FP-2025-000002\n"
        "  本次使用         200,000.00 元\n"
        "  剩余金额         300,000.00 元\n"
        "房票合计         1,200,000.00 元\n"
        "购房补贴           120,000.00 元\n"
        "购房人还需付       180,000.00 元\n"
        "--------------------------------\n"
        "使用单号                      42\n"
        "--------------------------------\n"
        "房票专款购房，不得套现。\n"
    )


def test_in_english_on_80_mm_paper() -> None:
    text = receipt(lang="en", width=48)
    lines = text.splitlines()
    assert lines[0] == " " * 12 + "HOUSE TICKET USE RECEIPT"
    assert "Programme     商丘市中心城区房屋征收补偿房票安置" in lines  # fits on 48 columns
    assert "Buyer                                     spouse" in lines
    assert "  Drawn                          1,000,000.00 元" in lines
    assert "  Left                             300,000.00 元" in lines
    assert "Buyer pays                         180,000.00 元" in lines
    assert all(display_width(line) <= 48 for line in lines)


def test_one_ticket_bought_by_the_holder_with_a_reward_and_no_subsidy() -> None:
    # rule T8 (Suining): the reward is shown, no subsidy line; the holder buys: no number
    # of a buyer (the holder's masked number is printed once); one ticket: no total
    text = receipt(
        label="",
        relation="holder",
        draws=(TICKET_USE.draws[0],),
        amount_fen=90_000_000,
        subsidy_fen=0,
        reward_fen=4_800_000,
        buyer_pays_fen=55_200_000,
        used_at="2025-12-31T16:00:00Z",  # 2026-01-01 00:00 in Shanghai
    )
    lines = text.splitlines()
    assert "购房人                持票人本人" in lines
    assert text.count("**********") == 1
    assert "政策奖励            48,000.00 元" in lines
    assert "购房补贴" not in text and "房票合计" not in text
    assert "购房人还需付       552,000.00 元" in lines
    assert "时间         2026-01-01 00:00:00" in lines
    assert "售楼处                  收银台 7" in lines  # a till without a label: its number


def test_a_reprint_is_marked_and_every_line_fits_the_paper() -> None:
    data = ticket_receipt_of(
        TICKET_USE, programme=PROGRAMME, developer=DEVELOPER, terminal_id=7, reprint=True
    )
    for width in (32, 48):
        text = ticket_receipt_text(data, "zh", width=width)
        assert text.splitlines()[1].strip() == "（重印）"
        assert all(display_width(line) <= width for line in text.splitlines())
    # the buyer is the spouse but no number was given to mask: none is printed
    assert "**********1234" not in ticket_receipt_text(data, "zh")


def test_printed_in_gb18030_in_the_printers_chinese_mode() -> None:
    out = printed(receipt())
    assert out.startswith(b"\x1b@" + CHINESE_ON)
    body = out[out.index(CHINESE_ON) + 2 :]
    assert "房票使用凭证".encode("gb18030") in body
    assert "  本次使用         200,000.00 元".encode("gb18030") in body
    assert "房票使用凭证".encode() not in out  # not UTF-8


# --- the amount asked, drawn on combined tickets (rule T6) -----------------------------------


def test_an_amount_is_drawn_on_combined_tickets_in_their_order() -> None:
    first, second = COMBINED_QUOTE.lines
    assert split_amount(120_000_000, COMBINED_QUOTE.lines) == (100_000_000, 20_000_000)
    assert split_amount(136_363_637, COMBINED_QUOTE.lines) == (100_000_000, 36_363_637)
    with pytest.raises(AmountNotSplit) as too_much:  # more than both allow
        split_amount(136_363_638, COMBINED_QUOTE.lines)
    assert too_much.value.key == "sales.amount.split"
    assert too_much.value.values == {"want": "1,363,636.38", "high": "1,363,636.37"}
    with pytest.raises(AmountNotSplit) as too_little:  # the first pays all: nothing left
        split_amount(100_000_000, COMBINED_QUOTE.lines)
    assert too_little.value.key == "sales.amount.fewer"
    assert too_little.value.values["number"] == second.number
    # Suining: each use at least 90% of the ticket it draws on (T6)
    suining = (replace(first, min_fen=90_000_000), replace(second, min_fen=45_000_000))
    with pytest.raises(AmountNotSplit) as below:
        split_amount(130_000_000, suining)
    assert below.value.values == {
        "want": "1,300,000.00",
        "number": second.number,
        "low": "450,000.00",
    }
    assert tr("sales.amount.fewer", "zh", **below.value.values) == (
        "1,300,000.00 元用不到房票 FP-2025-000002（每张至少 450,000.00 元）：请取消选中它。"
    )
