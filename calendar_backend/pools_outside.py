"""Outlook "Interview"-category events as pool load, for tenants that opt in (issue 18).

A tenant admin turns it on with ``python -m calendar_backend tenant-settings --tenant T
--count-interview-category on``. Then pool load (member selection in the loop search, the cap
check at booking, my load and the pool card) also counts each member's Outlook events carrying
the category "Interview" (any case) that OpenSlot did not book itself.

The read (:meth:`OutsideLoad.starts`), per person, after the mailbox gate
(:meth:`calendar_backend.tenancy.Tenancy.check_mailboxes`: a refused mailbox is not read and
counts nothing; the gate audits the refusal), with the tenant's app-only token::

    GET /users/{id}/calendarView?startDateTime&endDateTime
        &$select=start,end,categories,isCancelled,showAs,transactionId&$top=250

filtered here (not with ``$filter``: Graph's calendarView does not reliably support lambda
filters on ``categories``). Never subject, body, location or attendees: only those six fields
are asked for, and nothing read is stored (only start instants are kept, in memory). One audit row
per read (``pool.outside_load``, targets: the mailboxes read).

What counts: not cancelled, ``showAs`` not ``free``, a category equal to "Interview" ignoring case.
Not counted twice: an event whose ``transactionId`` is one of OpenSlot's interviews (the
organizer's copy), or whose ``[start, end)`` equals a pending or confirmed OpenSlot interview the
person attends (an attendee's copy carries no transactionId; OpenSlot stores no iCalUId), is
skipped: that interview already counts. A calendar that cannot be read (Graph error) counts
nothing outside (the stored interviews still count): load is advice, not a lock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.errors import CalendarError
from calendar_backend.graph import CallStats, GraphClient, address_segment
from calendar_backend.pools import MemberLoad, load_of
from calendar_backend.storage.schema import interview_mailboxes, interviews
from calendar_backend.storage.tenant_settings import get_tenant_settings
from calendar_backend.tenancy import Tenancy, TenantContext
from calendar_backend.timezones import parse_graph_datetime

CATEGORY: Final = "interview"
FIELDS: Final = ("start", "end", "categories", "isCancelled", "showAs", "transactionId")
OPERATION: Final = "pool.outside_load"
_PREFER_UTC: Final = {"Prefer": 'outlook.timezone="UTC"'}
_PAGE: Final = 250
_MAX_PAGES: Final = 20
_COUNTING: Final = ("pending", "confirmed")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def counts(event: Mapping[str, Any]) -> bool:
    """Whether a calendarView event is an outside interview (module docstring), ignoring dedup."""
    categories = event.get("categories")
    if not isinstance(categories, list) or event.get("isCancelled") or event.get("showAs") == "free":
        return False
    return any(isinstance(c, str) and c.strip().lower() == CATEGORY for c in categories)


def with_outside(
    loads: Mapping[str, MemberLoad], outside: Mapping[str, Sequence[datetime]]
) -> dict[str, MemberLoad]:
    """``loads`` with each person's outside start instants added (people without a load are skipped)."""
    out = dict(loads)
    for address, starts in outside.items():
        load = loads.get(address)
        if load is not None and starts:
            out[address] = load_of(address, load.zone, load.week_start, [*load.starts, *starts])
    return out


