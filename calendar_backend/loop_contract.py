"""The wire types of interview loops' booking (issue 17): `LoopSessionOut`, `LoopOut` and the parsed
requests of ``POST /v1/loops`` and ``POST /v1/loops/{id}/reschedule``.

They sit next to `calendar_backend.contract` (whose pinned schemas ``book_loop`` and
``reschedule_loop`` they parse; contract.py is at its size limit) and use its time format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from calendar_backend.contract import parse_window, parse_zone
from calendar_backend.contract_loops import LoopOut as LoopOut
from calendar_backend.contract_loops import LoopSessionOut as LoopSessionOut
from calendar_backend.errors import ValidationError


@dataclass(frozen=True, slots=True)
class SessionTime:
    """A wanted session time: its template ``index``, span and room (``None``: no room)."""

    index: int
    start: datetime
    end: datetime
    room: str | None
    pool_members: tuple[str, ...] = ()
    """Who the search picked from the session's pool (issue 18), and any trainee added."""
    trainees: tuple[str, ...] = ()


def _sessions(raw: list[Mapping[str, Any]]) -> tuple[SessionTime, ...]:
    out = []
    for s in raw:
        start, end = parse_window(s["start"], s["end"])
        room = s.get("room")
        members = tuple(a.lower() for a in s.get("pool_members") or ())
        trainees = tuple(a.lower() for a in s.get("trainees") or ())
        out.append(
            SessionTime(int(s["index"]), start, end, room.lower() if room else None, members, trainees)
        )
    if len({s.index for s in out}) != len(out):
        raise ValidationError("sessions", "names a session twice")
    return tuple(sorted(out, key=lambda s: s.index))


def _override(raw: Mapping[str, Any] | None) -> tuple[str, str] | None:
    if raw is None:
        return None
    reason = " ".join(str(raw["reason"]).split())
    if not reason:
        raise ValidationError("cap_override", "needs a reason")
    return str(raw["address"]).lower(), reason


@dataclass(frozen=True, slots=True)
class BookLoopRequest:
    """``POST /v1/loops``: the template, the picked option's sessions, the candidate."""

    template: Mapping[str, Any]
    sessions: tuple[SessionTime, ...]
    candidate_name: str
    candidate_email: str
    transaction_id: str
    candidate_time_zone: str | None = None
    cap_override: tuple[str, str] | None = None
    """The manager's ``(address, reason)`` letting that pool member pass a cap (audited)."""

    @property
    def pool_picks(self) -> dict[int, tuple[tuple[str, ...], tuple[str, ...]]]:
        """``{session index: (pool members, trainees)}`` as the request names them."""
        return {s.index: (s.pool_members, s.trainees) for s in self.sessions}

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> BookLoopRequest:
        """Parse a schema-valid body. Raises: ValidationError (times, zone, a repeated session)."""
        zone = doc.get("candidate_time_zone")
        return BookLoopRequest(
            template=doc["template"],
            sessions=_sessions(doc["sessions"]),
            candidate_name=doc["candidate"]["name"],
            candidate_email=doc["candidate"]["email"].lower(),
            transaction_id=doc["transaction_id"],
            candidate_time_zone=parse_zone("candidate_time_zone", zone) if zone else None,
            cap_override=_override(doc.get("cap_override")),
        )


@dataclass(frozen=True, slots=True)
class RescheduleLoopRequest:
    """``POST /v1/loops/{id}/reschedule``: the moved sessions (one or all)."""

    sessions: tuple[SessionTime, ...]
    cap_override: tuple[str, str] | None = None
    """The manager's ``(address, reason)`` letting that pool member pass a cap in the new week/day."""

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> RescheduleLoopRequest:
        """Parse a schema-valid body. Raises: ValidationError (times, a repeated session, no reason)."""
        return RescheduleLoopRequest(_sessions(doc["sessions"]), _override(doc.get("cap_override")))
