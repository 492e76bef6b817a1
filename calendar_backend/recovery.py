"""Crash recovery: reconcile `pending` interviews that no live request is finishing any more.

A booking commits a `pending` row (with its deterministic Graph `transactionId`) before it creates the
Outlook event, and confirms the row after. A crash or a lost answer between those steps leaves the row
`pending`. For every pending row older than `stale_after` (longer than any live booking can take), the
reconciler asks Graph, with the tenant's app-only token, for the organizer's event carrying that
`transactionId`:

- found: the event exists, so the row becomes `confirmed` with its id and Teams join URL, after the
  candidate's own invite is found by its transactionId or, when the request died before writing it,
  written (`booking.ensure_candidate_event`: from the row, so without the role);
- not found: no event was created, so the row becomes `failed` (nothing to undo; the requester got an
  error or no answer, and a retry books afresh under a new transactionId after a live re-check);
- Graph or Entra fails: the row stays `pending` for the next run.

A stale *hold* (the new time of a move whose request died, see `calendar_backend.booking`) is
settled by `booking.settle_hold`: the move completes if Outlook has the event at the hold's time,
else the hold is released (counted as confirmed / failed).

A stale *loop* (``pending``: its request died between reserve and confirm, see
`calendar_backend.loop_booking`) is settled after its sessions: every session confirmed → the loop
is confirmed; any session failed → the loop is withdrawn (its confirmed sessions' events cancelled
through `booking.Bookings.cancel`, the loop ``failed``): never a partial loop. A session still
pending (Graph unreachable) leaves the loop for the next run.

A row a drift repair is applying (a ``rebook``'s new row, its transactionId the drift row's
``apply_ref`` while it is ``applying``) is left alone: the watcher's recovery (`watch_recover`)
settles it and hands the candidate's EXISTING invite over (this reconciler would write a second).

Each decision is one audit row (`interview.recover`) committed with the state change. Run by `serve`
at start-up and every `recovery_interval_s`, and by `python -m calendar_backend recovery run`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend import storage
from calendar_backend.allowlist import MailboxAllowList
from calendar_backend.audit import AuditEvent, append_audit
from calendar_backend.auth import Principal
from calendar_backend.availability import BusyRules
from calendar_backend.booking import Bookings, Writer, ensure_candidate_event, settle_hold
from calendar_backend.crypto import CredentialCipher
from calendar_backend.errors import CalendarError
from calendar_backend.gate import MailboxGate
from calendar_backend.graph import CallStats, GraphClient
from calendar_backend.sealing import tenant_credential_aad
from calendar_backend.storage.watch_apply import applying_owns
from calendar_backend.tokens import AppCredential, TokenBroker

log = logging.getLogger(__name__)

ACTOR = "system:recovery"


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What one reconciliation run did (counts of stale pending rows by outcome)."""

    confirmed: int = 0
    failed: int = 0
    left_pending: int = 0
    loops_confirmed: int = 0
    loops_withdrawn: int = 0

    def to_json(self) -> dict[str, int]:
        """The report as a JSON object."""
        doc = {"confirmed": self.confirmed, "failed": self.failed, "left_pending": self.left_pending}
        if self.loops_confirmed or self.loops_withdrawn:
            doc |= {"loops_confirmed": self.loops_confirmed, "loops_withdrawn": self.loops_withdrawn}
        return doc


