"""Pure interval arithmetic and slot finding for the Calendar Service.

Every interval is half-open ``[start, end)`` with timezone-aware UTC endpoints. Functions here read
no clock, environment, file or network and do no logging; the caller passes ``not_before``
(``now + notice``). All results are sorted by start, free of duplicates, and in UTC.

A *slot* is ``[s, s + duration)`` where ``s`` lies on the ``step`` grid anchored at the UTC epoch
(1970-01-01T00:00Z), so a 15-minute step yields starts at :00, :15, :30 and :45 UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import compress, islice
from operator import attrgetter, gt
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Anchor of the slot grid."""


def require_aware(value: datetime, name: str) -> datetime:
    """Return ``value`` converted to UTC.

    Raises:
        ValueError: ``value`` is naive (no tzinfo or a tzinfo that gives no offset).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open span of time ``[start, end)``; both endpoints are normalised to UTC.

    Raises:
        ValueError: an endpoint is naive, or ``start >= end``.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start, end = self.start, self.end
        if start.tzinfo is not UTC or end.tzinfo is not UTC:  # already-UTC endpoints skip this
            start = require_aware(start, "start")
            end = require_aware(end, "end")
            object.__setattr__(self, "start", start)
            object.__setattr__(self, "end", end)
        if start >= end:
            raise ValueError(f"interval start {start.isoformat()} is not before {end.isoformat()}")

    @property
    def length(self) -> timedelta:
        """The absolute (elapsed) length of the interval."""
        return self.end - self.start

    def overlaps(self, other: Interval) -> bool:
        """True when the two half-open intervals share at least one instant."""
        return self.start < other.end and other.start < self.end

    def contains(self, other: Interval) -> bool:
        """True when ``other`` lies entirely inside this interval."""
        return self.start <= other.start and other.end <= self.end

    def widened(self, margin: timedelta) -> Interval:
        """Return the interval grown by ``margin`` on both sides (``margin >= 0``).

        Raises:
            ValueError: ``margin`` is negative.
        """
        if margin < timedelta(0):
            raise ValueError("margin must not be negative")
        if not margin:
            return self
        return Interval(self.start - margin, self.end + margin)


Spans = tuple[list[datetime], list[datetime]]
"""Internal fast form of a merged interval set: parallel lists of UTC starts and ends.

