"""Fifty concurrent loop bookings drawing from one pool (issue 18), on SQLite and PostgreSQL: no
5xx, nothing pending, no partial loop, and no member ever over a weekly or daily cap (each counted
in the member's own zone), whatever option or member each booking asked for.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from calendar_backend import storage
from calendar_backend.pools import Member, Pool, local_day, local_week
from tests.devtenant.fixtures import DevTenantHandle
from tests.reliability.conftest import running_stack
from tests.service.conftest import Stack
from tests.service.test_loop_pools import POOL, book_body, search

WEEKLY, DAILY = 2, 1
ZONES = ("America/Los_Angeles", "Asia/Kathmandu", "UTC", "Europe/London")
TEMPLATE: dict[str, Any] = {
    "name": "Pool race",
    "sessions": [
        {"title": "Coding", "minutes": 30, "pool": {"name": "Backend", "count": 1}},
        {"title": "Design", "minutes": 30, "pool": {"name": "Backend", "count": 1}},
    ],
}


async def _race(stack: Stack) -> None:
    members = tuple(Member(a, ZONES[i % len(ZONES)]) for i, a in enumerate(POOL))
    async with stack.runtime.store.transaction() as tx:
        await storage.create_pool(
            tx, stack.devtenant.tenant_id, Pool("Backend", "backend", WEEKLY, DAILY, members)
        )
    status, doc = await search(stack, TEMPLATE, limit=10)
    assert status == 200, doc
    options = doc["options"]
    assert options, doc["explanations"]
    rng = random.Random(18)
    calls = []
    for i in range(50):
        option = rng.choice(options)
        if i % 3 == 0:  # the manager's own picks now and then (the search would not offer them)
            who = rng.sample(POOL, 2)
            option = {
                **option,
                "sessions": [
                    {**s, "pool": {**s["pool"], "members": [who[s["index"]]]}} for s in option["sessions"]
                ],
            }
        calls.append(stack.post("/v1/loops", book_body(TEMPLATE, option, f"pool-race-{i}"), stack.token()))
    results = await asyncio.gather(*calls)
    assert all(status < 500 for status, _ in results), [d for s, d in results if s >= 500]
    assert any(status == 201 for status, _ in results)
    async with stack.runtime.store.transaction() as tx:
        rows = [storage.interview_row(r) for r in await tx.execute(storage.interviews.select())]
        loops = {r.id: r.status for r in await tx.execute(storage.loops.select())}
    assert [r for r in rows if r.status is storage.InterviewStatus.PENDING] == []
    for loop_id, status in loops.items():
        live = [r for r in rows if r.loop_id == loop_id and r.status is storage.InterviewStatus.CONFIRMED]
        assert len(live) == (2 if status == "confirmed" else 0), status
    confirmed = [r for r in rows if r.status is storage.InterviewStatus.CONFIRMED]
    for m in members:
        mine = [r.start for r in confirmed if m.address in r.attendees]
        weeks = Counter(local_week(s, m.zone, m.week_start) for s in mine)
        days = Counter(local_day(s, m.zone) for s in mine)
        assert max(weeks.values(), default=0) <= WEEKLY, (m.address, weeks)
        assert max(days.values(), default=0) <= DAILY, (m.address, days)
    refused = {d["error"] for s, d in results if s != 201}
    assert refused <= {"slot_taken", "cap_reached"}, refused


async def test_fifty_pooled_loop_bookings_never_pass_a_cap_on_sqlite(
    devtenant: DevTenantHandle, tmp_path: Path
) -> None:
    async with running_stack(devtenant, tmp_path) as stack:
        await _race(stack)


@pytest.mark.postgres
async def test_fifty_pooled_loop_bookings_never_pass_a_cap_on_postgres(
    devtenant: DevTenantHandle, tmp_path: Path, fresh_pg_url: str
) -> None:
    async with running_stack(devtenant, tmp_path, fresh_pg_url) as stack:
        await _race(stack)
