"""find_slots through the real HTTP API against devtenant, checked against an independent oracle.

The oracle expands each interviewer's raw tenant-file calendar with devtenant's own recurrence engine and
applies DESIGN.md's slot semantics directly; the service instead goes through OBO, getSchedule and the pure
engine. Both must agree on every grid point of the window.
"""

from __future__ import annotations

from datetime import UTC, datetime

from calendar_backend.contract import format_time
from tests.service.conftest import (
    Stack,
    find_all,
    mailbox_addresses,
    next_week,
    no_mailbox_address,
    oracle_slots,
    user,
    user_in_zone,
)


async def test_slots_match_the_oracle_for_a_cross_zone_panel(calendar_stack: Stack) -> None:
    stack = calendar_stack
    people = [
        user(stack, "Megan Bowen"),
        user(stack, "Adele Vance"),
        user_in_zone(stack, "India Standard Time"),
    ]
    start, end = next_week(datetime.now(UTC))
    got, doc = await find_all(stack, [p["mail"] for p in people], start, end, 45)
    expected = oracle_slots(people, start, end, 45)
    assert got == expected
    assert doc["blockers"] == [] or not got


async def test_best_first_answer_is_a_subset_and_limited(calendar_stack: Stack) -> None:
    stack = calendar_stack
    start, end = next_week(datetime.now(UTC))
    body = {
        "interviewers": [user(stack, "Megan Bowen")["mail"]],
        "duration_min": 30,
        "start": format_time(start),
        "end": format_time(end),
        "limit": 5,
    }
    status, ranked = await stack.post("/v1/slots/find", body, stack.token())
    assert status == 200
    status, every = await stack.post("/v1/slots/find", {**body, "all": True, "limit": 500}, stack.token())
    assert status == 200
    assert 0 < len(ranked["slots"]) <= 5
    assert all(s in every["slots"] for s in ranked["slots"])
    assert every["slots"] == sorted(every["slots"], key=lambda s: s["start"])


async def test_a_calendar_that_cannot_be_read_is_named_not_free(calendar_stack: Stack) -> None:
    stack = calendar_stack
    address = no_mailbox_address(stack)
    start, end = next_week(datetime.now(UTC))
    status, doc = await stack.post(
        "/v1/slots/find",
        {
            "interviewers": [user(stack, "Megan Bowen")["mail"], address],
            "duration_min": 30,
            "start": format_time(start),
            "end": format_time(end),
        },
        stack.token(),
    )
    assert status == 200, doc
    assert doc["slots"] == []
    assert {"address": address, "reason": "unreadable"} in doc["blockers"]


async def test_find_slots_is_one_graph_round_trip_for_up_to_20(calendar_stack: Stack) -> None:
    stack = calendar_stack
    people = mailbox_addresses(stack.devtenant, 20)
    start, end = next_week(datetime.now(UTC))
    await stack.post(
        "/v1/slots/find",
        {
            "interviewers": people[:1],
            "duration_min": 30,
            "start": format_time(start),
            "end": format_time(end),
        },
        stack.token(),
    )  # warms the user's token cache (OBO happens once)
    before = stack.graph_requests()
    status, doc = await stack.post(
        "/v1/slots/find",
        {"interviewers": people, "duration_min": 30, "start": format_time(start), "end": format_time(end)},
        stack.token(),
    )
    assert status == 200, doc
    assert stack.graph_requests() - before == 1
