""" "Send to candidate": the bot passes what the flow knows (the candidate's e-mail, the manager's
zone) to create_offer, and the real client carries them to the real Calendar Service.

Link options (issue 14): "Send to candidate instead" creates the link at once with the defaults
(the candidate's day prefilled from the working day the manager gave, else 08:00-20:00); the
"Link options" inputs beside it add a role, the interviewers' first names and another day. The
link card says what was chosen; a role given there also reaches the panel's invite when the
manager books from the same search instead."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
from botbuilder.core.adapters import TestAdapter

from calendar_backend.client import CalendarServiceClient
from tests.bot.conftest import FakeCalendarService
from tests.bot.test_schedule_dialog import (
    actions_of,
    cards,
    full_flow,
    invoke,
    invoke_body,
    say,
)
from tests.devtenant.fixtures import devtenant, devtenant_server  # noqa: F401
from tests.service.conftest import Stack, calendar_stack, next_week, user  # noqa: F401


async def test_send_to_candidate_passes_the_flows_email_and_zone(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    card = await full_flow(adapter)
    send = next(a for a in actions_of(card) if a["verb"] == "send_to_candidate")
    body = invoke_body(await say(adapter, invoke(send["data"])))
    assert "https://bot.example/c/abc" in str(body["value"])
    [request] = fake.offer_requests
    assert request["candidate_email"] == "dana@example.com"
    assert request["candidate_name"] == "Dana Smith"
    assert request["manager_time_zone"] == "Europe/London"  # the activity's localTimezone
    assert request["conversation_ref"]["conversation"]["id"] == "a:conv1"


async def test_client_seals_the_email_so_the_page_does_not_ask(calendar_stack: Stack) -> None:
    stack = calendar_stack
    start, end = next_week(datetime.now(UTC))
    base = str(stack.client.make_url("/")).rstrip("/")
    megan = str(user(stack, "Megan Bowen")["mail"])
    async with aiohttp.ClientSession() as session:
        client = CalendarServiceClient(base, session)
        known = await client.create_offer(
            stack.token(),
            interviewers=[megan],
            duration_min=45,
            window_start=start,
            window_end=end,
            candidate_name="Dana Smith",
            candidate_email="dana@example.com",
            manager_time_zone="Europe/London",
        )
        unknown = await client.create_offer(
            stack.token(),
            interviewers=[megan],
            duration_min=45,
            window_start=start,
            window_end=end,
            candidate_name="Dana Smith",
        )
        assert known.url
        assert unknown.url
        known_doc = await client.candidate_slots(known.url.rsplit("/c/", 1)[1], None)
        unknown_doc = await client.candidate_slots(unknown.url.rsplit("/c/", 1)[1], None)
    assert known_doc["needs_email"] is False
    assert unknown_doc["needs_email"] is True


def _show_card(card: dict[str, Any], title: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.ShowCard" and node.get("title") == title:
                found.append(node["card"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    [shown] = found
    return shown


def _inputs(card: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Input."):
                found[node["id"]] = node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


def _create_with(card: dict[str, Any], **values: object) -> dict[str, Any]:
    """What Teams posts for "Create link with these options": the button's data and every
    input's value (its default when not changed)."""
    options = _show_card(card, "Link options")
    [create] = actions_of(options)
    data = dict(create["data"])
    for name, field in _inputs(options).items():
        data[name] = values.get(name, field.get("value", ""))
    return data


def _link_text(body: dict[str, Any]) -> str:
    return json.dumps(body["value"], ensure_ascii=False)


async def test_send_to_candidate_uses_the_default_day_without_asking(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    card = await full_flow(adapter)
    send = next(a for a in actions_of(card) if a.get("title") == "Send to candidate instead")
    body = invoke_body(await say(adapter, invoke(send["data"])))
    [request] = fake.offer_requests
    assert (request["role"], request["show_interviewer_names"], request["day_hours"]) == (
        None,
        False,
        (8, 20),
    )
    text = _link_text(body)
    assert "Booking link ready" in text
    assert "Works until" in text
    assert "Names not shown" in text
    assert "08:00\u201320:00 in their time zone" in text


async def test_link_options_prefill_the_candidates_working_day(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    await say(adapter, "schedule Dana Smith (dana@example.com) with Megan, 45 min, next week")
    await say(adapter, "India 09:30-17:30")
    [card] = cards(await say(adapter, "none"))
    inputs = _inputs(_show_card(card, "Link options"))
    assert (inputs["day_start"]["value"], inputs["day_end"]["value"]) == ("09:00", "18:00")
    send = next(a for a in actions_of(card) if a.get("title") == "Send to candidate instead")
    await say(adapter, invoke(send["data"]))
    assert fake.offer_requests[-1]["day_hours"] == (9, 18)  # the same day without the options


async def test_link_options_reach_the_offer_and_the_card(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    card = await full_flow(adapter)
    data = _create_with(
        card, role=" Senior Data Engineer ", show_names="true", day_start="07:00", day_end="24:00"
    )
    body = invoke_body(await say(adapter, invoke(data)))
    [request] = fake.offer_requests
    assert request["role"] == "Senior Data Engineer"
    assert request["show_interviewer_names"] is True
    assert request["day_hours"] == (7, 24)
    text = _link_text(body)
    assert "Senior Data Engineer" in text
    assert "First names shown" in text
    assert "07:00\u201324:00 in their time zone" in text
    assert "Works until" in text


async def test_a_role_given_for_the_link_reaches_a_booking_from_the_same_search(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    card = await full_flow(adapter)
    await say(adapter, invoke(_create_with(card, role="Data Engineer")))
    choose = next(a for a in actions_of(card) if a["verb"] == "choose_slot")
    confirmation = invoke_body(await say(adapter, invoke(choose["data"])))
    confirm = next(a for a in actions_of(confirmation["value"]) if a["verb"] == "confirm")
    await say(adapter, invoke(confirm["data"]))
    assert fake.create_requests[-1]["role"] == "Data Engineer"


async def test_a_booking_without_a_role_sends_none(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    card = await full_flow(adapter)
    choose = next(a for a in actions_of(card) if a["verb"] == "choose_slot")
    confirmation = invoke_body(await say(adapter, invoke(choose["data"])))
    confirm = next(a for a in actions_of(confirmation["value"]) if a["verb"] == "confirm")
    await say(adapter, invoke(confirm["data"]))
    assert fake.create_requests[-1]["role"] is None


async def test_bad_link_options_are_refused_and_create_nothing(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    card = await full_flow(adapter)
    for bad in (
        {"role": "Engineer\nInjected"},
        {"role": "<b>x</b>"},
        {"show_names": "yes"},
        {"day_start": "20:00", "day_end": "08:00"},
        {"day_start": "08:30"},
        {"day_end": "25:00"},
    ):
        body = invoke_body(await say(adapter, invoke(_create_with(card, **bad))))
        assert body["statusCode"] == 400, bad
    assert fake.offer_requests == []
    # Only the start sent (a client that drops an unchanged input): it must still come before
    # the day's end the flow knows (20:00 here).
    data = {k: v for k, v in _create_with(card, day_start="21:00").items() if k != "day_end"}
    body = invoke_body(await say(adapter, invoke(data)))
    assert "must start before it ends" in _link_text(body)
    assert fake.offer_requests == []
