"""The ``rebook`` repair of a deleted interview (issue 19): the organizer's event is gone, so the
same people are booked again at the same time, through booking.py like any booking:

- **reserve**: one transaction under the tenant's booking lock: the interview must be unchanged
  (confirmed, same ``version``), nobody of the panel may hold another OpenSlot booking then, and a
  new ``pending`` row is inserted with a NEW ``transactionId`` (same people, time, subject);
- **recheck**: `Bookings.recheck` (live free/busy; the deleted event's own copies, exactly at
  that time, are not counted) withdraws the new row when someone is busy now;
- **write**: ONE Outlook create (`Bookings.create`); the candidate's own invite is KEPT (its time
  did not change): the new row takes it over, the old row becomes ``cancelled`` and hands its pool
  seats to the new one, in one transaction; then the candidate's invite gets ONE update, the new
  meeting's Teams join link (`Bookings.relink_candidate`: the old link points to the deleted
  meeting). The candidate gets an update, never a second invite.

A loop's session is rebooked at its own time only (the new row takes its place in the loop:
`storage.watch.hand_over_loop`; the loop's other sessions are untouched). A loop is moved and
cancelled whole (loop_booking.py), so a deleted session gets no ``time-N`` and its ``release``
cancels the whole loop (`release_loop`; the repair says ``"scope": "loop"``).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

from calendar_backend import storage
from calendar_backend.booking import Bookings, Writer, candidate_address
from calendar_backend.errors import ConflictError, SlotTakenError
from calendar_backend.invites import panel_event
from calendar_backend.storage import watch as store_watch
from calendar_backend.storage.interviews import insert_row, lock_booking
from calendar_backend.storage.watch_apply import recheck_seat_caps, set_join_url


def can_rebook(row: storage.InterviewRow) -> bool:
    """A confirmed interview (a loop's session too: at its own time only)."""
    return row.status is storage.InterviewStatus.CONFIRMED


async def rebook(
    store: storage.Store,
    bookings: Bookings,
    w: Writer,
    row: storage.InterviewRow,
    panel: list[str],
    txn: str | None = None,
    at: tuple[datetime, datetime] | None = None,
) -> storage.InterviewRow:
    """Book ``row``'s people again at its time, or at ``at`` (a ``time-N`` repair of a deleted
    event: a move of an event that is gone), with the transactionId ``txn`` (kept on the drift
    row: `watch_recover` looks it up after a crash). Raises `ConflictError` (the interview
    changed; a loop's session at another time), `SlotTakenError` (someone is taken now),
    `CapReachedError` (at a new time, a pool member past a cap there: rechecked in the reserve's
    transaction, before the new row, which then counts as their load) or the Graph error."""
    start, end = at or (row.start, row.end)
    if not can_rebook(row) or not panel or (row.loop_id is not None and (start, end) != (row.start, row.end)):
        raise ConflictError("This interview can no longer be booked again.")
    async with store.transaction() as tx:
        await lock_booking(tx, row.tenant_id)
        current = await storage.get_interview(tx, row.id)
        if current is None or current.version != row.version or current.status != row.status:
            raise ConflictError("This interview changed meanwhile; please try again.")
        found = await storage.find_conflicts(tx, row.tenant_id, panel, start, end)
        if any(r.id != row.id for r in found):
            raise SlotTakenError()
        if (start, end) != (row.start, row.end):  # the pool caps at the new time (as a move's)
            await recheck_seat_caps(tx, row.tenant_id, row.id, start)
        fresh = await insert_row(  # the old row, still confirmed, is the only overlap allowed
            tx,
            tenant_id=row.tenant_id,
            organizer_oid=row.organizer_oid,
            organizer_upn=row.organizer_upn,
            transaction_id=txn or f"openslot-rebook-{uuid.uuid4().hex}",
            start=start,
            end=end,
            attendees=[*panel, candidate_address(row).lower()],
            candidate_name=row.candidate_name,
            subject=row.subject,
            source=row.source,
            offer_id=None,
            now=None,
        )
    await bookings.recheck(w, fresh, panel, "watch.repair.recheck", ignore=(row.start, row.end))
    event = panel_event(row.candidate_name, panel, [], start, end, fresh.transaction_id, row.subject, None)
    join = await _loop_meeting(store, row)
    if join is not None:  # the loop's one Teams meeting, held by another session: reused
        event["isOnlineMeeting"] = False
        event.pop("onlineMeetingProvider", None)
        content = str(event["body"].get("content", "")) + f'<p>Teams: <a href="{join}">join</a></p>'
        event["body"] = {"contentType": "html", "content": content}
    done = await bookings.create(w, fresh, event, "watch.repair.rebook", join_url=join)
    return await take_over(store, bookings, w, row, done)


async def _loop_meeting(store: storage.Store, row: storage.InterviewRow) -> str | None:
    """The loop's shared join link when another confirmed session's event holds that meeting
    (loop_booking: the lowest session sharing the link created it), else None (not a loop's
    session, or ``row``'s deleted event was the meeting: a new one is made)."""
    if row.loop_id is None or not row.join_url:
        return None
    async with store.transaction() as tx:
        sessions = await storage.loop_sessions(tx, row.loop_id)
    sharing = [
        s for s in sessions if s.status is storage.InterviewStatus.CONFIRMED and s.join_url == row.join_url
    ]
    owner = min(sharing, key=lambda s: s.session_index or 0, default=None)
    return row.join_url if owner is not None and owner.id != row.id else None


async def take_over(
    store: storage.Store, bookings: Bookings, w: Writer, row: storage.InterviewRow, done: storage.InterviewRow
) -> storage.InterviewRow:
    """The rebooked ``done`` replaces ``row``: it takes the candidate's invite and the pool seats,
    ``row`` is cancelled (a loop's session: ``done`` takes its place in the loop), and the
    candidate's invite gets the NEW Teams join link and time (ONE update through booking.py).
    Idempotent (recovery runs it again after a crash)."""
    async with store.transaction() as tx:
        await store_watch.hand_over(tx, row.id, done.id, row.candidate_event_id)
        await store_watch.hand_over_loop(tx, row, done.id)
        await storage.mark_interview(tx, row.id, "cancelled")
        confirmed = await storage.get_interview(tx, done.id)
    current = confirmed or done
    if (
        current.candidate_event_id
        and current.join_url
        and (current.join_url != row.join_url or (current.start, current.end) != (row.start, row.end))
    ):
        await bookings.relink_candidate(w, current, "watch.repair.rebook.candidate")
    if row.loop_id is not None and row.join_url and current.join_url and current.join_url != row.join_url:
        await _relink_loop(store, bookings, w, row, current)
    return current


async def _relink_loop(
    store: storage.Store, bookings: Bookings, w: Writer, row: storage.InterviewRow, done: storage.InterviewRow
) -> None:
    """``row``'s deleted event held the loop's Teams meeting: the rebooked ``done``'s new meeting
    becomes the loop's; every other confirmed session that shared the dead link takes the new one
    and its candidate's invite gets ONE update (booking.py). The PATCH before the row's link, so a
    retry (recovery runs `take_over` again) finds what is left."""
    async with store.transaction() as tx:
        sessions = await storage.loop_sessions(tx, row.loop_id or "")
    for other in sessions:
        if other.id in {row.id, done.id} or other.status is not storage.InterviewStatus.CONFIRMED:
            continue
        if other.join_url != row.join_url:
            continue
        moved = dataclasses.replace(other, join_url=done.join_url)
        if other.candidate_event_id:
            await bookings.relink_candidate(w, moved, "watch.repair.rebook.loop")
        async with store.transaction() as tx:
            await set_join_url(tx, other.id, done.join_url or "")


async def release_loop(
    store: storage.Store, bookings: Bookings, w: Writer, row: storage.InterviewRow
) -> None:
    """``release`` of a loop's session: the whole loop is cancelled (a loop is booked, moved and
    cancelled whole): every other confirmed session first, ``row``'s last, then the loop (so a
    cancelled ``row`` means the loop's sessions are all cancelled: `watch_recover`)."""
    async with store.transaction() as tx:
        sessions = await storage.loop_sessions(tx, row.loop_id or "")
    why = "This interview was removed from Outlook."
    for other in sessions:
        if other.id != row.id and other.status is storage.InterviewStatus.CONFIRMED:
            await bookings.cancel(w, other, why, "watch.repair.release")
    await bookings.cancel(w, row, why, "watch.repair.release")
    async with store.transaction() as tx:
        await storage.mark_loop(tx, row.loop_id or "", "cancelled", expected="confirmed")
