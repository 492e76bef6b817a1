"""Interviews the manager books: create, list, cancel and reschedule (on `booking` and `search`).

Each use case runs after lock 1 and lock 3 (`app.py`) and begins with lock 2 (`Tenancy.context`),
then the mailbox gate. Every Outlook write goes through `booking.Bookings` (reserve before write):
the reservation here is the ``pending`` row (`_reserve`), idempotent by the caller's key.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.booking import Bookings, CandidateInvite, Writer, candidate_address
from calendar_backend.contract import CreateInterviewRequest, InterviewOut, RescheduleRequest
from calendar_backend.directory import Directory
from calendar_backend.errors import (
    CalendarError,
    ConflictError,
    NotFoundError,
    SlotTakenError,
    ValidationError,
)
from calendar_backend.gate import Probe
from calendar_backend.graph import BatchItem, CallStats, GraphClient, address_segment, event_id_segment
from calendar_backend.invites import panel_event, room_location
from calendar_backend.search import SlotSearch
from calendar_backend.settings import BackendSettings
from calendar_backend.tenancy import Tenancy
from calendar_backend.timezones import UnknownTimeZoneError, resolve_zone

log = logging.getLogger(__name__)

_TXN_NAMESPACE = uuid.UUID("5b0f7a5e-1c59-4c55-9a53-0d6f3c8f2a10")
FINEST_STEP = timedelta(minutes=5)  # the smallest step_min a search may use: every offer is on it


class Interviews:
    """The manager's interview use cases. Safe to use concurrently."""

    def __init__(
        self,
        settings: BackendSettings,
        store: storage.Store,
        graph: GraphClient,
        tenancy: Tenancy,
        directory: Directory,
        search: SlotSearch,
        bookings: Bookings,
        clock: Callable[[], datetime],
        crash_point: Callable[[str], None],
    ) -> None:
        self._settings = settings
        self._store = store
        self._graph = graph
        self._tenancy = tenancy
        self._directory = directory
        self._search = search
        self._bookings = bookings
        self._clock = clock
        self._crash_point = crash_point

    async def create(
        self, principal: Principal, assertion: str, req: CreateInterviewRequest, request_id: str
    ) -> InterviewOut:
        """Book: reserve locally, re-check live, create the Outlook event idempotently, confirm.

        Raises:
            ValidationError: in the past, or not a time the engine offers. ConflictError: the
            idempotency key was used for another interview. SlotTakenError (with ``fresh``).
        """
        start, end = req.start, req.end
        if start < self._clock():
            raise ValidationError("start", "is in the past")
        ctx = await self._tenancy.context(principal)
        interviewers, rooms, optional = list(req.interviewers), list(req.rooms), list(req.optional)
        await self._same_request(principal, req, interviewers + rooms, request_id)
        refusal = await self._tenancy.check_mailboxes(
            principal,
            ctx,
            "interview.create",
            request_id,
            interviewers + optional,
            rooms,
            unreserved=optional,
        )
        if refusal is not None:
            raise refusal.error()
        token = await self._tenancy.user_token(principal, ctx, assertion)
        organizer, organizer_name = await self._directory.organizer(token)
        refusal = await self._tenancy.check_mailboxes(
            principal,
            ctx,
            "interview.create",
            request_id,
            interviewers,
            rooms,
            probe=Probe(token, organizer, start),
            static=False,
        )
        if refusal is not None:
            raise refusal.error()
        brand = self._settings.branding.get(principal.tenant_id) or self._settings.branding.get("*")
        invite = CandidateInvite(
            name=req.candidate_name,
            email=req.candidate_email,
            role=req.role,
            company=brand.company_name if brand else "",
            organizer_name=organizer_name,
        )
        txn = _transaction_id(principal, req.idempotency_key)
        async with self._store.transaction() as tx:
            known = await storage.get_interview_by_transaction(tx, txn)
        panel = (interviewers, rooms)
        if known is None or known.status not in {"confirmed", "pending"}:  # not a retry
            try:
                await self._search.require_offered(
                    principal,
                    token,
                    interviewers,
                    rooms,
                    start,
                    end,
                    step=FINEST_STEP,
                    notice=timedelta(0),
                    request_id=request_id,
                    operation="interview.offered",
                    requester=organizer,
                    tenant_id=ctx.tenant_id,
                )
            except SlotTakenError as exc:
                exc.fresh = await self._search.fresh_options(principal, token, panel, start, end, request_id)
                raise
        before = datetime.now(UTC)  # storage stamps created_at with the wall clock
        writer = Writer(principal, principal.tenant_id, token, organizer, request_id)
        try:  # reserve → recheck → write → confirm | withdraw | resume (booking.py)
            row = await self._reserve(principal, organizer, txn, interviewers + rooms, req)
            if row.status == "confirmed":
                return interview_out(row)
            self._crash_point("after_pending")
            if row.created_at < before:  # a retry: the event may already be in Outlook
                resumed = await self._bookings.resume(writer, row, invite)
                if resumed is not None:
                    return interview_out(resumed)
            await self._bookings.recheck(writer, row, interviewers + rooms, "interview.recheck")
        except SlotTakenError as exc:
            exc.fresh = await self._search.fresh_options(
                principal, token, panel, start, end, request_id, req.candidate_email
            )
            raise
        event = panel_event(
            req.candidate_name,
            interviewers,
            rooms,
            start,
            end,
            row.transaction_id,
            req.subject or f"Interview: {req.candidate_name}",
            req.time_zone,
            optional,
            role=req.role,
        )
        if rooms:
            event["location"] = room_location(rooms[0], await self._directory.room_name(token, rooms[0]))
        return interview_out(await self._bookings.create(writer, row, event, candidate=invite))

    async def list_upcoming(
        self, principal: Principal, assertion: str | None = None, request_id: str = "-"
    ) -> list[InterviewOut]:
        """The caller's upcoming interviews that OpenSlot created, from our own store.

        With the caller's ``assertion`` each one is also checked against Outlook (one ``$batch``
        of the events' own ``start``/``end``/``isCancelled`` via ``$select``; no subject, body or
        attendees): ``outlook`` is then ``"deleted"`` (gone or cancelled there) or ``"moved"``
        (with ``outlook_start``/``outlook_end``). If Outlook cannot be asked, the list is as
        stored.
        """
        ctx = await self._tenancy.context(principal)
        async with self._store.transaction() as tx:
            rows = await storage.list_interviews(
                tx, principal.tenant_id, principal.oid, self._clock() - timedelta(hours=1)
            )
        rows = [r for r in rows if r.status in {"confirmed", "pending"}]
        out = [interview_out(r) for r in rows]
        checkable = [r for r in rows if r.event_id and r.status == "confirmed"]
        if assertion is None or not checkable:
            return out
        try:
            token = await self._tenancy.user_token(principal, ctx, assertion)
            states = await self._outlook_states(principal, token, checkable, request_id)
        except (CalendarError, ValueError):  # ValueError: a stored id Graph paths refuse
            return out
        return [replace(o, **states[o.id]) if o.id in states else o for o in out]

    async def cancel(
        self, principal: Principal, assertion: str, interview_id: str, request_id: str
    ) -> InterviewOut:
        """Cancel an interview the caller organised; attendees get Outlook's cancellation."""
        row = await self._own_interview(principal, interview_id)
        if row.status == "cancelled":
            return interview_out(row)
        ctx = await self._tenancy.context(principal)
        token = await self._tenancy.user_token(principal, ctx, assertion)
        writer = Writer(principal, principal.tenant_id, token, row.organizer_upn, request_id)
        await self._bookings.cancel(writer, row, "Cancelled via OpenSlot", "interview.cancel")
        async with self._store.transaction() as tx:
            updated = await storage.get_interview(tx, row.id)
        assert updated is not None  # noqa: S101
        return interview_out(updated)

    async def reschedule(
        self, principal: Principal, assertion: str, interview_id: str, req: RescheduleRequest, request_id: str
    ) -> InterviewOut:
        """Move an interview the caller organised, after the same live re-check as booking."""
        start, end = req.start, req.end
        row = await self._own_interview(principal, interview_id)
        if row.status != "confirmed" or not row.event_id:
            raise ConflictError("Only a booked interview can be moved.")
        ctx = await self._tenancy.context(principal)
        mailboxes = [a for a in row.attendees if a != candidate_address(row)]
        rooms = await self._tenancy.rooms_among(ctx, mailboxes)
        people, room_list = [a for a in mailboxes if a not in rooms], sorted(rooms)
        refusal = await self._tenancy.check_mailboxes(
            principal, ctx, "interview.reschedule", request_id, people, room_list
        )
        if refusal is not None:
            raise refusal.error()
        token = await self._tenancy.user_token(principal, ctx, assertion)
        refusal = await self._tenancy.check_mailboxes(
            principal,
            ctx,
            "interview.reschedule",
            request_id,
            people,
            room_list,
            probe=Probe(token, row.organizer_upn, start),
            static=False,
        )
        if refusal is not None:
            raise refusal.error()
        await self._search.require_offered(
            principal,
            token,
            people,
            room_list,
            start,
            end,
            step=FINEST_STEP,
            notice=timedelta(0),
            request_id=request_id,
            operation="interview.offered",
            requester=row.organizer_upn,
            tenant_id=ctx.tenant_id,
            ignore=(row.start, row.end),
        )
        writer = Writer(principal, row.tenant_id, token, row.organizer_upn, request_id)
        moved = await self._bookings.move(
            writer,
            row,
            start,
            end,
            operation="interview.reschedule",
            recheck_operation="interview.reschedule",
        )
        return interview_out(moved)

    # ---- helpers -----------------------------------------------------------------------------
    async def _reserve(
        self,
        principal: Principal,
        organizer: str,
        txn: str,
        mailboxes: list[str],
        req: CreateInterviewRequest,
    ) -> storage.InterviewRow:
        """The reservation: a ``pending`` row (or the key's earlier booking, for a retry)."""
        start, end = req.start, req.end
        async with self._store.transaction() as tx:
            existing = await storage.get_interview_by_transaction(tx, txn)
            for _ in range(32):  # a failed/cancelled booking's transactionId is never reused
                if existing is None or existing.status in {"confirmed", "pending"}:
                    break
                txn = _next_transaction_id(txn)
                existing = await storage.get_interview_by_transaction(tx, txn)
            attendees = [*mailboxes, req.candidate_email.lower()]
            if existing is not None and existing.status in {"confirmed", "pending"}:
                if not _is_retry_of(existing, attendees, start, end):
                    raise _key_reused()
                return existing
            conflicts = await storage.find_conflicts(tx, principal.tenant_id, mailboxes, start, end)
            if conflicts:
                raise SlotTakenError()
            return await storage.insert_pending(
                tx,
                tenant_id=principal.tenant_id,
                organizer_oid=principal.oid,
                organizer_upn=organizer,
                transaction_id=txn,
                start=start,
                end=end,
                attendees=attendees,
                candidate_name=req.candidate_name,
                subject=f"Interview: {req.candidate_name}",
                source="bot",
                offer_id=None,
            )

    async def _same_request(
        self, principal: Principal, req: CreateInterviewRequest, mailboxes: list[str], request_id: str
    ) -> None:
        """A reused idempotency key must be a retry of the same request, refused (one audit row,
        no Graph call) before anything else; `_reserve` checks again where it counts."""
        async with self._store.transaction() as tx:
            known = await storage.get_interview_by_transaction(
                tx, _transaction_id(principal, req.idempotency_key)
            )
        attendees = [*mailboxes, req.candidate_email.lower()]
        if (
            known is not None
            and known.status in {"confirmed", "pending"}
            and not _is_retry_of(known, attendees, req.start, req.end)
        ):
            await self._tenancy.audit(
                principal,
                principal.tenant_id,
                "interview.create",
                mailboxes,
                "denied:idempotency_key",
                request_id,
            )
            raise _key_reused()

    async def _outlook_states(
        self, principal: Principal, token: str, rows: list[storage.InterviewRow], request_id: str
    ) -> dict[str, dict[str, Any]]:
        """What Outlook says about each row's event (only the ones that differ)."""
        stats = CallStats()
        items = [
            BatchItem(
                str(i),
                "GET",
                f"/users/{address_segment(r.organizer_upn)}/events/"
                f"{event_id_segment(r.event_id or '')}?$select=id,start,end,isCancelled",
                headers={"Prefer": 'outlook.timezone="UTC"'},
            )
            for i, r in enumerate(rows)
        ]
        organizers = sorted({r.organizer_upn for r in rows})
        try:
            answers = await self._graph.batch(token, items, stats=stats)
        except CalendarError as exc:
            await self._tenancy.audit(
                principal,
                principal.tenant_id,
                "interviews.reconcile",
                organizers,
                f"error:{exc.code}",
                request_id,
                stats,
            )
            raise
        await self._tenancy.audit(
            principal, principal.tenant_id, "interviews.reconcile", organizers, "ok", request_id, stats
        )
        states: dict[str, dict[str, Any]] = {}
        for item, row in zip(items, rows, strict=True):
            answer = answers[item.id]
            if answer.status == 404 or (answer.status == 200 and answer.body.get("isCancelled")):
                states[row.id] = {"outlook": "deleted"}
            elif answer.status == 200:
                try:
                    start, end = _event_time(answer.body["start"]), _event_time(answer.body["end"])
                except (KeyError, TypeError, ValueError, UnknownTimeZoneError):
                    continue
                if (start, end) != (row.start_utc, row.end_utc):
                    states[row.id] = {"outlook": "moved", "outlook_start": start, "outlook_end": end}
        return states

    async def _own_interview(self, principal: Principal, interview_id: str) -> storage.InterviewRow:
        async with self._store.transaction() as tx:
            row = await storage.get_interview(tx, interview_id)
        if row is None or row.tenant_id != principal.tenant_id or row.organizer_oid != principal.oid:
            raise NotFoundError()
        if row.loop_id is not None:  # a loop moves and cancels whole (loop_booking.py): never a partial loop
            raise ConflictError("This interview is a session of a loop; change the loop instead.")
        return row


