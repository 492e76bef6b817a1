"""Recurrence expansion: a mailbox's stored events -> Graph's calendarView of a window.

Input events are Graph `event` resources as stored (README.md): `singleInstance` events,
`seriesMaster` events carrying a `patternedRecurrence`, and `exception` events (`seriesMasterId` +
`originalStart`) that move/change one occurrence, or delete it when `isCancelled` is true.

Semantics (Exchange/Graph v1.0):
* Patterns repeat on local dates of the recurrence zone (`range.recurrenceTimeZone`, else the
  master's `start.timeZone`); the master's local start time is kept on each date, so 09:00 stays
  09:00 across DST. A local time inside a DST gap moves forward by the gap. Timed occurrences keep
  the master's absolute duration; all-day occurrences span whole local days.
* `absoluteMonthly`/`absoluteYearly` skip months without that day (day 31, Feb 29) as Outlook does.
* `numbered` counts occurrences from `range.startDate`, including deleted ones and ones outside the
  window; `endDate` is an inclusive local date.
* An event overlaps [start, end) when ev.start < end and ev.end > start; a zero-length event at
  `start` counts.

Occurrence ids are f"{seriesMasterId}_{YYYYMMDD}" with the occurrence's original local date.
Pure: no clock, no I/O. Malformed recurrences raise ValueError.
"""

from __future__ import annotations

import calendar
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from devtenant.zones import format_utc_z, from_utc, parse_wall_time, to_utc, zone_for

JsonDict = dict[str, Any]

MAX_PERIODS = 20_000  # days/weeks/months/years walked per series and call; more raises ValueError
_MAX_INTERVAL = 10_000
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_INDEXES = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
_KINDS = frozenset(
    {"daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"}
)


@dataclass(frozen=True, slots=True)
class _Pattern:
    kind: str
    interval: int
    weekdays: frozenset[int]  # date.weekday() numbers
    first_day: int  # date.weekday() of firstDayOfWeek
    day_of_month: int
    month: int
    index: int  # 0..3, or -1 for "last"


@dataclass(frozen=True, slots=True)
class _Series:
    master: JsonDict
    zone: ZoneInfo
    wall: time  # local start time of every occurrence (midnight for all-day)
    duration: timedelta  # timed series: absolute length
    days: int  # all-day series: length in local days (0 for timed)
    pattern: _Pattern
    first: date  # range.startDate
    last: date | None  # range.endDate (inclusive)
    count: int | None  # range.numberOfOccurrences


def overlaps(ev_start: datetime, ev_end: datetime, start: datetime, end: datetime) -> bool:
    """Whether [ev_start, ev_end) meets the window [start, end); zero-length at `start` counts."""
    return ev_start < end and (ev_end > start or ev_start >= start)


