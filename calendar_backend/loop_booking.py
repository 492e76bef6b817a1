"""Interview loops booked by the manager: book (all sessions or none), list, cancel, reschedule.

On `booking.Bookings` (the only Graph event-write path) and `search.SlotSearch` (the availability
read), like `interviews`. Booking a loop (``POST /v1/loops``):

1. lock 2, the mailbox gate for every person and room (static, then the delegated probe);
2. the option must still be one the search would offer now (`loop_recheck.require_loop_offered`:
   the loop engine on calendars read now, every session pinned to its wanted time and room);
3. **reserve**: the loop and one ``pending`` interview per session in ONE transaction under the
   per-tenant booking lock (`storage.reserve_loop`; any overlap → `SlotTakenError`, nothing kept);
4. **recheck** each session live, then **write** one Outlook event per session through
   `Bookings.create` (deterministic transactionId ``<loop txn>-s<index>``; the first event is the
   loop's one Teams meeting, its join URL reused by the others; the candidate's own invite per
   session as for single bookings); then **confirm** the loop (`storage.confirm_loop`).
5. Any failure withdraws: the sessions already written are cancelled (`Bookings.cancel`), the
   reservations not yet written are failed, and the loop is ``failed``. When unsure (an undo
   fails) the loop stays ``pending`` and `calendar_backend.recovery` settles it: a loop whose
   every session is confirmed is confirmed, any other is withdrawn (`settle_loop`).

Crash points (tests/reliability/test_loop_crash.py): ``loop_after_reserve``,
``loop_after_session_<k>`` (k sessions written and confirmed), ``loop_before_confirm``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.booking import Bookings, CandidateInvite, Writer, candidate_address
from calendar_backend.contract import LoopOptionOut, LoopSearchOut, SearchLoopsRequest
from calendar_backend.directory import Directory
from calendar_backend.errors import (
    CalendarError,
    CapReachedError,
    ConflictError,
    NotFoundError,
    SlotTakenError,
    ValidationError,
)
from calendar_backend.gate import Probe
from calendar_backend.invites import panel_event
from calendar_backend.loop_contract import (
    BookLoopRequest,
    LoopOut,
    LoopSessionOut,
    RescheduleLoopRequest,
    SessionTime,
)
from calendar_backend.loop_pools import LOAD_MARGIN, effective_template, reserve_seats
from calendar_backend.loop_recheck import needs_directory, panel_of, require_loop_offered
from calendar_backend.loop_search import LoopSearch
from calendar_backend.loop_templates import (
    LoopTemplate,
    LoopTemplateError,
    parse_template,
)
from calendar_backend.pools_selection import CapOverride
from calendar_backend.search import SlotSearch
from calendar_backend.tenancy import Tenancy, TenantContext

_NAMESPACE = uuid.UUID("0c2b7c8e-5f7e-4d2a-9a51-4c6f0f1d7a17")
_LIVE = ("pending", "confirmed")


FRESH_LOOPS = 5  # whole-loop options a 409 offers instead


def session_transaction_id(loop_txn: str, index: int) -> str:
    """A session event's Graph ``transactionId``: the loop's, ``-s<index>``."""
    return f"{loop_txn}-s{index}"


def template_of(raw: Mapping[str, Any]) -> LoopTemplate:
    """The request's template. Raises: ValidationError (field ``template``, every problem named)."""
    try:
        return parse_template(raw)
    except LoopTemplateError as exc:
        raise ValidationError("template", "; ".join(p.message for p in exc.problems)[:300]) from exc


