"""Working-time arithmetic for SLA clocks (服务时限按工作时间计算).

A :class:`WorkingCalendar` is a community's weekly working hours in its own time
zone, its public holidays, and its swapped working days (调休: a Saturday that is
worked takes the hours of a normal weekday). SLA deadlines add working minutes to
an instant; measured times count the working minutes between two instants. Both
walk day by day over the working intervals, so daylight-saving shifts and zones
are handled by ``zoneinfo`` on each day's wall-clock hours.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

Interval = tuple[dt.time, dt.time]

# 物业服务中心 hours when a community has set none: Monday to Sunday, 08:30-17:30.
DEFAULT_WEEKLY: dict[int, list[Interval]] = {
    day: [(dt.time(8, 30), dt.time(17, 30))] for day in range(1, 8)
}
# The weekday whose hours a swapped working day (调休上班) uses.
SWAPPED_DAY_HOURS_OF = 1
# Never loop for ever on a calendar with no working time at all.
MAX_DAYS = 3 * 366


class CalendarError(ValueError):
    pass


def parse_weekly(raw: Mapping[str, Sequence[Sequence[str]]]) -> dict[int, list[Interval]]:
    """``{"1": [["09:00", "12:00"], ["13:00", "18:00"]], ...}`` -> intervals per ISO weekday."""
    weekly: dict[int, list[Interval]] = {day: [] for day in range(1, 8)}
    for key, spans in raw.items():
        if key not in {str(d) for d in range(1, 8)}:
            raise CalendarError(f"weekday must be 1..7, not {key!r}")
        parsed: list[Interval] = []
        for span in spans:
            if len(span) != 2:
                raise CalendarError("each interval is [start, end]")
            start, end = (dt.time.fromisoformat(span[0]), dt.time.fromisoformat(span[1]))
            if not start < end:
                raise CalendarError("an interval must end after it starts")
            parsed.append((start, end))
        parsed.sort()
        for (_, end), (start, _) in itertools.pairwise(parsed):
            if start < end:
                raise CalendarError("intervals of one day must not overlap")
        weekly[int(key)] = parsed
    return weekly


def format_weekly(weekly: Mapping[int, Sequence[Interval]]) -> dict[str, list[list[str]]]:
    return {
        str(day): [[s.strftime("%H:%M"), e.strftime("%H:%M")] for s, e in weekly.get(day, [])]
        for day in range(1, 8)
    }


@dataclass(frozen=True)
class WorkingCalendar:
    timezone: str = "Asia/Shanghai"
    weekly: Mapping[int, Sequence[Interval]] = field(default_factory=lambda: DEFAULT_WEEKLY)
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()  # 调休: worked although a weekend

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def intervals_on(self, day: dt.date) -> Sequence[Interval]:
        if day in self.holidays:
            return ()
        if day in self.workdays:
            return self.weekly.get(SWAPPED_DAY_HOURS_OF, ()) or DEFAULT_WEEKLY[1]
        return self.weekly.get(day.isoweekday(), ())

    def _spans_from(self, start: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Working spans (UTC) from the local day of ``start`` onwards, clipped to ``start``."""
        zone = self.zone
        day = start.astimezone(zone).date()
        for _ in range(MAX_DAYS):
            for open_at, close_at in self.intervals_on(day):
                begin = dt.datetime.combine(day, open_at, zone).astimezone(dt.UTC)
                end = dt.datetime.combine(day, close_at, zone).astimezone(dt.UTC)
                if end <= start:
                    continue
                yield max(begin, start), end
            day += dt.timedelta(days=1)
        raise CalendarError("the calendar has no working time within three years")

    def add_working_minutes(self, start: dt.datetime, minutes: int) -> dt.datetime:
        """The instant when ``minutes`` of working time have passed after ``start``."""
        if minutes < 0:
            raise CalendarError("minutes must not be negative")
        remaining = dt.timedelta(minutes=minutes)
        for begin, end in self._spans_from(start.astimezone(dt.UTC)):
            if remaining <= end - begin:
                return begin + remaining
            remaining -= end - begin
        raise CalendarError("unreachable")  # pragma: no cover - _spans_from raises first

    def working_minutes_between(self, start: dt.datetime, end: dt.datetime) -> int:
        """Whole working minutes from ``start`` to ``end`` (0 when end is not later)."""
        start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
        if end <= start:
            return 0
        total = dt.timedelta()
        for begin, stop in self._spans_from(start):
            if begin >= end:
                break
            total += min(stop, end) - begin
        return int(total.total_seconds() // 60)
