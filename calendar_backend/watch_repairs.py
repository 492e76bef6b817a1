"""Repairs of a drift: computed at once when it is recorded, applied by the manager (one tap).

Options (each ``{"id", "kind", ...}``, ids stable per drift row):

- ``time-1``, ``time-2`` (kind ``move``): new times for the same people (`SlotSearch.open_slots`
  with the tenant's app-only token, OpenSlot's own reservations left out);
- ``replace-1``, ``replace-2`` (kind ``replace``, for a decline or a conflict): another person at
  the same time. For now the candidates are the **optional attendees of the panel event** (the
  original request's ``optional`` list, read from the event with ``$select=attendees``) who are
  free then (free/busy and no OpenSlot booking); interviewer pools (caps, load) come later;
- ``restore`` (kind ``move``, for a move made in Outlook): back to the booked time;
- ``release`` (for a deleted event): cancel the booking in OpenSlot (the candidate's own invite
  is cancelled too; the panel event is already gone).

`apply` makes ONE Outlook update through `booking.Bookings` (``move`` / ``replace_attendee`` /
``cancel``), reserve-before-write, with the manager's delegated token after lock 2 and the
mailbox gate for every person involved; the drift row is then closed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.availability import BusyRules
from calendar_backend.booking import Bookings, Writer
from calendar_backend.calendar_view import schedule_blocks
from calendar_backend.errors import ConflictError, NotFoundError, ValidationError
from calendar_backend.gate import Probe
from calendar_backend.graph import GraphClient, Schedule
from calendar_backend.graph_watch import EventStatus, free_busy
from calendar_backend.search import SlotSearch
from calendar_backend.slots import Interval
from calendar_backend.storage import watch as store_watch
from calendar_backend.tenancy import Tenancy
from calendar_backend.watch import panel_of

OPTIONS = 2


def _z(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class RepairPlanner:
    """Computes and applies repairs. Safe to use concurrently."""

    def __init__(
        self,
        store: storage.Store,
        graph: GraphClient,
        search: SlotSearch,
        bookings: Bookings,
        tenancy: Tenancy,
        rules: BusyRules,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._graph = graph
        self._search = search
        self._bookings = bookings
        self._tenancy = tenancy
        self._rules = rules
        self._clock = clock

    # ---- computing -----------------------------------------------------------------------------
    async def plan(
        self, row: storage.InterviewRow, drift: store_watch.DriftRow, token: str, event: EventStatus | None
    ) -> list[dict[str, Any]]:
        if drift.kind == "deleted":
            return [{"id": "release", "kind": "release"}]
        out: list[dict[str, Any]] = []
        if drift.kind == "moved":
            out.append({"id": "restore", "kind": "move", "start": _z(row.start), "end": _z(row.end)})
        if drift.kind in {"declined", "conflict"} and event is not None:
            alternates = [
                a
                for a, (kind, _r) in event.attendees.items()
                if kind == "optional" and a not in panel_of(row)
            ]
            for n, person in enumerate(await self._free_at(row, token, alternates), start=1):
                out.append({"id": f"replace-{n}", "kind": "replace", "out": drift.who, "in": person})
        for n, (start, end) in enumerate(await self._new_times(row, token), start=1):
            out.append({"id": f"time-{n}", "kind": "move", "start": _z(start), "end": _z(end)})
        return out

    async def _free_at(self, row: storage.InterviewRow, token: str, people: list[str]) -> list[str]:
        if not people:
            return []
        schedules = await free_busy(self._graph, token, row.organizer_upn, people[:20], row.start, row.end)
        free = [p for p in people[:20] if not self._busy(schedules[p], row)]
        async with self._store.transaction() as tx:
            booked = {
                p for p in free if await storage.find_conflicts(tx, row.tenant_id, [p], row.start, row.end)
            }
        return [p for p in free if p not in booked][:OPTIONS]

    def _busy(self, schedule: Schedule, row: storage.InterviewRow) -> bool:
        """Busy over the interview, not counting one item exactly at its time: an optional
        attendee's own copy of this very event."""
        if schedule.error:
            return True
        over = [i for i in schedule.items if i.start < row.end and row.start < i.end]
        own = [i for i in over if (i.start, i.end) == (row.start, row.end)]
        if own:
            over.remove(own[0])
        slot = Interval(row.start, row.end)
        return schedule_blocks(Schedule(schedule.address, tuple(over)), slot, self._rules)

    async def _new_times(self, row: storage.InterviewRow, token: str) -> list[tuple[datetime, datetime]]:
        panel = panel_of(row)
        if not panel:
            return []
        lo = max(self._clock() + timedelta(hours=1), row.start - timedelta(days=1))
        hi = max(row.end, lo) + timedelta(days=5)
        found = await self._search.open_slots(
            None,
            token,
            panel,
            [],
            lo,
            hi,
            duration=row.end - row.start,
            step=timedelta(minutes=30),
            buffer=timedelta(0),
            notice=timedelta(0),
            want_all=False,
            limit=10,
            request_id="watch",
            operation="watch.repair.search",
            requester=row.organizer_upn,
            tenant_id=row.tenant_id,
            ignore=(row.start, row.end),
        )
        free = await self._search.unreserved(row.tenant_id, panel, found, lo, hi)
        times = [(s.start, s.end) for s in free.slots if (s.start, s.end) != (row.start, row.end)]
        return times[:OPTIONS]

    # ---- the manager's side ----------------------------------------------------------------------
    async def open_items(self, principal: Principal) -> list[store_watch.DriftRow]:
        """The caller's own open drift items (lock 2 first)."""
        await self._tenancy.context(principal)
        async with self._store.transaction() as tx:
            return await store_watch.open_drift(tx, principal.tenant_id, principal.oid)

    async def apply(
        self, principal: Principal, assertion: str, drift_id: str, repair_id: str, request_id: str
    ) -> dict[str, Any]:
        """Apply one computed repair with ONE Outlook update (booking.py); closes the drift.

        Raises:
            NotFoundError: no such drift item of the caller. ConflictError: already applied, or
            the interview changed. ValidationError: not one of its repairs. SlotTakenError,
            PermissionDeniedError (the mailbox gate), or the Graph error.
        """
        ctx = await self._tenancy.context(principal)
        async with self._store.transaction() as tx:
            drift = await store_watch.get_drift(tx, drift_id)
            row = await storage.get_interview(tx, drift.interview_id) if drift else None
        if drift is None or row is None or drift.tenant_id != principal.tenant_id:
            raise NotFoundError()
        if drift.organizer_oid != principal.oid:
            raise NotFoundError()
        if drift.status != "open":
            raise ConflictError("This change was already repaired.")
        repair = next((r for r in drift.repairs if r.get("id") == repair_id), None)
        if repair is None:
            raise ValidationError("repair", "is not one of this item's repairs")
        panel = panel_of(row)
        newcomer = [str(repair["in"]).lower()] if repair["kind"] == "replace" else []
        rooms = sorted(await self._tenancy.rooms_among(ctx, panel)) if repair["kind"] != "release" else []
        people = [p for p in panel if p not in rooms] + newcomer
        if repair["kind"] != "release":  # releasing reads no calendar and only withdraws
            refusal = await self._tenancy.check_mailboxes(
                principal, ctx, "watch.repair", request_id, people, rooms
            )
            if refusal is not None:
                raise refusal.error()
        token = await self._tenancy.user_token(principal, ctx, assertion)
        if repair["kind"] != "release":  # delegated readability, with the manager's own token
            probe = Probe(token, row.organizer_upn, row.start)
            refusal = await self._tenancy.check_mailboxes(
                principal, ctx, "watch.repair", request_id, people, rooms, probe=probe, static=False
            )
            if refusal is not None:
                raise refusal.error()
        w = Writer(principal, principal.tenant_id, token, row.organizer_upn, request_id)
        if repair["kind"] == "move":
            start = datetime.fromisoformat(str(repair["start"]).replace("Z", "+00:00"))
            end = datetime.fromisoformat(str(repair["end"]).replace("Z", "+00:00"))
            done = await self._bookings.move(
                w, row, start, end, operation="watch.repair.move", recheck_operation="watch.repair.recheck"
            )
        elif repair["kind"] == "replace":
            done = await self._bookings.replace_attendee(
                w, row, str(repair["out"]), newcomer[0], "watch.repair.replace"
            )
        else:
            await self._bookings.cancel(
                w, row, "This interview was removed from Outlook.", "watch.repair.release"
            )
            done = row
        async with self._store.transaction() as tx:
            await store_watch.close_drift(tx, drift.id)
            if repair["kind"] == "replace":
                await store_watch.forget_interview(tx, row.id)  # the watcher picks up the new copy
            await self._tenancy.audit(
                principal,
                principal.tenant_id,
                "watch.repair",
                [drift.who],
                f"applied:{repair_id}",
                request_id,
                tx=tx,
            )
        return {"id": drift.id, "status": "applied", "repair": repair_id, "interview_id": done.id}
