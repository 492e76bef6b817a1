"""Reserve before write: the one path for every Graph write of an interview (create, move, cancel).

Every use case that writes to Outlook (interviews, candidate links, loops, repairs) goes through `Bookings`:

    reserve → recheck → write → confirm | withdraw | resume

- **reserve**: a database transaction that makes the overlap impossible commits *before* any Graph
  write: a ``pending`` row for a new booking (`storage.insert_pending`, done by the caller because
  its idempotency and single-use rules differ), a *hold* for the new time of a move
  (`storage.insert_hold`: the interview keeps its old time too until the move is confirmed).
  Cancelling keeps the reservation until Graph has cancelled (released last), so the time is never
  free in the database while Outlook still holds the event.
- **recheck**: a live free/busy read of every attendee at the reserved time (`recheck`); this is
  where any further "may this slot be booked" rule belongs. Busy → withdraw, `SlotTakenError`.
- **write**: the Graph call. Each Graph write gets its own audit row, committed in its own
  transaction right after the call, so it survives any later failure.
- **confirm**: the reservation becomes the booking (`confirm_interview`, `complete_move`).
- **withdraw**: compensation when the write fails or the reservation was lost meanwhile: the
  pending row is failed / the hold released, the Graph change undone (event cancelled, move
  patched back). If the undo itself fails, the reservation is left pending for recovery.
- **resume**: a retried booking whose event Graph already holds (its answer was lost) is confirmed
  from Graph (`resume`); stale pending rows and holds are settled by `calendar_backend.recovery`.

**Two events per booking** (issue 14): the panel's event (interviewers and rooms; no candidate) and
the candidate's own (`invites.candidate_event`: the candidate the only attendee, the panel's Teams
join link, organizer the hiring manager too). The candidate's is written second, with its own
deterministic transactionId (`invites.candidate_transaction_id`) and its own audit row
(``<operation>.candidate``); the row is confirmed only when both exist, with both ids
(``candidate_event_id``). Decisions:

- *create*: the candidate event fails → its create may have landed (upstream error): it is looked
  up by transactionId and used if found; else the panel event is cancelled and the reservation
  withdrawn (the booking fails as a whole, the caller gets the error). When unsure (the look-up or
  the cancel fails too) the row stays pending and recovery *completes forward*: it finds the panel
  event and finds or creates the candidate's (`ensure_candidate_event`), then confirms.
- *move*: panel PATCH, then the candidate's. The candidate's fails → the panel is patched back and
  the hold withdrawn (an upstream failure also patches the candidate's back); when a restore fails
  the hold stays and `settle_hold` aligns the candidate event with the panel's decided time.
  A candidate event gone from the organizer's calendar (404) does not stop the move.
- *cancel*: the candidate's event first, then the panel's (cancelling is idempotent: a retry after
  a partial cancel finishes it); the reservation is released last.
- Rows without ``candidate_event_id`` (booked before, the candidate an attendee) keep one event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.availability import BusyRules
from calendar_backend.booking_attendees import holds_event, relink_candidate, replace_attendee
from calendar_backend.calendar_view import schedule_blocks
from calendar_backend.errors import CalendarError, ConflictError, NotFoundError, SlotTakenError, UpstreamError
from calendar_backend.graph import CallStats, GraphClient
from calendar_backend.invites import candidate_event, candidate_transaction_id, event_times
from calendar_backend.pools_booking import CapOverride, hold_with_seats
from calendar_backend.slots import Interval
from calendar_backend.tenancy import AuditFn


@dataclass(frozen=True, slots=True)
class Writer:
    """Who writes, to which calendar, with which Graph token (delegated or app-only)."""

    principal: Principal | None
    tenant_id: str
    token: str
    organizer: str
    request_id: str


@dataclass(frozen=True, slots=True)
class CandidateInvite:
    """What the candidate's own invite says (no panel address, no internal note)."""

    name: str
    email: str
    role: str = ""
    company: str = ""
    organizer_name: str = ""


