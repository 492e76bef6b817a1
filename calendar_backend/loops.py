"""Interview loops: the exact search for the best K loop schedules (pure: no clock, I/O, env, logging).

A *loop* is a list of :class:`Session` (title, duration, required interviewers, optionally "any one
of these rooms", optionally a local time window such as lunch at 11:30-13:30) that the candidate
attends one after the other. The input is each mailbox's *free* time (working hours minus blocking
time, exactly what :func:`calendar_backend.availability.free_time` computes for one person; rooms are
mailboxes too), so a session fits at ``[s, s + duration)`` iff every interviewer and the chosen room
are free for all of it, ``s`` lies on the UTC ``step`` grid (as for single slots, see
:mod:`calendar_backend.slots`), ``s >= not_before`` (now + minimum notice) and the session lies
inside the search window (and inside its local window, if it has one).

Schedule rules (:class:`LoopSpec`):

- Sessions never overlap. Their chronological order must respect ``before`` (pairs ``(a, b)``: session
  ``a`` comes before session ``b``); ``fixed_order=True`` means the listed order.
- The *day* of a session is the local date of its start in the loop's ``zone``. Consecutive sessions on
  the same day are separated by a break in ``[min_break, max_break]``; a session on a later day may
  start any time after the previous one ended. A schedule uses at most ``max_days`` distinct days.
- The room of a session is the first room of its list that is free for the whole session (rooms are
  a preference list, so a schedule is identified by its start times alone).
- Local windows (lunch) and the candidate's day are wall-clock spans built with the same DST rule as
  working hours (:func:`calendar_backend.availability.working_windows`).

Ordering (best first), a total order on schedules, compared as the tuple :meth:`LoopSchedule.key`:

1. fewer days used;
2. less idle time: the sum of the breaks between consecutive sessions on the same day (compactness);
3. fewer minutes outside the candidate's day (default 08:00-20:00 in ``candidate_zone``);
4. earlier first start;
5. tie-break: the start times listed by session index (earlier first), lexicographically.

Search: per session, the feasible grid starts are computed once with the span arithmetic of
:mod:`calendar_backend.slots` (intersections of free time, O(total free ranges)). A depth-first
branch-and-bound then places sessions in chronological order: after a session on day *d*, the next
one either starts within the break rule on day *d* (a binary search bounds the candidates to
``max_break / step + 1`` starts) or opens a later day. Every component of the key only grows along
a branch, so a branch is cut as soon as its partial key exceeds the K-th best key found so far. The
number of days is deepened iteratively (1, 2, ..., ``max_days``), so when K one-day loops exist no
multi-day branch is explored at all. A state from which no completion exists (it depends only on
which sessions are placed, where the last one ends, its day and the days used) is remembered, so a
fruitless search is polynomial in the number of states; among schedules that tie on the first four
parts of the key, the tie-break is bounded too. Worst case (known limit): many sessions in free order
over several days with a very large number of tied schedules (e.g. 7 sessions of one person in free
order over 2 days: ~12 s); fixed or partly fixed orders, the common case, stay in milliseconds.

When nothing fits, :func:`find_loops` explains why, per session and per person or room, with changes
that were checked to help (a shorter session, dropping one person, another day, a longer break,
a free order).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from calendar_backend.availability import WorkingHours, working_windows
from calendar_backend.slots import (
    EPOCH,
    Interval,
    Spans,
    intersect_spans,
    require_aware,
    slots_in_spans,
    to_spans,
)

MAX_SESSIONS = 8
MAX_OPTIONS = 50
_MINUTE = timedelta(minutes=1)
_ALL_DAYS = frozenset(range(7))
_WIDER_BREAKS = (timedelta(minutes=30), timedelta(hours=1), timedelta(hours=2))


@dataclass(frozen=True, slots=True)
class LocalWindow:
    """A daily wall-clock window (``start < end``) in ``zone`` (``None``: the loop's zone).

    Raises:
        ValueError: ``start >= end`` or a time carries a tzinfo.
    """

    start: time
    end: time
    zone: ZoneInfo | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("local window times are naive wall-clock times")
        if self.start >= self.end:
            raise ValueError("a local window must start before it ends")


@dataclass(frozen=True, slots=True)
class Session:
    """One session of a loop. ``rooms`` is a preference list: any one of them will do.

    Raises:
        ValueError: the duration is not a positive whole number of minutes.
    """

    title: str
    duration: timedelta
    interviewers: tuple[str, ...] = ()
    rooms: tuple[str, ...] = ()
    window: LocalWindow | None = None

    def __post_init__(self) -> None:
        if self.duration <= timedelta(0) or self.duration % _MINUTE:
            raise ValueError("a session lasts a positive whole number of minutes")


@dataclass(frozen=True, slots=True)
class LoopSpec:
    """What to search for; see the module docstring for the rules.

    Raises:
        ValueError: no session or more than ``MAX_SESSIONS``, a bad break rule, step or day count,
            a ``before`` pair naming an unknown session, or naive instants.
    """

    sessions: tuple[Session, ...]
    zone: ZoneInfo
    window: Interval
    not_before: datetime
    step: timedelta = timedelta(minutes=15)
    min_break: timedelta = timedelta(0)
    max_break: timedelta = timedelta(minutes=15)
    fixed_order: bool = True
    before: frozenset[tuple[int, int]] = frozenset()
    max_days: int = 1
    candidate_zone: ZoneInfo | None = None
    candidate_day: LocalWindow = field(default_factory=lambda: LocalWindow(time(8), time(20)))

    def __post_init__(self) -> None:
        if not 1 <= len(self.sessions) <= MAX_SESSIONS:
            raise ValueError(f"a loop has 1 to {MAX_SESSIONS} sessions")
        if self.step <= timedelta(0) or self.step % _MINUTE:
            raise ValueError("step must be a positive whole number of minutes")
        if not timedelta(0) <= self.min_break <= self.max_break or self.max_break % _MINUTE:
            raise ValueError("breaks need 0 <= min_break <= max_break, whole minutes")
        if self.min_break % _MINUTE:
            raise ValueError("breaks are whole minutes")
        if self.max_days < 1:
            raise ValueError("max_days must be at least 1")
        count = len(self.sessions)
        if any(not (0 <= a < count and 0 <= b < count) or a == b for a, b in self.before):
            raise ValueError("before pairs name two different sessions by index")
        object.__setattr__(self, "not_before", require_aware(self.not_before, "not_before"))

    def precedence(self) -> frozenset[tuple[int, int]]:
        """Every ``(a, b)`` pair meaning "session a before session b" (fixed order included)."""
        chain = {(i, i + 1) for i in range(len(self.sessions) - 1)} if self.fixed_order else set()
        return frozenset(chain | set(self.before))


@dataclass(frozen=True, slots=True)
class Placement:
    """One session placed: its index in the spec, title, UTC span and room (``None``: no room)."""

    session: int
    title: str
    start: datetime
    end: datetime
    room: str | None


@dataclass(frozen=True, slots=True)
class LoopSchedule:
    """A feasible loop: placements in chronological order and the figures it is ranked by."""

    placements: tuple[Placement, ...]
    days: int
    idle: timedelta
    outside_candidate_day: timedelta

    @property
    def start(self) -> datetime:
        """When the first session starts."""
        return self.placements[0].start

    def key(self) -> tuple[int, timedelta, timedelta, datetime, tuple[datetime, ...]]:
        """The ordering key (smaller is better): days, idle, outside the candidate's day, first
        start, then the starts by session index."""
        by_index = tuple(p.start for p in sorted(self.placements, key=lambda p: p.session))
        return (self.days, self.idle, self.outside_candidate_day, self.start, by_index)


class Reason(StrEnum):
    """Why a loop has no schedule (per session unless ``NO_COMBINATION``)."""

    NO_ROOM_IN_WINDOW = "no_room_in_window"
    """The session does not fit the search window (after notice) and its local window at all."""
    NOT_FREE = "not_free"
    """This person (or every listed room) alone has no free span of the session's length."""
    NO_COMMON_TIME = "no_common_time"
    """Everyone is free alone, but never all together."""
    NO_ROOM = "no_room"
    """The people are free together, but no listed room is free then."""
    NO_COMBINATION = "no_combination"
    """Every session fits alone, but not all of them under the order, break and day rules."""


class Change(StrEnum):
    """A suggested change, checked to give at least one schedule (alone, for that session)."""

    SHORTEN = "shorten"
    DROP_PERSON = "drop_person"
    ADD_DAY = "add_day"
    LONGER_BREAK = "longer_break"
    FREE_ORDER = "free_order"


@dataclass(frozen=True, slots=True)
class Suggestion:
    """``kind`` and its value: minutes (shorten, longer break), a mailbox (drop) or a day count."""

    kind: Change
    value: str | int
    text: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """A privacy-safe reason: names and a session title, never a calendar item."""

    reason: Reason
    session: int | None
    mailboxes: tuple[str, ...]
    text: str
    suggestions: tuple[Suggestion, ...] = ()


@dataclass(frozen=True, slots=True)
class LoopResult:
    """Best-first schedules; when there is none, ``explanations`` says why."""

    schedules: tuple[LoopSchedule, ...]
    explanations: tuple[Explanation, ...] = ()


# ---- per-session options ----------------------------------------------------------------------


def _minutes(instant: datetime) -> int:
    return (instant - EPOCH) // _MINUTE


def _daily_spans(window: LocalWindow, zone: ZoneInfo, span: Interval) -> Spans:
    hours = WorkingHours(_ALL_DAYS, window.start, window.end, window.zone or zone)
    return to_spans(working_windows(hours, span))


def _spans_of(free: Mapping[str, Sequence[Interval]], mailbox: str) -> Spans:
    return to_spans(free.get(mailbox, ()))  # unknown mailbox: never free (fail closed)


def _base_spans(spec: LoopSpec, session: Session) -> Spans:
    base: Spans = ([spec.window.start], [spec.window.end])
    if session.window is not None:
        base = intersect_spans(base, _daily_spans(session.window, spec.zone, spec.window))
    return base


def _starts(spec: LoopSpec, spans: Spans, duration: timedelta, limit: int | None = None) -> list[datetime]:
    found = slots_in_spans(spans, duration=duration, step=spec.step, not_before=spec.not_before, limit=limit)
    return [slot.start for slot in found]


def _session_starts(
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
    spans = _base_spans(spec, session)
    for mailbox in session.interviewers if people is None else people:
        spans = intersect_spans(spans, _spans_of(free, mailbox))
    if not session.rooms:
        return dict.fromkeys(_starts(spec, spans, duration, limit))
    chosen: dict[datetime, str | None] = {}
    for room in session.rooms:
        for start in _starts(spec, intersect_spans(spans, _spans_of(free, room)), duration, limit):
            chosen.setdefault(start, room)
    return dict(sorted(chosen.items()))


@dataclass(slots=True)
class _Options:
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
    return total // _MINUTE


def _options(spec: LoopSpec, free: Mapping[str, Sequence[Interval]]) -> list[_Options]:
    candidate = _daily_spans(spec.candidate_day, spec.candidate_zone or spec.zone, spec.window)
    result = []
    for session in spec.sessions:
        chosen = _session_starts(spec, session, free)
        minutes = session.duration // _MINUTE
        opts = _Options([], [], [], [], minutes)
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


class _Search:
    def __init__(
        self, options: list[_Options], spec: LoopSpec, k: int, max_days: int, *, first_only: bool = False
    ) -> None:
        self.first_only = first_only
        self.options = options
        self.k = k
        self.max_days = max_days
        self.min_gap = spec.min_break // _MINUTE
        self.max_gap = spec.max_break // _MINUTE
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


def _schedules(spec: LoopSpec, options: list[_Options], k: int) -> tuple[LoopSchedule, ...]:
    found: list[tuple[_Key, tuple[int, ...]]] = []
    for days in range(1, min(spec.max_days, len(spec.sessions)) + 1):
        found = _Search(options, spec, k, days).run()
        if len(found) >= k:
            break
    schedules = []
    for (days, idle, outside, _first, _starts), chosen in found:
        placements = []
        for i, index in enumerate(chosen):
            start = EPOCH + options[i].starts[index] * _MINUTE
            session = spec.sessions[i]
            placements.append(
                Placement(i, session.title, start, start + session.duration, options[i].rooms[index])
            )
        placements.sort(key=lambda p: p.start)
        schedules.append(LoopSchedule(tuple(placements), days, idle * _MINUTE, outside * _MINUTE))
    return tuple(schedules)


def find_loops(
    spec: LoopSpec,
    free: Mapping[str, Sequence[Interval]],
    k: int = 5,
    *,
    names: Mapping[str, str] | None = None,
) -> LoopResult:
    """The best ``k`` schedules of ``spec`` (module docstring: rules and ordering), best first.

    ``free`` maps each mailbox (people and rooms) to its free intervals; a mailbox missing from it
    is never free. ``names`` gives display names for explanations (default: the mailbox).

    Raises:
        ValueError: ``k`` is not in 1..``MAX_OPTIONS``.
    """
    if not 1 <= k <= MAX_OPTIONS:
        raise ValueError(f"k must be 1 to {MAX_OPTIONS}")
    options = _options(spec, free)
    schedules = _schedules(spec, options, k) if all(o.starts for o in options) else ()
    if schedules:
        return LoopResult(schedules)
    return LoopResult((), explain(spec, free, names=names))


def has_loop(spec: LoopSpec, free: Mapping[str, Sequence[Interval]]) -> bool:
    """True when at least one schedule exists (stops at the first one found)."""
    options = _options(spec, free)
    if not all(o.starts for o in options):
        return False
    try:
        _Search(options, spec, 1, min(spec.max_days, len(spec.sessions)), first_only=True).run()
    except _FoundOneError:
        return True
    return False


# ---- explanations -----------------------------------------------------------------------------


def _join(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _when(spec: LoopSpec) -> str:
    first = spec.window.start.astimezone(spec.zone).date()
    last = (spec.window.end - timedelta(microseconds=1)).astimezone(spec.zone).date()
    if first == last:
        return f"on {first:%a %d %b}"
    if (last - first).days < 7:
        return f"on {first:%a}-{last:%a}"
    return f"from {first:%d %b} to {last:%d %b}"


def _fits(spec: LoopSpec, session: Session, free: Mapping[str, Sequence[Interval]], **kw: object) -> bool:
    return bool(_session_starts(spec, session, free, limit=1, **kw))  # type: ignore[arg-type]


def _shorter(spec: LoopSpec, session: Session, free: Mapping[str, Sequence[Interval]]) -> Suggestion | None:
    duration = session.duration - spec.step
    while duration > timedelta(0):
        if _fits(spec, session, free, duration=duration):
            minutes = duration // _MINUTE
            return Suggestion(Change.SHORTEN, minutes, f"shorten {session.title} to {minutes} minutes")
        duration -= spec.step
    return None


def _explain_session(
    spec: LoopSpec, index: int, free: Mapping[str, Sequence[Interval]], name: Mapping[str, str]
) -> Explanation:
    session = spec.sessions[index]
    minutes = session.duration // _MINUTE
    head = f"{session.title}: no {minutes} minutes"
    shorter = _shorter(spec, session, free)
    hints = (shorter,) if shorter else ()
    if not _starts(spec, _base_spans(spec, session), session.duration, limit=1):
        return Explanation(
            Reason.NO_ROOM_IN_WINDOW, index, (), f"{head} inside the search window {_when(spec)}", hints
        )
    alone = [
        m
        for m in session.interviewers
        if not _fits(spec, Session(session.title, session.duration, (m,), (), session.window), free)
    ]
    if alone:
        text = f"{head} where {_join([name.get(m, m) for m in alone])} "
        text += ("is" if len(alone) == 1 else "are each") + f" free {_when(spec)}"
        return Explanation(Reason.NOT_FREE, index, tuple(alone), text, hints)
    if session.rooms and not _fits(
        spec, Session(session.title, session.duration, (), session.rooms, session.window), free
    ):
        text = f"{head} where any of {_join([name.get(r, r) for r in session.rooms])} is free {_when(spec)}"
        return Explanation(Reason.NOT_FREE, index, session.rooms, text, hints)
    people = session.interviewers
    if _fits(spec, Session(session.title, session.duration, people, (), session.window), free):
        text = (
            f"{head} where {_join([name.get(r, r) for r in session.rooms])} "
            f"{'is' if len(session.rooms) == 1 else 'are'} free while "
            f"{_join([name.get(m, m) for m in people])} can meet {_when(spec)}"
        )
        return Explanation(Reason.NO_ROOM, index, session.rooms, text, hints)
    drops = tuple(
        Suggestion(Change.DROP_PERSON, m, f"drop {name.get(m, m)} from {session.title}")
        for m in people
        if _fits(spec, session, free, people=[p for p in people if p != m])
    )
    both = "both" if len(people) == 2 else "all"
    text = f"{head} where {_join([name.get(m, m) for m in people])} are {both} free {_when(spec)}"
    return Explanation(Reason.NO_COMMON_TIME, index, people, text, hints + drops)


def _relaxations(spec: LoopSpec, free: Mapping[str, Sequence[Interval]]) -> tuple[Suggestion, ...]:
    found = []
    if spec.max_days < len(spec.sessions):
        days = spec.max_days + 1
        if has_loop(_replace(spec, max_days=days), free):
            found.append(Suggestion(Change.ADD_DAY, days, f"allow the loop to span {days} days"))
    for wider in _WIDER_BREAKS:
        if wider > spec.max_break and has_loop(_replace(spec, max_break=wider), free):
            minutes = wider // _MINUTE
            found.append(Suggestion(Change.LONGER_BREAK, minutes, f"allow breaks of up to {minutes} minutes"))
            break
    if spec.precedence() and has_loop(_replace(spec, fixed_order=False, before=frozenset()), free):
        found.append(Suggestion(Change.FREE_ORDER, "free", "let the sessions run in any order"))
    return tuple(found)


def _replace(spec: LoopSpec, **changes: object) -> LoopSpec:
    return replace(spec, **changes)  # type: ignore[arg-type]


def explain(
    spec: LoopSpec, free: Mapping[str, Sequence[Interval]], *, names: Mapping[str, str] | None = None
) -> tuple[Explanation, ...]:
    """Why ``spec`` has no schedule: one explanation per session that cannot fit at all, or one
    ``NO_COMBINATION`` when each fits alone. Each suggestion was checked to help. ``()`` when a
    schedule exists."""
    name = names or {}
    stuck = [i for i, s in enumerate(spec.sessions) if not _fits(spec, s, free)]
    if stuck:
        return tuple(_explain_session(spec, i, free, name) for i in stuck)
    if has_loop(spec, free):
        return ()
    text = (
        f"each session fits alone {_when(spec)}, but not all {len(spec.sessions)} with "
        f"breaks of {spec.min_break // _MINUTE} to {spec.max_break // _MINUTE} minutes"
        f"{' in this order' if spec.precedence() else ''} on at most {spec.max_days} day(s)"
    )
    return (Explanation(Reason.NO_COMBINATION, None, (), text, _relaxations(spec, free)),)


__all__ = [
    "Change",
    "Explanation",
    "LocalWindow",
    "LoopResult",
    "LoopSchedule",
    "LoopSpec",
    "Placement",
    "Reason",
    "Session",
    "Suggestion",
    "explain",
    "find_loops",
    "has_loop",
]
