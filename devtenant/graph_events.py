"""Graph v1.0 event routes of devtenant: list, get, create, update, delete, cancel, respond.

Meetings are delivered as Exchange does: the organizer's event lives in the organizer's mailbox and
every attendee that is a tenant user or room gets its own copy (new `id`, same `iCalUId`,
`isOrganizer` false). Users answer `none`; rooms with `bookingType` "standard" auto-accept, or
decline when their calendar is already busy then. Organizer updates propagate to the copies
(removed attendees' copies become `isCancelled`); the organizer's DELETE or `cancel` removes the
event and cancels every copy.

`transactionId` de-duplicates creation per organizer: a repeated POST answers 201 with the
original event and creates nothing (tenant.transactions maps the id to (mailbox id, event id)).
`FaultPlan.drop_create_response` > 0 makes the next creations succeed but answer 504.
Only stored events are addressable by id (series masters, single instances, exceptions).
"""

from __future__ import annotations

import copy
import re
import secrets
from datetime import datetime
from typing import Any

from devtenant import recurrence, zones
from devtenant.graph_access import OWNER_RANK, etag_of, log_event_read, open_calendar, render_event
from devtenant.graph_http import (
    GRAPH_METADATA,
    GraphError,
    GraphRequest,
    GraphResponse,
    json_answer,
    merge_headers,
    next_link,
    page_size,
    preferred_zone,
    route,
    select_fields,
    skip_of,
    zone_headers,
)
from devtenant.tenant import DevTenant, JsonDict