class Bookings:
    """The saga. One instance per process (built by `CalendarService`); safe to use concurrently."""

    def __init__(
        self,
        store: storage.Store,
        graph: GraphClient,
        rules: BusyRules,
        audit: AuditFn,
        crash_point: Callable[[str], None],
    ) -> None:
        self._store = store
        self._graph = graph
        self._rules = rules
        self._audit = audit
        self._crash_point = crash_point

    # ---- recheck ---------------------------------------------------------------------------
    async def recheck(
        self,
        w: Writer,
        row: storage.InterviewRow,
        mailboxes: list[str],
        operation: str,
        *,
        ignore: tuple[datetime, datetime] | None = None,
    ) -> None:
        """Live free/busy of ``mailboxes`` at the reservation ``row``'s time; after the reserve.

        Busy (or unreadable): the reservation is withdrawn with a ``slot_taken`` audit row and
        `SlotTakenError` raised. ``ignore`` is the moved interview's own old time. Any further
        "may this time be booked" rule belongs here too: it then runs after the reservation
        committed and before any Graph write, for every booking and move alike.
        """
        stats = CallStats()
        try:
            schedules = await self._graph.get_schedules(
                w.token,
                w.organizer,
                mailboxes,
                row.start - timedelta(hours=1),
                row.end + timedelta(hours=1),
                stats=stats,
            )
        except CalendarError as exc:
            await self.withdraw(row)
            await self._audit(
                w.principal, w.tenant_id, operation, mailboxes, f"error:{exc.code}", w.request_id, stats
            )
            raise
        slot = Interval(row.start, row.end)
        if any(schedule_blocks(schedules[a.lower()], slot, self._rules, ignore) for a in mailboxes):
            async with self._store.transaction() as tx:
                await self._withdraw_in(tx, row)
                await self._audit(
                    w.principal, w.tenant_id, operation, mailboxes, "slot_taken", w.request_id, stats, tx=tx
                )
            raise SlotTakenError()
        await self._audit(w.principal, w.tenant_id, operation, mailboxes, "ok", w.request_id, stats)

    async def withdraw(self, row: storage.InterviewRow) -> None:
        """Give a reservation's time back: a pending booking fails, a hold is released."""
        async with self._store.transaction() as tx:
            await self._withdraw_in(tx, row)

    @staticmethod
    async def _withdraw_in(tx: AsyncConnection, row: storage.InterviewRow) -> None:
        if storage.hold_target(row) is not None:
            await storage.release_hold(tx, row.id)
        else:
            current = await storage.get_interview(tx, row.id)
            if current is not None and current.status is storage.InterviewStatus.PENDING:
                await storage.mark_interview(tx, row.id, "failed")

    # ---- create ----------------------------------------------------------------------------
    async def create(
        self,
        w: Writer,
        row: storage.InterviewRow,
        event: dict[str, Any],
        operation: str = "interview.create",
        *,
        candidate: CandidateInvite | None = None,
        join_url: str | None = None,
    ) -> storage.InterviewRow:
        """Write the reserved booking ``row`` to Outlook and confirm it (``join_url``: the Teams
        meeting an event without its own uses, e.g. a loop's later sessions).

        With ``candidate``, ``event`` is the panel's (no candidate attendee) and the candidate's
        own event is written second (see the module docstring for its compensation).
        A Graph failure leaves the row pending (a retry with the same key reuses its
        transactionId and resumes; recovery settles it otherwise) and is audited.
        """
        stats = CallStats()
        try:
            created = await self._graph.create_event(w.token, w.organizer, event, stats=stats)
        except CalendarError as exc:
            await self._audit(
                w.principal, w.tenant_id, operation, [w.organizer], f"error:{exc.code}", w.request_id, stats
            )
            raise
        self._crash_point("after_graph_create")
        event_id = str(created["id"])
        async with self._store.transaction() as tx:  # the write's own audit row
            await self._audit(
                w.principal, w.tenant_id, operation, [w.organizer], "ok", w.request_id, stats, tx=tx
            )
            self._crash_point("during_audit")
        join = (created.get("onlineMeeting") or {}).get("joinUrl") or join_url
        candidate_id = None
        if candidate is not None:
            candidate_id = await self._create_candidate(
                w, row, event, str(join or ""), candidate, event_id, operation
            )
            self._crash_point("after_candidate_create")
        async with self._store.transaction() as tx:
            done = await storage.confirm_interview(
                tx, row.id, event_id, join, candidate_event_id=candidate_id
            )
            confirmed = await storage.get_interview(tx, row.id)
        if confirmed is None or not (done or holds_event(confirmed, event_id)):
            # the reservation was failed meanwhile (recovery): no event may live without one
            if candidate_id is not None:
                await self._undo_create(w, candidate_id, f"{operation}.candidate")
            await self._undo_create(w, event_id, operation)
            raise SlotTakenError()
        return confirmed

    async def _create_candidate(
        self,
        w: Writer,
        row: storage.InterviewRow,
        panel: dict[str, Any],
        join: str,
        invite: CandidateInvite,
        panel_id: str,
        operation: str,
    ) -> str:
        """Write the candidate's own event; compensate (module docstring) when it fails."""
        body = candidate_event(
            panel,
            candidate_name=invite.name,
            candidate_email=invite.email,
            join_url=join,
            role=invite.role,
            company=invite.company,
            organizer_name=invite.organizer_name,
        )
        op = f"{operation}.candidate"
        stats = CallStats()
        try:
            created = await self._graph.create_event(w.token, w.organizer, body, stats=stats)
        except CalendarError as exc:
            await self._audit(
                w.principal, w.tenant_id, op, [w.organizer], f"error:{exc.code}", w.request_id, stats
            )
            found: dict[str, Any] | None = None
            if isinstance(exc, UpstreamError):  # it may have landed: look before undoing
                look = CallStats()
                try:
                    found = await self._graph.find_event_by_transaction(
                        w.token, w.organizer, body["transactionId"], stats=look
                    )
                except CalendarError:
                    raise exc from None  # unsure: the row stays pending for recovery
            if found is not None:
                await self._audit(w.principal, w.tenant_id, op, [w.organizer], "resumed", w.request_id, stats)
                return str(found["id"])
            if await self._undo_create(w, panel_id, operation, "withdrawn"):
                await self.withdraw(row)
            raise
        await self._audit(w.principal, w.tenant_id, op, [w.organizer], "ok", w.request_id, stats)
        return str(created["id"])

    async def _undo_create(self, w: Writer, event_id: str, operation: str, why: str = "raced") -> bool:
        """Cancel an event whose reservation is gone (or whose booking failed: ``why``).
        Best effort: a failure is audited; returns whether the event is cancelled."""
        stats = CallStats()
        result = why
        try:
            await self._graph.cancel_event(
                w.token, w.organizer, event_id, "This booking could not be completed.", stats=stats
            )
        except CalendarError as exc:
            result = f"{why}:error:{exc.code}"
        await self._audit(w.principal, w.tenant_id, operation, [w.organizer], result, w.request_id, stats)
        return result == why

    async def resume(
        self, w: Writer, row: storage.InterviewRow, candidate: CandidateInvite | None = None
    ) -> storage.InterviewRow | None:
        """Confirm a retried booking whose event Graph already holds (its answer was lost);
        the candidate's own event is found or written first (`ensure_candidate_event`)."""
        stats = CallStats()
        found = await self._graph.find_event_by_transaction(
            w.token, row.organizer_upn, row.transaction_id, stats=stats
        )

        async def audit(op: str, result: str, of: CallStats, tx: Any = None) -> None:
            await self._audit(
                w.principal, row.tenant_id, op, [row.organizer_upn], result, w.request_id, of, tx=tx
            )

        if found is None:
            await audit("interview.resume", "not_found", stats)
            return None
        join = (found.get("onlineMeeting") or {}).get("joinUrl")
        cand_stats = CallStats()
        try:
            candidate_id, how = await ensure_candidate_event(
                self._graph, w.token, row, found, cand_stats, candidate
            )
        except CalendarError as exc:
            await audit("interview.resume.candidate", f"error:{exc.code}", cand_stats)
            raise
        if how == "created":
            await audit("interview.resume.candidate", "ok", cand_stats)
        async with self._store.transaction() as tx:
            await storage.confirm_interview(
                tx, row.id, str(found["id"]), join, candidate_event_id=candidate_id
            )
            await audit("interview.resume", "ok", stats, tx)
            return await storage.get_interview(tx, row.id)

    # ---- move ------------------------------------------------------------------------------
    async def move(
        self,
        w: Writer,
        row: storage.InterviewRow,
        start: datetime,
        end: datetime,
        *,
        operation: str,
        recheck_operation: str,
        before_write: Callable[[], Awaitable[None]] | None = None,
        cap_overrides: Sequence[CapOverride] = (),
    ) -> storage.InterviewRow:
        """Move the confirmed interview ``row`` (with its Outlook event) to ``[start, end)``.

        The hold's transaction rechecks the caps of the people ``row`` drew from pools in the new
        local week/day (`pools_booking.hold_with_seats`): `CapReachedError` (nothing changed)
        unless ``cap_overrides`` (the manager's, audited) names them.

        ``before_write`` runs after the hold committed and the re-check passed, before the PATCH
        (e.g. counting the candidate's change; if it raises, the hold is withdrawn).

        Raises `SlotTakenError` (the new time is taken: nothing changed), `ConflictError` (the
        interview changed or another move of it is in flight), or the Graph error (the hold
        withdrawn and the event restored, else the hold is left for recovery).
        """
        if row.status is not storage.InterviewStatus.CONFIRMED or not row.event_id:
            raise ConflictError("Only a booked interview can be moved.")
        async with self._store.transaction() as tx:
            hold = await hold_with_seats(tx, row, start, end, cap_overrides, w.request_id)
        if hold is None:
            raise ConflictError("This interview is being changed; please try again.")
        mailboxes = [a for a in row.attendees if a != candidate_address(row)]
        try:
            await self.recheck(w, hold, mailboxes, recheck_operation, ignore=(row.start, row.end))
            if before_write is not None:
                await before_write()
        except Exception:  # (a cancelled request leaves the hold to recovery, which frees it)
            await self.withdraw(hold)
            raise
        stats = CallStats()
        try:
            await self._graph.update_event(
                w.token, w.organizer, row.event_id, event_times(start, end), stats=stats
            )
        except CalendarError as exc:
            await self._audit(
                w.principal, w.tenant_id, operation, mailboxes, f"error:{exc.code}", w.request_id, stats
            )
            # A refusal (4xx) changed nothing; after an upstream failure the PATCH may have
            # landed, so it is undone first. If the undo fails too, recovery settles the hold.
            if not isinstance(exc, UpstreamError) or await self._restore(w, row, operation, mailboxes):
                await self.withdraw(hold)
            if isinstance(exc, NotFoundError):  # the event is gone (cancelled meanwhile)
                raise ConflictError("This interview changed meanwhile; please try again.") from exc
            raise
        await self._audit(w.principal, w.tenant_id, operation, mailboxes, "ok", w.request_id, stats)
        if row.candidate_event_id:
            await self._move_candidate(w, row, hold, start, end, operation, mailboxes)
        async with self._store.transaction() as tx:
            moved = await storage.complete_move(tx, hold.id)
        if moved is None:  # the interview changed under us (e.g. cancelled): put Outlook back
            await self._restore(w, row, operation, mailboxes)
            if row.candidate_event_id:
                await self._restore(w, row, f"{operation}.candidate", mailboxes, row.candidate_event_id)
            raise ConflictError("This interview changed meanwhile; please try again.")
        return moved

    async def _move_candidate(
        self,
        w: Writer,
        row: storage.InterviewRow,
        hold: storage.InterviewRow,
        start: datetime,
        end: datetime,
        operation: str,
        mailboxes: list[str],
    ) -> None:
        """PATCH the candidate's own event after the panel's moved; undo the panel's if it fails."""
        op = f"{operation}.candidate"
        stats = CallStats()
        try:
            await self._graph.update_event(
                w.token, w.organizer, row.candidate_event_id or "", event_times(start, end), stats=stats
            )
        except NotFoundError:  # deleted from the organizer's calendar: the panel still moves
            await self._audit(
                w.principal, w.tenant_id, op, [w.organizer], "error:not_found", w.request_id, stats
            )
            return
        except CalendarError as exc:
            await self._audit(
                w.principal, w.tenant_id, op, [w.organizer], f"error:{exc.code}", w.request_id, stats
            )
            restored = await self._restore(w, row, operation, mailboxes)
            if isinstance(exc, UpstreamError):  # the candidate's PATCH may have landed
                restored = await self._restore(w, row, op, mailboxes, row.candidate_event_id) and restored
            if restored:
                await self.withdraw(hold)
            raise
        await self._audit(w.principal, w.tenant_id, op, [w.organizer], "ok", w.request_id, stats)

    async def _restore(
        self,
        w: Writer,
        row: storage.InterviewRow,
        operation: str,
        mailboxes: list[str],
        event_id: str | None = None,
    ) -> bool:
        """Patch the event (the panel's, or ``event_id``) back to ``row``'s time (undo a move
        that may have happened)."""
        stats = CallStats()
        try:
            await self._graph.update_event(
                w.token,
                w.organizer,
                event_id or row.event_id or "",
                event_times(row.start, row.end),
                stats=stats,
            )
        except CalendarError as exc:
            await self._audit(
                w.principal,
                w.tenant_id,
                operation,
                mailboxes,
                f"restore:error:{exc.code}",
                w.request_id,
                stats,
            )
            return False
        await self._audit(w.principal, w.tenant_id, operation, mailboxes, "restored", w.request_id, stats)
        return True

    async def replace_attendee(
        self, w: Writer, row: storage.InterviewRow, out: str, into: str, operation: str
    ) -> storage.InterviewRow:
        """Put ``into`` in ``out``'s place: reserve, recheck, ONE attendees PATCH (booking_attendees)."""
        return await replace_attendee(
            self._store, self._graph, self._rules, self._audit, w, row, out, into, operation
        )

    async def relink_candidate(self, w: Writer, row: storage.InterviewRow, operation: str) -> None:
        """ONE PATCH of the candidate's own invite: ``row``'s Teams join link (booking_attendees)."""
        await relink_candidate(self._graph, self._audit, w, row, operation)

    # ---- cancel ----------------------------------------------------------------------------
    async def cancel(
        self,
        w: Writer,
        row: storage.InterviewRow,
        comment: str,
        operation: str,
        *,
        released: Callable[[AsyncConnection], Awaitable[None]] | None = None,
    ) -> bool:
        """Cancel the event in Outlook, then release the reservation (mark the row cancelled).

        The time stays reserved until Graph has cancelled: a Graph failure changes nothing in
        the database. ``released`` runs in the releasing transaction when this call cancelled
        the row. Returns whether it did (``False``: it was already cancelled). The candidate's
        own event is cancelled first (a retry after a partial cancel finishes it).

        Raises `ConflictError` for a row still pending: its create may have reached Outlook (an
        answer lost) or still be on the wire, so releasing it would leave an event no
        reservation covers; recovery (or the retry) settles it first.
        """
        if row.status is storage.InterviewStatus.PENDING:
            raise ConflictError("This interview is still being booked; please try again shortly.")
        if row.candidate_event_id:
            await self._cancel_audited(w, row.candidate_event_id, f"{operation}.candidate", comment)
        await self._cancel_audited(w, row.event_id, operation, comment)
        async with self._store.transaction() as tx:
            done = await storage.mark_interview(tx, row.id, "cancelled")
            if done and released is not None:
                await released(tx)
        return done

    async def _cancel_audited(self, w: Writer, event_id: str | None, operation: str, comment: str) -> None:
        """Cancel one Outlook event (none: nothing to cancel) with its own audit row, ok or not."""
        stats = CallStats()
        if event_id:
            try:
                await self._graph.cancel_event(w.token, w.organizer, event_id, comment, stats=stats)
            except CalendarError as exc:
                await self._audit(
                    w.principal,
                    w.tenant_id,
                    operation,
                    [w.organizer],
                    f"error:{exc.code}",
                    w.request_id,
                    stats,
                )
                raise
        await self._audit(w.principal, w.tenant_id, operation, [w.organizer], "ok", w.request_id, stats)


