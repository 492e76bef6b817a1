"""Map a loop flow and the Calendar Service's loop answers onto the loop cards' view models. No I/O.

People reach the cards by display name and the opaque key of ``dialogs.views.person_key``; rooms by
display name only. A fix whose kind the cards do not know is left out, never guessed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from calendar_backend.contract import LoopOptionOut, LoopSearchOut, LoopTemplateOut
from cards.loop_views import (
    LoopFix,
    LoopFixView,
    LoopOptionsView,
    LoopOptionView,
    LoopPerson,
    LoopProblemView,
    LoopSessionView,
    PlacedSessionView,
    TemplateView,
)
from cards.views import Person, ZonePair
from dialogs.loop_state import LoopDraft
from dialogs.views import person_key, zone_or_utc

MAX_DAYS = 5  # calendar_backend.loop_templates.MAX_DAYS


def template_id(name: str) -> str:
    """The opaque id a builder button carries for the saved template ``name``."""
    return "t" + hashlib.sha256(name.casefold().encode()).hexdigest()[:16]


def template_view(saved: LoopTemplateOut) -> TemplateView:
    """A saved template on the builder: "4 sessions · 3 h 15 min"."""
    sessions = saved.template.get("sessions")
    rows = sessions if isinstance(sessions, list) else []
    minutes = sum(int(s.get("minutes") or 0) for s in rows if isinstance(s, dict))
    hours, rest = divmod(minutes, 60)
    length = f"{hours} h {rest} min" if hours and rest else f"{hours} h" if hours else f"{rest} min"
    count = len(rows)
    return TemplateView(
        template_id(saved.name), saved.name, f"{count} session{'s' if count != 1 else ''} · {length}"
    )


def zones_of(draft: LoopDraft) -> ZonePair:
    """Manager and candidate zones (the candidate's defaults to the manager's)."""
    manager = zone_or_utc(draft.manager_zone)
    return ZonePair(manager, zone_or_utc(draft.candidate_zone) if draft.candidate_zone else manager)


def name_of(draft: LoopDraft, address: str) -> str:
    """The display name known for ``address``, else the part before the @."""
    return draft.names.get(address.lower()) or address.split("@", 1)[0]


def session_views(draft: LoopDraft) -> tuple[LoopSessionView, ...]:
    """The template's sessions as the cards show them."""
    views = []
    for index, raw in enumerate(draft.sessions()):
        people = raw.get("interviewers") or []
        views.append(
            LoopSessionView(
                index,
                str(raw.get("title") or f"Session {index + 1}"),
                int(raw.get("minutes") or 0) or 1,
                tuple(LoopPerson(name_of(draft, a), person_key(a)) for a in people),
            )
        )
    return tuple(views)


def address_of(draft: LoopDraft, session: int, key: str) -> str | None:
    """The address behind a card's person ``key`` on ``session``, else ``None``."""
    sessions = draft.sessions()
    people = sessions[session].get("interviewers") or [] if 0 <= session < len(sessions) else []
    return next((a for a in people if person_key(a) == key), None)


def _placements(draft: LoopDraft, option: LoopOptionOut) -> tuple[PlacedSessionView, ...]:
    placed = sorted(option.sessions, key=lambda s: s.start)
    return tuple(
        PlacedSessionView(s.index, s.start, s.end, name_of(draft, s.room) if s.room else None) for s in placed
    )


def option_view(draft: LoopDraft, option: LoopOptionOut) -> LoopOptionView:
    """One option of a search."""
    return LoopOptionView(option.id, _placements(draft, option), option.outside_candidate_min)


def _fix(kind: str, value: Any, text: str, session: int | None) -> LoopFixView | None:
    try:
        fix = LoopFix(kind)
    except ValueError:
        return None
    if fix is LoopFix.DROP_PERSON:
        value = person_key(str(value))
    return LoopFixView(fix, text, value if isinstance(value, (int, str)) else 0, session)


def _fix_of(draft: LoopDraft, kind: str, value: Any, text: str, session: int | None) -> LoopFixView | None:
    if kind == LoopFix.CAP_OVERRIDE.value:  # the name is the bot's: the service's text has none
        if not isinstance(value, str) or session is None:
            return None
        label = f"Over cap: use {name_of(draft, value)} anyway"
        return LoopFixView(LoopFix.CAP_OVERRIDE, label, person_key(value), session)
    return _fix(kind, value, text, session)


def cap_choice(draft: LoopDraft, session: int, key: str) -> str | None:
    """The address behind an "Over cap: use <name> anyway" ``key`` on ``session`` (one the last
    search offered), else ``None``."""
    return next((a for i, a in draft.cap_choices if i == session and person_key(a) == key), None)


def override_text(draft: LoopDraft) -> str:
    """The cap override in use, in words (names only), or ``""``."""
    if draft.cap_override is None:
        return ""
    index, address, _reason = draft.cap_override
    sessions = draft.sessions()
    title = str(sessions[index].get("title") or "") if 0 <= index < len(sessions) else ""
    where = f" for \u201c{title}\u201d" if title else ""
    return f"Over cap: {name_of(draft, address)}{where}, with your reason (recorded when booked)."


def options_view(draft: LoopDraft, result: LoopSearchOut, page: int = 1, notice: str = "") -> LoopOptionsView:
    """The options card's view of ``result`` for ``draft`` (``notice``: the last press's problem)."""
    problems = tuple(
        LoopProblemView(
            e.text,
            tuple(f for s in e.suggestions if (f := _fix_of(draft, s.kind, s.value, s.text, e.session))),
        )
        for e in result.explanations
    )
    template = draft.template or {}
    days = template.get("max_days")
    max_days = days if isinstance(days, int) and 1 <= days <= MAX_DAYS else 1
    return LoopOptionsView(
        flow=draft.flow,
        loop_name=str(template.get("name") or "Interview loop"),
        candidate=Person(draft.candidate_name or "Candidate", draft.candidate_email or ""),
        zones=zones_of(draft),
        sessions=session_views(draft),
        options=tuple(option_view(draft, o) for o in result.options),
        problems=problems,
        max_days=max_days,
        can_add_day=max_days < MAX_DAYS,
        page=page,
        notice=notice,
        override=override_text(draft),
    )


def with_people(draft: LoopDraft, result: LoopSearchOut) -> LoopDraft:
    """``draft`` knowing the display names the search returned (people and rooms)."""
    names = dict(draft.names)
    names.update(
        {
            p.address.lower(): p.display_name
            for p in result.people
            if p.display_name and p.display_name.lower() != p.address.lower()  # a name, not the address
        }
    )
    return draft.evolve(names=names) if names != draft.names else draft


def unnamed(draft: LoopDraft, result: LoopSearchOut) -> list[str]:
    """The people and rooms of ``result`` whose display name ``draft`` does not know yet (the
    availability read gives addresses only)."""
    return [p.address.lower() for p in result.people if p.address.lower() not in draft.names]
