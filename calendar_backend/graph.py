"""GraphClient: the Microsoft Graph v1.0 calls OpenSlot makes, over plain HTTPS with aiohttp.

HTTP and JSON stop here: callers get domain values or an error from `calendar_backend.errors`.

Resilience (platform.md §C10, security.md requirement 27): on 429/503/504 (and on transport errors) a
request is retried after `Retry-After` when Graph sends one (one longer than `max_retry_after_s` ends
the retries and is reported, never cut short), else after an exponential backoff with full jitter
(bounded by `max_backoff_s`), at most `max_attempts` times; then `GraphThrottledError` /
`GraphUnavailableError`. At most `concurrency` requests are in flight per mailbox and per process.
Event creation is retried safely because every create carries a `transactionId` that Graph
de-duplicates on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp

from calendar_backend.errors import (
    GraphThrottledError,
    GraphUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    ReconnectRequiredError,
    UpstreamError,
)
from calendar_backend.timezones import parse_graph_datetime

log = logging.getLogger(__name__)

MAX_SCHEDULES_PER_REQUEST = 20
# getSchedule answers 400 for a window of 62 days or more (Microsoft's docs have also quoted 42):
# longer reads are split into pieces of at most this span, and the answers merged.
MAX_SCHEDULE_SPAN = timedelta(days=31)
MAX_BATCH_ITEMS = 20  # Graph JSON batching limit (platform.md C9)
_RETRY_STATUSES = frozenset({429, 503, 504})
_ADDRESS = re.compile(r"^[A-Za-z0-9._%+'\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$")
_EVENT_ID = re.compile(r"^[A-Za-z0-9=_\-+/.]{1,512}$")


@dataclass(frozen=True, slots=True)
class ScheduleItem:
    """One free/busy item: UTC bounds and Graph's `status` (no subject, no location)."""

    start: datetime
    end: datetime
    status: str


@dataclass(frozen=True, slots=True)
class Schedule:
    """getSchedule's answer for one mailbox; `error` set means it could not be read."""

    address: str
    items: tuple[ScheduleItem, ...] = ()
    working_hours: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class CallStats:
    """Round trips and Graph request ids of one use case, for the audit log and benchmarks."""

    requests: int = 0
    request_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One `$batch` sub-request: a unique `id`, a method and a URL relative to the Graph root."""

    id: str
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None

    def wire(self) -> dict[str, Any]:
        """The sub-request as Graph's JSON batching format spells it (`Content-Type` with a body)."""
        item: dict[str, Any] = {"id": self.id, "method": self.method, "url": self.url}
        headers = dict(self.headers)
        if self.body is not None:
            headers.setdefault("Content-Type", "application/json")
            item["body"] = self.body
        if headers:
            item["headers"] = headers
        return item


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    """One `$batch` sub-response: its status, headers and JSON body ({} when none)."""

    id: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


Sleep = Callable[[float], Awaitable[None]]


