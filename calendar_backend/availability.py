"""Per-person availability and panel slot search (pure: no clock, I/O, env or logging).

Rules (DESIGN.md "Slot semantics"): a slot is valid when it lies inside every person's working
hours in their own mailbox zone (DST-aware), overlaps none of their *blocking* time widened by the
query's buffer on both sides, starts at or after ``not_before`` and lies inside the query window.
Blocking statuses default to busy, oof, tentative and unknown (fail closed); free and
workingElsewhere never block unless the rules say so. All-day events block whole local dates in the
person's zone. The Graph edge drops cancelled and declined events before building blocks.

Ranking (:func:`rank_slots`) is documented on the function.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from itertools import accumulate, repeat
from operator import add, attrgetter, sub
from zoneinfo import ZoneInfo

from calendar_backend.slots import (
    Interval,
    Spans,
    from_spans,
    intersect_spans,
    merge,
    require_aware,
    slots_in_spans,
    subtract_spans,
    to_spans,
    union_sorted,
)
from calendar_backend.timezones import localize

_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)
_STATUS = attrgetter("status")
_ITEM_START = attrgetter("interval.start")
_ITEM_END = attrgetter("interval.end")
_WEEKDAYS = frozenset(range(7))


class ShowAs(StrEnum):
    """Graph ``freeBusyStatus`` values, spelled exactly as Graph sends them."""

    FREE = "free"
    TENTATIVE = "tentative"
    BUSY = "busy"
    OOF = "oof"
    WORKING_ELSEWHERE = "workingElsewhere"
    UNKNOWN = "unknown"


DEFAULT_BLOCKING = frozenset({ShowAs.BUSY, ShowAs.OOF, ShowAs.TENTATIVE, ShowAs.UNKNOWN})


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
    return from_spans(_working_spans(hours, window))


def _working_spans(hours: WorkingHours, window: Interval) -> Spans:
    first_day = window.start.astimezone(hours.zone).date() - _ONE_DAY
    last_day = window.end.astimezone(hours.zone).date()
    pieces: list[Interval] = []
    day = first_day
    while day <= last_day:
        if day.weekday() in hours.days:
            shift = _shift_on(day, hours)
            if shift is not None and shift.overlaps(window):
                pieces.append(Interval(max(shift.start, window.start), min(shift.end, window.end)))
        day += _ONE_DAY
    return to_spans(pieces)


def _shift_on(day: date, hours: WorkingHours) -> Interval | None:
    end_day = day + _ONE_DAY if hours.end <= hours.start else day
    start = localize(datetime.combine(day, hours.start), hours.zone)
    end = localize(datetime.combine(end_day, hours.end), hours.zone)
    return Interval(start, end) if start < end else None


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


@dataclass(frozen=True, slots=True)
class BusyBlock:
    """A timed calendar item reduced to its span and free/busy status (no subject, no id)."""

    interval: Interval
    status: ShowAs


@dataclass(frozen=True, slots=True)
class AllDayBlock:
    """An all-day item covering local dates ``[first_day, end_day_exclusive)`` in the owner's zone.

    Raises:
        ValueError: ``first_day >= end_day_exclusive``.
    """

    first_day: date
    end_day_exclusive: date
    status: ShowAs

    def __post_init__(self) -> None:
        if self.first_day >= self.end_day_exclusive:
            raise ValueError("all-day block must cover at least one day")


@dataclass(frozen=True, slots=True)
class BusyRules:
    """Which statuses block a slot. The default fails closed on ``unknown``."""

    blocking: frozenset[ShowAs] = DEFAULT_BLOCKING


@dataclass(frozen=True, slots=True)
class PersonAvailability:
    """One required attendee: mailbox (for blocker reports), working hours and calendar blocks."""

    mailbox: str
    hours: WorkingHours
    blocks: tuple[BusyBlock, ...] = ()
    all_day: tuple[AllDayBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class SlotQuery:
    """A slot search. ``buffer`` widens every blocking interval on both sides.

    Raises:
        ValueError: ``duration`` or ``step`` not positive, ``buffer`` negative, or a naive
            ``not_before``.
    """

    window: Interval
    duration: timedelta
    step: timedelta
    not_before: datetime
    buffer: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.duration <= timedelta(0) or self.step <= timedelta(0):
            raise ValueError("duration and step must be positive")
        if self.buffer < timedelta(0):
            raise ValueError("buffer must not be negative")
        object.__setattr__(self, "not_before", require_aware(self.not_before, "not_before"))


class BlockReason(StrEnum):
    """Why a person leaves no slot; values match ``contract.BlockerOut.reason``."""

    NO_WORKING_HOURS = "no_working_hours"
    """No slot of the requested duration fits their working hours inside the (noticed) window."""
    FULLY_BUSY = "fully_busy"
    """Their working hours have room, but their blocking time leaves no slot."""
    NO_COMMON_TIME = "no_common_time"
    """They have slots alone, but none shared with the rest of the panel."""


@dataclass(frozen=True, slots=True)
class Blocker:
    """A privacy-safe reason for an empty result: a mailbox and an enum, nothing else."""

    mailbox: str
    reason: BlockReason


@dataclass(frozen=True, slots=True)
class PanelResult:
    """The outcome of :func:`find_panel_slots`.

    ``slots`` is chronological, ``ranked`` is the same set best first. When there is no slot,
    ``blockers`` names who blocks and why, unless the query itself leaves no room (the window
    after ``not_before`` is shorter than the duration): then ``is_window_too_short`` is set and
    ``blockers`` is empty.
    """

    slots: tuple[Interval, ...]
    ranked: tuple[Interval, ...]
    blockers: tuple[Blocker, ...] = ()
    is_window_too_short: bool = False


def blocking_intervals(
    person: PersonAvailability, rules: BusyRules, buffer: timedelta = timedelta(0)
) -> tuple[Interval, ...]:
    """The person's blocking time as merged UTC intervals, each widened by ``buffer``.

    All-day blocks cover their local dates in the person's working-hours zone.
    """
    return from_spans(_busy_spans(person, rules, buffer))


def person_slots(person: PersonAvailability, query: SlotQuery, rules: BusyRules) -> tuple[Interval, ...]:
    """Slots valid for ``person`` alone (see module docstring for the rules)."""
    return _slots(_free_spans(person, query, rules), query)


def _slots(free: Spans, query: SlotQuery, limit: int | None = None) -> tuple[Interval, ...]:
    return slots_in_spans(
        free, duration=query.duration, step=query.step, not_before=query.not_before, limit=limit
    )


def _has_slot(free: Spans, query: SlotQuery) -> bool:
    return bool(_slots(free, query, limit=1))


def _item_bounds(person: PersonAvailability, rules: BusyRules) -> tuple[list[datetime], list[datetime]]:
    """Starts and ends of the person's blocking items (timed and all-day), each list sorted."""
    blocks = person.blocks
    if rules.blocking.issuperset(map(_STATUS, blocks)):
        starts = list(map(_ITEM_START, blocks))
        ends = list(map(_ITEM_END, blocks))
    else:
        chosen = [b.interval for b in blocks if b.status in rules.blocking]
        starts = [i.start for i in chosen]
        ends = [i.end for i in chosen]
    for item in person.all_day:
        if item.status in rules.blocking:
            days = local_days(item.first_day, item.end_day_exclusive, person.hours.zone)
            starts.append(days.start)
            ends.append(days.end)
    starts.sort()
    ends.sort()
    return starts, ends


