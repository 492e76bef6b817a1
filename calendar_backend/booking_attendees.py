"""Replace one person of a booked interview: the attendee write of `booking.Bookings`.

Reached only through `Bookings.replace_attendee` (booking.py stays the one Graph event-write
path; this saga lives here because booking.py is at its size limit). Same saga as a move:

- **reserve**: one transaction, under the tenant's booking lock (PostgreSQL: the same advisory
  lock as every booking, so the conflict check and the swap are one step for all workers; SQLite:
  ``BEGIN IMMEDIATE``), refuses when the newcomer has an overlapping pending/confirmed OpenSlot
  interview, swaps the attendee in the row and the mailbox index (``version`` checked) and, when
  the leaver was drawn from a pool, moves the pool seat to the newcomer with their caps checked
  (`swap_seat`: `CapReachedError` rolls it all back), so two concurrent repairs can never both
  place one person at one time nor pass a cap;
- **recheck**: the newcomer's live free/busy at the interview's time (unmerged getSchedule: only
  their own copy of this very event, if they are an optional attendee, does not count); busy →
  swap undone, `SlotTakenError`;
- **write**: ONE PATCH of the panel event's ``attendees`` (the candidate's own invite is
  untouched: its time does not change); a failure undoes the swap (and is audited).

`relink_candidate` (through `Bookings.relink_candidate`): a rebooked interview's new Teams meeting
(and time) put in the candidate's own invite, ONE PATCH (its body rebuilt from the row, like recovery's
`booking.ensure_candidate_event`: name and link; no role), audited.
"""

from __future__ import annotations

from typing import Any

from calendar_backend import storage
from calendar_backend.availability import BusyRules
from calendar_backend.calendar_view import schedule_blocks
from calendar_backend.errors import CalendarError, ConflictError, SlotTakenError
from calendar_backend.graph import CallStats, GraphClient, Schedule
from calendar_backend.graph_watch import free_busy, read_event
from calendar_backend.invites import candidate_event, event_times
from calendar_backend.slots import Interval
from calendar_backend.storage import watch as store_watch
from calendar_backend.storage.interviews import lock_booking
from calendar_backend.tenancy import AuditFn


async def swap_seat(tx: Any, row: storage.InterviewRow, out: str, into: str) -> tuple[str, str] | None:
    """Move ``out``'s pool seat on ``row`` to ``into`` in the swap's own transaction: released,
    then reserved for ``into`` with their caps checked (`storage.reserve_pool_seats`, under the
    booking lock) when they are a member of that pool. Returns the released ``(pool id, role)``
    (None: ``out`` held no seat). Raises `CapReachedError` (the caller's transaction rolls back)."""
    seat = await store_watch.pool_seat(tx, row.id, out)
    if seat is None:
        return None
    await store_watch.drop_seat(tx, row.id, out)
    record = await storage.get_pool_by_id(tx, seat[0])
    if record is not None and record.pool.member(into) is not None:
        await storage.reserve_pool_seats(
            tx, tenant_id=row.tenant_id, pool_id=seat[0], interview_id=row.id, start=row.start, members=[into]
        )
    return seat


async def replace_attendee(
    store: storage.Store,
    graph: GraphClient,
    rules: BusyRules,
    audit: AuditFn,
    w: Any,
    row: storage.InterviewRow,
    out: str,
    into: str,
    operation: str,
) -> storage.InterviewRow:
    """Put ``into`` in the place of ``out`` in the confirmed interview ``row`` (``w``: the
    `booking.Writer`). Raises `SlotTakenError`, `ConflictError` or the Graph error."""
    if row.status is not storage.InterviewStatus.CONFIRMED or not row.event_id:
        raise ConflictError("Only a booked interview can change its people.")
    out, into = out.lower(), into.lower()
    async with store.transaction() as tx:
        await lock_booking(tx, row.tenant_id)  # PostgreSQL: the booking advisory lock (SQLite: IMMEDIATE)
        if await storage.find_conflicts(tx, row.tenant_id, [into], row.start, row.end):
            raise SlotTakenError()
        swapped = await store_watch.swap_attendee(tx, row.id, row.version, out, into)
        seat = await swap_seat(tx, row, out, into) if swapped is not None else None
    if swapped is None:
        raise ConflictError("This interview changed meanwhile; please try again.")

    async def undo() -> None:
        async with store.transaction() as tx:
            await lock_booking(tx, row.tenant_id)
            await store_watch.swap_attendee(tx, row.id, swapped.version, into, out)
            if seat is not None:
                await store_watch.drop_seat(tx, row.id, into)
                await store_watch.put_seat(tx, row.id, out, *seat)

    stats = CallStats()
    try:
        event = await read_event(graph, w.token, w.organizer, row.event_id, stats=stats)
        schedule = (await free_busy(graph, w.token, w.organizer, [into], row.start, row.end, stats=stats))[
            into
        ]
        items = list(schedule.items)
        own = [i for i in items if (i.start, i.end) == (row.start, row.end)]
        if own and event is not None and into in event.attendees:
            items.remove(own[0])  # the newcomer's own copy of this event (an optional attendee)
        free_of = Schedule(schedule.address, tuple(items), error=schedule.error)
        busy = schedule_blocks(free_of, Interval(row.start, row.end), rules)
    except CalendarError as exc:
        await undo()
        await audit(w.principal, w.tenant_id, operation, [into], f"error:{exc.code}", w.request_id, stats)
        raise
    if busy or event is None:
        await undo()
        await audit(w.principal, w.tenant_id, operation, [into], "slot_taken", w.request_id, stats)
        raise SlotTakenError() if busy else ConflictError("This interview is no longer in Outlook.")
    attendees = [
        {"emailAddress": {"address": a}, "type": kind}
        for a, (kind, _r) in event.attendees.items()
        if a not in {out, into}
    ]
    attendees.append({"emailAddress": {"address": into}, "type": "required"})
    try:
        await graph.update_event(w.token, w.organizer, row.event_id, {"attendees": attendees}, stats=stats)
    except CalendarError as exc:
        await undo()
        await audit(
            w.principal, w.tenant_id, operation, [out, into], f"error:{exc.code}", w.request_id, stats
        )
        raise
    await audit(w.principal, w.tenant_id, operation, [out, into], "ok", w.request_id, stats)
    return swapped


async def relink_candidate(
    graph: GraphClient, audit: AuditFn, w: Any, row: storage.InterviewRow, op: str
) -> None:
    """PATCH ``row``'s candidate invite: its join link ``row.join_url`` and ``row``'s time (``w``:
    the `booking.Writer`). Raises the Graph error (audited)."""
    email = row.attendees[-1] if row.attendees else ""
    shape = {"subject": row.subject, **event_times(row.start, row.end)}
    body = candidate_event(
        shape, candidate_name=row.candidate_name, candidate_email=email, join_url=row.join_url or ""
    )
    stats = CallStats()
    try:
        await graph.update_event(
            w.token,
            w.organizer,
            row.candidate_event_id or "",
            {"body": body["body"], **event_times(row.start, row.end)},
            stats=stats,
        )
    except CalendarError as exc:
        await audit(w.principal, w.tenant_id, op, [w.organizer], f"error:{exc.code}", w.request_id, stats)
        raise
    await audit(w.principal, w.tenant_id, op, [w.organizer], "ok", w.request_id, stats)


def holds_event(row: storage.InterviewRow | None, event_id: str) -> bool:
    """Whether ``row`` is confirmed with exactly this Graph event (e.g. by the reconciler)."""
    return row is not None and row.status is storage.InterviewStatus.CONFIRMED and row.event_id == event_id
