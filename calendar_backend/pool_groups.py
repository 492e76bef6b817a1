"""Pools whose members come from an Entra group (issue 18), read live from Graph.

A pool may name an Entra group (its object id, ``pools.group_id``) besides or instead of listed
members. Whenever the pool is used (the loop search, booking's re-check, the pool views) its
members are the listed ones plus the group's current (transitive) members, read with the tenant's
app-only token (``GroupMember.Read.All``), the same Graph read as the allow-list's
(`allowlist.MailboxAllowList`). Membership is kept in memory for a short time (``ttl``, five
minutes by default) and never stored. So a person who leaves the group stops being drawn once the
cache expires.

A B2B guest in the group (``userType`` Guest, or an ``#EXT#`` UPN) is left out: another
company's person is never drawn as an interviewer. So is a room (in Entra a room mailbox is a user
object, so a group can hold one): never drawn nor read (the tenant's room list,
`Tenancy.rooms_among`).

A group member without a listed row gets the pool's default caps, no hot hours, the first day of
week Monday and their mailbox zone (app-only ``mailboxSettings/timeZone``; UTC if that read
fails). A listed row for the same address wins (its caps, hot hours, zone). The zone is read only
for members the allow-list allows (and who have not left, `Tenancy.not_allowed`, no audit row): the
others stay members with UTC, and every use runs them through the mailbox gate (the search skips
them, booking refuses them).

A group that cannot be read (no permission, deleted, Graph failing) makes its pool unusable for
this use: :meth:`PoolGroups.live` answers ``None`` for it, and the caller explains it
(`loop_pools.unreadable_text`). It is never treated as an empty but usable pool.

This is an I/O module; :mod:`calendar_backend.pools` stays pure.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote

from calendar_backend import storage
from calendar_backend.allowlist import DEFAULT_GROUP_TTL
from calendar_backend.errors import CalendarError
from calendar_backend.graph import CallStats, GraphClient
from calendar_backend.pools import Member, Pool, normalize_address
from calendar_backend.tenancy import Tenancy, TenantContext
from calendar_backend.timezones import UnknownTimeZoneError, resolve_zone

_GUID: Final = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_ZONE_READS: Final = 8  # mailbox zones read at once


def parse_group_id(text: str) -> str:
    """``text`` as a lower-cased Entra object id; ``ValueError`` unless it is a GUID."""
    clean = text.strip().lower()
    if not _GUID.fullmatch(clean):
        raise ValueError("a group is named by its Entra object id (a GUID)")
    return clean


def _guest(item: dict[str, object]) -> bool:
    """Whether a group member is a B2B guest (``userType`` Guest, or an ``#EXT#`` UPN: ``userType``
    is not a basic property, so it may be missing under ``GroupMember.Read.All`` alone)."""
    upn = str(item.get("userPrincipalName") or "")
    return str(item.get("userType") or "").lower() == "guest" or "#ext#" in upn.lower()


@dataclass(frozen=True, slots=True)
class GroupMember:
    """A person in a pool's group: their mailbox address and mailbox zone (IANA)."""

    address: str
    zone: str


def merged(pool: Pool, members: Sequence[GroupMember]) -> Pool:
    """``pool`` with the group's ``members`` added (a listed member's own row wins)."""
    listed = {m.address for m in pool.members}
    extra = tuple(Member(g.address, g.zone, 0) for g in dict.fromkeys(members) if g.address not in listed)
    extra = tuple({m.address: m for m in extra}.values())
    return replace(pool, members=tuple(sorted((*pool.members, *extra), key=lambda m: m.address)))


class PoolGroups:
    """Reads pools' groups from Graph, cached per (tenant, group) for ``ttl``. Safe for concurrent use."""

    def __init__(
        self,
        graph: GraphClient,
        tenancy: Tenancy,
        *,
        ttl: timedelta = DEFAULT_GROUP_TTL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._graph = graph
        self._tenancy = tenancy
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[datetime, tuple[GroupMember, ...]]] = {}

    def forget(self, tenant_id: str | None = None) -> None:
        """Drop cached memberships (all, or one tenant's)."""
        for key in [k for k in self._cache if tenant_id is None or k[0] == tenant_id]:
            del self._cache[key]

    async def live(
        self, ctx: TenantContext, records: Iterable[storage.PoolRecord]
    ) -> dict[str, storage.PoolRecord | None]:
        """Each of ``records`` by pool name, with its group's members added (records without a
        group as they are); ``None`` for a pool whose group cannot be read."""
        out: dict[str, storage.PoolRecord | None] = {}
        for record in records:
            if record.group_id is None:
                out[record.pool.name] = record
                continue
            members = await self.members(ctx, record.group_id)
            out[record.pool.name] = (
                None if members is None else replace(record, pool=merged(record.pool, members))
            )
        return out

    async def members(self, ctx: TenantContext, group_id: str) -> tuple[GroupMember, ...] | None:
        """The group's members now (cached for ``ttl``), or ``None`` if it cannot be read."""
        now = self._clock()
        key = (ctx.tenant_id, group_id.lower())
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            token = await self._tenancy.app_token(ctx)
            addresses = await self._addresses(group_id, token)
        except (CalendarError, ValueError):
            return None
        try:  # a room's resource account in the group is no interviewer: never drawn, never read
            rooms = await self._tenancy.rooms_among(ctx, addresses) if addresses else set()
            addresses = [a for a in addresses if a not in rooms]
            # no mailbox setting is read of someone the allow-list refuses (or who left)
            refused = await self._tenancy.not_allowed(ctx, addresses)
        except CalendarError:
            return None
        gate = asyncio.Semaphore(_ZONE_READS)

        async def one(address: str) -> GroupMember:
            if address in refused:
                return GroupMember(address, "UTC")  # the search's gate skips them anyway
            async with gate:
                return GroupMember(address, await self._zone(address, token))

        found = tuple(await asyncio.gather(*(one(a) for a in addresses)))
        self._cache[key] = (now + self._ttl, found)
        return found

    async def _addresses(self, group_id: str, token: str) -> list[str]:
        """The group's (transitive) members' mailbox addresses (``mail``, else the UPN).

        Raises:
            CalendarError: Graph failed or refused. ValueError: not a GUID.
        """
        path: str | None = (
            f"/groups/{quote(parse_group_id(group_id))}/transitiveMembers"
            "?$select=id,mail,userPrincipalName,userType&$top=999"
        )
        found: list[str] = []
        stats = CallStats()
        while path:
            status, doc = await self._graph.request("GET", path, token, stats=stats)
            if status != 200:
                raise CalendarError("the group could not be read")
            for item in doc.get("value", []):
                if not isinstance(item, dict) or _guest(item):
                    continue  # a B2B guest is another company's person: never an interviewer
                raw = item.get("mail") or item.get("userPrincipalName")
                try:
                    found.append(normalize_address(str(raw or "")))
                except ValueError:
                    continue  # a member without a mailbox address (a device, a service principal)
            next_link = doc.get("@odata.nextLink")
            path = str(next_link) if next_link else None
        return list(dict.fromkeys(found))

    async def _zone(self, address: str, token: str) -> str:
        """The member's mailbox zone (app-only ``mailboxSettings/timeZone``), else UTC."""
        try:
            status, doc = await self._graph.request(
                "GET", f"/users/{quote(address, safe='@')}/mailboxSettings/timeZone", token
            )
            if status == 200:
                return resolve_zone(str(doc.get("value") or "")).key
        except (CalendarError, UnknownTimeZoneError, ValueError):
            pass
        return "UTC"