class Reconciler:
    """Finishes or fails stale pending interviews. Safe to run concurrently with live bookings.

    Invariant after a run with Graph reachable: no pending row older than `stale_after` remains, and
    each confirmed row names the one event Graph holds for its transactionId.
    """

    def __init__(
        self,
        store: storage.Store,
        cipher: CredentialCipher,
        tokens: TokenBroker,
        graph: GraphClient,
        *,
        stale_after: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        gate: MailboxGate | None = None,
    ) -> None:
        self._store = store
        self._gate = gate or MailboxGate(store, graph, MailboxAllowList(graph))
        self._cipher = cipher
        self._tokens = tokens
        self._graph = graph
        self._stale_after = stale_after
        self._clock = clock

    async def run_once(self) -> RecoveryReport:
        """Reconcile every pending row created more than `stale_after` ago; never raises for Graph."""
        async with self._store.transaction() as tx:
            rows = await storage.list_stale_pending(tx, self._clock() - self._stale_after)
        tokens: dict[str, str | None] = {}
        outcomes = {"confirmed": 0, "failed": 0, "pending": 0}
        for row in rows:
            outcomes[await self._reconcile(row, tokens)] += 1
        async with self._store.transaction() as tx:
            loops = await storage.list_stale_pending_loops(tx, self._clock() - self._stale_after)
        settled = {"confirmed": 0, "failed": 0, "pending": 0}
        for loop in loops:
            settled[await self._settle_loop(loop, tokens)] += 1
        report = RecoveryReport(
            outcomes["confirmed"],
            outcomes["failed"],
            outcomes["pending"],
            settled["confirmed"],
            settled["failed"],
        )
        if rows or loops:
            log.info("recovery: %s", report.to_json())
        return report

    async def run_forever(self, interval: timedelta) -> None:
        """Run now, then every `interval` until cancelled; a failed run is logged, not fatal."""
        while True:
            try:
                await self.run_once()
            except Exception:  # the next run tries again; serving must not stop
                log.exception("recovery run failed")
            await asyncio.sleep(interval.total_seconds())

    async def _app_token(self, tenant_id: str, cache: dict[str, str | None]) -> str | None:
        if tenant_id not in cache:
            cache[tenant_id] = None
            async with self._store.transaction() as tx:
                tenant = await storage.get_tenant(tx, tenant_id)
            if tenant is not None and tenant.status == "active":
                raw = self._cipher.decrypt(tenant.credential_blob, aad=tenant_credential_aad(tenant_id))
                cache[tenant_id] = await self._tokens.for_app(tenant_id, AppCredential.from_bytes(raw))
        return cache[tenant_id]

    async def _reconcile(self, row: storage.InterviewRow, tokens: dict[str, str | None]) -> str:
        """One stale row: returns "confirmed", "failed" or "pending" (left for the next run)."""
        request_id = str(uuid.uuid4())
        stats = CallStats()
        async with self._store.transaction() as tx:
            if await applying_owns(tx, row.transaction_id):  # a rebook: the watcher's recovery's
                return "pending"
        try:
            token = await self._app_token(row.tenant_id, tokens)
            if token is None:
                return await self._decide(row, "failed", "tenant_gone", stats, request_id)
            if storage.hold_target(row) is not None:
                moved = await settle_hold(
                    self._store,
                    self._graph,
                    token,
                    row,
                    stats,
                    lambda tx, result: self._write_audit(row, result, stats, request_id, tx),
                )
                return "confirmed" if moved else "failed"
            refused = await self._gated(row, token)
            if refused is not None:  # the mailbox gate: e.g. the organizer left (archived)
                return await self._decide(row, "failed", refused, stats, request_id)
            found = await self._graph.find_event_by_transaction(
                token, row.organizer_upn, row.transaction_id, stats=stats
            )
            if found is None:
                return await self._decide(row, "failed", "failed", stats, request_id)
            # forward completion: the candidate's own invite is found or written (booking.py)
            candidate_id, how = await ensure_candidate_event(self._graph, token, row, found, stats)
        except CalendarError as exc:
            await self._write_audit(row, f"error:{exc.code}", stats, request_id)
            return "pending"
        if how == "created":  # the write's own audit row
            await self._write_audit(row, "candidate_created", stats, request_id)
        join = (found.get("onlineMeeting") or {}).get("joinUrl")
        async with self._store.transaction() as tx:
            done = await storage.confirm_interview(
                tx, row.id, str(found["id"]), join, candidate_event_id=candidate_id
            )
            await self._write_audit(row, "confirmed" if done else "raced", stats, request_id, tx)
        return "confirmed"

    async def _settle_loop(self, loop: storage.LoopRow, tokens: dict[str, str | None]) -> str:
        """Confirm a stale loop whose every session is confirmed, else withdraw it (none pending)."""
        async with self._store.transaction() as tx:
            rows = await storage.loop_sessions(tx, loop.id)
        if any(r.status is storage.InterviewStatus.PENDING for r in rows):
            return "pending"
        request_id = str(uuid.uuid4())
        audit_row = rows[0] if rows else None
        if rows and all(r.status is storage.InterviewStatus.CONFIRMED for r in rows):
            async with self._store.transaction() as tx:
                done = await storage.confirm_loop(tx, loop.id)
                if audit_row is not None:
                    await self._write_audit(
                        audit_row, "loop_confirmed" if done else "raced", CallStats(), request_id, tx
                    )
            return "confirmed"
        try:
            token = await self._app_token(loop.tenant_id, tokens)
            if token is None:
                return "pending"
            bookings = Bookings(self._store, self._graph, BusyRules(), self._bookings_audit, lambda _p: None)
            writer = Writer(None, loop.tenant_id, token, loop.organizer_upn, request_id)
            for row in rows:
                if row.status is storage.InterviewStatus.CONFIRMED:
                    await bookings.cancel(writer, row, "This loop could not be booked.", "interview.recover")
        except CalendarError:
            return "pending"
        async with self._store.transaction() as tx:
            done = await storage.mark_loop(tx, loop.id, "failed")
            if audit_row is not None:
                await self._write_audit(
                    audit_row, "loop_withdrawn" if done else "raced", CallStats(), request_id, tx
                )
        return "failed"

    async def _bookings_audit(
        self,
        principal: Principal | None,  # noqa: ARG002  (AuditFn's signature)
        tenant_id: str,
        operation: str,
        targets: Sequence[str],
        result: str,
        request_id: str,
        stats: CallStats | None = None,
        tx: Any = None,
    ) -> None:
        """`Bookings`' audit rows for recovery's own Graph writes (actor: recovery)."""
        event = AuditEvent(
            tenant_id=tenant_id,
            actor_oid=ACTOR,
            operation=operation,
            targets=tuple(t.lower() for t in targets),
            result=result,
            at=self._clock(),
            request_id=request_id,
            graph_request_ids=tuple(stats.request_ids) if stats else (),
        )
        if tx is not None:
            await append_audit(tx, event)
            return
        async with self._store.transaction() as own:
            await append_audit(own, event)

    async def _gated(self, row: storage.InterviewRow, token: str) -> str | None:
        """Ask the mailbox gate whether the organizer's mailbox may still be read: ``None`` if
        so, else the ``denied:<rule>`` result (written by `_decide` with the state change)."""
        said: list[str] = []

        async def keep(_targets: object, result: str, _stats: object) -> None:
            said.append(result)

        async def app_token() -> str:
            return token

        refusal = await self._gate.check(
            tenant_id=row.tenant_id, actor_oid=row.organizer_oid, people=(), app_token=app_token, audit=keep
        )
        return said[0] if refusal is not None and said else None

    async def _decide(
        self, row: storage.InterviewRow, status: str, result: str, stats: CallStats, request_id: str
    ) -> str:
        async with self._store.transaction() as tx:
            done = await storage.mark_interview(tx, row.id, status, expected_version=row.version)
            await self._write_audit(row, result if done else "raced", stats, request_id, tx)
        return status

    async def _write_audit(
        self,
        row: storage.InterviewRow,
        result: str,
        stats: CallStats,
        request_id: str,
        tx: AsyncConnection | None = None,
    ) -> None:
        event = AuditEvent(
            tenant_id=row.tenant_id,
            actor_oid=ACTOR,
            operation="interview.recover",
            targets=(row.organizer_upn.lower(),),
            result=result,
            at=self._clock(),
            request_id=request_id,
            graph_request_ids=tuple(stats.request_ids),
        )
        if tx is not None:
            await append_audit(tx, event)
            return
        async with self._store.transaction() as own:
            await append_audit(own, event)
