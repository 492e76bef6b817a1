"""Weekly working hours as UTC time (pure: no clock, I/O, env or logging).

Wall-clock rules (shifts, local dates) turned into merged UTC spans, DST-aware: the calendar
arithmetic under :mod:`calendar_backend.availability` (slot search) and
:mod:`calendar_backend.loops` (candidate's day, lunch windows). Re-exported by ``availability``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import repeat
from operator import add, sub
from zoneinfo import ZoneInfo

from calendar_backend.slots import Interval, Spans, from_spans, union_sorted
from calendar_backend.timezones import localize

_ONE_DAY = timedelta(days=1)
_WEEKDAYS = frozenset(range(7))


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """Weekly working hours in a zone. ``days`` holds weekdays, 0 = Monday ... 6 = Sunday.

    ``start``/``end`` are naive wall-clock times. When ``end <= start`` the shift runs past
    midnight into the next local day (``start == end`` is a 24-hour shift); ``days`` names the
    day each shift *starts* on.

    Raises:
        ValueError: a day is outside 0..6 or a time carries a tzinfo.
    """

    days: frozenset[int]
    start: time
    end: time
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if not self.days <= _WEEKDAYS:
            raise ValueError("working days must be integers 0 (Monday) .. 6 (Sunday)")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("working hours are naive wall-clock times in `zone`")


def working_windows(hours: WorkingHours, window: Interval) -> tuple[Interval, ...]:
    """The parts of ``window`` inside ``hours``, as merged UTC intervals.

    Each local day's shift is built in wall-clock time and converted with
    :func:`calendar_backend.timezones.localize`: a shift edge inside a DST gap moves to the first
    valid instant after it; an edge inside a fold uses the first occurrence. A shift that the
    conversion makes empty is skipped.
    """
    return from_spans(working_spans(hours, window))


def working_spans(hours: WorkingHours, window: Interval) -> Spans:
    zone = hours.zone
    first_day = window.start.astimezone(zone).date() - _ONE_DAY
    day_count = (window.end.astimezone(zone).date() - first_day).days + 1
    offsets = map(timedelta, range(day_count))  # timedelta(n) is n days
    days = [day for day in map(add, repeat(first_day), offsets) if day.weekday() in hours.days]
    shift_starts = localize_days(days, hours.start, zone)
    end_days = list(map(add, days, repeat(_ONE_DAY))) if hours.end <= hours.start else days  # overnight
    shift_ends = localize_days(end_days, hours.end, zone)
    # Both lists are non-decreasing: localize is monotone in wall time and the days ascend. Clipping
    # to the window keeps that order, so the pieces need no sort before the union.
    starts: list[datetime] = []
    ends: list[datetime] = []
    window_start, window_end = window.start, window.end
    for start, end in zip(shift_starts, shift_ends, strict=True):
        if start < end and start < window_end and window_start < end:
            starts.append(start if start > window_start else window_start)
            ends.append(end if end < window_end else window_end)
    return union_sorted(starts, ends)


def localize_days(days: list[date], clock: time, zone: ZoneInfo) -> list[datetime]:
    """``localize(datetime.combine(day, clock), zone)`` for every day, without a round trip per day.

    ZoneInfo reports the offset of a wall time for ``fold=0`` and ``fold=1``; the two differ only
    when the wall time is in a DST gap or fold. Where they agree, the wall time names exactly one
    instant, ``wall - offset``, which is what :func:`localize` returns. Only the (rare) days where
    they differ take the full :func:`localize` path, so gaps and folds keep their documented rule.
    """
    earlier = clock.replace(fold=0, tzinfo=None)
    walls = list(map(datetime.combine, days, repeat(earlier)))
    offsets = list(map(zone.utcoffset, walls))
    later_offsets = list(map(zone.utcoffset, map(datetime.combine, days, repeat(earlier.replace(fold=1)))))
    instants = list(map(sub, map(datetime.combine, days, repeat(earlier.replace(tzinfo=UTC))), offsets))
    if offsets != later_offsets:
        for index, (offset, later) in enumerate(zip(offsets, later_offsets, strict=True)):
            if offset != later:
                instants[index] = localize(walls[index], zone)
    return instants


def local_days(first_day: date, end_day_exclusive: date, zone: ZoneInfo) -> Interval:
    """The UTC span of local dates ``[first_day, end_day_exclusive)`` in ``zone``.

    Raises:
        ValueError: ``first_day >= end_day_exclusive``.
    """
    if first_day >= end_day_exclusive:
        raise ValueError("first_day must be before end_day_exclusive")
    return Interval(
        localize(datetime.combine(first_day, time()), zone),
        localize(datetime.combine(end_day_exclusive, time()), zone),
    )


__all__ = ["WorkingHours", "local_days", "localize_days", "working_spans", "working_windows"]
