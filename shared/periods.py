"""Periods counted as the Civil Code counts them, and working days (rules T2, T7, T10, T12,
T13). Pure: dates in, dates out; no clock.

Civil Code Art. 201: a period counted in days, months or years does not count its start day.
Art. 202: a period counted in months ends on the day of the last month that has the start
day's number, or on that month's last day when it has no such day. So a period of ``k``
months from 31 January ends on 28 (29) February for ``k = 1`` and on 31 March for ``k = 2``:
always counted from the start date, never chained month by month. Art. 203: a period ends at
24:00 of its last day (its Art. 203 holiday extension is not applied to house tickets, T2
[choice]: the printed deadline governs).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from shared.errors import InvalidDate, WorkingCalendarMissing


def add_months(start: date, months: int) -> date:
    """Rules T2/T7 (Civil Code Art. 201/202): the last day of a period of ``months`` months
    that starts on ``start`` (not counted): the day with ``start``'s number in the
    ``months``-th month after it, or that month's last day. ``add_months(d, 0) == d``.

    ``add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)``;
    ``add_months(date(2025, 1, 31), 2) == date(2025, 3, 31)`` (never chained);
    ``add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)``.
    """
    if months < 0:
        raise InvalidDate("a period has at least 0 months", months=months)
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    if year > 9999:
        raise InvalidDate("the period ends after the year 9999", months=months)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, last))


def month_number(start: date, day: date) -> int:
    """Rule T7: in which month after ``start`` the day ``day`` falls: the smallest ``k >= 1``
    with ``day <= add_months(start, k)``. The start day itself lies in month 1 (a contract
    signed on the issue day is signed "within 3 months"). Raises ``InvalidDate`` for a day
    before ``start``.

    Issued 2025-01-31: 2025-02-28 is in month 1, 2025-03-01 in month 2, 2025-04-30 in month 3
    and 2025-05-01 in month 4.
    """
    if day < start:
        raise InvalidDate("the day is before the start of the period", start=start, day=day)
    months = (day.year - start.year) * 12 + (day.month - start.month)
    if day <= add_months(start, months):
        return max(months, 1)
    return months + 1


def end_instant(last_day: date, tz: tzinfo) -> datetime:
    """Rule T2 (Civil Code Art. 203): a period whose last day is ``last_day`` ends at 24:00
    of it, i.e. at 00:00 of the next day in ``tz`` (the exclusive end instant)."""
    return datetime.combine(last_day + timedelta(days=1), time(0, 0), tzinfo=tz)


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Rule T13: which days are working days, as data (国务院办公厅's yearly holiday notice):
    Monday to Friday work unless a public holiday; a Saturday or Sunday works when it is a
    make-up working day (调休上班). Only ``first_day`` .. ``last_day`` is known: counting
    beyond it raises ``WorkingCalendarMissing`` instead of guessing."""

    first_day: date
    last_day: date
    holidays: frozenset[date]
    workdays: frozenset[date]

    def covers(self, day: date) -> bool:
        """True if the calendar says whether ``day`` is a working day."""
        return self.first_day <= day <= self.last_day

    def is_working_day(self, day: date) -> bool:
        """Rule T13: True if ``day`` is a working day (raises outside the calendar)."""
        if not self.covers(day):
            raise WorkingCalendarMissing(
                f"the working-day calendar covers {self.first_day} to {self.last_day}, "
                f"not {day}: add {day.year}'s public holidays and make-up working days "
                "(the State Council's notice) to the campaign file's [working_calendar] "
                "and move its first_day/last_day to cover them",
                day=day,
                year=day.year,
                first_day=self.first_day,
                last_day=self.last_day,
            )
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: date, count: int) -> date:
        """Rule T13: the ``count``-th working day after ``start`` (``start`` not counted;
        ``count == 0`` is ``start``)."""
        if count < 0:
            raise InvalidDate("count working days forward only", count=count)
        day = start
        while count:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count -= 1
        return day
