"""Rules T2, T7, T13: Civil Code months (start day not counted, never chained, month-end
days) and the working-day calendar with its make-up days."""

import dataclasses
from datetime import date, datetime

import pytest

from shared.errors import InvalidDate, WorkingCalendarMissing
from shared.periods import add_months, end_instant, month_number
from tests.unit.ticket_helpers import SN, TZ


def test_a_period_ends_on_the_start_days_number_months_later() -> None:
    # T2: Civil Code Art. 201/202
    assert add_months(date(2025, 3, 15), 1) == date(2025, 4, 15)
    assert add_months(date(2025, 3, 15), 12) == date(2026, 3, 15)
    assert add_months(date(2025, 11, 30), 3) == date(2026, 2, 28)
    assert add_months(date(2025, 3, 15), 0) == date(2025, 3, 15)


def test_issued_on_the_31st_each_month_ends_on_its_own_last_day_never_chained() -> None:
    # T2: from the issue date each time; chaining would give 28 Feb -> 28 Mar
    start = date(2025, 1, 31)
    assert [add_months(start, k) for k in (1, 2, 3, 4, 13)] == [
        date(2025, 2, 28),
        date(2025, 3, 31),
        date(2025, 4, 30),
        date(2025, 5, 31),
        date(2026, 2, 28),
    ]


def test_issued_on_29_february_the_year_ends_on_28_february() -> None:
    # T2
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2024, 2, 29), 1) == date(2024, 3, 29)
    assert add_months(date(2024, 2, 29), 48) == date(2028, 2, 29)


def test_a_negative_period_is_refused() -> None:
    with pytest.raises(InvalidDate):
        add_months(date(2025, 1, 1), -1)


def test_the_month_of_a_day_after_issue_turns_at_the_period_ends() -> None:
    # T7: month k runs to add_months(issue, k); the issue day itself is in month 1
    start = date(2025, 1, 31)
    assert month_number(start, start) == 1
    assert month_number(start, date(2025, 2, 28)) == 1
    assert month_number(start, date(2025, 3, 1)) == 2
    assert month_number(start, date(2025, 4, 30)) == 3
    assert month_number(start, date(2025, 5, 1)) == 4
    leap = date(2024, 2, 29)
    assert month_number(leap, date(2024, 5, 29)) == 3
    assert month_number(leap, date(2024, 5, 30)) == 4
    with pytest.raises(InvalidDate):
        month_number(start, date(2025, 1, 30))


def test_a_period_ends_at_24_00_of_its_last_day() -> None:
    # T2 (Art. 203): the exclusive end is 00:00 of the next day, campaign time
    assert end_instant(date(2025, 12, 31), TZ) == datetime(2026, 1, 1, tzinfo=TZ)


def test_working_days_skip_weekends_and_holidays_and_count_make_up_days() -> None:
    # T13: 2025-09-28 (a Sunday) is worked; 1-8 October is the National Day holiday
    cal = SN.calendar
    assert cal is not None
    assert cal.is_working_day(date(2025, 9, 28))
    assert not cal.is_working_day(date(2025, 9, 27))  # a plain Saturday
    assert not cal.is_working_day(date(2025, 10, 8))
    assert cal.is_working_day(date(2025, 10, 11))  # a Saturday worked
    # from Friday 26 September: 28, 29, 30 Sep, 9, 10, 11, 13, 14, 15, 16 Oct
    assert cal.add_working_days(date(2025, 9, 26), 10) == date(2025, 10, 16)
    assert cal.add_working_days(date(2025, 9, 26), 0) == date(2025, 9, 26)
    # the make-up days are data: without them the tenth working day is 20 October
    plain = dataclasses.replace(cal, workdays=frozenset())
    assert plain.add_working_days(date(2025, 9, 26), 10) == date(2025, 10, 20)


def test_a_day_beyond_the_calendars_data_is_refused_not_guessed() -> None:
    # T13: 2027's holidays are not published yet
    cal = SN.calendar
    assert cal is not None
    with pytest.raises(WorkingCalendarMissing) as info:
        cal.add_working_days(date(2026, 12, 24), 10)
    assert info.value.details["last_day"] == "2026-12-31"
    assert info.value.details["year"] == 2027
    # the operator is told what to do: add the year to the file, not a guess
    assert "add 2027's public holidays" in info.value.message
    assert "[working_calendar]" in info.value.message
    with pytest.raises(WorkingCalendarMissing):
        cal.is_working_day(date(2027, 1, 1))
    with pytest.raises(WorkingCalendarMissing):
        cal.is_working_day(date(2024, 12, 31))  # before first_day too
    assert cal.add_working_days(date(2026, 12, 17), 10) == date(2026, 12, 31)  # the last day
