"""The Calendar Service API contract, shared by the service and the bot. PURE: stdlib only.

Each operation has a pinned JSON Schema (draft 2020-12, `additionalProperties: false`, bounded sizes) that
the service enforces before doing anything (the third lock), and typed request/response values.
All times on the wire are UTC ISO 8601 with a `Z` suffix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calendar_backend.contract_loops import LOOP_SCHEMAS
from calendar_backend.contract_loops import TEMPLATE_NAME as TEMPLATE_NAME
from calendar_backend.contract_loops import LoopExplanationOut as LoopExplanationOut
from calendar_backend.contract_loops import LoopOptionOut as LoopOptionOut
from calendar_backend.contract_loops import LoopOut as LoopOut
from calendar_backend.contract_loops import LoopSearchOut as LoopSearchOut
from calendar_backend.contract_loops import LoopSessionOut as LoopSessionOut
from calendar_backend.contract_loops import LoopSuggestionOut as LoopSuggestionOut
from calendar_backend.contract_loops import LoopTemplateOut as LoopTemplateOut
from calendar_backend.contract_loops import SearchLoopsRequest as SearchLoopsRequest
from calendar_backend.errors import ValidationError

# The outbound-URL validator (pure) is part of the contract: the bot and the service check every
# serviceUrl with the same code (bot replies and notices; conversation references when stored).
# So is the redaction of aiohttp parser errors (request bytes, e.g. a token, never reach a log).
from calendar_backend.http_log import install_http_log_redaction as install_http_log_redaction
from calendar_backend.outbound import OutboundPolicy as OutboundPolicy
from calendar_backend.outbound import OutboundTarget as OutboundTarget
from calendar_backend.outbound import OutboundUrlError as OutboundUrlError
from calendar_backend.outbound import check_outbound_url as check_outbound_url
from calendar_backend.outbound import outbound_url_allowed as outbound_url_allowed
from calendar_backend.slots import CandidateDay

# The wire's primitives (times, the person record, schema fragments) live in `wire`, shared with
# `contract_loops` (the loop API); both are re-exported here, so callers import only `contract`.
from calendar_backend.wire import CLOCK as _CLOCK
from calendar_backend.wire import EMAIL as _EMAIL
from calendar_backend.wire import ID as _ID
from calendar_backend.wire import MAX_WINDOW as MAX_WINDOW
from calendar_backend.wire import NAME as _NAME
from calendar_backend.wire import TIME as _TIME
from calendar_backend.wire import TOKEN as _TOKEN
from calendar_backend.wire import ZONE as _ZONE
from calendar_backend.wire import PersonOut as PersonOut
from calendar_backend.wire import format_time as format_time
from calendar_backend.wire import obj as _obj
from calendar_backend.wire import parse_time as parse_time
from calendar_backend.wire import parse_window as parse_window
from calendar_backend.wire import parse_wire_time as parse_wire_time
from calendar_backend.wire import parse_zone as parse_zone

API_VERSION = "v1"

# Every pattern is anchored with `\Z`, never `$` (Python's `$` also matches before a final "\n"),
# and every character class is ASCII (`\d` would take any Unicode digit). Control characters in
# any string of any payload are refused before the schema by the service (`app._payload`).
_LOOP_SESSIONS = {
    "type": "array",
    "minItems": 1,
    "maxItems": 8,
    "items": _obj(
        ["index", "start", "end"],
        index={"type": "integer", "minimum": 0, "maximum": 7},
        start=_TIME,
        end=_TIME,
        room={"anyOf": [_EMAIL, {"type": "null"}]},
        pool_members={"type": "array", "maxItems": 10, "items": _EMAIL},  # issue 18: who was picked
        trainees={"type": "array", "maxItems": 2, "items": _EMAIL},
    ),
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "find_slots": _obj(
        ["interviewers", "duration_min", "start", "end"],
        interviewers={"type": "array", "items": _EMAIL, "minItems": 1, "maxItems": 60, "uniqueItems": True},
        rooms={"type": "array", "items": _EMAIL, "maxItems": 10, "uniqueItems": True},
        duration_min={"type": "integer", "minimum": 5, "maximum": 480},
        start=_TIME,
        end=_TIME,
        step_min={"type": "integer", "minimum": 5, "maximum": 120},
        buffer_min={"type": "integer", "minimum": 0, "maximum": 240},
        notice_min={"type": "integer", "minimum": 0, "maximum": 20160},
        all={"type": "boolean"},
        limit={"type": "integer", "minimum": 1, "maximum": 500},
        candidate_time_zone=_ZONE,
        candidate_day_start=_CLOCK,
        candidate_day_end=_CLOCK,
    ),
    "create_interview": _obj(
        ["candidate", "interviewers", "start", "end", "idempotency_key"],
        candidate=_obj(["name", "email"], name=_NAME, email=_EMAIL),
        interviewers={"type": "array", "items": _EMAIL, "minItems": 1, "maxItems": 20, "uniqueItems": True},
        rooms={"type": "array", "items": _EMAIL, "maxItems": 5, "uniqueItems": True},
        optional={"type": "array", "items": _EMAIL, "maxItems": 20, "uniqueItems": True},
        start=_TIME,
        end=_TIME,
        subject={"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^[^\x00-\x1f\x7f]+\Z"},
        time_zone=_ZONE,
        idempotency_key=_ID,
        role=_NAME,  # shown on the panel's (and the candidate's) invite
        conversation_ref={"type": "object", "maxProperties": 20},  # the drift card's chat (watch_feed.py)
    ),
    "reschedule_interview": _obj(["start", "end"], start=_TIME, end=_TIME),
    "cancel_interview": _obj([], comment={"type": "string", "maxLength": 500}),
    "resolve_people": _obj(
        ["queries"],
        queries={
            "type": "array",
            "minItems": 1,
            "maxItems": 20,
            "items": {"type": "string", "minLength": 1, "maxLength": 120, "pattern": r"^[^\x00-\x1f\x7f]+\Z"},
        },
    ),
    "check_people": _obj(
        ["queries"],
        queries={
            "type": "array",
            "minItems": 1,
            "maxItems": 20,
            "items": {"type": "string", "minLength": 1, "maxLength": 120, "pattern": r"^[^\x00-\x1f\x7f]+\Z"},
        },
    ),
    "create_offer": _obj(
        ["window_start", "window_end", "candidate_name"],
        loop_template={"type": "object", "maxProperties": 10},
        loop_template_name=TEMPLATE_NAME,
        interviewers={"type": "array", "items": _EMAIL, "minItems": 1, "maxItems": 20, "uniqueItems": True},
        show_interviewer_names={"type": "boolean"},
        duration_min={"type": "integer", "minimum": 5, "maximum": 480},
        window_start=_TIME,
        window_end=_TIME,
        candidate_name=_NAME,
        candidate_email=_EMAIL,
        candidate_time_zone=_ZONE,
        manager_time_zone=_ZONE,
        expires_in_hours={"type": "integer", "minimum": 1, "maximum": 720},
        conversation_ref={"type": "object", "maxProperties": 20},
        role=_NAME,
        day_start_hour={"type": "integer", "minimum": 0, "maximum": 23},
        day_end_hour={"type": "integer", "minimum": 1, "maximum": 24},
    ),
    "candidate_slots": _obj(["token"], token=_TOKEN, time_zone=_ZONE),
    "candidate_book": _obj(["token", "start"], token=_TOKEN, start=_TIME, email=_EMAIL, option=_ID),
    "candidate_change": _obj(["token"], token=_TOKEN, start=_TIME, option=_ID),
    "empty": _obj([]),
    # interview loops (issue 17; calendar_backend/loop_contract.py parses them)
    "book_loop": _obj(
        ["template", "sessions", "candidate", "transaction_id"],
        template={"type": "object", "maxProperties": 10},
        sessions=_LOOP_SESSIONS,
        candidate=_obj(["name", "email"], name=_NAME, email=_EMAIL),
        candidate_time_zone=_ZONE,
        transaction_id=_ID,
        cap_override=_obj(
            ["address", "reason"], address=_EMAIL, reason={"type": "string", "minLength": 1, "maxLength": 512}
        ),
        conversation_ref={"type": "object", "maxProperties": 20},  # the drift card's chat (watch_feed.py)
    ),
    "reschedule_loop": _obj(
        ["sessions"],
        sessions=_LOOP_SESSIONS,
        cap_override=_obj(  # issue 18: a move past a pool member's cap, with the manager's reason
            ["address", "reason"], address=_EMAIL, reason={"type": "string", "minLength": 1, "maxLength": 512}
        ),
    ),
    "apply_repair": _obj(["repair"], repair={"type": "string", "pattern": "^[a-z0-9-]{1,32}\\Z"}),
    "watch_feed": _obj([], poller={"type": "string", "pattern": "^[A-Za-z0-9-]{1,64}\\Z"}),
    "watch_feed_ack": _obj(
        ["ids"],
        ids={
            "type": "array",
            "maxItems": 200,
            "items": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,64}\\Z"},
        },
    ),
}


@dataclass(frozen=True, slots=True)
class SlotOut:
    """One open slot, UTC. ``outside_candidate_day`` marks a slot outside the candidate's working
    day (only when the request named the candidate's zone; on the wire only when true)."""

    start: datetime
    end: datetime
    outside_candidate_day: bool = False

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"start": format_time(self.start), "end": format_time(self.end)}
        if self.outside_candidate_day:
            doc["outside_candidate_day"] = True
        return doc


