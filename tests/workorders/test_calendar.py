"""SLA clocks count working time only: across nights, weekends, holidays, 调休 and time zones."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from linli.workorders.calendar import CalendarError, WorkingCalendar, parse_weekly

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKDAYS_9_TO_18 = parse_weekly({str(d): [["09:00", "18:00"]] for d in range(1, 6)})


def at(y: int, m: int, d: int, h: int, mi: int = 0, tz: ZoneInfo = SHANGHAI) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=tz)


def test_minutes_inside_one_working_day() -> None:
    calendar = WorkingCalendar(weekly=WEEKDAYS_9_TO_18)
    start = at(2026, 3, 2, 10)  # Monday
    assert calendar.add_working_minutes(start, 120) == at(2026, 3, 2, 12)
    assert calendar.working_minutes_between(start, at(2026, 3, 2, 12)) == 120


def test_clock_stops_overnight_and_over_the_weekend() -> None:
    calendar = WorkingCalendar(weekly=WEEKDAYS_9_TO_18)
    friday_5pm = at(2026, 3, 6, 17)
    due = calendar.add_working_minutes(friday_5pm, 120)
    assert due == at(2026, 3, 9, 10)  # one hour Friday, one hour Monday
    assert calendar.working_minutes_between(friday_5pm, due) == 120
    # Reported on Saturday: the clock starts Monday 09:00.
    assert calendar.add_working_minutes(at(2026, 3, 7, 11), 30) == at(2026, 3, 9, 9, 30)


def test_national_day_holiday_and_swapped_working_saturday() -> None:
    # 2026 国庆: 1-7 October off; Saturday 10 October worked (调休) in this example.
    holidays = frozenset(dt.date(2026, 10, d) for d in range(1, 8))
    calendar = WorkingCalendar(
        weekly=WEEKDAYS_9_TO_18, holidays=holidays, workdays=frozenset({dt.date(2026, 10, 10)})
    )
    sept_30_5pm = at(2026, 9, 30, 17)
    # 60 minutes on 30 September, then nothing until Thursday 8 October.
    assert calendar.add_working_minutes(sept_30_5pm, 120) == at(2026, 10, 8, 10)
    # 9 hours on each of 8 and 9 October, then the swapped Saturday counts.
    assert calendar.add_working_minutes(at(2026, 10, 8, 9), 9 * 60 * 2 + 30) == at(
        2026, 10, 10, 9, 30
    )
    assert calendar.working_minutes_between(at(2026, 10, 1, 0), at(2026, 10, 7, 23)) == 0


def test_time_zones_use_the_communitys_wall_clock() -> None:
    # The same instant is 16:00 in Shanghai and 17:00 in Tokyo (no DST in either).
    instant = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    shanghai = WorkingCalendar(timezone="Asia/Shanghai", weekly=WEEKDAYS_9_TO_18)
    tokyo = WorkingCalendar(timezone="Asia/Tokyo", weekly=WEEKDAYS_9_TO_18)
    assert shanghai.add_working_minutes(instant, 120) == at(2026, 3, 2, 18)  # 16:00-18:00
    assert tokyo.add_working_minutes(instant, 120) == dt.datetime(  # 17-18, then 9-10
        2026, 3, 3, 10, tzinfo=ZoneInfo("Asia/Tokyo")
    )
    # Results are instants: comparable whatever the zone they are written in.
    assert shanghai.add_working_minutes(instant, 60).tzinfo is not None


def test_daylight_saving_day_counts_real_minutes() -> None:
    # New York springs forward on 8 March 2026 (a Sunday) - use a 24-hour calendar.
    all_day = parse_weekly({str(d): [["00:00", "23:59"]] for d in range(1, 8)})
    calendar = WorkingCalendar(timezone="America/New_York", weekly=all_day)
    start = dt.datetime(2026, 3, 8, 1, 0, tzinfo=ZoneInfo("America/New_York"))
    end = dt.datetime(2026, 3, 8, 4, 0, tzinfo=ZoneInfo("America/New_York"))
    assert calendar.working_minutes_between(start, end) == 120  # 02:00-03:00 never happened


def test_lunch_break_splits_a_day() -> None:
    weekly = parse_weekly({"1": [["13:00", "18:00"], ["08:30", "12:00"]]})
    calendar = WorkingCalendar(weekly=weekly)
    assert calendar.add_working_minutes(at(2026, 3, 2, 11), 90) == at(2026, 3, 2, 13, 30)


def test_bad_hours_are_refused() -> None:
    with pytest.raises(CalendarError):
        parse_weekly({"1": [["18:00", "09:00"]]})
    with pytest.raises(CalendarError):
        parse_weekly({"8": [["09:00", "18:00"]]})
    with pytest.raises(CalendarError):
        parse_weekly({"1": [["09:00", "13:00"], ["12:00", "18:00"]]})
    with pytest.raises(CalendarError):
        WorkingCalendar(weekly={d: [] for d in range(1, 8)}).add_working_minutes(
            at(2026, 3, 2, 9), 1
        )