class OutsideLoad:
    """Reads members' outside "Interview" events for opted-in tenants. Safe to use concurrently."""

    def __init__(self, store: storage.Store, tenancy: Tenancy, graph: GraphClient) -> None:
        self._store = store
        self._tenancy = tenancy
        self._graph = graph

    async def enabled(self, tenant_id: str) -> bool:
        """Whether the tenant opted in (``tenant-settings --count-interview-category on``)."""
        async with self._store.transaction() as tx:
            return (await get_tenant_settings(tx, tenant_id)).count_interview_category

    async def starts(
        self,
        principal: Principal | None,
        ctx: TenantContext,
        people: Iterable[str],
        start: datetime,
        end: datetime,
        *,
        request_id: str | None = None,
    ) -> dict[str, list[datetime]]:
        """Each person's outside interview start instants in ``[start, end)``; ``{}`` when the
        tenant did not opt in. People the gate refuses are left out (read nothing)."""
        wanted = list(dict.fromkeys(p.strip().lower() for p in people))
        if not wanted or not await self.enabled(ctx.tenant_id):
            return {}
        rid = request_id or str(uuid.uuid4())
        allowed = await self._gate(principal, ctx, wanted, rid)
        if not allowed:
            return {}
        token = await self._tenancy.app_token(ctx)
        ours, spans = await self._openslot(ctx.tenant_id, allowed, start, end)
        stats = CallStats()
        reads = await asyncio.gather(*(self._read(token, a, start, end, stats) for a in allowed))
        out: dict[str, list[datetime]] = {}
        for address, events in zip(allowed, reads, strict=True):
            found = []
            for e in events:
                if not counts(e) or (e.get("transactionId") and e.get("transactionId") in ours):
                    continue
                try:
                    s = parse_graph_datetime(
                        str(e["start"]["dateTime"]), str(e["start"].get("timeZone") or "UTC")
                    )
                    f = parse_graph_datetime(
                        str(e["end"]["dateTime"]), str(e["end"].get("timeZone") or "UTC")
                    )
                except (KeyError, TypeError, ValueError):
                    continue
                if (address, s, f) not in spans and start <= s < end:
                    found.append(s)
            out[address] = found
        await self._tenancy.audit(principal, ctx.tenant_id, OPERATION, allowed, "ok", rid, stats)
        return out

    async def add_to(
        self,
        principal: Principal | None,
        ctx: TenantContext,
        loads: Mapping[str, MemberLoad],
        start: datetime,
        end: datetime,
        *,
        request_id: str | None = None,
    ) -> Mapping[str, MemberLoad]:
        """``loads`` with each person's outside events in ``[start, end)`` (:func:`with_outside`)."""
        found = await self.starts(principal, ctx, list(loads), start, end, request_id=request_id)
        return with_outside(loads, found) if found else loads

    async def _gate(
        self, principal: Principal | None, ctx: TenantContext, people: list[str], request_id: str
    ) -> list[str]:
        """The people the mailbox gate lets through (refused ones dropped, then asked again)."""
        left = list(people)
        while left:
            refusal = await self._tenancy.check_mailboxes(principal, ctx, OPERATION, request_id, left)
            if refusal is None:
                return left
            refused = set(refusal.mailboxes)
            remaining = [a for a in left if a not in refused]
            if len(remaining) == len(left):  # a refusal naming nobody (e.g. the caller archived)
                return []
            left = remaining
        return []

    async def _openslot(
        self, tenant_id: str, people: Sequence[str], start: datetime, end: datetime
    ) -> tuple[set[str], set[tuple[str, datetime, datetime]]]:
        """OpenSlot's own transaction ids around the window, and its counted interviews' spans per
        attendee (the events not to count twice)."""
        query = (
            sa.select(
                interview_mailboxes.c.mailbox,
                interviews.c.transaction_id,
                interviews.c.start_utc,
                interviews.c.end_utc,
                interviews.c.status,
            )
            .select_from(
                interview_mailboxes.join(interviews, interviews.c.id == interview_mailboxes.c.interview_id)
            )
            .where(
                interviews.c.tenant_id == tenant_id,
                interview_mailboxes.c.mailbox.in_(people),
                interviews.c.end_utc > start,
                interviews.c.start_utc < end,
            )
        )
        async with self._store.transaction() as tx:
            rows = (await tx.execute(query)).all()
        ours = {str(r.transaction_id) for r in rows}
        spans = {(r.mailbox, r.start_utc, r.end_utc) for r in rows if r.status in _COUNTING}
        return ours, spans

    async def _read(
        self, token: str, address: str, start: datetime, end: datetime, stats: CallStats
    ) -> list[dict[str, Any]]:
        """The person's calendarView (only ``FIELDS``), every page; ``[]`` when it cannot be read."""
        events: list[dict[str, Any]] = []
        try:
            path: str = (
                f"/users/{address_segment(address)}/calendarView?startDateTime={_iso(start)}"
                f"&endDateTime={_iso(end)}&$select={','.join(FIELDS)}&$top={_PAGE}"
            )
            for _ in range(_MAX_PAGES):
                status, body = await self._graph.request(
                    "GET", path, token, headers=dict(_PREFER_UTC), mailbox=address, stats=stats
                )
                if status != 200:
                    return []
                events += [e for e in body.get("value", []) if isinstance(e, dict)]
                link = body.get("@odata.nextLink")
                if not link:
                    return events
                if not isinstance(link, str) or not link.startswith(self._graph.base_url + "/"):
                    return []  # never send the token to another host
                path = link
        except (CalendarError, ValueError):  # ValueError: not an address Graph's path can carry
            return []
        return []  # too many pages: count nothing rather than half a calendar
