"""The directory: who is who (users and rooms), never what is in a calendar.

`resolve_people` and `check_people` answer the bot's people questions; `my_time_zone` the caller's
own mailbox zone. The small look-ups other use cases need (the signed-in organizer, a room's name,
the interviewers' first names, whether an address is a user of the tenant) are public methods here
too, so that they ask Graph in one place. Every use case starts with lock 2 (`Tenancy.context`) and
writes one audit row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from calendar_backend.auth import Principal
from calendar_backend.contract import PersonCheckOut, PersonOut
from calendar_backend.errors import CalendarError, NotFoundError, PermissionDeniedError
from calendar_backend.graph import CallStats, GraphClient, Schedule, raise_for_status
from calendar_backend.loop_templates import RoomInfo
from calendar_backend.tenancy import Tenancy, TenantContext
from calendar_backend.timezones import UnknownTimeZoneError, resolve_zone

_OBJECT_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Directory:
    """Directory use cases and look-ups. Safe to use concurrently."""

    def __init__(self, tenancy: Tenancy, graph: GraphClient, clock: Callable[[], datetime]) -> None:
        self._tenancy = tenancy
        self._graph = graph
        self._clock = clock

    # ---- use cases ---------------------------------------------------------------------------
    async def resolve_people(
        self, principal: Principal, assertion: str, queries: list[str], request_id: str
    ) -> list[list[PersonOut]]:
        """Match typed names or addresses against the directory (users and rooms told apart)."""
        ctx = await self._tenancy.context(principal)
        token = await self._tenancy.user_token(principal, ctx, assertion)
        stats = CallStats()
        rooms = await self._graph.list_rooms(token, stats=stats)
        results: list[list[PersonOut]] = []
        for query in queries:
            q = query.strip().lower()
            if _OBJECT_ID_RE.fullmatch(q):  # a people-picker pick: an Entra object id
                results.append(await self._person_by_id(token, q, rooms, stats))
                continue
            matched_rooms = [
                PersonOut(str(r.get("emailAddress", "")).lower(), str(r.get("displayName", "")), "", True)
                for r in rooms
                if str(r.get("displayName", "")).lower().startswith(q)
                or str(r.get("emailAddress", "")).lower() == q
            ]
            users = await self._graph.find_people(token, query.strip(), stats=stats)
            matched_users = [
                PersonOut(
                    str(u.get("mail") or u.get("userPrincipalName")).lower(),
                    str(u.get("displayName", "")),
                    "",
                    False,
                )
                for u in users
                if u.get("accountEnabled", True) and (u.get("mail") or u.get("userPrincipalName"))
            ]
            results.append((matched_users + matched_rooms)[:10])
        # The mailbox gate: a person the allow-list refuses is never offered for scheduling.
        refused = await self._tenancy.not_allowed(
            ctx, [p.address for r in results for p in r if not p.is_room]
        )
        results = [[p for p in r if p.is_room or p.address not in refused] for r in results]
        await self._tenancy.audit(
            principal, principal.tenant_id, "directory.resolve", (), "ok", request_id, stats
        )
        return results

    async def check_people(
        self, principal: Principal, assertion: str, queries: list[str], request_id: str
    ) -> list[PersonCheckOut]:
        """Resolve a panel as typed and say, per name, what would stop it (see PERSON_STATUSES).

        Directory first (users incl. disabled ones, and rooms by any word of their name), then the
        mailbox gate for every distinct match (before any calendar is touched), then one
        getSchedule over the next hour for the rest: an error there is ``no_mailbox`` (Exchange's
        5009) or ``unreadable``. Nothing of any calendar is returned.
        """
        ctx = await self._tenancy.context(principal)
        token = await self._tenancy.user_token(principal, ctx, assertion)
        stats = CallStats()
        rooms = await self._graph.list_rooms(token, stats=stats)
        checks: list[PersonCheckOut] = []
        seen: set[str] = set()
        for query in queries:
            check = await self._directory_check(token, query, rooms, stats)
            person = check.person
            if person is not None and check.status == "ok":
                if person.address in seen:
                    check = PersonCheckOut(query, "duplicate", person)
                seen.add(person.address)
            checks.append(check)
        people = [c.person.address for c in checks if c.status == "ok" and c.person and not c.person.is_room]
        disabled = await self._disabled_accounts(ctx, people, stats)
        checks = [
            PersonCheckOut(c.query, "disabled", c.person)
            if c.person and c.status == "ok" and c.person.address in disabled
            else c
            for c in checks
        ]
        wanted = [c.person.address for c in checks if c.status == "ok" and c.person]
        # the mailbox gate: allow-list and leavers
        refused = await self._tenancy.not_allowed(ctx, wanted) if wanted else set()
        if refused:  # named back as not_allowed, never read; audited once
            await self._tenancy.audit(
                principal,
                principal.tenant_id,
                "directory.check",
                [a for a in wanted if a in refused],
                "denied:not_allowed",
                request_id,
            )
        readable = [a for a in wanted if a not in refused]
        schedules: dict[str, Schedule] = {}
        if readable:
            schedules = await self._readability(token, readable, stats)
        out = [_checked(check, refused, schedules) for check in checks]
        if readable or not refused:  # a refusal alone was audited above: one row a request
            await self._tenancy.audit(
                principal, principal.tenant_id, "directory.check", readable, "ok", request_id, stats
            )
        return out

    async def my_time_zone(self, principal: Principal, assertion: str, request_id: str) -> str | None:
        """The caller's own mailbox time zone as an IANA name (delegated ``GET
        /me/mailboxSettings/timeZone``), ``None`` when Outlook has none OpenSlot understands."""
        ctx = await self._tenancy.context(principal)
        token = await self._tenancy.user_token(principal, ctx, assertion)
        stats = CallStats()
        status, doc = await self._graph.request("GET", "/me/mailboxSettings/timeZone", token, stats=stats)
        await self._tenancy.audit(
            principal,
            principal.tenant_id,
            "me.settings",
            (),
            "ok" if status == 200 else f"error:{status}",
            request_id,
            stats,
        )
        raise_for_status(status, doc)
        try:
            return resolve_zone(str(doc.get("value") or "")).key
        except UnknownTimeZoneError:
            return None

    # ---- look-ups for the other use cases ----------------------------------------------------
    async def organizer(self, token: str) -> tuple[str, str]:
        """The signed-in organizer's address and display name (one Graph call).

        Raises:
            PermissionDeniedError: Graph does not say who the token's user is.
        """
        status, doc = await self._graph.request(
            "GET", "/me?$select=displayName,mail,userPrincipalName", token
        )
        if status != 200:
            raise PermissionDeniedError("Could not identify you in Microsoft 365.")
        address = str(doc.get("mail") or doc.get("userPrincipalName")).lower()
        return address, str(doc.get("displayName") or "")[:120]

    async def room_infos(self, token: str, stats: CallStats | None = None) -> list[RoomInfo]:
        """The tenant's rooms (Graph ``/places`` room list) as a loop template's room need asks
        about them: address, capacity, building.

        Raises:
            CalendarError: Graph failed.
        """
        return [
            RoomInfo(
                str(r.get("emailAddress", "")).lower(),
                r["capacity"] if isinstance(r.get("capacity"), int) else None,
                str(r["building"]) if r.get("building") else None,
            )
            for r in await self._graph.list_rooms(token, stats=stats)
            if r.get("emailAddress")
        ]

    async def mailbox_zone(self, token: str) -> str | None:
        """The signed-in user's mailbox zone (IANA), ``None`` when unknown or unreadable (best
        effort, not audited: no calendar is read)."""
        try:
            status, doc = await self._graph.request("GET", "/me/mailboxSettings/timeZone", token)
        except CalendarError:
            return None
        if status != 200:
            return None
        try:
            return resolve_zone(str(doc.get("value") or "")).key
        except UnknownTimeZoneError:
            return None

    async def room_name(self, token: str, address: str) -> str:
        """A room's display name from the room list (best effort: "" when unreadable)."""
        try:
            rooms = await self._graph.list_rooms(token)
        except CalendarError:
            return ""
        return next(
            (
                str(r.get("displayName") or "")
                for r in rooms
                if str(r.get("emailAddress", "")).lower() == address
            ),
            "",
        )

    async def first_names(self, token: str, addresses: list[str]) -> tuple[str, ...]:
        """Each person's first name (``givenName``, else the display name's first word);
        an unreadable profile is left out rather than shown as an address."""
        names = []
        for address in addresses:
            status, doc = await self._graph.request(
                "GET", f"/users/{quote(address, safe='@')}?$select=givenName,displayName", token
            )
            if status != 200:
                continue
            first = (
                str(doc.get("givenName") or "").strip()
                or str(doc.get("displayName") or "").strip().split(" ")[0]
            )
            if first and "@" not in first:
                names.append(first[:60])
        return tuple(names)

    async def may_be_user(self, token: str, address: str) -> bool:
        """Whether Graph knows a user at ``address`` or cannot tell (fail closed): only a 400 or
        404 answer says no."""
        status, _doc = await self._graph.request(
            "GET", f"/users/{quote(address, safe='@')}?$select=id", token
        )
        return status not in {400, 404}

    # ---- helpers -----------------------------------------------------------------------------
    async def _readability(self, token: str, addresses: list[str], stats: CallStats) -> dict[str, Schedule]:
        """One getSchedule over the next hour for ``addresses`` (only each one's error matters).

        getSchedule is asked on a calendar's path: the caller's own, else (a caller with no
        mailbox gets 404 there) the first of ``addresses`` that has one.
        """
        now = self._clock()
        requesters = [(await self.organizer(token))[0], *addresses][:4]
        for requester in requesters:
            try:
                return await self._graph.get_schedules(
                    token, requester, addresses, now, now + timedelta(hours=1), stats=stats
                )
            except NotFoundError:
                continue
        raise NotFoundError()

    async def _disabled_accounts(
        self, ctx: TenantContext, addresses: list[str], stats: CallStats
    ) -> set[str]:
        """Which of ``addresses`` belong to a switched-off account. A signed-in user's
        ``User.ReadBasic.All`` does not show ``accountEnabled``; the app's ``User.Read.All`` does
        (directory facts only, no mailbox is read). Ten addresses per request."""
        if not addresses:
            return set()
        app_token = await self._tenancy.app_token(ctx)
        disabled: set[str] = set()
        for i in range(0, len(addresses), 10):
            chunk = addresses[i : i + 10]
            flt = " or ".join(f"mail eq '{a.replace(chr(39), chr(39) * 2)}'" for a in chunk)
            status, doc = await self._graph.request(
                "GET",
                f"/users?$filter={quote(flt)}&$select=mail,userPrincipalName,accountEnabled",
                app_token,
                stats=stats,
            )
            raise_for_status(status, doc)
            disabled.update(
                str(u.get("mail") or u.get("userPrincipalName") or "").lower()
                for u in doc.get("value", [])
                if u.get("accountEnabled") is False
            )
        return disabled

    async def _directory_check(
        self, token: str, query: str, rooms: list[dict[str, Any]], stats: CallStats
    ) -> PersonCheckOut:
        """One name against the directory: ok (one match), ambiguous, not_found or disabled."""
        q = query.strip().lower()
        if _OBJECT_ID_RE.fullmatch(q):
            found = await self._person_by_id(token, q, rooms, stats)
            return PersonCheckOut(query, "ok", found[0]) if found else PersonCheckOut(query, "not_found")
        matched_rooms = [
            PersonOut(str(r.get("emailAddress", "")).lower(), str(r.get("displayName", "")), "", True)
            for r in rooms
            if _room_matches(r, q)
        ]
        users = await self._graph.find_people(token, query.strip(), stats=stats)
        people = [
            (
                PersonOut(
                    str(u.get("mail") or u.get("userPrincipalName")).lower(),
                    str(u.get("displayName", "")),
                    "",
                    False,
                ),
                bool(u.get("accountEnabled", True)),
            )
            for u in users
            if u.get("mail") or u.get("userPrincipalName")
        ]
        enabled = [p for p, on in people if on]
        matches = enabled + matched_rooms
        exact = [p for p in matches if p.address == q or p.display_name.lower() == q]
        if len(exact) == 1:
            matches = exact
        if len(matches) == 1:
            return PersonCheckOut(query, "ok", matches[0])
        if matches:
            return PersonCheckOut(query, "ambiguous", choices=tuple(matches[:8]))
        disabled = [p for p, on in people if not on]
        if disabled:
            return PersonCheckOut(query, "disabled", disabled[0])
        return PersonCheckOut(query, "not_found")

    async def _person_by_id(
        self, token: str, object_id: str, rooms: list[dict[str, Any]], stats: CallStats
    ) -> list[PersonOut]:
        """The one user (or room mailbox) with Entra object id ``object_id``; ``[]`` if unknown.

        ``object_id`` must already match ``_OBJECT_ID_RE`` (it is put into the Graph path).
        """
        status, doc = await self._graph.request(
            "GET",
            f"/users/{object_id}?$select=id,displayName,mail,userPrincipalName,accountEnabled",
            token,
            stats=stats,
        )
        if status in {400, 404}:
            return []
        raise_for_status(status, doc)
        address = str(doc.get("mail") or doc.get("userPrincipalName") or "").lower()
        if not address or not doc.get("accountEnabled", True):
            return []
        room_addresses = {str(r.get("emailAddress", "")).lower() for r in rooms}
        return [PersonOut(address, str(doc.get("displayName", "")), "", address in room_addresses)]


def _checked(check: PersonCheckOut, refused: set[str], schedules: dict[str, Schedule]) -> PersonCheckOut:
    """A directory match with the gate's and the readability check's verdicts applied."""
    address = check.person.address if check.person else ""
    if check.status == "ok" and address in refused:
        return PersonCheckOut(check.query, "not_allowed", check.person)
    if check.status == "ok" and schedules.get(address) and schedules[address].error:
        status = "no_mailbox" if schedules[address].error == "5009" else "unreadable"
        return PersonCheckOut(check.query, status, check.person)
    return check


def _room_matches(room: dict[str, Any], q: str) -> bool:
    """A typed name names a room by its address or by the start of its name or any of its words
    ("rainier" names "Redmond 1.01 Rainier")."""
    name = str(room.get("displayName", "")).lower()
    return (
        str(room.get("emailAddress", "")).lower() == q
        or name.startswith(q)
        or any(word.startswith(q) for word in name.split())
    )
