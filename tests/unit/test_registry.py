"""Rule E3: the registration office's CSV, read row by row."""

from __future__ import annotations

from datetime import date

import pytest

from shared.errors import InvalidRequest
from shared.idnumber import hash_id_number, make_id_number
from shared.registry import ParsedRegistry, parse_registry_csv
from shared.rules import PropertyType

KEY = b"k" * 32
TODAY = date(2024, 12, 1)
DISTRICTS = {"dongchangfu": "dongchangfu", "东昌府区": "dongchangfu", "高新区": "gaoxin"}
OWNER_A = make_id_number("371502", date(1980, 1, 2), "001")
OWNER_B = make_id_number("371502", date(1982, 3, 4), "002")
HEADER = "不动产权证号,所在区,房屋类型,是否增量房,不含税价款,减免税价款,登簿日期,权利人身份证号\n"


def parse(text: str, encoding: str = "utf-8") -> ParsedRegistry:
    return parse_registry_csv(
        text.encode(encoding), districts=DISTRICTS, id_hash_key=KEY, today=TODAY
    )


def test_a_good_row_becomes_a_record_with_hashed_owners() -> None:
    parsed = parse(
        HEADER + f"C-1,东昌府区,住宅,是,1200000.00,300000,2024-09-01,{OWNER_A}；{OWNER_B}\n"
    )
    (row,) = parsed.rows
    assert row.line == 2
    assert row.district == "dongchangfu"
    assert row.property_type is PropertyType.HOUSING
    assert row.new_build is True
    assert (row.invoice_excl_vat_fen, row.tax_relief_fen) == (120_000_000, 30_000_000)
    assert {o.id_hash for o in row.owners} == {
        hash_id_number(OWNER_A, KEY),
        hash_id_number(OWNER_B, KEY),
    }
    assert all(OWNER_A not in o.id_masked for o in row.owners)  # rule X3


def test_a_gbk_file_reads_the_same_as_utf8() -> None:
    text = HEADER + f"C-2,高新区,非住宅,否,350000,,2024-10-01,{OWNER_A}\n"
    utf8, gbk = parse(text), parse(text, "gbk")
    assert gbk.encoding == "gbk" and utf8.encoding == "utf-8"
    assert gbk.rows == utf8.rows
    assert gbk.rows[0].property_type is PropertyType.NON_HOUSING


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (f"C-3,atlantis,住宅,是,1,0,2024-09-01,{OWNER_A}", "unknown district"),
        (f"C-3,东昌府区,别墅,是,1,0,2024-09-01,{OWNER_A}", "property type"),
        (f"C-3,东昌府区,住宅,也许,1,0,2024-09-01,{OWNER_A}", "new-build flag"),
        (f"C-3,东昌府区,住宅,是,-5,0,2024-09-01,{OWNER_A}", "不含税价款"),
        (f"C-3,东昌府区,住宅,是,1.005,0,2024-09-01,{OWNER_A}", "不含税价款"),
        (f"C-3,东昌府区,住宅,是,1,0,2024-02-30,{OWNER_A}", "not a calendar date"),
        (f"C-3,东昌府区,住宅,是,1,0,2025-09-01,{OWNER_A}", "in the future"),
        ("C-3,东昌府区,住宅,是,1,0,2024-09-01,371502198001020010", "ID number is not valid"),
        ("C-3,东昌府区,住宅,是,1,0,2024-09-01,", "no owner"),
        (f",东昌府区,住宅,是,1,0,2024-09-01,{OWNER_A}", "certificate number is empty"),
    ],
)
def test_a_bad_row_is_rejected_with_its_line_and_reason(cells: str, reason: str) -> None:
    good = f"C-OK,东昌府区,住宅,是,1,0,2024-09-01,{OWNER_A}\n"
    parsed = parse(HEADER + good + cells + "\n")
    assert [r.cert_no for r in parsed.rows] == ["C-OK"]
    (reject,) = parsed.rejects
    assert reject.line == 3
    assert reason in reject.reason
    assert OWNER_A not in reject.reason


def test_a_certificate_twice_in_one_file_is_rejected_the_second_time() -> None:
    row = f"C-4,东昌府区,住宅,是,1,0,2024-09-01,{OWNER_A}\n"
    parsed = parse(HEADER + row + row)
    assert len(parsed.rows) == 1
    assert parsed.rejects[0].line == 3
    assert "line 2" in parsed.rejects[0].reason


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        ("不动产权证号,所在区\n".encode(), "lacks the column"),
        (b"\xff\xfe\x00\x01garbage\x80\x81", "neither UTF-8 nor GBK"),
    ],
)
def test_a_file_that_is_not_a_registry_export_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_registry_csv(data, districts=DISTRICTS, id_hash_key=KEY, today=TODAY)
