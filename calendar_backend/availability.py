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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from calendar_backend.slots import Interval, find_slots, intersect_all, merge, require_aware
from calendar_backend.timezones import localize

_ONE_DAY = timedelta(days=1)
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
    return merge(pieces)


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
    return merge(i.widened(buffer) for i in _person_items(person, rules))


def person_slots(
    person: PersonAvailability, query: SlotQuery, rules: BusyRules
) -> tuple[Interval, ...]:
    """Slots valid for ``person`` alone (see module docstring for the rules)."""
    return _slots(working_windows(person.hours, query.window), _busy(person, query, rules), query)


def _slots(
    windows: Sequence[Interval], busy: Sequence[Interval], query: SlotQuery
) -> tuple[Interval, ...]:
    return find_slots(
        windows, busy, duration=query.duration, step=query.step, not_before=query.not_before
    )


def _busy(person: PersonAvailability, query: SlotQuery, rules: BusyRules) -> tuple[Interval, ...]:
    return blocking_intervals(person, rules, query.buffer)


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

    Raises:
        ValueError: ``people`` is empty.
    """
    if not people:
        raise ValueError("a panel needs at least one person")
    rules = rules or BusyRules()
    windows = intersect_all(working_windows(p.hours, query.window) for p in people)
    busy = merge(i for p in people for i in _busy(p, query, rules))
    slots = _slots(windows, busy, query)
    if not slots:
        if _is_window_too_short(query):
            return PanelResult((), (), is_window_too_short=True)
        return PanelResult((), (), explain_empty(people, query, rules))
    zone = zone_for_days or people[0].hours.zone
    return PanelResult(slots, rank_slots(slots, people, zone, rules=rules))


def explain_empty(
    people: Sequence[PersonAvailability], query: SlotQuery, rules: BusyRules
) -> tuple[Blocker, ...]:
    """Name who blocks an empty panel result and why, without revealing any calendar item.

    Every person with no working-hours slot, or fully busy, is named. If nobody is blocked alone,
    each person whose removal would let the rest of the panel meet is named ``NO_COMMON_TIME``;
    if no single removal helps, everyone is. Returns ``()`` when the panel does have a slot.
    """
    blockers = [b for b in (_individual_blocker(p, query, rules) for p in people) if b]
    if blockers:
        return tuple(blockers)
    culprits = [p for p in people if len(people) > 1 and _panel_meets(people, p, query, rules)]
    if not culprits and _panel_meets(people, None, query, rules):
        return ()
    return tuple(Blocker(p.mailbox, BlockReason.NO_COMMON_TIME) for p in (culprits or people))


def _is_window_too_short(query: SlotQuery) -> bool:
    return query.window.end - max(query.window.start, query.not_before) < query.duration


def _individual_blocker(
    person: PersonAvailability, query: SlotQuery, rules: BusyRules
) -> Blocker | None:
    windows = working_windows(person.hours, query.window)
    if not _slots(windows, (), query):
        return Blocker(person.mailbox, BlockReason.NO_WORKING_HOURS)
    if not _slots(windows, _busy(person, query, rules), query):
        return Blocker(person.mailbox, BlockReason.FULLY_BUSY)
    return None


def _panel_meets(
    people: Sequence[PersonAvailability],
    left_out: PersonAvailability | None,
    query: SlotQuery,
    rules: BusyRules,
) -> bool:
    rest = [p for p in people if p is not left_out]
    windows = intersect_all(working_windows(p.hours, query.window) for p in rest)
    busy = merge(i for p in rest for i in _busy(p, query, rules))
    return bool(_slots(windows, busy, query))


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
    rules = rules or BusyRules()
    by_day: dict[date, list[Interval]] = {}
    for slot in slots:
        by_day.setdefault(slot.start.astimezone(zone_for_days).date(), []).append(slot)
    if not by_day:
        return ()
    first_day = min(by_day)
    blocking = [_person_items(p, rules) for p in people]
    score = {
        day: _day_score(day, first_day, day_slots, blocking, zone_for_days)
        for day, day_slots in by_day.items()
    }
    ordered = sorted(
        slots, key=lambda s: (score[s.start.astimezone(zone_for_days).date()], s.start)
    )
    return tuple(dict.fromkeys(ordered))


def _person_items(person: PersonAvailability, rules: BusyRules) -> tuple[Interval, ...]:
    timed = tuple(b.interval for b in person.blocks if b.status in rules.blocking)
    days = tuple(
        local_days(b.first_day, b.end_day_exclusive, person.hours.zone)
        for b in person.all_day
        if b.status in rules.blocking
    )
    return timed + days


def _day_score(
    day: date,
    first_day: date,
    day_slots: Sequence[Interval],
    blocking: Sequence[tuple[Interval, ...]],
    zone: ZoneInfo,
) -> int:
    bounds = local_days(day, day + _ONE_DAY, zone)
    meetings = 0
    busy = timedelta(0)
    for items in blocking:
        on_day = [i for i in items if i.overlaps(bounds)]
        meetings += len(on_day)
        clipped = (Interval(max(i.start, bounds.start), min(i.end, bounds.end)) for i in on_day)
        busy += sum((i.length for i in merge(clipped)), timedelta(0))
    return (
        DAY_PENALTY * (day - first_day).days
        + FRAGMENT_PENALTY * (len(merge(day_slots)) - 1)
        + MEETING_PENALTY * meetings
        + BUSY_HOUR_PENALTY * (busy // timedelta(hours=1))
    )
