"""POST /v1/directory/check (issue 13 defect 3): each typed name's status, through the real API."""

from __future__ import annotations

from typing import Any

from tests.service.conftest import Stack, user, user_in_zone


async def _check(stack: Stack, *queries: str) -> list[dict[str, Any]]:
    status, doc = await stack.post("/v1/directory/check", {"queries": list(queries)},
                                   stack.token())
    assert status == 200, doc
    return list(doc["people"])


async def test_each_name_gets_its_own_status(calendar_stack: Stack) -> None:
    got = await _check(calendar_stack, "Megan", "Ben Walters", "Lidia", "Miriam", "Nobody Known",
                       "Al", "Rainier")
    by_query = {g["query"]: g for g in got}
    assert [g["query"] for g in got] == ["Megan", "Ben Walters", "Lidia", "Miriam",
                                         "Nobody Known", "Al", "Rainier"]
    assert by_query["Megan"]["status"] == "ok"
    assert by_query["Megan"]["person"]["display_name"] == "Megan Bowen"
    assert by_query["Ben Walters"]["status"] == "no_mailbox"
    assert by_query["Lidia"]["status"] == "disabled"
    assert by_query["Lidia"]["person"]["display_name"] == "Lidia Holloway"
    assert by_query["Miriam"]["status"] == "unreadable"
    assert by_query["Nobody Known"] == {"query": "Nobody Known", "status": "not_found",
                                       "person": None, "choices": []}
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
