"""The candidate's side of a capability link: see the offer, book once, cancel, reschedule.

Candidate operations are authorised by the capability token instead of a user token: it is hashed
with SHA-256, looked up, and its status and expiry checked; then lock 2 (the tenant's admin-consent
credential must decrypt, the organizer must not be archived) yields an app-only Graph token (client
credentials), so Exchange's application access policy applies. The mailbox gate is asked for the
link's interviewers as the allow-list stands now. Every Outlook write goes through
`booking.Bookings`; slots come from `search.SlotSearch`, the same engine the manager's search uses.

Invariants:

- A link holds at most one live booking (`storage.mark_offer_booked` in the same transaction as
  the pending interview). Candidates see start/end only: never subjects, busy reasons or names
  the manager did not choose to show.
- Candidate changes are limited: every reschedule and every cancel counts one change
  (``candidate_change_limit``, counted race-safe by `storage.count_reschedule`). A cancel is
  always allowed before the cut-off; afterwards the link opens again for a new booking
  (`storage.reopen_offer`) only while changes are left and the link has not expired, else it
  stays on the cancelled booking. A failed booking attempt reopens the link without counting.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.booking import Bookings, CandidateInvite, Writer
from calendar_backend.candidate_loops import LoopLink
from calendar_backend.contract import CandidateRequest, SlotsResult, format_time, parse_window, parse_zone
from calendar_backend.crypto import CredentialCipher
from calendar_backend.directory import Directory
from calendar_backend.errors import (
    ConflictError,
    GoneError,
    NotFoundError,
    PermissionDeniedError,
    SlotTakenError,
    ValidationError,
)
from calendar_backend.invites import panel_body, panel_event
from calendar_backend.loop_booking import LoopBookings
from calendar_backend.loop_link import stored_template, template_mailboxes
from calendar_backend.offers import (
    OfferPrivate,
    effective_status,
    hash_capability,
    reference_allowed,
    slot_id,
)
from calendar_backend.sealing import offer_private_aad
from calendar_backend.search import SlotSearch
from calendar_backend.settings import BackendSettings
from calendar_backend.tenancy import Tenancy, TenantContext

_STEP = timedelta(minutes=15)
_MAX_SLOTS = 200
MEETING_FORMAT = "Microsoft Teams video call"


class CandidateLink:
    """The link holder's use cases on the public API of tenancy, search and booking."""

    def __init__(
        self,
        settings: BackendSettings,
        store: storage.Store,
        cipher: CredentialCipher,
        clock: Callable[[], datetime],
        tenancy: Tenancy,
        directory: Directory,
        search: SlotSearch,
        bookings: Bookings,
        loops: LoopBookings | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._cipher = cipher
        self._clock = clock
        self._tenancy = tenancy
        self._directory = directory
        self._search = search
        self._bookings = bookings
        self._loop_link = (
            LoopLink(settings, store, clock, search, bookings, loops, self._app_token, tenancy)
            if loops
            else None
        )

    async def slots(self, req: CandidateRequest, request_id: str) -> dict[str, Any]:
        """The offer as the candidate may see it, with open slots computed live when open.

        Raises:
            NotFoundError: unknown token. GoneError: expired or revoked.
        """
        offer = await self._offer_for(req.token)
        private = self._private(offer)
        zone = req.time_zone
        doc = self._offer_doc(offer, private, parse_zone("time_zone", zone) if zone is not None else None)
        if offer.loop_template is not None:
            return await self._link().page(offer, private, doc, request_id)
        if offer.status is storage.OfferStatus.BOOKED:
            interview = await self._interview_of(offer)
            doc["booking"] = _booking_doc(interview)
            doc["can_change"] = self._can_change(offer, interview)
            if not doc["can_change"]:
                return doc
        doc["slots"] = [_slot_doc(s.start, s.end) for s in (await self._live_slots(offer, request_id)).slots]
        return doc

    async def book(self, req: CandidateRequest, request_id: str) -> dict[str, Any]:
        """Book the offer's interview at ``start``; at most once per link.

        Raises:
            ConflictError: the link was already used. SlotTakenError (with ``fresh``): the slot
            is no longer free. ValidationError: not a slot of this offer, or no email known.
        """
        if req.start is None:  # the schema requires it
            raise ValidationError("start", "is missing a required field")
        offer = await self._offer_for(req.token)
        if offer.loop_template is not None:
            return await self._link().book_link(
                offer, self._private(offer), req, request_id,
                lambda token, email: self._outside_tenant(offer, token, email, request_id),
            )  # fmt: skip
        if offer.status is not storage.OfferStatus.OPEN:
            raise ConflictError("This link was already used to book an interview.")
        private = self._private(offer)
        email = private.candidate_email or req.email
        if not email:
            raise ValidationError("email", "is required")
        start, end = self._slot_bounds(offer, req.start)
        ctx, token = await self._app_token(offer, "offer.book", request_id)
        if not private.candidate_email:
            await self._outside_tenant(offer, token, email, request_id)
        mailboxes = list(offer.interviewers)
        await self._require_offered(offer, token, start, end, request_id, "offer.book")
        row = await self._claim(offer, private.candidate_name, email, start, end, request_id)
        writer = Writer(None, ctx.tenant_id, token, offer.organizer_upn, request_id)
        try:  # reserve (the claim) → recheck → write → confirm | withdraw (booking.py)
            await self._bookings.recheck(writer, row, mailboxes, "interview.recheck")
        except SlotTakenError as exc:
            await self._reopen(offer, row.id)
            exc.fresh = await self._live_slots(offer, request_id)
            raise
        except Exception:
            await self._fail(row.id, offer)
            raise
        event = panel_event(
            private.candidate_name,
            mailboxes,
            [],
            start,
            end,
            row.transaction_id,
            f"Interview: {private.candidate_name}",
            None,
        )
        event["body"] = panel_body(
            candidate_name=private.candidate_name,
            role=private.role,
            source="Booked by the candidate through their OpenSlot link.",
        )
        brand = self._settings.branding.get(offer.tenant_id) or self._settings.branding.get("*")
        invite = CandidateInvite(
            name=private.candidate_name,
            email=email,
            role=private.role,
            company=brand.company_name if brand else "",
            organizer_name=private.organizer_name,
        )
        try:
            await self._bookings.create(writer, row, event, candidate=invite)
        except Exception:
            await self._fail(row.id, offer)
            raise
        return await self._outcome(offer, private, "booked", row.id)

    async def cancel(self, req: CandidateRequest, request_id: str) -> dict[str, Any]:
        """Cancel the booked interview (before the cut-off); attendees get Outlook's notice.

        The cancel counts one change. The link then opens again (``reopened`` in the answer) when
        changes are left and it has not expired; otherwise it keeps showing the cancelled booking.

        Raises:
            ConflictError: nothing booked, or past the cut-off.
        """
        if (loop_offer := await self._offer_for(req.token)).loop_template is not None:
            return await self._loop_change(loop_offer, req, request_id, cancel=True)
        offer, interview = await self._changeable(req.token, count=False)
        _ctx, token = await self._app_token(offer)
        writer = Writer(None, offer.tenant_id, token, offer.organizer_upn, request_id)
        reopened = False

        async def released(tx: Any) -> None:
            nonlocal reopened
            await storage.count_reschedule(tx, offer.id)
            if self._may_rebook(offer):
                reopened = await storage.reopen_offer(tx, offer.id, interview_id=interview.id)
                if reopened:
                    await self._tenancy.audit(
                        None, offer.tenant_id, "offer.reopen", (), "ok", request_id, tx=tx
                    )

        await self._bookings.cancel(
            writer, interview, "Cancelled by the candidate via OpenSlot", "offer.cancel", released=released
        )
        outcome = await self._outcome(offer, self._private(offer), "cancelled", interview.id)
        return {**outcome, "reopened": reopened}

    async def reschedule(self, req: CandidateRequest, request_id: str) -> dict[str, Any]:
        """Move the booked interview to another open slot (limit and cut-off apply).

        Raises:
            ValidationError: no ``start``. ConflictError: limit or cut-off reached.
            SlotTakenError (with ``fresh``): the new slot is not free.
        """
        if (loop_offer := await self._offer_for(req.token)).loop_template is not None:
            return await self._loop_change(loop_offer, req, request_id, cancel=False)
        if req.start is None:
            raise ValidationError("start", "is missing a required field")
        offer, interview = await self._changeable(req.token, count=True)
        start, end = self._slot_bounds(offer, req.start)
        _ctx, token = await self._app_token(offer, "offer.reschedule", request_id)
        await self._require_offered(
            offer, token, start, end, request_id, "offer.reschedule", ignore=(interview.start, interview.end)
        )
        writer = Writer(None, offer.tenant_id, token, offer.organizer_upn, request_id)
        try:  # hold the new time → recheck → count the change → PATCH → confirm (booking.py)
            await self._bookings.move(
                writer,
                interview,
                start,
                end,
                operation="offer.reschedule",
                recheck_operation="offer.recheck",
                before_write=lambda: self._claim_change(offer),
            )
        except SlotTakenError as exc:
            exc.fresh = await self._live_slots(offer, request_id)
            raise
        return await self._outcome(offer, self._private(offer), "rescheduled", interview.id)

    # ---- helpers ------------------------------------------------------------------------------
    def _link(self) -> LoopLink:
        if self._loop_link is None:
            raise GoneError()
        return self._loop_link

    async def _loop_change(
        self, offer: storage.OfferRow, req: CandidateRequest, request_id: str, *, cancel: bool
    ) -> dict[str, Any]:
        may_rebook = self._may_rebook(offer)
        outcome = await self._link().change(
            offer, self._private(offer), req, request_id, cancel=cancel, may_rebook=may_rebook
        )
        if outcome.get("reopened"):  # as for single links: the link books again
            await self._tenancy.audit(None, offer.tenant_id, "offer.reopen", (), "ok", request_id)
        return outcome

    async def _offer_for(self, capability: str) -> storage.OfferRow:
        token_hash = hash_capability(capability)
        async with self._store.transaction() as tx:
            offer = await storage.get_offer_by_token_hash(tx, token_hash)
        if offer is None or not secrets.compare_digest(offer.token_hash, token_hash):
            unknown = NotFoundError("This link is not valid.")
            unknown.denial_reason = "capability"
            raise unknown
        status = effective_status(offer, self._clock())
        if status in {storage.OfferStatus.REVOKED, storage.OfferStatus.EXPIRED}:
            gone = GoneError(
                "This link has expired."
                if status is storage.OfferStatus.EXPIRED
                else "This link was withdrawn."
            )
            gone.denial_reason = f"capability_{status}"
            raise gone
        return offer

    def _reference_allowed(self, reference: object) -> bool:
        return reference_allowed(reference, self._settings)

    def _private(self, offer: storage.OfferRow) -> OfferPrivate:
        if offer.conversation_ref is None:
            raise GoneError()
        raw = self._cipher.decrypt(
            offer.conversation_ref, aad=offer_private_aad(offer.tenant_id, offer.token_hash)
        )
        return OfferPrivate.from_bytes(raw)

    def _offer_doc(self, offer: storage.OfferRow, private: OfferPrivate, zone: str | None) -> dict[str, Any]:
        brand = self._settings.branding.get(offer.tenant_id) or self._settings.branding.get("*")
        return {
            "status": str(offer.status),
            "tz": zone or offer.candidate_time_zone,
            "duration_min": offer.duration_min,
            "display_names": list(private.first_names) if private.show_names else [],
            "company": brand.to_json() if brand else None,
            "role": private.role,
            "organizer_name": private.organizer_name,
            "format": MEETING_FORMAT,
            "day_hours": list(private.day_hours),
            "expires_at": format_time(offer.expires_at),
            "needs_email": not private.candidate_email,
            "slots": [],
            "booking": None,
            "can_change": False,
            "changes_left": max(0, self._settings.candidate_change_limit - offer.reschedules_used),
        }

    async def _app_token(
        self, offer: storage.OfferRow, operation: str = "", request_id: str = ""
    ) -> tuple[TenantContext, str]:
        """Lock 2 for the organizer's tenant, then (with ``operation``) the mailbox gate for the
        link's interviewers as the allow-list stands now, then an app-only Graph token.

        Raises:
            GoneError: lock 2 failed (tenant gone, organizer archived).
            GoneError: also when the mailbox gate refuses one of the link's mailboxes (audited
            by name by the gate; the candidate is told nothing about who or why).
        """
        organizer = Principal(offer.tenant_id, offer.organizer_oid, frozenset())
        try:
            ctx = await self._tenancy.context(organizer)
        except PermissionDeniedError as exc:
            gone = GoneError()
            gone.denial_reason = "lock2_organizer"
            raise gone from exc
        if operation:
            people, rooms = list(offer.interviewers), list[str]()  # a loop link: every person AND room
            if offer.loop_template is not None:
                people, rooms = template_mailboxes(stored_template(offer))
            refusal = await self._tenancy.check_mailboxes(
                None, ctx, operation, request_id, people, rooms, actor_oid=offer.organizer_oid
            )
            if refusal is not None:  # audited by name by the gate; the candidate sees a dead link
                raise GoneError()
        return ctx, await self._tenancy.app_token(ctx)

    async def _live_slots(self, offer: storage.OfferRow, request_id: str) -> SlotsResult:
        now = self._clock()
        start = max(offer.window_start, now)
        if start >= offer.window_end:
            return SlotsResult((), ())
        _ctx, token = await self._app_token(offer, "offer.slots", request_id)
        result = await self._search.open_slots(
            None,
            token,
            list(offer.interviewers),
            [],
            start,
            offer.window_end,
            duration=timedelta(minutes=offer.duration_min),
            step=_STEP,
            buffer=timedelta(0),
            notice=timedelta(minutes=self._settings.default_notice_min),
            want_all=True,
            limit=_MAX_SLOTS,
            request_id=request_id,
            operation="offer.slots",
            requester=offer.organizer_upn,
            tenant_id=offer.tenant_id,
        )
        result = await self._search.unreserved(
            offer.tenant_id, list(offer.interviewers), result, start, offer.window_end
        )
        return SlotsResult(result.slots[:_MAX_SLOTS], ())

    async def _outside_tenant(self, offer: storage.OfferRow, token: str, email: str, request_id: str) -> None:
        """An invitee the candidate typed can never be a user or a domain of the tenant (issue 12
        finding 9): not the domain (or a subdomain) of the organizer or an interviewer, and no
        user Graph finds under that address. Refused as a 400, audited once.

        Raises:
            ValidationError: the address is inside the tenant (field ``email``).
        """
        address = email.strip().lower()
        domain = address.rsplit("@", 1)[-1].rstrip(".")
        inside = {a.rsplit("@", 1)[-1] for a in (offer.organizer_upn, *offer.interviewers)}
        internal = any(domain == d or domain.endswith("." + d) for d in inside)
        if not internal:
            internal = await self._directory.may_be_user(token, address)  # found, or could not tell
        if internal:
            await self._tenancy.audit(
                None, offer.tenant_id, "offer.book", (), "denied:internal_invitee", request_id
            )
            raise ValidationError("email", "must be your own e-mail address")

    async def _require_offered(
        self,
        offer: storage.OfferRow,
        token: str,
        start: datetime,
        end: datetime,
        request_id: str,
        operation: str,
        ignore: tuple[datetime, datetime] | None = None,
    ) -> None:
        """The wanted time must be one `_live_slots` would list now (same engine, same rules).

        Raises:
            ValidationError: never offered. SlotTakenError (with ``fresh``): busy now.
        """
        try:
            await self._search.require_offered(
                None,
                token,
                list(offer.interviewers),
                [],
                start,
                end,
                step=_STEP,
                notice=timedelta(minutes=self._settings.default_notice_min),
                request_id=request_id,
                operation=f"{operation}.offered",
                requester=offer.organizer_upn,
                tenant_id=offer.tenant_id,
                ignore=ignore,
            )
        except SlotTakenError as exc:
            exc.fresh = await self._live_slots(offer, request_id)
            raise

    def _slot_bounds(self, offer: storage.OfferRow, raw: str) -> tuple[datetime, datetime]:
        start, _ = parse_window(raw, format_time(offer.window_end + timedelta(days=1)))
        end = start + timedelta(minutes=offer.duration_min)
        aligned = (start - datetime(2000, 1, 1, tzinfo=UTC)) % _STEP == timedelta(0)
        earliest = self._clock() + timedelta(minutes=self._settings.default_notice_min)
        if not aligned or start < max(offer.window_start, earliest) or end > offer.window_end:
            raise ValidationError("start", "is not one of the offered times")
        return start, end

    async def _claim(
        self, offer: storage.OfferRow, name: str, email: str, start: datetime, end: datetime, request_id: str
    ) -> storage.InterviewRow:
        """Pending interview + offer → booked, in one transaction (the single-use guard)."""
        try:
            async with self._store.transaction() as tx:
                row = await storage.insert_pending(
                    tx,
                    tenant_id=offer.tenant_id,
                    organizer_oid=offer.organizer_oid,
                    organizer_upn=offer.organizer_upn,
                    transaction_id=str(uuid.uuid4()),
                    start=start,
                    end=end,
                    attendees=[*offer.interviewers, email.lower()],
                    candidate_name=name,
                    subject=f"Interview: {name}",
                    source=storage.InterviewSource.OFFER,
                    offer_id=offer.id,
                )
                if not await storage.mark_offer_booked(tx, offer.id, row.id):
                    raise ConflictError("This link was already used to book an interview.")
        except SlotTakenError as exc:
            exc.fresh = await self._live_slots(offer, request_id)
            raise
        return row

    async def _reopen(self, offer: storage.OfferRow, interview_id: str) -> None:
        """Give the link back after a failed attempt (only if it still points at that attempt)."""
        async with self._store.transaction() as tx:
            await storage.reopen_offer(tx, offer.id, interview_id=interview_id)

    async def _claim_change(self, offer: storage.OfferRow) -> None:
        """Count one reschedule before touching Outlook, so concurrent submits cannot exceed the
        limit. A change that then fails in Graph stays counted (the candidate may retry while
        changes are left)."""
        async with self._store.transaction() as tx:
            counted = await storage.count_reschedule(
                tx, offer.id, limit=self._settings.candidate_change_limit
            )
        if not counted:
            raise ConflictError("This interview can no longer be changed here.")

    def _may_rebook(self, offer: storage.OfferRow) -> bool:
        """After a cancel (already counted): changes left and the link not expired."""
        return (
            offer.reschedules_used + 1 < self._settings.candidate_change_limit
            and self._clock() < offer.expires_at
        )

    async def _fail(self, interview_id: str, offer: storage.OfferRow) -> None:
        async with self._store.transaction() as tx:
            row = await storage.get_interview(tx, interview_id)
            if row is not None and row.status is storage.InterviewStatus.PENDING:
                await storage.mark_interview(tx, interview_id, "failed")
        await self._reopen(offer, interview_id)

    async def _interview_of(self, offer: storage.OfferRow) -> storage.InterviewRow:
        async with self._store.transaction() as tx:
            row = await storage.get_interview(tx, offer.interview_id or "")
        if row is None:
            raise GoneError()
        return row

    def _can_change(self, offer: storage.OfferRow, interview: storage.InterviewRow) -> bool:
        cutoff = interview.start - timedelta(hours=self._settings.candidate_cutoff_hours)
        return (
            interview.status is storage.InterviewStatus.CONFIRMED
            and self._clock() < cutoff
            and offer.reschedules_used < self._settings.candidate_change_limit
        )

    async def _changeable(
        self, capability: str, *, count: bool
    ) -> tuple[storage.OfferRow, storage.InterviewRow]:
        offer = await self._offer_for(capability)
        if offer.status is not storage.OfferStatus.BOOKED:
            raise ConflictError("Nothing is booked with this link yet.")
        interview = await self._interview_of(offer)
        cutoff = interview.start - timedelta(hours=self._settings.candidate_cutoff_hours)
        if interview.status is not storage.InterviewStatus.CONFIRMED or self._clock() >= cutoff:
            raise ConflictError("This interview can no longer be changed here.")
        if count and offer.reschedules_used >= self._settings.candidate_change_limit:
            raise ConflictError("This interview can no longer be changed here.")
        return offer, interview

    async def _outcome(
        self, offer: storage.OfferRow, private: OfferPrivate, event: str, interview_id: str
    ) -> dict[str, Any]:
        """The answer to a successful candidate change, for the bot app only: the booking, the
        decrypted conversation reference and the manager's zone, so it can tell the manager in
        Teams in their own time."""
        async with self._store.transaction() as tx:
            interview = await storage.get_interview(tx, interview_id)
        assert interview is not None  # noqa: S101 - the change just wrote this interview
        return {
            "event": event,
            "booking": _booking_doc(interview),
            "tenant_id": offer.tenant_id,
            "candidate_name": private.candidate_name,
            "conversation_ref": private.conversation_ref
            if self._reference_allowed(private.conversation_ref)
            else None,
            "manager_time_zone": private.manager_time_zone,
            "candidate_time_zone": offer.candidate_time_zone,
            "role": private.role,
            "interview_id": interview.id,
            "join_url": interview.join_url or "",
        }


def _slot_doc(start: datetime, end: datetime) -> dict[str, str]:
    return {"slot_id": slot_id(start), "start": format_time(start), "end": format_time(end)}


def _booking_doc(row: storage.InterviewRow) -> dict[str, str]:
    return {"start": format_time(row.start), "end": format_time(row.end), "status": str(row.status)}