class LoopBookings:
    """The manager's loop use cases. Safe to use concurrently."""

    def __init__(
        self,
        store: storage.Store,
        tenancy: Tenancy,
        directory: Directory,
        search: SlotSearch,
        bookings: Bookings,
        clock: Callable[[], datetime],
        crash_point: Callable[[str], None],
        loop_search: LoopSearch | None = None,
    ) -> None:
        self._loop_search = loop_search  # fresh loop options for a 409 (None: none offered)
        self._store = store
        self._tenancy = tenancy
        self._directory = directory
        self._search = search
        self._bookings = bookings
        self._clock = clock
        self._crash_point = crash_point

    @property
    def loop_search(self) -> LoopSearch | None:
        """The loop search (a candidate loop link's pooled options, `candidate_loops`)."""
        return self._loop_search

    async def book(
        self, principal: Principal, assertion: str, req: BookLoopRequest, request_id: str
    ) -> LoopOut:
        """Book every session of the loop or none (module docstring); a 409 carries up to 5 fresh
        whole-loop options near the taken one in ``SlotTakenError.fresh_loops`` (best effort).

        Raises:
            ValidationError: a bad template, sessions the template lacks, or not an offered option.
            SlotTakenError: a session's time is taken. ConflictError: the transaction id names
            another loop, or this one is still being booked. The Graph error (withdrawn).
        """
        try:
            return await self._book(principal, assertion, req, request_id)
        except SlotTakenError as exc:
            if exc.fresh_loops is None:
                exc.fresh_loops = await self._fresh_loops(principal, assertion, req, request_id)
            raise

    async def _fresh_loops(
        self, principal: Principal, assertion: str, req: BookLoopRequest, request_id: str
    ) -> LoopSearchOut | None:
        """Up to 5 loop options from 12 h before the taken loop to 3 days after it (the loop
        search, as the manager would search again), without those that overlap a pending or
        confirmed OpenSlot reservation of their people, room or candidate (the race's winner may
        not be in Outlook yet). Never raises: ``None`` on any failure."""
        if self._loop_search is None or not req.sessions:
            return None
        lo = max(self._clock(), min(s.start for s in req.sessions) - timedelta(hours=12))
        hi = max(s.end for s in req.sessions) + timedelta(days=3)
        ask = SearchLoopsRequest(dict(req.template), None, lo, hi, req.candidate_time_zone, FRESH_LOOPS)
        try:
            found = await self._loop_search.search(principal, assertion, ask, request_id)
            mailboxes = {a for o in found.options for s in o.sessions for a in (*s.interviewers, s.room) if a}
            async with self._store.transaction() as tx:
                taken = await storage.find_conflicts(
                    tx, principal.tenant_id, [*mailboxes, req.candidate_email], lo, hi
                )
        except CalendarError:
            return None
        candidate = req.candidate_email.lower()

        def free(o: LoopOptionOut) -> bool:
            return not any(
                t.start < s.end
                and s.start < t.end
                and {a.lower() for a in t.attendees}
                & {*s.interviewers, *([s.room] if s.room else []), candidate}
                for s in o.sessions
                for t in taken
            )

        return replace(found, options=tuple(o for o in found.options if free(o)))

    async def _book(
        self, principal: Principal, assertion: str, req: BookLoopRequest, request_id: str
    ) -> LoopOut:
        """Book every session of the loop or none (module docstring).

        Raises:
            ValidationError: a bad template, sessions the template lacks, or not an offered option.
            SlotTakenError: a session's time is taken. ConflictError: the transaction id names
            another loop, or this one is still being booked. The Graph error (withdrawn).
        """
        source = template_of(req.template)
        template = effective_template(source, req.pool_picks)  # a pooled session's picks on its panel
        people, rooms = panel_of(template, req.sessions)
        ctx = await self._tenancy.context(principal)
        await self._gate(principal, ctx, "loop.create", request_id, people, rooms)
        token = await self._tenancy.user_token(principal, ctx, assertion)
        organizer, organizer_name = await self._directory.organizer(token)
        first = min(s.start for s in req.sessions)
        probe = Probe(token, organizer, first)
        await self._gate(principal, ctx, "loop.create", request_id, people, rooms, probe)
        writer = Writer(principal, principal.tenant_id, token, organizer, request_id)
        outside = await self._outside(principal, ctx, req, request_id)  # opted-in tenants (issue 18)
        live = await self._loop_search.live_pools(ctx, source) if self._loop_search else {}  # groups, now
        return await self.book_as(
            writer, principal.oid, organizer_name, template, req,
            lambda: self._directory.mailbox_zone(token), source=source, outside=outside, live=live,
        )  # fmt: skip

    async def _outside(
        self, principal: Principal, ctx: TenantContext, req: BookLoopRequest, request_id: str
    ) -> dict[str, list[datetime]]:
        """Picked pool members' outside "Interview" events around the loop (pools_outside.py),
        read before the reservation transaction; ``{}`` unless the tenant opted in."""
        members = [m for picked, _trainees in req.pool_picks.values() for m in picked]
        outside = self._loop_search.outside if self._loop_search is not None else None
        if outside is None or not members:
            return {}
        lo = min(s.start for s in req.sessions) - LOAD_MARGIN
        hi = max(s.end for s in req.sessions) + LOAD_MARGIN
        return await outside.starts(principal, ctx, members, lo, hi, request_id=request_id)

    async def book_as(
        self, writer: Writer, organizer_oid: str, organizer_name: str, template: LoopTemplate,
        req: BookLoopRequest, zone: Callable[[], Awaitable[str | None]], company: str = "",
        source: LoopTemplate | None = None, outside: Mapping[str, Sequence[datetime]] | None = None,
        live: Mapping[str, storage.PoolRecord | None] | None = None,
    ) -> LoopOut:  # fmt: skip
        """`book` once the locks and the gate hold, for the manager or a candidate link (app-only
        ``writer``); ``zone``: the loop's, read only when a new loop is reserved; ``source``: the
        template as written (its pooled sessions), when ``template`` carries the pool's picks; ``live``:
        its pools with an Entra group, members read now (`LoopSearch.live_pools`)."""
        people, rooms = panel_of(template, req.sessions)
        principal, request_id = writer.principal, writer.request_id
        txn = str(uuid.uuid5(_NAMESPACE, f"{writer.tenant_id}:{organizer_oid}:{req.transaction_id}"))
        async with self._store.transaction() as tx:
            known = await storage.get_loop_by_transaction(tx, txn)
            while known is not None and known.status not in _LIVE:  # a failed loop's ids are never reused
                txn = str(uuid.uuid5(_NAMESPACE, f"{txn}:retry"))
                known = await storage.get_loop_by_transaction(tx, txn)
            sessions = await storage.loop_sessions(tx, known.id) if known else []
        if known is not None:
            if [(r.session_index, r.start, r.end) for r in sessions] != [
                (s.index, s.start, s.end) for s in req.sessions
            ]:
                raise ConflictError("This transaction id was used for another loop.")
            if known.status == "confirmed":
                return loop_out(known, sessions, template)
        invite = CandidateInvite(
            req.candidate_name, req.candidate_email, template.role or "", company, organizer_name
        )
        if known is not None:  # a retry of a loop whose request died: finish it (or withdraw it)
            return await self._write(writer, invite, known, sessions, template, req, resume=True)
        await require_loop_offered(
            self._search, principal, writer.token, template, req.sessions, now=self._clock(),
            zone=await zone(), candidate_zone=req.candidate_time_zone, request_id=request_id,
            requester=writer.organizer, tenant_id=writer.tenant_id,
            directory=await self._directory.room_infos(writer.token) if needs_directory(template) else None,
        )  # fmt: skip
        title = template.name
        reservations = [
            storage.SessionReservation(
                s.index,
                s.start,
                s.end,
                (
                    *template.sessions[s.index].interviewers,
                    *([s.room] if s.room else []),
                    req.candidate_email,
                ),
                _subject(template.sessions[s.index].title, req.candidate_name),
            )
            for s in req.sessions
        ]
        async with self._store.transaction() as tx:
            loop, rows = await storage.reserve_loop(
                tx,
                tenant_id=writer.tenant_id,
                organizer_oid=organizer_oid,
                organizer_upn=writer.organizer,
                transaction_id=txn,
                title=title,
                candidate_name=req.candidate_name,
                sessions=reservations,
                session_transaction_id=lambda i: session_transaction_id(txn, i),
            )
            await reserve_seats(  # pooled sessions' picks drawn from their pools (caps: 409, roll back)
                tx, tenant_id=writer.tenant_id, template=source or template, picked=req.pool_picks,
                rows=rows, override=req.cap_override, actor=organizer_oid, request_id=request_id,
                outside=outside, live=live,
            )  # fmt: skip
            await self._tenancy.audit(
                principal, writer.tenant_id, "loop.reserve", [*people, *rooms], "ok", request_id, tx=tx
            )
        self._crash_point("loop_after_reserve")
        return await self._write(writer, invite, loop, rows, template, req, resume=False)

    async def _write(
        self,
        writer: Writer,
        invite: CandidateInvite,
        loop: storage.LoopRow,
        rows: list[storage.InterviewRow],
        template: LoopTemplate,
        req: BookLoopRequest,
        *,
        resume: bool,
    ) -> LoopOut:
        """Recheck and write every session not in Outlook yet, then confirm the loop; any failure
        withdraws the whole loop. ``resume``: a session's event may already exist (found by its
        transactionId, `Bookings.resume`)."""
        mailboxes = sorted({a for r in rows for a in r.attendees if a != candidate_address(r)})
        if any(r.status not in _LIVE for r in rows):  # a session was withdrawn meanwhile (recovery)
            await self._withdraw(writer, loop)
            raise SlotTakenError()
        try:
            join = next((r.join_url for r in rows if r.status == "confirmed" and r.join_url), None)
            todo = []
            for row in rows:
                if row.status == "confirmed":
                    continue
                found = await self._bookings.resume(writer, row, invite) if resume else None
                if found is not None:
                    join = join or found.join_url
                    continue
                todo.append(row)
            for row in todo:
                panel = [a for a in row.attendees if a != candidate_address(row)]
                if panel:
                    await self._bookings.recheck(writer, row, panel, "loop.recheck")
            for k, row in enumerate(todo):
                event = self._event(template, row, req, join)
                done = await self._bookings.create(
                    writer, row, event, "loop.create", candidate=invite, join_url=join
                )
                join = join or done.join_url
                self._crash_point(f"loop_after_session_{k + 1}")
        except BaseException:
            await self._withdraw(writer, loop)
            raise
        self._crash_point("loop_before_confirm")
        async with self._store.transaction() as tx:
            confirmed = await storage.confirm_loop(tx, loop.id)
            await self._tenancy.audit(
                writer.principal, writer.tenant_id, "loop.create", mailboxes,
                "ok" if confirmed else "raced", writer.request_id, tx=tx,
            )  # fmt: skip
        if not confirmed:  # recovery settled it meanwhile
            await self._withdraw(writer, loop)
            raise SlotTakenError()
        return await self._out(loop.id, template)

    def _event(
        self, template: LoopTemplate, row: storage.InterviewRow, req: BookLoopRequest, join: str | None
    ) -> dict[str, Any]:
        """The panel event of one session: the first carries the loop's Teams meeting."""
        index = row.session_index or 0
        session = template.sessions[index]
        chosen = next(s for s in req.sessions if s.index == index)
        rooms = [chosen.room] if chosen.room else []
        event = panel_event(
            req.candidate_name, list(session.interviewers), rooms, row.start, row.end,
            row.transaction_id, row.subject, req.candidate_time_zone, role=template.role or "",
        )  # fmt: skip
        if join is not None:
            event["isOnlineMeeting"] = False
            event.pop("onlineMeetingProvider", None)
            event["body"] = {
                "contentType": "html",
                "content": str(event["body"].get("content", "")) + f'<p>Teams: <a href="{join}">join</a></p>',
            }
        return event

    async def _withdraw(self, writer: Writer, loop: storage.LoopRow) -> None:
        """Undo a loop that failed: cancel written sessions, fail the rest; the loop is ``failed``
        unless a session is left pending (unsure: recovery settles it)."""
        async with self._store.transaction() as tx:
            rows = await storage.loop_sessions(tx, loop.id)
        for row in rows:
            try:
                if row.status == "confirmed":
                    await self._bookings.cancel(
                        writer, row, "This loop could not be booked.", "loop.withdraw"
                    )
                elif row.status == "pending" and row.event_id is None:
                    await self._bookings.withdraw(row)
            except CalendarError:
                continue  # left as it is: recovery settles the loop
        async with self._store.transaction() as tx:
            rows = await storage.loop_sessions(tx, loop.id)
            if not any(r.status in _LIVE for r in rows):
                await storage.mark_loop(tx, loop.id, "failed")

    async def list_upcoming(self, principal: Principal) -> list[LoopOut]:
        """The caller's confirmed loops whose last session has not ended."""
        await self._tenancy.context(principal)
        now = self._clock()
        async with self._store.transaction() as tx:
            loops = await storage.list_loops(tx, principal.tenant_id, principal.oid, ("confirmed",))
            found = [(loop, await storage.loop_sessions(tx, loop.id)) for loop in loops]
        return [loop_out(loop, rows) for loop, rows in found if rows and max(r.end for r in rows) > now]

    async def cancel(self, principal: Principal, assertion: str, loop_id: str, request_id: str) -> LoopOut:
        """Cancel every session of a loop the caller organised."""
        loop = await self._own(principal, loop_id)
        if loop.status == "cancelled":
            return await self._out(loop.id)
        if loop.status != "confirmed":
            raise ConflictError("This loop is not booked.")
        ctx = await self._tenancy.context(principal)
        token = await self._tenancy.user_token(principal, ctx, assertion)
        writer = Writer(principal, principal.tenant_id, token, loop.organizer_upn, request_id)
        async with self._store.transaction() as tx:
            rows = await storage.loop_sessions(tx, loop.id)
        for row in rows:
            if row.status == "confirmed":
                await self._bookings.cancel(writer, row, "Cancelled via OpenSlot", "loop.cancel")
        async with self._store.transaction() as tx:
            await storage.mark_loop(tx, loop.id, "cancelled", expected="confirmed")
        return await self._out(loop.id)

    async def reschedule(
        self, principal: Principal, assertion: str, loop_id: str, req: RescheduleLoopRequest, request_id: str
    ) -> LoopOut:
        """Move one session or several; the whole new loop must be one the search would offer, and
        each moved session is reserved (a hold) and re-checked before its Graph write. A failure
        moves the sessions already moved back."""
        loop = await self._own(principal, loop_id)
        if loop.status != "confirmed":
            raise ConflictError("Only a booked loop can be moved.")
        async with self._store.transaction() as tx:
            rows = {r.session_index or 0: r for r in await storage.loop_sessions(tx, loop.id)}
        ctx = await self._tenancy.context(principal)
        people, rooms = sorted({a for r in rows.values() for a in r.attendees[:-1]}), []
        room_set = await self._tenancy.rooms_among(ctx, people)
        people, rooms = [a for a in people if a not in room_set], sorted(room_set)
        await self._gate(principal, ctx, "loop.reschedule", request_id, people, rooms)
        token = await self._tenancy.user_token(principal, ctx, assertion)
        first = min(s.start for s in req.sessions)
        probe = Probe(token, loop.organizer_upn, first)
        await self._gate(principal, ctx, "loop.reschedule", request_id, people, rooms, probe)
        moved = {s.index: s for s in req.sessions}
        if not set(moved) <= set(rows):
            raise ValidationError("sessions", "names a session the loop does not have")
        template = _template_of_rows(loop, rows, room_set)
        wanted = [
            moved.get(i) or SessionTime(i, r.start, r.end, _room_of(r, room_set))
            for i, r in sorted(rows.items())
        ]
        for s in req.sessions:
            if s.room != _room_of(rows[s.index], room_set):
                raise ValidationError("sessions", "a move keeps the session's room")
        await require_loop_offered(
            self._search, principal, token, template, wanted, now=self._clock(),
            zone=await self._directory.mailbox_zone(token), candidate_zone=None,
            request_id=request_id, requester=loop.organizer_upn, tenant_id=ctx.tenant_id,
            own=list(rows.values()),
        )  # fmt: skip
        writer = Writer(principal, principal.tenant_id, token, loop.organizer_upn, request_id)
        overrides: tuple[CapOverride, ...] = ()
        if req.cap_override is not None:
            if not any(req.cap_override[0] in rows[i].attendees for i in moved):
                raise ValidationError("cap_override", "names nobody of the sessions moved")
            overrides = (CapOverride(req.cap_override[0], principal.oid, req.cap_override[1]),)
        await self.move_sessions(writer, rows, moved, cap_overrides=overrides, manager=True)
        return await self._out(loop.id)

    async def move_sessions(
        self, writer: Writer, rows: Mapping[int, storage.InterviewRow], moved: Mapping[int, SessionTime],
        *, cap_overrides: Sequence[CapOverride] = (), manager: bool = False,
    ) -> None:  # fmt: skip
        """Move each session of ``moved`` (reserved and re-checked by `Bookings.move`, the caps of
        its pool-drawn members too, in their new week/day: ``cap_overrides`` pass them, audited),
        the ones moving away from the others first; a failure moves back the ones already moved.

        Raises: `CapReachedError` (the sessions already moved are moved back; for the ``manager``
        its message names the session, the cap and the override), or what `Bookings.move` raises."""
        later = sum((moved[i].start - rows[i].start).total_seconds() for i in moved) > 0
        order = sorted(moved, key=lambda i: rows[i].start, reverse=later)
        done: list[storage.InterviewRow] = []
        try:
            for i in order:
                s = moved[i]
                if (s.start, s.end) == (rows[i].start, rows[i].end):
                    continue
                try:
                    await self._bookings.move(
                        writer, rows[i], s.start, s.end, operation="loop.reschedule",
                        recheck_operation="loop.reschedule", cap_overrides=cap_overrides,
                    )  # fmt: skip
                except CapReachedError as exc:
                    if not manager:
                        raise
                    raise moved_past_cap(i, exc) from exc
                done.append(rows[i])
        except BaseException:
            await self._move_back(writer, done)
            raise

    async def _move_back(self, writer: Writer, done: list[storage.InterviewRow]) -> None:
        """Best effort: put the sessions a failed reschedule already moved back."""
        for old in reversed(done):
            async with self._store.transaction() as tx:
                current = await storage.get_interview(tx, old.id)
            try:
                if current is not None:
                    await self._bookings.move(
                        writer, current, old.start, old.end, operation="loop.reschedule.undo",
                        recheck_operation="loop.reschedule.undo",
                    )  # fmt: skip
            except CalendarError:
                continue

    async def _gate(
        self,
        principal: Principal,
        ctx: Any,
        operation: str,
        request_id: str,
        people: list[str],
        rooms: list[str],
        probe: Probe | None = None,
    ) -> None:
        """The mailbox gate for every person and room (static rules, or the delegated probe)."""
        refusal = await self._tenancy.check_mailboxes(
            principal, ctx, operation, request_id, people, rooms, probe=probe, static=probe is None
        )
        if refusal is not None:
            raise refusal.error()

    async def _own(self, principal: Principal, loop_id: str) -> storage.LoopRow:
        async with self._store.transaction() as tx:
            loop = await storage.get_loop(tx, loop_id)
        if loop is None or loop.tenant_id != principal.tenant_id or loop.organizer_oid != principal.oid:
            raise NotFoundError()
        return loop

    async def _out(self, loop_id: str, template: LoopTemplate | None = None) -> LoopOut:
        async with self._store.transaction() as tx:
            loop = await storage.get_loop(tx, loop_id)
            rows = await storage.loop_sessions(tx, loop_id)
        assert loop is not None  # noqa: S101
        return loop_out(loop, rows, template)


