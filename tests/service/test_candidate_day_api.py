"""find_slots with the candidate's working day (issue 13 defect 7), through the real HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from calendar_backend.contract import format_time, parse_time
from tests.service.conftest import Stack, next_week, user

KOLKATA = ZoneInfo("Asia/Kolkata")


def _in_day(doc_slot: dict[str, str], zone: ZoneInfo, first: int, last: int) -> bool:
    start = parse_time(doc_slot["start"]).astimezone(zone)
    end = parse_time(doc_slot["end"]).astimezone(zone)
    return start.hour >= first and start.date() == end.date() and (end.hour, end.minute) <= (last, 0)


async def test_pacific_panel_ranks_the_india_candidates_day_first(calendar_stack: Stack) -> None:
    stack = calendar_stack
    start, end = next_week(datetime.now(UTC))
    body = {
        "interviewers": [user(stack, "Megan Bowen")["mail"]],
        "duration_min": 60,
        "start": format_time(start),
        "end": format_time(end),
        "limit": 500,
    }
    status, plain = await stack.post("/v1/slots/find", body, stack.token())
    assert status == 200
    status, doc = await stack.post(
        "/v1/slots/find", {**body, "candidate_time_zone": "Asia/Kolkata"}, stack.token()
    )
    assert status == 200
    slots = doc["slots"]
    assert sorted(s["start"] for s in slots) == sorted(s["start"] for s in plain["slots"])
    marks = [bool(s.get("outside_candidate_day")) for s in slots]
    assert marks == sorted(marks)  # every slot inside the candidate's day comes first
    assert any(marks)  # a Pacific working day is mostly night in India
    for s, outside in zip(slots, marks, strict=True):
        assert _in_day(s, KOLKATA, 8, 20) is not outside
    assert all("outside_candidate_day" not in s for s in plain["slots"])


async def test_candidate_day_is_configurable_and_checked(calendar_stack: Stack) -> None:
    stack = calendar_stack
    start, end = next_week(datetime.now(UTC))
    body = {
        "interviewers": [user(stack, "Megan Bowen")["mail"]],
        "duration_min": 30,
        "start": format_time(start),
        "end": format_time(end),
        "limit": 500,
        "all": True,
        "candidate_time_zone": "Asia/Kolkata",
        "candidate_day_start": "06:00",
        "candidate_day_end": "23:00",
    }
    status, doc = await stack.post("/v1/slots/find", body, stack.token())
    assert status == 200
    for s in doc["slots"]:
        assert _in_day(s, KOLKATA, 6, 23) is not bool(s.get("outside_candidate_day"))
    assert doc["slots"] == sorted(doc["slots"], key=lambda s: s["start"])
    status, _ = await stack.post(
        "/v1/slots/find", {**body, "candidate_time_zone": "Mars/Base"}, stack.token()
    )
    assert status == 400
    status, _ = await stack.post(
        "/v1/slots/find",
        {**body, "candidate_day_start": "21:00", "candidate_day_end": "09:00"},
        stack.token(),
    )
    assert status == 400
