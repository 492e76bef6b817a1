"""FakeLoopCalendar: FakeCalendarService plus the loop half of the client API (loops_api.md), with
exactly its signatures; the ``*Out`` values are local dataclasses with the contract's field names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from calendar_backend import errors
from calendar_backend.contract import LoopOut, LoopSessionOut, LoopTemplateOut, PersonOut
from tests.bot.conftest import DIRECTORY, NOW, FakeCalendarService


@dataclass(frozen=True)
class FakeLoopSessionOut:
    index: int
    title: str
    start: datetime
    end: datetime
    interviewers: tuple[str, ...]
    room: str | None = None
    interview_id: str | None = None
    event_id: str | None = None
    pool_members: tuple[str, ...] = ()


@dataclass(frozen=True)
class FakeLoopOptionOut:
    id: str
    days: int
    idle_min: int
    outside_candidate_min: int
    sessions: tuple[FakeLoopSessionOut, ...]


@dataclass(frozen=True)
class FakeLoopSuggestionOut:
    kind: str
    value: str | int
    text: str


@dataclass(frozen=True)
class FakeLoopExplanationOut:
    reason: str
    session: int | None
    mailboxes: tuple[str, ...]
    text: str
    suggestions: tuple[FakeLoopSuggestionOut, ...] = ()


@dataclass(frozen=True)
class FakeLoopSearchOut:
    options: tuple[FakeLoopOptionOut, ...]
    people: tuple[PersonOut, ...]
    explanations: tuple[FakeLoopExplanationOut, ...]


@dataclass(frozen=True)
class FakeLoopTemplateOut:
    name: str
    template: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class FakeLoopOut:
    id: str
    status: str
    title: str
    candidate_name: str
    sessions: tuple[LoopSessionOut, ...]
    join_url: str | None


class FakeInvalidTemplateError(errors.CalendarError):
    """What the client raises for a 400 ``invalid_template`` (``problems``: the checker's sentences)."""

    status = 400
    code = "invalid_template"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("The loop template is not valid.")
        self.problems = problems


BACKEND_ONSITE: dict[str, Any] = {
    "name": "Backend onsite",
    "order": "fixed",
    "breaks": {"min_minutes": 0, "max_minutes": 15},
    "max_days": 1,
    "sessions": [
        {"title": "Intro", "minutes": 30, "interviewers": ["meganb@contoso.example"]},
        {
            "title": "System design",
            "minutes": 60,
            "interviewers": ["adelev@contoso.example", "adamb@contoso.example"],
            "room": {"any_of": ["room1@contoso.example"]},
        },
    ],
}


@dataclass
class FakeLoopCalendar(FakeCalendarService):
    """Loops in memory: three options per search (unless ``nothing_fits``), booking idempotent on
    the transaction id; ``loops_missing`` answers every loop call with 404 as a Calendar Service
    without the loop routes does; ``template_problems`` refuses the template on search."""

    templates: dict[str, dict[str, Any]] = field(default_factory=lambda: {"Backend onsite": BACKEND_ONSITE})
    loop_searches: list[dict[str, Any]] = field(default_factory=list)
    loop_bookings: list[dict[str, Any]] = field(default_factory=list)
    loops: dict[str, FakeLoopOut] = field(default_factory=dict)
    by_transaction: dict[str, str] = field(default_factory=dict)
    nothing_fits: bool = False
    loops_missing: bool = False
    loop_taken_once: bool = False
    people_as_addresses: bool = False
    loop_taken_fresh: FakeLoopSearchOut | None = None  # the 409's fresh_loops
    template_problems: list[str] = field(default_factory=list)
    capped: str | None = None  # issue 18: this pool member (session 1) is free only past their cap

    def _loop_check(self, token: str, op: str) -> None:
        self._check(token, op)
        if self.loops_missing:
            raise errors.NotFoundError()

    async def list_loop_templates(self, token: str) -> list[LoopTemplateOut]:
        self._loop_check(token, "list_loop_templates")
        return [FakeLoopTemplateOut(n, t, NOW) for n, t in self.templates.items()]

    async def save_loop_template(
        self, token: str, name: str, template: dict[str, Any]
    ) -> FakeLoopTemplateOut:
        self._loop_check(token, "save_loop_template")
        self.templates[name] = template
        return FakeLoopTemplateOut(name, template, NOW)

    async def delete_loop_template(self, token: str, name: str) -> None:
        self._loop_check(token, "delete_loop_template")
        if self.templates.pop(name, None) is None:
            raise errors.NotFoundError()

    def _options(self, template: dict[str, Any], start: datetime, end: datetime) -> list[FakeLoopOptionOut]:
        options = []
        for hour in (1, 3, 5):
            at = NOW + timedelta(days=6, hours=hour)
            placed = []
            for index, session in enumerate(template["sessions"]):
                length = timedelta(minutes=int(session["minutes"]))
                room = (session.get("room") or {}).get("any_of", [None])[0]
                placed.append(
                    FakeLoopSessionOut(
                        index, session["title"], at, at + length, tuple(session["interviewers"]), room
                    )
                )
                at += length
            if start <= placed[0].start < end:
                digest = hashlib.sha256("|".join(p.start.isoformat() for p in placed).encode()).hexdigest()
                options.append(FakeLoopOptionOut("o" + digest[:12], 1, 0, 0, tuple(placed)))
        return options

    async def search_loops(
        self,
        token: str,
        *,
        template: dict[str, Any] | None = None,
        template_name: str | None = None,
        start: datetime,
        end: datetime,
        candidate_time_zone: str | None = None,
        limit: int = 5,
        cap_overrides: tuple[tuple[int, str], ...] = (),
    ) -> FakeLoopSearchOut:
        self._loop_check(token, "search_loops")
        self.loop_searches.append(
            {
                "template": template,
                "template_name": template_name,
                "start": start,
                "end": end,
                "candidate_time_zone": candidate_time_zone,
                "limit": limit,
                "cap_overrides": cap_overrides,
            }
        )
        if self.capped is not None:
            return self._capped(template or self.templates[template_name or ""], start, end, cap_overrides)
        if self.template_problems:
            raise FakeInvalidTemplateError(self.template_problems)
        spec = template if template is not None else self.templates[template_name or ""]
        mailboxes = {
            a
            for s in spec["sessions"]
            for a in [*s.get("interviewers", []), *(s.get("room") or {}).get("any_of", [])]
        }
        people = tuple(p for p in DIRECTORY if p.address in mailboxes)
        if self.people_as_addresses:  # as the real search answers: the availability read has no names
            people = tuple(replace(p, display_name=p.address) for p in people)
        if self.nothing_fits:
            explanation = FakeLoopExplanationOut(
                "no_common_time",
                1,
                ("adelev@contoso.example", "adamb@contoso.example"),
                "System design: no hour when Adele Vance and Adam Brown are both free.",
                (
                    FakeLoopSuggestionOut("shorten", 45, "shorten it to 45 min"),
                    FakeLoopSuggestionOut("drop_person", "adamb@contoso.example", "without Adam Brown"),
                    FakeLoopSuggestionOut("add_day", 2, "allow a second day"),
                    FakeLoopSuggestionOut("teleport", 1, "an unknown kind is left out"),
                ),
            )
            return FakeLoopSearchOut((), people, (explanation,))
        return FakeLoopSearchOut(tuple(self._options(spec, start, end)[:limit]), people, ())

    def _capped(
        self, spec: dict[str, Any], start: datetime, end: datetime, overrides: tuple[tuple[int, str], ...]
    ) -> FakeLoopSearchOut:
        """Session 1 draws from a pool whose only free member, ``capped``, is at their cap."""
        member = str(self.capped)
        people = tuple(p for p in DIRECTORY if p.address == member)
        if (1, member) not in overrides:
            why = FakeLoopExplanationOut(
                "pool_cap", 1, (member,), 'Session 2 "System design": someone free only past their cap.',
                (FakeLoopSuggestionOut("cap_override", member, "Over cap: use anyway"),),
            )  # fmt: skip
            return FakeLoopSearchOut((), people, (why,))
        options = tuple(
            replace(
                o,
                sessions=tuple(
                    replace(s, interviewers=(*s.interviewers, member), pool_members=(member,))
                    if s.index == 1 else s
                    for s in o.sessions
                ),
            )
            for o in self._options(spec, start, end)
        )  # fmt: skip
        return FakeLoopSearchOut(options, people, ())

    async def book_loop(
        self,
        token: str,
        *,
        template: dict[str, Any],
        sessions: list[LoopSessionOut],
        candidate_name: str,
        candidate_email: str,
        candidate_time_zone: str | None,
        transaction_id: str,
        cap_override: tuple[str, str] | None = None,
        conversation_ref: dict[str, Any] | None = None,
    ) -> FakeLoopOut:
        self._loop_check(token, "book_loop")
        self.loop_bookings.append(
            {
                "template": template,
                "sessions": sessions,
                "candidate_name": candidate_name,
                "candidate_email": candidate_email,
                "candidate_time_zone": candidate_time_zone,
                "transaction_id": transaction_id,
                "cap_override": cap_override,
                "conversation_ref": conversation_ref,
            }
        )
        if transaction_id in self.by_transaction:
            return self.loops[self.by_transaction[transaction_id]]
        if self.loop_taken_once:
            self.loop_taken_once = False
            raise errors.SlotTakenError(fresh_loops=self.loop_taken_fresh)  # type: ignore[arg-type]
        loop_id = f"lp{len(self.loops) + 1}"
        booked = tuple(
            FakeLoopSessionOut(
                s.index, s.title, s.start, s.end, s.interviewers, s.room, f"iv{s.index}", f"ev{s.index}"
            )
            for s in sessions
        )
        self.loops[loop_id] = FakeLoopOut(
            loop_id,
            "confirmed",
            str(template["name"]),
            candidate_name,
            booked,
            "https://teams.example/join/loop",
        )
        self.by_transaction[transaction_id] = loop_id
        return self.loops[loop_id]

    async def list_loops(self, token: str) -> list[LoopOut]:
        self._loop_check(token, "list_loops")
        return list(self.loops.values())

    async def cancel_loop(self, token: str, loop_id: str) -> FakeLoopOut:
        self._loop_check(token, "cancel_loop")
        old = self.loops[loop_id]
        self.loops[loop_id] = FakeLoopOut(
            old.id, "cancelled", old.title, old.candidate_name, old.sessions, old.join_url
        )
        return self.loops[loop_id]

    async def reschedule_loop(self, token: str, loop_id: str, sessions: list[LoopSessionOut]) -> FakeLoopOut:
        self._loop_check(token, "reschedule_loop")
        old = self.loops[loop_id]
        self.loops[loop_id] = FakeLoopOut(
            old.id, old.status, old.title, old.candidate_name, tuple(sessions), old.join_url
        )
        return self.loops[loop_id]
