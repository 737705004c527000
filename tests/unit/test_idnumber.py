"""Rule E1 (GB 11643 resident ID numbers) and rule X3 (masking, keyed hash)."""

import hashlib
import hmac
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import InvalidIdNumber, InvalidRequest
from shared.idnumber import (
    birth_date,
    hash_id_number,
    is_valid_id_number,
    make_id_number,
    mask_id_number,
    validate_id_number,
)

TODAY = date(2024, 8, 20)
# The worked example of GB 11643-1999 (check character X) and a hand-checked number:
# 3·7+7·9+1·10+5·5+0·8+2·4+1·2+9·1+9·6+0·3+0·7+1·9+0·10+1·5+1·8+2·4+3·2 = 228; 228 mod 11 = 8 → "4"
STANDARD_EXAMPLE = "11010519491231002X"
LIAOCHENG = "371502199001011234"


def reason_of(raw: str, today: date = TODAY) -> str:
    with pytest.raises(InvalidIdNumber) as info:
        validate_id_number(raw, today)
    reason = info.value.details["reason"]
    assert isinstance(reason, str)
    return reason


def test_the_standard_example_is_valid() -> None:
    # rule E1
    assert validate_id_number(STANDARD_EXAMPLE, TODAY) == STANDARD_EXAMPLE
    assert validate_id_number(LIAOCHENG, TODAY) == LIAOCHENG


def test_a_lower_case_x_is_accepted_and_normalised_to_upper_case() -> None:
    # rule E1
    assert validate_id_number("11010519491231002x", TODAY) == STANDARD_EXAMPLE


def test_surrounding_whitespace_is_ignored() -> None:
    assert validate_id_number(f" {LIAOCHENG}\n", TODAY) == LIAOCHENG


def test_make_id_number_computes_the_check_character() -> None:
    # rule E1: independent known values
    assert make_id_number("110105", date(1949, 12, 31), "002") == STANDARD_EXAMPLE
    assert make_id_number("371502", date(1990, 1, 1), "123") == LIAOCHENG


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("37150219900101123", "length"),  # 17 characters
        ("3715021990010112345", "length"),  # 19 characters
        ("", "length"),
        ("3715021990O1011234", "characters"),  # letter O in the middle
        ("37150219900101123Y", "characters"),  # last neither digit nor X
        ("３71502199001011234", "characters"),  # full-width digit
        ("991502199001011234", "region"),  # no province 99
        ("101502199001011234", "region"),
        ("371502199002301234", "birth_date"),  # 30 February
        ("371502189912311234", "birth_date"),  # before 1900
        ("371502202408211234", "birth_date"),  # after today
        ("371502199001011235", "checksum"),
        ("11010519491231002 ", "length"),  # trailing space stripped → 17
    ],
)
def test_an_invalid_number_is_refused_with_a_specific_reason(raw: str, reason: str) -> None:
    # rule E1
    assert reason_of(raw) == reason


def test_a_birth_date_of_today_is_accepted_but_tomorrow_is_not() -> None:
    # rule E1: birth date not after `today`
    born_today = make_id_number("371502", TODAY, "001")
    assert is_valid_id_number(born_today, TODAY)
    assert not is_valid_id_number(born_today, date(2024, 8, 19))


def test_the_error_message_never_contains_the_number() -> None:
    # rule X3
    bad = "371502199001011235"
    with pytest.raises(InvalidIdNumber) as info:
        validate_id_number(bad, TODAY)
    assert bad not in str(info.value)
    assert bad not in repr(info.value.to_dict())


def test_birth_date_reads_digits_seven_to_fourteen() -> None:
    assert birth_date(STANDARD_EXAMPLE) == date(1949, 12, 31)


def test_mask_shows_first_four_and_last_four() -> None:
    # rule X3
    assert mask_id_number(LIAOCHENG) == "3715**********1234"
    assert mask_id_number("11010519491231002x") == "1101**********002X"


def test_mask_refuses_a_wrong_length() -> None:
    with pytest.raises(InvalidIdNumber):
        mask_id_number("1234")


def test_hash_is_hmac_sha256_of_the_normalised_number() -> None:
    # rule X3
    key = b"pepper"
    expected = hmac.new(key, STANDARD_EXAMPLE.encode(), hashlib.sha256).digest()
    assert hash_id_number(STANDARD_EXAMPLE, key) == expected
    assert hash_id_number("11010519491231002x", key) == expected
    assert hash_id_number(STANDARD_EXAMPLE, b"other") != expected
    assert len(expected) == 32


def test_hash_refuses_an_empty_key() -> None:
    with pytest.raises(InvalidRequest):
        hash_id_number(LIAOCHENG, b"")


regions = st.sampled_from(["110105", "371502", "371521", "440305", "650102", "820000"])
births = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
seqs = st.integers(min_value=0, max_value=999).map(lambda n: f"{n:03d}")


@given(regions, births, seqs)
def test_generated_numbers_validate_and_round_trip(region: str, born: date, seq: str) -> None:
    # rule E1
    n = make_id_number(region, born, seq)
    assert validate_id_number(n, TODAY) == n
    assert validate_id_number(n.lower(), TODAY) == n
    assert birth_date(n) == born


@given(regions, births, seqs, st.integers(min_value=0, max_value=17), st.integers(1, 10))
def test_changing_any_single_character_makes_the_number_invalid(
    region: str, born: date, seq: str, pos: int, delta: int
) -> None:
    # rule E1: MOD 11-2 detects every single-character substitution
    n = make_id_number(region, born, seq)
    alphabet = "0123456789X" if pos == 17 else "0123456789"
    old = alphabet.index(n[pos])
    new = alphabet[(old + delta) % len(alphabet)]
    if new == n[pos]:
        return
    changed = n[:pos] + new + n[pos + 1 :]
    assert not is_valid_id_number(changed, TODAY)
    if pos >= 14:  # sequence or check character: only the checksum can catch it
        assert reason_of(changed) == "checksum"