Invariant: both lists are sorted, ``starts[i] < ends[i] < starts[i + 1]`` (disjoint and not
touching). Used inside the engine so that sorting and sweeping run in C over plain datetimes;
:class:`Interval` objects are built only at the API boundary.
"""

_START = attrgetter("start")
_END = attrgetter("end")
_NEW = object.__new__
_SET = object.__setattr__


def trusted_interval(start: datetime, end: datetime) -> Interval:
    """Build an :class:`Interval` without validation.

    The caller guarantees both endpoints are aware with ``tzinfo is UTC`` and ``start < end``
    (true for every endpoint the engine derives from validated intervals).
    """
    interval: Interval = _NEW(Interval)
    _SET(interval, "start", start)
    _SET(interval, "end", end)
    return interval


def union_spans(starts: list[datetime], ends: list[datetime]) -> Spans:
    """Merge raw intervals given as parallel endpoint lists (``starts[i] < ends[i]``) into spans.

    O(n log n); see :func:`union_sorted`.
    """
    return union_sorted(sorted(starts), sorted(ends))


def union_sorted(starts: list[datetime], ends: list[datetime]) -> Spans:
    """Merge raw intervals whose starts and ends have been sorted *independently* into spans.

    With ``s`` and ``e`` sorted, the union has a gap exactly at ``[e[i - 1], s[i])`` whenever
    ``s[i] > e[i - 1]`` (coverage there is zero), so touching intervals coalesce. The pairing of
    starts with ends is irrelevant, which lets callers sort each list on its own (or shift all
    of them by one buffer) without re-sorting pairs. O(n), all of it inside C loops.
    """
    if not starts:
        return [], []
    gaps = list(map(gt, islice(starts, 1, None), ends))
    merged_starts = [starts[0]]
    merged_starts += compress(islice(starts, 1, None), gaps)
    merged_ends = list(compress(ends, gaps))
    merged_ends.append(ends[-1])
    return merged_starts, merged_ends


def to_spans(intervals: Iterable[Interval]) -> Spans:
    """The union of ``intervals`` as :data:`Spans`. O(n log n)."""
    items = intervals if isinstance(intervals, (list, tuple)) else list(intervals)
    return union_spans(list(map(_START, items)), list(map(_END, items)))


def from_spans(spans: Spans) -> tuple[Interval, ...]:
    """:data:`Spans` back to a tuple of :class:`Interval` (the API boundary)."""
    return tuple(map(trusted_interval, spans[0], spans[1]))


def intersect_spans(a: Spans, b: Spans) -> Spans:
    """Instants covered by both span sets, as spans. O(n + m)."""
    a_starts, a_ends = a
    b_starts, b_ends = b
    starts: list[datetime] = []
    ends: list[datetime] = []
    i = j = 0
    n, m = len(a_starts), len(b_starts)
    while i < n and j < m:
        a_end, b_end = a_ends[i], b_ends[j]
        start = a_starts[i] if a_starts[i] > b_starts[j] else b_starts[j]
        end = a_end if a_end < b_end else b_end
        if start < end:
            starts.append(start)
            ends.append(end)
        if a_end <= b_end:
            i += 1
        else:
            j += 1
    return starts, ends


def subtract_spans(windows: Spans, busy: Spans) -> Spans:
    """The parts of ``windows`` not covered by ``busy``, as spans. O(n + m)."""
    busy_starts, busy_ends = busy
    starts: list[datetime] = []
    ends: list[datetime] = []
    j, m = 0, len(busy_starts)
    for window_start, window_end in zip(*windows, strict=True):
        while j < m and busy_ends[j] <= window_start:
            j += 1
        cursor = window_start
        k = j
        while k < m and busy_starts[k] < window_end:
            if busy_starts[k] > cursor:
                starts.append(cursor)
                ends.append(busy_starts[k])
            if busy_ends[k] > cursor:
                cursor = busy_ends[k]
            k += 1
        if cursor < window_end:
            starts.append(cursor)
            ends.append(window_end)
    return starts, ends


def merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Union of ``intervals`` as disjoint, non-touching intervals sorted by start.

    Overlapping and touching intervals (``a.end == b.start``) are coalesced. O(n log n).
    """
    return from_spans(to_spans(intervals))


def subtract(windows: Iterable[Interval], busy: Iterable[Interval]) -> tuple[Interval, ...]:
    """The parts of ``windows`` not covered by any ``busy`` interval.

    Both inputs are merged first, then swept together: O((n + m) log(n + m)). The result is
    merged, so ``subtract(w, ()) == merge(w)`` and subtracting the same ``busy`` twice is a no-op.
    """
    return from_spans(subtract_spans(to_spans(windows), to_spans(busy)))


def intersect(a: Iterable[Interval], b: Iterable[Interval]) -> tuple[Interval, ...]:
    """Instants covered by both ``a`` and ``b``, merged and sorted. O((n + m) log(n + m))."""
    return from_spans(intersect_spans(to_spans(a), to_spans(b)))


def intersect_all(interval_sets: Iterable[Iterable[Interval]]) -> tuple[Interval, ...]:
    """Instants covered by every set in ``interval_sets`` (e.g. each interviewer's free time).

    Raises:
        ValueError: ``interval_sets`` is empty (the intersection of nothing is unbounded).
    """
    result: Spans | None = None
    for intervals in interval_sets:
        spans = to_spans(intervals)
        result = spans if result is None else intersect_spans(result, spans)
    if result is None:
        raise ValueError("intersect_all needs at least one set of intervals")
    return from_spans(result)