async def settle_hold(
    store: storage.Store,
    graph: GraphClient,
    token: str,
    hold: storage.InterviewRow,
    stats: CallStats,
    audit: Callable[[AsyncConnection, str], Awaitable[None]],
) -> bool:
    """Resume a move whose request died after its hold committed (recovery's step).

    Where Outlook has the event decides: at the hold's time, the move completes; anywhere else
    (its old time, cancelled, gone) the hold is released. ``audit(tx, result)`` writes the
    decision's audit row in the deciding transaction. Returns whether the move completed.
    Raises the Graph error (the hold stays for the next run).
    """
    target = storage.hold_target(hold)
    async with store.transaction() as tx:
        interview = await storage.get_interview(tx, target[0]) if target else None
    found = None
    if interview is not None and interview.event_id:
        found = await graph.get_event(token, interview.organizer_upn, interview.event_id, stats=stats)
    at_hold = found is not None and not found[2] and found[:2] == (hold.start, hold.end)
    if interview is not None and interview.candidate_event_id:
        # the candidate's own event follows the panel's decided time
        want = (hold.start, hold.end) if at_hold else (interview.start, interview.end)
        theirs = await graph.get_event(
            token, interview.organizer_upn, interview.candidate_event_id, stats=stats
        )
        if theirs is not None and not theirs[2] and theirs[:2] != want:
            await graph.update_event(
                token, interview.organizer_upn, interview.candidate_event_id, event_times(*want), stats=stats
            )
            async with store.transaction() as tx:
                await audit(tx, "candidate_realigned")
    async with store.transaction() as tx:
        moved = await storage.complete_move(tx, hold.id) if at_hold else None
        if moved is None:
            await storage.release_hold(tx, hold.id)
        await audit(tx, "moved" if moved is not None else "released")
    return moved is not None


