"""Leavers: archive users who were disabled or removed in the tenant, within 24 hours.

The job reads the directory with Graph ``users/delta`` and the tenant's app-only token
(``User.Read.All``). The first run per tenant is a full round: it archives every disabled user
and every user OpenSlot knows (a token cache, an offer or an interview) who is no longer in the
directory. It then stores the ``@odata.deltaLink`` (table ``directory_sync``) and later runs only
read the changes since. An expired sync state starts a new full round.

Archiving one user is one transaction: ``archived_users`` row, token cache deleted, open candidate
offers revoked, one audit row (``user.archive``, actor ``lifecycle``). From then on the Calendar
Service refuses the user on every call, even with an unexpired token. The job runs hourly in
``serve`` (and on demand: ``python -m calendar_backend lifecycle run``); the clock is injected.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend import storage
from calendar_backend.audit import AuditEvent, append_audit
from calendar_backend.crypto import CredentialCipher
from calendar_backend.errors import CalendarError, PermissionDeniedError, UpstreamError
from calendar_backend.graph import CallStats, GraphClient
from calendar_backend.sealing import tenant_credential_aad
from calendar_backend.storage import UTCDateTime, metadata
from calendar_backend.tokens import AppCredential, TokenBroker

log = logging.getLogger(__name__)

ACTOR: Final = "lifecycle"
DEFAULT_INTERVAL: Final = timedelta(hours=1)
_FULL_ROUND: Final = "/users/delta?$select=id,accountEnabled,mail,userPrincipalName"

directory_sync: Final = sa.Table(
    "directory_sync",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("delta_link", sa.Text, nullable=False),
    sa.Column("synced_at", UTCDateTime, nullable=False),
)

# The addresses of archived users (mail and UPN, lowercase), so that an archived user can be
# refused *by name* where people are named by address (interviewers). Written with the archive.
archived_addresses: Final = sa.Table(
    "archived_addresses",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("address", sa.String(320), primary_key=True),
    sa.Column("oid", sa.String(64), nullable=False),
    sa.Column("archived_at", UTCDateTime, nullable=False),
)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class SyncReport:
    """One tenant's run: who was archived now (oids), and what was cleaned up."""

    tenant_id: str
    full_round: bool
    archived: tuple[str, ...]
    revoked_offers: int
    deleted_caches: int


@dataclass(frozen=True, slots=True)
class _Delta:
    leavers: set[str]
    present: set[str]
    delta_link: str
    full_round: bool
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)