PERSON_STATUSES = (
    "ok",
    "ambiguous",
    "not_found",
    "disabled",
    "no_mailbox",
    "unreadable",
    "not_allowed",
    "duplicate",
)
"""What check_people says about one typed name: ``ok`` (one enabled person or room whose
calendar can be read and may be used), ``ambiguous`` (several matches, see ``choices``),
``not_found``, ``disabled`` (account switched off), ``no_mailbox``, ``unreadable`` (free/busy
refused), ``not_allowed`` (the tenant's mailbox gate refuses it), ``duplicate`` (the same mailbox
as an earlier name of the same request)."""


@dataclass(frozen=True, slots=True)
class PersonCheckOut:
    """One typed name checked: its ``status`` and the ``person`` it names (unless ``not_found``
    or ``ambiguous``), or the ``choices`` when ambiguous."""

    query: str
    status: str
    person: PersonOut | None = None
    choices: tuple[PersonOut, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "query": self.query,
            "status": self.status,
            "person": self.person.to_json() if self.person else None,
            "choices": [c.to_json() for c in self.choices],
        }

    @staticmethod
    def from_json(doc: dict[str, Any]) -> PersonCheckOut:
        def person(p: dict[str, Any]) -> PersonOut:
            return PersonOut(
                p["address"], p["display_name"], p.get("time_zone") or "", bool(p.get("is_room"))
            )

        return PersonCheckOut(
            str(doc["query"]),
            str(doc["status"]),
            person(doc["person"]) if doc.get("person") else None,
            tuple(person(c) for c in doc.get("choices", [])),
        )


