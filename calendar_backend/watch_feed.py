"""The drift feed (issue 19): how a new drift item reaches the manager's Teams chat.

The bot holds no manager token between turns. When an interview is booked from Teams the bot sends
the chat's conversation reference with the request; it is checked (the outbound-URL validator; the
caller's own tenant and user) and stored SEALED on the interview's row
(`sealing.interview_conversation_ref_aad`, rotated with every other blob). ``POST /v1/watch/feed``
(service to service: the shared ``OPENSLOT_WATCH_FEED_KEY``, compared in constant time; a wrong or
missing key is refused and audited) answers the undelivered open drift items with the interview's
title and time, the repairs and the opened reference, each LEASED to the asking poller
(``{"poller": id}``; r0014 ``claimed_by``/``claimed_until``) so a second bot replica does not get
it meanwhile; ``POST /v1/watch/feed/ack`` marks them delivered. The bot records what it posted in
its own storage before it acks (`dialogs/watch_feed.PostedLedger`), so a crash between the post and
the ack, or a lost ack, never shows a second card. The card's buttons then call
``POST /v1/watch/drift/{id}/apply`` with the manager's own token.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from calendar_backend import storage
from calendar_backend.audit import AuditEvent, append_audit
from calendar_backend.auth import Principal
from calendar_backend.crypto import CredentialCipher
from calendar_backend.errors import AuthError, CalendarError, ValidationError
from calendar_backend.gate import MailboxGate
from calendar_backend.graph import GraphClient
from calendar_backend.offers import reference_allowed
from calendar_backend.sealing import interview_conversation_ref_aad, tenant_credential_aad
from calendar_backend.settings import BackendSettings
from calendar_backend.storage import watch_feed as rows
from calendar_backend.timezones import UnknownTimeZoneError, resolve_zone
from calendar_backend.tokens import AppCredential, TokenBroker

FEED_KEY_HEADER = "X-OpenSlot-Feed-Key"
MAX_ACK = 200
LEASE_S = 60.0  # how long a poller holds the items it was handed (longer than one round's posts)
PLAN_GRACE_S = 10.0  # a fallback: a row without repairs (its planning failed) goes out this late
NameOf = Callable[[str, str], Awaitable[str | None]]  # (tenant id, address) → display name
# (tenant id, organizer oid, organizer address) → the organizer's mailbox zone (IANA), or None
ZoneOf = Callable[[str, str, str], Awaitable[str | None]]


def _z(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def fallback_name(address: str) -> str:
    """A name for an address when the directory gives none: never the address itself."""
    local = address.split("@", 1)[0].replace(".", " ").replace("_", " ").strip()
    return local.title() or "Someone"


def check_reference(reference: object, principal: Principal, settings: BackendSettings) -> dict[str, Any]:
    """The reference, if it may be stored: an allowed serviceUrl, the caller's own tenant/user.
    Raises: ValidationError."""
    if not isinstance(reference, dict) or not reference_allowed(reference, settings):
        raise ValidationError("conversation_ref", "serviceUrl is not allowed")
    conversation, person = reference.get("conversation"), reference.get("user")
    tenant = conversation.get("tenantId") if isinstance(conversation, dict) else None
    oid = person.get("aadObjectId") if isinstance(person, dict) else None
    if (tenant is not None and str(tenant).lower() != principal.tenant_id.lower()) or (
        oid is not None and str(oid).lower() != principal.oid.lower()
    ):
        raise ValidationError("conversation_ref", "is not your conversation")
    return reference


class DriftFeed:
    """Stores references and serves the feed. Safe to use concurrently."""

    def __init__(
        self,
        settings: BackendSettings,
        store: storage.Store,
        cipher: CredentialCipher,
        clock: Callable[[], datetime],
        name_of: NameOf | None = None,
        lease_s: float = LEASE_S,
        zone_of: ZoneOf | None = None,
    ) -> None:
        self.lease_s = lease_s
        self._zone_of = zone_of
        self._settings = settings
        self._store = store
        self._cipher = cipher
        self._clock = clock
        self._name_of = name_of

    def check(self, reference: object, principal: Principal) -> dict[str, Any]:
        """`check_reference` with this deployment's settings. Raises: ValidationError."""
        return check_reference(reference, principal, self._settings)

    async def remember(self, principal: Principal, interview_id: str, reference: dict[str, Any]) -> None:
        """Seal and store ``reference`` (already checked) on the caller's interview."""
        sealed = self._cipher.encrypt(
            json.dumps(reference, separators=(",", ":")).encode(),
            aad=interview_conversation_ref_aad(principal.tenant_id, interview_id),
        )
        async with self._store.transaction() as tx:
            await rows.set_conversation_ref(
                tx, interview_id, principal.tenant_id, sealed, self._cipher.key_id_of(sealed)
            )

    async def authenticate(self, given: str | None, request_id: str) -> None:
        """Constant-time check of the shared key. Raises: AuthError (refusal audited)."""
        expected = self._settings.watch_feed_key
        ok = (
            bool(expected)
            and given is not None
            and given.isascii()  # raw non-UTF-8 header bytes arrive as surrogates: never a 500
            and hmac.compare_digest(given.encode(), expected.encode())
        )
        if ok:
            return
        event = AuditEvent(
            tenant_id="-",
            actor_oid="watch-feed",
            operation="watch.feed",
            targets=(),
            result="denied:key" if given else "denied:no_key",
            at=self._clock(),
            request_id=request_id if request_id and " " not in request_id else str(uuid.uuid4()),
        )
        async with self._store.transaction() as tx:
            await append_audit(tx, event)
        raise AuthError("The feed key is missing or wrong.")

    async def items(self, poller: str | None = None) -> list[dict[str, Any]]:
        """The undelivered drift items, each with its opened conversation reference, leased to
        ``poller`` for ``lease_s``: no other poller gets them meanwhile (two bot replicas never post
        the same card); the same poller gets them again at once (its retry of a failed post). A
        caller without a poller id gets a fresh one: its items wait for the lease to run out. A row
        is created with its repairs (the watcher plans first), so it goes out at once; one without
        any (its planning failed, or nothing was possible) waits ``PLAN_GRACE_S``, a fallback."""
        now = self._clock()
        holder = poller or f"anon-{uuid.uuid4().hex}"
        async with self._store.transaction() as tx:
            found = await rows.claim(
                tx,
                holder,
                now,
                now + timedelta(seconds=self.lease_s),
                planned_before=now - timedelta(seconds=PLAN_GRACE_S),
            )
        out = []
        for row in found:
            try:
                raw = self._cipher.decrypt(
                    row.conversation_ref, aad=interview_conversation_ref_aad(row.tenant_id, row.interview_id)
                )
                reference = json.loads(raw)
            except (ValueError, KeyError):
                continue  # unreadable (a key retired): never posted
            if not reference_allowed(reference, self._settings):
                continue  # the allow-list changed since: the bot would refuse it too
            repairs = [await self._named(row.tenant_id, dict(r)) for r in row.repairs]
            out.append(
                {
                    "id": row.drift_id,
                    "tenant_id": row.tenant_id,
                    "interview_id": row.interview_id,
                    "kind": row.kind,
                    "who": await self._name(row.tenant_id, row.who),
                    "title": row.subject,
                    "start": _z(row.start),
                    "end": _z(row.end),
                    "repairs": repairs,
                    "conversation_ref": reference,
                    "time_zone": await self._zone(row),
                }
            )
            if row.applied_repair is not None:  # the watcher applied it itself (a pool's auto-repair)
                done = next((r for r in repairs if r.get("id") == row.applied_repair), {})
                out[-1]["applied"] = {"repair": row.applied_repair, "in_name": done.get("in_name", "")}
        return out

    async def ack(self, ids: list[str]) -> int:
        """Mark drift items delivered (idempotent); the number newly marked. Raises: ValidationError."""
        if len(ids) > MAX_ACK or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids):
            raise ValidationError("ids", "must be at most 200 drift ids")
        async with self._store.transaction() as tx:
            return await rows.mark_delivered(tx, ids, self._clock())

    async def _name(self, tenant_id: str, address: str) -> str:
        if not address:
            return "Someone"
        name = await self._name_of(tenant_id, address) if self._name_of is not None else None
        return name or fallback_name(address)

    async def _zone(self, row: rows.FeedRow) -> str:
        """The organizer's Outlook zone, the card's "your time" (UTC when it cannot be read)."""
        if self._zone_of is None or not row.organizer_upn:
            return "UTC"
        return await self._zone_of(row.tenant_id, row.organizer_oid, row.organizer_upn) or "UTC"

    async def _named(self, tenant_id: str, repair: dict[str, Any]) -> dict[str, Any]:
        if repair.get("kind") == "replace" and isinstance(repair.get("in"), str):
            repair["in_name"] = await self._name(tenant_id, repair["in"])
        return {k: v for k, v in repair.items() if k not in {"in", "out"}}  # names only, no addresses


