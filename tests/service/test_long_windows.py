"""Long windows (issue 12 finding 11): a search or link window may span up to 61 days.

Graph's getSchedule takes a window shorter than 62 days, and the service reads one day (plus the
buffer) either side of the requested window. A 60- or 61-day window used to answer 502 every
time, and links with such windows were dead. The read is now split into several getSchedule calls
(both availability sources); 62 days is refused as invalid (400) everywhere, including link
creation. Slots found over a long window equal the union of the slots found over its pieces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calendar_backend.contract import format_time
from tests.devtenant.fixtures import DevTenantHandle
from tests.service.conftest import Stack, find_all, next_week, service_for

MEGAN = "meganb@contoso.example"


@pytest.fixture(params=["get_schedule", "calendar_view"])
async def any_source(
    request: pytest.FixtureRequest, devtenant: DevTenantHandle, tmp_path: Path
) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path, availability_source=request.param) as stack:
        yield stack


def _window(days: int) -> tuple[datetime, datetime]:
    start = next_week(datetime.now(UTC))[0]
    return start, start + timedelta(days=days)


@pytest.mark.parametrize("days", [60, 61])
async def test_a_window_of_60_or_61_days_finds_every_slot(any_source: Stack, days: int) -> None:
    stack = any_source
    start, end = _window(days)
    slots, doc = await find_all(stack, [MEGAN], start, end, 30)
    assert not doc["blockers"], doc["blockers"]
    middle = start + timedelta(days=days // 2)
    first, _ = await find_all(stack, [MEGAN], start, middle, 30)
    second, _ = await find_all(stack, [MEGAN], middle, end, 30)
    assert first | second <= slots
    assert all(s < middle < e for s, e in slots - (first | second))  # only those on the cut
    assert max(slots)[1] > end - timedelta(days=4)  # the read reached the window's end


async def test_a_window_of_62_days_is_refused_as_invalid(calendar_stack: Stack) -> None:
    stack = calendar_stack
    start, end = _window(62)
    status, doc = await stack.post(
        "/v1/slots/find",
        {"interviewers": [MEGAN], "duration_min": 30, "start": format_time(start), "end": format_time(end)},
        stack.token(),
    )
    assert (status, doc["error"]) == (400, "invalid_request"), doc
    status, doc = await stack.post("/v1/offers", _offer(start, end), stack.token())
    assert (status, doc["error"]) == (400, "invalid_request"), doc


def _offer(start: datetime, end: datetime) -> dict[str, object]:
    return {
        "interviewers": [MEGAN],
        "duration_min": 30,
        "window_start": format_time(start),
        "window_end": format_time(end),
        "candidate_name": "Dana Smith",
        "candidate_email": "dana.smith@example.com",
    }


@pytest.mark.parametrize("days", [60, 61])
async def test_a_link_with_a_60_or_61_day_window_is_alive(calendar_stack: Stack, days: int) -> None:
    stack = calendar_stack
    start, end = _window(days)
    status, offer = await stack.post("/v1/offers", _offer(start, end), stack.token())
    assert status == 201, offer
    token = str(offer["url"]).rsplit("/c/", 1)[1]
    status, view = await stack.post("/v1/candidate/slots", {"token": token})
    assert status == 200, view
    assert view["slots"]  # (the page lists the first 200; the search test covers the end)
    status, booked = await stack.post(
        "/v1/candidate/book", {"token": token, "start": view["slots"][-1]["start"]}
    )
    assert status == 201, booked
