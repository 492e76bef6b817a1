"""The loop API's part of the contract (issue 17): saved templates and the loop search. PURE: stdlib only.

Pinned schemas (`LOOP_SCHEMAS`, merged into `contract.SCHEMAS`), the typed request of
``POST /v1/loops/search`` and the answer's ``*Out`` values with ``to_json``/``from_json``. Import
them from `calendar_backend.contract`, which re-exports every public name of this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from calendar_backend.errors import ValidationError
from calendar_backend.wire import (
    EMAIL,
    TIME,
    ZONE,
    PersonOut,
    format_time,
    obj,
    parse_time,
    parse_window,
    parse_zone,
)

# A template is checked value by value by `loop_templates.parse_template` (every problem, for the
# user: ``invalid_template``); the schema pins its shape: its fields at every level (nothing
# else), bounded sizes, a scalar at every leaf. A leaf's wrong scalar type or value is still
# answered as one of the template's problems.
_SCALAR = ["string", "integer", "number", "boolean", "null"]
_LEAF: dict[str, Any] = {"type": _SCALAR, "maxLength": 254}
_LIST: dict[str, Any] = {"type": "array", "maxItems": 20, "items": _LEAF}
_CLOCKS = {"type": "object", "additionalProperties": False, "properties": {"start": _LEAF, "end": _LEAF}}
TEMPLATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": _LEAF,
        "role": _LEAF,
        "order": _LEAF,
        "breaks": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"min_minutes": _LEAF, "max_minutes": _LEAF},
        },
        "max_days": _LEAF,
        "candidate_day": _CLOCKS,
        "sessions": {
            "type": "array",
            "maxItems": 20,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "title": _LEAF,
                    "minutes": _LEAF,
                    "interviewers": _LIST,
                    "room": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"any_of": _LIST, "min_capacity": _LEAF, "building": _LEAF},
                    },
                    "window": _CLOCKS,
                    "position": _LEAF,
                    "pool": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"name": _LEAF, "count": _LEAF},
                    },
                },
            },
        },
    },
}
TEMPLATE_NAME: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 80,
    "pattern": r"^[^\x00-\x1f\x7f-\x9f<>/\\]+\Z",
}
MAX_LOOP_OPTIONS = 10

LOOP_SCHEMAS: dict[str, dict[str, Any]] = {
    "search_loops": obj(
        ["start", "end"],
        template=TEMPLATE,
        template_name=TEMPLATE_NAME,
        start=TIME,
        end=TIME,
        candidate_time_zone=ZONE,
        limit={"type": "integer", "minimum": 1, "maximum": MAX_LOOP_OPTIONS},
        cap_overrides={  # issue 18: search as if these members were under cap for these sessions
            "type": "array",
            "maxItems": 8,
            "items": obj(
                ["session", "address"], session={"type": "integer", "minimum": 0, "maximum": 7}, address=EMAIL
            ),
        },
    ),
    "save_loop_template": obj(["template"], template=TEMPLATE),
}


@dataclass(frozen=True, slots=True)
class SearchLoopsRequest:
    """``POST /v1/loops/search``: a template inline or a saved one by name (exactly one)."""

    template: dict[str, Any] | None
    template_name: str | None
    start: datetime
    end: datetime
    candidate_time_zone: str | None = None
    limit: int = 5
    cap_overrides: tuple[tuple[int, str], ...] = ()
    """``(session index, address)``: search as if that pool member were under cap for that session."""

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> SearchLoopsRequest:
        """Parse a schema-valid body.

        Raises:
            ValidationError: neither or both of ``template``/``template_name``; the window; the zone.
        """
        if ("template" in doc) == ("template_name" in doc):
            raise ValidationError("template", "give exactly one of template and template_name")
        start, end = parse_window(doc["start"], doc["end"])
        zone = doc.get("candidate_time_zone")
        return SearchLoopsRequest(
            template=doc.get("template"),
            template_name=doc.get("template_name"),
            start=start,
            end=end,
            candidate_time_zone=None if zone is None else parse_zone("candidate_time_zone", zone),
            limit=int(doc.get("limit", 5)),
            cap_overrides=tuple(
                (int(o["session"]), str(o["address"]).lower()) for o in doc.get("cap_overrides") or ()
            ),
        )


@dataclass(frozen=True, slots=True)
class LoopTemplateOut:
    """A saved template: its name, its JSON and when it was last saved."""

    name: str
    template: dict[str, Any]
    updated_at: datetime

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "template": self.template, "updated_at": format_time(self.updated_at)}

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> LoopTemplateOut:
        return LoopTemplateOut(str(doc["name"]), dict(doc["template"]), parse_time(doc["updated_at"]))


@dataclass(frozen=True, slots=True)
class LoopSessionOut:
    """One session of a loop option or a booked loop (``interview_id``/``event_id`` once booked)."""

    index: int
    title: str
    start: datetime
    end: datetime
    interviewers: tuple[str, ...] = ()
    room: str | None = None
    interview_id: str | None = None
    event_id: str | None = None
    pool: str | None = None
    """The pool the session's ``pool_members`` (part of ``interviewers``) were drawn from (issue 18);
    on the wire as ``{"pool": {"name", "members", "trainees"}}`` only for a pooled session."""
    pool_members: tuple[str, ...] = ()
    trainees: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "index": self.index,
            "title": self.title,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "interviewers": list(self.interviewers),
            "room": self.room,
        }
        if self.interview_id is not None:
            doc["interview_id"] = self.interview_id
            doc["event_id"] = self.event_id
        if self.pool is not None:
            doc["pool"] = {
                "name": self.pool,
                "members": list(self.pool_members),
                "trainees": list(self.trainees),
            }
        return doc

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> LoopSessionOut:
        return LoopSessionOut(
            index=int(doc["index"]),
            title=str(doc.get("title", "")),
            start=parse_time(doc["start"]),
            end=parse_time(doc["end"]),
            interviewers=tuple(doc.get("interviewers") or ()),
            room=doc.get("room"),
            interview_id=doc.get("interview_id"),
            event_id=doc.get("event_id"),
            pool=(doc.get("pool") or {}).get("name"),
            pool_members=tuple((doc.get("pool") or {}).get("members") or ()),
            trainees=tuple((doc.get("pool") or {}).get("trainees") or ()),
        )


@dataclass(frozen=True, slots=True)
class LoopOptionOut:
    """One loop schedule, sessions in chronological order; ``id`` is stable (a hash of the starts)."""

    id: str
    days: int
    idle_min: int
    outside_candidate_min: int
    sessions: tuple[LoopSessionOut, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "days": self.days,
            "idle_min": self.idle_min,
            "outside_candidate_min": self.outside_candidate_min,
            "sessions": [s.to_json() for s in self.sessions],
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> LoopOptionOut:
        return LoopOptionOut(
            str(doc["id"]),
            int(doc["days"]),
            int(doc["idle_min"]),
            int(doc["outside_candidate_min"]),
            tuple(LoopSessionOut.from_json(s) for s in doc.get("sessions", [])),
        )


@dataclass(frozen=True, slots=True)
class LoopSuggestionOut:
    """A change checked to help (``kind``: shorten, drop_person, add_day, longer_break, ...)."""

    kind: str
    value: str | int
    text: str

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "value": self.value, "text": self.text}

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> LoopSuggestionOut:
        value = doc["value"]
        return LoopSuggestionOut(
            str(doc["kind"]), value if isinstance(value, int) else str(value), str(doc["text"])
        )


@dataclass(frozen=True, slots=True)
class LoopExplanationOut:
    """Why no loop fits (or a mailbox could not be read): names and titles, never a calendar item."""

    reason: str
    session: int | None
    mailboxes: tuple[str, ...]
    text: str
    suggestions: tuple[LoopSuggestionOut, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "session": self.session,
            "mailboxes": list(self.mailboxes),
            "text": self.text,
            "suggestions": [s.to_json() for s in self.suggestions],
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> LoopExplanationOut:
        session = doc.get("session")
        return LoopExplanationOut(
            str(doc["reason"]),
            None if session is None else int(session),
            tuple(doc.get("mailboxes", [])),
            str(doc["text"]),
            tuple(LoopSuggestionOut.from_json(s) for s in doc.get("suggestions", [])),
        )


@dataclass(frozen=True, slots=True)
class LoopSearchOut:
    """The answer to a loop search: options best first; people (interviewers and rooms); when
    there is no option, explanations say why."""

    options: tuple[LoopOptionOut, ...]
    people: tuple[PersonOut, ...]
    explanations: tuple[LoopExplanationOut, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "options": [o.to_json() for o in self.options],
            "people": [p.to_json() for p in self.people],
            "explanations": [e.to_json() for e in self.explanations],
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> LoopSearchOut:
        return LoopSearchOut(
            tuple(LoopOptionOut.from_json(o) for o in doc.get("options", [])),
            tuple(
                PersonOut(
                    p["address"],
                    p.get("display_name") or p.get("name") or p["address"],
                    p.get("time_zone") or "",
                    bool(p.get("is_room")),
                )
                for p in doc.get("people", [])
            ),
            tuple(LoopExplanationOut.from_json(e) for e in doc.get("explanations", [])),
        )


@dataclass(frozen=True, slots=True)
class LoopOut:
    """A booked loop: ``status`` is ``confirmed``, ``cancelled`` (or ``pending``/``failed``)."""

    id: str
    status: str
    title: str
    candidate_name: str
    sessions: tuple[LoopSessionOut, ...]
    join_url: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "status": self.status,
            "title": self.title,
            "candidate_name": self.candidate_name,
            "sessions": [s.to_json() for s in self.sessions],
            "join_url": self.join_url,
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> LoopOut:
        return LoopOut(
            id=doc["id"],
            status=doc["status"],
            title=doc["title"],
            candidate_name=doc["candidate_name"],
            sessions=tuple(LoopSessionOut.from_json(s) for s in doc["sessions"]),
            join_url=doc.get("join_url"),
        )
