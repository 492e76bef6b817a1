"""Interview loops (issue 17), the Calendar Service side: saved templates and the loop search.

`LoopTemplates` keeps a tenant's templates (shared by its hiring managers; who saved one last is
recorded; every change writes one audit row). `LoopSearch.search` answers ``POST /v1/loops/search``:

1. lock 2, then the template (inline, or saved by name), checked by `loop_templates.parse_template`
   (every problem answered as ``invalid_template``);
2. rooms resolved from each session's room need (a list of rooms, or capacity/building against the
   tenant's Graph room list, `Directory.room_infos`);
3. every person AND room through the mailbox gate (a person the allow-list refuses, or whose
   calendar the user cannot read, is explained; any other refusal is raised);
4. ONE availability read for every mailbox (`SlotSearch.read_availability`, the code single-slot
   search uses: one Graph round trip per 20 mailboxes, chunks in parallel; one audit row), the
   manager's mailbox zone read alongside it (the loop's days and session windows are local to it);
5. free time per mailbox (`availability.free_time`), minimum notice as for slots, then
   `loops.find_loops`. A calendar that cannot be read is never free: it is named in
   ``explanations`` (and, for a person, no loop is offered).

A session drawn from a pool (``"pool": {"name", "count"}``, issue 18) reads the pool and its
members' loads first (an unknown pool is an ``invalid_template`` naming it); the members go through
the gate and the one availability read with everyone else; the engine sees "any N of these free"
(`loop_pools.seat_free`), and the best candidates (never every branch) get their members picked by
`loop_pools.assign` until ``limit`` options name everyone; a pool that cannot fill a session is
explained (``pool_short``). An unreadable pool member is simply never free.

A pool may draw from an Entra group: its members are read live (`pool_groups.PoolGroups`, app-only,
cached briefly, never stored); a group that cannot be read makes that pool's sessions unfillable,
explained (``pool_short``), never an empty pool. Pool members (and trainees) the gate refuses (not
allowed, left) are *skipped* for this search (`LoopSearch._gate`: each refusal audited once by the
gate, then the rest asked again) and the search goes on with the others; only when too few usable
members remain is the session explained (``pool_short``, naming the pool and how many are usable,
never who was refused). A refused fixed interviewer (or room) still refuses the search as before.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.availability import BusyRules, SlotQuery, free_time
from calendar_backend.contract import (
    LoopExplanationOut,
    LoopOptionOut,
    LoopSearchOut,
    LoopSessionOut,
    LoopSuggestionOut,
    LoopTemplateOut,
    SearchLoopsRequest,
)
from calendar_backend.directory import Directory
from calendar_backend.errors import InvalidTemplateError, NotFoundError
from calendar_backend.gate import Refusal
from calendar_backend.loop_pools import (
    LOAD_MARGIN,
    PoolData,
    SeatPick,
    cap_blocked,
    load_pools,
    pool_records,
    pooled,
    seat_mailbox,
    shortfall_text,
)
from calendar_backend.loop_seats import gate_skipping, pooled_loops
from calendar_backend.loop_templates import (
    LoopTemplate,
    LoopTemplateError,
    RoomInfo,
    parse_template,
    resolve_rooms,
    to_json,
    to_loop_spec,
)
from calendar_backend.loops import Explanation, LoopSchedule, find_loops
from calendar_backend.pool_groups import PoolGroups
from calendar_backend.pools_outside import OutsideLoad
from calendar_backend.search import SlotSearch
from calendar_backend.settings import BackendSettings
from calendar_backend.slots import Interval
from calendar_backend.tenancy import Tenancy, TenantContext
from calendar_backend.timezones import zone_or_utc

STEP = timedelta(minutes=15)  # the start grid, as single-slot search's default
OPERATION = "loops.search"


def checked_template(raw: Mapping[str, Any]) -> LoopTemplate:
    """``raw`` as a template. Raises: InvalidTemplateError (every problem, for the user)."""
    try:
        return parse_template(dict(raw))
    except LoopTemplateError as exc:
        raise InvalidTemplateError(tuple(p.message for p in exc.problems)) from exc


class LoopTemplates:
    """A tenant's saved loop templates. Safe to use concurrently."""

    def __init__(
        self,
        store: storage.Store,
        tenancy: Tenancy,
        clock: Callable[[], datetime],
        groups: PoolGroups | None = None,
    ) -> None:
        self._store = store
        self._tenancy = tenancy
        self._clock = clock
        self._groups = groups  # pools' Entra groups, read live (None: such a pool is unreadable)

    async def list(self, principal: Principal) -> list[LoopTemplateOut]:
        """The tenant's templates by name (lock 2 first)."""
        ctx = await self._tenancy.context(principal)
        async with self._store.transaction() as tx:
            rows = await storage.list_loop_templates(tx, ctx.tenant_id)
        return [LoopTemplateOut(r.name, r.template, r.updated_at) for r in rows]

    async def get(self, tenant_id: str, name: str) -> LoopTemplate:
        """The tenant's saved template ``name`` (the caller holds lock 2).

        Raises:
            NotFoundError: none of that name. InvalidTemplateError: it no longer parses.
        """
        async with self._store.transaction() as tx:
            row = await storage.get_loop_template(tx, tenant_id, name)
        if row is None:
            raise NotFoundError("There is no loop template of that name.")
        return checked_template(row.template)

    async def save(
        self, principal: Principal, name: str, raw: Mapping[str, Any], request_id: str
    ) -> LoopTemplateOut:
        """Create or replace ``name`` (the template takes the name of its path); audited.

        Raises:
            InvalidTemplateError: the template cannot be used (nothing is stored).
        """
        ctx = await self._tenancy.context(principal)
        template = checked_template({**raw, "name": name})
        doc = to_json(template)
        async with self._store.transaction() as tx:
            row = await storage.put_loop_template(tx, ctx.tenant_id, name, doc, principal.oid, self._clock())
            await self._tenancy.audit(
                principal, ctx.tenant_id, "loop_templates.save", (), "ok", request_id, tx=tx
            )
        return LoopTemplateOut(row.name, row.template, row.updated_at)

    async def delete(self, principal: Principal, name: str, request_id: str) -> None:
        """Delete ``name``; audited. Raises: NotFoundError (nothing was deleted)."""
        ctx = await self._tenancy.context(principal)
        async with self._store.transaction() as tx:
            deleted = await storage.delete_loop_template(tx, ctx.tenant_id, name)
            if deleted:
                await self._tenancy.audit(
                    principal, ctx.tenant_id, "loop_templates.delete", (), "ok", request_id, tx=tx
                )
        if not deleted:
            raise NotFoundError("There is no loop template of that name.")

    async def live_pools(
        self, ctx: TenantContext, template: LoopTemplate
    ) -> dict[str, storage.PoolRecord | None]:
        """The template's pools with an Entra group, their members read now (`pool_groups`);
        ``None`` for a pool whose group cannot be read."""
        async with self._store.transaction() as tx:
            grouped = [r for r in await pool_records(tx, ctx.tenant_id, template) if r.group_id]
        if not grouped or self._groups is None:
            return {}
        return await self._groups.live(ctx, grouped)

    async def pool_data(self, ctx: TenantContext, template: LoopTemplate, window: Interval) -> PoolData:
        """The template's pools (groups read live) and their members' loads (`loop_pools.load_pools`)."""
        live = await self.live_pools(ctx, template)
        async with self._store.transaction() as tx:
            return await load_pools(tx, ctx.tenant_id, template, window, live)


