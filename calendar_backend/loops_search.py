"""Interview loops: the search (pure: no clock, I/O, env, logging).

Per session, the feasible grid starts are computed once (:func:`session_options`); a depth-first
branch-and-bound (:class:`Search`) then places sessions in chronological order, as documented in
:mod:`calendar_backend.loops` (rules, ordering, cost).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from calendar_backend.availability_hours import WorkingHours, working_windows
from calendar_backend.loops_model import MINUTE, LocalWindow, LoopSchedule, LoopSpec, Placement, Session
from calendar_backend.slots import (
    EPOCH,
    Interval,
    Spans,
    intersect_spans,
    slots_in_spans,
    to_spans,
)

_ALL_DAYS = frozenset(range(7))


# ---- per-session options ----------------------------------------------------------------------


def _minutes(instant: datetime) -> int:
    return (instant - EPOCH) // MINUTE


def _daily_spans(window: LocalWindow, zone: ZoneInfo, span: Interval) -> Spans:
    hours = WorkingHours(_ALL_DAYS, window.start, window.end, window.zone or zone)
    return to_spans(working_windows(hours, span))


def _spans_of(free: Mapping[str, Sequence[Interval]], mailbox: str) -> Spans:
    return to_spans(free.get(mailbox, ()))  # unknown mailbox: never free (fail closed)


def base_spans(spec: LoopSpec, session: Session) -> Spans:
    """Where ``session`` may lie before anyone's calendar: the search window, within its local
    window (lunch) if it has one."""
    base: Spans = ([spec.window.start], [spec.window.end])
    if session.window is not None:
        base = intersect_spans(base, _daily_spans(session.window, spec.zone, spec.window))
    return base


def grid_starts(
    spec: LoopSpec, spans: Spans, duration: timedelta, limit: int | None = None
) -> list[datetime]:
    """Starts on the ``spec.step`` grid, at or after ``spec.not_before``, of a ``duration`` that fits
    inside ``spans`` (at most ``limit``)."""
    found = slots_in_spans(spans, duration=duration, step=spec.step, not_before=spec.not_before, limit=limit)
    return [slot.start for slot in found]


def session_starts(
    spec: LoopSpec,
    session: Session,
    free: Mapping[str, Sequence[Interval]],
    *,
    duration: timedelta | None = None,
    people: Sequence[str] | None = None,
    limit: int | None = None,
) -> dict[datetime, str | None]:
    """Feasible starts of ``session`` (chronological) and the room each would use."""
    duration = duration or session.duration
    spans = base_spans(spec, session)
    for mailbox in session.interviewers if people is None else people:
        spans = intersect_spans(spans, _spans_of(free, mailbox))
    if not session.rooms:
        return dict.fromkeys(grid_starts(spec, spans, duration, limit))
    chosen: dict[datetime, str | None] = {}
    for room in session.rooms:
        for start in grid_starts(spec, intersect_spans(spans, _spans_of(free, room)), duration, limit):
            chosen.setdefault(start, room)
    return dict(sorted(chosen.items()))


@dataclass(slots=True)
class SessionOptions:
    """One session's feasible starts as parallel lists of plain ints (minutes since the epoch)."""

    starts: list[int]
    days: list[int]
    outside: list[int]
    rooms: list[str | None]
    duration: int


def _overlap_minutes(spans: Spans, start: datetime, end: datetime) -> int:
    starts, ends = spans
    total = timedelta(0)
    index = bisect_right(ends, start)
    while index < len(starts) and starts[index] < end:
        low = max(starts[index], start)
        high = min(ends[index], end)
        if low < high:
            total += high - low
        index += 1
    return total // MINUTE


