"""A candidate link for an interview loop (issue 17), through the Calendar Service's HTTP API against
devtenant: made, viewed (whole-loop options by day, titles and times only), booked once with ONE
POST (a second book refused), moved whole, cancelled whole; never a panel or room address."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from calendar_backend import storage
from calendar_backend.contract import format_time
from tests.reliability.conftest import organizer_events
from tests.security.gate_env import allow
from tests.service.conftest import ALEX, Stack, next_week

MEGAN = "meganb@contoso.example"
DIEGO = "diegos@contoso.example"
ROOM = "rainier@contoso.example"


def template(room: bool = True) -> dict[str, Any]:
    sessions: list[dict[str, Any]] = [
        {"title": "Coding", "minutes": 45, "interviewers": [MEGAN]},
        {"title": "System design", "minutes": 45, "interviewers": [DIEGO]},
    ]
    if room:
        sessions[0]["room"] = {"any_of": [ROOM]}
    return {
        "name": "Backend onsite",
        "order": "fixed",
        "breaks": {"min_minutes": 0, "max_minutes": 30},
        "sessions": sessions,
    }


async def make_loop_offer(stack: Stack, **extra: Any) -> tuple[int, dict[str, Any]]:
    start, end = next_week(datetime.now(UTC))
    body = {
        "window_start": format_time(start),
        "window_end": format_time(end),
        "candidate_name": "Dana Smith",
        "candidate_email": "dana.smith@example.com",
        "candidate_time_zone": "Europe/Berlin",
        **extra,
    }
    if "loop_template_name" not in body and "interviewers" not in body:
        body.setdefault("loop_template", template())
    return await stack.post("/v1/offers", body, stack.token())


def capability(offer: dict[str, Any]) -> str:
    return str(offer["url"]).rsplit("/c/", 1)[1]


def options(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for day in doc["loop"]["days"] for o in day["options"]]


def no_address(doc: object) -> None:
    text = json.dumps(doc).lower()
    for address in (MEGAN, DIEGO, ROOM, "meganb", "diegos", "rainier", "megan", "diego"):
        assert address not in text, address


async def test_a_loop_link_books_the_whole_loop_once_moves_and_cancels(calendar_stack: Stack) -> None:
    stack = calendar_stack
    status, offer = await make_loop_offer(stack)
    assert status == 201, offer
    token = capability(offer)
    status, page = await stack.post("/v1/candidate/slots", {"token": token})
    assert status == 200, page
    no_address(page)
    assert page["loop"]["title"] == "Backend onsite"
    days = page["loop"]["days"]
    assert days
    assert all(day["options"] for day in days)
    assert [d["date"] for d in days] == sorted(d["date"] for d in days)
    first = options(page)[0]
    assert [s["title"] for s in first["sessions"]] == ["Coding", "System design"]
    assert {k for s in first["sessions"] for k in s} == {"title", "start", "end"}

    book = {"token": token, "start": first["start"], "option": first["option_id"]}
    status, booked = await stack.post("/v1/candidate/book", book)
    assert status == 201, booked
    assert booked["event"] == "booked"
    assert [s["start"] for s in booked["booking"]["sessions"]] == [s["start"] for s in first["sessions"]]
    no_address(booked["booking"])
    ours = [e for e in organizer_events(stack.devtenant, ALEX) if e.get("transactionId")]
    assert len([e for e in ours if not e.get("isCancelled")]) >= 2  # one Outlook event per session at least
    status, again = await stack.post("/v1/candidate/book", book)  # the same POST again: the same loop
    assert status == 201, again
    assert again["loop_id"] == booked["loop_id"]
    other = options(page)[1]
    status, refused = await stack.post(
        "/v1/candidate/book", {"token": token, "start": other["start"], "option": other["option_id"]}
    )
    assert status == 409, refused

    status, seen = await stack.post("/v1/candidate/slots", {"token": token})
    assert status == 200, seen
    no_address(seen)
    assert seen["booking"]["status"] == "confirmed"
    assert seen["can_change"] is True
    moved_to = next(o for o in options(seen) if o["option_id"] != first["option_id"])
    status, moved = await stack.post(
        "/v1/candidate/reschedule", {"token": token, "option": moved_to["option_id"]}
    )
    assert status == 200, moved
    assert moved["event"] == "rescheduled"
    assert [s["start"] for s in moved["booking"]["sessions"]] == [s["start"] for s in moved_to["sessions"]]

    status, cancelled = await stack.post("/v1/candidate/cancel", {"token": token})
    assert status == 200, cancelled
    assert cancelled["booking"]["status"] == "cancelled"
    async with stack.runtime.store.transaction() as tx:
        loop = await storage.get_loop(tx, cancelled["loop_id"])
        rows = await storage.loop_sessions(tx, cancelled["loop_id"])
    assert loop is not None
    assert loop.status == "cancelled"
    assert {r.status for r in rows} == {"cancelled"}


async def test_a_saved_template_makes_a_link_and_the_forms_are_exclusive(calendar_stack: Stack) -> None:
    stack = calendar_stack
    onsite = {"template": template(room=False)}
    status, saved = await stack.send("PUT", "/v1/loop-templates/onsite", onsite, stack.token())
    assert status == 200, saved
    status, offer = await make_loop_offer(stack, loop_template_name="onsite")
    assert status == 201, offer
    async with stack.runtime.store.transaction() as tx:
        row = (await tx.execute(sa.select(storage.offers.c.loop_template))).scalars().all()
    assert row
    assert row[0]["sessions"][0]["title"] == "Coding"
    status, both = await make_loop_offer(
        stack, loop_template=template(), interviewers=[MEGAN], duration_min=30
    )
    assert status == 400, both
    status, none = await make_loop_offer(stack, loop_template_name="missing")
    assert status == 404, none


async def test_a_person_the_allow_list_refuses_refuses_the_link(calendar_stack: Stack) -> None:
    stack = calendar_stack
    status, offer = await make_loop_offer(stack)
    assert status == 201, offer
    await allow(stack, MEGAN)  # Diego is no longer allowed: the link shows nothing
    status, doc = await stack.post("/v1/candidate/slots", {"token": capability(offer)})
    assert status == 410, doc
    no_address(doc)
    status, refused = await make_loop_offer(stack)
    assert (status, refused["error"]) == (403, "forbidden"), refused
    assert DIEGO in refused["message"]