@dataclass(frozen=True, slots=True)
class BlockerOut:
    """Who blocks a panel and why, without any event detail."""

    address: str
    reason: str  # "no_working_hours" | "not_working_days" | "fully_busy" | "no_common_time" |
    #              "unreadable" | "not_allowed"

    def to_json(self) -> dict[str, str]:
        return {"address": self.address, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class SlotsResult:
    """The answer to find_slots: slots best-first (or chronological with `all`), blockers when empty."""

    slots: tuple[SlotOut, ...]
    people: tuple[PersonOut, ...]
    blockers: tuple[BlockerOut, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "slots": [s.to_json() for s in self.slots],
            "people": [p.to_json() for p in self.people],
            "blockers": [b.to_json() for b in self.blockers],
        }

    @staticmethod
    def from_json(doc: dict[str, Any]) -> SlotsResult:
        return SlotsResult(
            slots=tuple(
                SlotOut(parse_time(s["start"]), parse_time(s["end"]), bool(s.get("outside_candidate_day")))
                for s in doc.get("slots", [])
            ),
            people=tuple(
                PersonOut(p["address"], p["display_name"], p["time_zone"], bool(p.get("is_room")))
                for p in doc.get("people", [])
            ),
            blockers=tuple(BlockerOut(b["address"], b["reason"]) for b in doc.get("blockers", [])),
        )


@dataclass(frozen=True, slots=True)
class InterviewOut:
    """An interview OpenSlot created (the only calendar object it stores)."""

    id: str
    status: str
    start: datetime
    end: datetime
    subject: str
    attendees: tuple[str, ...]
    candidate_name: str
    join_url: str | None
    event_id: str | None
    candidate_email: str | None = None  # which attendee is the candidate (not an interviewer)
    outlook: str | None = None  # "deleted" | "moved" when Outlook disagrees (see list_interviews)
    outlook_start: datetime | None = None  # where Outlook has it now, when "moved"
    outlook_end: datetime | None = None

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "id": self.id,
            "status": self.status,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "subject": self.subject,
            "attendees": list(self.attendees),
            "candidate_name": self.candidate_name,
            "join_url": self.join_url,
            "event_id": self.event_id,
        }
        if self.candidate_email:
            doc["candidate_email"] = self.candidate_email
        if self.outlook:
            doc["outlook"] = self.outlook
        if self.outlook_start and self.outlook_end:
            doc["outlook_start"] = format_time(self.outlook_start)
            doc["outlook_end"] = format_time(self.outlook_end)
        return doc

    @staticmethod
    def from_json(doc: dict[str, Any]) -> InterviewOut:
        return InterviewOut(
            id=doc["id"],
            status=doc["status"],
            start=parse_time(doc["start"]),
            end=parse_time(doc["end"]),
            subject=doc["subject"],
            attendees=tuple(doc["attendees"]),
            candidate_name=doc["candidate_name"],
            join_url=doc.get("join_url"),
            event_id=doc.get("event_id"),
            candidate_email=doc.get("candidate_email"),
            outlook=doc.get("outlook"),
            outlook_start=parse_time(doc["outlook_start"]) if doc.get("outlook_start") else None,
            outlook_end=parse_time(doc["outlook_end"]) if doc.get("outlook_end") else None,
        )


