"""Candidate offers: a capability link that lets a candidate book one interview themselves.

Managers create, list and revoke offers with their user token (lock 1). Candidate operations
(slots, book, cancel, reschedule) are authorised by the capability token instead: it is hashed
with SHA-256, looked up, and its status and expiry checked; then lock 2 (the tenant's
admin-consent credential must decrypt, the organizer must not be archived) yields an app-only
Graph token (client credentials), so Exchange's application access policy applies. Lock 3 (the
pinned payload schema) is enforced by `app.py` as for every operation.

Invariants:

- The capability token is 256 bits from `secrets` and is never stored: only its SHA-256 is.
- The candidate's name/email and the manager's Teams conversation reference are stored only
  sealed (AES-256-GCM, purpose ``offer-private``, bound to the offer's token hash).
- A link holds at most one live booking (`storage.mark_offer_booked` in the same transaction as
  the pending interview). Candidates see start/end only: never subjects, busy reasons or names
  the manager did not choose to show.
- Candidate changes are limited: every reschedule and every cancel counts one change
  (``candidate_change_limit``, counted race-safe by `storage.count_reschedule`). A cancel is
  always allowed before the cut-off; afterwards the link opens again for a new booking
  (`storage.reopen_offer`) only while changes are left and the link has not expired, else it
  stays on the cancelled booking. A failed booking attempt reopens the link without counting.
- The manager's Teams notice is written in the manager's IANA zone, sealed with the offer.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.booking import CandidateInvite, Writer
from calendar_backend.contract import OfferOut, SlotsResult, format_time, outbound_url_allowed
from calendar_backend.errors import (
    ConflictError,
    GoneError,
    NotFoundError,
    PermissionDeniedError,
    SlotTakenError,
    ValidationError,
)
from calendar_backend.gate import Probe
from calendar_backend.invites import panel_body
from calendar_backend.sealing import offer_private_aad
from calendar_backend.service import (
    CalendarService,
    TenantContext,
    _event_body,
    _window,
)

_STEP = timedelta(minutes=15)
_MAX_SLOTS = 200
DEFAULT_DAY_HOURS = (8, 20)
MEETING_FORMAT = "Microsoft Teams video call"


@dataclass(frozen=True, slots=True)
class OfferPrivate:
    """What is sealed in an offer row: the candidate and the manager's conversation reference."""

    candidate_name: str
    candidate_email: str
    conversation_ref: dict[str, Any] | None
    show_names: bool
    manager_time_zone: str = "UTC"
    role: str = ""
    organizer_name: str = ""
    first_names: tuple[str, ...] = ()  # the interviewers' first names, only when show_names
    day_hours: tuple[int, int] = DEFAULT_DAY_HOURS  # the candidate's day in their zone

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "n": self.candidate_name,
                "e": self.candidate_email,
                "r": self.conversation_ref,
                "s": self.show_names,
                "z": self.manager_time_zone,
                "ro": self.role,
                "on": self.organizer_name,
                "fn": list(self.first_names),
                "dh": list(self.day_hours),
            }
        ).encode()

    @staticmethod
    def from_bytes(raw: bytes) -> OfferPrivate:
        """Inverse of `to_bytes`; rows sealed before a field was stored read its default."""
        doc = json.loads(raw)
        hours = doc.get("dh") or DEFAULT_DAY_HOURS
        return OfferPrivate(
            str(doc["n"]),
            str(doc["e"]),
            doc.get("r"),
            bool(doc.get("s")),
            str(doc.get("z") or "UTC"),
            str(doc.get("ro") or ""),
            str(doc.get("on") or ""),
            tuple(str(n) for n in doc.get("fn") or ()),
            (int(hours[0]), int(hours[1])),
        )


def hash_capability(token: str) -> bytes:
    """SHA-256 of a capability token (32 bytes); the only form ever stored or compared."""
    return hashlib.sha256(token.encode("ascii")).digest()