class LoopSearch:
    """The loop search use case. Safe to use concurrently."""

    def __init__(
        self,
        settings: BackendSettings,
        tenancy: Tenancy,
        directory: Directory,
        search: SlotSearch,
        templates: LoopTemplates,
        rules: BusyRules,
        clock: Callable[[], datetime],
        outside: OutsideLoad | None = None,
    ) -> None:
        self.outside = outside  # outside "Interview" events as load (opted-in tenants, issue 18)
        self._settings = settings
        self._tenancy = tenancy
        self._directory = directory
        self._search = search
        self._templates = templates
        self._rules = rules
        self._clock = clock

    async def _people(
        self, ctx: TenantContext, template: LoopTemplate, req: SearchLoopsRequest
    ) -> tuple[set[str], list[str], PoolData | None]:
        """The fixed interviewers, everyone to read (pool members and trainees too), the pools."""
        people = list(dict.fromkeys(a.lower() for s in template.sessions for a in s.interviewers))
        if not pooled(template):
            return set(people), people, None
        pools = await self._templates.pool_data(ctx, template, Interval(req.start, req.end))
        return set(people), list(dict.fromkeys([*people, *pools.members()])), pools

    async def _with_outside(
        self, principal: Principal, ctx: TenantContext, pools: PoolData, req: SearchLoopsRequest, rid: str
    ) -> PoolData:
        """Members' outside "Interview" events in their loads (pools_outside.py; opted-in tenants)."""
        if self.outside is None:
            return pools
        lo, hi = req.start - LOAD_MARGIN, req.end + LOAD_MARGIN
        loads = await self.outside.add_to(principal, ctx, pools.loads, lo, hi, request_id=rid)
        return replace(pools, loads=loads)

    async def live_pools(
        self, ctx: TenantContext, template: LoopTemplate
    ) -> dict[str, storage.PoolRecord | None]:
        """The template's pools with an Entra group, members read now (booking's re-check)."""
        return await self._templates.live_pools(ctx, template)

    async def _gate(
        self,
        principal: Principal,
        ctx: TenantContext,
        request_id: str,
        people: list[str],
        rooms: list[str],
        fixed: set[str],
        pools: PoolData | None,
    ) -> tuple[Refusal | None, list[str], PoolData | None]:
        """The mailbox gate for everyone; pool members (and trainees) it refuses as not allowed,
        left or unreadable are skipped for this search (each refusal audited once by the gate) and
        the rest asked again. Returns the refusal left (a fixed person or a room), who is read, the
        pools without the skipped (`loop_seats.gate_skipping`)."""
        return await gate_skipping(
            self._tenancy, principal, ctx, OPERATION, request_id, people, rooms, fixed, pools
        )

    async def search(
        self, principal: Principal, assertion: str, req: SearchLoopsRequest, request_id: str
    ) -> LoopSearchOut:
        """The best ``req.limit`` loops of the template in ``[req.start, req.end)`` (module docstring).

        Raises:
            InvalidTemplateError: the template (or its room need) cannot be used.
            NotFoundError: no saved template has ``req.template_name``.
            PermissionDeniedError: the mailbox gate refused (other than not allowed / unreadable).
            CalendarError: Graph failed (audited).
        """
        ctx = await self._tenancy.context(principal)
        if req.template is not None:
            template = checked_template(req.template)
        else:
            template = await self._templates.get(ctx.tenant_id, str(req.template_name))
        token: str | None = None
        directory: list[RoomInfo] = []
        if any(s.room is not None and not s.room.any_of for s in template.sessions):
            token = await self._tenancy.user_token(principal, ctx, assertion)
            directory = await self._directory.room_infos(token)
        try:
            room_lists = resolve_rooms(template, directory)
        except LoopTemplateError as exc:
            raise InvalidTemplateError(tuple(p.message for p in exc.problems)) from exc
        fixed, people, pools = await self._people(ctx, template, req)
        rooms = list(dict.fromkeys(r for rl in room_lists for r in rl))  # all of them: rule 3 for each
        if not people and not rooms and pools is None:
            raise InvalidTemplateError(("Add at least one interviewer or room to a session.",))
        # The on-behalf-of token is fetched while the gate decides (it reads no calendar); it is
        # used only once the gate has let every mailbox through.
        pending = None if token else asyncio.create_task(self._tenancy.user_token(principal, ctx, assertion))
        try:
            refusal, people, pools = await self._gate(principal, ctx, request_id, people, rooms, fixed, pools)
        except BaseException:
            _drop(pending)
            raise
        if refusal is not None:
            _drop(pending)
            if refusal.rule.value not in {"not_allowed", "unreadable"}:
                raise refusal.error()
            return LoopSearchOut((), (), (_refused(refusal.rule.value, refusal.mailboxes),))
        if pools is not None and pools.short(template):  # an unreadable group, or too few usable left
            _drop(pending)
            return LoopSearchOut((), (), _short(pools, template))
        if pending is not None:
            token = await pending
        assert token is not None  # noqa: S101  (fetched above, or for the room directory)
        fetch = Interval(req.start - timedelta(days=1), req.end + timedelta(days=1))
        read_rooms = [r for r in rooms if r not in people]
        read, manager_zone = await asyncio.gather(
            self._search.read_availability(
                principal,
                token,
                people,
                read_rooms,
                fetch,
                request_id=request_id,
                operation=OPERATION,
                requester=None,
            ),
            self._directory.mailbox_zone(token),
        )
        unreadable = _refused("unreadable", read.unreadable) if read.unreadable else None
        if unreadable is not None and any(a in fixed for a in read.unreadable):
            return LoopSearchOut((), read.people, (unreadable,))  # fail closed: never free
        not_before = self._clock() + timedelta(minutes=self._settings.default_notice_min)
        query = SlotQuery(fetch, timedelta(minutes=5), STEP, not_before)
        free = {a: free_time(p, query, self._rules) for a, p in read.availability.items()}
        zone = manager_zone or next(
            (p.time_zone for p in read.people if p.time_zone and not p.is_room), "UTC"
        )
        spec = to_loop_spec(
            template,
            zone=zone_or_utc(zone),
            window=Interval(req.start, req.end),
            not_before=not_before,
            candidate_zone=zone_or_utc(req.candidate_time_zone) if req.candidate_time_zone else None,
            rooms=directory,
            step=STEP,
        )
        if pools is not None:
            pools = await self._with_outside(principal, ctx, pools, req, request_id)
            options, explanations = _pooled_search(
                spec, free, template, pools, req.limit, fetch, zone_or_utc(zone), req.cap_overrides
            )
            return LoopSearchOut(options, read.people, ((unreadable,) if unreadable else ()) + explanations)
        found = find_loops(spec, free, req.limit, horizon=fetch)
        options = tuple(_option(s, template) for s in found.schedules)
        explanations = tuple(_explanation(e) for e in found.explanations)
        return LoopSearchOut(options, read.people, ((unreadable,) if unreadable else ()) + explanations)