@dataclass(frozen=True, slots=True)
class OfferOut:
    """A candidate offer; `url` is only present in the answer that created it."""

    id: str
    status: str
    expires_at: datetime
    url: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "status": self.status,
            "expires_at": format_time(self.expires_at),
            "url": self.url,
        }

    @staticmethod
    def from_json(doc: dict[str, Any]) -> OfferOut:
        return OfferOut(
            id=doc["id"], status=doc["status"], expires_at=parse_time(doc["expires_at"]), url=doc.get("url")
        )


# ---- typed requests: parsed once at the edge, after the schema (lock 3) -------------------------
DEFAULT_DAY_HOURS = (8, 20)  # a candidate's day in their zone, when the manager names none


def candidate_day_of(req: Mapping[str, Any]) -> CandidateDay | None:
    """The candidate's working day a find_slots request names (``None`` without a zone).

    Raises:
        ValidationError: an unknown zone, or a day that does not start before it ends.
    """
    zone_name = req.get("candidate_time_zone")
    if not zone_name:
        return None
    try:
        return CandidateDay(
            ZoneInfo(zone_name),
            time.fromisoformat(req.get("candidate_day_start", "08:00")),
            time.fromisoformat(req.get("candidate_day_end", "20:00")),
        )
    except (ValueError, KeyError, OSError) as exc:  # NotFound is a KeyError; "Europe" a directory
        raise ValidationError("candidate_time_zone", "is not a usable zone and day") from exc