def _buffered_union(starts: list[datetime], ends: list[datetime], buffer: timedelta) -> Spans:
    """Union of items given by independently sorted ``starts``/``ends``, widened by ``buffer``.

    Shifting every start (or end) by the same amount keeps each list sorted.
    """
    if buffer:
        starts = list(map(sub, starts, repeat(buffer)))
        ends = list(map(add, ends, repeat(buffer)))
    return union_sorted(starts, ends)


def _busy_spans(person: PersonAvailability, rules: BusyRules, buffer: timedelta) -> Spans:
    return _buffered_union(*_item_bounds(person, rules), buffer)


def _free_spans(person: PersonAvailability, query: SlotQuery, rules: BusyRules) -> Spans:
    busy = _busy_spans(person, rules, query.buffer)
    return subtract_spans(_working_spans(person.hours, query.window), busy)


def find_panel_slots(
    people: Sequence[PersonAvailability],
    query: SlotQuery,
    rules: BusyRules | None = None,
    *,
    zone_for_days: ZoneInfo | None = None,
) -> PanelResult:
    """Slots valid for every person at once, chronological and ranked.

    ``zone_for_days`` decides which local days the ranking groups by (default: the first
    person's zone). When no slot exists, ``blockers`` explains why per person.

    The panel's common free time is computed as (working time shared by everyone) minus (the union
    of everyone's buffered blocking time), which is the same instant set as intersecting each
    person's free time, but needs one sort of all blocking items instead of one merge per person.
    Working hours shared by several people are expanded once.

    Raises:
        ValueError: ``people`` is empty.
    """
    if not people:
        raise ValueError("a panel needs at least one person")
    rules = rules or BusyRules()
    distinct_hours = list(dict.fromkeys(p.hours for p in people))
    common = _working_spans(distinct_hours[0], query.window)
    for hours in distinct_hours[1:]:
        common = intersect_spans(common, _working_spans(hours, query.window))
    load = _PanelLoad.of(people, rules)
    slots = _slots(subtract_spans(common, _buffered_union(load.starts, load.ends, query.buffer)), query)
    if not slots:
        if _is_window_too_short(query):
            return PanelResult((), (), is_window_too_short=True)
        return PanelResult((), (), explain_empty(people, query, rules))
    zone = zone_for_days or people[0].hours.zone
    return PanelResult(slots, _rank(slots, load, zone))