def session_options(spec: LoopSpec, free: Mapping[str, Sequence[Interval]]) -> list[SessionOptions]:
    """Each session's feasible starts, room, local day and minutes outside the candidate's day."""
    candidate = _daily_spans(spec.candidate_day, spec.candidate_zone or spec.zone, spec.window)
    result = []
    for session in spec.sessions:
        chosen = session_starts(spec, session, free)
        minutes = session.duration // MINUTE
        opts = SessionOptions([], [], [], [], minutes)
        for start, room in chosen.items():
            end = start + session.duration
            opts.starts.append(_minutes(start))
            opts.days.append(start.astimezone(spec.zone).date().toordinal())
            opts.outside.append(minutes - _overlap_minutes(candidate, start, end))
            opts.rooms.append(room)
        result.append(opts)
    return result


# ---- branch and bound -------------------------------------------------------------------------

_Key = tuple[int, int, int, int, tuple[int, ...]]


class _FoundOneError(Exception):
    """Raised by a ``first_only`` search at its first complete schedule."""


class Search:
    """Depth-first branch and bound over sessions in chronological order (module docstring)."""

    def __init__(
        self,
        options: list[SessionOptions],
        spec: LoopSpec,
        k: int,
        max_days: int,
        *,
        first_only: bool = False,
    ) -> None:
        self.first_only = first_only
        self.options = options
        self.k = k
        self.max_days = max_days
        self.min_gap = spec.min_break // MINUTE
        self.max_gap = spec.max_break // MINUTE
        self.count = len(options)
        self.full = (1 << self.count) - 1
        self.preds = [0] * self.count
        for a, b in spec.precedence():
            self.preds[b] |= 1 << a
        self.best: list[tuple[_Key, tuple[int, ...]]] = []  # (key, option index by session)
        self.chosen = [0] * self.count
        self.dead: set[tuple[int, int, int, int]] = set()

    def _cut(self, days: int, idle: int, outside: int, first: int) -> bool:
        if len(self.best) < self.k:
            return False
        worst = self.best[-1][0]
        return (days, idle, outside, first) > worst[:4]

    def _tied_and_later(
        self, mask: int, last_end: int, days: int, idle: int, outside: int, first: int
    ) -> bool:
        """True when the partial key ties the K-th best's first four parts and no completion can
        win the tie-break (starts by session index): placed sessions count with their start, the
        others with a lower bound (they start after ``last_end``), and every completion is
        component-wise, hence lexicographically, at or above that vector."""
        if len(self.best) < self.k:
            return False
        worst = self.best[-1][0]
        if (days, idle, outside, first) != worst[:4]:
            return False
        for session, start in enumerate(worst[4]):
            if mask >> session & 1:
                bound = self.options[session].starts[self.chosen[session]]
            else:
                bound = max(last_end, self.options[session].starts[0])
            if bound != start:
                return bound > start
        return True

    def _record(self, days: int, idle: int, outside: int, first: int) -> None:
        starts = tuple(self.options[i].starts[self.chosen[i]] for i in range(self.count))
        key: _Key = (days, idle, outside, first, starts)
        if len(self.best) == self.k and key >= self.best[-1][0]:
            return
        if self.first_only:
            raise _FoundOneError
        insort(self.best, (key, tuple(self.chosen)))
        del self.best[self.k :]

    def run(self) -> list[tuple[_Key, tuple[int, ...]]]:
        for session in range(self.count):
            if self.preds[session]:
                continue
            opts = self.options[session]
            for index, start in enumerate(opts.starts):
                if self._cut(1, 0, opts.outside[index], start):
                    continue
                self.chosen[session] = index
                self._extend(
                    1 << session, start + opts.duration, opts.days[index], 1, 0, opts.outside[index], start
                )
        return self.best

    def _extend(
        self, mask: int, last_end: int, last_day: int, days: int, idle: int, outside: int, first: int
    ) -> bool:
        """Place the remaining sessions; False only when no completion exists from this state.

        Whether a completion exists depends on ``(mask, last_end, last_day, days)`` alone, not on
        the key so far, so a state proved dead (no completion reached and nothing cut by the bound
        below it) is remembered and never expanded again. This turns a fruitless exhaustive search
        (e.g. seven sessions that cannot share one day) from factorial into polynomial in the
        number of states.
        """
        if mask == self.full:
            self._record(days, idle, outside, first)
            return True
        state = (mask, last_end, last_day, days)
        if state in self.dead:
            return False
        if self._tied_and_later(mask, last_end, days, idle, outside, first):
            return True
        alive = False
        for session in range(self.count):
            if mask >> session & 1 or self.preds[session] & ~mask:
                continue
            alive |= self._same_day(session, mask, last_end, last_day, days, idle, outside, first)
            if days < self.max_days:
                alive |= self._later_day(session, mask, last_end, last_day, days, idle, outside, first)
        if not alive:
            self.dead.add(state)
        return alive

    def _same_day(
        self,
        session: int,
        mask: int,
        last_end: int,
        last_day: int,
        days: int,
        idle: int,
        outside: int,
        first: int,
    ) -> bool:
        """Place ``session`` next on the same day, within the break rule."""
        opts = self.options[session]
        starts, day_of, out = opts.starts, opts.days, opts.outside
        alive = False
        low = bisect_left(starts, last_end + self.min_gap)
        high = bisect_right(starts, last_end + self.max_gap)
        for index in range(low, high):
            if day_of[index] != last_day:
                continue
            gap = starts[index] - last_end
            if self._cut(days, idle + gap, outside, first):
                return True  # idle grows with the start: every later start is cut too
            if self._cut(days, idle + gap, outside + out[index], first):
                alive = True
                continue
            self.chosen[session] = index
            alive |= self._extend(
                mask | 1 << session,
                starts[index] + opts.duration,
                last_day,
                days,
                idle + gap,
                outside + out[index],
                first,
            )
        return alive

    def _later_day(
        self,
        session: int,
        mask: int,
        last_end: int,
        last_day: int,
        days: int,
        idle: int,
        outside: int,
        first: int,
    ) -> bool:
        """Place ``session`` next on a later local date, any time after the previous one ended."""
        if self._cut(days + 1, idle, outside, first):
            return True
        opts = self.options[session]
        starts, day_of, out = opts.starts, opts.days, opts.outside
        alive = False
        for index in range(max(bisect_right(day_of, last_day), bisect_left(starts, last_end)), len(starts)):
            if self._cut(days + 1, idle, outside + out[index], first):
                alive = True
                continue
            self.chosen[session] = index
            alive |= self._extend(
                mask | 1 << session,
                starts[index] + opts.duration,
                day_of[index],
                days + 1,
                idle,
                outside + out[index],
                first,
            )
        return alive