def moved_past_cap(index: int, exc: CapReachedError) -> CapReachedError:
    """``exc`` (a move past a pool member's cap) with a message for the manager naming the session
    and the cap (not the member: ``cap_override`` names them, ``exc.address`` has them)."""
    raised = CapReachedError(exc.address, exc.cap)
    raised.message = (
        f"Session {index + 1}: an interviewer drawn from a pool has reached their "
        f"{exc.cap.replace('_', ' ')} cap in the new week or day; pick another time, or override the "
        "cap with a reason."
    )
    return raised


def _subject(title: str, candidate_name: str) -> str:
    return f"{title}: {candidate_name}"


def _room_of(row: storage.InterviewRow, rooms: set[str]) -> str | None:
    return next((a for a in row.attendees[:-1] if a in rooms), None)


def _template_of_rows(
    loop: storage.LoopRow, rows: Mapping[int, storage.InterviewRow], rooms: set[str]
) -> LoopTemplate:
    """A template the booked loop satisfies (its sessions, their people and rooms; free order,
    any break, its days): a move is checked against people, rooms and the calendars."""
    from calendar_backend.loop_templates import Order, RoomNeed, SessionTemplate

    ordered = [rows[i] for i in sorted(rows)]
    sessions = tuple(
        SessionTemplate(
            title=_title(r, loop.candidate_name),
            minutes=max(5, int((r.end - r.start).total_seconds() // 60)),
            interviewers=tuple(a for a in r.attendees[:-1] if a not in rooms),
            room=RoomNeed(any_of=(room,)) if (room := _room_of(r, rooms)) else None,
        )
        for r in ordered
    )
    return LoopTemplate(loop.title, sessions, order=Order.FREE, min_break=0, max_break=240, max_days=5)


def _title(row: storage.InterviewRow, candidate_name: str) -> str:
    suffix = f": {candidate_name}"
    return row.subject[: -len(suffix)] if row.subject.endswith(suffix) else row.subject


def loop_out(
    loop: storage.LoopRow, rows: Sequence[storage.InterviewRow], template: LoopTemplate | None = None
) -> LoopOut:
    """The API's view of a stored loop (rooms told apart by the template when given)."""
    sessions = []
    for r in rows:
        index = r.session_index or 0
        people = tuple(template.sessions[index].interviewers) if template else tuple(r.attendees[:-1])
        room = next((a for a in r.attendees[:-1] if a not in people), None)
        sessions.append(
            LoopSessionOut(
                index, _title(r, loop.candidate_name), r.start, r.end, people, room, r.id, r.event_id
            )
        )
    join = next((r.join_url for r in rows if r.join_url), None)
    return LoopOut(loop.id, loop.status, loop.title, loop.candidate_name, tuple(sessions), join)
