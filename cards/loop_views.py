"""View models of the loop cards (pure, stdlib only, like :mod:`cards.views`).

The dialog layer maps the loop engine's results (``calendar_backend.loops``) onto these: the cards
never see a mailbox address. A person carries a display name and the opaque ``key`` its buttons
send back; a room only its display name. Every datetime is aware and normalised to UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cards.views import Person, ZonePair, to_utc

__all__ = [
    "LoopFix",
    "LoopFixView",
    "LoopOptionView",
    "LoopOptionsView",
    "LoopPerson",
    "LoopProblemView",
    "LoopSessionView",
    "PlacedSessionView",
    "TemplateView",
]

MAX_SESSIONS = 8


@dataclass(frozen=True, slots=True)
class LoopPerson:
    """An interviewer on a loop card: shown by ``display_name``; ``key`` is opaque."""

    display_name: str
    key: str

    def __post_init__(self) -> None:
        if not self.display_name.strip() or not self.key:
            raise ValueError("a loop person needs a display name and a key")


@dataclass(frozen=True, slots=True)
class LoopSessionView:
    """A session as asked for: its index in the loop, title, length and panel."""

    index: int
    title: str
    minutes: int
    interviewers: tuple[LoopPerson, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.index < MAX_SESSIONS or self.minutes <= 0 or not self.title.strip():
            raise ValueError("a session needs an index 0..7, a title and a positive length")


@dataclass(frozen=True, slots=True)
class PlacedSessionView:
    """A session placed by one option: ``session`` is its index; ``room`` its display name."""

    session: int
    start_utc: datetime
    end_utc: datetime
    room: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_utc", to_utc(self.start_utc, "start_utc"))
        object.__setattr__(self, "end_utc", to_utc(self.end_utc, "end_utc"))
        if self.start_utc >= self.end_utc:
            raise ValueError("start must be before end")


@dataclass(frozen=True, slots=True)
class LoopOptionView:
    """One loop schedule: placements in chronological order; ``option_id`` is opaque."""

    option_id: str
    placements: tuple[PlacedSessionView, ...]
    outside_candidate_minutes: int = 0

    def __post_init__(self) -> None:
        if not self.placements:
            raise ValueError("an option places at least one session")
        if any(a.end_utc > b.start_utc for a, b in zip(self.placements, self.placements[1:], strict=False)):
            raise ValueError("placements must be chronological and not overlap")


class LoopFix(StrEnum):
    """A change that was checked to help (mirrors ``calendar_backend.loops.Change``)."""

    SHORTEN = "shorten"
    DROP_PERSON = "drop_person"
    ADD_DAY = "add_day"
    LONGER_BREAK = "longer_break"
    FREE_ORDER = "free_order"
    LONGER_WINDOW = "longer_window"
    CAP_OVERRIDE = "cap_override"  # a pool member past their cap, with the manager's reason (issue 18)


@dataclass(frozen=True, slots=True)
class LoopFixView:
    """A fix button: ``text`` is its label; ``value`` minutes, days or the person's key."""

    kind: LoopFix
    text: str
    value: int | str = 0
    session: int | None = None


@dataclass(frozen=True, slots=True)
class LoopProblemView:
    """Why nothing fits, in words (display names only), and the fixes that help."""

    text: str
    fixes: tuple[LoopFixView, ...] = ()


@dataclass(frozen=True, slots=True)
class LoopOptionsView:
    """What the loop options card shows. ``options`` are best first (the engine's order).

    ``max_days`` is the days the loop may span now; ``can_add_day`` offers "Allow a second day"
    (or a further one). ``problems`` explain an empty result. ``notice``: what was wrong with the
    last press; ``override``: the pool member used past their cap, said on every loop card.
    """

    flow: str
    loop_name: str
    candidate: Person
    zones: ZonePair
    sessions: tuple[LoopSessionView, ...]
    options: tuple[LoopOptionView, ...]
    problems: tuple[LoopProblemView, ...] = ()
    max_days: int = 1
    can_add_day: bool = True
    page: int = 1
    user_ids: tuple[str, ...] = ()
    notice: str = ""  # a problem with the last press, shown first (e.g. an override without a reason)
    override: str = ""  # the cap override in use, in words (display names only)

    def __post_init__(self) -> None:
        if not 1 <= len(self.sessions) <= MAX_SESSIONS:
            raise ValueError("a loop has 1 to 8 sessions")
        if [s.index for s in self.sessions] != list(range(len(self.sessions))):
            raise ValueError("sessions are listed by index 0..n-1")
        known = range(len(self.sessions))
        if any(p.session not in known for o in self.options for p in o.placements):
            raise ValueError("a placement names an unknown session")
        if self.page < 1 or not 1 <= self.max_days <= 14 or len(self.user_ids) > 60:
            raise ValueError("page >= 1, max_days 1..14, at most 60 user ids")


@dataclass(frozen=True, slots=True)
class TemplateView:
    """A saved loop template on the builder card: ``summary`` e.g. "4 sessions · 3 h 15 min"."""

    template_id: str
    name: str
    summary: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a template needs a name")