class LeaverJob:
    """Archives leavers for every active tenant. One instance per process."""

    def __init__(
        self,
        store: storage.Store,
        cipher: CredentialCipher,
        tokens: TokenBroker,
        graph: GraphClient,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._tokens = tokens
        self._graph = graph
        self._clock = clock

    async def run_all(self) -> list[SyncReport]:
        """Run every active tenant; a tenant that fails is logged and skipped (retried next hour)."""
        async with self._store.transaction() as tx:
            tenant_ids = await storage.list_tenant_ids(tx)
        reports: list[SyncReport] = []
        for tenant_id in tenant_ids:
            try:
                reports.append(await self.run_tenant(tenant_id))
            except CalendarError as exc:
                log.warning("leaver job failed for a tenant: %s", exc.code)
        return reports

    async def run_tenant(self, tenant_id: str) -> SyncReport:
        """Read the tenant's directory changes and archive its leavers.

        Raises:
            PermissionDeniedError: the tenant is not onboarded/active.
            CalendarError: Entra or Graph failed (nothing is archived, the delta link is kept).
        """
        token = await self._tokens.for_app(tenant_id, await self._credential(tenant_id))
        async with self._store.transaction() as tx:
            link = await get_delta_link(tx, tenant_id)
        delta = await self._read_delta(token, link)
        async with self._store.transaction() as tx:
            leavers = set(delta.leavers)
            if delta.full_round:
                leavers |= await known_oids(tx, tenant_id) - delta.present
            report = await _archive_all(tx, tenant_id, sorted(leavers), self._clock(), delta.addresses)
            await put_delta_link(tx, tenant_id, delta.delta_link, self._clock())
        return SyncReport(tenant_id, delta.full_round, *report)

    async def _credential(self, tenant_id: str) -> AppCredential:
        async with self._store.transaction() as tx:
            row = await storage.get_tenant(tx, tenant_id)
        if row is None or row.status is not storage.TenantStatus.ACTIVE:
            raise PermissionDeniedError("The tenant is not connected.")
        raw = self._cipher.decrypt(row.credential_blob, aad=tenant_credential_aad(tenant_id))
        return AppCredential.from_bytes(raw)

    async def _read_delta(self, token: str, link: str | None) -> _Delta:
        if link is not None:
            found = await self._pages(token, link)
            if found is not None:
                return _split(found[0], found[1], full_round=False)
            log.info("directory sync state expired; starting a full round")
        found = await self._pages(token, _FULL_ROUND)
        if found is None:
            raise UpstreamError("Microsoft Graph refused the directory sync.")
        return _split(found[0], found[1], full_round=True)

    async def _pages(self, token: str, path: str) -> tuple[list[dict[str, Any]], str] | None:
        """All pages of one delta round; ``None`` when Graph says the sync state is gone."""
        items: list[dict[str, Any]] = []
        stats = CallStats()
        next_path: str | None = path
        delta_link = ""
        while next_path:
            status, doc = await self._graph.request("GET", next_path, token, stats=stats)
            if status in (400, 410) and _is_sync_state_error(doc):
                return None
            if status != 200:
                raise UpstreamError("Microsoft Graph refused the directory sync.")
            items.extend(v for v in doc.get("value", []) if isinstance(v, dict))
            next_path = doc.get("@odata.nextLink")
            delta_link = str(doc.get("@odata.deltaLink", delta_link))
        if not delta_link:
            raise UpstreamError("Microsoft Graph sent no delta link.")
        return items, delta_link


def _is_sync_state_error(doc: dict[str, Any]) -> bool:
    code = str((doc.get("error") or {}).get("code", "")).lower()
    return code in {"syncstatenotfound", "syncstateinvalid", "resyncrequired"}


def _split(items: list[dict[str, Any]], delta_link: str, *, full_round: bool) -> _Delta:
    leavers: set[str] = set()
    present: set[str] = set()
    addresses: dict[str, tuple[str, ...]] = {}
    for item in items:
        oid = str(item.get("id", "")).lower()
        if not oid:
            continue
        if "@removed" in item or item.get("accountEnabled") is False:
            leavers.add(oid)
            addresses[oid] = tuple(
                sorted(
                    {
                        str(item[k]).lower()
                        for k in ("mail", "userPrincipalName")
                        if isinstance(item.get(k), str) and item[k]
                    }
                )
            )
        else:
            present.add(oid)
    return _Delta(leavers, present, delta_link, full_round, addresses)


async def _archive_all(
    tx: AsyncConnection,
    tenant_id: str,
    oids: Iterable[str],
    at: datetime,
    addresses: dict[str, tuple[str, ...]] | None = None,
) -> tuple[tuple[str, ...], int, int]:
    archived: list[str] = []
    offers = caches = 0
    for oid in oids:
        result = await archive_leaver(tx, tenant_id, oid, at, (addresses or {}).get(oid, ()))
        if result is not None:
            archived.append(oid)
            offers += result[0]
            caches += int(result[1])
    return tuple(archived), offers, caches


async def archive_leaver(
    tx: AsyncConnection, tenant_id: str, oid: str, at: datetime, addresses: Iterable[str] = ()
) -> tuple[int, bool] | None:
    """Archive one user in the caller's transaction: revoke offers, delete tokens, remember the
    user's addresses (mail, UPN) so they are refused by name as interviewers, audit.

    Returns ``(offers revoked, cache deleted)``, or ``None`` if the user was already archived
    (then nothing is written). ``at`` must be aware.
    """
    if not await storage.archive_user(tx, tenant_id, oid, at):
        return None
    for address in sorted({a.lower() for a in addresses}):
        await tx.execute(
            sa.delete(archived_addresses).where(
                archived_addresses.c.tenant_id == tenant_id, archived_addresses.c.address == address
            )
        )
        await tx.execute(
            sa.insert(archived_addresses).values(
                tenant_id=tenant_id, address=address, oid=oid, archived_at=at
            )
        )
    revoked = await storage.revoke_offers_for_user(tx, tenant_id, oid)
    deleted = await storage.delete_token_cache(tx, tenant_id, oid)
    await append_audit(
        tx,
        AuditEvent(
            tenant_id=tenant_id,
            actor_oid=ACTOR,
            operation="user.archive",
            targets=(oid,),
            result="ok",
            at=at,
            request_id=f"lifecycle-{uuid.uuid4()}",
        ),
    )
    return revoked, deleted


async def archived_among(tx: AsyncConnection, tenant_id: str, addresses: Iterable[str]) -> tuple[str, ...]:
    """The given addresses (as given, in order) that belong to users archived as leavers."""
    wanted = list(dict.fromkeys(addresses))
    if not wanted:
        return ()
    c = archived_addresses.c
    query = sa.select(c.address).where(c.tenant_id == tenant_id, c.address.in_([a.lower() for a in wanted]))
    gone = {str(a) for a in (await tx.execute(query)).scalars()}
    return tuple(a for a in wanted if a.lower() in gone)


async def known_oids(tx: AsyncConnection, tenant_id: str) -> set[str]:
    """Lowercase oids OpenSlot holds anything for in this tenant (caches, offers, interviews)."""
    queries = (
        sa.select(storage.token_caches.c.user_oid).where(storage.token_caches.c.tenant_id == tenant_id),
        sa.select(storage.offers.c.organizer_oid).where(storage.offers.c.tenant_id == tenant_id),
        sa.select(storage.interviews.c.organizer_oid).where(storage.interviews.c.tenant_id == tenant_id),
    )
    found: set[str] = set()
    for query in queries:
        found |= {str(v).lower() for v in (await tx.execute(query)).scalars()}
    return found


async def get_delta_link(tx: AsyncConnection, tenant_id: str) -> str | None:
    """The stored ``@odata.deltaLink`` of the tenant's last sync, or ``None`` (never synced)."""
    query = sa.select(directory_sync.c.delta_link).where(directory_sync.c.tenant_id == tenant_id)
    value = (await tx.execute(query)).scalar_one_or_none()
    return None if value is None else str(value)


async def put_delta_link(tx: AsyncConnection, tenant_id: str, delta_link: str, at: datetime) -> None:
    """Store the delta link to resume from (insert or replace)."""
    c = directory_sync.c
    updated = await tx.execute(
        sa.update(directory_sync).where(c.tenant_id == tenant_id).values(delta_link=delta_link, synced_at=at)
    )
    if updated.rowcount == 0:
        await tx.execute(
            sa.insert(directory_sync).values(tenant_id=tenant_id, delta_link=delta_link, synced_at=at)
        )


async def run_every(
    interval: timedelta,
    action: Callable[[], Awaitable[object]],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rounds: int | None = None,
) -> None:
    """Run ``action`` now and then every ``interval`` (``rounds`` times, or until cancelled).

    A failing round is logged and does not stop the loop (the next round retries).
    """
    done = 0
    while rounds is None or done < rounds:
        try:
            await action()
        except Exception:  # a background loop must survive one bad round
            log.exception("periodic task failed; retrying next round")
        done += 1
        if rounds is None or done < rounds:
            await sleep(interval.total_seconds())
