"""The state of one loop scheduling flow, as a frozen value that serialises to plain JSON.

Same invariants as :mod:`dialogs.state`: no token and no calendar content, only what the manager
typed or picked (the loop template, whose interviewers are addresses the directory resolved, the
candidate), directory facts about the people (display names, for the cards' opaque keys) and the id
of the loop OpenSlot booked. Options are never stored: every card is drawn from a fresh search, and
a pick is checked against a fresh search before it is booked. Stored under ``loop_flows`` in
conversation state (sealed at rest with the rest of ``bot_state``), at most ``MAX_FLOWS``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from botbuilder.core import TurnContext

from dialogs.services import DialogServices
from dialogs.state import MAX_FLOWS, FlowStatus

_PROPERTY = "loop_flows"


@dataclass(frozen=True, slots=True)
class LoopDraft:
    """Everything one loop flow knows. Dates are the manager's local dates, inclusive.

    ``template_name``: the saved template asked for by name (one-message form) until it is loaded;
    ``replacing``: ``[session index, address]`` of the person whose replacement is being asked;
    ``cap_choices`` / ``cap_override``: the pool members the last search could use only past
    their cap, and the one the manager chose with a reason (issue 18; sealed with the state, never
    on a card: buttons carry `dialogs.views.person_key` keys)."""

    flow: str
    manager_zone: str = "UTC"
    template: dict[str, Any] | None = None
    template_name: str | None = None
    candidate_name: str | None = None
    candidate_email: str | None = None
    candidate_zone: str | None = None
    range_start: date | None = None
    range_end: date | None = None
    names: dict[str, str] = field(default_factory=dict)  # address -> display name
    replacing: tuple[int, str] | None = None
    status: FlowStatus = FlowStatus.COLLECTING
    loop_id: str | None = None
    searched_by: str | None = None  # the user id of who ran the last search (only they override a cap)
    cap_choices: tuple[tuple[int, str], ...] = ()  # (session, address) the last search offered past a cap
    cap_override: tuple[int, str, str] | None = None  # (session, address, reason) the manager chose

    def evolve(self, **changes: Any) -> LoopDraft:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)

    def sessions(self) -> list[dict[str, Any]]:
        """A deep copy of the template's sessions (``[]`` without a template)."""
        raw = (self.template or {}).get("sessions")
        return copy.deepcopy(raw) if isinstance(raw, list) else []

    def with_template(self, **changes: Any) -> LoopDraft:
        """A copy whose template has ``changes`` (a deep copy: the old value stays as it was)."""
        template = copy.deepcopy(self.template or {})
        template.update(changes)
        return replace(self, template=template)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (dates as ISO strings)."""
        return {
            "flow": self.flow,
            "manager_zone": self.manager_zone,
            "template": copy.deepcopy(self.template),
            "template_name": self.template_name,
            "candidate_name": self.candidate_name,
            "candidate_email": self.candidate_email,
            "candidate_zone": self.candidate_zone,
            "range_start": self.range_start.isoformat() if self.range_start else None,
            "range_end": self.range_end.isoformat() if self.range_end else None,
            "names": dict(self.names),
            "replacing": list(self.replacing) if self.replacing else None,
            "status": self.status.value,
            "loop_id": self.loop_id,
            "searched_by": self.searched_by,
            "cap_choices": [list(c) for c in self.cap_choices],
            "cap_override": list(self.cap_override) if self.cap_override else None,
        }

    @staticmethod
    def from_json(doc: dict[str, Any]) -> LoopDraft:
        """Inverse of ``to_json``. Raises ``KeyError``/``ValueError``/``TypeError`` on bad input."""
        values = dict(doc)
        for key in ("range_start", "range_end"):
            values[key] = date.fromisoformat(doc[key]) if doc.get(key) else None
        replacing = doc.get("replacing")
        values["replacing"] = (int(replacing[0]), str(replacing[1])) if replacing else None
        values["status"] = FlowStatus(doc.get("status", FlowStatus.COLLECTING.value))
        values["names"] = {str(k): str(v) for k, v in (doc.get("names") or {}).items()}
        values["cap_choices"] = tuple((int(c[0]), str(c[1])) for c in doc.get("cap_choices") or ())
        override = doc.get("cap_override")
        values["cap_override"] = (int(override[0]), str(override[1]), str(override[2])) if override else None
        template = doc.get("template")
        if template is not None and not isinstance(template, dict):
            raise TypeError("template must be an object")
        return LoopDraft(**values)


async def load_loop(context: TurnContext, services: DialogServices, flow: str) -> LoopDraft | None:
    """The loop flow ``flow`` of this conversation, or ``None`` (unknown or unreadable)."""
    flows = await services.conversation_state.create_property(_PROPERTY).get(context, dict)
    doc = flows.get(flow) if isinstance(flows, dict) else None
    try:
        return LoopDraft.from_json(doc) if isinstance(doc, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


async def save_loop(context: TurnContext, services: DialogServices, draft: LoopDraft) -> None:
    """Store ``draft`` (persisted at the end of the turn), keeping the newest ``MAX_FLOWS``."""
    accessor = services.conversation_state.create_property(_PROPERTY)
    flows = await accessor.get(context, dict)
    updated = {k: v for k, v in (flows if isinstance(flows, dict) else {}).items() if k != draft.flow}
    updated[draft.flow] = draft.to_json()
    while len(updated) > MAX_FLOWS:
        updated.pop(next(iter(updated)))
    await accessor.set(context, updated)


async def booked_loop_zones(context: TurnContext, services: DialogServices) -> dict[str, str]:
    """The candidate's zone of every loop this conversation booked (loop id → zone name)."""
    flows = await services.conversation_state.create_property(_PROPERTY).get(context, dict)
    zones: dict[str, str] = {}
    for doc in (flows if isinstance(flows, dict) else {}).values():
        try:
            draft = LoopDraft.from_json(doc) if isinstance(doc, dict) else None
        except (KeyError, TypeError, ValueError):
            continue
        if draft is not None and draft.loop_id and draft.candidate_zone:
            zones[draft.loop_id] = draft.candidate_zone
    return zones
