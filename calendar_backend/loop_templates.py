"""Loop templates: a saved, typed interview loop per role (pure: no clock, I/O, env, logging).

A template ("Backend engineer onsite") lists its sessions (title, length in minutes, the fixed
interviewers, optionally a room: any of a list of room mailboxes, or a need such as "capacity 6 in
building 2"), whether the order is fixed or free, the break rule between sessions (minutes, e.g.
0-15; a lunch is a session with a local ``window`` such as 11:30-13:30), how many days the loop may
span, and the candidate's day (default 08:00-20:00 in the candidate's zone). In a free order a
session may be pinned ``"position": "first"`` or ``"last"`` (e.g. the intro, the wrap-up).

JSON shape (``to_json`` writes exactly this; ``parse_template`` reads it, all fields but ``name``
and ``sessions`` optional, unknown fields refused)::

    {"name": "Backend engineer onsite", "role": "Backend engineer", "order": "fixed",
     "breaks": {"min_minutes": 0, "max_minutes": 15}, "max_days": 1,
     "candidate_day": {"start": "08:00", "end": "20:00"},
     "sessions": [
       {"title": "Intro", "minutes": 30, "interviewers": ["megan@contoso.example"]},
       {"title": "System design", "minutes": 60, "interviewers": ["a@x", "b@x"],
        "room": {"any_of": ["room1@x", "room2@x"]}},
       {"title": "Lunch", "minutes": 45, "window": {"start": "11:30", "end": "13:30"}},
       {"title": "Values", "minutes": 45, "interviewers": ["c@x"],
        "room": {"min_capacity": 4, "building": "Building 2"}},
       {"title": "Coding", "minutes": 60, "pool": {"name": "Backend", "count": 2}}]}

A session's panel may be drawn from an interviewer pool (issue 18): ``"pool": {"name", "count"}``
asks for ``count`` members of the tenant's pool ``name`` on top of its fixed interviewers (the
search picks them: `calendar_backend.loop_pools`; an unknown pool is a problem at search time).

Errors are user-facing and precise: :class:`LoopTemplateError` carries every :class:`Problem`
found, each with the path of the field (``sessions[2].minutes``) and a sentence naming the session
by number and title. :func:`to_loop_spec` turns a template into the loop engine's
:class:`~calendar_backend.loops.LoopSpec` once the search window, zones and the tenant's rooms
are known.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

from calendar_backend.loops import MAX_SESSIONS, LocalWindow, LoopSpec, Session
from calendar_backend.slots import Interval

__all__ = [
    "MAX_DAYS",
    "MAX_INTERVIEWERS",
    "LoopTemplate",
    "LoopTemplateError",
    "Order",
    "PoolNeed",
    "Position",
    "Problem",
    "RoomInfo",
    "RoomNeed",
    "SessionTemplate",
    "mailboxes",
    "parse_template",
    "resolve_rooms",
    "to_json",
    "to_loop_spec",
]

MIN_MINUTES: Final = 5
MAX_MINUTES: Final = 480
MAX_BREAK: Final = 240
MAX_DAYS: Final = 5
MAX_INTERVIEWERS: Final = 10
MAX_ROOMS: Final = 20
MAX_TEXT: Final = 80
_POOL_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")  # as `pools.check_pool_name`
_CLOCK: Final = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_ADDRESS: Final = re.compile(r"[^@\s<>\"'\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z0-9-]{2,63}")
_TEXT: Final = re.compile(r"[^\x00-\x1f\x7f-\x9f<>\u2028\u2029]+")
_DEFAULT_DAY: Final = LocalWindow(time(8), time(20))


class Order(StrEnum):
    """Whether the sessions run in the listed order or in any order the search finds best."""

    FIXED = "fixed"
    FREE = "free"


class Position(StrEnum):
    """In a free order, a session pinned to come before (``first``) or after (``last``) all others."""

    FIRST = "first"
    LAST = "last"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a template: ``path`` names the field, ``message`` is for the user."""

    path: str
    message: str


class LoopTemplateError(ValueError):
    """A template that cannot be used; ``problems`` lists every reason, in document order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(p.message for p in self.problems))


@dataclass(frozen=True, slots=True)
class RoomNeed:
    """A session's room: any of ``any_of`` (a preference list), or any room with at least
    ``min_capacity`` seats in ``building`` (either may be ``None``; not both with ``any_of``)."""

    any_of: tuple[str, ...] = ()
    min_capacity: int | None = None
    building: str | None = None


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """A room of the tenant's directory, as far as a room need asks about it."""

    address: str
    capacity: int | None = None
    building: str | None = None