def free_time(person: PersonAvailability, query: SlotQuery, rules: BusyRules) -> tuple[Interval, ...]:
    """The person's working time inside the query window minus their (buffered) blocking time."""
    return from_spans(_free_spans(person, query, rules))


def explain_empty(
    people: Sequence[PersonAvailability], query: SlotQuery, rules: BusyRules
) -> tuple[Blocker, ...]:
    """Name who blocks an empty panel result and why, without revealing any calendar item.

    Every person with no working-hours slot, or fully busy, is named. If nobody is blocked alone,
    each person whose removal would let the rest of the panel meet is named ``NO_COMMON_TIME``;
    if no single removal helps, everyone is. Returns ``()`` when the panel does have a slot.
    Cost: one free-time computation per person, then prefix and suffix intersections of the free
    time (computed once each), so "everyone but person i" costs one intersection per person:
    O(n * f) for n people with at most f free ranges each, instead of O(n^2 * f).
    """
    free = [_free_spans(p, query, rules) for p in people]
    blockers = [b for p, f in zip(people, free, strict=True) if (b := _individual_blocker(p, f, query))]
    if blockers:
        return tuple(blockers)
    prefix = _running_intersections(free)
    if _has_slot(prefix[-1], query):
        return ()
    suffix = _running_intersections(free[::-1])[::-1]
    culprits = [
        p
        for i, p in enumerate(people)
        if len(people) > 1 and _has_slot(_intersect_optional(prefix[i - 1] if i else None, suffix[i + 1]
                                                              if i + 1 < len(people) else None), query)
    ]
    return tuple(Blocker(p.mailbox, BlockReason.NO_COMMON_TIME) for p in (culprits or people))


def _running_intersections(free: Sequence[Spans]) -> list[Spans]:
    """``result[i]`` is the intersection of ``free[0..i]`` (inclusive)."""
    result = [free[0]]
    for spans in free[1:]:
        result.append(intersect_spans(result[-1], spans))
    return result


def _intersect_optional(a: Spans | None, b: Spans | None) -> Spans:
    if a is None:
        return b if b is not None else ([], [])  # never both None: called with two or more people
    return a if b is None else intersect_spans(a, b)


def _is_window_too_short(query: SlotQuery) -> bool:
    return query.window.end - max(query.window.start, query.not_before) < query.duration


def _individual_blocker(person: PersonAvailability, free: Spans, query: SlotQuery) -> Blocker | None:
    if not _has_slot(_working_spans(person.hours, query.window), query):
        return Blocker(person.mailbox, BlockReason.NO_WORKING_HOURS)
    if not _has_slot(free, query):
        return Blocker(person.mailbox, BlockReason.FULLY_BUSY)
    return None


DAY_PENALTY = 10
"""Points per local day after the first day that has a slot (earliest first is the base)."""
FRAGMENT_PENALTY = 5
"""Points per extra separate free range on the day (fragmented days rank lower)."""
MEETING_PENALTY = 3
"""Points per blocking item overlapping the day, summed over the panel (interviewer load)."""
BUSY_HOUR_PENALTY = 1
"""Points per whole hour of blocking time on the day, summed over the panel (interviewer load)."""


