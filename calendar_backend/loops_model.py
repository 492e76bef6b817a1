"""Interview loops: the data model of the loop engine (pure: no clock, I/O, env, logging).

The rules these types stand for (what fits, the day and break rules, the ordering of schedules)
are documented in :mod:`calendar_backend.loops`, which re-exports every public name here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from calendar_backend.slots import Interval, require_aware

MAX_SESSIONS = 8
MAX_OPTIONS = 50
MINUTE = timedelta(minutes=1)
"""The engine's unit: durations, breaks and steps are whole minutes."""


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
        if self.duration <= timedelta(0) or self.duration % MINUTE:
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
        if self.step <= timedelta(0) or self.step % MINUTE:
            raise ValueError("step must be a positive whole number of minutes")
        if not timedelta(0) <= self.min_break <= self.max_break or self.max_break % MINUTE:
            raise ValueError("breaks need 0 <= min_break <= max_break, whole minutes")
        if self.min_break % MINUTE:
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
    LONGER_WINDOW = "longer_window"
    """Search more days: only offered when the caller read a wider ``horizon`` (value: days)."""


@dataclass(frozen=True, slots=True)
class Suggestion:
    """``kind`` and its value: minutes (shorten, longer break), a mailbox (drop) or a day count
    (another day: the days the loop may span; longer window: the days added to the search)."""

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