def expand(events: list[JsonDict], start: datetime, end: datetime) -> list[JsonDict]:
    """The calendarView of one mailbox over [start, end): instances sorted by (start, id).

    Returns copies of single instances, occurrences and exceptions overlapping the window, each
    with `start`/`end` in UTC (`timeZone: "UTC"`); series masters and deleted occurrences are
    left out. Exceptions inherit the master's properties they do not set themselves.

    Raises:
        ValueError: naive or inverted window, malformed event times or recurrence, or a series
            needing more than MAX_PERIODS periods for this window.
    """
    if start.tzinfo is None or end.tzinfo is None or end < start:
        raise ValueError("window must be aware with start <= end")
    masters = {str(ev.get("id")): ev for ev in events if _is_master(ev)}
    overrides = [ev for ev in events if _is_override(ev)]
    found: list[tuple[datetime, str, JsonDict]] = []
    for ev in events:
        if ev.get("id") not in masters and not _is_override(ev):
            ev_start, ev_end = _span(ev)
            if overlaps(ev_start, ev_end, start, end):
                found.append((ev_start, str(ev.get("id", "")), _instance(ev, ev, ev_start, ev_end)))
    for master_id, master in masters.items():
        series = _series(master)
        mine = [ov for ov in overrides if ov.get("seriesMasterId") == master_id]
        found += _occurrences(series, master_id, mine, start, end)
        found += _exceptions(series, mine, start, end)
    orphans = [ov for ov in overrides if ov.get("seriesMasterId") not in masters]
    for ov in orphans:
        ev_start, ev_end = _span(ov)
        if not ov.get("isCancelled") and overlaps(ev_start, ev_end, start, end):
            found.append((ev_start, str(ov.get("id", "")), _instance(ov, ov, ev_start, ev_end)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in found]


def _is_master(ev: JsonDict) -> bool:
    kind = ev.get("type")
    return kind == "seriesMaster" or (bool(ev.get("recurrence")) and kind in (None, "singleInstance"))


def _is_override(ev: JsonDict) -> bool:
    return not _is_master(ev) and (
        ev.get("type") in ("exception", "occurrence") or bool(ev.get("seriesMasterId"))
    )


def _span(ev: JsonDict) -> tuple[datetime, datetime]:
    try:
        ev_start, ev_end = to_utc(ev["start"]), to_utc(ev["end"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"event {ev.get('id')!r} needs start and end") from exc
    if ev_end < ev_start:
        raise ValueError(f"event {ev.get('id')!r} ends before it starts")
    return ev_start, ev_end


def _instance(ev: JsonDict, zones_from: JsonDict, ev_start: datetime, ev_end: datetime) -> JsonDict:
    """A deep copy of `ev` with UTC start/end and Graph's originalStart/EndTimeZone filled in."""
    out = copy.deepcopy(ev)
    out.setdefault("originalStartTimeZone", zones_from["start"].get("timeZone", "UTC"))
    out.setdefault("originalEndTimeZone", zones_from["end"].get("timeZone", "UTC"))
    out["start"], out["end"] = from_utc(ev_start, "UTC"), from_utc(ev_end, "UTC")
    return out


# ---- occurrences and exceptions --------------------------------------------------------------


def _occurrences(
    series: _Series, master_id: str, overrides: list[JsonDict], start: datetime, end: datetime
) -> list[tuple[datetime, str, JsonDict]]:
    replaced = {_original_day(series, ov) for ov in overrides}
    window_first = start.astimezone(series.zone).date() - timedelta(days=series.duration.days + 2)
    window_last = end.astimezone(series.zone).date() + timedelta(days=1)
    found = []
    for day in _original_days(series, window_first, window_last):
        occ_start, occ_end = _occurrence_span(series, day)
        if day in replaced or not overlaps(occ_start, occ_end, start, end):
            continue
        occ = _instance(series.master, series.master, occ_start, occ_end)
        occ_id = f"{master_id}_{day:%Y%m%d}"
        occ.update(
            id=occ_id,
            type="occurrence",
            seriesMasterId=master_id,
            recurrence=None,
            originalStart=format_utc_z(occ_start),
        )
        found.append((occ_start, occ_id, occ))
    return found


def _exceptions(
    series: _Series, overrides: list[JsonDict], start: datetime, end: datetime
) -> list[tuple[datetime, str, JsonDict]]:
    found = []
    for ov in overrides:
        if ov.get("isCancelled"):
            continue  # a deleted occurrence
        inherited = {k: v for k, v in series.master.items() if k not in ("id", "type", "recurrence")}
        merged = {**inherited, **ov, "type": "exception", "recurrence": None}
        if "start" in ov and "end" in ov:
            ev_start, ev_end = _span(ov)
        else:
            ev_start, ev_end = _occurrence_span(series, _original_day(series, ov))
        if overlaps(ev_start, ev_end, start, end):
            found.append((ev_start, str(ov.get("id", "")), _instance(merged, merged, ev_start, ev_end)))
    return found


def _original_day(series: _Series, override: JsonDict) -> date:
    """The original local date an exception replaces: exact instant match, else its local date."""
    raw = override.get("originalStart")
    if not isinstance(raw, str):
        raise ValueError(f"exception {override.get('id')!r} needs originalStart")  # noqa: TRY004 - malformed input is ValueError
    original = parse_wall_time(raw)
    original = (original if original.tzinfo else original.replace(tzinfo=UTC)).astimezone(UTC)
    local_day = original.astimezone(series.zone).date()
    for day in (local_day, local_day - timedelta(days=1), local_day + timedelta(days=1)):
        if _occurrence_span(series, day)[0] == original:
            return day
    return local_day


def _occurrence_span(series: _Series, day: date) -> tuple[datetime, datetime]:
    if series.days:
        first = datetime.combine(day, time(), tzinfo=series.zone)
        after = datetime.combine(day + timedelta(days=series.days), time(), tzinfo=series.zone)
        return first.astimezone(UTC), after.astimezone(UTC)
    occ_start = datetime.combine(day, series.wall, tzinfo=series.zone).astimezone(UTC)
    return occ_start, occ_start + series.duration


# ---- pattern walking ---------------------------------------------------------------------------


def _original_days(series: _Series, window_first: date, window_last: date) -> Iterator[date]:
    """Original local dates of the series, in order, from about `window_first` to `window_last`."""
    pattern, emitted = series.pattern, 0
    period = 0 if series.count is not None else _first_period(pattern, series.first, window_first)
    for k in range(period, period + MAX_PERIODS):
        try:
            period_start, days = _period(pattern, series.first, k)
        except (OverflowError, ValueError):
            return  # walked past year 9999
        if period_start > window_last:
            return
        for day in days:
            if day < series.first:
                continue
            if (series.last and day > series.last) or emitted == series.count:
                return
            emitted += 1
            yield day
    raise ValueError(f"recurrence needs more than {MAX_PERIODS} periods for this window")


def _week_zero(pattern: _Pattern, first: date) -> date:
    return first - timedelta(days=(first.weekday() - pattern.first_day) % 7)


def _first_period(pattern: _Pattern, first: date, earliest: date) -> int:
    """The last period starting on or before `earliest` (0 if none): earlier ones cannot matter."""
    if pattern.kind == "daily":
        periods = (earliest - first).days // pattern.interval
    elif pattern.kind == "weekly":
        periods = (earliest - _week_zero(pattern, first)).days // (7 * pattern.interval)
    elif pattern.kind.endswith("Monthly"):
        months = (earliest.year - first.year) * 12 + earliest.month - first.month
        periods = months // pattern.interval
    else:
        periods = (earliest.year - first.year) // pattern.interval
    return max(0, periods)


def _period(pattern: _Pattern, first: date, k: int) -> tuple[date, list[date]]:
    """Period k's first date and the pattern's dates in it (before range filtering)."""
    if pattern.kind == "daily":
        day = first + timedelta(days=k * pattern.interval)
        return day, [day]
    if pattern.kind == "weekly":
        week = _week_zero(pattern, first) + timedelta(weeks=k * pattern.interval)
        days = [week + timedelta(days=i) for i in range(7)]
        return week, [d for d in days if d.weekday() in pattern.weekdays]
    if pattern.kind.endswith("Monthly"):
        year, month0 = divmod(first.year * 12 + first.month - 1 + k * pattern.interval, 12)
        return date(year, month0 + 1, 1), _month_days(pattern, year, month0 + 1)
    year = first.year + k * pattern.interval
    return date(year, pattern.month, 1), _month_days(pattern, year, pattern.month)


def _month_days(pattern: _Pattern, year: int, month: int) -> list[date]:
    length = calendar.monthrange(year, month)[1]
    if pattern.kind.startswith("absolute"):
        return [date(year, month, pattern.day_of_month)] if pattern.day_of_month <= length else []
    matching = [
        date(year, month, d)
        for d in range(1, length + 1)
        if date(year, month, d).weekday() in pattern.weekdays
    ]
    if pattern.index == -1 or pattern.index < len(matching):
        return [matching[pattern.index]]
    return []


# ---- parsing -----------------------------------------------------------------------------------


def _series(master: JsonDict) -> _Series:
    recurrence = master.get("recurrence")
    if not isinstance(recurrence, dict):
        raise ValueError(f"series master {master.get('id')!r} has no recurrence")  # noqa: TRY004 - malformed input is ValueError
    rng = _mapping(recurrence.get("range"), "range")
    ev_start, ev_end = _span(master)
    zone = zone_for(rng.get("recurrenceTimeZone") or master["start"].get("timeZone") or "UTC")
    local_start = _local_wall(master["start"], zone)
    days = 0
    if master.get("isAllDay"):
        days = max(1, (_local_wall(master["end"], zone).date() - local_start.date()).days)
    first = _date(rng["startDate"]) if rng.get("startDate") else local_start.date()
    last, count = _range_end(rng, first)
    return _Series(
        master=master,
        zone=zone,
        wall=time() if days else local_start.time(),
        duration=timedelta(days=days) if days else ev_end - ev_start,
        days=days,
        pattern=_pattern(_mapping(recurrence.get("pattern"), "pattern")),
        first=first,
        last=last,
        count=count,
    )


def _local_wall(dtz: JsonDict, zone: ZoneInfo) -> datetime:
    """The naive wall time of a dateTimeTimeZone in `zone` (verbatim when already in `zone`)."""
    wall = parse_wall_time(dtz["dateTime"])
    if wall.tzinfo is None and zone_for(dtz.get("timeZone") or "UTC").key == zone.key:
        return wall
    return to_utc(dtz).astimezone(zone).replace(tzinfo=None)


def _range_end(rng: JsonDict, first: date) -> tuple[date | None, int | None]:
    kind = rng.get("type")
    if kind == "noEnd":
        return None, None
    if kind == "endDate":
        last = _date(rng.get("endDate"))
        if last < first:
            raise ValueError("recurrence range ends before it starts")
        return last, None
    if kind == "numbered":
        return None, _number(rng.get("numberOfOccurrences"), "numberOfOccurrences", 1, 100_000)
    raise ValueError(f"unknown recurrence range type {kind!r}")


def _pattern(raw: JsonDict) -> _Pattern:
    kind = raw.get("type")
    if kind not in _KINDS:
        raise ValueError(f"unknown recurrence pattern type {kind!r}")
    relative = kind in ("weekly", "relativeMonthly", "relativeYearly")
    yearly = kind.endswith("Yearly")
    pattern = _Pattern(
        kind=kind,
        interval=_number(raw.get("interval", 1), "interval", 1, _MAX_INTERVAL),
        weekdays=_weekdays(raw.get("daysOfWeek")) if relative else frozenset(),
        first_day=_weekday(raw.get("firstDayOfWeek") or "sunday"),
        day_of_month=_number(raw.get("dayOfMonth"), "dayOfMonth", 1, 31)
        if kind.startswith("absolute")
        else 0,
        month=_number(raw.get("month"), "month", 1, 12) if yearly else 0,
        index=_INDEXES.get(str(raw.get("index") or "first"), 99),
    )
    if pattern.index == 99:
        raise ValueError(f"unknown recurrence index {raw.get('index')!r}")
    leap_year_length = calendar.monthrange(2000, pattern.month or 1)[1]
    if kind == "absoluteYearly" and pattern.day_of_month > leap_year_length:
        raise ValueError("absoluteYearly dayOfMonth does not exist in that month")
    return pattern


def _weekdays(raw: object) -> frozenset[int]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("recurrence pattern needs daysOfWeek")
    return frozenset(_weekday(name) for name in raw)


def _weekday(name: object) -> int:
    if not isinstance(name, str) or name.lower() not in _WEEKDAYS:
        raise ValueError(f"unknown day of week {name!r}")
    return _WEEKDAYS.index(name.lower())


def _number(raw: object, field: str, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise ValueError(f"recurrence {field} must be an integer in [{low}, {high}]")
    return raw


def _date(raw: object) -> date:
    if not isinstance(raw, str):
        raise ValueError(f"recurrence date must be a string, got {raw!r}")  # noqa: TRY004 - malformed input is ValueError
    return date.fromisoformat(raw[:10])


def _mapping(raw: object, field: str) -> JsonDict:
    if not isinstance(raw, dict):
        raise ValueError(f"recurrence {field} must be an object")  # noqa: TRY004 - malformed input is ValueError
    return raw
