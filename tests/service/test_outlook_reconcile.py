"""My interviews reconciled with Outlook (issue 13 defect 11): a deleted or moved event is said."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from calendar_backend.contract import format_time, parse_time
from tests.service.conftest import ALEX, Stack, booking_body, next_week, user


async def _book(stack: Stack, people: list[str], nth: int) -> dict[str, Any]:
    start, end = next_week(datetime.now(UTC))
    status, doc = await stack.post(
        "/v1/slots/find",
        {
            "interviewers": people,
            "duration_min": 30,
            "start": format_time(start),
            "end": format_time(end),
            "all": True,
            "limit": 500,
        },
        stack.token(),
    )
    assert status == 200, doc
    slot = doc["slots"][nth * 8]
    status, interview = await stack.post(
        "/v1/interviews", booking_body(people, slot, str(uuid.uuid4())), stack.token()
    )
    assert status == 201, interview
    return interview  # type: ignore[no-any-return]


def _organizer_event(stack: Stack, event_id: str) -> dict[str, Any]:
    mailbox = stack.devtenant.tenant.find_mailbox(ALEX)
    assert mailbox is not None
    return next(e for e in stack.devtenant.tenant.events_of(mailbox) if e["id"] == event_id)


async def test_deleted_and_moved_events_are_reported(calendar_stack: Stack) -> None:
    stack = calendar_stack
    people = [user(stack, "Megan Bowen")["mail"]]
    kept, gone, moved = [await _book(stack, people, n) for n in range(3)]
    # Outlook: one event deleted, one moved by an hour (as a user would in Outlook).
    mailbox = stack.devtenant.tenant.find_mailbox(ALEX)
    assert mailbox is not None
    events = stack.devtenant.tenant.events_of(mailbox)
    events.remove(_organizer_event(stack, gone["event_id"]))
    event = _organizer_event(stack, moved["event_id"])
    new_start = parse_time(moved["start"]) + timedelta(hours=1)
    new_end = parse_time(moved["end"]) + timedelta(hours=1)
    event["start"] = {"dateTime": new_start.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}
    event["end"] = {"dateTime": new_end.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}

    status, doc = await stack.get("/v1/interviews", stack.token())
    assert status == 200, doc
    by_id = {i["id"]: i for i in doc["interviews"]}
    assert "outlook" not in by_id[kept["id"]]
    assert by_id[gone["id"]]["outlook"] == "deleted"
    assert by_id[moved["id"]]["outlook"] == "moved"
    assert parse_time(by_id[moved["id"]]["outlook_start"]) == new_start
    assert parse_time(by_id[moved["id"]]["outlook_end"]) == new_end
