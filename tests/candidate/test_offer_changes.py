"""Candidate changes through the Calendar Service's API, against devtenant: a cancel reopens the
link while changes are left and before expiry; the manager's notice uses the manager's zone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from calendar_backend import storage
from calendar_backend.contract import parse_time
from cards.local_time import format_range
from tests.candidate.conftest import Env
from tests.candidate.test_candidate_page import book_form
from tests.candidate.test_offers_api import capability, make_offer
from tests.reliability.conftest import organizer_events
from tests.service.conftest import ALEX, Stack, user


async def _slots(stack: Stack, token: str) -> dict[str, Any]:
    status, doc = await stack.post("/v1/candidate/slots", {"token": token})
    assert status == 200, doc
    return doc  # type: ignore[no-any-return]


async def _book(stack: Stack, token: str, start: str) -> dict[str, Any]:
    status, doc = await stack.post("/v1/candidate/book", {"token": token, "start": start})
    assert status == 201, doc
    return doc  # type: ignore[no-any-return]


async def _cancel(stack: Stack, token: str) -> dict[str, Any]:
    status, doc = await stack.post("/v1/candidate/cancel", {"token": token})
    assert status == 200, doc
    return doc  # type: ignore[no-any-return]


def _live(stack: Stack, *, theirs: bool = False) -> list[dict[str, Any]]:
    """The live panel events of the booking (``theirs``: the candidate's own invites)."""
    return [
        e
        for e in organizer_events(stack.devtenant, ALEX)
        if e.get("subject") == "Interview: Dana Smith"
        and ("dana.smith@example.com" in str(e.get("attendees"))) == theirs
    ]


async def test_cancel_reopens_the_link_until_the_change_limit(calendar_stack: Stack) -> None:
    stack = calendar_stack
    offer = await make_offer(stack, [user(stack, "Megan Bowen")["mail"]])
    token = capability(offer)
    slots = (await _slots(stack, token))["slots"]
    await _book(stack, token, slots[0]["start"])
    cancelled = await _cancel(stack, token)
    assert cancelled["reopened"] is True
    assert cancelled["booking"]["status"] == "cancelled"
    assert _live(stack) == []
    assert _live(stack, theirs=True) == []  # the candidate's own invite is cancelled too
    view = await _slots(stack, token)
    assert (view["status"], view["booking"], view["changes_left"]) == ("open", None, 1)
    assert slots[0]["start"] in {s["start"] for s in view["slots"]}  # its own time is free again
    rebooked = await _book(stack, token, slots[1]["start"])
    assert rebooked["booking"]["start"] == slots[1]["start"]
    assert [e["start"]["dateTime"][:16] for e in _live(stack)] == [slots[1]["start"][:16]]
    assert [e["start"]["dateTime"][:16] for e in _live(stack, theirs=True)] == [slots[1]["start"][:16]]
    last = await _cancel(stack, token)  # the second change: none left, the link stays closed
    assert last["reopened"] is False
    view = await _slots(stack, token)
    assert view["status"] == "booked"
    assert (view["booking"]["status"], view["can_change"], view["slots"]) == ("cancelled", False, [])
    status, refused = await stack.post("/v1/candidate/book", {"token": token, "start": slots[2]["start"]})
    assert status == 409, refused
    assert _live(stack) == []


async def test_cancel_after_the_link_expired_does_not_reopen_it(calendar_stack: Stack) -> None:
    stack = calendar_stack
    offer = await make_offer(stack, [user(stack, "Megan Bowen")["mail"]])
    token = capability(offer)
    await _book(stack, token, (await _slots(stack, token))["slots"][0]["start"])
    async with stack.runtime.store.transaction() as tx:
        await tx.execute(
            sa.update(storage.offers)
            .where(storage.offers.c.id == offer["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    cancelled = await _cancel(stack, token)
    assert cancelled["reopened"] is False
    view = await _slots(stack, token)  # still reachable: it shows the cancelled booking
    assert (view["status"], view["booking"]["status"]) == ("booked", "cancelled")


async def test_create_offer_refuses_an_unknown_manager_zone(calendar_stack: Stack) -> None:
    stack = calendar_stack
    start = datetime.now(UTC) + timedelta(days=2)
    body = {
        "interviewers": [user(stack, "Megan Bowen")["mail"]],
        "duration_min": 45,
        "window_start": start.strftime("%Y-%m-%dT%H:00:00Z"),
        "window_end": (start + timedelta(days=3)).strftime("%Y-%m-%dT%H:00:00Z"),
        "candidate_name": "Dana Smith",
        "manager_time_zone": "Mars/Olympus_Mons",
    }
    status, doc = await stack.post("/v1/offers", body, stack.token())
    assert status == 400, doc
    assert doc["field"] == "manager_time_zone"


async def test_manager_notice_is_in_the_managers_zone(candidate_env: Env) -> None:
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")], manager_time_zone="America/Los_Angeles")
    action, hidden, slots = book_form(await (await env.bot.get(f"/c/{token}")).text())
    resp = await env.bot.post(action, data={**hidden, "slot": slots[0]})
    assert resp.status == 200
    view = await _slots(env.stack, token)
    start, end = parse_time(view["booking"]["start"]), parse_time(view["booking"]["end"])
    la = format_range(start, end, ZoneInfo("America/Los_Angeles"))
    assert la != format_range(start, end, ZoneInfo("UTC"))
    assert [p["text"] for p in env.teams.posted] == [f"Dana Smith booked their interview: {la}."]


async def test_manager_notice_without_a_stored_zone_is_utc(candidate_env: Env) -> None:
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")])
    action, hidden, slots = book_form(await (await env.bot.get(f"/c/{token}")).text())
    await env.bot.post(action, data={**hidden, "slot": slots[0]})
    view = await _slots(env.stack, token)
    utc = format_range(
        parse_time(view["booking"]["start"]), parse_time(view["booking"]["end"]), ZoneInfo("UTC")
    )
    assert [p["text"] for p in env.teams.posted] == [f"Dana Smith booked their interview: {utc}."]


async def test_manager_notice_is_a_card_with_both_zones_join_link_and_actions(candidate_env: Env) -> None:
    env = candidate_env
    token, _ = await env.make_offer(
        [env.person("Megan Bowen")], role="Data Engineer", manager_time_zone="America/Los_Angeles"
    )
    action, hidden, slots = book_form(await (await env.bot.get(f"/c/{token}")).text())
    await env.bot.post(action, data={**hidden, "slot": slots[0]})
    (posted,) = env.teams.posted
    (attachment,) = posted["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    dumped = json.dumps(card, ensure_ascii=False)
    view = await _slots(env.stack, token)
    start, end = parse_time(view["booking"]["start"]), parse_time(view["booking"]["end"])
    assert format_range(start, end, ZoneInfo("America/Los_Angeles")) in dumped
    assert format_range(start, end, ZoneInfo("Asia/Kathmandu")) in dumped  # the candidate's
    assert "Data Engineer" in dumped
    assert "https://" in json.dumps([a for a in _walk(card) if a.get("type") == "Action.OpenUrl"])
    verbs = sorted(a["verb"] for a in _walk(card) if a.get("type") == "Action.Execute")
    assert verbs == ["cancel_interview", "reschedule_interview"]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


async def test_panel_invite_says_who_the_candidate_is_and_the_role(candidate_env: Env) -> None:
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")], role="Data & ML Engineer")
    action, hidden, slots = book_form(await (await env.bot.get(f"/c/{token}")).text())
    await env.bot.post(action, data={**hidden, "slot": slots[0]})
    (event,) = _live(env.stack)
    (own,) = _live(env.stack, theirs=True)  # the candidate's own invite: no panel address
    assert [a["emailAddress"]["address"] for a in own["attendees"]] == ["dana.smith@example.com"]
    assert env.person("Megan Bowen").lower() not in json.dumps(own).lower()
    assert "Data &amp; ML Engineer" in own["body"]["content"]
    assert "dana.smith@example.com" not in json.dumps(event["attendees"])
    body = event["body"]["content"]
    assert "<b>Candidate:</b> Dana Smith" in body
    assert "<b>Role:</b> Data &amp; ML Engineer" in body
