"""Interviewer pools and their load (issue 18; pure: no clock, I/O, env, logging).

A :class:`Pool` is a named set of interviewers (:class:`Member`) with a role or skill and default
caps; each member may override the weekly and daily caps and declares their mailbox zone, the first
day of their week and their preferred ("hot") interview hours. Trainees are in
:mod:`calendar_backend.pools_training`, selection in :mod:`calendar_backend.pools_selection`.

Load (:func:`count_load`): every interview OpenSlot booked for a person counts once for each of its
attendees, whatever pool or loop it came from, in the *attendee's* local week and local day:

- the interview counts at its start instant, converted to the member's mailbox zone (DST-aware:
  ``zoneinfo``); its local day is that date, its week the local date of the most recent
  ``week_start`` weekday on or before it (0 = Monday ... 6 = Sunday);
- ``cancelled`` and ``failed`` interviews never count; ``pending`` and ``confirmed`` do (a pending
  one holds its place until it is confirmed or withdrawn, so a cap is never raced past);
- a moved interview is given with its current (new) time, so it counts in its new week; holds of
  moves in flight are not bookings and are not passed in;
- an attendee who attends as a trainee (``Booked.trainees``) counts into their *training* load,
  never into their interviewer load (caps are counted separately);
- where the tenant opts in, :class:`OutsideEvent` (an Outlook event carrying an "Interview"
  category: only its times and owner, never its title) counts like an interview.

Invariants: every ``datetime`` is aware (``ValueError`` otherwise); addresses are compared
case-insensitively (they are stored lower-cased).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_CAP: Final = 100
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")
# No whitespace, control (C0, DEL, C1) or bidi/direction characters: an address is printed by
# `pool show`, drawn on cards and put into Graph requests.
_ADDR_CHAR: Final = r"[^@\s\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
_ADDRESS: Final = re.compile(rf"{_ADDR_CHAR}{{1,64}}@{_ADDR_CHAR}{{1,255}}")
_ALL_DAYS: Final = frozenset(range(7))


class BookedStatus(StrEnum):
    """The statuses of an interview row that matter to load (the storage's own values)."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    FAILED = "failed"


COUNTING: Final = frozenset({BookedStatus.PENDING, BookedStatus.CONFIRMED})


def normalize_address(address: str) -> str:
    """``address`` trimmed and lower-cased; ``ValueError`` unless it looks like ``local@domain``."""
    cleaned = address.strip().lower()
    if not _ADDRESS.fullmatch(cleaned):
        raise ValueError("not a mailbox address")
    return cleaned


def check_pool_name(name: str) -> str:
    """``name`` if it is a valid pool name (1-64 letters, digits, space, ``._-``), else ``ValueError``."""
    if not _NAME.fullmatch(name) or name != name.strip():
        raise ValueError("a pool name is 1-64 letters, digits, spaces, '.', '_' or '-'")
    return name


def check_cap(value: int | None, what: str) -> int | None:
    """``value`` if ``None`` or in ``0..MAX_CAP``, else ``ValueError``."""
    if value is not None and not 0 <= value <= MAX_CAP:
        raise ValueError(f"{what} must be between 0 and {MAX_CAP}")
    return value


def zone_of(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``ValueError`` if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a tzdata directory
        raise ValueError(f"unknown time zone {name!r}") from None


def require_aware(*values: datetime) -> None:
    """Raise ``ValueError`` if any value is a naive ``datetime``."""
    if any(v.tzinfo is None or v.utcoffset() is None for v in values):
        raise ValueError("naive datetime; use an aware datetime")


@dataclass(frozen=True, slots=True)
class HotWindow:
    """A declared preferred interview window, ``[start, end)`` wall-clock in the member's zone,
    on ``weekdays`` (0 = Monday). Declared by the member, never inferred from their events."""

    start: time
    end: time
    weekdays: frozenset[int] = _ALL_DAYS

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ValueError("a hot window starts before it ends")
        if not self.weekdays or not self.weekdays <= _ALL_DAYS:
            raise ValueError("hot window weekdays are 0 (Monday) to 6 (Sunday)")

    def to_json(self) -> dict[str, object]:
        """``{"start": "HH:MM", "end": "HH:MM", "weekdays": [..]}`` (the stored form)."""
        return {
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
            "weekdays": sorted(self.weekdays),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> HotWindow:
        """The inverse of :meth:`to_json`; ``ValueError`` on a malformed document."""
        days = doc.get("weekdays", sorted(_ALL_DAYS))
        if not isinstance(days, list) or not all(isinstance(d, int) for d in days):
            raise ValueError("hot window weekdays must be a list of integers")
        return cls(
            time.fromisoformat(str(doc["start"])), time.fromisoformat(str(doc["end"])), frozenset(days)
        )


def parse_hot_window(text: str) -> HotWindow:
    """``"HH:MM-HH:MM"`` or ``"HH:MM-HH:MM@0,1,2"`` (weekdays, 0 = Monday) → :class:`HotWindow`."""
    span, _, days = text.strip().partition("@")
    start, sep, end = span.partition("-")
    if not sep:
        raise ValueError("a hot window is HH:MM-HH:MM[@weekdays]")
    weekdays = frozenset(int(d) for d in days.split(",")) if days else _ALL_DAYS
    return HotWindow(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()), weekdays)


@dataclass(frozen=True, slots=True)
class Member:
    """A pool member. ``None`` caps mean the pool's defaults. ``week_start``: 0 = Monday."""

    address: str
    zone: str = "UTC"
    week_start: int = 0
    weekly_cap: int | None = None
    daily_cap: int | None = None
    hot_hours: tuple[HotWindow, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", normalize_address(self.address))
        zone_of(self.zone)
        if not 0 <= self.week_start <= 6:
            raise ValueError("week_start is 0 (Monday) to 6 (Sunday)")
        check_cap(self.weekly_cap, "weekly cap")
        check_cap(self.daily_cap, "daily cap")

    def is_hot(self, start: datetime, end: datetime) -> bool:
        """Whether ``[start, end)`` lies inside one of the member's hot windows (their local time)."""
        require_aware(start, end)
        tz = zone_of(self.zone)
        local_start, local_end = start.astimezone(tz), end.astimezone(tz)
        if local_start.date() != (local_end - timedelta(microseconds=1)).date():
            return False
        return any(
            local_start.weekday() in w.weekdays
            and w.start <= local_start.time()
            and (local_end.time() <= w.end or (w.end == time.max and local_end.time() == time(0)))
            for w in self.hot_hours
        )


@dataclass(frozen=True, slots=True)
class Pool:
    """A named set of interviewers with a role/skill and default weekly and daily caps."""

    name: str
    role: str = ""
    default_weekly_cap: int = 5
    default_daily_cap: int = 2
    members: tuple[Member, ...] = ()

    def __post_init__(self) -> None:
        check_pool_name(self.name)
        check_cap(self.default_weekly_cap, "default weekly cap")
        check_cap(self.default_daily_cap, "default daily cap")
        addresses = [m.address for m in self.members]
        if len(set(addresses)) != len(addresses):
            raise ValueError("a member appears twice in a pool")

    def weekly_cap(self, member: Member) -> int:
        """The member's weekly cap (their own, else the pool's default)."""
        return self.default_weekly_cap if member.weekly_cap is None else member.weekly_cap

    def daily_cap(self, member: Member) -> int:
        """The member's daily cap (their own, else the pool's default)."""
        return self.default_daily_cap if member.daily_cap is None else member.daily_cap

    def member(self, address: str) -> Member | None:
        """The member with this address, or ``None``."""
        wanted = address.strip().lower()
        return next((m for m in self.members if m.address == wanted), None)


@dataclass(frozen=True, slots=True)
class Booked:
    """An interview OpenSlot booked: ``[start, end)``, its attendees (mailboxes) and status.

    ``trainees`` are attendees who attend as trainees (shadow / reverse-shadow)."""

    start: datetime
    end: datetime
    attendees: frozenset[str]
    status: BookedStatus = BookedStatus.CONFIRMED
    trainees: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        require_aware(self.start, self.end)
        if self.start >= self.end:
            raise ValueError("start must be before end")
        object.__setattr__(self, "attendees", frozenset(a.strip().lower() for a in self.attendees))
        object.__setattr__(self, "trainees", frozenset(a.strip().lower() for a in self.trainees))
        object.__setattr__(self, "status", BookedStatus(self.status))


@dataclass(frozen=True, slots=True)
class OutsideEvent:
    """An Outlook event of ``owner`` carrying the "Interview" category (times only, no title)."""

    owner: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        require_aware(self.start, self.end)
        object.__setattr__(self, "owner", self.owner.strip().lower())


def local_day(instant: datetime, zone: str) -> date:
    """The local date of ``instant`` in ``zone`` (DST-aware)."""
    require_aware(instant)
    return instant.astimezone(zone_of(zone)).date()


def local_week(instant: datetime, zone: str, week_start: int) -> date:
    """The first local date of the week (starting on ``week_start``, 0 = Monday) holding ``instant``."""
    day = local_day(instant, zone)
    return day - timedelta(days=(day.weekday() - week_start) % 7)


def _local_midnight_utc(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone_of(zone)).astimezone(UTC)


def day_bounds(instant: datetime, zone: str) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC of the local day holding ``instant`` (23 or 25 hours across DST)."""
    day = local_day(instant, zone)
    return _local_midnight_utc(day, zone), _local_midnight_utc(day + timedelta(days=1), zone)


def week_bounds(instant: datetime, zone: str, week_start: int) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC of the local week holding ``instant`` (local midnights, DST-aware)."""
    week = local_week(instant, zone, week_start)
    return _local_midnight_utc(week, zone), _local_midnight_utc(week + timedelta(days=7), zone)


@dataclass(frozen=True, slots=True)
class MemberLoad:
    """One person's counted sessions (start instants, sorted) in their own zone and week.

    ``weeks`` / ``days`` map a local week's first date / a local date to the number of sessions."""

    address: str
    zone: str
    week_start: int
    starts: tuple[datetime, ...] = ()
    weeks: Mapping[date, int] = field(default_factory=dict)
    days: Mapping[date, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "starts", tuple(sorted(self.starts)))

    def week_count(self, instant: datetime) -> int:
        """Sessions in the member's local week holding ``instant``."""
        return self.weeks.get(local_week(instant, self.zone, self.week_start), 0)

    def day_count(self, instant: datetime) -> int:
        """Sessions on the member's local day holding ``instant``."""
        return self.days.get(local_day(instant, self.zone), 0)

    def window_count(self, start: datetime, end: datetime) -> int:
        """Sessions starting in ``[start, end)`` (the rolling window)."""
        require_aware(start, end)
        return max(0, bisect_left(self.starts, end) - bisect_left(self.starts, start))

    def plus(self, instant: datetime) -> MemberLoad:
        """This load with one more session starting at ``instant``."""
        week = local_week(instant, self.zone, self.week_start)
        day = local_day(instant, self.zone)
        return MemberLoad(
            self.address,
            self.zone,
            self.week_start,
            tuple(sorted((*self.starts, instant))),
            {**self.weeks, week: self.weeks.get(week, 0) + 1},
            {**self.days, day: self.days.get(day, 0) + 1},
        )


def load_of(address: str, zone: str, week_start: int, starts: Iterable[datetime]) -> MemberLoad:
    """The :class:`MemberLoad` of sessions starting at ``starts`` for one person."""
    ordered = tuple(sorted(starts))
    weeks: dict[date, int] = {}
    days: dict[date, int] = {}
    for s in ordered:
        week, day = local_week(s, zone, week_start), local_day(s, zone)
        weeks[week] = weeks.get(week, 0) + 1
        days[day] = days.get(day, 0) + 1
    return MemberLoad(address.strip().lower(), zone, week_start, ordered, weeks, days)


def count_load(
    people: Iterable[Member],
    booked: Iterable[Booked],
    outside: Iterable[OutsideEvent] = (),
    *,
    training: bool = False,
) -> dict[str, MemberLoad]:
    """Each person's load, keyed by address (see the module docstring for what counts).

    With ``training=True`` it is the training load instead: only sessions they attend as trainees
    (outside events never count there)."""
    wanted = {p.address: p for p in people}
    starts: dict[str, list[datetime]] = {a: [] for a in wanted}
    for b in booked:
        if b.status not in COUNTING:
            continue
        who = b.trainees if training else b.attendees - b.trainees
        for address in who & wanted.keys():
            starts[address].append(b.start)
    if not training:
        for e in outside:
            if e.owner in starts:
                starts[e.owner].append(e.start)
    return {a: load_of(a, p.zone, p.week_start, starts[a]) for a, p in wanted.items()}
