"""find_slots through the real HTTP API against devtenant, checked against an independent oracle.

The oracle expands each interviewer's raw tenant-file calendar with devtenant's own recurrence engine and
applies DESIGN.md's slot semantics directly; the service instead goes through OBO, getSchedule and the pure
engine. Both must agree on every grid point of the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calendar_backend.contract import format_time, parse_time
from devtenant.recurrence import expand
from devtenant.zones import to_utc, zone_for
from tests.service.conftest import Stack

BLOCKING = {"busy", "oof", "tentative", "unknown"}
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def next_week(now: datetime) -> tuple[datetime, datetime]:
    monday = (now + timedelta(days=7 - now.weekday())).replace(hour=0, minute=0, second=0,
                                                                microsecond=0)
    return monday, monday + timedelta(days=5)


def user(stack: Stack, name: str) -> dict[str, Any]:
    return next(u for u in stack.devtenant.tenant.users() if u["displayName"] == name)


def user_in_zone(stack: Stack, zone: str) -> dict[str, Any]:
    return next(u for u in stack.devtenant.tenant.users()
                if u.get("accountEnabled", True) and u.get("hasMailbox", True)
                and u["mailboxSettings"]["timeZone"] == zone)


def oracle_busy(person: dict[str, Any], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    busy = []
    for occ in expand(person.get("events", []), start, end):
        if occ.get("isCancelled") or (occ.get("responseStatus") or {}).get("response") == "declined":
            continue
        if occ.get("showAs", "busy") not in BLOCKING:
            continue
        busy.append((to_utc(occ["start"]), to_utc(occ["end"])))
    return busy


def oracle_ok(person: dict[str, Any], busy: list[tuple[datetime, datetime]], s: datetime,
              e: datetime) -> bool:
    wh = person["mailboxSettings"]["workingHours"]
    zone: ZoneInfo = zone_for(wh["timeZone"]["name"])
    local = s.astimezone(zone)
    if DAYS[local.weekday()] not in wh["daysOfWeek"]:
        return False
    day = local.date()
    w_start = datetime.combine(day, time.fromisoformat(wh["startTime"][:8]), zone).astimezone(UTC)
    w_end = datetime.combine(day, time.fromisoformat(wh["endTime"][:8]), zone).astimezone(UTC)
    if not (w_start <= s and e <= w_end):
        return False
    return not any(b0 < e and s < b1 for b0, b1 in busy)


async def test_slots_match_the_oracle_for_a_cross_zone_panel(calendar_stack: Stack) -> None:
    stack = calendar_stack
    people = [user(stack, "Megan Bowen"), user(stack, "Adele Vance"),
              user_in_zone(stack, "India Standard Time")]
    start, end = next_week(datetime.now(UTC))
    status, doc = await stack.post("/v1/slots/find", {
        "interviewers": [p["mail"] for p in people], "duration_min": 45,
        "start": format_time(start), "end": format_time(end), "all": True, "limit": 500,
    }, stack.token())
    assert status == 200, doc
    got = {(parse_time(s["start"]), parse_time(s["end"])) for s in doc["slots"]}
    busy = {p["mail"]: oracle_busy(p, start - timedelta(days=1), end + timedelta(days=1))
            for p in people}
    expected = set()
    s = start
    while s + timedelta(minutes=45) <= end:
        e = s + timedelta(minutes=45)
        if all(oracle_ok(p, busy[p["mail"]], s, e) for p in people):
            expected.add((s, e))
        s += timedelta(minutes=15)
    assert got == expected
    assert doc["blockers"] == [] or not got


async def test_best_first_answer_is_a_subset_and_limited(calendar_stack: Stack) -> None:
    stack = calendar_stack
    start, end = next_week(datetime.now(UTC))
    body = {"interviewers": [user(stack, "Megan Bowen")["mail"]], "duration_min": 30,
            "start": format_time(start), "end": format_time(end), "limit": 5}
    status, ranked = await stack.post("/v1/slots/find", body, stack.token())
    assert status == 200
    status, every = await stack.post("/v1/slots/find", {**body, "all": True, "limit": 500},
                                     stack.token())
    assert status == 200
    assert 0 < len(ranked["slots"]) <= 5
    assert all(s in every["slots"] for s in ranked["slots"])
    assert every["slots"] == sorted(every["slots"], key=lambda s: s["start"])


async def test_a_calendar_that_cannot_be_read_is_named_not_free(calendar_stack: Stack) -> None:
    stack = calendar_stack
    no_mailbox = next(u for u in stack.devtenant.tenant.users() if u.get("hasMailbox") is False)
    address = (no_mailbox.get("mail") or no_mailbox["userPrincipalName"]).lower()
    start, end = next_week(datetime.now(UTC))
    status, doc = await stack.post("/v1/slots/find", {
        "interviewers": [user(stack, "Megan Bowen")["mail"], address],
        "duration_min": 30, "start": format_time(start), "end": format_time(end)},
        stack.token())
    assert status == 200, doc
    assert doc["slots"] == []
    assert {"address": address, "reason": "unreadable"} in doc["blockers"]


async def test_find_slots_is_one_graph_round_trip_for_up_to_20(calendar_stack: Stack) -> None:
    stack = calendar_stack
    people = [u["mail"] for u in stack.devtenant.tenant.users()
              if u.get("accountEnabled", True) and u.get("hasMailbox", True)][:20]
    start, end = next_week(datetime.now(UTC))
    await stack.post("/v1/slots/find", {"interviewers": people[:1], "duration_min": 30,
                                        "start": format_time(start), "end": format_time(end)},
                     stack.token())  # warms the user's token cache (OBO happens once)
    before = stack.graph_requests()
    status, doc = await stack.post("/v1/slots/find", {
        "interviewers": people, "duration_min": 30, "start": format_time(start),
        "end": format_time(end)}, stack.token())
    assert status == 200, doc
    assert stack.graph_requests() - before == 1
