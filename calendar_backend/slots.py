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
from datetime import UTC, datetime, timedelta

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
        start = require_aware(self.start, "start")
        end = require_aware(self.end, "end")
        if start >= end:
            raise ValueError(f"interval start {start.isoformat()} is not before {end.isoformat()}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

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
        return Interval(self.start - margin, self.end + margin)


def merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Union of ``intervals`` as disjoint, non-touching intervals sorted by start.

    Overlapping and touching intervals (``a.end == b.start``) are coalesced. O(n log n).
    """
    ordered = sorted(intervals, key=lambda i: (i.start, i.end))
    merged: list[Interval] = []
    for current in ordered:
        if merged and current.start <= merged[-1].end:
            last = merged[-1]
            if current.end > last.end:
                merged[-1] = Interval(last.start, current.end)
        else:
            merged.append(current)
    return tuple(merged)


def subtract(windows: Iterable[Interval], busy: Iterable[Interval]) -> tuple[Interval, ...]:
    """The parts of ``windows`` not covered by any ``busy`` interval.

    Both inputs are merged first, then swept together: O((n + m) log(n + m)). The result is
    merged, so ``subtract(w, ()) == merge(w)`` and subtracting the same ``busy`` twice is a no-op.
    """
    blocked = merge(busy)
    free: list[Interval] = []
    j = 0
    for window in merge(windows):
        while j < len(blocked) and blocked[j].end <= window.start:
            j += 1
        cursor = window.start
        k = j
        while k < len(blocked) and blocked[k].start < window.end:
            if blocked[k].start > cursor:
                free.append(Interval(cursor, blocked[k].start))
            cursor = max(cursor, blocked[k].end)
            k += 1
        if cursor < window.end:
            free.append(Interval(cursor, window.end))
    return tuple(free)


def intersect(a: Iterable[Interval], b: Iterable[Interval]) -> tuple[Interval, ...]:
    """Instants covered by both ``a`` and ``b``, merged and sorted. O((n + m) log(n + m))."""
    left, right = merge(a), merge(b)
    common: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i].start, right[j].start)
        end = min(left[i].end, right[j].end)
        if start < end:
            common.append(Interval(start, end))
        if left[i].end <= right[j].end:
            i += 1
        else:
            j += 1
    return tuple(common)


def intersect_all(interval_sets: Iterable[Iterable[Interval]]) -> tuple[Interval, ...]:
    """Instants covered by every set in ``interval_sets`` (e.g. each interviewer's free time).

    Raises:
        ValueError: ``interval_sets`` is empty (the intersection of nothing is unbounded).
    """
    result: tuple[Interval, ...] | None = None
    for intervals in interval_sets:
        result = merge(intervals) if result is None else intersect(result, intervals)
    if result is None:
        raise ValueError("intersect_all needs at least one set of intervals")
    return result


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
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    earliest = require_aware(not_before, "not_before")
    slots: list[Interval] = []
    for free in subtract(windows, busy):
        start = align_up(max(free.start, earliest), step)
        while start + duration <= free.end:
            slots.append(Interval(start, start + duration))
            start += step
    return tuple(slots)