async def ensure_candidate_event(
    graph: GraphClient,
    token: str,
    row: storage.InterviewRow,
    panel: dict[str, Any],
    stats: CallStats,
    invite: CandidateInvite | None = None,
) -> tuple[str | None, str]:
    """Find or write the candidate's own event of the booking ``row`` whose panel event Graph
    holds (``panel``, as `GraphClient.find_event_by_transaction` returns it): forward completion
    for a retry (`Bookings.resume`) or recovery. Returns ``(event id, how)``, how being
    ``"found"``, ``"created"`` or ``"none"`` (an older booking: the candidate attends ``panel``).

    Without ``invite`` the body is built from the row alone (name and address; no role).
    Raises the Graph error (nothing decided).
    """
    email = candidate_address(row)
    attendees = {
        str((a.get("emailAddress") or {}).get("address", "")).lower()
        for a in panel.get("attendees") or []
        if isinstance(a, dict)
    }
    if not email or email.lower() in attendees:
        return None, "none"
    txn = candidate_transaction_id(row.transaction_id)
    found = await graph.find_event_by_transaction(token, row.organizer_upn, txn, stats=stats)
    if found is not None:
        return str(found["id"]), "found"
    invite = invite or CandidateInvite(name=row.candidate_name, email=email)
    shape = {"subject": row.subject, **event_times(row.start, row.end), "transactionId": row.transaction_id}
    body = candidate_event(
        shape,
        candidate_name=invite.name,
        candidate_email=invite.email,
        join_url=str((panel.get("onlineMeeting") or {}).get("joinUrl") or ""),
        role=invite.role,
        company=invite.company,
        organizer_name=invite.organizer_name,
    )
    created = await graph.create_event(token, row.organizer_upn, body, stats=stats)
    return str(created["id"]), "created"


def candidate_address(row: storage.InterviewRow) -> str:
    """The candidate's address: the last attendee of an interview OpenSlot created."""
    return row.attendees[-1] if row.attendees else ""
