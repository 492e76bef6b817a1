"""The Calendar Service's use cases: find open slots, book and manage interviews, resolve people.

Orchestration only: no HTTP types. Each use case runs after lock 1 (a validated `Principal`) and lock 3
(a schema-valid payload) and begins with lock 2 (`_tenant_context`): the caller's tenant must be onboarded and
its app credential must decrypt, and the caller must not be archived. Calendars are read just in time
and forgotten; every calendar access writes exactly one audit row.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from calendar_backend import storage
from calendar_backend.allowlist import MailboxAllowList
from calendar_backend.audit import AuditEvent, append_audit
from calendar_backend.auth import Principal
from calendar_backend.availability import (
    BusyRules,
    PersonAvailability,
    ShowAs,
    SlotQuery,
    WorkingHours,
    find_panel_slots,
)
from calendar_backend.booking import Bookings, CandidateInvite, Writer, candidate_address
from calendar_backend.calendar_view import CalendarRead, blocks_from_schedule, read_calendars
from calendar_backend.contract import (
    BlockerOut,
    InterviewOut,
    PersonCheckOut,
    PersonOut,
    SlotOut,
    SlotsResult,
    parse_time,
)
from calendar_backend.crypto import CredentialCipher
from calendar_backend.errors import (
    CalendarError,
    ConflictError,
    DecryptionError,
    NotFoundError,
    PermissionDeniedError,
    SlotTakenError,
    ValidationError,
)
from calendar_backend.gate import MailboxGate, Probe, Refusal
from calendar_backend.graph import BatchItem, CallStats, GraphClient, Schedule
from calendar_backend.graph import _address as _graph_address
from calendar_backend.graph import _event_id as _graph_event_id
from calendar_backend.graph import _raise_for as _graph_raise_for
from calendar_backend.invites import panel_body, room_location
from calendar_backend.sealing import tenant_credential_aad, token_cache_aad
from calendar_backend.settings import BackendSettings
from calendar_backend.slots import CandidateDay, Interval, candidate_first
from calendar_backend.timezones import UnknownTimeZoneError, resolve_zone
from calendar_backend.tokens import AppCredential, TokenBroker

log = logging.getLogger(__name__)

_TXN_NAMESPACE = uuid.UUID("5b0f7a5e-1c59-4c55-9a53-0d6f3c8f2a10")
_MAX_WINDOW = timedelta(days=61)
_FINEST_STEP = timedelta(minutes=5)  # the smallest step_min a search may use: every offer is on it
_OBJECT_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}


@dataclass(frozen=True, slots=True)
class TenantContext:
    """What lock 2 yields for one request: the decrypted credential, held only in memory."""

    tenant_id: str
    credential: AppCredential


class CalendarService:
    """The use cases. One instance per process; every method is safe to call concurrently."""

    def __init__(
        self,
        settings: BackendSettings,
        store: storage.Store,
        cipher: CredentialCipher,
        tokens: TokenBroker,
        graph: GraphClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        allowlist: MailboxAllowList | None = None,
    ) -> None:
        self._settings = settings
        self._allowlist = allowlist or MailboxAllowList(graph)
        self.gate = MailboxGate(store, graph, self._allowlist)
        self._store = store
        self._cipher = cipher
        self._tokens = tokens
        self._graph = graph
        self._clock = clock
        self._rules = BusyRules(frozenset(ShowAs(s) for s in settings.busy_policy.blocking))
        self._bookings = Bookings(store, graph, self._rules, self._audit, self._crash_point)

    # ---- lock 2 and delegated tokens -----------------------------------------------------------
    async def _tenant_context(self, principal: Principal) -> TenantContext:
        async with self._store.transaction() as tx:
            row = await storage.get_tenant(tx, principal.tenant_id)
            archived = await storage.is_archived(tx, principal.tenant_id, principal.oid)
        if row is None or row.status != "active":
            raise _lock2(PermissionDeniedError("Your organisation has not connected OpenSlot yet."))
        if archived:
            refusal = _lock2(PermissionDeniedError("This account can no longer use OpenSlot."))
            refusal.denied_oid = principal.oid  # type: ignore[attr-defined]  # audit: who was refused
            raise refusal
        try:
            raw = self._cipher.decrypt(row.credential_blob, aad=tenant_credential_aad(row.tenant_id))
        except DecryptionError as exc:
            raise _lock2(DecryptionError()) from exc
        return TenantContext(principal.tenant_id, AppCredential.from_bytes(raw))

    async def _gate(
        self,
        principal: Principal | None,
        ctx: TenantContext,
        operation: str,
        request_id: str,
        people: Sequence[str],
        rooms: Sequence[str] = (),
        *,
        actor_oid: str | None = None,
        probe: Probe | None = None,
        static: bool = True,
        unreserved: Sequence[str] = (),
    ) -> Refusal | None:
        """Ask the mailbox gate (`calendar_backend.gate`) before any calendar request.

        A refusal is audited once (``denied:<rule>``, naming the refused mailboxes) by the gate.
        """

        async def audit(targets: Sequence[str], result: str, stats: CallStats | None) -> None:
            await self._audit(principal, ctx.tenant_id, operation, targets, result, request_id, stats)

        return await self.gate.check(
            tenant_id=ctx.tenant_id,
            actor_oid=actor_oid or (principal.oid if principal else None),
            people=people,
            rooms=rooms,
            app_token=lambda: self._tokens.for_app(ctx.tenant_id, ctx.credential),
            audit=audit,
            probe=probe,
            static=static,
            unreserved=unreserved,
        )

    async def _user_graph_token(self, principal: Principal, ctx: TenantContext, assertion: str) -> str:
        aad = token_cache_aad(principal.tenant_id, principal.oid)
        async with self._store.transaction() as tx:
            found = await storage.get_token_cache(tx, principal.tenant_id, principal.oid)
        blob = self._cipher.decrypt(found[0], aad=aad) if found else None
        token, new_cache = await self._tokens.on_behalf_of(ctx.tenant_id, ctx.credential, assertion, blob)
        if new_cache is not None:
            sealed = self._cipher.encrypt(new_cache, aad=aad)
            async with self._store.transaction() as tx:
                await storage.put_token_cache(
                    tx, principal.tenant_id, principal.oid, sealed, self._cipher.key_id_of(sealed)
                )
        return token

    async def _audit(
        self,
        principal: Principal | None,
        tenant_id: str,
        operation: str,
        targets: Sequence[str],
        result: str,
        request_id: str,
        stats: CallStats | None = None,
        tx: Any = None,
    ) -> None:
        event = AuditEvent(
            tenant_id=tenant_id,
            actor_oid=principal.oid if principal else "-",
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

    async def audit_denial(
        self, tenant_id: str, operation: str, reason: str, request_id: str, actor_oid: str | None = None
    ) -> None:
        """Record a refused request (no calendar was touched); ``actor_oid`` is the refused
        user's oid when it is known (an archived user), else the actor is ``-``."""
        actor = Principal(tenant_id, actor_oid, frozenset()) if actor_oid else None
        await self._audit(actor, tenant_id or "-", operation, (), f"denied:{reason}", request_id)

    # ---- find slots --------------------------------------------------------------------------
    async def find_slots(
        self, principal: Principal, assertion: str, req: dict[str, Any], request_id: str
    ) -> SlotsResult:
        """Open slots for a panel, best first (or all, chronological); see DESIGN.md semantics."""
        start, end = _window(req["start"], req["end"])
        day = candidate_day_of(req)
        ctx = await self._tenant_context(principal)
        people = list(req["interviewers"])
        rooms = list(req.get("rooms", []))
        refusal = await self._gate(principal, ctx, "slots.find", request_id, people, rooms)
        if refusal is not None:
            if refusal.rule.value not in {"not_allowed", "unreadable"}:
                raise refusal.error()
            return SlotsResult((), (), tuple(BlockerOut(a, refusal.rule.value) for a in refusal.mailboxes))
        token = await self._user_graph_token(principal, ctx, assertion)
        result = await self._slots_for(
            principal,
            token,
            people,
            rooms,
            start,
            end,
            duration=timedelta(minutes=req["duration_min"]),
            step=timedelta(minutes=req.get("step_min", 15)),
            buffer=timedelta(minutes=req.get("buffer_min", 0)),
            notice=timedelta(minutes=req.get("notice_min", self._settings.default_notice_min)),
            want_all=bool(req.get("all", False)),
            limit=int(req.get("limit", 20)),
            request_id=request_id,
            operation="slots.find",
            requester=None,
            limit_after=day is not None,
        )
        if day is None:
            return result
        return _candidate_ordered(result, day, bool(req.get("all", False)), int(req.get("limit", 20)))

    async def _slots_for(
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
        """The slot engine on freshly read calendars. ``ignore``: the exact span of an interview
        being moved, whose own event must not block its new time. ``unbusy``: receives the slots
        the same query gives when nobody's busy time counts (to tell "taken" from "never offered")."""
        stats = CallStats()
        mailboxes = people + rooms
        fetch = Interval(start - buffer - timedelta(days=1), end + buffer + timedelta(days=1))
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
            await self._audit(principal, tid, operation, mailboxes, f"error:{exc.code}", request_id, stats)
            raise
        if ignore is not None:
            schedules, reads = _without(schedules, reads, ignore)
        unreadable = [
            a
            for a in mailboxes
            if schedules[a.lower()].error or not _zone_known(schedules[a.lower()], is_room=a in rooms)
        ]
        await self._audit(
            principal, tid, operation, mailboxes, "partial" if unreadable else "ok", request_id, stats
        )
        out_people = tuple(_person_out(schedules[a.lower()], a in rooms) for a in mailboxes)
        if unreadable:  # fail closed: never treat an unreadable calendar as free
            return SlotsResult((), out_people, tuple(BlockerOut(a, "unreadable") for a in unreadable))
        availabilities = [
            _availability(schedules[a.lower()], is_room=a in rooms)
            if reads is None
            else _read_availability(reads[a.lower()], a in rooms)
            for a in mailboxes
        ]
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
        return SlotsResult(tuple(SlotOut(s.start, s.end) for s in chosen), out_people, blockers)

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
        (`_slots_for`), on calendars read now.

        Raises:
            ValidationError: ``start`` is never offered (hours, grid, window, notice; field
            ``start``). SlotTakenError: it would be, but someone is busy then (or a calendar
            could not be read).
        """
        unbusy: list[tuple[SlotOut, ...]] = []
        found = await self._slots_for(
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

    # ---- interviews ------------------------------------------------------------------------------
    async def create_interview(
        self, principal: Principal, assertion: str, req: dict[str, Any], request_id: str
    ) -> InterviewOut:
        """Book: reserve locally, re-check live, create the Outlook event idempotently, confirm."""
        start, end = _window(req["start"], req["end"])
        if start < self._clock():
            raise ValidationError("start", "is in the past")
        ctx = await self._tenant_context(principal)
        interviewers = [a.lower() for a in req["interviewers"]]
        rooms = [a.lower() for a in req.get("rooms", [])]
        # Optional attendees are invited, never searched or reserved: the gate still decides.
        optional = [a.lower() for a in req.get("optional", []) if a.lower() not in interviewers]
        await self._same_request(principal, req, interviewers + rooms, start, end, request_id)
        refusal = await self._gate(
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
        token = await self._user_graph_token(principal, ctx, assertion)
        organizer, organizer_name = await self._organizer(token)
        refusal = await self._gate(
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
        candidate = req["candidate"]
        brand = self._settings.branding.get(principal.tenant_id) or self._settings.branding.get("*")
        invite = CandidateInvite(
            name=candidate["name"],
            email=candidate["email"],
            role=req.get("role") or "",
            company=brand.company_name if brand else "",
            organizer_name=organizer_name,
        )
        txn = str(
            uuid.uuid5(_TXN_NAMESPACE, f"{principal.tenant_id}:{principal.oid}:{req['idempotency_key']}")
        )
        async with self._store.transaction() as tx:
            known = await storage.get_interview_by_transaction(tx, txn)
        if known is None or known.status not in {"confirmed", "pending"}:  # not a retry
            try:
                await self.require_offered(
                    principal,
                    token,
                    interviewers,
                    rooms,
                    start,
                    end,
                    step=_FINEST_STEP,
                    notice=timedelta(0),
                    request_id=request_id,
                    operation="interview.offered",
                    requester=organizer,
                    tenant_id=ctx.tenant_id,
                )
            except SlotTakenError as exc:
                await self._attach_fresh(exc, principal, token, (interviewers, rooms), start, end, request_id)
                raise
        before = datetime.now(UTC)  # storage stamps created_at with the wall clock
        writer = Writer(principal, principal.tenant_id, token, organizer, request_id)
        try:  # reserve → recheck → write → confirm | withdraw | resume (booking.py)
            row = await self._reserve(
                principal, organizer, txn, interviewers + rooms, candidate, start, end, source="bot"
            )
            if row.status == "confirmed":
                return _interview_out(row)
            self._crash_point("after_pending")
            if row.created_at < before:  # a retry: the event may already be in Outlook
                resumed = await self._bookings.resume(writer, row, invite)
                if resumed is not None:
                    return _interview_out(resumed)
            await self._bookings.recheck(writer, row, interviewers + rooms, "interview.recheck")
        except SlotTakenError as exc:
            await self._attach_fresh(
                exc, principal, token, (interviewers, rooms), start, end, request_id, candidate["email"]
            )
            raise
        event = _event_body(
            candidate,
            interviewers,
            rooms,
            start,
            end,
            row.transaction_id,
            req.get("subject") or f"Interview: {candidate['name']}",
            req.get("time_zone"),
            optional,
            role=req.get("role") or "",
        )
        if rooms:
            event["location"] = room_location(rooms[0], await self._room_name(token, rooms[0]))
        return _interview_out(await self._bookings.create(writer, row, event, candidate=invite))

    async def _organizer_address(self, token: str) -> str:
        return (await self._organizer(token))[0]

    async def _organizer(self, token: str) -> tuple[str, str]:
        """The signed-in organizer's address and display name (one Graph call)."""
        status, doc = await self._graph.request(
            "GET", "/me?$select=displayName,mail,userPrincipalName", token
        )
        if status != 200:
            raise PermissionDeniedError("Could not identify you in Microsoft 365.")
        address = str(doc.get("mail") or doc.get("userPrincipalName")).lower()
        return address, str(doc.get("displayName") or "")[:120]

    async def _room_name(self, token: str, address: str) -> str:
        """A room's display name from the room list (best effort: "" when unreadable)."""
        try:
            rooms = await self._graph.list_rooms(token)
        except CalendarError:
            return ""
        return next(
            (
                str(r.get("displayName") or "")
                for r in rooms
                if str(r.get("emailAddress", "")).lower() == address
            ),
            "",
        )

    async def _reserve(
        self,
        principal: Principal | None,
        organizer: str,
        txn: str,
        mailboxes: list[str],
        candidate: dict[str, str],
        start: datetime,
        end: datetime,
        *,
        source: str,
        tenant_id: str | None = None,
        organizer_oid: str | None = None,
        offer_id: str | None = None,
    ) -> storage.InterviewRow:
        tid = tenant_id or (principal.tenant_id if principal else "")
        oid = organizer_oid or (principal.oid if principal else "")
        async with self._store.transaction() as tx:
            existing = await storage.get_interview_by_transaction(tx, txn)
            for _ in range(32):  # a failed/cancelled booking's transactionId is never reused
                if existing is None or existing.status in {"confirmed", "pending"}:
                    break
                txn = _next_transaction_id(txn)
                existing = await storage.get_interview_by_transaction(tx, txn)
            attendees = [*mailboxes, candidate["email"].lower()]
            if existing is not None and existing.status in {"confirmed", "pending"}:
                if not _is_retry_of(existing, attendees, start, end):
                    raise _key_reused()
                return existing
            conflicts = await storage.find_conflicts(tx, tid, mailboxes, start, end)
            if conflicts:
                raise SlotTakenError()
            return await storage.insert_pending(
                tx,
                tenant_id=tid,
                organizer_oid=oid,
                organizer_upn=organizer,
                transaction_id=txn,
                start=start,
                end=end,
                attendees=attendees,
                candidate_name=candidate["name"],
                subject=f"Interview: {candidate['name']}",
                source=source,
                offer_id=offer_id,
            )

    async def _same_request(
        self,
        principal: Principal,
        req: dict[str, Any],
        mailboxes: list[str],
        start: datetime,
        end: datetime,
        request_id: str,
    ) -> None:
        """A reused idempotency key must be a retry of the same request, refused (one audit row,
        no Graph call) before anything else; `_reserve` checks again where it counts."""
        txn = str(
            uuid.uuid5(_TXN_NAMESPACE, f"{principal.tenant_id}:{principal.oid}:{req['idempotency_key']}")
        )
        async with self._store.transaction() as tx:
            known = await storage.get_interview_by_transaction(tx, txn)
        attendees = [*mailboxes, req["candidate"]["email"].lower()]
        if (
            known is not None
            and known.status in {"confirmed", "pending"}
            and not _is_retry_of(known, attendees, start, end)
        ):
            await self._audit(
                principal,
                principal.tenant_id,
                "interview.create",
                mailboxes,
                "denied:idempotency_key",
                request_id,
            )
            raise _key_reused()

    async def _attach_fresh(
        self,
        exc: SlotTakenError,
        principal: Principal,
        token: str,
        panel: tuple[list[str], list[str]],
        start: datetime,
        end: datetime,
        request_id: str,
        candidate_email: str = "",
    ) -> None:
        """Give a slot-taken answer up to 5 fresh options near the wanted time (best effort).

        The options also avoid every pending/confirmed OpenSlot booking of these mailboxes and of
        the candidate (a booking that just won the race may not be in Graph yet): exactly the
        mailboxes the booking's own overlap check uses, so a fresh time is never one it refuses.
        Never raises: on any failure the answer simply carries no options.
        """
        now = self._clock() + timedelta(minutes=self._settings.default_notice_min)
        lo, hi = max(now, start - timedelta(hours=12)), end + timedelta(days=3)
        people, rooms = panel
        try:
            fresh = await self._slots_for(
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
            free = await self._unreserved(
                principal.tenant_id,
                [*people, *rooms, *([candidate_email] if candidate_email else [])],
                fresh,
                lo,
                hi,
            )
        except CalendarError:
            return
        exc.fresh = SlotsResult(  # type: ignore[attr-defined]
            free.slots[:5],
            free.people,
            free.blockers,
        )

    async def _unreserved(
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

    def _crash_point(self, name: str) -> None:
        """TEST HOOK: exit like a SIGKILL at a named booking step (OPENSLOT_CRASH_AT, dev only).

        Points: `after_pending` (pending row committed, no Graph call yet), `after_graph_create`
        (the event exists, the row is still pending), `during_audit` (inside the confirming
        transaction, after the audit insert, before the commit), `after_candidate_create` (both
        events exist, the row is still pending). Used by tests/reliability.
        """
        if self._settings.env == "dev" and self._settings.crash_at == name:
            log.warning("crash point %s reached: exiting (test hook)", name)
            os._exit(137)

    async def list_interviews(
        self, principal: Principal, assertion: str | None = None, request_id: str = "-"
    ) -> list[InterviewOut]:
        """The caller's upcoming interviews that OpenSlot created, from our own store.

        With the caller's ``assertion`` each one is also checked against Outlook (one ``$batch``
        of the events' own ``start``/``end``/``isCancelled`` via ``$select``; no subject, body or
        attendees): ``outlook`` is then ``"deleted"`` (gone or cancelled there) or ``"moved"``
        (with ``outlook_start``/``outlook_end``). If Outlook cannot be asked, the list is as
        stored.
        """
        ctx = await self._tenant_context(principal)
        async with self._store.transaction() as tx:
            rows = await storage.list_interviews(
                tx, principal.tenant_id, principal.oid, self._clock() - timedelta(hours=1)
            )
        rows = [r for r in rows if r.status in {"confirmed", "pending"}]
        out = [_interview_out(r) for r in rows]
        checkable = [r for r in rows if r.event_id and r.status == "confirmed"]
        if assertion is None or not checkable:
            return out
        try:
            token = await self._user_graph_token(principal, ctx, assertion)
            states = await self._outlook_states(principal, token, checkable, request_id)
        except (CalendarError, ValueError):  # ValueError: a stored id Graph paths refuse
            return out
        return [replace(o, **states[o.id]) if o.id in states else o for o in out]

    async def _outlook_states(
        self, principal: Principal, token: str, rows: list[storage.InterviewRow], request_id: str
    ) -> dict[str, dict[str, Any]]:
        """What Outlook says about each row's event (only the ones that differ)."""
        stats = CallStats()
        items = [
            BatchItem(
                str(i),
                "GET",
                f"/users/{_graph_address(r.organizer_upn)}/events/"
                f"{_graph_event_id(r.event_id or '')}?$select=id,start,end,isCancelled",
                headers={"Prefer": 'outlook.timezone="UTC"'},
            )
            for i, r in enumerate(rows)
        ]
        try:
            answers = await self._graph.batch(token, items, stats=stats)
        except CalendarError as exc:
            await self._audit(
                principal,
                principal.tenant_id,
                "interviews.reconcile",
                sorted({r.organizer_upn for r in rows}),
                f"error:{exc.code}",
                request_id,
                stats,
            )
            raise
        await self._audit(
            principal,
            principal.tenant_id,
            "interviews.reconcile",
            sorted({r.organizer_upn for r in rows}),
            "ok",
            request_id,
            stats,
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

    async def cancel_interview(
        self, principal: Principal, assertion: str, interview_id: str, request_id: str
    ) -> InterviewOut:
        """Cancel an interview the caller organised; attendees get Outlook's cancellation."""
        row = await self._own_interview(principal, interview_id)
        if row.status == "cancelled":
            return _interview_out(row)
        ctx = await self._tenant_context(principal)
        token = await self._user_graph_token(principal, ctx, assertion)
        writer = Writer(principal, principal.tenant_id, token, row.organizer_upn, request_id)
        await self._bookings.cancel(writer, row, "Cancelled via OpenSlot", "interview.cancel")
        async with self._store.transaction() as tx:
            updated = await storage.get_interview(tx, row.id)
        assert updated is not None  # noqa: S101
        return _interview_out(updated)

    async def reschedule_interview(
        self, principal: Principal, assertion: str, interview_id: str, req: dict[str, Any], request_id: str
    ) -> InterviewOut:
        """Move an interview the caller organised, after the same live re-check as booking."""
        start, end = _window(req["start"], req["end"])
        row = await self._own_interview(principal, interview_id)
        if row.status != "confirmed" or not row.event_id:
            raise ConflictError("Only a booked interview can be moved.")
        ctx = await self._tenant_context(principal)
        mailboxes = [a for a in row.attendees if a != candidate_address(row)]
        rooms = await self.gate.rooms_among(
            mailboxes, lambda: self._tokens.for_app(ctx.tenant_id, ctx.credential)
        )
        refusal = await self._gate(
            principal,
            ctx,
            "interview.reschedule",
            request_id,
            [a for a in mailboxes if a not in rooms],
            sorted(rooms),
        )
        if refusal is not None:
            raise refusal.error()
        token = await self._user_graph_token(principal, ctx, assertion)
        refusal = await self._gate(
            principal,
            ctx,
            "interview.reschedule",
            request_id,
            [a for a in mailboxes if a not in rooms],
            sorted(rooms),
            probe=Probe(token, row.organizer_upn, start),
            static=False,
        )
        if refusal is not None:
            raise refusal.error()
        await self.require_offered(
            principal,
            token,
            [a for a in mailboxes if a not in rooms],
            sorted(rooms),
            start,
            end,
            step=_FINEST_STEP,
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
        return _interview_out(moved)

    async def _own_interview(self, principal: Principal, interview_id: str) -> storage.InterviewRow:
        async with self._store.transaction() as tx:
            row = await storage.get_interview(tx, interview_id)
        if row is None or row.tenant_id != principal.tenant_id or row.organizer_oid != principal.oid:
            raise NotFoundError()
        return row

    # ---- directory and account -------------------------------------------------------------------
    async def resolve_people(
        self, principal: Principal, assertion: str, queries: list[str], request_id: str
    ) -> list[list[PersonOut]]:
        """Match typed names or addresses against the directory (users and rooms told apart)."""
        ctx = await self._tenant_context(principal)
        token = await self._user_graph_token(principal, ctx, assertion)
        stats = CallStats()
        rooms = await self._graph.list_rooms(token, stats=stats)
        results: list[list[PersonOut]] = []
        for query in queries:
            q = query.strip().lower()
            if _OBJECT_ID_RE.fullmatch(q):  # a people-picker pick: an Entra object id
                results.append(await self._person_by_id(token, q, rooms, stats))
                continue
            matched_rooms = [
                PersonOut(str(r.get("emailAddress", "")).lower(), str(r.get("displayName", "")), "", True)
                for r in rooms
                if str(r.get("displayName", "")).lower().startswith(q)
                or str(r.get("emailAddress", "")).lower() == q
            ]
            users = await self._graph.find_people(token, query.strip(), stats=stats)
            matched_users = [
                PersonOut(
                    str(u.get("mail") or u.get("userPrincipalName")).lower(),
                    str(u.get("displayName", "")),
                    "",
                    False,
                )
                for u in users
                if u.get("accountEnabled", True) and (u.get("mail") or u.get("userPrincipalName"))
            ]
            results.append((matched_users + matched_rooms)[:10])
        # The mailbox gate: a person the allow-list refuses is never offered for scheduling.
        refused = await self.gate.not_allowed(
            ctx.tenant_id,
            [p.address for r in results for p in r if not p.is_room],
            lambda: self._tokens.for_app(ctx.tenant_id, ctx.credential),
        )
        results = [[p for p in r if p.is_room or p.address not in refused] for r in results]
        await self._audit(principal, principal.tenant_id, "directory.resolve", (), "ok", request_id, stats)
        return results

    async def check_people(
        self, principal: Principal, assertion: str, queries: list[str], request_id: str
    ) -> list[PersonCheckOut]:
        """Resolve a panel as typed and say, per name, what would stop it (see PERSON_STATUSES).

        Directory first (users incl. disabled ones, and rooms by any word of their name), then the
        mailbox gate for every distinct match (before any calendar is touched), then one
        getSchedule over the next hour for the rest: an error there is ``no_mailbox`` (Exchange's
        5009) or ``unreadable``. Nothing of any calendar is returned.
        """
        ctx = await self._tenant_context(principal)
        token = await self._user_graph_token(principal, ctx, assertion)
        stats = CallStats()
        rooms = await self._graph.list_rooms(token, stats=stats)
        checks: list[PersonCheckOut] = []
        seen: set[str] = set()
        for query in queries:
            check = await self._directory_check(token, query, rooms, stats)
            person = check.person
            if person is not None and check.status == "ok":
                if person.address in seen:
                    check = PersonCheckOut(query, "duplicate", person)
                seen.add(person.address)
            checks.append(check)
        people = [c.person.address for c in checks if c.status == "ok" and c.person and not c.person.is_room]
        disabled = await self._disabled_accounts(ctx, people, stats)
        checks = [
            PersonCheckOut(c.query, "disabled", c.person)
            if c.person and c.status == "ok" and c.person.address in disabled
            else c
            for c in checks
        ]
        wanted = [c.person.address for c in checks if c.status == "ok" and c.person]
        refused = (
            await self.gate.not_allowed(  # the mailbox gate: allow-list and leavers
                ctx.tenant_id, wanted, lambda: self._tokens.for_app(ctx.tenant_id, ctx.credential)
            )
            if wanted
            else set()
        )
        if refused:  # named back as not_allowed, never read; audited once
            await self._audit(
                principal,
                principal.tenant_id,
                "directory.check",
                [a for a in wanted if a in refused],
                "denied:not_allowed",
                request_id,
            )
        readable = [a for a in wanted if a not in refused]
        schedules: dict[str, Schedule] = {}
        if readable:
            schedules = await self._readability(token, readable, stats)
        out = []
        for check in checks:
            address = check.person.address if check.person else ""
            if check.status == "ok" and address in refused:
                check = PersonCheckOut(check.query, "not_allowed", check.person)
            elif check.status == "ok" and schedules.get(address) and schedules[address].error:
                status = "no_mailbox" if schedules[address].error == "5009" else "unreadable"
                check = PersonCheckOut(check.query, status, check.person)
            out.append(check)
        if readable or not refused:  # a refusal alone was audited above: one row a request
            await self._audit(
                principal, principal.tenant_id, "directory.check", readable, "ok", request_id, stats
            )
        return out

    async def _readability(self, token: str, addresses: list[str], stats: CallStats) -> dict[str, Schedule]:
        """One getSchedule over the next hour for ``addresses`` (only each one's error matters).

        getSchedule is asked on a calendar's path: the caller's own, else (a caller with no
        mailbox gets 404 there) the first of ``addresses`` that has one.
        """
        now = self._clock()
        requesters = [await self._organizer_address(token), *addresses][:4]
        for requester in requesters:
            try:
                return await self._graph.get_schedules(
                    token, requester, addresses, now, now + timedelta(hours=1), stats=stats
                )
            except NotFoundError:
                continue
        raise NotFoundError()

    async def _disabled_accounts(
        self, ctx: TenantContext, addresses: list[str], stats: CallStats
    ) -> set[str]:
        """Which of ``addresses`` belong to a switched-off account. A signed-in user's
        ``User.ReadBasic.All`` does not show ``accountEnabled``; the app's ``User.Read.All`` does
        (directory facts only, no mailbox is read). Ten addresses per request."""
        if not addresses:
            return set()
        app_token = await self._tokens.for_app(ctx.tenant_id, ctx.credential)
        disabled: set[str] = set()
        for i in range(0, len(addresses), 10):
            chunk = addresses[i : i + 10]
            flt = " or ".join(f"mail eq '{a.replace(chr(39), chr(39) * 2)}'" for a in chunk)
            status, doc = await self._graph.request(
                "GET",
                f"/users?$filter={quote(flt)}&$select=mail,userPrincipalName,accountEnabled",
                app_token,
                stats=stats,
            )
            _graph_raise_for(status, doc)
            disabled.update(
                str(u.get("mail") or u.get("userPrincipalName") or "").lower()
                for u in doc.get("value", [])
                if u.get("accountEnabled") is False
            )
        return disabled

    async def _directory_check(
        self, token: str, query: str, rooms: list[dict[str, Any]], stats: CallStats
    ) -> PersonCheckOut:
        """One name against the directory: ok (one match), ambiguous, not_found or disabled."""
        q = query.strip().lower()
        if _OBJECT_ID_RE.fullmatch(q):
            found = await self._person_by_id(token, q, rooms, stats)
            return PersonCheckOut(query, "ok", found[0]) if found else PersonCheckOut(query, "not_found")
        matched_rooms = [
            PersonOut(str(r.get("emailAddress", "")).lower(), str(r.get("displayName", "")), "", True)
            for r in rooms
            if _room_matches(r, q)
        ]
        users = await self._graph.find_people(token, query.strip(), stats=stats)
        people = [
            (
                PersonOut(
                    str(u.get("mail") or u.get("userPrincipalName")).lower(),
                    str(u.get("displayName", "")),
                    "",
                    False,
                ),
                bool(u.get("accountEnabled", True)),
            )
            for u in users
            if u.get("mail") or u.get("userPrincipalName")
        ]
        enabled = [p for p, on in people if on]
        matches = enabled + matched_rooms
        exact = [p for p in matches if p.address == q or p.display_name.lower() == q]
        if len(exact) == 1:
            matches = exact
        if len(matches) == 1:
            return PersonCheckOut(query, "ok", matches[0])
        if matches:
            return PersonCheckOut(query, "ambiguous", choices=tuple(matches[:8]))
        disabled = [p for p, on in people if not on]
        if disabled:
            return PersonCheckOut(query, "disabled", disabled[0])
        return PersonCheckOut(query, "not_found")

    async def _person_by_id(
        self, token: str, object_id: str, rooms: list[dict[str, Any]], stats: CallStats
    ) -> list[PersonOut]:
        """The one user (or room mailbox) with Entra object id ``object_id``; ``[]`` if unknown.

        ``object_id`` must already match ``_OBJECT_ID_RE`` (it is put into the Graph path).
        """
        status, doc = await self._graph.request(
            "GET",
            f"/users/{object_id}?$select=id,displayName,mail,userPrincipalName,accountEnabled",
            token,
            stats=stats,
        )
        if status in {400, 404}:
            return []
        _graph_raise_for(status, doc)
        address = str(doc.get("mail") or doc.get("userPrincipalName") or "").lower()
        if not address or not doc.get("accountEnabled", True):
            return []
        room_addresses = {str(r.get("emailAddress", "")).lower() for r in rooms}
        return [PersonOut(address, str(doc.get("displayName", "")), "", address in room_addresses)]

    async def my_time_zone(self, principal: Principal, assertion: str, request_id: str) -> str | None:
        """The caller's own mailbox time zone as an IANA name (delegated ``GET
        /me/mailboxSettings/timeZone``), ``None`` when Outlook has none OpenSlot understands."""
        ctx = await self._tenant_context(principal)
        token = await self._user_graph_token(principal, ctx, assertion)
        stats = CallStats()
        status, doc = await self._graph.request("GET", "/me/mailboxSettings/timeZone", token, stats=stats)
        await self._audit(
            principal,
            principal.tenant_id,
            "me.settings",
            (),
            "ok" if status == 200 else f"error:{status}",
            request_id,
            stats,
        )
        _graph_raise_for(status, doc)
        try:
            return resolve_zone(str(doc.get("value") or "")).key
        except UnknownTimeZoneError:
            return None

    async def disconnect(self, principal: Principal, request_id: str) -> None:
        """Delete the user's encrypted token cache (their refresh token) and audit it."""
        async with self._store.transaction() as tx:
            deleted = await storage.delete_token_cache(tx, principal.tenant_id, principal.oid)
            await self._audit(
                principal,
                principal.tenant_id,
                "token.delete",
                (),
                "ok" if deleted else "none",
                request_id,
                tx=tx,
            )


def _event_time(value: dict[str, Any]) -> datetime:
    """A Graph dateTimeTimeZone as an aware UTC datetime (Windows or IANA zone names)."""
    local = datetime.fromisoformat(str(value["dateTime"])[:26])
    return local.replace(tzinfo=resolve_zone(str(value.get("timeZone") or "UTC"))).astimezone(UTC)


def _room_matches(room: dict[str, Any], q: str) -> bool:
    """A typed name names a room by its address or by the start of its name or any of its words
    ("rainier" names "Redmond 1.01 Rainier")."""
    name = str(room.get("displayName", "")).lower()
    return (
        str(room.get("emailAddress", "")).lower() == q
        or name.startswith(q)
        or any(word.startswith(q) for word in name.split())
    )


def candidate_day_of(req: dict[str, Any]) -> CandidateDay | None:
    """The candidate's working day a find_slots request names (``None`` without a zone).

    Raises:
        ValidationError: an unknown zone, or a day that does not start before it ends.
    """
    zone_name = req.get("candidate_time_zone")
    if not zone_name:
        return None
    try:
        return CandidateDay(
            ZoneInfo(zone_name),
            time.fromisoformat(req.get("candidate_day_start", "08:00")),
            time.fromisoformat(req.get("candidate_day_end", "20:00")),
        )
    except (ValueError, KeyError, OSError) as exc:  # NotFound is a KeyError; "Europe" a directory
        raise ValidationError("candidate_time_zone", "is not a usable zone and day") from exc


def _candidate_ordered(result: SlotsResult, day: CandidateDay, want_all: bool, limit: int) -> SlotsResult:
    """Slots inside the candidate's day first (best-first order kept), the rest marked; with
    ``all`` the order stays chronological and only the marks are added."""
    by_interval = {Interval(s.start, s.end): s for s in result.slots}
    inside, outside = candidate_first(list(by_interval), day)
    marked = {i: not day.contains(i) for i in by_interval}
    order = list(by_interval) if want_all else [*inside, *outside][:limit]
    return SlotsResult(
        tuple(SlotOut(i.start, i.end, marked[i]) for i in order), result.people, result.blockers
    )


def _lock2(exc: CalendarError) -> CalendarError:
    """Mark a refusal by lock 2 (tenant credential or archived user) so the API audits it once."""
    exc.lock2_denial = True  # type: ignore[attr-defined]
    return exc


def _wire_time(field: str, raw: str) -> datetime:
    """A schema-valid wire time that is also a real instant in 2000..2199 (else a 400, never a 500)."""
    try:
        value = parse_time(raw)
    except (ValueError, OverflowError) as exc:
        raise ValidationError(field, "is not a valid time") from exc
    if not 2000 <= value.year < 2200:
        raise ValidationError(field, "is out of range")
    return value


def _is_retry_of(row: storage.InterviewRow, attendees: list[str], start: datetime, end: datetime) -> bool:
    """A retry is the same request: a key reused for another time, panel or candidate would
    write an event no reservation covers (or a time never offered)."""
    return (row.start, row.end) == (start, end) and sorted(row.attendees) == sorted(attendees)


def _key_reused() -> ConflictError:
    return ConflictError("This idempotency key was used for another interview.")


def _window(start_raw: str, end_raw: str) -> tuple[datetime, datetime]:
    start, end = _wire_time("start", start_raw), _wire_time("end", end_raw)
    if end <= start:
        raise ValidationError("end", "must be after start")
    if end - start > _MAX_WINDOW:
        raise ValidationError("end", "the window may span at most 61 days")
    return start, end


def _person_out(schedule: Schedule, is_room: bool) -> PersonOut:
    zone = ""
    if schedule.working_hours:
        zone = str((schedule.working_hours.get("timeZone") or {}).get("name", ""))
    return PersonOut(schedule.address.lower(), schedule.address.lower(), zone, is_room)


def _working_hours(raw: dict[str, Any] | None, *, is_room: bool) -> WorkingHours:
    if is_room or not raw:
        return WorkingHours(frozenset(range(7)), time(0, 0), time(0, 0), resolve_zone("UTC"))
    zone = resolve_zone(str((raw.get("timeZone") or {}).get("name", "UTC")))  # may raise: fail closed
    days = frozenset(_DAYS[d] for d in raw.get("daysOfWeek", []) if d in _DAYS)
    return WorkingHours(
        days, time.fromisoformat(str(raw["startTime"])[:8]), time.fromisoformat(str(raw["endTime"])[:8]), zone
    )


def _zone_known(schedule: Schedule, *, is_room: bool) -> bool:
    """A custom or unknown working-hours zone cannot be placed in time: such a calendar is unreadable."""
    try:
        _working_hours(schedule.working_hours, is_room=is_room)
    except UnknownTimeZoneError:
        return False
    return True


def _availability(schedule: Schedule, *, is_room: bool) -> PersonAvailability:
    """Turn one getSchedule answer into the engine's input, inferring all-day events
    (`calendar_view.blocks_from_schedule`: getSchedule has no `isAllDay`)."""
    hours = _working_hours(schedule.working_hours, is_room=is_room)
    blocks, all_day = blocks_from_schedule(schedule.items, hours.zone)
    return PersonAvailability(schedule.address.lower(), hours, blocks, all_day)


def _read_availability(read: CalendarRead, is_room: bool) -> PersonAvailability:
    """calendarView's blocks with getSchedule's working hours, else getSchedule's free/busy."""
    if not read.from_view:
        return _availability(read.schedule, is_room=is_room)
    return PersonAvailability(
        read.schedule.address.lower(),
        _working_hours(read.schedule.working_hours, is_room=is_room),
        read.blocks,
        read.all_day,
    )


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


def _event_body(
    candidate: dict[str, str],
    interviewers: list[str],
    rooms: list[str],
    start: datetime,
    end: datetime,
    txn: str,
    subject: str,
    time_zone: str | None,
    optional: Sequence[str] = (),
    *,
    role: str = "",
) -> dict[str, Any]:
    """The panel's event: interviewers (required or optional) and rooms, never the candidate
    (who gets their own, `invites.candidate_event`); the body says who the candidate is."""
    attendees = [{"type": "required", "emailAddress": {"address": a}} for a in interviewers]
    attendees += [{"type": "optional", "emailAddress": {"address": a}} for a in optional]
    attendees += [{"type": "resource", "emailAddress": {"address": r}} for r in rooms]
    event: dict[str, Any] = {
        "subject": subject,
        "body": panel_body(candidate_name=candidate["name"], role=role),
        "start": {"dateTime": _naive_utc(start), "timeZone": "UTC"},
        "end": {"dateTime": _naive_utc(end), "timeZone": "UTC"},
        "attendees": attendees,
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
        "transactionId": txn,
        "allowNewTimeProposals": False,
    }
    if rooms:
        event["location"] = room_location(rooms[0], "")
    if time_zone:
        event["originalStartTimeZone"] = time_zone
    return event


def _next_transaction_id(txn: str) -> str:
    """The deterministic successor of a transactionId whose booking failed or was cancelled."""
    return str(uuid.uuid5(_TXN_NAMESPACE, f"{txn}:retry"))


def _naive_utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _interview_out(row: storage.InterviewRow) -> InterviewOut:
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
