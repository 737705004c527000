"""Money is integer fen; parsing is strict and float-free."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import InvalidAmount
from shared.money import MAX_AMOUNT_FEN, format_yuan, parse_fen, parse_yuan, yuan


def test_yuan_converts_whole_yuan_to_fen() -> None:
    assert yuan(200) == 20_000
    assert yuan(0) == 0


@pytest.mark.parametrize("value", [0, 1, 20_000, MAX_AMOUNT_FEN])
def test_parse_fen_accepts_integers_in_range(value: int) -> None:
    assert parse_fen(value) == value


@pytest.mark.parametrize(
    "value", [True, False, 1.0, 200.5, "20000", None, [1], -1, MAX_AMOUNT_FEN + 1]
)
def test_parse_fen_refuses_anything_but_an_int_in_range(value: object) -> None:
    with pytest.raises(InvalidAmount):
        parse_fen(value)


def test_parse_fen_positive_refuses_zero() -> None:
    with pytest.raises(InvalidAmount, match="greater than zero"):
        parse_fen(0, positive=True)
    assert parse_fen(1, positive=True) == 1


def test_parse_fen_names_the_field_in_its_error() -> None:
    with pytest.raises(InvalidAmount) as info:
        parse_fen(-5, field="bill_fen")
    assert "bill_fen" in info.value.message
    assert info.value.details == {"field": "bill_fen"}


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("123.45", 12_345),
        ("123.4", 12_340),
        ("123", 12_300),
        ("0.05", 5),
        ("0", 0),
        ("399.99", 39_999),
        (" 200 ", 20_000),
        ("007.10", 710),
        ("10000000000.00", MAX_AMOUNT_FEN),
    ],
)
def test_parse_yuan_converts_exactly(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "1,234.50",
        "-1",
        "+1",
        "1e3",
        "１２３",  # full-width digits
        "١٢٣",  # Arabic-Indic digits
        "1.234",
        ".5",
        "5.",
        "NaN",
        "inf",
        "0x10",
        "1_000",
        "12 34",
        "10000000000.01",
        "99999999999999999999",
    ],
)
def test_parse_yuan_refuses_anything_but_plain_digits_with_two_decimals(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_yuan(text)


def test_parse_yuan_positive_refuses_zero() -> None:
    with pytest.raises(InvalidAmount):
        parse_yuan("0.00", positive=True)


@pytest.mark.parametrize(
    ("fen", "text"),
    [(12_345, "123.45"), (5, "0.05"), (0, "0.00"), (20_000, "200.00"), (-150, "-1.50")],
)
def test_format_yuan_always_shows_two_decimals(fen: int, text: str) -> None:
    assert format_yuan(fen) == text


def test_format_yuan_can_group_thousands() -> None:
    assert format_yuan(123_456_789, thousands=True) == "1,234,567.89"
    assert format_yuan(100_000_000, thousands=True) == "1,000,000.00"


def test_format_yuan_refuses_a_float() -> None:
    with pytest.raises(InvalidAmount):
        format_yuan(1.5)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=MAX_AMOUNT_FEN))
def test_parse_yuan_of_format_yuan_is_the_identity(fen: int) -> None:
    assert parse_yuan(format_yuan(fen)) == fen