@dataclass(frozen=True, slots=True)
class FindSlotsRequest:
    """``POST /v1/slots/find``. ``notice`` ``None``: the service's default notice."""

    interviewers: tuple[str, ...]
    rooms: tuple[str, ...]
    start: datetime
    end: datetime
    duration: timedelta
    step: timedelta = timedelta(minutes=15)
    buffer: timedelta = timedelta(0)
    notice: timedelta | None = None
    want_all: bool = False
    limit: int = 20
    candidate_day: CandidateDay | None = None

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> FindSlotsRequest:
        """Parse a schema-valid body. Raises: ValidationError (window, candidate day)."""
        start, end = parse_window(doc["start"], doc["end"])
        notice = doc.get("notice_min")
        return FindSlotsRequest(
            interviewers=tuple(doc["interviewers"]),
            rooms=tuple(doc.get("rooms", [])),
            start=start,
            end=end,
            duration=timedelta(minutes=doc["duration_min"]),
            step=timedelta(minutes=doc.get("step_min", 15)),
            buffer=timedelta(minutes=doc.get("buffer_min", 0)),
            notice=None if notice is None else timedelta(minutes=notice),
            want_all=bool(doc.get("all", False)),
            limit=int(doc.get("limit", 20)),
            candidate_day=candidate_day_of(doc),
        )


@dataclass(frozen=True, slots=True)
class CreateInterviewRequest:
    """``POST /v1/interviews``. Addresses are lower-cased; ``optional`` never repeats an
    interviewer; ``role`` is ``""`` when not given."""

    candidate_name: str
    candidate_email: str
    interviewers: tuple[str, ...]
    start: datetime
    end: datetime
    idempotency_key: str
    rooms: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    subject: str | None = None
    time_zone: str | None = None
    role: str = ""

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> CreateInterviewRequest:
        """Parse a schema-valid body. Raises: ValidationError (window)."""
        start, end = parse_window(doc["start"], doc["end"])
        interviewers = tuple(a.lower() for a in doc["interviewers"])
        return CreateInterviewRequest(
            candidate_name=doc["candidate"]["name"],
            candidate_email=doc["candidate"]["email"],
            interviewers=interviewers,
            start=start,
            end=end,
            idempotency_key=doc["idempotency_key"],
            rooms=tuple(a.lower() for a in doc.get("rooms", [])),
            # Optional attendees are invited, never searched or reserved: the gate still decides.
            optional=tuple(a.lower() for a in doc.get("optional", []) if a.lower() not in interviewers),
            subject=doc.get("subject") or None,
            time_zone=doc.get("time_zone"),
            role=doc.get("role") or "",
        )


@dataclass(frozen=True, slots=True)
class RescheduleRequest:
    """``POST /v1/interviews/{id}/reschedule``: the new ``[start, end)``."""

    start: datetime
    end: datetime

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> RescheduleRequest:
        """Parse a schema-valid body. Raises: ValidationError (window)."""
        return RescheduleRequest(*parse_window(doc["start"], doc["end"]))


