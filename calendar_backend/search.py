"""Slot search: the slot engine on calendars read just in time (DESIGN.md "Slot semantics").

`SlotSearch.find_slots` is the manager's search; `open_slots` is the engine every use case shares
(candidate links, loops and pools to come); `require_offered` decides whether a wanted time is one
the engine would offer now (booking and moving); `fresh_options` is what a `SlotTakenError`
carries; `unreserved` drops the times OpenSlot's own reservations hold. Calendars are read, mapped
(`calendar_view`), searched and forgotten: nothing of them is kept. Every read writes one audit row.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.availability import (
    BusyRules,
    PersonAvailability,
    SlotQuery,
    find_panel_slots,
    free_time,
)
from calendar_backend.calendar_view import (
    CalendarRead,
    availability_of,
    read_availability,
    read_calendars,
    zone_known,
)
from calendar_backend.contract import BlockerOut, FindSlotsRequest, PersonOut, SlotOut, SlotsResult
from calendar_backend.errors import CalendarError, SlotTakenError, ValidationError
from calendar_backend.graph import CallStats, GraphClient, Schedule
from calendar_backend.settings import BackendSettings
from calendar_backend.slots import CandidateDay, Interval, candidate_first
from calendar_backend.tenancy import Tenancy

FRESH_OPTIONS = 5  # how many fresh times a slot-taken answer offers at most


@dataclass(frozen=True, slots=True)
class AvailabilityRead:
    """One availability read: every mailbox as a person or room (in the order asked), the
    availability of each readable one (by lower-cased address), and those that could not be read."""

    people: tuple[PersonOut, ...]
    availability: dict[str, PersonAvailability]
    unreadable: tuple[str, ...]


class SlotSearch:
    """Slot search use cases. Safe to use concurrently."""

    def __init__(
        self,
        settings: BackendSettings,
        store: storage.Store,
        graph: GraphClient,
        tenancy: Tenancy,
        rules: BusyRules,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._store = store
        self._graph = graph
        self._tenancy = tenancy
        self._rules = rules
        self._clock = clock

    async def find_slots(
        self, principal: Principal, assertion: str, req: FindSlotsRequest, request_id: str
    ) -> SlotsResult:
        """Open slots for a panel, best first (or all, chronological); see DESIGN.md semantics.

        A mailbox the allow-list refuses, or that cannot be read, is named as a blocker (no
        slots); any other refusal of the mailbox gate is raised.
        """
        ctx = await self._tenancy.context(principal)
        people, rooms = list(req.interviewers), list(req.rooms)
        refusal = await self._tenancy.check_mailboxes(principal, ctx, "slots.find", request_id, people, rooms)
        if refusal is not None:
            if refusal.rule.value not in {"not_allowed", "unreadable"}:
                raise refusal.error()
            return SlotsResult((), (), tuple(BlockerOut(a, refusal.rule.value) for a in refusal.mailboxes))
        token = await self._tenancy.user_token(principal, ctx, assertion)
        notice = (
            req.notice if req.notice is not None else timedelta(minutes=self._settings.default_notice_min)
        )
        result = await self.open_slots(
            principal,
            token,
            people,
            rooms,
            req.start,
            req.end,
            duration=req.duration,
            step=req.step,
            buffer=req.buffer,
            notice=notice,
            want_all=req.want_all,
            limit=req.limit,
            request_id=request_id,
            operation="slots.find",
            requester=None,
            limit_after=req.candidate_day is not None,
        )
        if req.candidate_day is None:
            return result
        return candidate_ordered(result, req.candidate_day, req.want_all, req.limit)

    async def open_slots(
        self,
        principal: Principal | None,
        token: str,
        people: list[str],
        rooms: list[str],
        start: datetime,
        end: datetime,
        *,
        duration: timedelta,
        step: timedelta,
        buffer: timedelta,
        notice: timedelta,
        want_all: bool,
        limit: int,
        request_id: str,
        operation: str,
        requester: str | None,
        tenant_id: str | None = None,
        ignore: tuple[datetime, datetime] | None = None,
        unbusy: list[tuple[SlotOut, ...]] | None = None,
        limit_after: bool = False,
    ) -> SlotsResult:
        """The slot engine on freshly read calendars (the mailbox gate must have been asked).

        ``ignore``: the exact span of an interview being moved, whose own event must not block
        its new time. ``unbusy``: receives the slots the same query gives when nobody's busy time
        counts (to tell "taken" from "never offered"). An unreadable calendar gives no slots and
        is named (fail closed).

        Raises:
            CalendarError: Graph failed (audited).
        """
        mailboxes = people + rooms
        fetch = Interval(start - buffer - timedelta(days=1), end + buffer + timedelta(days=1))
        read = await self.read_availability(
            principal,
            token,
            people,
            rooms,
            fetch,
            request_id=request_id,
            operation=operation,
            requester=requester,
            tenant_id=tenant_id,
            ignore=ignore,
        )
        if read.unreadable:  # fail closed: never treat an unreadable calendar as free
            return SlotsResult((), read.people, tuple(BlockerOut(a, "unreadable") for a in read.unreadable))
        availabilities = [read.availability[a.lower()] for a in mailboxes]
        query = SlotQuery(
            window=Interval(start, end),
            duration=duration,
            step=step,
            not_before=self._clock() + notice,
            buffer=buffer,
        )
        result = find_panel_slots(availabilities, query, self._rules)
        if unbusy is not None:
            free = [dataclasses.replace(a, blocks=(), all_day=()) for a in availabilities]
            unbusy.append(
                tuple(SlotOut(s.start, s.end) for s in find_panel_slots(free, query, self._rules).slots)
            )
        chosen = result.slots if want_all else result.ranked[: None if limit_after else limit]
        blockers = tuple(BlockerOut(b.mailbox, str(b.reason)) for b in result.blockers)
        return SlotsResult(tuple(SlotOut(s.start, s.end) for s in chosen), read.people, blockers)

    async def read_availability(
        self,
        principal: Principal | None,
        token: str,
        people: list[str],
        rooms: list[str],
        fetch: Interval,
        *,
        request_id: str,
        operation: str,
        requester: str | None,
        tenant_id: str | None = None,
        ignore: tuple[datetime, datetime] | None = None,
    ) -> AvailabilityRead:
        """Read the calendars of ``people`` and ``rooms`` over ``fetch`` in ONE availability read
        (the configured source: getSchedule, one Graph request per 20 mailboxes, chunks in
        parallel; or calendarView) and write its one audit row (the mailbox gate must have been
        asked). A calendar that cannot be read (or whose zone is unknown) is listed in
        ``unreadable`` and has no availability: it is never free.

        Raises:
            CalendarError: Graph failed (audited).
        """
        stats = CallStats()
        mailboxes = people + rooms
        tid = tenant_id or (principal.tenant_id if principal else "-")
        reads: dict[str, CalendarRead] | None = None
        try:
            if self._settings.availability_source == "calendar_view":
                reads = await read_calendars(
                    self._graph,
                    token,
                    requester or mailboxes[0],
                    mailboxes,
                    fetch.start,
                    fetch.end,
                    stats=stats,
                )
                schedules = {key: read.schedule for key, read in reads.items()}
            else:
                schedules = await self._graph.get_schedules(
                    token, requester or mailboxes[0], mailboxes, fetch.start, fetch.end, stats=stats
                )
        except CalendarError as exc:
            await self._tenancy.audit(
                principal, tid, operation, mailboxes, f"error:{exc.code}", request_id, stats
            )
            raise
        if ignore is not None:
            schedules, reads = _without(schedules, reads, ignore)
        unreadable = tuple(
            a
            for a in mailboxes
            if schedules[a.lower()].error or not zone_known(schedules[a.lower()], is_room=a in rooms)
        )
        # The audit row is written (database thread) while the calendars are mapped (pure CPU).
        audit = asyncio.ensure_future(
            self._tenancy.audit(
                principal, tid, operation, mailboxes, "partial" if unreadable else "ok", request_id, stats
            )
        )
        try:
            out_people = tuple(_person_out(schedules[a.lower()], a in rooms) for a in mailboxes)
            availability = {
                a.lower(): availability_of(schedules[a.lower()], is_room=a in rooms)
                if reads is None
                else read_availability(reads[a.lower()], a in rooms)
                for a in mailboxes
                if a not in unreadable
            }
        finally:
            await audit
        return AvailabilityRead(out_people, availability, unreadable)

    async def free_of(
        self,
        principal: Principal | None,
        token: str,
        people: list[str],
        rooms: list[str],
        window: Interval,
        *,
        request_id: str,
        operation: str,
        requester: str | None,
        tenant_id: str,
        ignore: tuple[datetime, datetime] | None = None,
    ) -> dict[str, tuple[Interval, ...]]:
        """Each mailbox's free time in ``window`` (working hours minus busy time), read now the
        way `open_slots` reads (one availability read, audited): the loop engine's input.

        Raises:
            SlotTakenError: a calendar could not be read (fail closed). CalendarError: Graph failed.
        """
        mailboxes = people + rooms
        stats = CallStats()
        try:
            schedules = await self._graph.get_schedules(
                token,
                requester or mailboxes[0],
                mailboxes,
                window.start - timedelta(days=1),
                window.end + timedelta(days=1),
                stats=stats,
            )
        except CalendarError as exc:
            await self._tenancy.audit(
                principal, tenant_id, operation, mailboxes, f"error:{exc.code}", request_id, stats
            )
            raise
        if ignore is not None:
            schedules, _ = _without(schedules, None, ignore)
        unreadable = [
            a
            for a in mailboxes
            if schedules[a.lower()].error or not zone_known(schedules[a.lower()], is_room=a in rooms)
        ]
        result = "partial" if unreadable else "ok"
        await self._tenancy.audit(principal, tenant_id, operation, mailboxes, result, request_id, stats)
        if unreadable:
            raise SlotTakenError()
        query = SlotQuery(
            window=window, duration=timedelta(minutes=5), step=timedelta(minutes=5), not_before=window.start
        )
        return {
            a.lower(): free_time(
                availability_of(schedules[a.lower()], is_room=a in rooms), query, self._rules
            )
            for a in mailboxes
        }

    async def require_offered(
        self,
        principal: Principal | None,
        token: str,
        people: list[str],
        rooms: list[str],
        start: datetime,
        end: datetime,
        *,
        step: timedelta,
        notice: timedelta,
        request_id: str,
        operation: str,
        requester: str | None,
        tenant_id: str,
        ignore: tuple[datetime, datetime] | None = None,
    ) -> None:
        """A booking must be a slot the engine would offer now (issue 12 finding 8): working
        hours, grid, window, notice and busy time, decided by the same code that offers slots
        (`open_slots`), on calendars read now.

        Raises:
            ValidationError: ``start`` is never offered (hours, grid, window, notice; field
            ``start``). SlotTakenError: it would be, but someone is busy then (or a calendar
            could not be read).
        """
        unbusy: list[tuple[SlotOut, ...]] = []
        found = await self.open_slots(
            principal,
            token,
            people,
            rooms,
            start,
            end,
            duration=end - start,
            step=step,
            buffer=timedelta(0),
            notice=notice,
            want_all=True,
            limit=1,
            request_id=request_id,
            operation=operation,
            requester=requester,
            tenant_id=tenant_id,
            ignore=ignore,
            unbusy=unbusy,
        )
        wanted = SlotOut(start, end)
        if wanted in found.slots:
            return
        if any(b.reason == "unreadable" for b in found.blockers) or any(wanted in u for u in unbusy):
            raise SlotTakenError()
        raise ValidationError("start", "is not one of the offered times")

    async def fresh_options(
        self,
        principal: Principal,
        token: str,
        panel: tuple[list[str], list[str]],
        start: datetime,
        end: datetime,
        request_id: str,
        candidate_email: str = "",
    ) -> SlotsResult | None:
        """Up to 5 fresh options near a wanted time that was taken (best effort, for
        `SlotTakenError.fresh`).

        The options also avoid every pending/confirmed OpenSlot booking of these mailboxes and of
        the candidate (a booking that just won the race may not be in Graph yet): exactly the
        mailboxes the booking's own overlap check uses, so a fresh time is never one it refuses.
        Never raises: on any failure the answer is ``None``.
        """
        now = self._clock() + timedelta(minutes=self._settings.default_notice_min)
        lo, hi = max(now, start - timedelta(hours=12)), end + timedelta(days=3)
        people, rooms = panel
        try:
            fresh = await self.open_slots(
                principal,
                token,
                people,
                rooms,
                lo,
                hi,
                duration=end - start,
                step=timedelta(minutes=15),
                buffer=timedelta(0),
                notice=lo - self._clock(),
                want_all=False,
                limit=20,
                request_id=request_id,
                operation="slots.fresh",
                requester=None,
            )
            free = await self.unreserved(
                principal.tenant_id,
                [*people, *rooms, *([candidate_email] if candidate_email else [])],
                fresh,
                lo,
                hi,
            )
        except CalendarError:
            return None
        return SlotsResult(free.slots[:FRESH_OPTIONS], free.people, free.blockers)

    async def unreserved(
        self, tenant_id: str, mailboxes: list[str], found: SlotsResult, lo: datetime, hi: datetime
    ) -> SlotsResult:
        """``found`` without the slots that overlap a pending/confirmed OpenSlot reservation of
        ``mailboxes`` (a booking or a move's hold not in Outlook yet): the same per-attendee
        overlap check the booking runs, so an offered time is never one it refuses."""
        async with self._store.transaction() as tx:
            taken = await storage.find_conflicts(tx, tenant_id, mailboxes, lo, hi)
        if not taken:
            return found
        slots = tuple(s for s in found.slots if not any(t.start < s.end and s.start < t.end for t in taken))
        return SlotsResult(slots, found.people, found.blockers)


def candidate_ordered(result: SlotsResult, day: CandidateDay, want_all: bool, limit: int) -> SlotsResult:
    """Slots inside the candidate's day first (best-first order kept), the rest marked; with
    ``all`` the order stays chronological and only the marks are added."""
    by_interval = {Interval(s.start, s.end): s for s in result.slots}
    inside, outside = candidate_first(list(by_interval), day)
    marked = {i: not day.contains(i) for i in by_interval}
    order = list(by_interval) if want_all else [*inside, *outside][:limit]
    return SlotsResult(
        tuple(SlotOut(i.start, i.end, marked[i]) for i in order), result.people, result.blockers
    )


def _person_out(schedule: Schedule, is_room: bool) -> PersonOut:
    zone = ""
    if schedule.working_hours:
        zone = str((schedule.working_hours.get("timeZone") or {}).get("name", ""))
    return PersonOut(schedule.address.lower(), schedule.address.lower(), zone, is_room)


def _without(
    schedules: dict[str, Schedule], reads: dict[str, CalendarRead] | None, span: tuple[datetime, datetime]
) -> tuple[dict[str, Schedule], dict[str, CalendarRead] | None]:
    """The calendars without items of exactly ``span`` (the interview being moved)."""
    lo, hi = span
    out = {
        k: dataclasses.replace(v, items=tuple(i for i in v.items if (i.start, i.end) != (lo, hi)))
        for k, v in schedules.items()
    }
    if reads is None:
        return out, None
    return out, {
        k: dataclasses.replace(
            v,
            schedule=out[k],
            blocks=tuple(b for b in v.blocks if (b.interval.start, b.interval.end) != (lo, hi)),
        )
        for k, v in reads.items()
    }
