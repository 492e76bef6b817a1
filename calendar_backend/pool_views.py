"""Pools seen from the bot (issue 18: visibility and owner management).

- :meth:`PoolViews.my_load`: the caller's own load this week and next, per pool they belong to,
  booked against their caps, counted in *their* zone and first day of week (the same counting the
  caps use: :func:`calendar_backend.pools.load_of` over the stored interviews), and their progress
  where they are a trainee;
- :meth:`PoolViews.owned`: the pools the caller owns;
- a pool with an Entra group counts its group's current members (`pool_groups`, read live) in
  ``my_load`` and on the card;
- :meth:`PoolViews.card`: a pool's card for its owner (each member's load this week and next
  against their weekly cap, their daily cap, trainees' progress). Anybody but the owner gets
  ``NotFoundError`` (404, as for a pool that does not exist: it does not say that it exists);
- :meth:`PoolViews.change_member`: the owner adds or removes a member or sets a member's caps;
  audited (``pool.add_member`` / ``pool.remove_member`` / ``pool.set_caps``, targets: the pool id
  and the member) in the change's transaction, like the admin CLI. A member being added goes
  through the mailbox gate first (allow-list, leavers); their zone is read from their mailbox
  settings (best effort: UTC) unless the owner gives one.

Every use case starts with lock 2 and identifies the caller by their own delegated token (``/me``).
There is no tenant-admin role on the bot's side: only a pool's owner sees and changes it (admins
use ``python -m calendar_backend pool ...``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.contract import (
    MemberLoadOut,
    MyLoadOut,
    PoolCardOut,
    PoolLoadOut,
    PoolMemberRequest,
    PoolSummaryOut,
    TraineeProgressOut,
    WeekLoadOut,
)
from calendar_backend.directory import Directory
from calendar_backend.errors import CalendarError, ConflictError, NotFoundError, ValidationError
from calendar_backend.graph import GraphClient
from calendar_backend.pool_groups import PoolGroups
from calendar_backend.pools import Member, Pool, load_of, local_week, week_bounds
from calendar_backend.pools_outside import OutsideLoad
from calendar_backend.pools_training import Trainee
from calendar_backend.tenancy import Tenancy, TenantContext
from calendar_backend.timezones import UnknownTimeZoneError, resolve_zone

_NO_POOL = "No pool of yours has that id."
OUTSIDE_MARGIN = timedelta(days=8)  # covers any member's local week around the two weeks shown
# ``(tenant_id, address) -> displayName or None``, read app-only and cached per process
# (`watch_feed.DirectoryNames`)
NameLookup = Callable[[str, str], Awaitable[str | None]]


class PoolViews:
    """The bot's view of pools and the owner's changes. Safe to use concurrently."""

    def __init__(
        self,
        store: storage.Store,
        tenancy: Tenancy,
        directory: Directory,
        graph: GraphClient,
        clock: Callable[[], datetime],
        groups: PoolGroups | None = None,
        names: NameLookup | None = None,
    ) -> None:
        self._groups = groups  # pools' Entra groups: their members read live
        self._names = names  # people's display names (None: their addresses' local parts)
        self._store = store
        self._tenancy = tenancy
        self._directory = directory
        self._graph = graph
        self._clock = clock
        self._outside = OutsideLoad(store, tenancy, graph)  # opted-in tenants (pools_outside.py)

    async def _caller(self, principal: Principal, assertion: str) -> tuple[TenantContext, str]:
        """Lock 2, then the caller's own address (their delegated token, ``/me``)."""
        ctx = await self._tenancy.context(principal)
        token = await self._tenancy.user_token(principal, ctx, assertion)
        address, _name = await self._directory.organizer(token)
        return ctx, address

    async def _live(self, ctx: TenantContext, records: list[storage.PoolRecord]) -> list[storage.PoolRecord]:
        """``records`` with their Entra groups' members as read now (a group that cannot be read:
        its listed members only)."""
        grouped = [r for r in records if r.group_id is not None]
        if not grouped or self._groups is None:
            return records
        live = await self._groups.live(ctx, grouped)
        return [live.get(r.pool.name) or r for r in records]

    async def my_load(self, principal: Principal, assertion: str, request_id: str) -> MyLoadOut:
        """The caller's load this week and next per pool they belong to (listed, or in its group),
        and their training."""
        ctx, address = await self._caller(principal, assertion)
        now = self._clock()
        async with self._store.transaction() as tx:
            stored = await storage.list_pools(tx, principal.tenant_id)
        records = await self._live(ctx, stored)
        mine = [(r, m) for r in records if (m := r.pool.member(address)) is not None]
        outside = await self._outside_starts(principal, ctx, [address] if mine else [], now, request_id)
        in_training = any(t.address == address for r in records for t in r.trainees)
        own_name = (await self.display_names(ctx, [address]))[address.lower()] if in_training else ""
        async with self._store.transaction() as tx:
            loads: list[PoolLoadOut] = []
            for record, member in mine:
                this_week, next_week = await _weeks(
                    tx, principal.tenant_id, member, now, outside.get(member.address, ())
                )
                loads.append(
                    PoolLoadOut(
                        record.id,
                        record.pool.name,
                        member.zone,
                        record.pool.weekly_cap(member),
                        record.pool.daily_cap(member),
                        this_week,
                        next_week,
                    )
                )
            training = tuple(
                _progress(t, r.pool.name, own_name)
                for r in records
                for t in r.trainees
                if t.address == address
            )
            await self._tenancy.audit(
                principal,
                principal.tenant_id,
                "pool.me_load",
                [r.id for r, _m in mine],
                "ok",
                request_id,
                tx=tx,
            )
        return MyLoadOut(address, tuple(loads), training)

    async def owned(self, principal: Principal, assertion: str, request_id: str) -> list[PoolSummaryOut]:
        """The pools the caller owns, by name."""
        _ctx, address = await self._caller(principal, assertion)
        async with self._store.transaction() as tx:
            records = [r for r in await storage.list_pools(tx, principal.tenant_id) if r.owner == address]
            await self._tenancy.audit(
                principal, principal.tenant_id, "pool.list", [r.id for r in records], "ok", request_id, tx=tx
            )
        return [
            PoolSummaryOut(
                r.id,
                r.pool.name,
                r.pool.role,
                len(r.pool.members),
                sum(1 for t in r.trainees if t.remaining > 0),
            )
            for r in sorted(records, key=lambda r: r.pool.name.lower())
        ]

    async def card(self, principal: Principal, assertion: str, pool_id: str, request_id: str) -> PoolCardOut:
        """The pool card of ``pool_id`` for its owner; ``NotFoundError`` for anybody else."""
        ctx, address = await self._caller(principal, assertion)
        record = await self._owned_record(principal, address, pool_id, "pool.show", request_id)
        (record,) = await self._live(ctx, [record])
        now = self._clock()
        members = [m.address for m in record.pool.members]
        outside = await self._outside_starts(principal, ctx, members, now, request_id)
        names = await self.display_names(ctx, [*members, *(t.address for t in record.trainees)])
        async with self._store.transaction() as tx:
            out = await _card(tx, record, now, outside, names)
            await self._tenancy.audit(
                principal, principal.tenant_id, "pool.show", [record.id], "ok", request_id, tx=tx
            )
        return out

    async def change_member(
        self, principal: Principal, assertion: str, pool_id: str, req: PoolMemberRequest, request_id: str
    ) -> PoolCardOut:
        """Add or remove a member, or set a member's caps; the pool card after the change.

        Raises:
            NotFoundError: not a pool of the caller's (nor of this tenant).
            PermissionDeniedError: the gate refuses the member being added.
            ConflictError: nothing to change (already a member; not a member).
            ValidationError: a cap or zone out of range.
        """
        ctx, address = await self._caller(principal, assertion)
        operation = {"add": "pool.add_member", "remove": "pool.remove_member"}.get(
            req.action, "pool.set_caps"
        )
        record = await self._owned_record(principal, address, pool_id, operation, request_id)
        member: Member | None = None
        if req.action == "add":
            refusal = await self._tenancy.check_mailboxes(principal, ctx, operation, request_id, [req.member])
            if refusal is not None:
                raise refusal.error()
            zone = req.zone or await self._mailbox_zone(ctx, req.member)
            member = _valid(lambda: Member(req.member, zone, req.week_start, req.weekly_cap, req.daily_cap))
        elif req.action == "set_caps":
            _valid(lambda: Member(req.member, weekly_cap=req.weekly_cap, daily_cap=req.daily_cap))
        now = self._clock()
        people = list(dict.fromkeys([*(m.address for m in record.pool.members), req.member.strip().lower()]))
        outside = await self._outside_starts(principal, ctx, people, now, request_id)
        names = await self.display_names(ctx, [*people, *(t.address for t in record.trainees)])
        async with self._store.transaction() as tx:
            if member is not None:
                changed = await storage.add_pool_member(tx, record.id, member, now=now)
                why = "is already a member of this pool"
            elif req.action == "remove":
                changed = await storage.remove_pool_member(tx, record.id, req.member, now=now)
                why = "is not a member of this pool"
            else:
                current = await storage.get_pool_by_id(tx, record.id)
                changed = current is not None and current.pool.member(req.member) is not None
                if changed:
                    changed = await storage.set_pool_caps(
                        tx,
                        record.id,
                        address=req.member,
                        weekly_cap=req.weekly_cap,
                        daily_cap=req.daily_cap,
                        now=now,
                    )
                why = "is not a member of this pool"
            if not changed:
                raise ConflictError(f"{req.member} {why}.")
            await self._tenancy.audit(
                principal, principal.tenant_id, operation, [record.id, req.member], "ok", request_id, tx=tx
            )
            updated = await storage.get_pool_by_id(tx, record.id)
            return await _card(tx, updated or record, now, outside, names)

    async def display_names(self, ctx: TenantContext, addresses: Sequence[str]) -> dict[str, str]:
        """Each address's display name, by lower-cased address: read app-only (``GET /users/{a}
        ?$select=displayName``, cached per process) only for people the mailbox gate's static
        allow-list check lets through; the address's local part otherwise, or when unreadable."""
        people = list(dict.fromkeys(a.lower() for a in addresses))
        out = {a: a.split("@", 1)[0] for a in people}
        if self._names is None or not people:
            return out
        lookup = self._names
        try:
            refused = await self._tenancy.not_allowed(ctx, people)
        except CalendarError:  # the allow-list cannot be decided now: no name is read (fail closed)
            return out
        readable = [a for a in people if a not in refused]
        found = await asyncio.gather(*(lookup(ctx.tenant_id, a) for a in readable))
        out.update({a: name for a, name in zip(readable, found, strict=True) if name})
        return out

    async def _owned_record(
        self, principal: Principal, address: str, pool_id: str, operation: str, request_id: str
    ) -> storage.PoolRecord:
        """The pool ``pool_id`` if the caller owns it in their tenant; else an audited 404."""
        async with self._store.transaction() as tx:
            record = await storage.get_pool_by_id(tx, pool_id)
        if record is None or record.tenant_id != principal.tenant_id or record.owner != address:
            await self._tenancy.audit(
                principal, principal.tenant_id, operation, [pool_id], "denied:not_owner", request_id
            )
            raise NotFoundError(_NO_POOL)
        return record

    async def _outside_starts(
        self, principal: Principal, ctx: TenantContext, people: list[str], now: datetime, request_id: str
    ) -> dict[str, list[datetime]]:
        """People's outside "Interview" events around this week and next (``{}`` unless opted in)."""
        if not people:
            return {}
        lo, hi = now - OUTSIDE_MARGIN, now + timedelta(days=7) + OUTSIDE_MARGIN
        return await self._outside.starts(principal, ctx, people, lo, hi, request_id=request_id)

    async def _mailbox_zone(self, ctx: TenantContext, address: str) -> str:
        """The member's mailbox zone (app-only ``mailboxSettings/timeZone``), else UTC."""
        try:
            token = await self._tenancy.app_token(ctx)
            status, doc = await self._graph.request(
                "GET", f"/users/{quote(address, safe='@')}/mailboxSettings/timeZone", token
            )
            if status == 200:
                return resolve_zone(str(doc.get("value") or "")).key
        except (UnknownTimeZoneError, ValueError):
            pass
        return "UTC"