def crash_point(settings: BackendSettings, name: str) -> None:
    """TEST HOOK: exit like a SIGKILL at a named booking step (OPENSLOT_CRASH_AT, dev only).

    Points: `after_pending` (pending row committed, no Graph call yet), `after_graph_create`
    (the event exists, the row is still pending), `during_audit` (inside the confirming
    transaction, after the audit insert, before the commit), `after_candidate_create` (both
    events exist, the row is still pending). Used by tests/reliability.
    """
    if settings.env == "dev" and settings.crash_at == name:
        log.warning("crash point %s reached: exiting (test hook)", name)
        os._exit(137)


def interview_out(row: storage.InterviewRow) -> InterviewOut:
    """The API's view of a stored interview."""
    return InterviewOut(
        id=row.id,
        status=row.status,
        start=row.start_utc,
        end=row.end_utc,
        subject=row.subject,
        attendees=tuple(row.attendees),
        candidate_name=row.candidate_name,
        join_url=row.join_url,
        event_id=row.event_id,
        candidate_email=candidate_address(row) or None,
    )


def _transaction_id(principal: Principal, idempotency_key: str) -> str:
    """The panel event's Graph ``transactionId`` for the caller's idempotency key."""
    return str(uuid.uuid5(_TXN_NAMESPACE, f"{principal.tenant_id}:{principal.oid}:{idempotency_key}"))


def _next_transaction_id(txn: str) -> str:
    """The deterministic successor of a transactionId whose booking failed or was cancelled."""
    return str(uuid.uuid5(_TXN_NAMESPACE, f"{txn}:retry"))


def _event_time(value: dict[str, Any]) -> datetime:
    """A Graph dateTimeTimeZone as an aware UTC datetime (Windows or IANA zone names)."""
    local = datetime.fromisoformat(str(value["dateTime"])[:26])
    return local.replace(tzinfo=resolve_zone(str(value.get("timeZone") or "UTC"))).astimezone(UTC)


def _is_retry_of(row: storage.InterviewRow, attendees: list[str], start: datetime, end: datetime) -> bool:
    """A retry is the same request: a key reused for another time, panel or candidate would
    write an event no reservation covers (or a time never offered)."""
    return (row.start, row.end) == (start, end) and sorted(row.attendees) == sorted(attendees)


def _key_reused() -> ConflictError:
    return ConflictError("This idempotency key was used for another interview.")
