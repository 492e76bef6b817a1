"""Would the loop search still offer this option now? (`require_loop_offered`)

The loop engine on calendars read now, every session pinned to its wanted time and room: the
booking's "the option must still be offered" rule (loop_booking) and the candidate link's
(candidate_loops), like `search.SlotSearch.require_offered` for one meeting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.errors import (
    SlotTakenError,
    ValidationError,
)
from calendar_backend.loop_contract import (
    SessionTime,
)
from calendar_backend.loop_templates import (
    LoopTemplate,
    LoopTemplateError,
    RoomInfo,
    resolve_rooms,
    to_loop_spec,
)
from calendar_backend.loops import MAX_OPTIONS, LoopSpec, find_loops
from calendar_backend.search import SlotSearch
from calendar_backend.slots import Interval, merge
from calendar_backend.timezones import zone_or_utc

STEP = timedelta(minutes=5)  # the finest grid a loop search may use: every offered start is on it


def panel_of(template: LoopTemplate, sessions: Sequence[SessionTime]) -> tuple[list[str], list[str]]:
    """Every interviewer and every chosen room of ``sessions``, each once.

    Raises:
        ValidationError: a session index the template lacks, a room where none is wanted (or
        none where one is), a room not in the session's list.
    """
    people: list[str] = []
    rooms: list[str] = []
    for s in sessions:
        if not 0 <= s.index < len(template.sessions):
            raise ValidationError("sessions", "names a session the template does not have")
        need = template.sessions[s.index].room
        if (need is None) != (s.room is None) or (need and need.any_of and s.room not in need.any_of):
            raise ValidationError("sessions", "names a room the session does not ask for")
        people += [a for a in template.sessions[s.index].interviewers if a not in people]
        rooms += [s.room] if s.room and s.room not in rooms else []
    return people, rooms


async def require_loop_offered(
    search: SlotSearch,
    principal: Principal | None,
    token: str,
    template: LoopTemplate,
    sessions: Sequence[SessionTime],
    *,
    now: datetime,
    zone: str | None,
    candidate_zone: str | None,
    request_id: str,
    requester: str,
    tenant_id: str,
    own: Sequence[storage.InterviewRow] = (),
    directory: Sequence[RoomInfo] | None = None,
) -> None:
    """Whether the search would still offer ``sessions`` (the whole loop) now: the loop engine
    (`loops.find_loops`: working hours, free time, rooms, order, breaks, days, local windows,
    notice) on calendars read now, with every session pinned to its wanted time and room.
    ``own``: the loop's own booked sessions (a reschedule), whose time counts as free. ``zone``:
    the loop's (the manager's mailbox zone, as the search uses; UTC when unknown). ``directory``:
    the tenant's rooms (Graph ``/places``), needed when a session asks for a room by capacity or
    building: the chosen room must still satisfy that need (as the search resolves it).

    Raises:
        SlotTakenError: someone (or a room) is busy or unreadable then. ValidationError: the
        sessions break the template's rules (or lie in the past).
    """
    people, rooms = panel_of(template, sessions)
    if len(sessions) != len(template.sessions):
        raise ValidationError("sessions", "must name every session of the template once")
    _require_room_needs(template, sessions, directory)
    if min(s.start for s in sessions) < now:
        raise ValidationError("start", "is in the past")
    window = Interval(min(s.start for s in sessions), max(s.end for s in sessions))
    free: dict[str, tuple[Interval, ...]] = {}
    if people or rooms:
        free = await search.free_of(
            principal, token, people, rooms, window, request_id=request_id,
            operation="loop.offered", requester=requester, tenant_id=tenant_id,
        )  # fmt: skip
    for row in own:  # the loop's own sessions do not block their people (a move)
        for mailbox in {a.lower() for a in row.attendees} & set(free):
            free[mailbox] = merge([*free[mailbox], Interval(row.start, row.end)])
    pinned = {}
    for s in sessions:  # a pseudo mailbox per session, free exactly then: every session is pinned
        pin = f"session-{s.index}@loop.invalid"
        pinned[s.index] = pin
        free[pin] = (Interval(s.start, s.end),)
    infos = [  # the chosen rooms, as the template's needs ask (the directory's own check: the gate)
        RoomInfo(s.room, need.min_capacity, need.building)
        for s in sessions
        if s.room and (need := template.sessions[s.index].room) is not None
    ]
    spec = to_loop_spec(
        template,
        zone=zone_or_utc(zone or "UTC"),
        window=window,
        not_before=now,
        candidate_zone=zone_or_utc(candidate_zone) if candidate_zone else None,
        rooms=infos,
        step=STEP,
    )
    spec = _pinned(spec, sessions, pinned)
    result = find_loops(spec, free, MAX_OPTIONS)
    wanted = {(s.index, s.start, s.end, s.room) for s in sessions}
    if any({(p.session, p.start, p.end, p.room) for p in o.placements} == wanted for o in result.schedules):
        return
    if any(e.reason.value in {"not_free", "no_common_time", "no_room"} for e in result.explanations):
        raise SlotTakenError()
    raise ValidationError("sessions", "are not one of the offered loop options")


def needs_directory(template: LoopTemplate) -> bool:
    """Whether a session asks for a room by capacity or building (not from a list)."""
    return any(s.room is not None and not s.room.any_of for s in template.sessions)


def _require_room_needs(
    template: LoopTemplate, sessions: Sequence[SessionTime], directory: Sequence[RoomInfo] | None
) -> None:
    """Every room chosen for a capacity/building need still satisfies it in ``directory``.

    Raises:
        SlotTakenError: a chosen room no longer fits (it shrank, moved or left the room list).
    """
    if not needs_directory(template):
        return
    if directory is None:
        raise ValueError("a capacity/building room need is checked against the room directory")
    try:
        lists = resolve_rooms(template, directory)
    except LoopTemplateError as exc:
        raise SlotTakenError() from exc
    for s in sessions:
        need = template.sessions[s.index].room
        if need is not None and not need.any_of and (s.room or "").lower() not in lists[s.index]:
            raise SlotTakenError()


def _pinned(spec: LoopSpec, sessions: Sequence[SessionTime], pinned: Mapping[int, str]) -> LoopSpec:
    chosen = {s.index: s for s in sessions}
    out = tuple(
        replace(
            sess,
            interviewers=(*sess.interviewers, pinned[i]),
            rooms=tuple(r for r in (chosen[i].room,) if r),
        )
        for i, sess in enumerate(spec.sessions)
    )
    return replace(spec, sessions=out)
