"""POST /v1/directory/check (issue 13 defect 3): each typed name's status, through the real API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp

from calendar_backend.client import CalendarServiceClient
from tests.service.conftest import Stack, next_week, user, user_in_zone


async def _check(stack: Stack, *queries: str) -> list[dict[str, Any]]:
    status, doc = await stack.post("/v1/directory/check", {"queries": list(queries)}, stack.token())
    assert status == 200, doc
    return list(doc["people"])


async def test_each_name_gets_its_own_status(calendar_stack: Stack) -> None:
    got = await _check(
        calendar_stack, "Megan", "Ben Walters", "Lidia", "Miriam", "Nobody Known", "Al", "Rainier"
    )
    by_query = {g["query"]: g for g in got}
    assert [g["query"] for g in got] == [
        "Megan",
        "Ben Walters",
        "Lidia",
        "Miriam",
        "Nobody Known",
        "Al",
        "Rainier",
    ]
    assert by_query["Megan"]["status"] == "ok"
    assert by_query["Megan"]["person"]["display_name"] == "Megan Bowen"
    assert by_query["Ben Walters"]["status"] == "no_mailbox"
    assert by_query["Lidia"]["status"] == "disabled"
    assert by_query["Lidia"]["person"]["display_name"] == "Lidia Holloway"
    assert by_query["Miriam"]["status"] == "unreadable"
    assert by_query["Nobody Known"] == {
        "query": "Nobody Known",
        "status": "not_found",
        "person": None,
        "choices": [],
    }
    assert by_query["Al"]["status"] == "ambiguous"
    assert len(by_query["Al"]["choices"]) >= 2
    assert by_query["Rainier"]["status"] == "ok"
    assert by_query["Rainier"]["person"]["is_room"] is True


async def test_the_same_person_three_ways_is_a_duplicate(calendar_stack: Stack) -> None:
    got = await _check(calendar_stack, "Megan", "meganb@contoso.example", "megan bowen", "Adele")
    assert [g["status"] for g in got] == ["ok", "duplicate", "duplicate", "ok"]
    assert {g["person"]["address"] for g in got[:3]} == {"meganb@contoso.example"}


async def test_check_returns_no_calendar_content(calendar_stack: Stack) -> None:
    got = await _check(calendar_stack, "Megan")
    assert set(got[0]) == {"query", "status", "person", "choices"}
    assert set(got[0]["person"]) == {"address", "display_name", "time_zone", "is_room"}


async def test_my_settings_give_the_mailbox_zone_as_iana(calendar_stack: Stack) -> None:
    """Issue 13 defect 5: the manager's zone comes from Outlook, not a UTC fallback."""
    stack = calendar_stack
    status, doc = await stack.get("/v1/me/settings", stack.token())
    assert status == 200
    alex = user(stack, "Alex Wilber")
    windows = alex["mailboxSettings"]["timeZone"]
    assert windows == "Pacific Standard Time"
    assert doc == {"time_zone": "America/Los_Angeles"}
    india = user_in_zone(stack, "India Standard Time")
    status, doc = await stack.get("/v1/me/settings", stack.token(india["userPrincipalName"]))
    assert status == 200
    assert doc["time_zone"] in {"Asia/Kolkata", "Asia/Calcutta"}


async def test_the_bots_client_speaks_the_new_operations(calendar_stack: Stack) -> None:
    """CalendarServiceClient (what the bot uses) against the real API: check_people,
    my_time_zone and find_slots with the candidate's zone."""
    stack = calendar_stack
    base = str(stack.client.make_url("/")).rstrip("/")
    async with aiohttp.ClientSession() as session:
        client = CalendarServiceClient(base, session)
        checks = await client.check_people(stack.token(), ["Megan", "Rainier", "Lidia"])
        assert [(c.status, c.person.display_name if c.person else None) for c in checks] == [
            ("ok", "Megan Bowen"),
            ("ok", "Redmond 1.01 Rainier"),
            ("disabled", "Lidia Holloway"),
        ]
        assert checks[1].person is not None
        assert checks[1].person.is_room
        assert await client.my_time_zone(stack.token()) == "America/Los_Angeles"
        start, end = next_week(datetime.now(UTC))
        result = await client.find_slots(
            stack.token(),
            interviewers=["meganb@contoso.example"],
            duration_min=60,
            start=start,
            end=end,
            limit=200,
            candidate_time_zone="Asia/Kolkata",
            candidate_day=("09:00", "18:00"),
        )
        marks = [s.outside_candidate_day for s in result.slots]
        assert marks == sorted(marks)
        assert any(marks)


async def test_a_manager_without_a_mailbox_can_still_check_a_panel(calendar_stack: Stack) -> None:
    """getSchedule on the caller's own path answers 404 for Ben (no mailbox): fall back."""
    stack = calendar_stack
    status, doc = await stack.post(
        "/v1/directory/check", {"queries": ["Megan", "Miriam"]}, stack.token("benw@contoso.example")
    )
    assert status == 200, doc
    assert [p["status"] for p in doc["people"]] == ["ok", "unreadable"]
