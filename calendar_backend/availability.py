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
from itertools import repeat
from operator import add, attrgetter, sub
from zoneinfo import ZoneInfo

from calendar_backend.availability_hours import (
    WorkingHours,
    local_days,
    localize_days,
    working_spans,
    working_windows,
)
from calendar_backend.slots import (
    Interval,
    Spans,
    from_spans,
    intersect_spans,
    merge,
    require_aware,
    slots_in_spans,
    subtract_spans,
    union_sorted,
)

_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)
_STATUS = attrgetter("status")
_INTERVAL = attrgetter("interval")
_START = attrgetter("start")
_END = attrgetter("end")


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
    """No slot of the requested duration fits their working hours inside the (noticed) window,
    although the window holds at least one of their working days."""
    NOT_WORKING_DAYS = "not_working_days"
    """None of the (noticed) window's local days, in their zone, is one of their working days
    (e.g. a weekend)."""
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
    """Starts and ends of the person's blocking items (timed and all-day), each list sorted.

    The items are sorted by start once (one key, like any sort of intervals) and both endpoint
    lists are read in that order: the starts come out sorted and the ends nearly so (an end is out
    of place only when its item ends before an earlier-starting one does), which timsort finishes
    in a fraction of a full sort. Sorting the raw starts and ends each on its own costs two full
    sorts (and per person, not per panel: no panel-wide list is ever sorted).
    """
    blocks = person.blocks
    if rules.blocking.issuperset(map(_STATUS, blocks)):
        items = sorted(map(_INTERVAL, blocks), key=_START)
    else:
        items = sorted([b.interval for b in blocks if b.status in rules.blocking], key=_START)
    starts = list(map(_START, items))
    ends = list(map(_END, items))
    if person.all_day:
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
    return subtract_spans(working_spans(person.hours, query.window), busy)


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

    The panel's common free time is computed as (working time shared by everyone) minus each
    person's buffered blocking time in turn, which is the same instant set as intersecting each
    person's free time. Working hours shared by several people are expanded once. Each subtraction
    only visits the blocking time that touches the remaining free ranges (binary search), and free
    ranges shorter than the duration are dropped as soon as they appear (they cannot hold a slot
    and only shrink further), so after the first few people little is left to subtract from.

    Raises:
        ValueError: ``people`` is empty.
    """
    if not people:
        raise ValueError("a panel needs at least one person")
    rules = rules or BusyRules()
    distinct_hours = list(dict.fromkeys(p.hours for p in people))
    common = working_spans(distinct_hours[0], query.window)
    for hours in distinct_hours[1:]:
        common = intersect_spans(common, working_spans(hours, query.window))
    load = _PanelLoad.of(people, rules)
    free = common
    for busy in load.merged():
        free = _subtract_widened(free, busy, query.buffer, query.duration)
    slots = _slots(free, query)
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
        if len(people) > 1
        and _has_slot(
            _intersect_optional(prefix[i - 1] if i else None, suffix[i + 1] if i + 1 < len(people) else None),
            query,
        )
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


def works_on_a_day_of(hours: WorkingHours, query: SlotQuery) -> bool:
    """True when a local day of the (noticed) window, in ``hours.zone``, is a working day."""
    start = max(query.window.start, query.not_before)
    if start >= query.window.end:
        return True  # the window itself is too short: not a question of working days
    first = start.astimezone(hours.zone).date()
    last = (query.window.end - timedelta(microseconds=1)).astimezone(hours.zone).date()
    return any(
        (first + timedelta(days=n)).weekday() in hours.days for n in range(min((last - first).days + 1, 7))
    )


def _individual_blocker(person: PersonAvailability, free: Spans, query: SlotQuery) -> Blocker | None:
    if not _has_slot(working_spans(person.hours, query.window), query):
        reason = (
            BlockReason.NO_WORKING_HOURS
            if works_on_a_day_of(person.hours, query)
            else BlockReason.NOT_WORKING_DAYS
        )
        return Blocker(person.mailbox, reason)
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
    ranked_days = sorted(by_day)
    first_day = ranked_days[0]
    # Every day's bounds at once: the midnights of each day and of the day after it.
    midnights = localize_days(ranked_days + [day + _ONE_DAY for day in ranked_days], time(), zone)
    score = {
        day: _day_score(day, first_day, by_day[day], load, Interval(start, end))
        for day, start, end in zip(
            ranked_days, midnights[: len(ranked_days)], midnights[len(ranked_days) :], strict=True
        )
    }
    ordered = sorted(zip(days, slots, strict=True), key=lambda pair: (score[pair[0]], pair[1].start))
    return tuple(dict.fromkeys(slot for _, slot in ordered))


def _subtract_widened(windows: Spans, busy: Spans, margin: timedelta, min_length: timedelta) -> Spans:
    """``windows`` minus ``busy`` widened by ``margin`` on both sides, keeping pieces >= ``min_length``.

    ``busy`` is merged (sorted, disjoint). Widening shifts every start and every end by the same
    amount, so both lists stay sorted and only the spans near each window are widened (on the
    fly) instead of copying the whole list; a binary search skips the spans that end before it.
    """
    busy_starts, busy_ends = busy
    count = len(busy_starts)
    starts: list[datetime] = []
    ends: list[datetime] = []
    first = 0
    for window_start, window_end in zip(*windows, strict=True):
        first = bisect_right(busy_ends, window_start - margin, first)
        cursor = window_start
        index = first
        while index < count:
            blocked_from = busy_starts[index] - margin
            if blocked_from >= window_end:
                break
            if blocked_from - cursor >= min_length:
                starts.append(cursor)
                ends.append(blocked_from)
            blocked_to = busy_ends[index] + margin
            if blocked_to > cursor:
                cursor = blocked_to
            index += 1
        if window_end - cursor >= min_length:
            starts.append(cursor)
            ends.append(window_end)
    return starts, ends


@dataclass(frozen=True, slots=True)
class _PanelLoad:
    """Every person's blocking items, indexed once for the panel's free time and for ranking.

    Column ``i`` of each field belongs to person ``i``: ``starts``/``ends`` hold their items'
    endpoints, each list sorted on its own (enough to count overlaps), and ``merged_starts``/
    ``merged_ends`` their union. Keeping one list per person (not one merged panel list) means no
    panel-wide sort; a per-day query maps a binary search over the people in C.
    """

    starts: tuple[list[datetime], ...]
    ends: tuple[list[datetime], ...]
    merged_starts: tuple[list[datetime], ...]
    merged_ends: tuple[list[datetime], ...]

    @classmethod
    def of(cls, people: Sequence[PersonAvailability], rules: BusyRules) -> _PanelLoad:
        bounds = [_item_bounds(person, rules) for person in people]
        merged = [union_sorted(starts, ends) for starts, ends in bounds]
        return cls(
            tuple(starts for starts, _ in bounds),
            tuple(ends for _, ends in bounds),
            tuple(starts for starts, _ in merged),
            tuple(ends for _, ends in merged),
        )

    def merged(self) -> zip[tuple[list[datetime], list[datetime]]]:
        """Each person's blocking time as :data:`Spans`."""
        return zip(self.merged_starts, self.merged_ends, strict=True)

    def meetings(self, bounds: Interval) -> int:
        """Items overlapping ``bounds`` over the panel: those starting before its end, minus those
        ending by its start (every item ending at or before ``bounds.start`` starts before ``bounds.end``).
        """
        return sum(map(bisect_left, self.starts, repeat(bounds.end))) - sum(
            map(bisect_right, self.ends, repeat(bounds.start))
        )

    def busy(self, bounds: Interval) -> timedelta:
        """Each person's (merged) blocking time clipped to ``bounds``, summed over the panel.

        Only the merged ranges overlapping ``bounds`` are visited (found by binary search): ranking
        asks about the few local days that have slots, not the whole window.
        """
        start, end = bounds.start, bounds.end
        total = _ZERO
        for merged_starts, merged_ends, lo, hi in zip(
            self.merged_starts,
            self.merged_ends,
            map(bisect_right, self.merged_ends, repeat(start)),
            map(bisect_left, self.merged_starts, repeat(end)),
            strict=True,
        ):
            if lo < hi:
                total += sum(map(sub, merged_ends[lo:hi], merged_starts[lo:hi]), _ZERO)
                if merged_starts[lo] < start:
                    total -= start - merged_starts[lo]
                if merged_ends[hi - 1] > end:
                    total -= merged_ends[hi - 1] - end
        return total


