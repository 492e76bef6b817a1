"""The mailbox gate: the one place that decides whether a mailbox may be read or written.

Every use case that reads or writes a mailbox (slot search, candidate links when made and every
time they are viewed or booked, rooms, interview create/reschedule, people lookup, recovery) asks
`MailboxGate.check` before any calendar request reaches Graph. The rules, in this order; the first
rule that refuses decides, and the refusal is audited as one row ``denied:<reason>`` naming the
refused mailboxes:

1. ``archived``: the acting user (the manager, or the organizer behind a candidate link) was
   archived as a leaver; nothing of theirs is read or written any more. A person who was archived
   is refused by name too (looked up in the directory only when the tenant has archived users).
2. ``not_allowed``: a person outside the tenant's OpenSlot allow-list (`allowlist`; empty list =
   everyone; groups resolved with the app-only token, failing closed).
3. ``not_a_room``: an address used as a room that is not in the tenant's room list (Graph places,
   ``/places/microsoft.graph.room``). A room is a room; a person's mailbox never passes as one.
4. ``not_a_person``: an address invited without being searched or reserved (an optional
   attendee) that is a room: a room would accept a time nobody checked (a room taken twice).
   A room goes in ``rooms``, where it is checked and reserved.
5. ``unreadable``: (only when a delegated token is given) a mailbox whose free/busy the acting
   user cannot read in Outlook, probed with *their* token over a short window. A candidate link
   is made only for calendars its creator could read at that moment.

The gate stores nothing: the probe's answer is used for this decision and dropped. The room list
(a directory fact, like the allow-list's group members) is kept in memory per tenant for
`ROOM_LIST_TTL` (one minute), so that a search with rooms costs no extra Graph round trip before its
calendar read: a room added to the tenant is refused (fail closed) until the list is read again.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

import sqlalchemy as sa

from calendar_backend import storage
from calendar_backend.allowlist import Entry, MailboxAllowList, list_entries
from calendar_backend.errors import PermissionDeniedError
from calendar_backend.graph import CallStats, GraphClient

AppToken = Callable[[], Awaitable[str]]
Audit = Callable[[Sequence[str], str, CallStats | None], Awaitable[None]]
_PROBE = timedelta(minutes=15)
ROOM_LIST_TTL = 60.0  # seconds a tenant's room list is reused (rule 3)
_FILTER_CHUNK = 7  # two clauses per address: at most 14 "or" clauses per directory request


class Rule(enum.StrEnum):
    """Why the gate refused (the audit result is ``denied:<value>``)."""

    ARCHIVED = "archived"
    NOT_ALLOWED = "not_allowed"
    NOT_A_ROOM = "not_a_room"
    NOT_A_PERSON = "not_a_person"
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class Refusal:
    """The gate's answer when it refuses: which rule, and the mailboxes it refused (by name)."""

    rule: Rule
    mailboxes: tuple[str, ...]

    def error(self) -> PermissionDeniedError:
        """The answer for an operation that cannot go on partly (book, move, make a link)."""
        if self.rule is Rule.ARCHIVED and self.mailboxes:
            exc = PermissionDeniedError(
                "These people have left the organisation: " + ", ".join(self.mailboxes)
            )
            exc.gate_rule = self.rule.value  # type: ignore[attr-defined]
            return exc
        text = {
            Rule.ARCHIVED: "This account can no longer use OpenSlot.",
            Rule.NOT_ALLOWED: "OpenSlot is not allowed to read these calendars: ",
            Rule.NOT_A_ROOM: "These are not rooms: ",
            Rule.NOT_A_PERSON: "Add these rooms as rooms, not as optional attendees: ",
            Rule.UNREADABLE: "You cannot see these calendars in Outlook: ",
        }[self.rule]
        names = ", ".join(self.mailboxes) if self.rule is not Rule.ARCHIVED else ""
        exc = PermissionDeniedError(text + names)
        exc.gate_rule = self.rule.value  # type: ignore[attr-defined]
        return exc


@dataclass(frozen=True, slots=True)
class Probe:
    """Delegated readability: the acting user's Graph token, their address, and when to look."""

    user_token: str
    requester: str
    at: datetime


