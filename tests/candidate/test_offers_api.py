"""Offers through the Calendar Service's HTTP API, against devtenant: mint, look, book once."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from calendar_backend import storage
from calendar_backend.contract import format_time, parse_time
from tests.service.conftest import ALEX, Stack, next_week, user


async def make_offer(stack: Stack, people: list[str], **extra: Any) -> dict[str, Any]:
    start, end = next_week(datetime.now(UTC))
    body = {
        "interviewers": people,
        "duration_min": 45,
        "window_start": format_time(start),
        "window_end": format_time(end),
        "candidate_name": "Dana Smith",
        "candidate_email": "dana.smith@example.com",
        "candidate_time_zone": "Asia/Kathmandu",
        **extra,
    }
    status, doc = await stack.post("/v1/offers", body, stack.token())
    assert status == 201, doc
    return doc  # type: ignore[no-any-return]


def capability(offer: dict[str, Any]) -> str:
    return str(offer["url"]).rsplit("/c/", 1)[1]


async def test_offer_link_is_a_256_bit_token_stored_only_as_hash(calendar_stack: Stack) -> None:
    stack = calendar_stack
    offer = await make_offer(stack, [user(stack, "Megan Bowen")["mail"]])
    token = capability(offer)
    assert re.fullmatch(r"[A-Za-z0-9_\-]{43}", token)  # 32 bytes, base64url
    assert "dana" not in offer["url"].lower()
    assert "@" not in offer["url"]
    raw = stack.db_path.read_bytes()
    assert token.encode() not in raw
    assert b"dana.smith@example.com" not in raw
    assert b"Dana Smith" not in raw
    other = await make_offer(stack, [user(stack, "Megan Bowen")["mail"]])
    assert capability(other) != token


async def test_candidate_sees_only_start_end_and_slot_id(calendar_stack: Stack) -> None:
    stack = calendar_stack
    people = [user(stack, "Adele Vance")["mail"], user(stack, "Lee Gu")["mail"]]
    offer = await make_offer(stack, people)
    status, doc = await stack.post("/v1/candidate/slots", {"token": capability(offer)})
    assert status == 200, doc
    assert doc["slots"]
    assert {k for s in doc["slots"] for k in s} == {"slot_id", "start", "end"}
    assert doc["display_names"] == []
    text = str(doc)
    assert "CANARY" not in text
    assert "adelev" not in text
    assert "Adele" not in text


async def test_book_once_then_conflict(calendar_stack: Stack) -> None:
    stack = calendar_stack
    megan = user(stack, "Megan Bowen")["mail"]
    offer = await make_offer(stack, [megan])
    token = capability(offer)
    for _ in range(10):
        status, doc = await stack.post("/v1/candidate/slots", {"token": token})
        assert status == 200
    slot = doc["slots"][0]
    before = stack.graph_requests()
    status, booked = await stack.post("/v1/candidate/book", {"token": token, "start": slot["start"]})
    assert status == 201, booked
    assert booked["booking"]["start"] == slot["start"]
    assert stack.graph_requests() > before
    status, again = await stack.post(
        "/v1/candidate/book", {"token": token, "start": doc["slots"][1]["start"]}
    )
    assert status == 409, again
    status, listed = await stack.get("/v1/offers", stack.token())
    assert status == 200
    assert listed["offers"][0]["status"] == "booked"
    events = (
        stack.devtenant.session()
        .get(f"{stack.devtenant.base_url}/_devtenant/mailboxes/{ALEX}/events", timeout=10)
        .json()
    )
    events = events.get("value", events) if isinstance(events, dict) else events
    mine = [e for e in events if e.get("subject") == "Interview: Dana Smith"]
    assert len(mine) == 2  # the panel's event and the candidate's own, once each
    assert len([e for e in mine if "dana.smith@example.com" in str(e.get("attendees"))]) == 1


async def test_expired_and_revoked_links_are_gone(calendar_stack: Stack) -> None:
    stack = calendar_stack
    megan = user(stack, "Megan Bowen")["mail"]
    offer = await make_offer(stack, [megan])
    status, _ = await stack.post(f"/v1/offers/{offer['id']}/revoke", {}, stack.token())
    assert status == 200
    status, doc = await stack.post("/v1/candidate/slots", {"token": capability(offer)})
    assert status == 410, doc
    other = await make_offer(stack, [megan])
    async with stack.runtime.store.transaction() as tx:
        await tx.execute(
            sa.update(storage.offers)
            .where(storage.offers.c.id == other["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    status, doc = await stack.post("/v1/candidate/slots", {"token": capability(other)})
    assert status == 410
    status, doc = await stack.post("/v1/candidate/slots", {"token": "x" * 43})
    assert status == 404


async def test_slot_taken_meanwhile_is_refused_with_fresh_options(calendar_stack: Stack) -> None:
    stack = calendar_stack
    megan = user(stack, "Megan Bowen")["mail"]
    offer = await make_offer(stack, [megan])
    status, doc = await stack.post("/v1/candidate/slots", {"token": capability(offer)})
    slot = doc["slots"][0]
    # Someone else books Megan at that time through the bot path.
    status, _ = await stack.post(
        "/v1/interviews",
        {
            "candidate": {"name": "Other Person", "email": "other@example.com"},
            "interviewers": [megan],
            "start": slot["start"],
            "end": format_time(parse_time(slot["start"]) + timedelta(minutes=45)),
            "idempotency_key": "other-1",
        },
        stack.token(),
    )
    assert status == 201
    status, refused = await stack.post(
        "/v1/candidate/book", {"token": capability(offer), "start": slot["start"]}
    )
    assert status == 409
    assert refused["error"] == "slot_taken"
    assert refused["fresh"]["slots"]
    assert slot["start"] not in {s["start"] for s in refused["fresh"]["slots"]}
    status, booked = await stack.post(
        "/v1/candidate/book", {"token": capability(offer), "start": refused["fresh"]["slots"][0]["start"]}
    )
    assert status == 201, booked


async def test_candidate_reschedule_moves_event_within_limit(calendar_stack: Stack) -> None:
    stack = calendar_stack
    offer = await make_offer(stack, [user(stack, "Megan Bowen")["mail"]])
    token = capability(offer)
    _, doc = await stack.post("/v1/candidate/slots", {"token": token})
    first, later = doc["slots"][0], doc["slots"][-1]
    status, _ = await stack.post("/v1/candidate/book", {"token": token, "start": first["start"]})
    assert status == 201
    _, view = await stack.post("/v1/candidate/slots", {"token": token})
    assert view["booking"]["start"] == first["start"]
    assert view["can_change"]
    for expected_left in (1, 0):
        status, moved = await stack.post(
            "/v1/candidate/reschedule", {"token": token, "start": later["start"]}
        )
        assert status == 200, moved
        assert moved["booking"]["start"] == later["start"]
        _, view = await stack.post("/v1/candidate/slots", {"token": token})
        assert view["changes_left"] == expected_left
        later = doc["slots"][-2]
    status, refused = await stack.post("/v1/candidate/reschedule", {"token": token, "start": first["start"]})
    assert status == 409, refused  # the change limit (2 by default) is used up


async def test_unknown_fields_and_malformed_tokens_are_refused(calendar_stack: Stack) -> None:
    stack = calendar_stack
    status, _ = await stack.post("/v1/candidate/slots", {"token": "A" * 43, "extra": 1})
    assert status == 400
    status, _ = await stack.post("/v1/candidate/slots", {"token": "short"})
    assert status == 400
    status, _ = await stack.post("/v1/offers", {"interviewers": ["a@b.example"]})
    assert status == 401  # lock 1 first