_WRITABLE = (
    "subject",
    "body",
    "start",
    "end",
    "location",
    "locations",
    "attendees",
    "showAs",
    "sensitivity",
    "importance",
    "isAllDay",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "isReminderOn",
    "reminderMinutesBeforeStart",
    "responseRequested",
    "categories",
    "allowNewTimeProposals",
    "hideAttendees",
    "recurrence",
)
_SHARED = (
    "subject",
    "body",
    "start",
    "end",
    "location",
    "locations",
    "attendees",
    "isAllDay",
    "sensitivity",
    "importance",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "onlineMeeting",
    "recurrence",
    "organizer",
    "originalStartTimeZone",
    "originalEndTimeZone",
)
_NO_TIME = "0001-01-01T00:00:00Z"
_NOT_FOUND = "The specified object was not found in the store."
_LIST_FILTER = re.compile(r"^\s*(transactionId|iCalUId|subject)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def _now(tenant: DevTenant) -> str:
    return zones.format_utc_z(tenant.clock())


def _new_id() -> str:
    return "AAMkAGI2" + secrets.token_urlsafe(24).replace("-", "A").replace("_", "B") + "AAA="


def touch(tenant: DevTenant, event: JsonDict) -> None:
    event["changeKey"] = secrets.token_urlsafe(12)
    event["lastModifiedDateTime"] = _now(tenant)


def address_of(entry: Any) -> str:
    email = entry.get("emailAddress") if isinstance(entry, dict) else None
    return str((email or {}).get("address") or "").lower()


def is_organizer(tenant: DevTenant, mailbox: JsonDict, event: JsonDict) -> bool:
    """Whether `mailbox` organizes `event` (explicit `isOrganizer`, else by organizer address)."""
    if "isOrganizer" in event:
        return bool(event["isOrganizer"])
    organizer = address_of(event.get("organizer"))
    return not organizer or organizer == tenant.mailbox_address(mailbox).lower()


def _find_event(tenant: DevTenant, mailbox: JsonDict, event_id: str) -> JsonDict:
    for event in tenant.events_of(mailbox):
        if str(event.get("id")) == event_id:
            return event
    raise GraphError(404, "ErrorItemNotFound", _NOT_FOUND)


def _check_if_match(req: GraphRequest, event: JsonDict) -> None:
    wanted = req.headers.get("If-Match")
    if wanted and wanted.strip() != "*" and wanted.strip() not in (etag_of(event), event["changeKey"]):
        raise GraphError(
            412,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change "
            "key passed in the request does not match the current change key for "
            "the item.",
        )


def _span(event: JsonDict) -> tuple[datetime, datetime]:
    """UTC start/end of a (possibly partial) event body.

    Raises:
        GraphError: 400 when start/end are missing, malformed or inverted.
    """
    try:
        start, end = zones.to_utc(event["start"]), zones.to_utc(event["end"])
    except (KeyError, ValueError) as exc:
        raise GraphError(
            400, "ErrorInvalidRequest", "start and end must be valid dateTimeTimeZone values."
        ) from exc
    if end < start:
        raise GraphError(
            400, "ErrorInvalidRequest", "The end time of the event must be after its start time."
        )
    return start, end


def validated_writes(body: Any) -> JsonDict:
    if not isinstance(body, dict):
        raise GraphError(400, "ErrorInvalidRequest", "The request body must be a JSON object.")
    attendees = body.get("attendees", [])
    if not isinstance(attendees, list) or len(attendees) > 500 or not all(address_of(a) for a in attendees):
        raise GraphError(
            400, "ErrorInvalidRequest", "attendees must be at most 500 entries with an emailAddress.address."
        )
    return {k: body[k] for k in _WRITABLE if k in body}


def _join_url(tenant: DevTenant, mailbox: JsonDict) -> str:
    thread = secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")
    return (
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
        + thread
        + "%40thread.v2/0?context=%7b%22Tid%22%3a%22"
        + tenant.tenant_id
        + "%22%2c%22Oid%22%3a%22"
        + str(mailbox["id"])
        + "%22%7d"
    )


def _apply_online_meeting(tenant: DevTenant, mailbox: JsonDict, event: JsonDict) -> None:
    if not event.get("isOnlineMeeting") or event.get("onlineMeeting"):
        return
    event.setdefault("onlineMeetingProvider", "teamsForBusiness")
    if event["onlineMeetingProvider"] == "teamsForBusiness":
        event["onlineMeeting"] = {
            "joinUrl": _join_url(tenant, mailbox),
            "conferenceId": str(secrets.randbelow(10**9)).zfill(9),
        }


def new_event(tenant: DevTenant, mailbox: JsonDict, writes: JsonDict, transaction_id: str | None) -> JsonDict:
    now = _now(tenant)
    event: JsonDict = {
        "id": _new_id(),
        "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(28),
        "createdDateTime": now,
        "type": "seriesMaster" if writes.get("recurrence") else "singleInstance",
        "subject": "",
        "body": {"contentType": "text", "content": ""},
        "showAs": "busy",
        "sensitivity": "normal",
        "importance": "normal",
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": True,
        "isOnlineMeeting": False,
        "responseStatus": {"response": "organizer", "time": _NO_TIME},
        "organizer": {
            "emailAddress": {
                "name": mailbox.get("displayName", ""),
                "address": tenant.mailbox_address(mailbox),
            }
        },
        **writes,
    }
    event["attendees"] = [
        {**a, "type": a.get("type", "required"), "status": {"response": "none", "time": _NO_TIME}}
        for a in writes.get("attendees", [])
    ]
    event["originalStartTimeZone"] = event["start"].get("timeZone", "UTC")
    event["originalEndTimeZone"] = event["end"].get("timeZone", "UTC")
    if transaction_id is not None:
        event["transactionId"] = transaction_id
    _apply_online_meeting(tenant, mailbox, event)
    touch(tenant, event)
    return event


def _room_answer(tenant: DevTenant, room: JsonDict, event: JsonDict) -> str:
    """A standard room accepts unless something else blocks it in the event's time span."""
    if room.get("bookingType", "standard") != "standard":
        return "none"
    start, end = _span(event)
    for other in recurrence.expand(tenant.events_of(room), start, end):
        other_start, other_end = zones.to_utc(other["start"]), zones.to_utc(other["end"])
        blocking = (
            other.get("showAs", "busy") not in ("free", "workingElsewhere")
            and not other.get("isCancelled")
            and (other.get("responseStatus") or {}).get("response") != "declined"
            and other.get("iCalUId") != event.get("iCalUId")
        )
        if blocking and other_start < end and other_end > start:
            return "declined"
    return "accepted"


def _copies(tenant: DevTenant, ical_uid: str) -> list[tuple[JsonDict, JsonDict]]:
    """Every (mailbox, attendee copy) of the meeting `ical_uid`, organizer excluded."""
    found = []
    for mailbox in [*tenant.users(), *tenant.rooms()]:
        for event in tenant.events_of(mailbox):
            if (
                event.get("iCalUId") == ical_uid
                and not event.get("isOrganizer", True)
                and not event.get("isCancelled")
            ):
                found.append((mailbox, event))
    return found


def sync_copies(tenant: DevTenant, organizer: JsonDict, event: JsonDict, *, retime: bool) -> None:
    """Make attendee calendars match the organizer's `event` (create/update/cancel copies)."""
    existing = {id(m): (m, c) for m, c in _copies(tenant, str(event["iCalUId"]))}
    invited: set[int] = set()
    for attendee in event.get("attendees", []):
        target = tenant.find_mailbox(address_of(attendee))
        if target is None or target is organizer or target.get("hasMailbox") is False:
            continue
        invited.add(id(target))
        mailbox_copy = existing.get(id(target), (target, None))[1]
        if mailbox_copy is None:
            mailbox_copy = {"id": _new_id(), "createdDateTime": _now(tenant)}
            tenant.events_of(target).append(mailbox_copy)
            retime_this = True
        else:
            retime_this = retime
        mailbox_copy.update(copy.deepcopy({k: event[k] for k in _SHARED if k in event}))
        mailbox_copy.update(
            {
                "iCalUId": event["iCalUId"],
                "isOrganizer": False,
                "type": event.get("type", "singleInstance"),
                "isCancelled": False,
                "showAs": mailbox_copy.get("showAs", "busy"),
            }
        )
        if retime_this:
            is_room = tenant.find_room(str(target["id"])) is not None
            answer = _room_answer(tenant, target, event) if is_room else "none"
            mailbox_copy["responseStatus"] = {"response": answer, "time": _now(tenant)}
            attendee["status"] = {"response": answer, "time": _now(tenant)}
        touch(tenant, mailbox_copy)
    for key, (_, stale) in existing.items():
        if key not in invited:
            _cancel_copy(tenant, stale)


def _cancel_copy(tenant: DevTenant, event: JsonDict) -> None:
    event["isCancelled"] = True
    subject = str(event.get("subject") or "")
    if not subject.startswith("Canceled: "):
        event["subject"] = "Canceled: " + subject
    touch(tenant, event)


def cancel_meeting(tenant: DevTenant, mailbox: JsonDict, event: JsonDict) -> None:
    """Remove the organizer's event (and a series' exceptions) and cancel every copy."""
    for _, attendee_copy in _copies(tenant, str(event.get("iCalUId", ""))):
        _cancel_copy(tenant, attendee_copy)
    events = tenant.events_of(mailbox)
    events[:] = [e for e in events if e is not event and e.get("seriesMasterId") != event.get("id")]


def _find_transaction(tenant: DevTenant, mailbox: JsonDict, txid: str) -> JsonDict | None:
    for key in (txid, f"{mailbox['id']}:{txid}"):
        owner_id, event_id = tenant.transactions.get(key, ("", ""))
        if owner_id == str(mailbox["id"]):
            for event in tenant.events_of(mailbox):
                if event.get("id") == event_id:
                    return event
    return None


def _remember_transaction(tenant: DevTenant, mailbox: JsonDict, txid: str, event_id: str) -> None:
    key = txid if txid not in tenant.transactions else f"{mailbox['id']}:{txid}"
    tenant.transactions[key] = (str(mailbox["id"]), event_id)


async def create_event(req: GraphRequest) -> GraphResponse:
    """POST events: 201 + the organizer's event; attendees and rooms get their copies."""
    mailbox, _ = open_calendar(req, req.args.get("user"), write=True)
    writes = validated_writes(req.body)
    _span(writes)
    txid = req.body.get("transactionId")
    txid = str(txid) if txid else None
    zone = preferred_zone(req.headers)
    existing = _find_transaction(req.tenant, mailbox, txid) if txid else None
    if existing is not None:
        return json_answer(render_event(existing, zone, OWNER_RANK), 201, headers=zone_headers(zone))
    event = new_event(req.tenant, mailbox, writes, txid)
    req.tenant.events_of(mailbox).append(event)
    if txid:
        _remember_transaction(req.tenant, mailbox, txid, str(event["id"]))
    sync_copies(req.tenant, mailbox, event, retime=True)
    if req.tenant.faults.drop_create_response > 0:
        req.tenant.faults.drop_create_response -= 1
        raise GraphError(504, "GatewayTimeout", "The request timed out.")
    return json_answer(render_event(event, zone, OWNER_RANK), 201, headers=zone_headers(zone))


async def list_events(req: GraphRequest) -> GraphResponse:
    """GET events: stored single instances and series masters (no occurrences), paged."""
    mailbox, rank = open_calendar(req, req.args.get("user"))
    log_event_read(req, "events.list", mailbox)
    events = [
        e
        for e in req.tenant.events_of(mailbox)
        if e.get("type", "singleInstance") in ("singleInstance", "seriesMaster")
    ]
    if req.query.get("$filter"):
        match = _LIST_FILTER.match(req.query["$filter"])
        if match is None:
            raise GraphError(400, "ErrorInvalidUrlQueryFilter", "The $filter is not supported.")
        value = match.group(2).replace("''", "'")
        events = [e for e in events if str(e.get(match.group(1), "")) == value]
    zone = preferred_zone(req.headers)
    size, pref = page_size(req, default=10, maximum=1000)
    skip = skip_of(req)
    page = events[skip : skip + size]
    who = req.args.get("user") or "me"
    body: JsonDict = {
        "@odata.context": f"{GRAPH_METADATA}#users('{who}')/events",
        "value": [select_fields(render_event(e, zone, rank), req.query) for e in page],
    }
    if skip + size < len(events):
        body["@odata.nextLink"] = next_link(req, **{"$top": str(size), "$skip": str(skip + size)})
    return json_answer(body, headers=merge_headers(zone_headers(zone), pref))


async def get_event(req: GraphRequest) -> GraphResponse:
    """GET events/{id}: one stored event as the caller may see it; 404 ErrorItemNotFound."""
    mailbox, rank = open_calendar(req, req.args.get("user"))
    log_event_read(req, "events.get", mailbox)
    event = _find_event(req.tenant, mailbox, str(req.args["event"]))
    zone = preferred_zone(req.headers)
    return json_answer(select_fields(render_event(event, zone, rank), req.query), headers=zone_headers(zone))


async def update_event(req: GraphRequest) -> GraphResponse:
    """PATCH an event (If-Match changeKey -> 412 on mismatch); organizer edits reach attendees."""
    mailbox, _ = open_calendar(req, req.args.get("user"), write=True)
    event = _find_event(req.tenant, mailbox, str(req.args["event"]))
    _check_if_match(req, event)
    writes = validated_writes(req.body)
    if event.get("isOnlineMeeting") and writes.get("isOnlineMeeting") is False:
        raise GraphError(
            400, "ErrorInvalidRequest", "An online meeting cannot be turned back into a regular event."
        )
    candidate = {**event, **writes}
    _span(candidate)
    retime = any(k in writes and writes[k] != event.get(k) for k in ("start", "end"))
    if "attendees" in writes:
        old = {address_of(a): a.get("status") for a in event.get("attendees", [])}
        candidate["attendees"] = [
            {
                **a,
                "type": a.get("type", "required"),
                "status": old.get(address_of(a)) or {"response": "none", "time": _NO_TIME},
            }
            for a in writes["attendees"]
        ]
    event.update(candidate)
    _apply_online_meeting(req.tenant, mailbox, event)
    touch(req.tenant, event)
    if is_organizer(req.tenant, mailbox, event) and event.get("iCalUId"):
        sync_copies(req.tenant, mailbox, event, retime=retime)
    zone = preferred_zone(req.headers)
    return json_answer(render_event(event, zone, OWNER_RANK), headers=zone_headers(zone))


async def delete_event(req: GraphRequest) -> GraphResponse:
    """DELETE: 204; the organizer's delete cancels the attendees' copies."""
    mailbox, _ = open_calendar(req, req.args.get("user"), write=True)
    event = _find_event(req.tenant, mailbox, str(req.args["event"]))
    _check_if_match(req, event)
    if is_organizer(req.tenant, mailbox, event):
        cancel_meeting(req.tenant, mailbox, event)
    else:
        req.tenant.events_of(mailbox).remove(event)
    return GraphResponse(204)


async def cancel_event(req: GraphRequest) -> GraphResponse:
    """POST .../cancel: 202, organizer only (400 otherwise); cancels every attendee's copy."""
    mailbox, _ = open_calendar(req, req.args.get("user"), write=True)
    event = _find_event(req.tenant, mailbox, str(req.args["event"]))
    comment = req.body.get("comment") if isinstance(req.body, dict) else None
    if comment is not None and not isinstance(comment, str):
        raise GraphError(400, "ErrorInvalidRequest", "comment must be a string.")
    if not is_organizer(req.tenant, mailbox, event):
        raise GraphError(400, "ErrorInvalidRequest", "You need to be an organizer to cancel a meeting.")
    cancel_meeting(req.tenant, mailbox, event)
    return GraphResponse(202)


async def respond_event(req: GraphRequest) -> GraphResponse:
    """POST .../accept | tentativelyAccept | decline {comment?, sendResponse?}: 202, attendees only.

    `sendResponse` false ("Do not send a response") changes only the attendee's own copy.
    """
    mailbox, _ = open_calendar(req, req.args.get("user"), write=True)
    event = _find_event(req.tenant, mailbox, str(req.args["event"]))
    body = req.body if isinstance(req.body, dict) else {}
    send = body.get("sendResponse", True)
    if not isinstance(send, bool):
        raise GraphError(400, "ErrorInvalidRequest", "sendResponse must be a boolean.")
    if is_organizer(req.tenant, mailbox, event):
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "Your request can't be completed. You can't respond to a meeting you organized.",
        )
    answer = {"accept": "accepted", "tentativelyaccept": "tentativelyAccepted", "decline": "declined"}[
        str(req.args["answer"]).lower()
    ]
    answer_meeting(req.tenant, mailbox, event, answer, send_response=send)
    return GraphResponse(202)


