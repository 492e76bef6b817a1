"""The drift watcher: notice when a booked interview changes in Outlook behind OpenSlot's back.

**What is watched, and at which granularity.** Graph change notifications for Outlook events can
only be subscribed to for a *collection* (``/users/{id}/events`` or a calendar's events), never
for one event (``/users/{id}/events/{id}`` is not a supported resource), and a mailbox allows
1,000 subscriptions across all apps. So OpenSlot keeps **one subscription per watched mailbox**
(the organizer's and each interviewer's, shared by all their interviews) and ties a
notification to an interview through ``watch_events`` (the organizer's event id and each
interviewer's copy, found by iCalUId): interviewers' copies are watched because a decline sent
with "Do not send a response" changes only the attendee's copy (platform.md C14). Notifications
in a watched mailbox about an event that is *not* ours (a new meeting) are never read: they only
trigger a free/busy sweep of that mailbox's interviews (a possible new conflict).

**Subscriptions** (`ensure`, `renew`): created with the tenant's app-only token (as recovery) after
the mailbox gate agreed for every watched mailbox; basic notifications (no resource data), so a
lifetime of at most 10,080 minutes: OpenSlot asks for `LIFETIME` and renews (PATCH) what expires
within `renew_before`. ``clientState``: a random secret per subscription, stored as its SHA-256.
Lifecycle: ``reauthorizationRequired`` → renew, ``subscriptionRemoved`` → recreate, ``missed`` →
sweep that mailbox now.

**Receiving** (`receive`): an item is queued (``watch_inbox``, one transaction, then 202) only if
its subscriptionId + clientState match a stored subscription, else dropped and counted
(`dropped`); nothing but the ids is trusted. **The worker** (`run_worker`, `drain`) reads only
what it needs (`graph_watch`: ``$select`` of start, end, isCancelled, responseStatus, attendees).

**Drift** (`check`): the organizer's event gone or cancelled (``deleted``), at another time
(``moved``), an interviewer's answer ``declined`` (on the organizer's event or on their own copy),
or (`sweep`) a new busy item over an interviewer's interview (``conflict``). One ``watch_drift``
row per change (a fingerprint: duplicates and repeated sweeps record it once), audited
(``watch.drift``), with its repairs (`watch_repairs.RepairPlanner`; a pool may auto-repair).

**Safety net** (`sweep`): getSchedule for the panels of upcoming interviews (next `near` every
`sweep_every`, later ones every `far_every`); a panel member without the interview's own busy
item (a silent decline, a move) or with another busy item over it (a conflict) is then checked.
`prune` stops watching ended or cancelled interviews and deletes idle subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from calendar_backend import storage
from calendar_backend.audit import AuditEvent, append_audit
from calendar_backend.availability import BusyRules
from calendar_backend.calendar_view import schedule_blocks
from calendar_backend.crypto import CredentialCipher
from calendar_backend.errors import CalendarError, NotFoundError
from calendar_backend.gate import MailboxGate
from calendar_backend.graph import CallStats, GraphClient, Schedule
from calendar_backend.graph_watch import (
    EventStatus,
    create_subscription,
    delete_subscription,
    find_copy,
    free_busy,
    read_event,
    renew_subscription,
)
from calendar_backend.sealing import tenant_credential_aad
from calendar_backend.slots import Interval
from calendar_backend.storage import watch as store_watch
from calendar_backend.storage.watch_apply import drift_recorded
from calendar_backend.tokens import AppCredential, TokenBroker
from calendar_backend.watch_model import LIFETIME as LIFETIME
from calendar_backend.watch_model import Planner as Planner
from calendar_backend.watch_model import WatchConfig as WatchConfig
from calendar_backend.watch_model import WatchStats as WatchStats
from calendar_backend.watch_model import panel_of as panel_of
from calendar_backend.watch_model import state_hash as state_hash

log = logging.getLogger(__name__)

ACTOR = "system:watch"
LIFECYCLE = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
CHANGES = frozenset({"created", "updated", "deleted"})
MAX_ITEMS = 100  # per notification POST
_ID = re.compile(r"[A-Za-z0-9=_\-+/.]{1,512}")
_SUB_ID = re.compile(r"[A-Za-z0-9\-]{1,128}")


class Watcher:
    """Subscriptions, the inbox worker, drift detection and the sweep. Safe to use concurrently."""

    def __init__(
        self,
        store: storage.Store,
        cipher: CredentialCipher,
        tokens: TokenBroker,
        graph: GraphClient,
        gate: MailboxGate,
        rules: BusyRules,
        clock: Callable[[], datetime],
        config: WatchConfig,
        planner: Planner | None = None,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self.tokens = tokens  # public: a test swaps it when it moves the clock by days
        self._graph = graph
        self._gate = gate
        self._rules = rules
        self.clock = clock
        self.config = config
        self.planner = planner
        self.stats = WatchStats()
        self._wake = asyncio.Event()
        self._last_far: datetime | None = None

    # ---- tokens, gate, audit -----------------------------------------------------------------
    async def _token(self, tenant_id: str) -> str | None:
        async with self._store.transaction() as tx:
            tenant = await storage.get_tenant(tx, tenant_id)
        if tenant is None or tenant.status != "active":
            return None
        raw = self._cipher.decrypt(tenant.credential_blob, aad=tenant_credential_aad(tenant_id))
        return await self.tokens.for_app(tenant_id, AppCredential.from_bytes(raw))

    async def _audit(
        self, tenant_id: str, operation: str, targets: Sequence[str], result: str, tx: Any = None
    ) -> None:
        event = AuditEvent(
            tenant_id=tenant_id,
            actor_oid=ACTOR,
            operation=operation,
            targets=tuple(t.lower() for t in targets),
            result=result,
            at=self.clock(),
            request_id=str(uuid.uuid4()),
        )
        if tx is not None:
            await append_audit(tx, event)
            return
        async with self._store.transaction() as own:
            await append_audit(own, event)

    async def _allowed(self, row: storage.InterviewRow, token: str) -> tuple[list[str], list[str]] | None:
        """The mailbox gate for every mailbox of ``row`` watched: ``(people, rooms)`` or None."""
        panel = panel_of(row)

        async def app_token() -> str:
            return token

        async def audit(targets: Sequence[str], result: str, _stats: object) -> None:
            await self._audit(row.tenant_id, "watch.gate", targets, result)

        rooms = await self._gate.rooms_among(panel, app_token)
        people = [a for a in panel if a not in rooms]
        refusal = await self._gate.check(
            tenant_id=row.tenant_id,
            actor_oid=row.organizer_oid,
            people=[row.organizer_upn.lower(), *people],
            rooms=sorted(rooms),
            app_token=app_token,
            audit=audit,
        )
        return None if refusal is not None else (people, sorted(rooms))

    # ---- subscriptions -----------------------------------------------------------------------
    async def ensure(self) -> int:
        """Watch every upcoming confirmed interview not watched yet; returns how many were added."""
        now = self.clock()
        async with self._store.transaction() as tx:
            rows = await store_watch.upcoming_confirmed(tx, now, now + self.config.horizon)
        added = 0
        for row in rows:
            try:
                added += await self._watch(row)
            except (CalendarError, ValueError) as exc:  # the next run tries again
                log.warning("watch: could not watch an interview (%s)", type(exc).__name__)
        return added

    async def _watch(self, row: storage.InterviewRow) -> int:
        async with self._store.transaction() as tx:
            known = await store_watch.events_of_interview(tx, row.id)
        if row.organizer_upn.lower() in known or not row.event_id:
            return 0
        token = await self._token(row.tenant_id)
        if token is None:
            return 0
        allowed = await self._allowed(row, token)
        if allowed is None:
            return 0
        people, _rooms = allowed
        event = await read_event(self._graph, token, row.organizer_upn, row.event_id)
        if event is None or event.is_cancelled:
            await self._record(row, "deleted", row.organizer_upn, "sweep", f"{row.id}:deleted", token, None)
            return 0
        copies: dict[str, str] = {row.organizer_upn.lower(): row.event_id}
        for person in people:
            found = await find_copy(self._graph, token, person, event.ical_uid) if event.ical_uid else None
            if found is not None:
                copies[person] = found[0]
        async with self._store.transaction() as tx:
            for mailbox, event_id in copies.items():
                role = "organizer" if mailbox == row.organizer_upn.lower() else "attendee"
                await store_watch.put_watch_event(tx, row.tenant_id, mailbox, event_id, row.id, role)
        for mailbox in copies:
            await self._subscribe_once(row.tenant_id, mailbox, token)
        await self.check(row, token, "sweep")  # anything that changed before the subscriptions
        return 1

    async def _subscribe_once(self, tenant_id: str, mailbox: str, token: str) -> None:
        if not self.config.notification_url:
            return
        async with self._store.transaction() as tx:
            found = await store_watch.subscription_of(tx, tenant_id, mailbox)
        if found is None:
            await self.subscribe(tenant_id, mailbox, token)

    async def subscribe(self, tenant_id: str, mailbox: str, token: str) -> str:
        """Create the mailbox's subscription (a fresh clientState) and store it."""
        client_state = secrets.token_urlsafe(32)
        expires = self.clock() + self.config.lifetime
        sub_id, expires = await create_subscription(
            self._graph,
            token,
            mailbox,
            self.config.notification_url,
            client_state,
            expires,
            dev=self.config.dev,
        )
        async with self._store.transaction() as tx:
            await store_watch.put_subscription(
                tx, sub_id, tenant_id, mailbox, state_hash(client_state), expires
            )
            await self._audit(tenant_id, "watch.subscribe", [mailbox], "ok", tx)
        return sub_id

    async def renew(self, *, everything: bool = False) -> int:
        """Renew subscriptions expiring within `renew_before` (all with ``everything``); a gone
        one is recreated. Returns how many were renewed or recreated."""
        now = self.clock()
        horizon = now + (self.config.lifetime * 2 if everything else self.config.renew_before)
        async with self._store.transaction() as tx:
            subs = await store_watch.expiring_subscriptions(tx, horizon)
        done = 0
        for sub in subs:
            done += await self._renew_one(sub)
        return done

    async def _renew_one(self, sub: store_watch.WatchSubscription) -> int:
        token = await self._token(sub.tenant_id)
        if token is None:
            return 0
        try:
            expires = await renew_subscription(
                self._graph, token, sub.id, self.clock() + self.config.lifetime
            )
        except NotFoundError:  # expired or removed meanwhile: recreate
            async with self._store.transaction() as tx:
                await store_watch.delete_subscription(tx, sub.id)
            try:
                await self.subscribe(sub.tenant_id, sub.mailbox, token)
            except CalendarError as exc:
                log.warning("watch: could not recreate a subscription (%s)", exc.code)
                return 0
            await self.sweep_mailbox(sub.tenant_id, sub.mailbox)  # what happened while it was gone
            return 1
        except CalendarError as exc:
            log.warning("watch: could not renew a subscription (%s)", exc.code)
            return 0
        async with self._store.transaction() as tx:
            await store_watch.renewed_subscription(tx, sub.id, expires)
        return 1

    # ---- receiving -----------------------------------------------------------------------------
    async def receive(self, doc: Any) -> tuple[int, int]:
        """Queue the valid items of one notification POST; returns (queued, dropped)."""
        items = doc.get("value") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            self.stats.dropped += 1
            return 0, 1
        queued: list[dict[str, Any]] = []
        dropped = max(0, len(items) - MAX_ITEMS)
        async with self._store.transaction() as tx:
            for item in items[:MAX_ITEMS]:
                entry = await self._accept(tx, item)
                if entry is None:
                    dropped += 1
                else:
                    queued.append(entry)
            await store_watch.enqueue(tx, queued, self.clock())
        self.stats.dropped += dropped
        self.stats.queued += len(queued)
        if queued:
            self._wake.set()
        return len(queued), dropped

    async def _accept(self, tx: Any, item: Any) -> dict[str, Any] | None:
        if not isinstance(item, dict):
            return None
        sub_id, client_state = item.get("subscriptionId"), item.get("clientState")
        if not isinstance(sub_id, str) or not _SUB_ID.fullmatch(sub_id) or not isinstance(client_state, str):
            return None
        sub = await store_watch.get_subscription(tx, sub_id)
        if sub is None or not hmac.compare_digest(state_hash(client_state[:256]), sub.state_hash):
            return None
        kind = item.get("lifecycleEvent") or item.get("changeType")
        if kind not in LIFECYCLE and kind not in CHANGES:
            return None
        data = item.get("resourceData")
        event_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(event_id, str) or not _ID.fullmatch(event_id):
            event_id = None
        return {
            "tenant_id": sub.tenant_id,
            "subscription_id": sub.id,
            "mailbox": sub.mailbox,
            "kind": str(kind),
            "event_id": event_id if kind in CHANGES else None,
        }

    # ---- the worker --------------------------------------------------------------------------
    async def run_worker(self, idle_s: float = 1.0) -> None:
        """Drain the inbox whenever items arrive (or every ``idle_s``) until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), idle_s)
            self._wake.clear()
            try:
                await self.drain()
            except Exception:  # the next round tries again; items stay queued
                log.exception("watch worker round failed")

    async def drain(self) -> int:
        """Process every queued item; returns how many."""
        done = 0
        while True:
            async with self._store.transaction() as tx:
                items = await store_watch.claim(tx, self.clock())
            if not items:
                return done
            finished: list[int] = []
            for item in items:
                try:
                    await self._process(item)
                    finished.append(item.id)
                except (CalendarError, ValueError) as exc:
                    log.warning(
                        "watch: an item failed (%s); it is retried later", type(exc).__name__, exc_info=True
                    )
            async with self._store.transaction() as tx:
                await store_watch.finish(tx, finished)
            done += len(finished)
            if not finished:
                return done

    async def _process(self, item: store_watch.InboxItem) -> None:
        token = await self._token(item.tenant_id)
        if token is None:
            return
        if item.kind in LIFECYCLE:
            await self._lifecycle(item, token)
            return
        found = None
        if item.event_id:
            async with self._store.transaction() as tx:
                found = await store_watch.watched_event(tx, item.tenant_id, item.mailbox, item.event_id)
        if found is None:  # not an OpenSlot event (e.g. a new meeting): free/busy only
            await self.sweep_mailbox(item.tenant_id, item.mailbox, token, "notification")
            return
        async with self._store.transaction() as tx:
            row = await storage.get_interview(tx, found[0])
        confirmed = row is not None and row.status is storage.InterviewStatus.CONFIRMED
        if row is not None and confirmed and await self._allowed(row, token):  # the gate, every time
            await self.check(row, token, "notification")

    async def _lifecycle(self, item: store_watch.InboxItem, token: str) -> None:
        async with self._store.transaction() as tx:
            sub = await store_watch.get_subscription(tx, item.subscription_id)
        if sub is None:
            return
        await self._audit(item.tenant_id, "watch.lifecycle", [item.mailbox], item.kind.lower())
        if item.kind == "reauthorizationRequired":
            await self._renew_one(sub)
        elif item.kind == "subscriptionRemoved":
            async with self._store.transaction() as tx:
                await store_watch.delete_subscription(tx, sub.id)
            await self.subscribe(item.tenant_id, item.mailbox, token)
            await self.sweep_mailbox(item.tenant_id, item.mailbox, token)
        else:  # missed
            await self.sweep_mailbox(item.tenant_id, item.mailbox, token, "notification")

    # ---- detection ---------------------------------------------------------------------------
    async def check(self, row: storage.InterviewRow, token: str, source: str) -> int:
        """Read the organizer's event and each watched copy ($select only); record drift."""
        if not row.event_id:
            return 0
        event = await read_event(self._graph, token, row.organizer_upn, row.event_id)
        if event is None or event.is_cancelled:
            return await self._record(
                row, "deleted", row.organizer_upn, source, f"{row.id}:deleted", token, None
            )
        found = 0
        if (event.start, event.end) != (row.start, row.end):
            fp = f"{row.id}:moved:{event.start.isoformat()}:{event.end.isoformat()}"
            found += await self._record(row, "moved", row.organizer_upn, source, fp, token, event)
        panel = set(panel_of(row))
        declined = {a for a, (_t, answer) in event.attendees.items() if a in panel and answer == "declined"}
        async with self._store.transaction() as tx:
            copies = await store_watch.events_of_interview(tx, row.id)
        for mailbox, copy_id in copies.items():
            if mailbox == row.organizer_upn.lower() or mailbox in declined:
                continue
            mine = await read_event(self._graph, token, mailbox, copy_id)
            if mine is None or mine.is_cancelled or mine.response == "declined":
                declined.add(mailbox)
        for person in sorted(declined):
            found += await self._record(
                row, "declined", person, source, f"{row.id}:declined:{person}", token, event
            )
        return found

    async def _record(
        self,
        row: storage.InterviewRow,
        kind: str,
        who: str,
        source: str,
        fingerprint: str,
        token: str,
        event: EventStatus | None,
    ) -> int:
        """One drift row per fingerprint, created WITH its repairs (planned first, then the row,
        its repairs and its audit row in one transaction, so nobody reads it unplanned); a pool's
        auto-repair after. Returns 1 if new."""
        async with self._store.transaction() as tx:
            if await drift_recorded(tx, fingerprint):
                return 0
        repairs = await self._plan(row, kind, who, source, token, event)
        async with self._store.transaction() as tx:
            drift = await store_watch.record_drift(
                tx, row, kind, who, source, fingerprint, self.clock(), repairs
            )
            if drift is not None:
                await self._audit(row.tenant_id, "watch.drift", [who], kind, tx)
        if drift is None:  # a concurrent worker recorded it first
            return 0
        self.stats.recorded += 1
        if self.planner is not None:
            await self.planner.auto_repair(row, drift, repairs, token)  # a pool's auto-repair, if on
        return 1

    async def _plan(
        self,
        row: storage.InterviewRow,
        kind: str,
        who: str,
        source: str,
        token: str,
        event: EventStatus | None,
    ) -> list[dict[str, Any]]:
        """The repairs of a drift not recorded yet (none on a planner failure: the feed's
        ``PLAN_GRACE_S`` then lets the row out without buttons)."""
        if self.planner is None:
            return []
        draft = store_watch.DriftRow(
            "", row.tenant_id, row.id, row.organizer_oid, kind, who.lower(), source, self.clock(), "open", ()
        )
        try:
            return await self.planner.plan(row, draft, token, event)
        except (CalendarError, ValueError) as exc:
            log.warning("watch: repairs not computed (%s)", type(exc).__name__)
            return []

    async def drift_rows(self) -> list[store_watch.DriftRow]:
        """Every drift row (benchmarks and tests)."""
        async with self._store.transaction() as tx:
            return await store_watch.all_drift(tx)

    async def copies(self, interview_id: str) -> dict[str, str]:
        """``{mailbox: event id}`` of an interview's watched events."""
        async with self._store.transaction() as tx:
            return await store_watch.events_of_interview(tx, interview_id)

    async def round(self) -> None:
        """One background round (runtime.py, every `sweep_every`): settle stale applies, watch new
        interviews, renew subscriptions, sweep."""
        await self.prune()
        if self.planner is not None:  # applies left ``applying`` by a process that died
            await self.planner.recover(self._token)
        await self.ensure()
        await self.renew()
        await self.sweep()

    async def prune(self) -> int:
        """Stop watching interviews that ended or were cancelled, and delete the subscriptions of
        mailboxes left with nothing to watch (a mailbox allows 1,000 across all apps)."""
        async with self._store.transaction() as tx:
            await store_watch.prune_events(tx, self.clock())
            subs = await store_watch.unwatched_subscriptions(tx)
        for sub in subs:
            token = await self._token(sub.tenant_id)
            try:
                if token is not None:
                    await delete_subscription(self._graph, token, sub.id)
            except CalendarError as exc:
                log.warning("watch: could not delete a subscription (%s)", exc.code)
                continue
            async with self._store.transaction() as tx:
                await store_watch.delete_subscription(tx, sub.id)
                await self._audit(sub.tenant_id, "watch.unsubscribe", [sub.mailbox], "ok", tx)
        return len(subs)

    # ---- the safety net ----------------------------------------------------------------------
    async def sweep(self) -> int:
        """Sweep the interviews due now (next `near` always, later ones every `far_every`)."""
        now = self.clock()
        far = self._last_far is None or now - self._last_far >= self.config.far_every
        until = now + (self.config.horizon if far else self.config.near)
        if far:
            self._last_far = now
        async with self._store.transaction() as tx:
            rows = await store_watch.upcoming_confirmed(tx, now, until)
        return await self._sweep_rows(rows, None, "sweep")

    async def sweep_mailbox(
        self, tenant_id: str, mailbox: str, token: str | None = None, source: str = "sweep"
    ) -> int:
        """Sweep the watched interviews of one mailbox now (a `missed` notification, a new event)."""
        now = self.clock()
        async with self._store.transaction() as tx:
            rows = await store_watch.interviews_of_mailbox(
                tx, tenant_id, mailbox, now, now + self.config.horizon
            )
        return await self._sweep_rows(rows, token, source)

    async def _sweep_rows(self, rows: list[storage.InterviewRow], token: str | None, source: str) -> int:
        found = 0
        tokens: dict[str, str | None] = {}
        for row in rows:
            if row.tenant_id not in tokens:
                tokens[row.tenant_id] = token or await self._token(row.tenant_id)
            app = tokens[row.tenant_id]
            if app is None:
                continue
            try:
                found += await self._sweep_one(row, app, source)
            except (CalendarError, ValueError) as exc:
                log.warning("watch: sweep of an interview failed (%s)", type(exc).__name__)
        return found

    async def _sweep_one(self, row: storage.InterviewRow, token: str, source: str) -> int:
        allowed = await self._allowed(row, token)
        if allowed is None:
            return 0
        people, _rooms = allowed
        if not people:
            return await self.check(row, token, source)
        stats = CallStats()
        people = people[:20]  # one getSchedule (a panel is never larger)
        schedules = await free_busy(
            self._graph, token, row.organizer_upn, people, row.start, row.end, stats=stats
        )
        suspicious, found = False, 0
        for person in people:
            schedule = schedules[person]
            if schedule.error:
                continue
            over = [i for i in schedule.items if i.start < row.end and row.start < i.end]
            own = [i for i in over if (i.start, i.end) == (row.start, row.end)]
            rest = list(over)
            if own:
                rest.remove(own[0])  # the interview's own item, once (a same-time meeting stays)
            slot = Interval(row.start, row.end)
            others = [i for i in rest if schedule_blocks(Schedule(person, (i,)), slot, self._rules)]
            if not own:
                suspicious = True  # a silent decline, a move or a delete
            for item in others[:1]:
                fp = f"{row.id}:conflict:{person}:{item.start.isoformat()}"
                found += await self._record(row, "conflict", person, source, fp, token, None)
        if suspicious:
            found += await self.check(row, token, source)
        return found