def align_up(instant: datetime, step: timedelta) -> datetime:
    """The first grid point at or after ``instant`` on the ``step`` grid anchored at ``EPOCH``.

    Raises:
        ValueError: ``step`` is not positive or ``instant`` is naive.
    """
    if step <= timedelta(0):
        raise ValueError("step must be positive")
    offset = require_aware(instant, "instant") - EPOCH
    return EPOCH + step * -(-offset // step)


def find_slots(
    windows: Sequence[Interval],
    busy: Sequence[Interval],
    *,
    duration: timedelta,
    step: timedelta,
    not_before: datetime,
) -> tuple[Interval, ...]:
    """Every slot ``[s, s + duration)`` inside ``windows``, clear of ``busy``, ``s >= not_before``.

    ``s`` lies on the ``step`` grid anchored at the UTC epoch. Runs in O((n + m) log(n + m) + k)
    for n windows, m busy intervals and k slots. Output is sorted, unique and UTC.

    Raises:
        ValueError: ``duration`` or ``step`` is not positive, or ``not_before`` is naive.
    """
    free = subtract_spans(to_spans(windows), to_spans(busy))
    return slots_in_spans(free, duration=duration, step=step, not_before=not_before)


def slots_in_spans(
    free: Spans, *, duration: timedelta, step: timedelta, not_before: datetime, limit: int | None = None
) -> tuple[Interval, ...]:
    """Every grid slot of ``duration`` inside the free ``spans`` starting at or after ``not_before``.

    Stops after ``limit`` slots when given (``limit=1`` answers "is there any slot?").

    Raises:
        ValueError: ``duration`` or ``step`` is not positive, or ``not_before`` is naive.
    """
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if step <= timedelta(0):
        raise ValueError("step must be positive")
    earliest = require_aware(not_before, "not_before")
    slots: list[Interval] = []
    for free_start, free_end in zip(*free, strict=True):
        last_start = free_end - duration
        start = align_up(free_start if free_start > earliest else earliest, step)
        while start <= last_start:
            slots.append(trusted_interval(start, start + duration))
            if limit is not None and len(slots) >= limit:
                return tuple(slots)
            start += step
    return tuple(slots)


@dataclass(frozen=True, slots=True)
class CandidateDay:
    """The candidate's working day: local wall-clock ``[start, end)`` in ``zone`` (DST-aware).

    The default is 08:00-20:00. ``end`` may be ``time(0)`` for "until midnight".

    Raises:
        ValueError: ``start`` is not before ``end`` (with midnight as the latest end).
    """

    zone: ZoneInfo
    start: time = time(8)
    end: time = time(20)

    def __post_init__(self) -> None:
        if self.end != time(0) and self.start >= self.end:
            raise ValueError("the candidate's day must start before it ends")

    def contains(self, slot: Interval) -> bool:
        """True when ``slot`` lies inside one local day's ``[start, end)`` in ``zone``."""
        local_start = slot.start.astimezone(self.zone)
        day = local_start.date()
        opens = datetime.combine(day, self.start, tzinfo=self.zone)
        closes = (
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
            if self.end == time(0)
            else datetime.combine(day, self.end, tzinfo=self.zone)
        )
        return opens <= slot.start and slot.end <= closes


def candidate_first(
    slots: Sequence[Interval], day: CandidateDay
) -> tuple[tuple[Interval, ...], tuple[Interval, ...]]:
    """Split ``slots`` into those inside the candidate's day and the rest, each in input order.

    ``inside + outside`` is a permutation of ``slots`` (a stable partition), so a best-first list
    stays best first within each part.
    """
    inside: list[Interval] = []
    outside: list[Interval] = []
    for slot in slots:
        (inside if day.contains(slot) else outside).append(slot)
    return tuple(inside), tuple(outside)