def rank_slots(
    slots: Sequence[Interval],
    people: Sequence[PersonAvailability],
    zone_for_days: ZoneInfo,
    *,
    rules: BusyRules | None = None,
) -> tuple[Interval, ...]:
    """Order ``slots`` best first with a deterministic, documented score (lower is better).

    Slots are grouped by their start's local date in ``zone_for_days``. Each day scores
    ``DAY_PENALTY * days_after_first_day + FRAGMENT_PENALTY * (free_ranges - 1)
    + MEETING_PENALTY * meetings + BUSY_HOUR_PENALTY * busy_hours`` where ``free_ranges`` counts
    the separate runs of (merged) slots that day, ``meetings`` counts blocking items overlapping
    the day summed over the panel, and ``busy_hours`` is their total whole hours within the day
    (summed per person, after merging that person's items). Ties break by start time, so
    the result is a permutation of ``slots`` that is stable for equal inputs.
    """
    return _rank(slots, _PanelLoad.of(people, rules or BusyRules()), zone_for_days)


def _rank(slots: Sequence[Interval], load: _PanelLoad, zone: ZoneInfo) -> tuple[Interval, ...]:
    days = [slot.start.astimezone(zone).date() for slot in slots]
    if not days:
        return ()
    by_day: dict[date, list[Interval]] = {}
    for day, slot in zip(days, slots, strict=True):
        by_day.setdefault(day, []).append(slot)
    first_day = min(by_day)
    score = {day: _day_score(day, first_day, day_slots, load, zone) for day, day_slots in by_day.items()}
    ordered = sorted(zip(days, slots, strict=True), key=lambda pair: (score[pair[0]], pair[1].start))
    return tuple(dict.fromkeys(slot for _, slot in ordered))


@dataclass(frozen=True, slots=True)
class _PersonLoad:
    """One person's blocking time as merged ranges; ``cumulative[i]`` is the length before range i."""

    merged: Spans
    cumulative: list[timedelta]

    @classmethod
    def of(cls, starts: list[datetime], ends: list[datetime]) -> _PersonLoad:
        merged = union_sorted(starts, ends)
        return cls(merged, list(accumulate(map(sub, merged[1], merged[0]), initial=_ZERO)))

    def busy(self, bounds: Interval) -> timedelta:
        """Length of the person's blocking time clipped to ``bounds``."""
        merged_starts, merged_ends = self.merged
        lo = bisect_right(merged_ends, bounds.start)
        hi = bisect_left(merged_starts, bounds.end)
        if lo >= hi:
            return _ZERO
        total = self.cumulative[hi] - self.cumulative[lo]
        if merged_starts[lo] < bounds.start:
            total -= bounds.start - merged_starts[lo]
        if merged_ends[hi - 1] > bounds.end:
            total -= merged_ends[hi - 1] - bounds.end
        return total


@dataclass(frozen=True, slots=True)
class _PanelLoad:
    """Everyone's unbuffered blocking items, indexed once for the union and for ranking.

    ``starts``/``ends`` hold every item's endpoints over the whole panel, each list sorted on its
    own (enough for the union and for counting overlaps); ``people`` keeps per-person merged time.
    """

    starts: list[datetime]
    ends: list[datetime]
    people: tuple[_PersonLoad, ...]

    @classmethod
    def of(cls, people: Sequence[PersonAvailability], rules: BusyRules) -> _PanelLoad:
        starts: list[datetime] = []
        ends: list[datetime] = []
        loads = []
        for person in people:
            person_starts, person_ends = _item_bounds(person, rules)
            loads.append(_PersonLoad.of(person_starts, person_ends))
            starts += person_starts
            ends += person_ends
        starts.sort()  # sorted runs per person: timsort merges them
        ends.sort()
        return cls(starts, ends, tuple(loads))

    def meetings(self, bounds: Interval) -> int:
        """Items overlapping ``bounds``: those starting before its end, minus those ending by its start.

        Every item ending at or before ``bounds.start`` also starts before ``bounds.end``.
        """
        return bisect_left(self.starts, bounds.end) - bisect_right(self.ends, bounds.start)

    def busy(self, bounds: Interval) -> timedelta:
        """Per-person blocking time inside ``bounds``, summed over the panel."""
        return sum((person.busy(bounds) for person in self.people), _ZERO)


def _day_score(
    day: date, first_day: date, day_slots: Sequence[Interval], load: _PanelLoad, zone: ZoneInfo
) -> int:
    bounds = local_days(day, day + _ONE_DAY, zone)
    return (
        DAY_PENALTY * (day - first_day).days
        + FRAGMENT_PENALTY * (len(merge(day_slots)) - 1)
        + MEETING_PENALTY * load.meetings(bounds)
        + BUSY_HOUR_PENALTY * (load.busy(bounds) // timedelta(hours=1))
    )