def _short(pools: PoolData, template: LoopTemplate) -> tuple[LoopExplanationOut, ...]:
    """A ``pool_short`` explanation per pooled session its pool cannot fill (`PoolData.short`)."""
    return tuple(LoopExplanationOut("pool_short", i, (), text) for i, text in pools.short(template))


def _drop(task: asyncio.Task[str] | None) -> None:
    """Cancel an unneeded token fetch (and never leave its exception unretrieved)."""
    if task is not None:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


def _refused(reason: str, mailboxes: tuple[str, ...]) -> LoopExplanationOut:
    text = {
        "not_allowed": "OpenSlot is not allowed to read these calendars: ",
        "unreadable": "These calendars could not be read (never treated as free): ",
    }[reason]
    return LoopExplanationOut(reason, None, mailboxes, text + ", ".join(mailboxes))


def option_id(schedule: LoopSchedule) -> str:
    """A stable id of a loop option: a hash of its start times, by session index."""
    starts = "|".join(p.start.isoformat() for p in sorted(schedule.placements, key=lambda p: p.session))
    return hashlib.sha256(starts.encode()).hexdigest()[:20]


def _option(schedule: LoopSchedule, template: LoopTemplate) -> LoopOptionOut:
    minute = timedelta(minutes=1)
    return LoopOptionOut(
        option_id(schedule),
        schedule.days,
        schedule.idle // minute,
        schedule.outside_candidate_day // minute,
        tuple(
            LoopSessionOut(
                p.session,
                p.title,
                p.start,
                p.end,
                tuple(a.lower() for a in template.sessions[p.session].interviewers),
                p.room,
            )
            for p in schedule.placements
        ),
    )