class DirectoryNames:
    """``displayName`` of an address, read with the tenant's app-only token
    (``GET /users/{address}?$select=displayName``: nothing else), remembered per process."""

    def __init__(
        self,
        store: storage.Store,
        cipher: CredentialCipher,
        tokens: TokenBroker,
        graph: GraphClient,
        gate: MailboxGate | None = None,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._tokens = tokens
        self._graph = graph
        self._gate = gate
        self._known: dict[tuple[str, str], str] = {}
        self._zones: dict[tuple[str, str], str] = {}

    async def _app_token(self, tenant_id: str) -> str | None:
        async with self._store.transaction() as tx:
            tenant = await storage.get_tenant(tx, tenant_id)
        if tenant is None or tenant.status != "active":
            return None
        raw = self._cipher.decrypt(tenant.credential_blob, aad=tenant_credential_aad(tenant_id))
        return await self._tokens.for_app(tenant_id, AppCredential.from_bytes(raw))

    async def zone(self, tenant_id: str, organizer_oid: str, address: str) -> str | None:
        """The organizer's mailbox zone (app-only ``mailboxSettings/timeZone``) as an IANA name,
        after the mailbox gate; remembered per process. ``None`` when refused or unreadable."""
        key = (tenant_id, address.lower())
        if key in self._zones:
            return self._zones[key]
        if self._gate is None:
            return None
        try:
            token = await self._app_token(tenant_id)
            if token is None:
                return None
            app_token = token

            async def give_token() -> str:
                return app_token

            async def audit(targets: Sequence[str], result: str, _stats: object) -> None:
                event = AuditEvent(
                    tenant_id=tenant_id,
                    actor_oid=organizer_oid,
                    operation="watch.feed.zone",
                    targets=tuple(t.lower() for t in targets),
                    result=result,
                    at=datetime.now(UTC),
                    request_id=str(uuid.uuid4()),
                )
                async with self._store.transaction() as tx:
                    await append_audit(tx, event)

            refusal = await self._gate.check(
                tenant_id=tenant_id,
                actor_oid=organizer_oid,
                people=[address.lower()],
                app_token=give_token,
                audit=audit,
            )
            if refusal is not None:
                return None
            status, doc = await self._graph.request(
                "GET", f"/users/{quote(address, safe='@')}/mailboxSettings/timeZone", token
            )
            if status != 200:
                return None
            zone = resolve_zone(str(doc.get("value") or "")).key
        except (CalendarError, UnknownTimeZoneError, ValueError):
            return None
        if len(self._zones) > 10_000:
            self._zones.clear()
        self._zones[key] = zone
        return zone

    async def __call__(self, tenant_id: str, address: str) -> str | None:
        key = (tenant_id, address.lower())
        if key in self._known:
            return self._known[key]
        try:
            token = await self._app_token(tenant_id)
            if token is None:
                return None
            status, doc = await self._graph.request(
                "GET", f"/users/{quote(address, safe='@')}?$select=displayName", token
            )
        except CalendarError:
            return None
        name = doc.get("displayName") if status == 200 else None
        if not isinstance(name, str) or not name.strip() or "@" in name:
            return None
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[key] = name.strip()[:120]
        return self._known[key]
