"""Candidate offers: the manager's side of a capability link (create, list, revoke).

Managers create, list and revoke offers with their user token (lock 1); what the link's holder may
do (slots, book, cancel, reschedule) is `calendar_backend.candidate`. Lock 3 (the pinned payload
schema) is enforced by `app.py` as for every operation.

Invariants:

- The capability token is 256 bits from `secrets` and is never stored: only its SHA-256 is.
- The candidate's name/email and the manager's Teams conversation reference are stored only
  sealed (AES-256-GCM, purpose ``offer-private``, bound to the offer's token hash).
- The manager's Teams notice is written in the manager's IANA zone, sealed with the offer.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.contract import (
    DEFAULT_DAY_HOURS,
    CreateOfferRequest,
    OfferOut,
    outbound_url_allowed,
)
from calendar_backend.crypto import CredentialCipher
from calendar_backend.directory import Directory
from calendar_backend.errors import (
    ConflictError,
    NotFoundError,
    ValidationError,
)
from calendar_backend.gate import Probe
from calendar_backend.loop_link import check_link_pools, link_template, template_mailboxes
from calendar_backend.loop_search import LoopTemplates
from calendar_backend.loop_templates import to_json
from calendar_backend.sealing import offer_private_aad
from calendar_backend.settings import BackendSettings
from calendar_backend.slots import Interval
from calendar_backend.tenancy import Tenancy


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
    """The manager's offer use cases, on the public API of tenancy and directory."""

    def __init__(
        self,
        settings: BackendSettings,
        store: storage.Store,
        cipher: CredentialCipher,
        clock: Callable[[], datetime],
        tenancy: Tenancy,
        directory: Directory,
    ) -> None:
        self._settings = settings
        self._store = store
        self._cipher = cipher
        self._clock = clock
        self._tenancy = tenancy
        self._directory = directory
        self.loop_templates: LoopTemplates | None = None  # pooled links' pools (set by the service)

    # ---- manager operations (user token) ----------------------------------------------------
    async def create_offer(
        self, principal: Principal, assertion: str, req: CreateOfferRequest, request_id: str
    ) -> OfferOut:
        """Mint a link. Returns the URL once; only the token's hash is stored.

        Raises:
            ValidationError: the window is already over, or the conversation reference is not
            the caller's or not allowed (the rest is checked by `CreateOfferRequest`).
            InvalidTemplateError: a loop template that cannot be used, a pool it draws from
            included (missing, its group unreadable, too few members: named).
            PermissionDeniedError: lock 2 failed (tenant not onboarded, user archived).
        """
        start, end = req.window_start, req.window_end
        now = self._clock()
        if end <= now:
            raise ValidationError("window_end", "is in the past")
        ctx = await self._tenancy.context(principal)
        reference = req.conversation_ref
        if reference is not None and not self._reference_allowed(reference):
            raise ValidationError("conversation_ref", "serviceUrl is not allowed")
        if reference is not None and not _reference_is_callers(reference, principal):
            raise ValidationError("conversation_ref", "is not your conversation")
        token = await self._tenancy.user_token(principal, ctx, assertion)
        organizer, organizer_name = await self._directory.organizer(token)
        names, rooms, template = list(req.interviewers), list[str](), None
        if req.loop_template is not None or req.loop_template_name is not None:
            template = await link_template(self._store, self._directory, ctx.tenant_id, token, req)
            await check_link_pools(self._store, self.loop_templates, ctx, template, Interval(start, end))
            names, rooms = template_mailboxes(template)
        show_names = req.show_interviewer_names
        # The mailbox gate: allow-list, and only calendars the manager can read in Outlook now.
        refusal = await self._tenancy.check_mailboxes(
            principal, ctx, "offer.create", request_id, names, rooms,
            probe=Probe(token, organizer, max(start, now)),
        )  # fmt: skip
        if refusal is not None:
            raise refusal.error()
        capability = secrets.token_urlsafe(32)
        token_hash = hash_capability(capability)
        private = OfferPrivate(
            req.candidate_name,
            req.candidate_email,
            req.conversation_ref,
            show_names,
            req.manager_time_zone,
            role=req.role,
            organizer_name=organizer_name,
            first_names=(await self._directory.first_names(token, names) if show_names else ()),
            day_hours=req.day_hours,
        )
        sealed = self._cipher.encrypt(
            private.to_bytes(), aad=offer_private_aad(principal.tenant_id, token_hash)
        )
        hours = req.expires_in_hours if req.expires_in_hours is not None else self._settings.offer_ttl_hours
        async with self._store.transaction() as tx:
            row = await storage.create_offer(
                tx,
                tenant_id=principal.tenant_id,
                organizer_oid=principal.oid,
                organizer_upn=organizer,
                token_hash=token_hash,
                interviewers=names,
                display_names=[],  # first names only, sealed in `OfferPrivate`
                duration_min=req.duration_min
                if template is None
                else sum(x.minutes for x in template.sessions),
                window_start=start,
                window_end=end,
                candidate_time_zone=req.candidate_time_zone,
                expires_at=now + timedelta(hours=hours),
                conversation_ref=(sealed, self._cipher.key_id_of(sealed)),
                now=now,
                loop_template=to_json(template) if template is not None else None,
            )
            await self._tenancy.audit(
                principal, principal.tenant_id, "offer.create", [*names, *rooms], "ok", request_id, tx=tx
            )
        url = f"{self._settings.public_base_url}/c/{capability}"
        return OfferOut(row.id, row.status, row.expires_at, url)

    async def list_offers(self, principal: Principal) -> list[OfferOut]:
        """The caller's offers, newest first (no URLs: tokens are not recoverable)."""
        await self._tenancy.context(principal)
        async with self._store.transaction() as tx:
            rows = await storage.list_offers(tx, principal.tenant_id, principal.oid)
        now = self._clock()
        return [OfferOut(r.id, effective_status(r, now), r.expires_at) for r in rows]

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
            await self._tenancy.audit(
                principal, principal.tenant_id, "offer.revoke", (), "ok", request_id, tx=tx
            )
            updated = await storage.get_offer(tx, offer_id)
        assert updated is not None  # noqa: S101 - read in the same transaction
        return OfferOut(updated.id, updated.status, updated.expires_at)

    def _reference_allowed(self, reference: object) -> bool:
        return reference_allowed(reference, self._settings)


def reference_allowed(reference: object, settings: BackendSettings) -> bool:
    """The outbound-URL validator on a conversation reference's serviceUrl (when stored and
    again when handed to the bot, since the allow-list may have changed in between)."""
    return isinstance(reference, dict) and outbound_url_allowed(
        reference.get("serviceUrl"), settings.service_url_policy
    )


def _reference_is_callers(reference: dict[str, Any], principal: Principal) -> bool:
    """A stored conversation reference may only name the caller's own tenant and Entra user
    (where it names them): the booking notice is sent there with the bot's token."""
    conversation, person = reference.get("conversation"), reference.get("user")
    tenant = conversation.get("tenantId") if isinstance(conversation, dict) else None
    oid = person.get("aadObjectId") if isinstance(person, dict) else None
    return (tenant is None or str(tenant).lower() == principal.tenant_id.lower()) and (
        oid is None or str(oid).lower() == principal.oid.lower()
    )


def effective_status(offer: storage.OfferRow, now: datetime) -> storage.OfferStatus:
    """An open offer past its expiry is expired (the row changes only when it is next written)."""
    if offer.status is storage.OfferStatus.OPEN and offer.expires_at <= now:
        return storage.OfferStatus.EXPIRED
    return offer.status