def _valid(make: Callable[[], Member]) -> Member:
    try:
        return make()
    except ValueError as exc:
        raise ValidationError("member", str(exc)) from None


async def _weeks(
    tx: AsyncConnection,
    tenant_id: str,
    person: Member | Trainee,
    now: datetime,
    outside: Sequence[datetime] = (),
) -> tuple[WeekLoadOut, WeekLoadOut]:
    """The person's counted interviews in their local week holding ``now`` and the next one
    (plus ``outside``: their outside "Interview" events, tenants that opted in)."""
    later = now + timedelta(days=7)
    lo = week_bounds(now, person.zone, person.week_start)[0]
    hi = week_bounds(later, person.zone, person.week_start)[1]
    starts = await storage.counted_starts(tx, tenant_id, [person.address], lo, hi)
    extra = [s for s in outside if lo <= s < hi]
    load = load_of(person.address, person.zone, person.week_start, starts[person.address] + extra)
    return (
        WeekLoadOut(local_week(now, person.zone, person.week_start), load.week_count(now)),
        WeekLoadOut(local_week(later, person.zone, person.week_start), load.week_count(later)),
    )


def _progress(t: Trainee, pool: str = "", name: str = "") -> TraineeProgressOut:
    return TraineeProgressOut(
        t.address,
        t.stage.value,
        t.shadow_done,
        t.shadow_required,
        t.reverse_shadow_done,
        t.reverse_shadow_required,
        pool,
        name or t.address.split("@", 1)[0],
    )


async def _card(
    tx: AsyncConnection,
    record: storage.PoolRecord,
    now: datetime,
    outside: Mapping[str, Sequence[datetime]] | None = None,
    names: Mapping[str, str] | None = None,
) -> PoolCardOut:
    """The pool card's data; ``names``: display names by lower-cased address (else local parts)."""
    pool: Pool = record.pool
    names = names or {}
    members: list[MemberLoadOut] = []
    for m in pool.members:
        this_week, next_week = await _weeks(tx, record.tenant_id, m, now, (outside or {}).get(m.address, ()))
        members.append(
            MemberLoadOut(
                m.address,
                m.zone,
                m.week_start,
                pool.weekly_cap(m),
                pool.daily_cap(m),
                this_week,
                next_week,
                m.weekly_cap is not None or m.daily_cap is not None,
                names.get(m.address.lower()) or m.address.split("@", 1)[0],
            )
        )
    return PoolCardOut(
        record.id,
        pool.name,
        pool.role,
        pool.default_weekly_cap,
        pool.default_daily_cap,
        tuple(members),
        tuple(_progress(t, name=names.get(t.address.lower(), "")) for t in record.trainees),
    )


__all__: Sequence[str] = ("PoolViews",)
