"""Tenancy: lock 2, the mailbox gate wiring, the delegated token, disconnect and the audit helper.

Every use case begins with `Tenancy.context` (lock 2): the caller's tenant must be onboarded, its
admin-consent credential must decrypt, and the caller must not be archived. The credential lives
only in the returned `TenantContext`, in memory, for the request. Before any mailbox is read or
written the use case asks `Tenancy.check_mailboxes` (the one mailbox gate, `calendar_backend.gate`).
Every calendar access writes exactly one audit row through `Tenancy.audit`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from calendar_backend import storage
from calendar_backend.audit import AuditEvent, append_audit
from calendar_backend.auth import Principal
from calendar_backend.crypto import CredentialCipher
from calendar_backend.errors import CalendarError, DecryptionError, PermissionDeniedError
from calendar_backend.gate import MailboxGate, Probe, Refusal
from calendar_backend.graph import CallStats
from calendar_backend.sealing import tenant_credential_aad, token_cache_aad
from calendar_backend.tokens import AppCredential, TokenBroker


class AuditFn(Protocol):
    """`Tenancy.audit`: one audit row, in ``tx`` or in its own transaction."""

    def __call__(
        self,
        principal: Principal | None,
        tenant_id: str,
        operation: str,
        targets: Sequence[str],
        result: str,
        request_id: str,
        stats: CallStats | None = None,
        tx: Any = None,
    ) -> Awaitable[None]: ...


@dataclass(frozen=True, slots=True)
class TenantContext:
    """What lock 2 yields for one request: the decrypted credential, held only in memory."""

    tenant_id: str
    credential: AppCredential


class Tenancy:
    """Lock 2, tokens, the gate and auditing for every use case. Safe to use concurrently."""

    def __init__(
        self,
        store: storage.Store,
        cipher: CredentialCipher,
        tokens: TokenBroker,
        gate: MailboxGate,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._tokens = tokens
        self._gate = gate
        self._clock = clock

    # ---- lock 2 ------------------------------------------------------------------------------
    async def context(self, principal: Principal) -> TenantContext:
        """Lock 2 for ``principal``'s tenant.

        Raises:
            PermissionDeniedError: the tenant is not connected, or the caller is archived.
            DecryptionError: the credential does not open with this keyring.
            (Both marked ``lock2_denial`` so that the API audits the refusal once.)
        """
        async with self._store.transaction() as tx:
            row = await storage.get_tenant(tx, principal.tenant_id)
            archived = await storage.is_archived(tx, principal.tenant_id, principal.oid)
        if row is None or row.status != "active":
            raise _lock2(PermissionDeniedError("Your organisation has not connected OpenSlot yet."))
        if archived:
            refusal = _lock2(PermissionDeniedError("This account can no longer use OpenSlot."))
            refusal.denied_oid = principal.oid  # audit: who was refused
            raise refusal
        try:
            raw = self._cipher.decrypt(row.credential_blob, aad=tenant_credential_aad(row.tenant_id))
        except DecryptionError as exc:
            raise _lock2(DecryptionError()) from exc
        return TenantContext(principal.tenant_id, AppCredential.from_bytes(raw))

    # ---- tokens ------------------------------------------------------------------------------
    async def app_token(self, ctx: TenantContext) -> str:
        """An app-only Graph token of the tenant (client credentials)."""
        return await self._tokens.for_app(ctx.tenant_id, ctx.credential)

    async def user_token(self, principal: Principal, ctx: TenantContext, assertion: str) -> str:
        """A delegated Graph token for ``principal`` (on-behalf-of ``assertion``); the user's token
        cache is stored sealed, bound to the tenant and user."""
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

    async def disconnect(self, principal: Principal, request_id: str) -> None:
        """Delete the user's encrypted token cache (their refresh token) and audit it."""
        async with self._store.transaction() as tx:
            deleted = await storage.delete_token_cache(tx, principal.tenant_id, principal.oid)
            await self.audit(
                principal,
                principal.tenant_id,
                "token.delete",
                (),
                "ok" if deleted else "none",
                request_id,
                tx=tx,
            )

    # ---- the mailbox gate --------------------------------------------------------------------
    async def check_mailboxes(
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
            await self.audit(principal, ctx.tenant_id, operation, targets, result, request_id, stats)

        return await self._gate.check(
            tenant_id=ctx.tenant_id,
            actor_oid=actor_oid or (principal.oid if principal else None),
            people=people,
            rooms=rooms,
            app_token=lambda: self.app_token(ctx),
            audit=audit,
            probe=probe,
            static=static,
            unreserved=unreserved,
        )

    async def not_allowed(self, ctx: TenantContext, people: Sequence[str]) -> set[str]:
        """Which of ``people`` the allow-list (or the leavers list) refuses, lower-cased."""
        return await self._gate.not_allowed(ctx.tenant_id, people, lambda: self.app_token(ctx))

    async def rooms_among(self, ctx: TenantContext, mailboxes: Sequence[str]) -> set[str]:
        """Which of ``mailboxes`` are rooms of the tenant's room list, lower-cased."""
        return await self._gate.rooms_among(mailboxes, lambda: self.app_token(ctx))

    # ---- audit -------------------------------------------------------------------------------
    async def audit(
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
        """Append one audit row (in ``tx`` when given, else in its own transaction)."""
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
        await self.audit(actor, tenant_id or "-", operation, (), f"denied:{reason}", request_id)


def _lock2(exc: CalendarError) -> CalendarError:
    """Mark a refusal by lock 2 (tenant credential or archived user) so the API audits it once."""
    exc.lock2_denial = True
    return exc