def best_schedules(spec: LoopSpec, options: list[SessionOptions], k: int) -> tuple[LoopSchedule, ...]:
    found: list[tuple[_Key, tuple[int, ...]]] = []
    for days in range(1, min(spec.max_days, len(spec.sessions)) + 1):
        found = Search(options, spec, k, days).run()
        if len(found) >= k:
            break
    schedules = []
    for (days, idle, outside, _first, _by_index), chosen in found:
        placements = []
        for i, index in enumerate(chosen):
            start = EPOCH + options[i].starts[index] * MINUTE
            session = spec.sessions[i]
            placements.append(
                Placement(i, session.title, start, start + session.duration, options[i].rooms[index])
            )
        placements.sort(key=lambda p: p.start)
        schedules.append(LoopSchedule(tuple(placements), days, idle * MINUTE, outside * MINUTE))
    return tuple(schedules)


def has_loop(spec: LoopSpec, free: Mapping[str, Sequence[Interval]]) -> bool:
    """True when at least one schedule exists (stops at the first one found)."""
    options = session_options(spec, free)
    if not all(o.starts for o in options):
        return False
    try:
        Search(options, spec, 1, min(spec.max_days, len(spec.sessions)), first_only=True).run()
    except _FoundOneError:
        return True
    return False


__all__ = [
    "Search",
    "SessionOptions",
    "base_spans",
    "best_schedules",
    "grid_starts",
    "has_loop",
    "session_options",
    "session_starts",
]
