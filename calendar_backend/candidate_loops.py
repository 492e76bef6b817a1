"""The link holder's side of a loop link (issue 17): see whole-loop options, book once, move, cancel.

`candidate.CandidateLink` hands a loop offer here after checking the capability; this module asks
it (``app_token``) for lock 2, the mailbox gate (every person AND room, `loop_link.template_mailboxes`)
and an app-only Graph token on every view, booking and move, as for single links.

- **options**: whole-loop options by day in the candidate's zone, computed live with the loop
  engine (`loops.find_loops`) on calendars read now (`SlotSearch.free_of`, one availability read,
  audited), minimum notice as for slots; each option's sessions as titles and times only (never
  an interviewer's or a room's address);
- **book**: ONE POST books the entire loop through `LoopBookings.book_as` (all sessions or none;
  the option must still be offered; the link is claimed first, so it books once; the same option
  posted again answers the booking);
- **move**: the whole loop to another option (each session keeps its room), one change counted
  before any Graph write (`LoopBookings.move_sessions` moves back on failure);
- **cancel**: every session, one change counted; the link opens again while changes are left.

A template whose session draws from a pool (issue 18) is searched like the manager's pooled search
(`loop_seats`): the pools read (a group's members live, app-only), every member through the mailbox
gate (refused ones skipped, audited), ONE availability read with the app-only token, outside
"Interview" load for opted-in tenants, seats as "any N free and under cap". The page shows times
only (never who). Booking picks the members then (`loop_pools.assign`: least loaded first) and
draws them in the loop's reservation transaction; a cap reached meanwhile (or an option no longer
offered) is `SlotTakenError` ("just taken", fresh options; the member never named). A booked pooled
loop keeps its panel: its move options are where those members are free, and `Bookings.move`
rechecks their caps (a cap is refused as "just taken").
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from calendar_backend import storage
from calendar_backend.availability import BusyRules, ShowAs, SlotQuery, free_time
from calendar_backend.booking import Bookings, Writer, candidate_address
from calendar_backend.contract import CandidateRequest, LoopOut, format_time
from calendar_backend.errors import (
    CapReachedError,
    ConflictError,
    GoneError,
    InvalidTemplateError,
    NotFoundError,
    SlotTakenError,
    ValidationError,
)
from calendar_backend.loop_booking import LoopBookings
from calendar_backend.loop_contract import BookLoopRequest, SessionTime
from calendar_backend.loop_link import stored_template, template_mailboxes
from calendar_backend.loop_pools import LOAD_MARGIN, SeatPick, effective_template, load_pools, pooled
from calendar_backend.loop_search import option_id
from calendar_backend.loop_seats import gate_skipping, pooled_loops, session_times
from calendar_backend.loop_templates import LoopTemplate, to_loop_spec
from calendar_backend.loops import LoopSchedule, LoopSpec, find_loops
from calendar_backend.offers import OfferPrivate, reference_allowed
from calendar_backend.pools_outside import with_outside
from calendar_backend.search import SlotSearch
from calendar_backend.settings import BackendSettings
from calendar_backend.slots import Interval, merge
from calendar_backend.tenancy import Tenancy, TenantContext
from calendar_backend.timezones import zone_or_utc

STEP = timedelta(minutes=15)  # the start grid, as the manager's loop search
MAX_LOOP_OPTIONS = 50  # the engine's own bound
PER_DAY = 8  # options shown per day

AppToken = Callable[[storage.OfferRow, str, str], Awaitable[tuple[TenantContext, str]]]


@dataclass(frozen=True, slots=True)
class Offered:
    """The loops a link offers now (best first) and, for a template drawing from pools, who each
    option would draw (by option id), the pools read live and members' outside interview starts."""

    schedules: list[LoopSchedule]
    picks: Mapping[str, Mapping[int, SeatPick]] = field(default_factory=dict)
    live: Mapping[str, storage.PoolRecord | None] = field(default_factory=dict)
    outside: Mapping[str, Sequence[datetime]] = field(default_factory=dict)


