"""A whole scheduling request under Graph faults: 30% throttling, lost create answers.

Throttled scheduling gives exactly the slots a healthy Graph gives, and books exactly one event; a
create whose answer never arrives (the service gives up) is finished by the retry with the same
idempotency key, which finds the event by its transactionId instead of creating a second one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from calendar_backend.contract import format_time, parse_time
from devtenant.zones import to_utc
from tests.devtenant.fixtures import DevTenantHandle
from tests.reliability.conftest import faults, organizer_events, running_stack
from tests.service.conftest import ALEX, Stack, next_week

PANEL = ("Megan Bowen", "Adele Vance", "Lee Gu")


def _mail(dt: DevTenantHandle, name: str) -> str:
    return next(str(u["mail"]) for u in dt.tenant.users() if u["displayName"] == name)


def _find(people: list[str]) -> dict[str, Any]:
    start, end = next_week(datetime.now(UTC))
    return {
        "interviewers": people,
        "duration_min": 45,
        "start": format_time(start),
        "end": format_time(end),
        "all": True,
        "limit": 500,
    }


def _book(people: list[str], slot: dict[str, str], key: str) -> dict[str, Any]:
    return {
        "candidate": {"name": "Dana Smith", "email": "dana.smith@example.com"},
        "interviewers": people,
        "start": slot["start"],
        "end": slot["end"],
        "idempotency_key": key,
    }


def _at(dt: DevTenantHandle, address: str, start: str) -> list[dict[str, Any]]:
    """The live events at ``start``, without the candidate's own invite (the organizer's
    second event of a booking; see tests/service/test_candidate_invite.py)."""
    return [
        e
        for e in organizer_events(dt, address)
        if to_utc(e["start"]) == parse_time(start) and "dana.smith@example.com" not in str(e.get("attendees"))
    ]


def _theirs(dt: DevTenantHandle, start: str) -> list[dict[str, Any]]:
    """The candidate's own invites at ``start`` (in the organizer's calendar)."""
    return [
        e
        for e in organizer_events(dt, ALEX)
        if to_utc(e["start"]) == parse_time(start) and "dana.smith@example.com" in str(e.get("attendees"))
    ]


async def _slots(stack: Stack, people: list[str]) -> list[dict[str, str]]:
    status, doc = await stack.post("/v1/slots/find", _find(people), stack.token())
    assert status == 200, doc
    return doc["slots"]  # type: ignore[no-any-return]


async def test_thirty_percent_throttling_gives_the_same_slots_and_one_booking(
    devtenant: DevTenantHandle, tmp_path: Path
) -> None:
    people = [_mail(devtenant, n) for n in PANEL]
    async with running_stack(devtenant, tmp_path) as stack:
        healthy = await _slots(stack, people)
        assert len(healthy) > 5
        faults(devtenant, throttle_rate=0.3, retry_after_s=0.02, seed=3)
        before = int(devtenant.tenant.counters["graph"])
        runs = [await _slots(stack, people) for _ in range(6)]
        assert all(run == healthy for run in runs)
        slot = healthy[len(healthy) // 2]
        status, booked = await stack.post("/v1/interviews", _book(people, slot, "k-throttle"), stack.token())
        assert status == 201, booked
        throttled_calls = int(devtenant.tenant.counters["graph"]) - before
        assert throttled_calls > 6 + 3, "6 finds + /me, re-check, create: some were retried"
    assert booked["status"] == "confirmed"
    for address in (ALEX, *people):
        assert len(_at(devtenant, address, slot["start"])) == 1, address
    assert len(_theirs(devtenant, slot["start"])) == 1


async def test_a_lost_create_answer_is_finished_by_the_retry_without_a_duplicate(
    devtenant: DevTenantHandle, tmp_path: Path
) -> None:
    people = [_mail(devtenant, "Megan Bowen")]
    key = str(uuid.uuid4())
    async with running_stack(devtenant, tmp_path, graph_max_attempts=1) as stack:
        slot = (await _slots(stack, people))[3]
        faults(devtenant, drop_create_response=1)
        status, lost = await stack.post("/v1/interviews", _book(people, slot, key), stack.token())
        assert status == 504, lost  # the service gave up: the event exists, the row is pending
        assert len(_at(devtenant, ALEX, slot["start"])) == 1
        assert _theirs(devtenant, slot["start"]) == []  # not written: the panel's answer was lost
        status, done = await stack.post("/v1/interviews", _book(people, slot, key), stack.token())
        assert status == 201, done
        again_status, again = await stack.post("/v1/interviews", _book(people, slot, key), stack.token())
    events = _at(devtenant, ALEX, slot["start"])
    assert len(events) == 1
    assert done["status"] == "confirmed"
    assert done["event_id"] == events[0]["id"]
    assert (again_status, again["id"]) == (201, done["id"])
    assert len(_at(devtenant, people[0], slot["start"])) == 1
    assert len(_theirs(devtenant, slot["start"])) == 1  # the retry wrote the candidate's once
