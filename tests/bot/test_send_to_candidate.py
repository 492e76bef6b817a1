""""Send to candidate": the bot passes what the flow knows (the candidate's e-mail, the manager's
zone) to create_offer, and the real client carries them to the real Calendar Service."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
from botbuilder.core.adapters import TestAdapter

from calendar_backend.client import CalendarServiceClient
from tests.bot.conftest import FakeCalendarService
from tests.bot.test_schedule_dialog import actions_of, full_flow, invoke, invoke_body, say
from tests.devtenant.fixtures import devtenant, devtenant_server  # noqa: F401
from tests.service.conftest import Stack, calendar_stack, next_week, user  # noqa: F401


async def test_send_to_candidate_passes_the_flows_email_and_zone(
        adapter: TestAdapter, fake: FakeCalendarService) -> None:
    card = await full_flow(adapter)
    send = next(a for a in actions_of(card) if a["verb"] == "send_to_candidate")
    body = invoke_body(await say(adapter, invoke(send["data"])))
    assert "https://bot.example/c/abc" in str(body["value"])
    [request] = fake.offer_requests
    assert request["candidate_email"] == "dana@example.com"
    assert request["candidate_name"] == "Dana Smith"
    assert request["manager_time_zone"] == "Europe/London"  # the activity's localTimezone
    assert request["conversation_ref"]["conversation"]["id"] == "a:conv1"


async def test_client_seals_the_email_so_the_page_does_not_ask(
        calendar_stack: Stack) -> None:  # noqa: F811
    stack = calendar_stack
    start, end = next_week(datetime.now(UTC))
    base = str(stack.client.make_url("/")).rstrip("/")
    megan = str(user(stack, "Megan Bowen")["mail"])
    async with aiohttp.ClientSession() as session:
        client = CalendarServiceClient(base, session)
        known = await client.create_offer(
            stack.token(), interviewers=[megan], duration_min=45, window_start=start,
            window_end=end, candidate_name="Dana Smith", candidate_email="dana@example.com",
            manager_time_zone="Europe/London")
        unknown = await client.create_offer(
            stack.token(), interviewers=[megan], duration_min=45, window_start=start,
            window_end=end, candidate_name="Dana Smith")
        assert known.url
        assert unknown.url
        known_doc = await client.candidate_slots(known.url.rsplit("/c/", 1)[1], None)
        unknown_doc = await client.candidate_slots(unknown.url.rsplit("/c/", 1)[1], None)
    assert known_doc["needs_email"] is False
    assert unknown_doc["needs_email"] is True