class GraphClient:
    """Thin, typed, resilient access to the Graph endpoints OpenSlot uses."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        timeout_s: float = 20.0,
        max_attempts: int = 5,
        max_backoff_s: float = 30.0,
        concurrency: int = 4,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        max_retry_after_s: float = 120.0,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_attempts = max_attempts
        self._max_backoff = max_backoff_s
        self._max_retry_after = max_retry_after_s
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._global = asyncio.Semaphore(concurrency * 4)
        self._per_mailbox: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(concurrency)
        )

    # ---- core request with retries ---------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        token: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        mailbox: str = "",
        stats: CallStats | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Send one Graph request with retries; returns (status, body) for non-retryable answers.
        An absolute ``path`` (a nextLink) not under the base is refused unsent: the token is Graph's."""
        absolute = path.lower().startswith(("https://", "http://"))
        if absolute and not path.startswith(self._base + "/"):
            log.warning("graph link refused: not under the Graph base URL")
            raise GraphUnavailableError()
        url = path if absolute else self._base + path
        hdrs = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        hdrs.update(headers or {})
        delay = 0.5
        for attempt in range(1, self._max_attempts + 1):
            async with self._per_mailbox[mailbox.lower()], self._global:
                try:
                    status, body, retry_after, request_id = await self._send(method, url, hdrs, json)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status, body, retry_after, request_id = 599, {}, None, ""
                    log.warning(
                        "graph %s transport error %s (attempt %d)", method, type(exc).__name__, attempt
                    )
            if stats is not None:
                stats.requests += 1
                if request_id:
                    stats.request_ids.append(request_id)
            if status not in _RETRY_STATUSES and status != 599:
                return status, body
            if attempt == self._max_attempts or (
                retry_after is not None and retry_after > self._max_retry_after
            ):
                break  # never call again before Graph's Retry-After: report it instead
            wait = (
                retry_after
                if retry_after is not None
                else self._rng.uniform(0, min(delay, self._max_backoff))
            )
            delay *= 2
            await self._sleep(wait)
        if status == 429:
            raise GraphThrottledError(retry_after_s=retry_after or delay)
        raise GraphUnavailableError()

    async def _send(
        self, method: str, url: str, headers: dict[str, str], json: Any
    ) -> tuple[int, dict[str, Any], float | None, str]:
        async with self._session.request(
            method, url, json=json, headers=headers, timeout=self._timeout, allow_redirects=False
        ) as resp:
            try:
                body = await resp.json(content_type=None) if resp.status != 204 else {}
            except ValueError:
                body = {}
            retry_after = _parse_retry_after(resp.headers.get("Retry-After"))
            return (
                resp.status,
                body if isinstance(body, dict) else {},
                retry_after,
                resp.headers.get("request-id", ""),
            )

    # ---- JSON batching ---------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The Graph root every relative path is sent to (no trailing slash)."""
        return self._base

    async def batch(
        self, token: str, items: Sequence[BatchItem], *, stats: CallStats | None = None
    ) -> dict[str, BatchAnswer]:
        """Send `items` through `POST /$batch`, ≤20 per batch, the batches concurrently.

        Sub-requests answered 429/503/504 are retried individually (only those) with the rules of
        `request`: after the longest `Retry-After` among them, else exponential backoff with full
        jitter, at most `max_attempts` rounds. Returns one answer per item id (order-free).

        Raises:
            ValueError: duplicate item ids.
            GraphThrottledError / GraphUnavailableError: a sub-request still throttled or
                unavailable after the retries (or a `Retry-After` above `max_retry_after_s`).
            ReconnectRequiredError, PermissionDeniedError, UpstreamError: the batch itself failed.
        """
        if len({i.id for i in items}) != len(items):
            raise ValueError("batch item ids must be unique")
        answers: dict[str, BatchAnswer] = {}
        pending = list(items)
        delay = 0.5
        for attempt in range(1, self._max_attempts + 1):
            for answer in await self._batch_round(token, pending, stats):
                answers[answer.id] = answer
            pending = [i for i in pending if answers[i.id].status in _RETRY_STATUSES]
            if not pending:
                return answers
            waits = [_parse_retry_after(answers[i.id].headers.get("Retry-After")) for i in pending]
            retry_after = max((w for w in waits if w is not None), default=None)
            if attempt == self._max_attempts or (
                retry_after is not None and retry_after > self._max_retry_after
            ):
                break
            wait = (
                retry_after
                if retry_after is not None
                else self._rng.uniform(0, min(delay, self._max_backoff))
            )
            delay *= 2
            await self._sleep(wait)
        if any(answers[i.id].status == 429 for i in pending):
            raise GraphThrottledError(retry_after_s=retry_after or delay)
        raise GraphUnavailableError()

    async def _batch_round(
        self, token: str, items: Sequence[BatchItem], stats: CallStats | None
    ) -> list[BatchAnswer]:
        chunks = [items[i : i + MAX_BATCH_ITEMS] for i in range(0, len(items), MAX_BATCH_ITEMS)]
        parts = await asyncio.gather(*(self._batch_chunk(token, c, stats) for c in chunks))
        return [answer for part in parts for answer in part]

    async def _batch_chunk(
        self, token: str, items: Sequence[BatchItem], stats: CallStats | None
    ) -> list[BatchAnswer]:
        status, doc = await self.request(
            "POST", "/$batch", token, json={"requests": [i.wire() for i in items]}, stats=stats
        )
        raise_for_status(status, doc)
        found: dict[str, BatchAnswer] = {}
        for raw in doc.get("responses", []):
            if not isinstance(raw, dict):
                continue
            headers = {str(k): str(v) for k, v in (raw.get("headers") or {}).items()}
            body = raw.get("body")
            found[str(raw.get("id"))] = BatchAnswer(
                str(raw.get("id")), int(raw.get("status", 0)), body if isinstance(body, dict) else {}, headers
            )
            if stats is not None and headers.get("request-id"):
                stats.request_ids.append(headers["request-id"])
        return [found.get(i.id) or BatchAnswer(i.id, 502, {}, {}) for i in items]

    # ---- free/busy -------------------------------------------------------------------------
    async def get_schedules(
        self,
        token: str,
        requester: str,
        addresses: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        interval_min: int = 15,
        stats: CallStats | None = None,
    ) -> dict[str, Schedule]:
        """Free/busy for every address, ≤20 per request and ≤`MAX_SCHEDULE_SPAN` per window,
        all pieces in parallel; one merged answer each (`merge_schedules`)."""
        chunks = [
            list(addresses[i : i + MAX_SCHEDULES_PER_REQUEST])
            for i in range(0, len(addresses), MAX_SCHEDULES_PER_REQUEST)
        ]
        pieces = schedule_pieces(start, end)
        results = await asyncio.gather(
            *(
                self._get_schedule_chunk(token, requester, chunk, lo, hi, interval_min, stats)
                for chunk in chunks
                for lo, hi in pieces
            )
        )
        merged: dict[str, Schedule] = {}
        for n, chunk in enumerate(chunks):
            merged.update(merge_schedules(results[n * len(pieces) : (n + 1) * len(pieces)], chunk))
        return merged

    async def _get_schedule_chunk(
        self,
        token: str,
        requester: str,
        addresses: list[str],
        start: datetime,
        end: datetime,
        interval_min: int,
        stats: CallStats | None,
    ) -> dict[str, Schedule]:
        status, doc = await self.request(
            "POST",
            schedule_path(requester),
            token,
            json=schedule_body(addresses, start, end, interval_min),
            headers={"Prefer": 'outlook.timezone="UTC"'},
            mailbox=requester,
            stats=stats,
        )
        raise_for_status(status, doc)
        return schedules_from(doc, addresses)

    # ---- directory ---------------------------------------------------------------------------
    async def find_people(
        self, token: str, query: str, stats: CallStats | None = None
    ) -> list[dict[str, Any]]:
        """Users whose display name or mail starts with `query` (or equals it, for an address)."""
        q = query.replace("'", "''")
        flt = f"mail eq '{q}'" if "@" in query else f"startswith(displayName,'{q}') or startswith(mail,'{q}')"
        path = (
            f"/users?$filter={quote(flt)}&$top=10"
            "&$select=id,displayName,mail,userPrincipalName,accountEnabled"
        )
        status, doc = await self.request("GET", path, token, stats=stats)
        raise_for_status(status, doc)
        return [u for u in doc.get("value", []) if isinstance(u, dict)]

    async def list_rooms(self, token: str, stats: CallStats | None = None) -> list[dict[str, Any]]:
        """All rooms of the tenant (following paging)."""
        rooms: list[dict[str, Any]] = []
        path: str | None = "/places/microsoft.graph.room?$top=100"
        while path:
            status, doc = await self.request("GET", path, token, stats=stats)
            raise_for_status(status, doc)
            rooms.extend(doc.get("value", []))
            path = doc.get("@odata.nextLink")
        return rooms

    async def users_delta(
        self, token: str, delta_link: str | None, stats: CallStats | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Directory changes since `delta_link` (or a full sync); returns (changes, next delta)."""
        path: str | None = delta_link or "/users/delta?$select=id,accountEnabled"
        changes: list[dict[str, Any]] = []
        next_delta = ""
        while path:
            status, doc = await self.request("GET", path, token, stats=stats)
            raise_for_status(status, doc)
            changes.extend(doc.get("value", []))
            path = doc.get("@odata.nextLink")
            next_delta = str(doc.get("@odata.deltaLink", next_delta))
        return changes, next_delta

    # ---- events ------------------------------------------------------------------------------
    async def find_event_by_transaction(
        self, token: str, organizer: str, transaction_id: str, *, stats: CallStats | None = None
    ) -> dict[str, Any] | None:
        """The organizer's event created with `transaction_id`, or None (crash recovery).

        Raises the `calendar_backend.errors` tree like every call (never None on a Graph failure).
        """
        if not re.fullmatch(r"[A-Za-z0-9\-]{1,64}", transaction_id):
            raise ValueError("not a transaction id")
        flt = quote(f"transactionId eq '{transaction_id}'")
        path = (
            f"/users/{address_segment(organizer)}/events?$filter={flt}"
            "&$select=id,transactionId,onlineMeeting,isCancelled,attendees&$top=5"
        )
        status, doc = await self.request("GET", path, token, mailbox=organizer, stats=stats)
        raise_for_status(status, doc)
        found = [
            e
            for e in doc.get("value", [])
            if isinstance(e, dict) and e.get("transactionId") == transaction_id
        ]
        return found[0] if found else None

    async def get_event(
        self, token: str, organizer: str, event_id: str, *, stats: CallStats | None = None
    ) -> tuple[datetime, datetime, bool] | None:
        """An event's (start, end, isCancelled) in UTC, or None when it is gone (recovery)."""
        path = (
            f"/users/{address_segment(organizer)}/events/{event_id_segment(event_id)}"
            "?$select=start,end,isCancelled"
        )
        status, doc = await self.request(
            "GET", path, token, mailbox=organizer, stats=stats, headers={"Prefer": 'outlook.timezone="UTC"'}
        )
        if status == 404:
            return None
        raise_for_status(status, doc)
        return _utc(doc["start"]), _utc(doc["end"]), bool(doc.get("isCancelled"))

    async def create_event(
        self, token: str, organizer: str, event: dict[str, Any], *, stats: CallStats | None = None
    ) -> dict[str, Any]:
        """Create an event in the organizer's calendar; `event` must carry a `transactionId`."""
        if not event.get("transactionId"):
            raise ValueError("events are created with a transactionId")
        status, doc = await self.request(
            "POST",
            f"/users/{address_segment(organizer)}/events",
            token,
            json=event,
            mailbox=organizer,
            stats=stats,
        )
        raise_for_status(status, doc)
        return doc

    async def update_event(
        self,
        token: str,
        organizer: str,
        event_id: str,
        patch: dict[str, Any],
        *,
        stats: CallStats | None = None,
    ) -> dict[str, Any]:
        """PATCH an event OpenSlot created."""
        status, doc = await self.request(
            "PATCH",
            f"/users/{address_segment(organizer)}/events/{event_id_segment(event_id)}",
            token,
            json=patch,
            mailbox=organizer,
            stats=stats,
        )
        raise_for_status(status, doc)
        return doc

    async def cancel_event(
        self, token: str, organizer: str, event_id: str, comment: str = "", *, stats: CallStats | None = None
    ) -> None:
        """Cancel a meeting as its organizer (attendees get a cancellation)."""
        status, doc = await self.request(
            "POST",
            f"/users/{address_segment(organizer)}/events/{event_id_segment(event_id)}/cancel",
            token,
            json={"comment": comment},
            mailbox=organizer,
            stats=stats,
        )
        if status == 404:
            return  # already gone: cancelling is idempotent
        raise_for_status(status, doc)


def schedule_pieces(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of at most `MAX_SCHEDULE_SPAN` each."""
    pieces: list[tuple[datetime, datetime]] = []
    lo = start
    while True:
        hi = min(lo + MAX_SCHEDULE_SPAN, end)
        pieces.append((lo, hi))
        if hi >= end:
            return pieces
        lo = hi


def merge_schedules(parts: Sequence[dict[str, Schedule]], addresses: Sequence[str]) -> dict[str, Schedule]:
    """One `Schedule` per address from the answers for consecutive pieces of a window.

    An error in any piece makes the whole schedule that error (never half a calendar). Items are
    not clipped by Graph, so one spanning a cut comes back in both pieces: duplicates are dropped.
    Working hours come from the first piece.
    """
    merged: dict[str, Schedule] = {}
    for address in addresses:
        key = address.lower()
        mine = [part[key] for part in parts]
        failed = next((s for s in mine if s.error), None)
        if failed is not None:
            merged[key] = failed
            continue
        items = sorted(dict.fromkeys(i for s in mine for i in s.items), key=lambda i: (i.start, i.end))
        merged[key] = Schedule(mine[0].address, tuple(items), mine[0].working_hours)
    return merged


def schedule_path(requester: str) -> str:
    """The getSchedule path of `requester`'s calendar (relative to the Graph root)."""
    return f"/users/{address_segment(requester)}/calendar/getSchedule"


def schedule_body(
    addresses: Sequence[str], start: datetime, end: datetime, interval_min: int
) -> dict[str, Any]:
    """getSchedule's request body for `addresses` (≤20) over [start, end) in UTC."""
    return {
        "schedules": list(addresses),
        "startTime": {"dateTime": _graph_time(start), "timeZone": "UTC"},
        "endTime": {"dateTime": _graph_time(end), "timeZone": "UTC"},
        "availabilityViewInterval": interval_min,
    }


def schedules_from(doc: dict[str, Any], addresses: Sequence[str]) -> dict[str, Schedule]:
    """getSchedule's answer as one `Schedule` per asked address (lower-cased keys).

    An address Graph did not answer for gets `error="missing"` (never treated as free).
    """
    found: dict[str, Schedule] = {}
    for info in doc.get("value", []):
        address = str(info.get("scheduleId", ""))
        if info.get("error"):
            code = str(info["error"].get("responseCode") or "error")
            found[address.lower()] = Schedule(address=address, error=code)
            continue
        items = tuple(
            ScheduleItem(_utc(i["start"]), _utc(i["end"]), str(i.get("status", "unknown")))
            for i in info.get("scheduleItems", [])
        )
        found[address.lower()] = Schedule(
            address=address, items=items, working_hours=info.get("workingHours")
        )
    return {a.lower(): found.get(a.lower(), Schedule(address=a, error="missing")) for a in addresses}


def raise_for_status(status: int, doc: dict[str, Any]) -> None:
    """Raise a Graph error answer as the error tree (401 reconnect, 403, 404, else upstream)."""
    if status < 400:
        return
    code = str((doc.get("error") or {}).get("code", ""))
    if status == 401:
        raise ReconnectRequiredError()
    if status == 403:
        raise PermissionDeniedError("Microsoft 365 refused access to that calendar.")
    if status == 404:
        raise NotFoundError()
    log.warning("graph error %d %s", status, code[:64])
    raise UpstreamError()


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)


def address_segment(value: str) -> str:
    """A mailbox address or Entra object id, quoted for a Graph path (else ValueError)."""
    if not _ADDRESS.match(value) and not re.fullmatch(r"[0-9a-fA-F\-]{36}", value):
        raise ValueError("not a mailbox address or object id")
    return quote(value, safe="@")


def event_id_segment(value: str) -> str:
    """A Graph event id, quoted for a Graph path (else ValueError)."""
    if not _EVENT_ID.match(value):
        raise ValueError("not an event id")
    return quote(value, safe="")


def _graph_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _utc(dtz: dict[str, Any]) -> datetime:
    """Parse a dateTimeTimeZone that we asked to be in UTC."""
    return parse_graph_datetime(str(dtz["dateTime"]), str(dtz.get("timeZone", "UTC")))


def window_days(start: datetime, end: datetime) -> int:
    """Whole days spanned by a window (getSchedule accepts < 62)."""
    return int((end - start) / timedelta(days=1)) + 1