@dataclass(frozen=True, slots=True)
class PoolNeed:
    """``count`` interviewers drawn from the tenant's pool ``name`` (issue 18)."""

    name: str
    count: int


@dataclass(frozen=True, slots=True)
class SessionTemplate:
    """One session: ``window`` is a local wall-clock window (the loop's zone), e.g. lunch;
    ``position`` pins it first or last when the loop's order is free."""

    title: str
    minutes: int
    interviewers: tuple[str, ...] = ()
    room: RoomNeed | None = None
    window: LocalWindow | None = None
    position: Position | None = None
    pool: PoolNeed | None = None


@dataclass(frozen=True, slots=True)
class LoopTemplate:
    """A loop template; build it with :func:`parse_template` (which checks every rule)."""

    name: str
    sessions: tuple[SessionTemplate, ...]
    role: str | None = None
    order: Order = Order.FIXED
    min_break: int = 0
    max_break: int = 15
    max_days: int = 1
    candidate_day: LocalWindow = _DEFAULT_DAY


# ---- parsing ------------------------------------------------------------------------------------

_TOP_FIELDS: Final = frozenset({"name", "role", "order", "breaks", "max_days", "candidate_day", "sessions"})
_SESSION_FIELDS: Final = frozenset({"title", "minutes", "interviewers", "room", "window", "position", "pool"})
_ROOM_FIELDS: Final = frozenset({"any_of", "min_capacity", "building"})