def _day_score(
    day: date, first_day: date, day_slots: Sequence[Interval], load: _PanelLoad, bounds: Interval
) -> int:
    """The score of ``day`` (see :func:`rank_slots`); ``bounds`` is the day in UTC (``local_days``)."""
    return (
        DAY_PENALTY * (day - first_day).days
        + FRAGMENT_PENALTY * (len(merge(day_slots)) - 1)
        + MEETING_PENALTY * load.meetings(bounds)
        + BUSY_HOUR_PENALTY * (load.busy(bounds) // timedelta(hours=1))
    )


__all__ = [  # WorkingHours, local_days and working_windows live in availability_hours
    "BUSY_HOUR_PENALTY",
    "DAY_PENALTY",
    "DEFAULT_BLOCKING",
    "FRAGMENT_PENALTY",
    "MEETING_PENALTY",
    "AllDayBlock",
    "BlockReason",
    "Blocker",
    "BusyBlock",
    "BusyRules",
    "PanelResult",
    "PersonAvailability",
    "ShowAs",
    "SlotQuery",
    "WorkingHours",
    "blocking_intervals",
    "explain_empty",
    "find_panel_slots",
    "free_time",
    "local_days",
    "person_slots",
    "rank_slots",
    "working_windows",
    "works_on_a_day_of",
]
