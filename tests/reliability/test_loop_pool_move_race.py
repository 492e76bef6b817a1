"""A loop move and a loop booking racing for a pool member's last seat of a week (issue 18), on
SQLite and PostgreSQL: exactly one wins, the other is refused ``cap_reached``, nothing is left
pending, and the member ends within their weekly cap.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from calendar_backend import storage
from calendar_backend.contract import format_time, parse_time
from calendar_backend.pools import Member, Pool, local_week
from tests.devtenant.fixtures import DevTenantHandle
from tests.reliability.conftest import running_stack
from tests.service.conftest import Stack, next_week
from tests.service.test_loop_pools import book_body

DIEGO = "diegos@contoso.example"
WEEKLY = 2
TEMPLATE: dict[str, Any] = {
    "name": "Pool move race",
    "sessions": [{"title": "Coding", "minutes": 60, "pool": {"name": "Backend", "count": 1}}],
}


async def _search(stack: Stack, weeks: int) -> list[dict[str, Any]]:
    start, end = next_week(datetime.now(UTC))
    shift = timedelta(days=7 * weeks)
    body = {
        "template": TEMPLATE,
        "start": format_time(start + shift),
        "end": format_time(end + shift),
        "limit": 10,
    }
    status, doc = await stack.post("/v1/loops/search", body, stack.token())
    assert status == 200, doc
    assert len(doc["options"]) >= 2, doc["explanations"]
    return list(doc["options"])


async def _race(stack: Stack) -> None:
    async with stack.runtime.store.transaction() as tx:
        await storage.create_pool(
            tx, stack.devtenant.tenant_id, Pool("Backend", "backend", WEEKLY, 5, (Member(DIEGO),))
        )
    [first, *_] = await _search(stack, 0)
    status, booked = await stack.post("/v1/loops", book_body(TEMPLATE, first, "race-first"), stack.token())
    assert status == 201, booked
    later = await _search(stack, 1)  # the week after: Diego has room for two
    status, other = await stack.post("/v1/loops", book_body(TEMPLATE, later[0], "race-other"), stack.token())
    assert status == 201, other
    later = await _search(stack, 1)  # one seat left that week
    taken = {(s["start"], s["end"]) for s in other["sessions"]}
    free = [o for o in later if (o["sessions"][0]["start"], o["sessions"][0]["end"]) not in taken]
    move_to, book_at = free[0], free[-1]
    assert move_to["sessions"][0]["end"] <= book_at["sessions"][0]["start"], (move_to, book_at)
    session = booked["sessions"][0]
    moved = {
        "index": 0,
        "start": move_to["sessions"][0]["start"],
        "end": move_to["sessions"][0]["end"],
        "room": session["room"],
    }
    results = await asyncio.gather(
        stack.post(f"/v1/loops/{booked['id']}/reschedule", {"sessions": [moved]}, stack.token()),
        stack.post("/v1/loops", book_body(TEMPLATE, book_at, "race-last"), stack.token()),
    )
    won = [s for s, _ in results if s in (200, 201)]
    assert len(won) == 1, results
    assert [d["error"] for s, d in results if s not in (200, 201)] == ["cap_reached"], results
    async with stack.runtime.store.transaction() as tx:
        rows = [storage.interview_row(r) for r in await tx.execute(storage.interviews.select())]
    assert [r for r in rows if r.status is storage.InterviewStatus.PENDING] == []
    confirmed = [r for r in rows if r.status is storage.InterviewStatus.CONFIRMED and DIEGO in r.attendees]
    weeks = Counter(local_week(r.start, "UTC", 0) for r in confirmed)
    assert max(weeks.values()) == WEEKLY, weeks
    assert all(parse_time(s["start"]) for s in (session,))


async def test_a_move_and_a_booking_race_for_the_last_seat_on_sqlite(
    devtenant: DevTenantHandle, tmp_path: Path
) -> None:
    async with running_stack(devtenant, tmp_path) as stack:
        await _race(stack)


@pytest.mark.postgres
async def test_a_move_and_a_booking_race_for_the_last_seat_on_postgres(
    devtenant: DevTenantHandle, tmp_path: Path, fresh_pg_url: str
) -> None:
    async with running_stack(devtenant, tmp_path, fresh_pg_url) as stack:
        await _race(stack)
