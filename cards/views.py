"""Input view models for the card builders.

These are the only types the builders accept. They are deliberately independent of
``calendar_backend.contract`` so that ``cards`` stays a pure, stdlib-only package: the dialog
layer maps contract objects onto these views.

Invariants (checked in ``__post_init__``, violations raise ``ValueError``):
- every ``datetime`` is timezone-aware and is normalised to UTC;
- every interval is half-open ``[start, end)`` with ``start < end``;
- display names are non-empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

__all__ = [
    "BlockReason",
    "Blocker",
    "ConfirmationView",
    "InterviewView",
    "LinkOptionsView",
    "OfferView",
    "Person",
    "SlotPickerView",
    "SlotView",
    "ZonePair",
    "to_utc",
]


def to_utc(value: datetime, field: str) -> datetime:
    """Return ``value`` converted to UTC.

    Raises:
        ValueError: if ``value`` is naive (no tzinfo or no UTC offset).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be timezone-aware")
    return value.astimezone(UTC)


def _check_interval(start: datetime, end: datetime) -> None:
    if start >= end:
        raise ValueError("start must be before end")


@dataclass(frozen=True, slots=True)
class ZonePair:
    """The two zones every time on a card is shown in: the hiring manager's and the candidate's."""

    manager: ZoneInfo
    candidate: ZoneInfo


@dataclass(frozen=True, slots=True)
class Person:
    """Someone (or a room) shown on a card; ``address`` is an SMTP address, not shown."""

    display_name: str
    address: str
    is_room: bool = False

    def __post_init__(self) -> None:
        if not self.display_name.strip():
            raise ValueError("display_name must not be empty")


@dataclass(frozen=True, slots=True)
class SlotView:
    """One open slot ``[start_utc, end_utc)``; ``slot_id`` is opaque to the card.

    ``outside_candidate_day`` marks a slot outside the candidate's working day.
    """

    slot_id: str
    start_utc: datetime
    end_utc: datetime
    outside_candidate_day: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_utc", to_utc(self.start_utc, "start_utc"))
        object.__setattr__(self, "end_utc", to_utc(self.end_utc, "end_utc"))
        _check_interval(self.start_utc, self.end_utc)


class BlockReason(StrEnum):
    """Why a person contributes no free time (mirrors the Calendar Service blocker reasons)."""

    NO_WORKING_HOURS = "no_working_hours"
    NOT_WORKING_DAYS = "not_working_days"
    FULLY_BUSY = "fully_busy"
    NO_COMMON_TIME = "no_common_time"
    UNREADABLE = "unreadable"
    NOT_ALLOWED = "not_allowed"

    @property
    def is_unreadable(self) -> bool:
        """True when the calendar could not be read at all (as opposed to being busy)."""
        return self in (BlockReason.UNREADABLE, BlockReason.NOT_ALLOWED)


@dataclass(frozen=True, slots=True)
class Blocker:
    """A person whose calendar keeps the search from finding a slot. Shown by display name only.

    ``person`` is the opaque key a "Drop" button carries for them (``None``: no such button).
    """

    display_name: str
    reason: BlockReason
    person: str | None = None

    def __post_init__(self) -> None:
        if not self.display_name.strip():
            raise ValueError("display_name must not be empty")


@dataclass(frozen=True, slots=True)
class InterviewView:
    """An interview OpenSlot booked, as the hiring manager sees it."""

    interview_id: str
    candidate: Person
    interviewers: tuple[Person, ...]
    rooms: tuple[Person, ...]
    start_utc: datetime
    end_utc: datetime
    zones: ZonePair
    join_url: str | None = None
    outlook: str | None = None  # "deleted" | "moved": Outlook no longer agrees with the booking
    moved_to: SlotView | None = None  # where Outlook has it now, when "moved"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_utc", to_utc(self.start_utc, "start_utc"))
        object.__setattr__(self, "end_utc", to_utc(self.end_utc, "end_utc"))
        _check_interval(self.start_utc, self.end_utc)
        if self.outlook not in (None, "deleted", "moved"):
            raise ValueError("outlook must be None, 'deleted' or 'moved'")
        if any(not room.is_room for room in self.rooms):
            raise ValueError("rooms must all have is_room=True")


@dataclass(frozen=True, slots=True)
class OfferView:
    """A candidate booking link: ``url`` is the capability link, ``expires_at`` is UTC."""

    offer_id: str
    url: str
    expires_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "expires_at", to_utc(self.expires_at, "expires_at"))
        if not self.url.startswith("https://") and not self.url.startswith("http://"):
            raise ValueError("url must be an http(s) URL")


@dataclass(frozen=True, slots=True)
class LinkOptionsView:
    """What the manager chose for a candidate link: ``role`` ("" for none), whether the page
    shows the interviewers' first names, and the candidate's day in whole hours (their zone)."""

    role: str = ""
    show_names: bool = False
    day_start: int = 8
    day_end: int = 20

    def __post_init__(self) -> None:
        if not 0 <= self.day_start < self.day_end <= 24:
            raise ValueError("the day must be whole hours, start before end")


_MAX_REFRESH_USERS = 60


def _check_user_ids(user_ids: tuple[str, ...]) -> None:
    if len(user_ids) > _MAX_REFRESH_USERS or any(not uid for uid in user_ids):
        raise ValueError(f"user_ids: at most {_MAX_REFRESH_USERS} non-empty ids")


@dataclass(frozen=True, slots=True)
class SlotPickerView:
    """What the slot picker shows. ``slots`` are ranked best first by the caller.

    ``duration`` is the interview length (whole minutes); ``page`` is 1-based; ``user_ids`` are
    the Teams user ids (MRIs) whose card auto-refreshes, empty for none.
    """

    flow: str
    candidate: Person
    interviewers: tuple[Person, ...]
    duration: timedelta
    zones: ZonePair
    slots: tuple[SlotView, ...]
    blockers: tuple[Blocker, ...] = ()
    page: int = 1
    user_ids: tuple[str, ...] = ()
    candidate_day: str | None = None  # e.g. "08:00\u201320:00", the candidate's working day
    link_day: tuple[int, int] = (8, 20)  # the link options' prefilled candidate day (hours)

    def __post_init__(self) -> None:
        if self.duration <= timedelta(0):
            raise ValueError("duration must be positive")
        if self.page < 1:
            raise ValueError("page must be >= 1")
        if not 0 <= self.link_day[0] < self.link_day[1] <= 24:
            raise ValueError("link_day must be whole hours, start before end")
        _check_user_ids(self.user_ids)


@dataclass(frozen=True, slots=True)
class ConfirmationView:
    """The slot the hiring manager chose, before it is booked."""

    flow: str
    candidate: Person
    interviewers: tuple[Person, ...]
    rooms: tuple[Person, ...]
    slot: SlotView
    zones: ZonePair
    user_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if any(not room.is_room for room in self.rooms):
            raise ValueError("rooms must all have is_room=True")
        _check_user_ids(self.user_ids)