class _Reader:
    """Collects problems while reading; ``where`` prefixes messages with the session's name."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, where: str, message: str) -> None:
        self.problems.append(Problem(path, f"{where}: {message}" if where else message))

    def fields(self, raw: Mapping[str, object], allowed: frozenset[str], path: str, where: str) -> None:
        for key in sorted(set(raw) - allowed, key=str):
            self.fail(f"{path}{key}", where, f"unknown field {key!r} (allowed: {', '.join(sorted(allowed))})")

    def text(self, raw: object, path: str, where: str, what: str) -> str | None:
        if not isinstance(raw, str) or not raw.strip():
            self.fail(path, where, f"{what} must be a non-empty text")
            return None
        value = " ".join(raw.split())
        if len(value) > MAX_TEXT or _TEXT.fullmatch(value) is None:
            self.fail(path, where, f"{what} must be at most {MAX_TEXT} characters, without < or >")
            return None
        return value

    def number(self, raw: object, path: str, where: str, what: str, low: int, high: int) -> int | None:
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
            self.fail(path, where, f"{what} must be a whole number from {low} to {high} (got {raw!r})")
            return None
        return raw

    def clock(self, raw: object, path: str, where: str) -> time | None:
        match = _CLOCK.fullmatch(raw) if isinstance(raw, str) else None
        if match is None:
            self.fail(path, where, f"{path.rsplit('.', 1)[-1]} must be a time HH:MM (got {raw!r})")
            return None
        return time(int(match.group(1)), int(match.group(2)))

    def window(self, raw: object, path: str, where: str, what: str) -> LocalWindow | None:
        if not isinstance(raw, Mapping):
            self.fail(path, where, f"{what} must be an object with start and end (HH:MM)")
            return None
        self.fields(raw, frozenset({"start", "end"}), f"{path}.", where)
        start = self.clock(raw.get("start"), f"{path}.start", where)
        end = self.clock(raw.get("end"), f"{path}.end", where)
        if start is None or end is None:
            return None
        if start >= end:
            self.fail(path, where, f"{what} must start before it ends ({start:%H:%M}-{end:%H:%M})")
            return None
        return LocalWindow(start, end)

    def addresses(self, raw: object, path: str, where: str, what: str, limit: int) -> tuple[str, ...]:
        if not isinstance(raw, list):
            self.fail(path, where, f"{what} must be a list of email addresses")
            return ()
        if len(raw) > limit:
            self.fail(path, where, f"at most {limit} {what} (got {len(raw)})")
            return ()
        found: list[str] = []
        for index, item in enumerate(raw):
            if not isinstance(item, str) or _ADDRESS.fullmatch(item.strip()) is None:
                self.fail(f"{path}[{index}]", where, f"{item!r} is not an email address")
                continue
            address = item.strip().lower()
            if address in found:
                self.fail(f"{path}[{index}]", where, f"{address} is listed twice")
                continue
            found.append(address)
        return tuple(found)


def _where(index: int, raw: Mapping[str, object]) -> str:
    title = raw.get("title")
    named = f' "{" ".join(title.split())[:MAX_TEXT]}"' if isinstance(title, str) and title.strip() else ""
    return f"Session {index + 1}{named}"


def _room(reader: _Reader, raw: object, path: str, where: str) -> RoomNeed | None:
    if not isinstance(raw, Mapping):
        reader.fail(path, where, "room must be an object: any_of (a list), or min_capacity and/or building")
        return None
    reader.fields(raw, _ROOM_FIELDS, f"{path}.", where)
    any_of = (
        reader.addresses(raw["any_of"], f"{path}.any_of", where, "rooms", MAX_ROOMS)
        if "any_of" in raw
        else ()
    )
    capacity = None
    if "min_capacity" in raw:
        capacity = reader.number(raw["min_capacity"], f"{path}.min_capacity", where, "min_capacity", 1, 500)
    building = (
        reader.text(raw["building"], f"{path}.building", where, "building") if "building" in raw else None
    )
    if "any_of" in raw and ("min_capacity" in raw or "building" in raw):
        reader.fail(path, where, "room takes either any_of or a need (min_capacity, building), not both")
        return None
    if "any_of" in raw and not any_of and isinstance(raw["any_of"], list) and not raw["any_of"]:
        reader.fail(f"{path}.any_of", where, "any_of must list at least one room")
        return None
    if not raw:
        reader.fail(path, where, "room needs any_of, min_capacity or building")
        return None
    return RoomNeed(any_of, capacity, building)


def _pool(reader: _Reader, raw: object, path: str, where: str, fixed: int) -> PoolNeed | None:
    if not isinstance(raw, Mapping):
        reader.fail(path, where, "pool must be an object with name and count")
        return None
    reader.fields(raw, frozenset({"name", "count"}), f"{path}.", where)
    name = raw.get("name")
    if not isinstance(name, str) or _POOL_NAME.fullmatch(name) is None:
        reader.fail(
            f"{path}.name",
            where,
            f"pool name must be 1-64 letters, digits, spaces, '.', '_' or '-' (got {name!r})",
        )
        name = None
    count = reader.number(raw.get("count"), f"{path}.count", where, "pool count", 1, MAX_INTERVIEWERS)
    if count is not None and fixed + count > MAX_INTERVIEWERS:
        reader.fail(
            f"{path}.count",
            where,
            f"at most {MAX_INTERVIEWERS} interviewers with the pool's (got {fixed + count})",
        )
        return None
    return PoolNeed(name, count) if name is not None and count is not None else None


def _session(reader: _Reader, index: int, raw: object) -> SessionTemplate | None:
    path = f"sessions[{index}]"
    if not isinstance(raw, Mapping):
        reader.fail(path, f"Session {index + 1}", "must be an object with title, minutes and interviewers")
        return None
    where = _where(index, raw)
    count = len(reader.problems)
    reader.fields(raw, _SESSION_FIELDS, f"{path}.", where)
    title = reader.text(raw.get("title"), f"{path}.title", where, "title")
    minutes = reader.number(raw.get("minutes"), f"{path}.minutes", where, "minutes", MIN_MINUTES, MAX_MINUTES)
    people = raw.get("interviewers", [])
    interviewers = reader.addresses(people, f"{path}.interviewers", where, "interviewers", MAX_INTERVIEWERS)
    room = _room(reader, raw["room"], f"{path}.room", where) if "room" in raw else None
    pool = _pool(reader, raw["pool"], f"{path}.pool", where, len(interviewers)) if "pool" in raw else None
    window = reader.window(raw["window"], f"{path}.window", where, "window") if "window" in raw else None
    if window is not None and minutes is not None and _length(window) < timedelta(minutes=minutes):
        span = f"{window.start:%H:%M}-{window.end:%H:%M}"
        reader.fail(f"{path}.window", where, f"{minutes} minutes do not fit in the window {span}")
    position = raw.get("position")
    if position is not None and (
        not isinstance(position, str) or position not in {p.value for p in Position}
    ):
        reader.fail(f"{path}.position", where, f'position must be "first" or "last" (got {position!r})')
    if len(reader.problems) > count or title is None or minutes is None:
        return None
    return SessionTemplate(
        title, minutes, interviewers, room, window, Position(position) if position else None, pool
    )


def _length(window: LocalWindow) -> timedelta:
    start = timedelta(hours=window.start.hour, minutes=window.start.minute)
    return timedelta(hours=window.end.hour, minutes=window.end.minute) - start


def _sessions(reader: _Reader, raw: object) -> tuple[SessionTemplate, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_SESSIONS:
        reader.fail("sessions", "", f"sessions must be a list of 1 to {MAX_SESSIONS} sessions")
        return ()
    sessions = [_session(reader, i, item) for i, item in enumerate(raw)]
    seen: dict[str, int] = {}
    for index, session in enumerate(sessions):
        if session is None:
            continue
        key = session.title.casefold()
        if key in seen:
            reader.fail(
                f"sessions[{index}].title",
                _where(index, {"title": session.title}),
                f"the title is already used by session {seen[key] + 1}",
            )
        seen.setdefault(key, index)
    return tuple(s for s in sessions if s is not None)


def _positions(reader: _Reader, order: object, sessions: Sequence[SessionTemplate]) -> None:
    """A position needs a free order; at most one session comes first and one last."""
    pinned: dict[Position, int] = {}
    for index, session in enumerate(sessions):
        if session.position is None:
            continue
        path, where = f"sessions[{index}].position", _where(index, {"title": session.title})
        if order != Order.FREE.value:
            reader.fail(path, where, 'position only applies when the order is "free"')
        elif session.position in pinned:
            other = pinned[session.position] + 1
            reader.fail(path, where, f"session {other} already comes {session.position.value}")
        pinned.setdefault(session.position, index)


def _breaks(reader: _Reader, raw: object) -> tuple[int, int]:
    if not isinstance(raw, Mapping):
        reader.fail("breaks", "", "breaks must be an object with min_minutes and max_minutes")
        return 0, 15
    reader.fields(raw, frozenset({"min_minutes", "max_minutes"}), "breaks.", "")
    low = reader.number(
        raw.get("min_minutes", 0), "breaks.min_minutes", "", "breaks.min_minutes", 0, MAX_BREAK
    )
    high = reader.number(
        raw.get("max_minutes", 15), "breaks.max_minutes", "", "breaks.max_minutes", 0, MAX_BREAK
    )
    if low is not None and high is not None and low > high:
        reader.fail("breaks", "", f"the shortest break ({low} min) is longer than the longest ({high} min)")
    return low or 0, high if high is not None else 15


def parse_template(raw: object) -> LoopTemplate:
    """Read a template from its JSON value (module docstring), checking every rule.

    Raises:
        LoopTemplateError: with every problem found (never a partial template).
    """
    reader = _Reader()
    if not isinstance(raw, Mapping):
        raise LoopTemplateError([Problem("", "a loop template must be a JSON object")])
    reader.fields(raw, _TOP_FIELDS, "", "")
    name = reader.text(raw.get("name"), "name", "", "name")
    role = reader.text(raw["role"], "role", "", "role") if raw.get("role") is not None else None
    order_raw = raw.get("order", Order.FIXED.value)
    if not isinstance(order_raw, str) or order_raw not in {o.value for o in Order}:
        reader.fail("order", "", f'order must be "fixed" or "free" (got {order_raw!r})')
    min_break, max_break = _breaks(reader, raw["breaks"]) if "breaks" in raw else (0, 15)
    max_days = reader.number(raw.get("max_days", 1), "max_days", "", "max_days", 1, MAX_DAYS)
    day = _DEFAULT_DAY
    if "candidate_day" in raw:
        day = reader.window(raw["candidate_day"], "candidate_day", "", "candidate_day") or _DEFAULT_DAY
    sessions = _sessions(reader, raw.get("sessions"))
    _positions(reader, order_raw, sessions)
    if reader.problems or name is None or max_days is None:
        raise LoopTemplateError(reader.problems)
    return LoopTemplate(name, sessions, role, Order(str(order_raw)), min_break, max_break, max_days, day)


def _window_json(window: LocalWindow) -> dict[str, str]:
    return {"start": f"{window.start:%H:%M}", "end": f"{window.end:%H:%M}"}


def to_json(template: LoopTemplate) -> dict[str, object]:
    """The template's JSON value; ``parse_template(to_json(t)) == t`` for every parsed ``t``."""
    sessions: list[dict[str, object]] = []
    for session in template.sessions:
        item: dict[str, object] = {
            "title": session.title,
            "minutes": session.minutes,
            "interviewers": list(session.interviewers),
        }
        if session.room is not None:
            room: dict[str, object] = {}
            if session.room.any_of:
                room["any_of"] = list(session.room.any_of)
            if session.room.min_capacity is not None:
                room["min_capacity"] = session.room.min_capacity
            if session.room.building is not None:
                room["building"] = session.room.building
            item["room"] = room
        if session.window is not None:
            item["window"] = _window_json(session.window)
        if session.position is not None:
            item["position"] = session.position.value
        if session.pool is not None:
            item["pool"] = {"name": session.pool.name, "count": session.pool.count}
        sessions.append(item)
    value: dict[str, object] = {"name": template.name}
    if template.role is not None:
        value["role"] = template.role
    value |= {
        "order": template.order.value,
        "breaks": {"min_minutes": template.min_break, "max_minutes": template.max_break},
        "max_days": template.max_days,
        "candidate_day": _window_json(template.candidate_day),
        "sessions": sessions,
    }
    return value


