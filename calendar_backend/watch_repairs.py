"""Repairs of a drift: computed at once when it is recorded, applied by the manager (one tap) or,
for a pool with ``auto_repair`` on, by the watcher itself.

Options (each ``{"id", "kind", ...}``, ids stable per drift row):

- ``time-1``, ``time-2`` (kind ``move``): new times for the same people (`SlotSearch.open_slots`
  with the tenant's app-only token, OpenSlot's own reservations left out);
- ``replace-1``, ``replace-2`` (kind ``replace``, for a decline or a conflict): another person at
  the same time. When the person was drawn from a pool for this interview, from the SAME pool by
  its rules (`watch_pool_repairs`: free, caps, load, hot hours, the mailbox gate); otherwise the
  **optional attendees of the panel event** who are free then (free/busy and no OpenSlot booking);
- ``restore`` (kind ``move``, for a move made in Outlook): back to the booked time;
- ``rebook`` (for a deleted event, when the panel is still free then): the same people at the
  same time, a new booking (`watch_rebook`);
- ``release`` (for a deleted event): cancel the booking in OpenSlot (the candidate's own invite
  is cancelled too; the panel event is already gone). For a loop's session the WHOLE loop is
  cancelled (``"scope": "loop"``: a loop is cancelled whole) and no ``time-N`` is offered (a loop
  is moved whole); ``rebook`` re-creates the session in its loop.
- ``time-N`` of a deleted event is applied as a ``rebook`` at that time (the event to move is gone).

`apply` claims the drift row first (``applying``: a row is applied at most once however many
taps race), then makes ONE Outlook write through `booking.Bookings` (``move`` /
``replace_attendee`` / ``create`` / ``cancel``), reserve-before-write, with the manager's
delegated token after lock 2 and the mailbox gate for every person involved; the row is then
``applied`` (a failure opens it again; a taken person or a reached cap answers 409 with the
repairs computed again, ``repairs``). `auto_repair` is the watcher's own apply (module
``watch.py`` calls it right after the repairs are stored).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace as with_fields
from datetime import datetime, timedelta
from typing import Any

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.availability import BusyRules
from calendar_backend.booking import Bookings, Writer
from calendar_backend.errors import (
    CalendarError,
    CapReachedError,
    ConflictError,
    NotFoundError,
    SlotTakenError,
    ValidationError,
)
from calendar_backend.gate import Probe
from calendar_backend.graph import GraphClient
from calendar_backend.graph_watch import EventStatus, free_busy
from calendar_backend.pool_groups import PoolGroups
from calendar_backend.search import SlotSearch
from calendar_backend.storage import watch as store_watch
from calendar_backend.storage.watch_apply import pass_over
from calendar_backend.tenancy import Tenancy, TenantContext
from calendar_backend.watch_model import panel_of
from calendar_backend.watch_pool_repairs import PoolReplacements, busy_over
from calendar_backend.watch_rebook import can_rebook, rebook, release_loop
from calendar_backend.watch_recover import ApplyRecovery

log = logging.getLogger(__name__)
WATCHER = "watcher"  # the audit actor of an auto-repair

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
        groups: PoolGroups | None = None,
        crash_point: Callable[[str], None] | None = None,
    ) -> None:
        self._crash_point = crash_point or (lambda _name: None)  # test hook (OPENSLOT_CRASH_AT)
        self._store = store
        self._graph = graph
        self._search = search
        self._bookings = bookings
        self._tenancy = tenancy
        self._rules = rules
        self._clock = clock
        self._pools = PoolReplacements(store, graph, tenancy, rules, clock, groups)

    # ---- computing -----------------------------------------------------------------------------
    async def plan(
        self, row: storage.InterviewRow, drift: store_watch.DriftRow, token: str, event: EventStatus | None
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if drift.kind == "deleted" and await self._rebookable(row, token):
            out.append({"id": "rebook", "kind": "rebook", "start": _z(row.start), "end": _z(row.end)})
        if drift.kind == "moved":
            out.append({"id": "restore", "kind": "move", "start": _z(row.start), "end": _z(row.end)})
        if drift.kind in {"declined", "conflict"}:
            pool_id = await self._pools.seat_pool(row, drift.who)
            if pool_id is not None:  # drawn from a pool: the same pool's rules
                taken = [*panel_of(row), *drift.passed_over]  # never someone passed over
                people = await self._pools.candidates(row, pool_id, token, taken, OPTIONS)
            else:  # the optional attendees of the panel event
                alternates = [
                    a
                    for a, (kind, _r) in (event.attendees.items() if event is not None else ())
                    if kind == "optional" and a not in panel_of(row) and a not in drift.passed_over
                ]
                people = await self._free_at(row, token, alternates)
            for n, person in enumerate(people, start=1):
                out.append({"id": f"replace-{n}", "kind": "replace", "out": drift.who, "in": person})
        loop_gone = drift.kind == "deleted" and row.loop_id is not None  # a loop moves whole
        for n, (start, end) in enumerate([] if loop_gone else await self._new_times(row, token), start=1):
            out.append({"id": f"time-{n}", "kind": "move", "start": _z(start), "end": _z(end)})
        if drift.kind == "deleted":  # a loop's session: the loop is cancelled whole
            out.append({"id": "release", "kind": "release", **({"scope": "loop"} if row.loop_id else {})})
        return out

    async def _rebookable(self, row: storage.InterviewRow, token: str) -> bool:
        """Whether the panel is still free at the deleted interview's own time (its own copies of
        the deleted event not counted; no other OpenSlot booking then)."""
        panel = panel_of(row)
        if not panel or row.start <= self._clock() or not can_rebook(row):
            return False
        schedules = await free_busy(self._graph, token, row.organizer_upn, panel[:20], row.start, row.end)
        if any(busy_over(schedules[p], row, self._rules) for p in panel[:20]):
            return False
        async with self._store.transaction() as tx:
            found = await storage.find_conflicts(tx, row.tenant_id, panel, row.start, row.end)
        return all(r.id == row.id for r in found)

    async def _free_at(self, row: storage.InterviewRow, token: str, people: list[str]) -> list[str]:
        if not people:
            return []
        schedules = await free_busy(self._graph, token, row.organizer_upn, people[:20], row.start, row.end)
        free = [p for p in people[:20] if not busy_over(schedules[p], row, self._rules)]
        async with self._store.transaction() as tx:
            booked = {
                p for p in free if await storage.find_conflicts(tx, row.tenant_id, [p], row.start, row.end)
            }
        return [p for p in free if p not in booked][:OPTIONS]

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
            the interview changed. ValidationError: not one of its repairs. SlotTakenError or
            CapReachedError (``repairs``: the fresh ones), PermissionDeniedError (the mailbox
            gate), or the Graph error.
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
        people, rooms = await self._people(ctx, row, repair)
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
            newcomer = str(repair.get("in", "")).lower() if repair["kind"] == "replace" else ""
            if refusal is not None and newcomer and {m.lower() for m in refusal.mailboxes} == {newcomer}:
                raise await self._pass_over(drift, row, newcomer, token)  # 409, fresh repairs
            if refusal is not None:
                raise refusal.error()
        w = Writer(principal, principal.tenant_id, token, row.organizer_upn, request_id)
        done = await self._apply(w, drift, row, repair, "applied")
        return {"id": drift.id, "status": "applied", "repair": repair_id, "interview_id": done.id}

    async def _people(
        self, ctx: TenantContext, row: storage.InterviewRow, repair: dict[str, Any]
    ) -> tuple[list[str], list[str]]:
        """The mailboxes a repair touches, for the gate: ``(people, rooms)``."""
        if repair["kind"] == "release":
            return panel_of(row), []
        panel = panel_of(row)
        newcomer = [str(repair["in"]).lower()] if repair["kind"] == "replace" else []
        rooms = sorted(await self._tenancy.rooms_among(ctx, panel))
        return [p for p in panel if p not in rooms] + newcomer, rooms

    async def _apply(
        self,
        w: Writer,
        drift: store_watch.DriftRow,
        row: storage.InterviewRow,
        repair: dict[str, Any],
        status: str,
    ) -> storage.InterviewRow:
        """Claim the drift row (at most once), make the ONE Outlook update, settle it, audit."""
        if self._passed(row, repair):  # a stale tap: never book or move into the past
            raise ConflictError("That time has passed; pick another repair.")
        async with self._store.transaction() as tx:
            ref = f"openslot-rebook-{uuid.uuid4().hex}"  # the transactionId a rebook will use
            if not await store_watch.claim_drift(tx, drift.id, str(repair["id"]), self._clock(), ref):
                raise ConflictError("This change was already repaired.")
        self._crash_point("watch_after_claim")  # a death here: `recover` opens the row again
        try:
            done = await self._write(w, row, repair, ref, drift.kind == "deleted")
        except Exception as exc:  # a cancelled task is left to `recover`, like a death: unsure
            async with self._store.transaction() as tx:
                await store_watch.settle_drift(tx, drift.id, "open", None)
            if isinstance(exc, SlotTakenError | CapReachedError) and repair["kind"] != "release":
                exc.repairs = await self._fresh(drift, row, w.token)
            raise
        self._crash_point("watch_after_write")  # a death here: `recover` closes it as applied
        async with self._store.transaction() as tx:
            if not await store_watch.settle_drift(tx, drift.id, status, str(repair["id"])):
                log.warning("watch: a repair was settled by recovery meanwhile")
            if repair["kind"] == "replace":
                await store_watch.forget_interview(tx, row.id)  # the watcher picks up the new copy
            await self._tenancy.audit(
                w.principal,
                w.tenant_id,
                "watch.repair",
                [drift.who],
                f"{status}:{repair['id']}",
                w.request_id,
                tx=tx,
            )
        return done

    def _passed(self, row: storage.InterviewRow, repair: dict[str, Any]) -> bool:
        """Whether the time a ``move`` or ``rebook`` repair would book has already begun (the
        card may be tapped long after it was posted)."""
        if repair["kind"] == "rebook":
            return row.start <= self._clock()
        if repair["kind"] == "move":
            start = datetime.fromisoformat(str(repair["start"]).replace("Z", "+00:00"))
            return start <= self._clock()
        return False

    async def _write(
        self, w: Writer, row: storage.InterviewRow, repair: dict[str, Any], ref: str, gone: bool
    ) -> storage.InterviewRow:
        """The ONE Outlook write of ``repair`` (``gone``: the organizer's event was deleted, so a
        new time is a new booking there: `rebook` at that time)."""
        if repair["kind"] == "move":
            start = datetime.fromisoformat(str(repair["start"]).replace("Z", "+00:00"))
            end = datetime.fromisoformat(str(repair["end"]).replace("Z", "+00:00"))
            if gone:
                return await rebook(self._store, self._bookings, w, row, panel_of(row), ref, (start, end))
            return await self._bookings.move(
                w, row, start, end, operation="watch.repair.move", recheck_operation="watch.repair.recheck"
            )
        if repair["kind"] == "replace":
            return await self._bookings.replace_attendee(
                w, row, str(repair["out"]), str(repair["in"]).lower(), "watch.repair.replace"
            )
        if repair["kind"] == "rebook":
            return await rebook(self._store, self._bookings, w, row, panel_of(row), ref)
        if row.loop_id is not None:
            await release_loop(self._store, self._bookings, w, row)
            return row
        why = "This interview was removed from Outlook."
        await self._bookings.cancel(w, row, why, "watch.repair.release")
        return row

    async def _fresh(self, drift: store_watch.DriftRow, row: storage.InterviewRow, token: str) -> list[Any]:
        """The drift row's repairs computed again (after a 409), stored and returned."""
        async with self._store.transaction() as tx:
            current = await storage.get_interview(tx, row.id)
        try:
            repairs = await self.plan(current or row, drift, token, None)
        except (CalendarError, ValueError):
            return list(drift.repairs)
        async with self._store.transaction() as tx:
            await store_watch.set_repairs(tx, drift.id, repairs)
        return repairs

    async def _pass_over(
        self, drift: store_watch.DriftRow, row: storage.InterviewRow, newcomer: str, token: str
    ) -> ConflictError:
        """A same-pool newcomer the manager cannot read (delegated readability, found only at
        apply): remembered on the drift row (never offered again) and a 409 with the repairs
        computed again without them."""
        async with self._store.transaction() as tx:
            passed = await pass_over(tx, drift.id, newcomer)
        exc = ConflictError("You cannot see this person's calendar in Outlook; pick another repair.")
        exc.repairs = await self._fresh(with_fields(drift, passed_over=passed), row, token)
        return exc

    # ---- the watcher's side: applies whose process died ------------------------------------------
    async def recover(self, token_of: Callable[[str], Awaitable[str | None]]) -> int:
        """Settle drift rows left ``applying`` longer than `APPLY_LEASE` (their process died):
        closed as applied when the Outlook write happened, else opened again (`watch_recover`).
        Returns how many were settled."""
        recovery = ApplyRecovery(self._store, self._graph, self._bookings, self._tenancy, self._clock)
        return await recovery.run(token_of)

    # ---- the watcher's side: a pool's auto-repair ----------------------------------------------
    async def auto_repair(
        self,
        row: storage.InterviewRow,
        drift: store_watch.DriftRow,
        repairs: list[dict[str, Any]],
        token: str,
    ) -> bool:
        """Apply the first same-time pool replacement itself when the decliner's pool has
        ``auto_repair`` on (the tenant's app-only ``token``, the organizer's mailbox, booking.py,
        the mailbox gate, audited with actor ``watcher``); the drift row becomes
        ``auto_applied``. Returns whether it did; a failure leaves the row open for the manager."""
        replace = next((r for r in repairs if r.get("kind") == "replace"), None)
        if drift.kind != "declined" or replace is None:
            return False
        pool_id = await self._pools.seat_pool(row, drift.who)
        if pool_id is None:
            return False
        async with self._store.transaction() as tx:
            if not await store_watch.pool_auto_repair(tx, pool_id):
                return False
        watcher = Principal(row.tenant_id, WATCHER, frozenset())
        request_id = str(uuid.uuid4())
        try:
            ctx = await self._tenancy.context(watcher)
            people, rooms = await self._people(ctx, row, replace)
            refusal = await self._tenancy.check_mailboxes(
                watcher, ctx, "watch.repair", request_id, [row.organizer_upn.lower(), *people], rooms
            )
            if refusal is not None:
                return False
            w = Writer(watcher, row.tenant_id, token, row.organizer_upn, request_id)
            await self._apply(w, drift, row, replace, "auto_applied")
        except CalendarError as exc:
            log.warning("watch: auto-repair not applied (%s)", exc.code)
            return False
        return True
