"""OpenSlot's own allow-list of schedulable mailboxes, per tenant (on top of Exchange's policy).

An entry is a user (a lowercase mailbox address) or a group (its Entra object id). A mailbox is
allowed when it is listed as a user or is a (transitive) member of a listed group. **An empty
allow-list allows every mailbox**: the tenant's application access policy and each user's own
calendar permissions still apply. Rooms are not subject to the allow-list.

Group membership is read from Graph (``/groups/{id}/transitiveMembers``) with the tenant's
app-only token (needs ``GroupMember.Read.All``), cached in memory only for a short time (default
five minutes) and never written anywhere. A group that cannot be read fails closed: the check
raises instead of allowing.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.errors import CalendarError, PermissionDeniedError
from calendar_backend.graph import CallStats, GraphClient
from calendar_backend.storage import UTCDateTime, metadata

_GUID: Final = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_ADDRESS: Final = re.compile(r"^[A-Za-z0-9._%+'\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$")
DEFAULT_GROUP_TTL: Final = timedelta(minutes=5)

allowlist_entries: Final = sa.Table(
    "allowlist_entries",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("value", sa.String(320), primary_key=True),
    sa.Column("added_at", UTCDateTime, nullable=False),
)

AppToken = Callable[[], Awaitable[str]]


class EntryKind(enum.StrEnum):
    """What an allow-list entry names."""

    USER = "user"
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class Entry:
    """One allow-list entry: a lowercase mailbox address (user) or a group object id (group)."""

    kind: EntryKind
    value: str


def parse_entry(kind: str, value: str) -> Entry:
    """Validate and normalise an entry (addresses and ids are lowercased).

    Raises:
        ValueError: unknown kind, a user that is not a mailbox address, a group that is not a GUID.
    """
    entry_kind = EntryKind(kind)
    clean = value.strip().lower()
    pattern = _ADDRESS if entry_kind is EntryKind.USER else _GUID
    if not pattern.fullmatch(clean):
        raise ValueError(f"not a valid {entry_kind.value} entry")
    return Entry(entry_kind, clean)


async def add_entry(
    tx: AsyncConnection, tenant_id: str, entry: Entry, *, now: datetime | None = None
) -> bool:
    """Add ``entry`` to the tenant's allow-list; ``False`` if it was already there."""
    if await _exists(tx, tenant_id, entry):
        return False
    at = (now or datetime.now(UTC)).astimezone(UTC)
    await tx.execute(
        sa.insert(allowlist_entries).values(
            tenant_id=tenant_id, kind=entry.kind.value, value=entry.value, added_at=at
        )
    )
    return True


async def remove_entry(tx: AsyncConnection, tenant_id: str, entry: Entry) -> bool:
    """Remove ``entry``; returns whether it was there."""
    c = allowlist_entries.c
    result = await tx.execute(
        sa.delete(allowlist_entries).where(
            c.tenant_id == tenant_id, c.kind == entry.kind.value, c.value == entry.value
        )
    )
    return result.rowcount == 1


async def list_entries(tx: AsyncConnection, tenant_id: str) -> tuple[Entry, ...]:
    """The tenant's entries, users first, each kind sorted. Empty means "allow every mailbox"."""
    c = allowlist_entries.c
    query = (
        sa.select(c.kind, c.value)
        .where(c.tenant_id == tenant_id)
        .order_by(sa.desc(c.kind == EntryKind.USER.value), c.value)
    )
    return tuple(Entry(EntryKind(kind), value) for kind, value in await tx.execute(query))


async def _exists(tx: AsyncConnection, tenant_id: str, entry: Entry) -> bool:
    c = allowlist_entries.c
    query = sa.select(sa.literal(1)).where(
        c.tenant_id == tenant_id, c.kind == entry.kind.value, c.value == entry.value
    )
    return (await tx.execute(query)).first() is not None


class MailboxAllowList:
    """Decides which mailboxes an allow-list refuses, resolving groups through Graph.

    Safe for concurrent use. Group member sets are cached per (tenant, group) for ``ttl``.
    """

    def __init__(
        self,
        graph: GraphClient,
        *,
        ttl: timedelta = DEFAULT_GROUP_TTL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._graph = graph
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[datetime, frozenset[str]]] = {}

    async def refused(
        self, tenant_id: str, entries: Sequence[Entry], mailboxes: Iterable[str], app_token: AppToken
    ) -> tuple[str, ...]:
        """The mailboxes (as given, in order, without duplicates) that ``entries`` do not allow.

        An empty ``entries`` refuses nothing. ``app_token`` is awaited only when a group must be
        resolved.

        Raises:
            PermissionDeniedError: a listed group cannot be read (fails closed).
        """
        wanted = list(dict.fromkeys(m for m in mailboxes))
        if not entries:
            return ()
        users = {e.value for e in entries if e.kind is EntryKind.USER}
        pending = [m for m in wanted if m.lower() not in users]
        groups = [e.value for e in entries if e.kind is EntryKind.GROUP]
        if not pending or not groups:
            return tuple(pending)
        token = await app_token()
        members: set[str] = set()
        for group_id in groups:
            members |= await self._members(tenant_id, group_id, token)
        return tuple(m for m in pending if m.lower() not in members)

    def forget(self, tenant_id: str | None = None) -> None:
        """Drop cached memberships (all, or one tenant's)."""
        for key in [k for k in self._cache if tenant_id is None or k[0] == tenant_id]:
            del self._cache[key]

    async def _members(self, tenant_id: str, group_id: str, token: str) -> frozenset[str]:
        now = self._clock()
        cached = self._cache.get((tenant_id, group_id))
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self._fetch_members(group_id, token)
        self._cache[(tenant_id, group_id)] = (now + self._ttl, found)
        return found

    async def _fetch_members(self, group_id: str, token: str) -> frozenset[str]:
        if not _GUID.fullmatch(group_id):
            raise ValueError("group id is not a GUID")
        path: str | None = (
            f"/groups/{quote(group_id)}/transitiveMembers?$select=id,mail,userPrincipalName&$top=999"
        )
        addresses: set[str] = set()
        stats = CallStats()
        while path:
            try:
                status, doc = await self._graph.request("GET", path, token, stats=stats)
            except CalendarError as exc:
                raise _group_unreadable() from exc
            if status != 200:
                raise _group_unreadable()
            for member in doc.get("value", []):
                addresses |= {
                    str(member[k]).lower()
                    for k in ("mail", "userPrincipalName")
                    if isinstance(member, dict) and member.get(k)
                }
            next_link = doc.get("@odata.nextLink")
            path = str(next_link) if next_link else None
        return frozenset(addresses)


def _group_unreadable() -> PermissionDeniedError:
    return PermissionDeniedError(
        "OpenSlot could not read a group on its allow-list, so it reads no calendar. "
        "Ask your admin to grant GroupMember.Read.All or to list users instead."
    )