def check_answer(response: str) -> None:
    """Raises ValueError unless `response` is accepted, tentativelyAccepted or declined."""
    if response not in ("accepted", "tentativelyAccepted", "declined"):
        raise ValueError("response must be accepted, tentativelyAccepted or declined")


def answer_meeting(
    tenant: DevTenant, mailbox: JsonDict, event: JsonDict, response: str, *, send_response: bool = True
) -> None:
    """Record `mailbox`'s answer (accepted | tentativelyAccepted | declined) on its copy `event`.

    With `send_response` the organizer's event records the answer too; without ("Do not send a
    response") only the attendee's copy changes.
    """
    check_answer(response)
    now = zones.format_utc_z(tenant.clock())
    event["responseStatus"] = {"response": response, "time": now}
    touch(tenant, event)
    if send_response and not event.get("isOrganizer", False):
        organizer = tenant.find_mailbox(address_of(event.get("organizer")))
        me = {tenant.mailbox_address(mailbox).lower(), str(mailbox.get("userPrincipalName", "")).lower()}
        for original in tenant.events_of(organizer) if organizer else []:
            if original.get("iCalUId") == event.get("iCalUId") and original.get("isOrganizer"):
                for entry in original.get("attendees", []):
                    if address_of(entry) in me:
                        entry["status"] = {"response": response, "time": now}
                touch(tenant, original)
    tenant.changed()


_EVENTS = r"(?:me|users/(?P<user>[^/]+))/(?:calendar/)?events"
ROUTES = (
    route("POST", _EVENTS, "graph.events.create", create_event),
    route("GET", _EVENTS, "graph.events.list", list_events),
    route("GET", rf"{_EVENTS}/(?P<event>[^/]+)", "graph.events.get", get_event),
    route("PATCH", rf"{_EVENTS}/(?P<event>[^/]+)", "graph.events.update", update_event),
    route("DELETE", rf"{_EVENTS}/(?P<event>[^/]+)", "graph.events.delete", delete_event),
    route("POST", rf"{_EVENTS}/(?P<event>[^/]+)/cancel", "graph.events.cancel", cancel_event),
    route(
        "POST",
        rf"{_EVENTS}/(?P<event>[^/]+)/(?P<answer>accept|tentativelyAccept|decline)",
        "graph.events.respond",
        respond_event,
    ),
)