def _explanation(e: Explanation) -> LoopExplanationOut:
    return LoopExplanationOut(
        e.reason.value,
        e.session,
        e.mailboxes,
        e.text,
        tuple(LoopSuggestionOut(s.kind.value, s.value, s.text) for s in e.suggestions),
    )


def _pooled_search(
    spec: Any,
    free: dict[str, tuple[Interval, ...]],
    template: LoopTemplate,
    pools: PoolData,
    limit: int,
    fetch: Interval,
    zone: ZoneInfo,
    overrides: tuple[tuple[int, str], ...] = (),
) -> tuple[tuple[LoopOptionOut, ...], tuple[LoopExplanationOut, ...]]:
    """The loop engine with each pooled session's seats as "any N of these free", then the picks
    on the best candidates only (`loop_pools.assign`) until ``limit`` options name everyone.
    ``overrides``: ``(session, member)`` searched as if under cap there; with no option, the
    sessions only caps keep empty are explained (``pool_cap``, a ``cap_override`` per member)."""
    found = pooled_loops(spec, free, template, pools, limit, fetch, overrides)
    options = [_picked(_option(schedule, template), picks) for schedule, picks in found.options]
    short = list(found.short)
    explanations = [_explanation(_unseated(e, template)) for e in found.explanations]
    if len(options) < limit:
        explanations += [
            LoopExplanationOut("pool_short", session, (), text)
            for _pool, session, text in shortfall_text(short, zone)
        ]
    if not options:  # issue 18: caps alone keep a session empty → offer an override per member
        explanations += [
            LoopExplanationOut(
                "pool_cap",
                b.session,
                b.members,
                b.text(template),
                tuple(LoopSuggestionOut("cap_override", a, "Over cap: use anyway") for a in b.members),
            )
            for b in cap_blocked(spec, free, template, pools, fetch, overrides)
        ]
    return tuple(options), tuple(explanations)


def _unseated(e: Explanation, template: LoopTemplate) -> Explanation:
    """An engine explanation with the seat mailboxes told as their pools."""
    text, mailboxes = e.text, []
    for m in e.mailboxes:
        index = next((i for i in pooled(template) if seat_mailbox(i) == m), None)
        if index is None:
            mailboxes.append(m)
            continue
        name, count = pooled(template)[index]
        text = text.replace(m, f'{count} of the pool "{name}"')
    return Explanation(e.reason, e.session, tuple(mailboxes), text, e.suggestions)


def _picked(option: LoopOptionOut, picks: Mapping[int, SeatPick]) -> LoopOptionOut:
    """``option`` with each pooled session's picked members and trainees named."""
    sessions = []
    for s in option.sessions:
        pick = picks.get(s.index)
        if pick is not None:
            s = replace(
                s,
                interviewers=(*s.interviewers, *pick.members, *pick.trainees),
                pool=pick.pool,
                pool_members=pick.members,
                trainees=pick.trainees,
            )
        sessions.append(s)
    return replace(option, sessions=tuple(sessions))
