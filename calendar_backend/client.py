"""CalendarServiceClient: the only backend module the bot uses at runtime.

It speaks the versioned JSON API over HTTP with the user's own access token and turns error answers back
into the service's error tree (by stable `code`), so dialogs can handle `SlotTakenError`,
`ReconnectRequiredError`, ... the same way the service raised them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import aiohttp
from yarl import URL

from calendar_backend import errors
from calendar_backend.client_errors import error_from
from calendar_backend.contract import (
    TEMPLATE_NAME,
    InterviewOut,
    LoopOut,
    LoopSearchOut,
    LoopSessionOut,
    LoopTemplateOut,
    MyLoadOut,
    OfferOut,
    PersonCheckOut,
    PersonOut,
    PoolCardOut,
    PoolMemberRequest,
    PoolSummaryOut,
    SlotsResult,
    format_time,
)

FEED_KEY_HEADER = "X-OpenSlot-Feed-Key"  # the drift feed's shared key (service to service)


@runtime_checkable
class LoopCalendarApi(Protocol):
    """The loop half of the API (issue 17): saved templates, the loop search, loop bookings. The bot's
    loop dialogs take any client with these methods (`dialogs.loop_client.loop_api`)."""

    async def list_loop_templates(self, token: str) -> list[LoopTemplateOut]: ...

    async def save_loop_template(
        self, token: str, name: str, template: dict[str, Any]
    ) -> LoopTemplateOut: ...

    async def delete_loop_template(self, token: str, name: str) -> None: ...

    async def search_loops(
        self,
        token: str,
        *,
        template: dict[str, Any] | None = None,
        template_name: str | None = None,
        start: datetime,
        end: datetime,
        candidate_time_zone: str | None = None,
        limit: int = 5,
        cap_overrides: tuple[tuple[int, str], ...] = (),
    ) -> LoopSearchOut: ...

    async def book_loop(
        self,
        token: str,
        *,
        template: dict[str, Any],
        sessions: list[LoopSessionOut],
        candidate_name: str,
        candidate_email: str,
        candidate_time_zone: str | None,
        transaction_id: str,
        conversation_ref: dict[str, Any] | None = None,
        cap_override: tuple[str, str] | None = None,
    ) -> LoopOut: ...

    async def list_loops(self, token: str) -> list[LoopOut]: ...

    async def cancel_loop(self, token: str, loop_id: str) -> LoopOut: ...

    async def reschedule_loop(self, token: str, loop_id: str, sessions: list[LoopSessionOut]) -> LoopOut: ...


class CalendarServiceApi(LoopCalendarApi, Protocol):
    """What the bot needs from the Calendar Service (a fake implements it in dialog tests)."""

    async def find_slots(
        self,
        token: str,
        *,
        interviewers: list[str],
        duration_min: int,
        start: datetime,
        end: datetime,
        buffer_min: int = 0,
        rooms: list[str] | None = None,
        limit: int = 8,
        candidate_time_zone: str | None = None,
        candidate_day: tuple[str, str] | None = None,
    ) -> SlotsResult: ...

    async def create_interview(
        self,
        token: str,
        *,
        candidate_name: str,
        candidate_email: str,
        interviewers: list[str],
        start: datetime,
        end: datetime,
        idempotency_key: str,
        rooms: list[str] | None = None,
        time_zone: str | None = None,
        optional: list[str] | None = None,
        role: str | None = None,
        conversation_ref: dict[str, Any] | None = None,
    ) -> InterviewOut: ...

    async def list_interviews(self, token: str) -> list[InterviewOut]: ...

    async def cancel_interview(self, token: str, interview_id: str) -> InterviewOut: ...

    async def reschedule_interview(
        self, token: str, interview_id: str, *, start: datetime, end: datetime
    ) -> InterviewOut: ...

    async def resolve_people(self, token: str, queries: list[str]) -> list[list[PersonOut]]: ...

    async def check_people(self, token: str, queries: list[str]) -> list[PersonCheckOut]: ...

    async def my_time_zone(self, token: str) -> str | None: ...

    async def create_offer(
        self,
        token: str,
        *,
        interviewers: list[str],
        duration_min: int,
        window_start: datetime,
        window_end: datetime,
        candidate_name: str,
        candidate_time_zone: str | None = None,
        conversation_ref: dict[str, Any] | None = None,
        candidate_email: str | None = None,
        manager_time_zone: str | None = None,
        role: str | None = None,
        show_interviewer_names: bool = False,
        day_hours: tuple[int, int] | None = None,
    ) -> OfferOut: ...

    async def revoke_offer(self, token: str, offer_id: str) -> OfferOut: ...

    async def disconnect(self, token: str) -> None: ...


class CalendarServiceClient:
    """HTTP implementation of `CalendarServiceApi`. One per process; pass the shared session."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession, timeout_s: float = 25.0) -> None:
        self._base = base_url.rstrip("/") + "/v1"
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _call(
        self, method: str, path: str, token: str | None, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._session.request(
                method,
                self._base + path,
                json=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                doc = await resp.json(content_type=None) if resp.content_length != 0 else {}
                if resp.status >= 400:
                    raise error_from(resp.status, doc if isinstance(doc, dict) else {})
                return doc if isinstance(doc, dict) else {}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise errors.GraphUnavailableError("The calendar service is not reachable.") from exc

    async def find_slots(
        self,
        token: str,
        *,
        interviewers: list[str],
        duration_min: int,
        start: datetime,
        end: datetime,
        buffer_min: int = 0,
        rooms: list[str] | None = None,
        limit: int = 8,
        candidate_time_zone: str | None = None,
        candidate_day: tuple[str, str] | None = None,
    ) -> SlotsResult:
        """Open slots; with ``candidate_time_zone`` those inside the candidate's working day
        (``candidate_day`` = ("HH:MM", "HH:MM"), default 08:00-20:00) come first, the rest are
        marked ``outside_candidate_day``."""
        body: dict[str, Any] = {
            "interviewers": interviewers,
            "duration_min": duration_min,
            "start": format_time(start),
            "end": format_time(end),
            "buffer_min": buffer_min,
            "limit": limit,
        }
        if rooms:
            body["rooms"] = rooms
        if candidate_time_zone:
            body["candidate_time_zone"] = candidate_time_zone
            if candidate_day:
                body["candidate_day_start"], body["candidate_day_end"] = candidate_day
        return SlotsResult.from_json(await self._call("POST", "/slots/find", token, body))

    async def create_interview(
        self,
        token: str,
        *,
        candidate_name: str,
        candidate_email: str,
        interviewers: list[str],
        start: datetime,
        end: datetime,
        idempotency_key: str,
        rooms: list[str] | None = None,
        time_zone: str | None = None,
        optional: list[str] | None = None,
        role: str | None = None,
        conversation_ref: dict[str, Any] | None = None,
    ) -> InterviewOut:
        """Book an interview; ``role`` (optional) is shown on the panel's and the candidate's
        invites; ``conversation_ref`` is the chat drift cards are posted to (stored sealed)."""
        body: dict[str, Any] = {
            "candidate": {"name": candidate_name, "email": candidate_email},
            "interviewers": interviewers,
            "start": format_time(start),
            "end": format_time(end),
            "idempotency_key": idempotency_key,
        }
        if rooms:
            body["rooms"] = rooms
        if time_zone:
            body["time_zone"] = time_zone
        if optional:
            body["optional"] = optional
        if role:
            body["role"] = role
        if conversation_ref:
            body["conversation_ref"] = conversation_ref
        return InterviewOut.from_json(await self._call("POST", "/interviews", token, body))

    async def list_interviews(self, token: str) -> list[InterviewOut]:
        doc = await self._call("GET", "/interviews", token)
        return [InterviewOut.from_json(d) for d in doc.get("interviews", [])]

    async def cancel_interview(self, token: str, interview_id: str) -> InterviewOut:
        doc = await self._call("POST", f"/interviews/{_safe(interview_id)}/cancel", token, {})
        return InterviewOut.from_json(doc)

    async def reschedule_interview(
        self, token: str, interview_id: str, *, start: datetime, end: datetime
    ) -> InterviewOut:
        body = {"start": format_time(start), "end": format_time(end)}
        doc = await self._call("POST", f"/interviews/{_safe(interview_id)}/reschedule", token, body)
        return InterviewOut.from_json(doc)

    async def book_loop(
        self,
        token: str,
        *,
        template: dict[str, Any],
        sessions: list[LoopSessionOut],
        candidate_name: str,
        candidate_email: str,
        candidate_time_zone: str | None,
        transaction_id: str,
        conversation_ref: dict[str, Any] | None = None,
        cap_override: tuple[str, str] | None = None,
    ) -> LoopOut:
        body: dict[str, Any] = {
            "template": template,
            "sessions": [_session_json(s) for s in sessions],
            "candidate": {"name": candidate_name, "email": candidate_email},
            "transaction_id": transaction_id,
        }
        if candidate_time_zone:
            body["candidate_time_zone"] = candidate_time_zone
        if conversation_ref:
            body["conversation_ref"] = conversation_ref
        if cap_override:  # issue 18: (address, reason), audited by the service
            body["cap_override"] = {"address": cap_override[0], "reason": cap_override[1]}
        return LoopOut.from_json(await self._call("POST", "/loops", token, body))

    async def list_loops(self, token: str) -> list[LoopOut]:
        doc = await self._call("GET", "/loops", token)
        return [LoopOut.from_json(d) for d in doc.get("loops", [])]

    async def cancel_loop(self, token: str, loop_id: str) -> LoopOut:
        return LoopOut.from_json(await self._call("POST", f"/loops/{_safe(loop_id)}/cancel", token, {}))

    async def reschedule_loop(self, token: str, loop_id: str, sessions: list[LoopSessionOut]) -> LoopOut:
        body = {"sessions": [_session_json(s) for s in sessions]}
        return LoopOut.from_json(await self._call("POST", f"/loops/{_safe(loop_id)}/reschedule", token, body))

    async def resolve_people(self, token: str, queries: list[str]) -> list[list[PersonOut]]:
        doc = await self._call("POST", "/directory/resolve", token, {"queries": queries})
        return [
            [PersonOut(p["address"], p["display_name"], p["time_zone"], bool(p["is_room"])) for p in matches]
            for matches in doc.get("results", [])
        ]

    async def my_time_zone(self, token: str) -> str | None:
        """The signed-in user's mailbox time zone (IANA), ``None`` when unknown."""
        zone = (await self._call("GET", "/me/settings", token)).get("time_zone")
        return zone if isinstance(zone, str) and zone else None

    async def check_people(self, token: str, queries: list[str]) -> list[PersonCheckOut]:
        """Resolve and check a panel as typed: one status per name (``PERSON_STATUSES``)."""
        doc = await self._call("POST", "/directory/check", token, {"queries": queries})
        return [PersonCheckOut.from_json(p) for p in doc.get("people", [])]

    async def create_offer(
        self,
        token: str,
        *,
        interviewers: list[str],
        duration_min: int,
        window_start: datetime,
        window_end: datetime,
        candidate_name: str,
        candidate_time_zone: str | None = None,
        conversation_ref: dict[str, Any] | None = None,
        candidate_email: str | None = None,
        manager_time_zone: str | None = None,
        role: str | None = None,
        show_interviewer_names: bool = False,
        day_hours: tuple[int, int] | None = None,
    ) -> OfferOut:
        """Mint a candidate link. A known ``candidate_email`` is sealed with the offer (the page
        then does not ask for it); ``manager_time_zone`` (IANA) is used for the Teams notice;
        ``role`` is shown on the page, the interviewers' first names only with
        ``show_interviewer_names``; ``day_hours`` (start, end) is the candidate's day in their
        zone (08-20 by default): other times are folded away on the page."""
        body: dict[str, Any] = {
            "interviewers": interviewers,
            "duration_min": duration_min,
            "window_start": format_time(window_start),
            "window_end": format_time(window_end),
            "candidate_name": candidate_name,
        }
        if candidate_time_zone:
            body["candidate_time_zone"] = candidate_time_zone
        if candidate_email:
            body["candidate_email"] = candidate_email
        if manager_time_zone:
            body["manager_time_zone"] = manager_time_zone
        if conversation_ref:
            body["conversation_ref"] = conversation_ref
        if role:
            body["role"] = role
        if show_interviewer_names:
            body["show_interviewer_names"] = True
        if day_hours:
            body["day_start_hour"], body["day_end_hour"] = day_hours
        return OfferOut.from_json(await self._call("POST", "/offers", token, body))

    async def create_loop_offer(
        self,
        token: str,
        *,
        template: dict[str, Any],
        window_start: datetime,
        window_end: datetime,
        candidate_name: str,
        candidate_time_zone: str | None = None,
        conversation_ref: dict[str, Any] | None = None,
        candidate_email: str | None = None,
        manager_time_zone: str | None = None,
    ) -> OfferOut:
        """Mint a candidate link for a whole interview loop (issue 17): the page offers whole-loop
        options by day and one post books every session (``POST /v1/offers`` with ``loop_template``)."""
        body: dict[str, Any] = {
            "loop_template": template,
            "window_start": format_time(window_start),
            "window_end": format_time(window_end),
            "candidate_name": candidate_name,
        }
        optional = {
            "candidate_time_zone": candidate_time_zone,
            "candidate_email": candidate_email,
            "manager_time_zone": manager_time_zone,
            "conversation_ref": conversation_ref,
        }
        body |= {k: v for k, v in optional.items() if v}
        return OfferOut.from_json(await self._call("POST", "/offers", token, body))

    async def revoke_offer(self, token: str, offer_id: str) -> OfferOut:
        doc = await self._call("POST", f"/offers/{_safe(offer_id)}/revoke", token, {})
        return OfferOut.from_json(doc)

    async def disconnect(self, token: str) -> None:
        await self._call("POST", "/me/disconnect", token, {})

    # ---- candidate operations (capability token instead of a user token) ---------------------
    async def candidate_slots(self, capability: str, time_zone: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"token": capability}
        if time_zone:
            body["time_zone"] = time_zone
        return await self._call("POST", "/candidate/slots", None, body)

    async def candidate_book(
        self, capability: str, start: datetime, email: str | None = None, option: str | None = None
    ) -> dict[str, Any]:
        """Book a link; ``option``: a loop link's whole-loop option (``start``: its first session)."""
        body: dict[str, Any] = {"token": capability, "start": format_time(start)}
        if email:
            body["email"] = email
        if option:
            body["option"] = option
        return await self._call("POST", "/candidate/book", None, body)

    async def candidate_cancel(self, capability: str) -> dict[str, Any]:
        return await self._call("POST", "/candidate/cancel", None, {"token": capability})

    async def candidate_reschedule(
        self, capability: str, start: datetime, option: str | None = None
    ) -> dict[str, Any]:
        """Move a link's booking; ``option``: a loop link's whole-loop option (the loop moves whole)."""
        body: dict[str, Any] = {"token": capability, "start": format_time(start)}
        if option:
            body["option"] = option
        return await self._call("POST", "/candidate/reschedule", None, body)

    async def list_offers(self, token: str) -> list[OfferOut]:
        doc = await self._call("GET", "/offers", token)
        return [OfferOut.from_json(d) for d in doc.get("offers", [])]

    # ---- interview loops ---------------------------------------------------------------------
    async def list_loop_templates(self, token: str) -> list[LoopTemplateOut]:
        doc = await self._call("GET", "/loop-templates", token)
        return [LoopTemplateOut.from_json(d) for d in doc.get("templates", [])]

    async def save_loop_template(self, token: str, name: str, template: dict[str, Any]) -> LoopTemplateOut:
        doc = await self._call(
            "PUT", f"/loop-templates/{_template_name(name)}", token, {"template": template}
        )
        return LoopTemplateOut.from_json(doc)

    async def delete_loop_template(self, token: str, name: str) -> None:
        await self._call("DELETE", f"/loop-templates/{_template_name(name)}", token)

    async def search_loops(
        self,
        token: str,
        *,
        template: dict[str, Any] | None = None,
        template_name: str | None = None,
        start: datetime,
        end: datetime,
        candidate_time_zone: str | None = None,
        limit: int = 5,
        cap_overrides: tuple[tuple[int, str], ...] = (),
    ) -> LoopSearchOut:
        """The best ``limit`` loops of ``template`` (or the saved ``template_name``: exactly one);
        ``cap_overrides``: ``(session, address)`` searched as if under their cap there (issue 18)."""
        body: dict[str, Any] = {"start": format_time(start), "end": format_time(end), "limit": limit}
        if template is not None:
            body["template"] = template
        if template_name is not None:
            body["template_name"] = template_name
        if candidate_time_zone:
            body["candidate_time_zone"] = candidate_time_zone
        if cap_overrides:
            body["cap_overrides"] = [{"session": i, "address": a} for i, a in cap_overrides]
        return LoopSearchOut.from_json(await self._call("POST", "/loops/search", token, body))

    # ---- interviewer pools (issue 18; PoolCalendarApi) -----------------------------------------
    async def my_load(self, token: str) -> MyLoadOut:
        return MyLoadOut.from_json(await self._call("GET", "/me/load", token))

    async def list_pools(self, token: str) -> list[PoolSummaryOut]:
        doc = await self._call("GET", "/pools", token)
        return [PoolSummaryOut.from_json(d) for d in doc.get("pools", [])]

    async def pool_card(self, token: str, pool_id: str) -> PoolCardOut:
        return PoolCardOut.from_json(await self._call("GET", f"/pools/{_safe(pool_id)}", token))

    async def change_pool_member(self, token: str, pool_id: str, change: PoolMemberRequest) -> PoolCardOut:
        doc = await self._call("POST", f"/pools/{_safe(pool_id)}/members", token, change.to_json())
        return PoolCardOut.from_json(doc)

    # ---- the drift watcher (docs/watcher.md) -------------------------------------------------
    async def list_drift(self, token: str) -> list[dict[str, Any]]:
        """The caller's open drift items, each with its repairs."""
        doc = await self._call("GET", "/watch/drift", token)
        return [d for d in doc.get("drift", []) if isinstance(d, dict)]

    async def apply_repair(self, token: str, drift_id: str, repair: str) -> dict[str, Any]:
        """Apply one repair of a drift item (one Outlook update). Raises: ConflictError,
        SlotTakenError, NotFoundError, PermissionDeniedError, ValidationError."""
        return await self._call("POST", f"/watch/drift/{_safe(drift_id)}/apply", token, {"repair": repair})

    async def watch_feed(self, feed_key: str, poller: str | None = None) -> list[dict[str, Any]]:
        """Undelivered drift items for the bot's poller (service-to-service: the shared
        ``OPENSLOT_WATCH_FEED_KEY``, never a user token), leased to ``poller``."""
        doc = await self._feed_call("/watch/feed", feed_key, {"poller": poller} if poller else {})
        return [d for d in doc.get("items", []) if isinstance(d, dict)]

    async def watch_feed_ack(self, feed_key: str, ids: list[str]) -> int:
        """Mark drift items delivered; the number marked."""
        doc = await self._feed_call("/watch/feed/ack", feed_key, {"ids": ids})
        return int(doc.get("acked", 0))

    async def _feed_call(self, path: str, feed_key: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Accept": "application/json", FEED_KEY_HEADER: feed_key}
        try:
            async with self._session.post(
                self._base + path, json=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as resp:
                doc = await resp.json(content_type=None) if resp.content_length != 0 else {}
                if resp.status >= 400:
                    raise error_from(resp.status, doc if isinstance(doc, dict) else {})
                return doc if isinstance(doc, dict) else {}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise errors.GraphUnavailableError("The calendar service is not reachable.") from exc

    async def forward_notification(
        self, query_string: str, body: bytes, content_type: str | None, timeout_s: float
    ) -> tuple[int, str, bytes]:
        """Relay a Graph notification POST unchanged; (status, Content-Type, body) of the answer.
        Raises: GraphUnavailableError (unreachable or slower than ``timeout_s``)."""
        url = URL(
            self._base + "/watch/notifications" + (f"?{query_string}" if query_string else ""), encoded=True
        )
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            async with self._session.post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=False,
            ) as resp:
                return resp.status, resp.headers.get("Content-Type", "application/json"), await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise errors.GraphUnavailableError("The calendar service is not reachable.") from exc


@runtime_checkable
class PoolCalendarApi(Protocol):
    """What the bot's pool commands need ("my load", "pools", "pool <name>"; issue 18)."""

    async def my_load(self, token: str) -> MyLoadOut: ...

    async def list_pools(self, token: str) -> list[PoolSummaryOut]: ...

    async def pool_card(self, token: str, pool_id: str) -> PoolCardOut: ...

    async def change_pool_member(
        self, token: str, pool_id: str, change: PoolMemberRequest
    ) -> PoolCardOut: ...


def _session_json(s: LoopSessionOut) -> dict[str, Any]:
    """A session as ``POST /v1/loops`` and its reschedule take it (index, times, room; a pooled
    session's picked members and trainees, as the search named them)."""
    doc: dict[str, Any] = {
        "index": s.index,
        "start": format_time(s.start),
        "end": format_time(s.end),
        "room": s.room,
    }
    if s.pool is not None:
        doc |= {"pool_members": list(s.pool_members), "trainees": list(s.trainees)}
    return doc


def _safe(identifier: str) -> str:
    if not identifier.replace("-", "").replace("_", "").isalnum() or len(identifier) > 64:
        raise errors.ValidationError("id", "is not a valid identifier")
    return identifier


_NAME = re.compile(TEMPLATE_NAME["pattern"].removeprefix("^").removesuffix("\\Z"))


def _template_name(name: str) -> str:
    """A template name as one path segment (percent-encoded). Raises: ValidationError."""
    if not _NAME.fullmatch(name) or len(name) > TEMPLATE_NAME["maxLength"]:
        raise errors.ValidationError("name", "is not a valid template name")
    return quote(name, safe="")