# ---- into the loop engine -------------------------------------------------------------------------


def mailboxes(template: LoopTemplate, rooms: Sequence[RoomInfo] = ()) -> tuple[str, ...]:
    """Every mailbox the search must read (people first, then rooms), each once, in order."""
    people = (m for s in template.sessions for m in s.interviewers)
    found = [*people, *(r for s in template.sessions for r in _room_list(s, rooms))]
    return tuple(dict.fromkeys(found))


def _room_list(session: SessionTemplate, rooms: Sequence[RoomInfo]) -> tuple[str, ...]:
    need = session.room
    if need is None:
        return ()
    if need.any_of:
        return need.any_of
    building = need.building.casefold() if need.building else None
    fitting = [
        r
        for r in rooms
        if (need.min_capacity is None or (r.capacity or 0) >= need.min_capacity)
        and (building is None or (r.building or "").casefold() == building)
    ]
    fitting.sort(key=lambda r: (r.capacity or 0, r.address))  # the smallest room that fits first
    return tuple(r.address.lower() for r in fitting)


def resolve_rooms(template: LoopTemplate, rooms: Sequence[RoomInfo]) -> tuple[tuple[str, ...], ...]:
    """Each session's room preference list (``()``: no room), the smallest fitting room first.

    Raises:
        LoopTemplateError: a session's room need matches no room of the directory.
    """
    problems = []
    lists = []
    for index, session in enumerate(template.sessions):
        found = _room_list(session, rooms)
        if session.room is not None and not found:
            need = session.room
            parts = [f"{need.min_capacity}+ seats" if need.min_capacity else "", need.building or ""]
            wanted = " in ".join(p for p in parts if p) or "this need"
            problems.append(
                Problem(
                    f"sessions[{index}].room",
                    f'Session {index + 1} "{session.title}": no room has {wanted}'
                    if need.min_capacity
                    else f'Session {index + 1} "{session.title}": no room in {wanted}',
                )
            )
        lists.append(found)
    if problems:
        raise LoopTemplateError(problems)
    return tuple(lists)


