"""Booked interview loops from "My interviews": list them, cancel a loop, move it whole or one
session (the ``loop_manage``/``loop_cancel*``/``loop_move*`` verbs of :mod:`cards.loop_actions`).

Everything goes through the Calendar Service client with the presser's own token: the service
answers only the loops that user organised, so in a group chat anyone else who presses a button
gets a refusal, never someone else's loop. Presses are safe to repeat: a second "Yes, cancel the
loop" finds the loop already cancelled (the service's cancel is idempotent) and says so; a second
pick of the same move finds the loop already at those times and changes nothing. A pick carries
the new starts themselves (``option_id``), so the service re-checks them and a time taken since
the card was drawn answers 409, after which fresh options are shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo

from botbuilder.core import TurnContext

from calendar_backend import errors
from calendar_backend.contract import LoopOut, LoopSessionOut, PersonOut
from cards.loop_actions import LoopAction, LoopVerb
from cards.loop_booked import build_loop_notice
from cards.loop_manage import (
    ManagedLoop,
    ManagedSession,
    MoveOption,
    build_loop_cancel_question,
    build_loop_cancel_session,
    build_loop_cancelled,
    build_loop_detail,
    build_loop_move_options,
    build_loop_moved,
)
from cards.reconnect import build_reconnect
from cards.views import ZonePair
from dialogs.loop_client import LoopCalendarApi, loop_api
from dialogs.loop_search import api_of
from dialogs.loop_state import booked_loop_zones
from dialogs.parse import next_working_days
from dialogs.services import DialogServices, mailbox_zone
from dialogs.sso import require_user_token
from dialogs.views import zone_or_utc

Card = dict[str, object]
TITLE: Final = "Interview loop"
GONE: Final = "That interview loop is no longer booked."
NOT_YOURS: Final = "Only the organizer of this loop can change it. Ask them to do it from their own chat."
TAKEN: Final = "Sorry, that time was just taken. Here are fresh options."
STALE: Final = "That option is no longer valid. Here are fresh options."
MAX_OPTIONS: Final = 5
MAX_LOOKUPS: Final = 20
MANAGE_VERBS: Final = frozenset(
    {
        LoopVerb.MANAGE,
        LoopVerb.CANCEL,
        LoopVerb.CANCEL_CONFIRMED,
        LoopVerb.CANCEL_SESSION,
        LoopVerb.MOVE,
        LoopVerb.MOVE_SESSION,
        LoopVerb.MOVE_PICK,
        LoopVerb.MOVE_SESSION_PICK,
    }
)


# ---- the option id a pick carries: the moved sessions' new starts ---------------------------------
def encode_move(starts: Mapping[int, datetime]) -> str:
    """``{session index: new start}`` as an opaque id (``<index>-<UTC epoch minutes, hex>`` joined
    by ``.``; at most 8 sessions, well within 128 characters)."""
    return ".".join(f"{i}-{int(s.timestamp()) // 60:x}" for i, s in sorted(starts.items()))


def decode_move(option_id: str) -> dict[int, datetime] | None:
    """The starts ``encode_move`` wrote, or ``None`` for anything else."""
    starts: dict[int, datetime] = {}
    try:
        for part in option_id.split("."):
            index, minutes = part.split("-")
            starts[int(index)] = datetime.fromtimestamp(int(minutes, 16) * 60, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return starts or None


# ---- views ------------------------------------------------------------------------------------------
def _live(loop: LoopOut, now: datetime) -> bool:
    return loop.status == "confirmed" and bool(loop.sessions) and max(s.end for s in loop.sessions) > now


async def upcoming_loops(services: DialogServices, token: str) -> tuple[list[LoopOut], set[str]]:
    """The manager's upcoming booked loops, newest booked first, and the interview ids of every
    listed loop's sessions (so "My interviews" does not list them again as single interviews).
    A Calendar Service without loops answers none."""
    api = loop_api(services.calendar)
    if api is None:
        return [], set()
    try:
        loops = list(await api.list_loops(token) or ())
    except errors.ReconnectRequiredError:
        raise
    except errors.CalendarError:  # no loop routes (404) or a failure: the single interviews still show
        return [], set()
    session_ids = {s.interview_id for loop in loops for s in loop.sessions if s.interview_id}
    now = services.clock()
    return [loop for loop in reversed(loops) if _live(loop, now)], session_ids


def managed_loop(
    loop: LoopOut, zones: ZonePair, people: Mapping[str, PersonOut] | None = None
) -> ManagedLoop:
    """``loop`` as the cards show it; ``people`` (address → person) gives names and tells rooms
    apart; without it, addresses are not shown (only counted)."""
    known = people or {}
    sessions = []
    interviewers: set[str] = set()
    for s in loop.sessions:
        room = _room(s, known)
        humans = [a for a in s.interviewers if a.lower() != (room or "").lower()]
        interviewers.update(a.lower() for a in humans)
        sessions.append(
            ManagedSession(
                s.index,
                s.title,
                s.start,
                s.end,
                tuple(known[a.lower()].display_name for a in humans if a.lower() in known),
                known[room.lower()].display_name if room and room.lower() in known else None,
            )
        )
    return ManagedLoop(
        loop.id, loop.title, loop.candidate_name, tuple(sessions), zones, max(1, len(interviewers))
    )


def _room(session: LoopSessionOut, people: Mapping[str, PersonOut]) -> str | None:
    """The session's room: the service's ``room``, else the attendee the directory says is one."""
    if session.room:
        return session.room
    return next((a for a in session.interviewers if (p := people.get(a.lower())) and p.is_room), None)


async def loop_zones(context: TurnContext, services: DialogServices, zone: ZoneInfo) -> dict[str, ZonePair]:
    """The zones each loop this conversation booked is shown in (the candidate's when known)."""
    return {
        loop_id: ZonePair(zone, zone_or_utc(name))
        for loop_id, name in (await booked_loop_zones(context, services)).items()
    }


async def _people(services: DialogServices, token: str, loop: LoopOut) -> dict[str, PersonOut]:
    addresses = sorted({a.lower() for s in loop.sessions for a in (*s.interviewers, s.room or "") if a})
    try:
        found = await services.calendar.resolve_people(token, addresses[:MAX_LOOKUPS])
    except errors.CalendarError:
        return {}
    return {
        a: exact[0]
        for a, matches in zip(addresses, found, strict=False)
        if len(exact := [p for p in matches if p.address.lower() == a]) == 1
    }


# ---- presses ----------------------------------------------------------------------------------------
async def handle_loop_manage(context: TurnContext, services: DialogServices, action: LoopAction) -> Card:
    """The card replacing the pressed one. Never raises ``CalendarError``."""
    try:
        return await _dispatch(context, services, action)
    except errors.ReconnectRequiredError:
        return build_reconnect(action.flow)
    except errors.CalendarError as err:
        return build_loop_notice(TITLE, err.message)


def _refusal(context: TurnContext) -> Card:
    conversation = context.activity.conversation
    shared = conversation is not None and conversation.conversation_type not in (None, "personal")
    return build_loop_notice(TITLE, NOT_YOURS if shared else GONE)


async def _dispatch(context: TurnContext, services: DialogServices, action: LoopAction) -> Card:
    token = await require_user_token(context, services.connection)
    api = api_of(services)
    loop_id = action.loop_id or ""
    loop = next((x for x in await api.list_loops(token) if x.id == loop_id), None)
    zone = zone_or_utc(await mailbox_zone(context, services, token))
    zones = (await loop_zones(context, services, zone)).get(loop_id, ZonePair(zone, zone))
    if action.verb is LoopVerb.CANCEL_CONFIRMED and (loop is None or loop.status == "cancelled"):
        try:  # cancelled before, or not listed: the service's cancel is idempotent for its organizer
            done = await api.cancel_loop(token, loop_id)
        except errors.NotFoundError:
            return _refusal(context)
        return build_loop_cancelled(action.flow, managed_loop(done, zones), already=True)
    if loop is None or not _live(loop, services.clock()):
        return _refusal(context) if loop is None else build_loop_notice(TITLE, GONE)
    people = await _people(services, token, loop)
    view = managed_loop(loop, zones, people)
    session = view.session(action.session) if action.session is not None else None
    verb = action.verb
    if action.session is not None and session is None:
        return build_loop_detail(action.flow, view)
    if verb is LoopVerb.CANCEL:
        return build_loop_cancel_question(action.flow, view)
    if verb is LoopVerb.CANCEL_CONFIRMED:
        done = await api.cancel_loop(token, loop_id)
        return build_loop_cancelled(action.flow, managed_loop(done, zones, people))
    if verb is LoopVerb.CANCEL_SESSION and session is not None:
        return build_loop_cancel_session(action.flow, view, session)
    mover = _Mover(services, api, token, loop, view, people)
    if verb is LoopVerb.MOVE:
        return build_loop_move_options(action.flow, view, await mover.loop_options())
    if verb is LoopVerb.MOVE_SESSION and session is not None:
        return build_loop_move_options(
            action.flow, view, await mover.session_options(session), session=session
        )
    if verb in (LoopVerb.MOVE_PICK, LoopVerb.MOVE_SESSION_PICK):
        return await mover.pick(action.flow, action.option_id or "", session)
    return build_loop_detail(action.flow, view)


MAX_BREAK: Final = timedelta(minutes=240)  # the longest break a moved loop may have (loop_booking)


def _breaks_ok(times: list[tuple[datetime, datetime]]) -> bool:
    """No break longer than ``MAX_BREAK`` between sessions that follow each other on one day."""
    ordered = sorted(times)
    return all(b[0] - a[1] <= MAX_BREAK or b[0].date() != a[1].date() for a, b in pairwise(ordered))


class _Mover:
    """New times for one loop, and the move itself."""

    def __init__(
        self,
        services: DialogServices,
        api: LoopCalendarApi,
        token: str,
        loop: LoopOut,
        view: ManagedLoop,
        people: Mapping[str, PersonOut],
    ) -> None:
        self._services, self._api, self._token = services, api, token
        self._loop, self._view, self._people = loop, view, people

    def _window(self) -> tuple[datetime, datetime]:
        zone = self._view.zones.manager
        today = self._services.clock().astimezone(zone).date()
        first, last = next_working_days(today)
        start = datetime.combine(first, time(0), zone).astimezone(UTC)
        return start, datetime.combine(last + timedelta(days=1), time(0), zone).astimezone(UTC)

    def _template(self) -> dict[str, object]:
        """The booked loop as a template: its sessions, people and rooms, in its order, with breaks
        no longer than its own (at least 15 min) and on as many days as it spans."""
        ordered = sorted(self._loop.sessions, key=lambda s: s.start)
        gaps = [int((b.start - a.end).total_seconds() // 60) for a, b in pairwise(ordered)]
        days = {s.start.astimezone(self._view.zones.manager).date() for s in ordered}
        sessions: list[dict[str, object]] = []
        for s in ordered:
            room = _room(s, self._people)
            entry: dict[str, object] = {
                "title": s.title,
                "minutes": int((s.end - s.start).total_seconds() // 60),
                "interviewers": [a for a in s.interviewers if a.lower() != (room or "").lower()],
            }
            if room:
                entry["room"] = {"any_of": [room]}
            sessions.append(entry)
        return {
            "name": self._loop.title,
            "order": "fixed",
            "breaks": {"min_minutes": 0, "max_minutes": min(240, max([15, *gaps]))},
            "max_days": max(1, len(days)),
            "sessions": sessions,
        }

    def _option(self, starts: Mapping[int, datetime]) -> MoveOption:
        moved = tuple(
            ManagedSession(s.index, s.title, starts[s.index], starts[s.index] + (s.end - s.start))
            for s in sorted(self._view.sessions, key=lambda s: starts.get(s.index, s.start))
            if s.index in starts
        )
        return MoveOption(encode_move(starts), moved)

    def _current(self) -> dict[int, datetime]:
        return {s.index: s.start for s in self._loop.sessions}

    async def loop_options(self, fresh: object = None) -> list[MoveOption]:
        """Whole-loop options: the 409's ``fresh`` ones when given, else a new search."""
        if fresh is None:
            start, end = self._window()
            fresh = await self._api.search_loops(
                self._token,
                template=self._template(),
                start=start,
                end=end,
                candidate_time_zone=self._view.zones.candidate.key,
                limit=MAX_OPTIONS + 1,
            )
        ordered = sorted(self._loop.sessions, key=lambda s: s.start)  # the template's order
        options = []
        for option in getattr(fresh, "options", ()):
            starts = {ordered[s.index].index: s.start for s in option.sessions if 0 <= s.index < len(ordered)}
            if set(starts) == set(self._current()) and starts != self._current():
                options.append(self._option(starts))
        return options[:MAX_OPTIONS]

    async def session_options(self, session: ManagedSession) -> list[MoveOption]:
        """Other times for one session on its own day that overlap none of the loop's others."""
        booked = next(s for s in self._loop.sessions if s.index == session.index)
        zone = self._view.zones.manager
        day = booked.start.astimezone(zone).date()
        start = max(self._services.clock(), datetime.combine(day, time(0), zone).astimezone(UTC))
        end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
        if start >= end:
            return []
        room = _room(booked, self._people)
        length = booked.end - booked.start
        result = await self._services.calendar.find_slots(
            self._token,
            interviewers=[a for a in booked.interviewers if a.lower() != (room or "").lower()],
            duration_min=int(length.total_seconds() // 60),
            start=start,
            end=end,
            rooms=[room] if room else None,
            limit=20,
            candidate_time_zone=self._view.zones.candidate.key,
        )
        others = [s for s in self._loop.sessions if s.index != session.index]
        fits = [
            slot.start
            for slot in result.slots
            if slot.start != booked.start
            and not any(slot.start < o.end and o.start < slot.start + length for o in others)
            and _breaks_ok([(o.start, o.end) for o in others] + [(slot.start, slot.start + length)])
        ]
        return [self._option({session.index: at}) for at in fits[:MAX_OPTIONS]]

    async def _fresh(self, session: ManagedSession | None, fresh: object = None) -> list[MoveOption]:
        if session is not None:
            return await self.session_options(session)
        return await self.loop_options(fresh)

    async def pick(self, flow: str, option_id: str, session: ManagedSession | None) -> Card:
        """Move to the picked times; already there: say so; taken since: fresh options."""
        starts = decode_move(option_id)
        current = self._current()
        allowed = {session.index} if session is not None else set(current)
        if starts is None or not set(starts) <= allowed:
            options = await self._fresh(session)
            return build_loop_move_options(flow, self._view, options, session=session, problem=STALE)
        if all(current[i] == at for i, at in starts.items()):
            return build_loop_moved(flow, self._view, already=True)
        moved = [
            LoopSessionOut(
                s.index,
                s.title,
                starts[s.index],
                starts[s.index] + (s.end - s.start),
                tuple(a for a in s.interviewers if a.lower() != (_room(s, self._people) or "").lower()),
                _room(s, self._people),
            )
            for s in self._loop.sessions
            if s.index in starts
        ]
        try:
            done = await self._api.reschedule_loop(self._token, self._loop.id, moved)
        except errors.SlotTakenError as exc:
            options = await self._fresh(session, exc.fresh_loops)
            return build_loop_move_options(flow, self._view, options, session=session, problem=TAKEN)
        return build_loop_moved(flow, managed_loop(done, self._view.zones, self._people))


def loop_entries_zones(
    loops: Sequence[LoopOut], zones: Mapping[str, ZonePair], zone: ZoneInfo
) -> list[ManagedLoop]:
    """The list card's view of ``loops`` (no names: the list shows counts only)."""
    return [managed_loop(loop, zones.get(loop.id, ZonePair(zone, zone))) for loop in loops]
