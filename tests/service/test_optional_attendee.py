"""An optional panel member (issue 13 defect 3) is invited as optional and never searched."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from calendar_backend.contract import format_time
from tests.service.conftest import ALEX, Stack, booking_body, next_week, user


async def test_optional_person_is_invited_but_not_searched(calendar_stack: Stack) -> None:
    stack = calendar_stack
    megan = user(stack, "Megan Bowen")["mail"]
    miriam = user(stack, "Miriam Graham")["mail"]  # free/busy not shared: unreadable
    start, end = next_week(datetime.now(UTC))
    status, doc = await stack.post(
        "/v1/slots/find",
        {"interviewers": [megan], "duration_min": 30, "start": format_time(start), "end": format_time(end)},
        stack.token(),
    )
    assert status == 200
    slot = doc["slots"][0]
    body = {**booking_body([megan], slot, str(uuid.uuid4())), "optional": [miriam]}
    status, interview = await stack.post("/v1/interviews", body, stack.token())
    assert status == 201, interview
    mailbox = stack.devtenant.tenant.find_mailbox(ALEX)
    assert mailbox is not None
    event = next(e for e in stack.devtenant.tenant.events_of(mailbox) if e["id"] == interview["event_id"])
    kinds = {a["emailAddress"]["address"].lower(): a["type"] for a in event["attendees"]}
    assert kinds[megan.lower()] == "required"
    assert kinds[miriam.lower()] == "optional"