def _before(template: LoopTemplate) -> frozenset[tuple[int, int]]:
    """The engine's ``before`` pairs for pinned sessions (a first one before every other, every
    other before a last one)."""
    pairs: set[tuple[int, int]] = set()
    for index, session in enumerate(template.sessions):
        others = (i for i in range(len(template.sessions)) if i != index)
        if session.position is Position.FIRST:
            pairs.update((index, other) for other in others)
        elif session.position is Position.LAST:
            pairs.update((other, index) for other in others)
    return frozenset(pairs)


def to_loop_spec(
    template: LoopTemplate,
    *,
    zone: ZoneInfo,
    window: Interval,
    not_before: datetime,
    candidate_zone: ZoneInfo | None = None,
    rooms: Sequence[RoomInfo] = (),
    step: timedelta = timedelta(minutes=15),
) -> LoopSpec:
    """The loop engine's input for ``template`` searched in ``window`` (UTC), after ``not_before``.

    ``zone`` is the loop's zone (days and session windows such as lunch are local to it: the
    hiring manager's or the office's); the candidate's day is local to ``candidate_zone``.
    ``rooms`` is the directory a capacity/building need is resolved against.

    Raises:
        LoopTemplateError: a room need matches no room.
        ValueError: the engine refuses the window or ``not_before`` (naive instants).
    """
    room_lists = resolve_rooms(template, rooms)
    sessions = tuple(
        Session(s.title, timedelta(minutes=s.minutes), s.interviewers, room_list, s.window)
        for s, room_list in zip(template.sessions, room_lists, strict=True)
    )
    return LoopSpec(
        sessions=sessions,
        zone=zone,
        window=window,
        not_before=not_before,
        step=step,
        min_break=timedelta(minutes=template.min_break),
        max_break=timedelta(minutes=template.max_break),
        fixed_order=template.order is Order.FIXED,
        before=_before(template),
        max_days=template.max_days,
        candidate_zone=candidate_zone,
        candidate_day=template.candidate_day,
    )