def slot_id(start: datetime) -> str:
    """A compact, URL-safe id for a slot start (UTC, minute precision), e.g. ``20261201T0900Z``."""
    return start.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


class OfferService:
    """Offer use cases on top of `CalendarService` (same store, cipher, token broker and Graph)."""

    def __init__(self, service: CalendarService) -> None:
        self._svc = service
        self._settings = service._settings
        self._store = service._store
        self._cipher = service._cipher
        self._clock = service._clock

    # ---- manager operations (user token) ----------------------------------------------------
    async def create_offer(
        self, principal: Principal, assertion: str, req: dict[str, Any], request_id: str
    ) -> OfferOut:
        """Mint a link. Returns the URL once; only the token's hash is stored.

        Raises:
            ValidationError: the window is empty, too long or already over, or
            ``manager_time_zone`` is not an IANA zone.
            PermissionDeniedError: lock 2 failed (tenant not onboarded, user archived).
        """
        start, end = _window(req["window_start"], req["window_end"])
        now = self._clock()
        if end <= now:
            raise ValidationError("window_end", "is in the past")
        manager_zone = _iana_zone("manager_time_zone", req.get("manager_time_zone", "UTC"))
        candidate_zone = _iana_zone("candidate_time_zone", req.get("candidate_time_zone", "UTC"))
        ctx = await self._svc._tenant_context(principal)
        reference = req.get("conversation_ref")
        if reference is not None and not self._reference_allowed(reference):
            raise ValidationError("conversation_ref", "serviceUrl is not allowed")
        if reference is not None and not _reference_is_callers(reference, principal):
            raise ValidationError("conversation_ref", "is not your conversation")
        token = await self._svc._user_graph_token(principal, ctx, assertion)
        organizer, organizer_name = await self._svc._organizer(token)
        names = [a.lower() for a in req["interviewers"]]
        show_names = bool(req.get("show_interviewer_names", False))
        day_hours = (
            int(req.get("day_start_hour", DEFAULT_DAY_HOURS[0])),
            int(req.get("day_end_hour", DEFAULT_DAY_HOURS[1])),
        )
        if day_hours[0] >= day_hours[1]:
            raise ValidationError("day_end_hour", "must be after day_start_hour")
        # The mailbox gate: allow-list, and only calendars the manager can read in Outlook now.
        refusal = await self._svc._gate(
            principal, ctx, "offer.create", request_id, names, probe=Probe(token, organizer, max(start, now))
        )
        if refusal is not None:
            raise refusal.error()
        capability = secrets.token_urlsafe(32)
        token_hash = hash_capability(capability)
        private = OfferPrivate(
            req["candidate_name"],
            req.get("candidate_email", ""),
            req.get("conversation_ref"),
            show_names,
            manager_zone,
            role=str(req.get("role", "")),
            organizer_name=organizer_name,
            first_names=(await self._first_names(token, names) if show_names else ()),
            day_hours=day_hours,
        )
        sealed = self._cipher.encrypt(
            private.to_bytes(), aad=offer_private_aad(principal.tenant_id, token_hash)
        )
        hours = int(req.get("expires_in_hours", self._settings.offer_ttl_hours))
        async with self._store.transaction() as tx:
            row = await storage.create_offer(
                tx,
                tenant_id=principal.tenant_id,
                organizer_oid=principal.oid,
                organizer_upn=organizer,
                token_hash=token_hash,
                interviewers=names,
                display_names=[],  # first names only, sealed in `OfferPrivate`
                duration_min=int(req["duration_min"]),
                window_start=start,
                window_end=end,
                candidate_time_zone=candidate_zone,
                expires_at=now + timedelta(hours=hours),
                conversation_ref=(sealed, self._cipher.key_id_of(sealed)),
                now=now,
            )
            await self._svc._audit(
                principal, principal.tenant_id, "offer.create", names, "ok", request_id, tx=tx
            )
        url = f"{self._settings.public_base_url}/c/{capability}"
        return OfferOut(row.id, row.status, row.expires_at, url)

    async def list_offers(self, principal: Principal) -> list[OfferOut]:
        """The caller's offers, newest first (no URLs: tokens are not recoverable)."""
        await self._svc._tenant_context(principal)
        async with self._store.transaction() as tx:
            rows = await storage.list_offers(tx, principal.tenant_id, principal.oid)
        now = self._clock()
        return [OfferOut(r.id, _effective_status(r, now), r.expires_at) for r in rows]

    async def revoke_offer(self, principal: Principal, offer_id: str, request_id: str) -> OfferOut:
        """Revoke the caller's open offer; the link answers 410 from now on.

        Raises:
            NotFoundError: no such offer of this caller.
            ConflictError: the offer was already booked (cancel the interview instead).
        """
        async with self._store.transaction() as tx:
            row = await storage.get_offer(tx, offer_id)
            if row is None or row.tenant_id != principal.tenant_id or row.organizer_oid != principal.oid:
                raise NotFoundError()
            if row.status is storage.OfferStatus.BOOKED:
                raise ConflictError("This link was already used; cancel the interview instead.")
            await storage.revoke_offer(tx, offer_id)
            await self._svc._audit(
                principal, principal.tenant_id, "offer.revoke", (), "ok", request_id, tx=tx
            )
            updated = await storage.get_offer(tx, offer_id)
        assert updated is not None  # noqa: S101 - read in the same transaction
        return OfferOut(updated.id, updated.status, updated.expires_at)

    # ---- candidate operations (capability token) ----------------------------------------------
    async def candidate_slots(self, req: dict[str, Any], request_id: str) -> dict[str, Any]:
        """The offer as the candidate may see it, with open slots computed live when open.

        Raises:
            NotFoundError: unknown token. GoneError: expired or revoked.
        """
        offer = await self._offer_for(req["token"])
        private = self._private(offer)
        zone = req.get("time_zone")
        doc = self._offer_doc(offer, private, _iana_zone("time_zone", zone) if zone is not None else None)
        if offer.status is storage.OfferStatus.BOOKED:
            interview = await self._interview_of(offer)
            doc["booking"] = _booking_doc(interview)
            doc["can_change"] = self._can_change(offer, interview)
            if not doc["can_change"]:
                return doc
        doc["slots"] = [_slot_doc(s.start, s.end) for s in (await self._live_slots(offer, request_id)).slots]
        return doc

    async def candidate_book(self, req: dict[str, Any], request_id: str) -> dict[str, Any]:
        """Book the offer's interview at ``start``; at most once per link.

        Raises:
            ConflictError: the link was already used. SlotTakenError (with ``fresh``): the slot
            is no longer free. ValidationError: not a slot of this offer, or no email known.
        """
        offer = await self._offer_for(req["token"])
        if offer.status is not storage.OfferStatus.OPEN:
            raise ConflictError("This link was already used to book an interview.")
        private = self._private(offer)
        email = private.candidate_email or req.get("email", "")
        if not email:
            raise ValidationError("email", "is required")
        start, end = self._slot_bounds(offer, req["start"])
        ctx, token = await self._app_token(offer, "offer.book", request_id)
        if not private.candidate_email:
            await self._outside_tenant(offer, token, email, request_id)
        mailboxes = list(offer.interviewers)
        await self._require_offered(offer, token, start, end, request_id, "offer.book")
        row = await self._claim(offer, private.candidate_name, email, start, end, request_id)
        writer = Writer(None, ctx.tenant_id, token, offer.organizer_upn, request_id)
        try:  # reserve (the claim) → recheck → write → confirm | withdraw (booking.py)
            await self._svc._bookings.recheck(writer, row, mailboxes, "interview.recheck")
        except SlotTakenError as exc:
            await self._reopen(offer, row.id)
            exc.fresh = await self._live_slots(offer, request_id)  # type: ignore[attr-defined]
            raise
        except Exception:
            await self._fail(row.id, offer)
            raise
        event = _event_body(
            {"name": private.candidate_name, "email": email},
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
            await self._svc._bookings.create(writer, row, event, candidate=invite)
        except Exception:
            await self._fail(row.id, offer)
            raise
        return await self._outcome(offer, private, "booked", row.id)

    async def candidate_cancel(self, req: dict[str, Any], request_id: str) -> dict[str, Any]:
        """Cancel the booked interview (before the cut-off); attendees get Outlook's notice.

        The cancel counts one change. The link then opens again (``reopened`` in the answer) when
        changes are left and it has not expired; otherwise it keeps showing the cancelled booking.

        Raises:
            ConflictError: nothing booked, or past the cut-off.
        """
        offer, interview = await self._changeable(req["token"], count=False)
        _ctx, token = await self._app_token(offer)
        writer = Writer(None, offer.tenant_id, token, offer.organizer_upn, request_id)
        reopened = False

        async def released(tx: Any) -> None:
            nonlocal reopened
            await storage.count_reschedule(tx, offer.id)
            if self._may_rebook(offer):
                reopened = await storage.reopen_offer(tx, offer.id, interview_id=interview.id)
                if reopened:
                    await self._svc._audit(None, offer.tenant_id, "offer.reopen", (), "ok", request_id, tx=tx)

        await self._svc._bookings.cancel(
            writer, interview, "Cancelled by the candidate via OpenSlot", "offer.cancel", released=released
        )
        outcome = await self._outcome(offer, self._private(offer), "cancelled", interview.id)
        return {**outcome, "reopened": reopened}

    async def candidate_reschedule(self, req: dict[str, Any], request_id: str) -> dict[str, Any]:
        """Move the booked interview to another open slot (limit and cut-off apply).

        Raises:
            ValidationError: no ``start``. ConflictError: limit or cut-off reached.
            SlotTakenError (with ``fresh``): the new slot is not free.
        """
        if "start" not in req:
            raise ValidationError("start", "is missing a required field")
        offer, interview = await self._changeable(req["token"], count=True)
        start, end = self._slot_bounds(offer, req["start"])
        _ctx, token = await self._app_token(offer, "offer.reschedule", request_id)
        await self._require_offered(
            offer, token, start, end, request_id, "offer.reschedule", ignore=(interview.start, interview.end)
        )
        writer = Writer(None, offer.tenant_id, token, offer.organizer_upn, request_id)
        try:  # hold the new time → recheck → count the change → PATCH → confirm (booking.py)
            await self._svc._bookings.move(
                writer,
                interview,
                start,
                end,
                operation="offer.reschedule",
                recheck_operation="offer.recheck",
                before_write=lambda: self._claim_change(offer),
            )
        except SlotTakenError as exc:
            exc.fresh = await self._live_slots(offer, request_id)  # type: ignore[attr-defined]
            raise
        return await self._outcome(offer, self._private(offer), "rescheduled", interview.id)

    # ---- helpers ------------------------------------------------------------------------------
    async def _offer_for(self, capability: str) -> storage.OfferRow:
        token_hash = hash_capability(capability)
        async with self._store.transaction() as tx:
            offer = await storage.get_offer_by_token_hash(tx, token_hash)
        if offer is None or not secrets.compare_digest(offer.token_hash, token_hash):
            unknown = NotFoundError("This link is not valid.")
            unknown.denial_reason = "capability"  # type: ignore[attr-defined]
            raise unknown
        status = _effective_status(offer, self._clock())
        if status in {storage.OfferStatus.REVOKED, storage.OfferStatus.EXPIRED}:
            gone = GoneError(
                "This link has expired."
                if status is storage.OfferStatus.EXPIRED
                else "This link was withdrawn."
            )
            gone.denial_reason = f"capability_{status}"  # type: ignore[attr-defined]
            raise gone
        return offer

    async def _first_names(self, token: str, addresses: list[str]) -> tuple[str, ...]:
        """Each interviewer's first name (``givenName``, else the display name's first word);
        an unreadable profile is left out rather than shown as an address."""
        names = []
        for address in addresses:
            status, doc = await self._svc._graph.request(
                "GET", f"/users/{quote(address, safe='@')}?$select=givenName,displayName", token
            )
            if status != 200:
                continue
            first = (
                str(doc.get("givenName") or "").strip()
                or str(doc.get("displayName") or "").strip().split(" ")[0]
            )
            if first and "@" not in first:
                names.append(first[:60])
        return tuple(names)

    def _reference_allowed(self, reference: object) -> bool:
        """The outbound-URL validator on a conversation reference's serviceUrl (when stored and
        again when handed to the bot, since the allow-list may have changed in between)."""
        return isinstance(reference, dict) and outbound_url_allowed(
            reference.get("serviceUrl"), self._settings.service_url_policy
        )

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
            ctx = await self._svc._tenant_context(organizer)
        except PermissionDeniedError as exc:
            gone = GoneError()
            gone.denial_reason = "lock2_organizer"  # type: ignore[attr-defined]
            raise gone from exc
        if operation:
            refusal = await self._svc._gate(
                None, ctx, operation, request_id, list(offer.interviewers), actor_oid=offer.organizer_oid
            )
            if refusal is not None:  # audited by name by the gate; the candidate sees a dead link
                raise GoneError()
        return ctx, await self._svc._tokens.for_app(ctx.tenant_id, ctx.credential)

    async def _live_slots(self, offer: storage.OfferRow, request_id: str) -> SlotsResult:
        now = self._clock()
        start = max(offer.window_start, now)
        if start >= offer.window_end:
            return SlotsResult((), ())
        _ctx, token = await self._app_token(offer, "offer.slots", request_id)
        result = await self._svc._slots_for(
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
        result = await self._svc._unreserved(
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
            status, _doc = await self._svc._graph.request(
                "GET", f"/users/{quote(address, safe='@')}?$select=id", token
            )
            if status not in {400, 404}:
                internal = True  # found, or could not tell: fail closed
        if internal:
            await self._svc._audit(
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
            await self._svc.require_offered(
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
            exc.fresh = await self._live_slots(offer, request_id)  # type: ignore[attr-defined]
            raise

    def _slot_bounds(self, offer: storage.OfferRow, raw: str) -> tuple[datetime, datetime]:
        start, _ = _window(raw, format_time(offer.window_end + timedelta(days=1)))
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
            exc.fresh = await self._live_slots(offer, request_id)  # type: ignore[attr-defined]
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


def _reference_is_callers(reference: dict[str, Any], principal: Principal) -> bool:
    """A stored conversation reference may only name the caller's own tenant and Entra user
    (where it names them): the booking notice is sent there with the bot's token."""
    conversation, person = reference.get("conversation"), reference.get("user")
    tenant = conversation.get("tenantId") if isinstance(conversation, dict) else None
    oid = person.get("aadObjectId") if isinstance(person, dict) else None
    return (tenant is None or str(tenant).lower() == principal.tenant_id.lower()) and (
        oid is None or str(oid).lower() == principal.oid.lower()
    )


def _iana_zone(field: str, name: str) -> str:
    """``name`` if it is an IANA zone this host knows, else ValidationError on ``field``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe" is a directory
        raise ValidationError(field, "is not a known time zone") from exc
    return name


def _effective_status(offer: storage.OfferRow, now: datetime) -> storage.OfferStatus:
    if offer.status is storage.OfferStatus.OPEN and offer.expires_at <= now:
        return storage.OfferStatus.EXPIRED
    return offer.status


def _slot_doc(start: datetime, end: datetime) -> dict[str, str]:
    return {"slot_id": slot_id(start), "start": format_time(start), "end": format_time(end)}


def _booking_doc(row: storage.InterviewRow) -> dict[str, str]:
    return {"start": format_time(row.start), "end": format_time(row.end), "status": str(row.status)}
