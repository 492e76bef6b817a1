"""Drift rows left ``applying`` by a process that died mid-apply (issue 19 follow-up).

`RepairPlanner.apply` claims a drift row (``applying``, with ``applying_since`` and the repair's
id) before its ONE Outlook write. When the process dies before it settles the row, the row would
stay out of every list forever. The watcher's periodic round (`Watcher.round`) calls
`RepairPlanner.recover`, which looks at rows claimed longer than `APPLY_LEASE` ago and asks
Outlook (the tenant's app-only token, the organizer's mailbox, the mailbox gate) whether the
write happened, by the repair's kind:

- ``move``: the interview row is at the repair's time, or the organizer's event is (the hold is
  then completed by `calendar_backend.recovery`);
- ``replace``: the organizer's event lists the newcomer and not the leaver; if not, a swap the
  dead process committed in the database is undone (attendee and pool seat);
- ``rebook`` (and ``time-N`` of a deleted event): the new row (its transactionId kept on the
  drift row, ``apply_ref``) is confirmed, or Outlook holds its event (confirmed here, then
  `watch_rebook.take_over`); else it is failed;
- ``release``: the interview is cancelled (a loop's session: cancelled last, so its loop is then
  marked cancelled), or the candidate's invite is (the row is then cancelled here).

Happened: the row is closed as ``applied`` (no second write). Not happened: ``open`` again, so
the manager can tap once more. Graph unreachable or the gate refusing: left for the next round.
Every decision is audited (``watch.repair``, actor ``watcher``, ``recovered:...``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.booking import Bookings, Writer
from calendar_backend.errors import CalendarError
from calendar_backend.graph import GraphClient
from calendar_backend.graph_watch import read_event
from calendar_backend.storage import watch as store_watch
from calendar_backend.storage.interviews import lock_booking
from calendar_backend.tenancy import Tenancy
from calendar_backend.watch_rebook import take_over

log = logging.getLogger(__name__)
APPLY_LEASE = timedelta(minutes=2)  # far longer than one apply (a few Graph calls) takes
RECOVERER = "watcher"  # the audit actor


def _when(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class ApplyRecovery:
    """Settles stale ``applying`` drift rows (module docstring). Safe to run concurrently."""

    def __init__(
        self,
        store: storage.Store,
        graph: GraphClient,
        bookings: Bookings,
        tenancy: Tenancy,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._graph = graph
        self._bookings = bookings
        self._tenancy = tenancy
        self._clock = clock

    async def run(self, token_of: Callable[[str], Awaitable[str | None]]) -> int:
        """Settle every row claimed before the lease; returns how many were settled."""
        async with self._store.transaction() as tx:
            rows = await store_watch.stale_applying(tx, self._clock() - APPLY_LEASE)
        settled = 0
        for drift in rows:
            token = await token_of(drift.tenant_id)
            if token is None:
                continue
            try:
                settled += await self._settle(drift, token)
            except (CalendarError, ValueError) as exc:  # unsure: the next round looks again
                log.warning("watch: a stale apply was not settled (%s)", type(exc).__name__)
        return settled

    async def _settle(self, drift: store_watch.DriftRow, token: str) -> int:
        async with self._store.transaction() as tx:
            row = await storage.get_interview(tx, drift.interview_id)
        repair = next((r for r in drift.repairs if r.get("id") == drift.applied_repair), None)
        principal = Principal(drift.tenant_id, RECOVERER, frozenset())
        request_id = str(uuid.uuid4())
        landed = False
        if row is not None and repair is not None:
            ctx = await self._tenancy.context(principal)
            refusal = await self._tenancy.check_mailboxes(
                principal, ctx, "watch.recover", request_id, [row.organizer_upn.lower()], []
            )
            if refusal is not None:
                return 0
            w = Writer(principal, drift.tenant_id, token, row.organizer_upn, request_id)
            landed = await self._landed(w, drift, row, repair)
        status = "applied" if landed else "open"
        async with self._store.transaction() as tx:
            done = await store_watch.settle_drift(
                tx, drift.id, status, drift.applied_repair if landed else None
            )
            if done:
                await self._tenancy.audit(
                    principal,
                    drift.tenant_id,
                    "watch.repair",
                    [drift.who],
                    f"recovered:{status}:{drift.applied_repair}",
                    request_id,
                    tx=tx,
                )
        return int(done)

    async def _landed(
        self, w: Writer, drift: store_watch.DriftRow, row: storage.InterviewRow, repair: dict[str, Any]
    ) -> bool:
        """Whether the repair's Outlook write happened (finishing its database side if so)."""
        kind = repair.get("kind")
        if kind == "rebook" or (kind == "move" and drift.kind == "deleted"):  # a new booking
            return await self._rebooked(w, drift, row)
        if kind == "move":
            target = (_when(repair["start"]), _when(repair["end"]))
            if (row.start, row.end) == target:
                return True
            found = (
                await self._graph.get_event(w.token, row.organizer_upn, row.event_id)
                if row.event_id
                else None
            )
            return found is not None and not found[2] and found[:2] == target
        if kind == "replace":
            return await self._replaced(w, row, str(repair["out"]).lower(), str(repair["in"]).lower())
        if kind == "release":
            return await self._released(w, row)
        return False

    async def _replaced(self, w: Writer, row: storage.InterviewRow, out: str, into: str) -> bool:
        event = (
            await read_event(self._graph, w.token, row.organizer_upn, row.event_id) if row.event_id else None
        )
        if event is not None and into in event.attendees and out not in event.attendees:
            return True
        if into in {a.lower() for a in row.attendees}:  # the dead process swapped the row: undo it
            async with self._store.transaction() as tx:
                await lock_booking(tx, row.tenant_id)
                seat = await store_watch.pool_seat(tx, row.id, into)
                if await store_watch.swap_attendee(tx, row.id, row.version, into, out) and seat:
                    await store_watch.drop_seat(tx, row.id, into)
                    await store_watch.put_seat(tx, row.id, out, *seat)
        return False

    async def _rebooked(self, w: Writer, drift: store_watch.DriftRow, row: storage.InterviewRow) -> bool:
        if not drift.apply_ref:
            return False
        async with self._store.transaction() as tx:
            fresh = await storage.get_interview_by_transaction(tx, drift.apply_ref)
        if fresh is None:  # died before its reservation
            return False
        if fresh.status is storage.InterviewStatus.PENDING:
            found = await self._graph.find_event_by_transaction(w.token, row.organizer_upn, drift.apply_ref)
            async with self._store.transaction() as tx:
                if found is None:  # the create never landed
                    await storage.mark_interview(tx, fresh.id, "failed")
                    return False
                join = (found.get("onlineMeeting") or {}).get("joinUrl")
                await storage.confirm_interview(tx, fresh.id, str(found["id"]), join)
                fresh = await storage.get_interview(tx, fresh.id) or fresh
        if fresh.status is not storage.InterviewStatus.CONFIRMED:
            return False
        if row.status is storage.InterviewStatus.CONFIRMED:  # not handed over yet
            await take_over(self._store, self._bookings, w, row, fresh)
        return True

    async def _released(self, w: Writer, row: storage.InterviewRow) -> bool:
        if row.status is storage.InterviewStatus.CANCELLED:  # a loop's: its sessions were first
            if row.loop_id is not None:
                async with self._store.transaction() as tx:
                    await storage.mark_loop(tx, row.loop_id, "cancelled", expected="confirmed")
            return True
        if row.loop_id is not None:  # the other sessions may be cancelled: a tap finishes it
            return False
        if not row.candidate_event_id:
            return False
        found = await self._graph.get_event(w.token, row.organizer_upn, row.candidate_event_id)
        if found is not None and not found[2]:
            return False
        async with self._store.transaction() as tx:  # Outlook cancelled: finish the release
            await storage.mark_interview(tx, row.id, "cancelled")
        return True