class LoopLink:
    """The link holder's loop use cases; the caller (`candidate.CandidateLink`) has checked the
    capability, lock 2 and the mailbox gate, and hands in an app-only Graph token."""

    def __init__(
        self,
        settings: BackendSettings,
        store: storage.Store,
        clock: Callable[[], datetime],
        search: SlotSearch,
        bookings: Bookings,
        loops: LoopBookings,
        app_token: AppToken,
        tenancy: Tenancy | None = None,
    ) -> None:
        self._tenancy = tenancy  # pool members' gate (a template drawing from pools, issue 18)
        self._app_token = app_token
        self._settings = settings
        self._store = store
        self._clock = clock
        self._search = search
        self._bookings = bookings
        self._loops = loops

    async def found(
        self,
        offer: storage.OfferRow,
        manager_zone: str,
        token: str,
        request_id: str,
        own: Sequence[storage.InterviewRow] = (),
        ctx: TenantContext | None = None,
    ) -> list[LoopSchedule]:
        """The loops the link offers now, best first (``own``: a booked loop's sessions, free)."""
        return (await self.offered(offer, manager_zone, token, request_id, own, ctx)).schedules

    async def offered(
        self,
        offer: storage.OfferRow,
        manager_zone: str,
        token: str,
        request_id: str,
        own: Sequence[storage.InterviewRow] = (),
        ctx: TenantContext | None = None,
    ) -> Offered:
        """`found`, with who each option would draw when the template draws from pools (the
        manager's pooled search, `loop_seats`). A booked pooled loop (``own``) keeps its panel:
        its options are where the members it drew are free."""
        template = stored_template(offer)
        now = self._clock()
        start = max(offer.window_start, now)
        if start >= offer.window_end:
            return Offered([])
        window = Interval(start, offer.window_end)
        if pooled(template) and ctx is not None:
            if not own:
                return await self._pooled(offer, template, manager_zone, token, request_id, ctx, window)
            gated = set(template_mailboxes(template)[0])  # by the caller (`CandidateLink._app_token`)
            template = booked_template(template, own)
            extra = [a for a in template_mailboxes(template)[0] if a not in gated]
            if extra and await self._refused(offer, ctx, request_id, extra):
                return Offered([])  # a member drawn is refused now: no move offered (audited)
        people, rooms = template_mailboxes(template)
        free = await self._search.free_of(
            None, token, people, rooms, window, request_id=request_id, operation="offer.slots",
            requester=offer.organizer_upn, tenant_id=offer.tenant_id,
        )  # fmt: skip
        for row in own:
            for mailbox in {a.lower() for a in row.attendees} & set(free):
                free[mailbox] = tuple(merge([*free[mailbox], Interval(row.start, row.end)]))
        spec = self._spec(offer, template, manager_zone, window, now)
        return Offered(list(find_loops(spec, free, MAX_LOOP_OPTIONS).schedules))

    def _spec(
        self,
        offer: storage.OfferRow,
        template: LoopTemplate,
        manager_zone: str,
        window: Interval,
        now: datetime,
    ) -> LoopSpec:
        return to_loop_spec(
            template,
            zone=zone_or_utc(manager_zone),
            window=window,
            not_before=now + timedelta(minutes=self._settings.default_notice_min),
            candidate_zone=zone_or_utc(offer.candidate_time_zone),
            step=STEP,
        )

    async def _refused(
        self, offer: storage.OfferRow, ctx: TenantContext, request_id: str, people: list[str]
    ) -> bool:
        """Whether the mailbox gate refuses one of ``people`` now (audited by the gate)."""
        if self._tenancy is None:
            return True
        refusal = await self._tenancy.check_mailboxes(
            None, ctx, "offer.slots", request_id, people, actor_oid=offer.organizer_oid
        )
        return refusal is not None

    async def _pooled(
        self,
        offer: storage.OfferRow,
        template: LoopTemplate,
        manager_zone: str,
        token: str,
        request_id: str,
        ctx: TenantContext,
        window: Interval,
    ) -> Offered:
        """The manager's pooled search for the link (`loop_seats`): the pools (groups read live,
        app-only), members the gate refuses skipped, every calendar read in ONE availability read
        with the app-only token, outside "Interview" load for opted-in tenants; options whose
        every pooled session is filled (free, under caps, least loaded first)."""
        finder = self._loops.loop_search
        if finder is None or self._tenancy is None:
            return Offered([])
        live = await finder.live_pools(ctx, template)
        try:
            async with self._store.transaction() as tx:
                pools = await load_pools(tx, ctx.tenant_id, template, window, live)
        except InvalidTemplateError:  # a pool deleted (or shrunk) since the link was made
            return Offered([])
        fixed, rooms = template_mailboxes(template)
        everyone = list(dict.fromkeys([*fixed, *pools.members()]))
        refusal, people, left = await gate_skipping(
            self._tenancy, None, ctx, "offer.slots", request_id, everyone, rooms, fixed, pools,
            actor_oid=offer.organizer_oid,
        )  # fmt: skip
        if refusal is not None:  # a fixed person or a room (audited by name by the gate)
            raise GoneError()
        assert left is not None  # noqa: S101  (pools in, pools out)
        if left.short(template):  # an unreadable group, or too few usable members left
            return Offered([], live=live)
        fetch = Interval(window.start - timedelta(days=1), window.end + timedelta(days=1))
        read = await self._search.read_availability(
            None, token, people, [r for r in rooms if r not in people], fetch, request_id=request_id,
            operation="offer.slots", requester=offer.organizer_upn, tenant_id=offer.tenant_id,
        )  # fmt: skip
        if any(a in fixed for a in read.unreadable):
            return Offered([], live=live)  # fail closed: a fixed interviewer is never free
        now = self._clock()
        spec = self._spec(offer, template, manager_zone, window, now)
        query = SlotQuery(fetch, timedelta(minutes=5), STEP, spec.not_before)
        rules = BusyRules(frozenset(ShowAs(s) for s in self._settings.busy_policy.blocking))
        free = {a: free_time(p, query, rules) for a, p in read.availability.items()}
        outside: Mapping[str, Sequence[datetime]] = {}
        if finder.outside is not None:
            lo, hi = window.start - LOAD_MARGIN, window.end + LOAD_MARGIN
            outside = await finder.outside.starts(None, ctx, list(left.loads), lo, hi, request_id=request_id)
            left = replace(left, loads=with_outside(left.loads, outside))
        found = pooled_loops(spec, free, template, left, MAX_LOOP_OPTIONS, fetch)
        return Offered(
            [schedule for schedule, _ in found.options],
            {option_id(schedule): picks for schedule, picks in found.options},
            live,
            outside,
        )

    async def book(
        self,
        offer: storage.OfferRow,
        writer: Writer,
        chosen: LoopSchedule,
        *,
        candidate_name: str,
        email: str,
        organizer_name: str,
        company: str,
        manager_zone: str,
        offered: Offered | None = None,
    ) -> LoopOut:
        """Claim the link (single use), then book every session of ``chosen`` or none; a template
        drawing from pools books the members ``offered`` picks for ``chosen`` (drawn, caps checked,
        in the loop's reservation transaction).

        Raises:
            ConflictError: the link was already used. SlotTakenError: a session was taken, or a
            member drawn reached a cap meanwhile (never named to the candidate).
        """
        async with self._store.transaction() as tx:
            if not await storage.claim_loop_offer(tx, offer.id):
                raise ConflictError("This link was already used to book an interview.")
        source = stored_template(offer)
        picks = (offered.picks if offered else {}).get(option_id(chosen), {})
        sessions = session_times(chosen, picks)
        template = source
        if pooled(source):
            template = effective_template(source, {s.index: (s.pool_members, s.trainees) for s in sessions})
        req = BookLoopRequest(
            template=offer.loop_template or {},
            sessions=sessions,
            candidate_name=candidate_name,
            candidate_email=email.lower(),
            transaction_id=f"offer-{offer.id}-{offer.reschedules_used}",
            candidate_time_zone=offer.candidate_time_zone,
        )

        async def zone() -> str | None:
            return manager_zone

        try:
            out = await self._loops.book_as(
                writer, offer.organizer_oid, organizer_name, template, req, zone, company,
                source=source if pooled(source) else None, live=offered.live if offered else None,
                outside=offered.outside if offered else None,
            )  # fmt: skip
        except BaseException as exc:
            async with self._store.transaction() as tx:
                await storage.reopen_loop_offer(tx, offer.id, None)
            if isinstance(exc, CapReachedError):  # its message names the member: never the candidate's
                raise SlotTakenError() from exc
            raise
        async with self._store.transaction() as tx:
            await storage.set_offer_loop(tx, offer.id, out.id)
        return out

    async def sessions(self, loop_id: str) -> tuple[storage.LoopRow, list[storage.InterviewRow]]:
        """The booked loop and its session rows. Raises: NotFoundError (gone)."""
        async with self._store.transaction() as tx:
            loop = await storage.get_loop(tx, loop_id)
            rows = await storage.loop_sessions(tx, loop_id)
        if loop is None:
            raise NotFoundError()
        return loop, rows

    async def cancel(self, offer: storage.OfferRow, writer: Writer, may_rebook: bool) -> bool:
        """Cancel every session of the link's loop; one change counted; the link opens again when
        ``may_rebook``. Returns whether it did."""
        loop, rows = await self.sessions(offer.loop_id or "")
        if loop.status != "confirmed":
            raise ConflictError("This interview can no longer be changed here.")
        for row in rows:
            if row.status == "confirmed":
                await self._bookings.cancel(
                    writer, row, "Cancelled by the candidate via OpenSlot", "offer.cancel"
                )
        reopened = False
        async with self._store.transaction() as tx:
            await storage.mark_loop(tx, loop.id, "cancelled", expected="confirmed")
            await storage.count_reschedule(tx, offer.id)
            if may_rebook:
                reopened = await storage.reopen_loop_offer(tx, offer.id, loop.id)
        return reopened

    async def move(self, offer: storage.OfferRow, writer: Writer, chosen: LoopSchedule) -> None:
        """Move the whole loop to ``chosen`` (each session keeps its room), one change counted
        before any Graph write; a failure moves back what was moved.

        Raises:
            ValidationError: the option needs other rooms. ConflictError: no change left.
            SlotTakenError: a session's people are busy then, or one drawn from a pool would pass
            a cap (never named).
        """
        loop, listed = await self.sessions(offer.loop_id or "")
        if loop.status != "confirmed":
            raise ConflictError("This interview can no longer be changed here.")
        rows = {r.session_index or 0: r for r in listed}
        wanted = {s.index: s for s in sessions_of(chosen)}
        if set(wanted) != set(rows):
            raise ValidationError("option", "is not one of the offered times")
        for i, row in rows.items():
            if wanted[i].room is not None and wanted[i].room not in row.attendees:
                raise ValidationError("option", "needs other rooms; choose another time")
        async with self._store.transaction() as tx:
            counted = await storage.count_reschedule(
                tx, offer.id, limit=self._settings.candidate_change_limit
            )
        if not counted:
            raise ConflictError("This interview can no longer be changed here.")
        try:
            await self._loops.move_sessions(writer, rows, wanted)
        except CapReachedError as exc:  # a member drawn from a pool is at a cap then: not named
            raise SlotTakenError() from exc

    async def page(
        self, offer: storage.OfferRow, private: OfferPrivate, doc: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        """A loop link's page: whole-loop options by the candidate's day, or the booked loop."""
        own: list[storage.InterviewRow] = []
        doc["loop"] = {"title": stored_template(offer).name, "days": []}
        if offer.status is storage.OfferStatus.BOOKED:
            if offer.loop_id is None:  # being booked right now
                return doc
            loop, own = await self.sessions(offer.loop_id)
            doc["booking"] = loop_booking_doc(loop, own)
            doc["can_change"] = self._loop_can_change(offer, loop, own)
            if not doc["can_change"]:
                return doc
        ctx, token = await self._app_token(offer, "offer.slots", request_id)
        found = await self.found(offer, private.manager_time_zone, token, request_id, own, ctx)
        doc["loop"]["days"] = by_day(found, doc["tz"])
        return doc

    async def book_link(
        self,
        offer: storage.OfferRow,
        private: OfferPrivate,
        req: CandidateRequest,
        request_id: str,
        outside_tenant: Callable[[str, str], Awaitable[None]],
    ) -> dict[str, Any]:
        """ONE POST books the whole loop (`book`); the same option posted again answers it."""
        if offer.status is storage.OfferStatus.BOOKED and offer.loop_id:
            loop, rows = await self.sessions(offer.loop_id)
            if loop.status == "confirmed" and booked_option_id(rows) == req.option:
                return self._loop_outcome(offer, private, "booked", loop, rows)
        if offer.status is not storage.OfferStatus.OPEN:
            raise ConflictError("This link was already used to book an interview.")
        email = private.candidate_email or req.email
        if not email:
            raise ValidationError("email", "is required")
        ctx, token = await self._app_token(offer, "offer.book", request_id)
        if not private.candidate_email:
            await outside_tenant(token, email)
        offered = await self.offered(offer, private.manager_time_zone, token, request_id, (), ctx)
        chosen = pick(offered.schedules, req.option)
        brand = self._settings.branding.get(offer.tenant_id) or self._settings.branding.get("*")
        out = await self.book(
            offer, Writer(None, ctx.tenant_id, token, offer.organizer_upn, request_id), chosen,
            candidate_name=private.candidate_name, email=email, organizer_name=private.organizer_name,
            company=brand.company_name if brand else "", manager_zone=private.manager_time_zone,
            offered=offered,
        )  # fmt: skip
        loop, rows = await self.sessions(out.id)
        return self._loop_outcome(offer, private, "booked", loop, rows)

    async def change(
        self,
        offer: storage.OfferRow,
        private: OfferPrivate,
        req: CandidateRequest,
        request_id: str,
        *,
        cancel: bool,
        may_rebook: bool,
    ) -> dict[str, Any]:
        """Cancel the whole loop, or move it to another whole-loop option (limit and cut-off)."""
        if offer.status is not storage.OfferStatus.BOOKED or not offer.loop_id:
            raise ConflictError("Nothing is booked with this link yet.")
        loop, rows = await self.sessions(offer.loop_id)
        if not self._loop_can_change(offer, loop, rows, moving=not cancel):
            raise ConflictError("This interview can no longer be changed here.")
        ctx, token = await self._app_token(offer, "" if cancel else "offer.reschedule", request_id)
        writer = Writer(None, offer.tenant_id, token, offer.organizer_upn, request_id)
        if cancel:
            reopened = await self.cancel(offer, writer, may_rebook)
            loop, rows = await self.sessions(loop.id)
            return {**self._loop_outcome(offer, private, "cancelled", loop, rows), "reopened": reopened}
        if req.option is None:
            raise ValidationError("option", "is missing a required field")
        found = await self.found(offer, private.manager_time_zone, token, request_id, rows, ctx)
        await self.move(offer, writer, pick(found, req.option))
        loop, rows = await self.sessions(loop.id)
        return self._loop_outcome(offer, private, "rescheduled", loop, rows)

    def _loop_can_change(
        self,
        offer: storage.OfferRow,
        loop: storage.LoopRow,
        rows: list[storage.InterviewRow],
        moving: bool = True,
    ) -> bool:
        cutoff = min(r.start for r in rows) - timedelta(hours=self._settings.candidate_cutoff_hours)
        limit = self._settings.candidate_change_limit
        return (
            loop.status == "confirmed"
            and self._clock() < cutoff
            and (not moving or offer.reschedules_used < limit)
        )

    def _loop_outcome(
        self,
        offer: storage.OfferRow,
        private: OfferPrivate,
        event: str,
        loop: storage.LoopRow,
        rows: list[storage.InterviewRow],
    ) -> dict[str, Any]:
        """As `_outcome` (for the bot app's Teams notice), the booking being the whole loop."""
        reference = (
            private.conversation_ref if reference_allowed(private.conversation_ref, self._settings) else None
        )
        return {
            "event": event,
            "booking": loop_booking_doc(loop, rows),
            "tenant_id": offer.tenant_id,
            "candidate_name": private.candidate_name,
            "conversation_ref": reference,
            "manager_time_zone": private.manager_time_zone,
            "candidate_time_zone": offer.candidate_time_zone,
            "role": private.role,
            "interview_id": "",
            "loop_id": loop.id,
            "join_url": next((r.join_url for r in rows if r.join_url), ""),
        }


def sessions_of(schedule: LoopSchedule) -> tuple[SessionTime, ...]:
    """A schedule as the sessions a booking names, by index."""
    placed = sorted(schedule.placements, key=lambda p: p.session)
    return tuple(SessionTime(p.session, p.start, p.end, p.room) for p in placed)


def booked_option_id(rows: Sequence[storage.InterviewRow]) -> str:
    """`loop_search.option_id` of a booked loop (its sessions' starts, by index)."""
    starts = "|".join(r.start.isoformat() for r in sorted(rows, key=lambda r: r.session_index or 0))
    return hashlib.sha256(starts.encode()).hexdigest()[:20]


def pick(options: Sequence[LoopSchedule], wanted: str | None) -> LoopSchedule:
    """The option with id ``wanted``. Raises: SlotTakenError (not offered now: taken meanwhile,
    or a pool's members at their caps; the candidate is told "just taken", with fresh options)."""
    chosen = next((o for o in options if option_id(o) == wanted), None)
    if chosen is None:
        raise SlotTakenError()
    return chosen


def booked_template(template: LoopTemplate, rows: Sequence[storage.InterviewRow]) -> LoopTemplate:
    """``template`` with each pooled session's panel as booked (its members and trainees fixed,
    no pool): a move keeps who was drawn."""
    by_index = {r.session_index or 0: r for r in rows}
    sessions = list(template.sessions)
    for index in pooled(template):
        row = by_index.get(index)
        if row is None:
            continue
        need = sessions[index].room
        rooms = set(need.any_of) if need is not None else set()
        panel = [a.lower() for a in row.attendees if a != candidate_address(row) and a not in rooms]
        sessions[index] = replace(sessions[index], interviewers=tuple(panel), pool=None)
    return replace(template, sessions=tuple(sessions))


def option_doc(schedule: LoopSchedule) -> dict[str, Any]:
    """An option as the candidate sees it: session titles and times only."""
    return {
        "option_id": option_id(schedule),
        "start": format_time(schedule.start),
        "end": format_time(max(p.end for p in schedule.placements)),
        "sessions": [
            {"title": p.title, "start": format_time(p.start), "end": format_time(p.end)}
            for p in schedule.placements
        ],
    }


def by_day(options: Sequence[LoopSchedule], zone: str) -> list[dict[str, Any]]:
    """Options grouped by the candidate's local day of their first session, earliest first."""
    tz = zone_or_utc(zone)
    days: dict[str, list[LoopSchedule]] = {}
    for o in sorted(options, key=lambda o: o.start):
        days.setdefault(o.start.astimezone(tz).date().isoformat(), []).append(o)
    return [{"date": d, "options": [option_doc(o) for o in opts[:PER_DAY]]} for d, opts in days.items()]


def loop_booking_doc(loop: storage.LoopRow, rows: Sequence[storage.InterviewRow]) -> dict[str, Any]:
    """A booked loop as the candidate sees it: its span, status and every session's title and
    times (never an address)."""
    suffix = f": {loop.candidate_name}"
    live = [r for r in rows if r.status != "failed"] or list(rows)
    return {
        "start": format_time(min(r.start for r in live)),
        "end": format_time(max(r.end for r in live)),
        "status": loop.status,
        "sessions": [
            {
                "title": r.subject[: -len(suffix)] if r.subject.endswith(suffix) else r.subject,
                "start": format_time(r.start),
                "end": format_time(r.end),
            }
            for r in sorted(live, key=lambda r: r.start)
        ],
    }
