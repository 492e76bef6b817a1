"""The Graph calls of the drift watcher: `/subscriptions` and no-content reads of one event.

They use `GraphClient.request` (retries, per-mailbox concurrency) and live here rather than in
graph.py only because that module is at its 600-line limit; they are the same client's calls.

Reads never ask for content: `EVENT_FIELDS` is the whole `$select` (start, end, isCancelled,
responseStatus, attendees for their status, iCalUId to find an interviewer's copy). No subject,
body, location or attendees' other events (calendar delta is not used: it cannot `$select`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from calendar_backend.graph import (
    CallStats,
    GraphClient,
    Schedule,
    address_segment,
    event_id_segment,
    raise_for_status,
    schedule_body,
    schedule_path,
    schedules_from,
)
from calendar_backend.outbound import OutboundPolicy, check_outbound_url
from calendar_backend.timezones import parse_graph_datetime

EVENT_FIELDS = "start,end,isCancelled,responseStatus,attendees,iCalUId"
_UTC = {"Prefer": 'outlook.timezone="UTC"'}
_SUB_ID = re.compile(r"[A-Za-z0-9\-]{1,128}")


@dataclass(frozen=True, slots=True)
class EventStatus:
    """One event as the watcher sees it: times, cancelled, the owner's answer, attendees' answers."""

    start: datetime
    end: datetime
    is_cancelled: bool
    response: str  # the mailbox owner's responseStatus.response
    attendees: dict[str, tuple[str, str]]  # address -> (type, response)
    ical_uid: str


def _utc(dtz: dict[str, Any]) -> datetime:
    return parse_graph_datetime(str(dtz["dateTime"]), str(dtz.get("timeZone", "UTC")))


def _status(doc: dict[str, Any]) -> EventStatus:
    people: dict[str, tuple[str, str]] = {}
    for a in doc.get("attendees") or []:
        if not isinstance(a, dict):
            continue
        address = str((a.get("emailAddress") or {}).get("address", "")).lower()
        if address:
            people[address] = (
                str(a.get("type", "required")),
                str((a.get("status") or {}).get("response", "none")),
            )
    return EventStatus(
        _utc(doc["start"]),
        _utc(doc["end"]),
        bool(doc.get("isCancelled")),
        str((doc.get("responseStatus") or {}).get("response", "none")),
        people,
        str(doc.get("iCalUId", "")),
    )


async def read_event(
    graph: GraphClient, token: str, mailbox: str, event_id: str, *, stats: CallStats | None = None
) -> EventStatus | None:
    """One event of ``mailbox`` by id with `EVENT_FIELDS` only; None when it is gone (404)."""
    path = f"/users/{address_segment(mailbox)}/events/{event_id_segment(event_id)}?$select={EVENT_FIELDS}"
    status, doc = await graph.request("GET", path, token, mailbox=mailbox, stats=stats, headers=_UTC)
    if status == 404:
        return None
    raise_for_status(status, doc)
    return _status(doc)


async def find_copy(
    graph: GraphClient, token: str, mailbox: str, ical_uid: str, *, stats: CallStats | None = None
) -> tuple[str, EventStatus] | None:
    """An attendee's copy of a meeting (same iCalUId): ``(its id, status)``, else None."""
    if not re.fullmatch(r"[A-Za-z0-9]{1,256}", ical_uid):
        raise ValueError("not an iCalUId")
    flt = quote(f"iCalUId eq '{ical_uid}'")
    path = f"/users/{address_segment(mailbox)}/events?$filter={flt}&$select=id,{EVENT_FIELDS}&$top=5"
    status, doc = await graph.request("GET", path, token, mailbox=mailbox, stats=stats, headers=_UTC)
    raise_for_status(status, doc)
    for event in doc.get("value", []):
        if isinstance(event, dict) and event.get("id") and not event.get("isCancelled"):
            return str(event["id"]), _status(event)
    return None


async def free_busy(
    graph: GraphClient,
    token: str,
    requester: str,
    addresses: list[str],
    start: datetime,
    end: datetime,
    *,
    stats: CallStats | None = None,
) -> dict[str, Schedule]:
    """One getSchedule (≤20 addresses, a short window) keeping every item as Graph sent it:
    `GraphClient.get_schedules` merges pieces and drops equal items, which would hide a new
    meeting at exactly the interview's time."""
    status, doc = await graph.request(
        "POST",
        schedule_path(requester),
        token,
        json=schedule_body(addresses, start, end, 15),
        headers=_UTC,
        mailbox=requester,
        stats=stats,
    )
    raise_for_status(status, doc)
    return schedules_from(doc, addresses)


def notification_policy(url: str, dev: bool) -> OutboundPolicy:
    """The outbound-URL policy that accepts our own notification URL (its host, its port)."""
    parts = urlsplit(url)
    port = parts.port
    return OutboundPolicy((str(parts.hostname or ""),), frozenset({port} if port else set()), dev)


def _graph_instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


async def create_subscription(
    graph: GraphClient,
    token: str,
    mailbox: str,
    notification_url: str,
    client_state: str,
    expires: datetime,
    *,
    dev: bool = False,
    stats: CallStats | None = None,
) -> tuple[str, datetime]:
    """Subscribe to ``mailbox``'s events (basic notifications, created/updated/deleted); the
    lifecycle URL is the same route. Returns (subscription id, expiration)."""
    check_outbound_url(notification_url, notification_policy(notification_url, dev))
    body = {
        "changeType": "created,updated,deleted",
        "resource": f"/users/{address_segment(mailbox)}/events",
        "notificationUrl": notification_url,
        "lifecycleNotificationUrl": notification_url,
        "clientState": client_state,
        "expirationDateTime": _graph_instant(expires),
    }
    status, doc = await graph.request(
        "POST", "/subscriptions", token, json=body, mailbox=mailbox, stats=stats
    )
    raise_for_status(status, doc)
    sub_id = str(doc.get("id", ""))
    if not _SUB_ID.fullmatch(sub_id):
        raise ValueError("Graph answered a subscription without a valid id")
    return sub_id, _parse(doc.get("expirationDateTime"), expires)


async def renew_subscription(
    graph: GraphClient, token: str, sub_id: str, expires: datetime, *, stats: CallStats | None = None
) -> datetime:
    """PATCH the expiration (also reauthorizes with this token). Raises NotFoundError when gone."""
    if not _SUB_ID.fullmatch(sub_id):
        raise ValueError("not a subscription id")
    status, doc = await graph.request(
        "PATCH",
        f"/subscriptions/{sub_id}",
        token,
        json={"expirationDateTime": _graph_instant(expires)},
        stats=stats,
    )
    raise_for_status(status, doc)
    return _parse(doc.get("expirationDateTime"), expires)


async def delete_subscription(
    graph: GraphClient, token: str, sub_id: str, *, stats: CallStats | None = None
) -> None:
    if not _SUB_ID.fullmatch(sub_id):
        raise ValueError("not a subscription id")
    status, doc = await graph.request("DELETE", f"/subscriptions/{sub_id}", token, stats=stats)
    if status != 404:
        raise_for_status(status, doc)


def _parse(raw: Any, fallback: datetime) -> datetime:
    if not isinstance(raw, str):
        return fallback
    text = re.sub(r"(\.\d{6})\d+", r"\1", raw.strip().replace("Z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return fallback
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