class MailboxGate:
    """The choke point. One per process; safe for concurrent use."""

    def __init__(
        self,
        store: storage.Store,
        graph: GraphClient,
        allowlist: MailboxAllowList,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._graph = graph
        self._allowlist = allowlist
        self._clock = clock
        self._rooms: dict[str, tuple[float, frozenset[str]]] = {}  # tenant -> (expires, room list)

    async def check(
        self,
        *,
        tenant_id: str,
        actor_oid: str | None,
        people: Sequence[str],
        rooms: Sequence[str] = (),
        app_token: AppToken,
        audit: Audit,
        probe: Probe | None = None,
        static: bool = True,
        unreserved: Sequence[str] = (),
    ) -> Refusal | None:
        """``None`` when every mailbox may be used, else the refusal (already audited once).

        ``static=False`` applies the probe only: for a second call, once the use case holds the
        user's Graph token, after a first call (rules 1-4) made before any token was fetched.

        ``people`` are the persons' mailboxes (allow-list, delegated probe), ``rooms`` the
        addresses used as rooms (room list, delegated probe), ``unreserved`` those of
        ``people`` that are invited but never searched nor reserved (must not be rooms).
        Makes no calendar request to a refused mailbox: the only Graph reads before a refusal
        are the allow-list's group members, the room list and (with ``probe``) one free/busy
        read with the user's own token.

        Raises:
            CalendarError: Graph failed while deciding (nothing was read; fail closed).
        """
        people = list(dict.fromkeys(a.lower() for a in people))
        rooms = list(dict.fromkeys(a.lower() for a in rooms))
        refusal = None
        if static:
            refusal = await self._decide(
                tenant_id, actor_oid, people, rooms, app_token, [a.lower() for a in unreserved]
            )
        if refusal is None and probe is not None:
            refusal = await self._probe(people + rooms, probe)
        if refusal is not None:
            await audit(refusal.mailboxes, f"denied:{refusal.rule.value}", None)
        return refusal

    async def _decide(
        self,
        tenant_id: str,
        actor_oid: str | None,
        people: list[str],
        rooms: list[str],
        app_token: AppToken,
        unreserved: Sequence[str] = (),
    ) -> Refusal | None:
        leavers, entries = await self._policy(tenant_id)
        if actor_oid is not None and actor_oid in leavers:
            return Refusal(Rule.ARCHIVED, ())
        if leavers and people:
            left = await self._stored_leavers(tenant_id, people) or await self._archived_people(
                people, leavers, app_token
            )
            if left:
                return Refusal(Rule.ARCHIVED, left)
        refused = await self._allowlist.refused(tenant_id, entries, people, app_token)
        if refused:
            return Refusal(Rule.NOT_ALLOWED, tuple(refused))
        if rooms or unreserved:
            known = await self._tenant_rooms(tenant_id, app_token)
            not_rooms = tuple(r for r in rooms if r not in known)
            if not_rooms:
                return Refusal(Rule.NOT_A_ROOM, not_rooms)
            as_people = tuple(dict.fromkeys(a for a in unreserved if a in known))
            if as_people:
                return Refusal(Rule.NOT_A_PERSON, as_people)
        return None

    async def _stored_leavers(self, tenant_id: str, people: list[str]) -> tuple[str, ...]:
        """People whose addresses were kept when they were archived: no directory call needed."""
        from calendar_backend.lifecycle import archived_among  # lifecycle imports service → gate

        async with self._store.transaction() as tx:
            return await archived_among(tx, tenant_id, people)

    async def _archived_people(
        self, people: list[str], leavers: set[str], app_token: AppToken
    ) -> tuple[str, ...]:
        """Which of ``people`` are archived leavers (directory ids), by name."""
        token = await app_token()
        ids: dict[str, str] = {}
        for i in range(0, len(people), _FILTER_CHUNK):
            chunk = people[i : i + _FILTER_CHUNK]
            clauses = " or ".join(
                f"{p} eq '{a.replace(chr(39), chr(39) * 2)}'"
                for a in chunk
                for p in ("mail", "userPrincipalName")
            )
            status, doc = await self._graph.request(
                "GET", f"/users?$select=id,mail,userPrincipalName&$filter={quote(clauses)}", token
            )
            if status != 200:
                raise PermissionDeniedError("OpenSlot could not check the directory.")
            for user in doc.get("value", []):
                for key in ("mail", "userPrincipalName"):
                    if user.get(key):
                        ids[str(user[key]).lower()] = str(user.get("id", ""))
        return tuple(a for a in people if ids.get(a) in leavers)

    async def _probe(self, mailboxes: list[str], probe: Probe) -> Refusal | None:
        schedules = await self._graph.get_schedules(
            probe.user_token, probe.requester, mailboxes, probe.at, probe.at + _PROBE, stats=CallStats()
        )
        unreadable = tuple(a for a in mailboxes if a not in schedules or schedules[a].error)
        return Refusal(Rule.UNREADABLE, unreadable) if unreadable else None

    async def not_allowed(self, tenant_id: str, people: Sequence[str], app_token: AppToken) -> set[str]:
        """The people the allow-list refuses or who left (archived), without auditing: for a
        directory lookup, which only leaves them out of its answer (no calendar is read there)."""
        people = list(dict.fromkeys(a.lower() for a in people))
        leavers, entries = await self._policy(tenant_id)
        refused = {a.lower() for a in await self._allowlist.refused(tenant_id, entries, people, app_token)}
        if leavers and people:
            refused |= set(await self._archived_people(people, leavers, app_token))
        return refused

    async def rooms_among(self, mailboxes: Sequence[str], app_token: AppToken) -> set[str]:
        """Which of ``mailboxes`` are rooms of the tenant (for stored attendee lists)."""
        known = await self._room_addresses(app_token)
        return {a.lower() for a in mailboxes if a.lower() in known}

    async def _tenant_rooms(self, tenant_id: str, app_token: AppToken) -> frozenset[str]:
        """The tenant's room mailboxes, read again once `ROOM_LIST_TTL` has passed."""
        now = self._clock()
        cached = self._rooms.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        rooms = frozenset(await self._room_addresses(app_token))
        self._rooms[tenant_id] = (now + ROOM_LIST_TTL, rooms)
        return rooms

    async def _room_addresses(self, app_token: AppToken) -> set[str]:
        """The tenant's room mailboxes (Graph room list), lower-cased."""
        return {
            str(r.get("emailAddress", "")).lower() for r in await self._graph.list_rooms(await app_token())
        }

    async def _policy(self, tenant_id: str) -> tuple[set[str], tuple[Entry, ...]]:
        """The tenant's archived leavers (oids) and allow-list entries, read in one transaction."""
        async with self._store.transaction() as tx:
            leavers = {
                str(oid)
                for (oid,) in await tx.execute(
                    sa.select(storage.archived_users.c.oid).where(
                        storage.archived_users.c.tenant_id == tenant_id
                    )
                )
            }
            return leavers, await list_entries(tx, tenant_id)
