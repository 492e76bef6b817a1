"""Parallel interviews (issue 13 defect 2): search and booking agree on who is busy.

The rule: the organizer is not an attendee unless they are on the panel. Their other interviews
therefore block a time only for panels they sit on; the booking's overlap check is per attending
mailbox (panel, rooms, candidate), and a "fresh" time offered after a refusal is never one the
booking would refuse.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from calendar_backend import storage
from calendar_backend.contract import parse_time
from tests.candidate.test_offers_api import capability, make_offer
from tests.service.conftest import (  # noqa: F401
    ALEX,
    Stack,
    booking_body,
    calendar_stack,
    find_all,
    next_week,
)

MEGAN = "meganb@contoso.example"
DIEGO = "diegos@contoso.example"


def _overlaps(slot: dict[str, str], taken: dict[str, str]) -> bool:
    return parse_time(slot["start"]) < parse_time(taken["end"]) and parse_time(taken["start"]) < parse_time(
        slot["end"]
    )


async def _common_slot(stack: Stack, people: list[str]) -> dict[str, str]:
    start, end = next_week(datetime.now(UTC))
    slots, _ = await find_all(stack, people, start, end, 60)
    first = min(slots)
    return {
        "start": first[0].isoformat().replace("+00:00", "Z"),
        "end": first[1].isoformat().replace("+00:00", "Z"),
    }


async def _book(
    stack: Stack, people: list[str], slot: dict[str, str], key: str, candidate: str = "dana.smith@example.com"
) -> tuple[int, Any]:
    body = booking_body(people, slot, key)
    body["candidate"] = {"name": "Dana Smith", "email": candidate}
    return await stack.post("/v1/interviews", body, stack.token())


async def test_another_panel_may_meet_while_the_organizers_other_interview_runs(
    calendar_stack: Stack,
) -> None:
    stack = calendar_stack
    slot = await _common_slot(stack, [MEGAN, DIEGO])
    status, doc = await _book(stack, [MEGAN], slot, "panel-a", "first@example.com")
    assert status == 201, doc
    start, end = next_week(datetime.now(UTC))
    offered, _ = await find_all(stack, [DIEGO], start, end, 60)
    assert (parse_time(slot["start"]), parse_time(slot["end"])) in offered
    status, doc = await _book(stack, [DIEGO], slot, "panel-b", "second@example.com")
    assert status == 201, doc  # was 409 "just taken", with the same time offered again


async def test_an_organizer_on_the_panel_is_busy_in_search_and_booking_alike(calendar_stack: Stack) -> None:
    stack = calendar_stack
    slot = await _common_slot(stack, [MEGAN, DIEGO, ALEX])
    status, doc = await _book(stack, [MEGAN], slot, "panel-a", "first@example.com")
    assert status == 201, doc
    start, end = next_week(datetime.now(UTC))
    offered, _ = await find_all(stack, [DIEGO, ALEX], start, end, 60)
    assert (parse_time(slot["start"]), parse_time(slot["end"])) not in offered
    status, doc = await _book(stack, [DIEGO, ALEX], slot, "panel-b", "second@example.com")
    assert status == 409, doc
    fresh = doc["fresh"]["slots"]
    assert fresh
    assert not any(_overlaps(s, slot) for s in fresh)


async def test_fresh_times_are_never_ones_the_booking_refuses(calendar_stack: Stack) -> None:
    stack = calendar_stack
    slot = await _common_slot(stack, [MEGAN, DIEGO])
    status, doc = await _book(stack, [MEGAN], slot, "first-round")
    assert status == 201, doc
    # the same candidate cannot sit two interviews at once: refused, and not offered again
    status, doc = await _book(stack, [DIEGO], slot, "second-round")
    assert status == 409, doc
    fresh = doc["fresh"]["slots"]
    assert fresh
    assert not any(_overlaps(s, slot) for s in fresh), fresh
    status, booked = await _book(stack, [DIEGO], fresh[0], "fresh")  # and a fresh time books
    assert status == 201, booked


async def test_a_link_never_offers_a_time_already_reserved_but_not_yet_in_outlook(
    calendar_stack: Stack,
) -> None:
    stack = calendar_stack
    offer = await make_offer(stack, [MEGAN])
    token = capability(offer)
    status, view = await stack.post("/v1/candidate/slots", {"token": token})
    assert status == 200, view
    wanted = view["slots"][0]
    async with stack.runtime.store.transaction() as tx:  # another booking's reservation
        await storage.insert_pending(
            tx,
            tenant_id=stack.devtenant.tenant_id,
            organizer_oid="someone",
            organizer_upn=ALEX,
            transaction_id=str(uuid.uuid4()),
            start=parse_time(wanted["start"]),
            end=parse_time(wanted["end"]),
            attendees=[MEGAN, "x@example.com"],
            candidate_name="X",
            subject="Interview: X",
            source="bot",
        )
    status, view = await stack.post("/v1/candidate/slots", {"token": token})
    assert status == 200, view
    assert not any(_overlaps(s, wanted) for s in view["slots"])
    status, refused = await stack.post("/v1/candidate/book", {"token": token, "start": wanted["start"]})
    assert status == 409, refused
    assert not any(_overlaps(s, wanted) for s in refused["fresh"]["slots"])