@dataclass(frozen=True, slots=True)
class CreateOfferRequest:
    """``POST /v1/offers``: a candidate link. Interviewers are lower-cased; zones are IANA names
    this host knows; ``expires_in_hours`` ``None``: the service's default."""

    interviewers: tuple[str, ...]
    duration_min: int
    window_start: datetime
    window_end: datetime
    candidate_name: str
    candidate_email: str = ""
    candidate_time_zone: str = "UTC"
    manager_time_zone: str = "UTC"
    show_interviewer_names: bool = False
    expires_in_hours: int | None = None
    conversation_ref: dict[str, Any] | None = None
    role: str = ""
    day_hours: tuple[int, int] = DEFAULT_DAY_HOURS
    loop_template: Mapping[str, Any] | None = None  # a loop link: inline, or
    loop_template_name: str | None = None  # a saved template's name

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> CreateOfferRequest:
        """Parse a schema-valid body: exactly one of interviewers+duration_min (one meeting) or
        loop_template / loop_template_name (a loop). Raises: ValidationError (the form, window,
        zones, day hours)."""
        loop = [k for k in ("loop_template", "loop_template_name") if k in doc]
        single = [k for k in ("interviewers", "duration_min") if k in doc]
        if len(loop) > 1 or (loop and single) or (not loop and len(single) != 2):
            raise ValidationError(
                "interviewers",
                "give interviewers and duration_min, or one of loop_template and loop_template_name",
            )
        start, end = parse_window(doc["window_start"], doc["window_end"])
        manager_zone = parse_zone("manager_time_zone", doc.get("manager_time_zone", "UTC"))
        candidate_zone = parse_zone("candidate_time_zone", doc.get("candidate_time_zone", "UTC"))
        day_hours = (
            int(doc.get("day_start_hour", DEFAULT_DAY_HOURS[0])),
            int(doc.get("day_end_hour", DEFAULT_DAY_HOURS[1])),
        )
        if day_hours[0] >= day_hours[1]:
            raise ValidationError("day_end_hour", "must be after day_start_hour")
        hours = doc.get("expires_in_hours")
        return CreateOfferRequest(
            interviewers=tuple(a.lower() for a in doc.get("interviewers", ())),
            duration_min=int(doc.get("duration_min", 0)),
            window_start=start,
            window_end=end,
            candidate_name=doc["candidate_name"],
            candidate_email=doc.get("candidate_email", ""),
            candidate_time_zone=candidate_zone,
            manager_time_zone=manager_zone,
            show_interviewer_names=bool(doc.get("show_interviewer_names", False)),
            expires_in_hours=None if hours is None else int(hours),
            conversation_ref=doc.get("conversation_ref"),
            role=str(doc.get("role", "")),
            day_hours=day_hours,
            loop_template=doc.get("loop_template"),
            loop_template_name=doc.get("loop_template_name"),
        )


@dataclass(frozen=True, slots=True)
class CandidateRequest:
    """``POST /v1/candidate/*``: the capability ``token`` and what the operation takes.

    ``start`` and ``time_zone`` stay as sent: they are checked against the offer, after the link
    itself, so that an unknown or dead link is refused (and audited) first.
    """

    token: str
    start: str | None = None
    email: str = ""
    time_zone: str | None = None
    option: str | None = None  # a loop link: the whole-loop option's id

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> CandidateRequest:
        """Parse a schema-valid body (``candidate_slots``, ``candidate_book``, ``candidate_change``)."""
        return CandidateRequest(
            doc["token"], doc.get("start"), doc.get("email", ""), doc.get("time_zone"), doc.get("option")
        )


# ---- the loop API (issue 17): templates and search, in `contract_loops` -----------------------
SCHEMAS |= LOOP_SCHEMAS

# ---- interviewer pools (issue 18: visibility and owner management; calendar_backend.pool_contract)
from calendar_backend.pool_contract import (  # noqa: E402
    MEMBER_ACTIONS as MEMBER_ACTIONS,
)
from calendar_backend.pool_contract import POOL_SCHEMAS  # noqa: E402
from calendar_backend.pool_contract import MemberLoadOut as MemberLoadOut  # noqa: E402
from calendar_backend.pool_contract import MyLoadOut as MyLoadOut  # noqa: E402
from calendar_backend.pool_contract import PoolCardOut as PoolCardOut  # noqa: E402
from calendar_backend.pool_contract import PoolLoadOut as PoolLoadOut  # noqa: E402
from calendar_backend.pool_contract import PoolMemberRequest as PoolMemberRequest  # noqa: E402
from calendar_backend.pool_contract import PoolSummaryOut as PoolSummaryOut  # noqa: E402
from calendar_backend.pool_contract import TraineeProgressOut as TraineeProgressOut  # noqa: E402
from calendar_backend.pool_contract import WeekLoadOut as WeekLoadOut  # noqa: E402

SCHEMAS.update(POOL_SCHEMAS)
