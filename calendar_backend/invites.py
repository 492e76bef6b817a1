"""What the invites say (pure: builds Graph event bodies, decides nothing about write order).

- `panel_body`: the interviewers' invite says who the candidate is, the role and the loop.
- `candidate_event`: the candidate's own invite (organizer = the hiring manager, created in their
  mailbox like the panel's), with the candidate as the only attendee and the panel's Teams join link,
  so the candidate never sees the panel's addresses or internal notes.
- `room_location`: a room shown by its display name, not its address.
- `panel_event`: the panel's whole event body; `event_times`: a Graph start/end pair in UTC.

Every value from outside is HTML-escaped; nothing is read from calendars here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from uuid import UUID, uuid5

__all__ = [
    "candidate_event",
    "candidate_transaction_id",
    "event_times",
    "panel_body",
    "panel_event",
    "room_location",
]

_CANDIDATE_TXN = UUID("5f0c2a61-4c1e-4f43-9a55-0e7c1d2b9a31")  # never change: ids are stored


def candidate_transaction_id(panel_transaction_id: str) -> str:
    """The candidate event's Graph ``transactionId``: derived from the panel's, deterministic (a
    retry or recovery finds the same event) and a plain UUID like every id OpenSlot sends."""
    return str(uuid5(_CANDIDATE_TXN, panel_transaction_id))


def panel_body(
    *,
    candidate_name: str,
    role: str = "",
    loop: Sequence[tuple[datetime, datetime, str]] = (),
    source: str = "Scheduled with OpenSlot.",
) -> dict[str, str]:
    """The panel's invite body: candidate, role and the loop (start, end, who; UTC in, shown UTC)."""
    rows = [f"<p><b>Candidate:</b> {escape(candidate_name)}</p>"]
    if role:
        rows.append(f"<p><b>Role:</b> {escape(role)}</p>")
    if loop:
        items = "".join(
            f"<li>{s.astimezone(UTC):%a %d %b %H:%M}\u2013{e.astimezone(UTC):%H:%M} UTC: {escape(who)}</li>"
            for s, e, who in loop
        )
        rows.append(f"<p><b>Interview loop</b></p><ul>{items}</ul>")
    rows.append(f"<p>{escape(source)}</p>")
    return {"contentType": "html", "content": "".join(rows)}


def candidate_event(
    panel_event: dict[str, Any],
    *,
    candidate_name: str,
    candidate_email: str,
    join_url: str,
    role: str = "",
    company: str = "",
    organizer_name: str = "",
) -> dict[str, Any]:
    """The candidate's own invite for the same time and Teams meeting as ``panel_event``.

    Same subject, start, end and time zone; the candidate is the only attendee; the body holds the
    role, the organizer and the panel's join link (no second meeting is created).
    """
    what = f"your interview for {escape(role)}" if role else "your interview"
    at = f" at {escape(company)}" if company else ""
    by = f"<p>Organizer: {escape(organizer_name)}</p>" if organizer_name else ""
    join = (
        f'<p><a href="{escape(join_url)}">Join the Microsoft Teams meeting</a></p>'
        if join_url.startswith("https://")
        else ""
    )
    event: dict[str, Any] = {
        "subject": panel_event["subject"],
        "body": {"contentType": "html", "content": f"<p>This is {what}{at}.</p>{by}{join}"},
        "start": panel_event["start"],
        "end": panel_event["end"],
        "attendees": [
            {"type": "required", "emailAddress": {"address": candidate_email, "name": candidate_name}}
        ],
        "isOnlineMeeting": False,
        "allowNewTimeProposals": False,
        "location": {"displayName": "Microsoft Teams meeting"},
    }
    if "transactionId" in panel_event:
        event["transactionId"] = candidate_transaction_id(panel_event["transactionId"])
    if "originalStartTimeZone" in panel_event:
        event["originalStartTimeZone"] = panel_event["originalStartTimeZone"]
    return event


def room_location(address: str, display_name: str) -> dict[str, str]:
    """A Graph ``location`` for a room: its display name shown, its address kept for Exchange."""
    return {
        "displayName": display_name.strip() or address,
        "locationEmailAddress": address,
        "locationType": "conferenceRoom",
    }


def panel_event(
    candidate_name: str,
    interviewers: Sequence[str],
    rooms: Sequence[str],
    start: datetime,
    end: datetime,
    txn: str,
    subject: str,
    time_zone: str | None,
    optional: Sequence[str] = (),
    *,
    role: str = "",
) -> dict[str, Any]:
    """The panel's event: interviewers (required or optional) and rooms, never the candidate
    (who gets their own, `candidate_event`); the body says who the candidate is."""
    attendees = [{"type": "required", "emailAddress": {"address": a}} for a in interviewers]
    attendees += [{"type": "optional", "emailAddress": {"address": a}} for a in optional]
    attendees += [{"type": "resource", "emailAddress": {"address": r}} for r in rooms]
    event: dict[str, Any] = {
        "subject": subject,
        "body": panel_body(candidate_name=candidate_name, role=role),
        **event_times(start, end),
        "attendees": attendees,
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
        "transactionId": txn,
        "allowNewTimeProposals": False,
    }
    if rooms:
        event["location"] = room_location(rooms[0], "")
    if time_zone:
        event["originalStartTimeZone"] = time_zone
    return event


def event_times(start: datetime, end: datetime) -> dict[str, Any]:
    """Graph's ``start``/``end`` (dateTimeTimeZone) of ``[start, end)``, written in UTC."""
    return {
        "start": {"dateTime": _naive_utc(start), "timeZone": "UTC"},
        "end": {"dateTime": _naive_utc(end), "timeZone": "UTC"},
    }


def _naive_utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
