"""Edits of a scheduling flow after its slots are shown: typed ("make it 60 minutes") or from the
slot card's "Change ..." buttons. Pure functions, no I/O.

An edit never starts over: it takes the flow's draft, changes or clears one field and hands the
draft back to ``ScheduleInterviewDialog``, which skips every field the draft already has. A changed
field goes straight to a new search; a cleared field (a button) is asked for again first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from dialogs import parse
from dialogs.state import FlowStatus, ScheduleDraft, new_flow_id


class EditField(StrEnum):
    """The collected fields that can be edited once slots are shown."""

    DURATION = "duration"
    WINDOW = "window"
    PANEL = "panel"
    ZONE = "zone"


#: The ScheduleInterviewDialog state that asks again for a cleared field (SCHEDULE_TABLE, conversation.mmd).
ASKED_BY: Final = {
    EditField.DURATION: "duration",
    EditField.WINDOW: "range",
    EditField.PANEL: "people",
    EditField.ZONE: "zone",
}


@dataclass(frozen=True, slots=True)
class TypedEdit:
    """What a typed edit changes: exactly one of the values is set."""

    duration_min: int | None = None
    window: tuple[date, date] | None = None
    people: tuple[str, ...] = ()
    zone: str | None = None


_LEAD: Final = re.compile(
    r"^(?:please\s+)?(?:make\s+it|make\s+that|change\s+it\s+to|"
    r"change\s+(?:the\s+)?(?:length|duration|dates?|window|panel|"
    r"interviewers|(?:candidate'?s?\s+)?time\s*zone|zone)\s+to|"
    r"set\s+(?:the\s+)?(?:length|duration)\s+to|try|instead)\s+",
    re.I,
)
_ZONE_LEAD: Final = re.compile(
    r"^(?:the\s+)?(?:candidate(?:\s+is)?|they(?:'re|\s+are)?|candidate'?s\s+(?:time\s*)?zone"
    r"(?:\s+is)?|(?:their\s+)?time\s*zone(?:\s+is)?|zone(?:\s+is)?)\s+(?:in\s+)?(.+)$",
    re.I,
)
_PANEL_LEAD: Final = re.compile(
    r"^(?:change\s+(?:the\s+)?(?:panel|interviewers)\s+to|panel:?|interviewers:?|"
    r"with)\s+(.+)$",
    re.I,
)
_DURATION_ONLY: Final = re.compile(
    r"^\d+(?:\.\d+)?\s*(?:h|hr|hrs|hour|hours|m|min|mins|minute|minutes)"
    r"(?:\s*\d+\s*(?:m|min|mins|minutes))?$",
    re.I,
)


def parse_typed_edit(text: str, today: date) -> TypedEdit | None:
    """The edit ``text`` asks for, or ``None`` when it is not an edit.

    Understood: "make it 60 minutes", "60 min", "1 hour", "make it next week", "next week",
    "2026-12-08 to 2026-12-10", "candidate is in London", "time zone India",
    "change the panel to Megan and Adele", "with Megan".
    """
    cleaned = " ".join(text.strip().rstrip(".!").split())
    panel = _PANEL_LEAD.match(cleaned)
    if panel:
        people = parse.split_people(panel.group(1))
        return TypedEdit(people=people) if people else None
    zone_match = _ZONE_LEAD.match(cleaned)
    if zone_match:
        zone = parse.parse_time_zone(zone_match.group(1))
        return TypedEdit(zone=zone) if zone else None
    led = _LEAD.match(cleaned)
    rest = cleaned[led.end() :] if led else cleaned
    if _DURATION_ONLY.match(rest) or (
        led and parse.parse_duration(rest) is not None and not re.search(r"\d{4}-", rest)
    ):
        minutes = parse.parse_duration(rest)
        return TypedEdit(duration_min=minutes) if minutes else None
    if rest.lower() not in {"", "default", "any", "anytime", "soon", "asap"} or led:
        window = parse.parse_date_range(rest, today)
        if window is not None:
            return TypedEdit(window=window)
    return None


def apply_typed_edit(draft: ScheduleDraft, edit: TypedEdit) -> ScheduleDraft:
    """The draft with ``edit`` applied, as a new flow (older cards keep their own)."""
    changed = draft.evolve(flow=new_flow_id(), status=FlowStatus.COLLECTING)
    if edit.duration_min is not None:
        return changed.evolve(duration_min=edit.duration_min)
    if edit.window is not None:
        return changed.evolve(range_start=edit.window[0], range_end=edit.window[1])
    if edit.zone is not None:
        return changed.evolve(candidate_zone=edit.zone)
    return changed.evolve(members=tuple(m for m in draft.members if m.is_room), pending_people=edit.people)


def clear_field(draft: ScheduleDraft, field: EditField) -> ScheduleDraft:
    """The draft without ``field``, as a new flow: the dialog asks for it again, then searches."""
    changed = draft.evolve(flow=new_flow_id(), status=FlowStatus.COLLECTING)
    if field is EditField.DURATION:
        return changed.evolve(duration_min=None)
    if field is EditField.WINDOW:
        return changed.evolve(range_start=None, range_end=None)
    if field is EditField.ZONE:
        return changed.evolve(candidate_zone=None)
    return changed.evolve(members=(), pending_people=())


def editable(draft: ScheduleDraft | None) -> bool:
    """True when ``draft`` has shown slots and is not booked (edits apply to it)."""
    return (
        draft is not None
        and draft.status in (FlowStatus.PICKING, FlowStatus.COLLECTING)
        and draft.range_start is not None
        and bool(draft.members)
    )
