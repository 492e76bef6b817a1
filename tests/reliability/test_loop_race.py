"""Fifty concurrent loop bookings competing for overlapping people and times (issue 17), on SQLite
and PostgreSQL: no 5xx, no two OpenSlot events of one person overlap, no partial loop (a confirmed
loop has every session confirmed with its events; any other loop has none), nothing pending, and
Outlook holds exactly the confirmed sessions' events.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from pathlib import Path

import pytest

from calendar_backend import storage
from devtenant.zones import to_utc
from tests.devtenant.fixtures import DevTenantHandle
from tests.reliability.conftest import organizer_events, running_stack
from tests.service.conftest import ALEX, Stack
from tests.service.test_loop_booking import DIEGO, MEGAN, body, loop_options

PANELS = [[MEGAN], [DIEGO]]


async def _race(stack: Stack) -> None:
    options = (await loop_options(stack, PANELS))[:4]
    rng = random.Random(17)
    calls = [
        stack.post(
            "/v1/loops",
            body(PANELS if i % 2 else PANELS[::-1], rng.choice(options), f"race-{i}"),
            stack.token(),
        )
        for i in range(50)
    ]
    results = await asyncio.gather(*calls)
    assert all(status < 500 for status, _ in results), [d for s, d in results if s >= 500]
    assert any(status == 201 for status, _ in results)
    async with stack.runtime.store.transaction() as tx:
        rows = [storage.interview_row(r) for r in await tx.execute(storage.interviews.select())]
        loops = {r.id: r.status for r in await tx.execute(storage.loops.select())}
    assert [r for r in rows if r.status is storage.InterviewStatus.PENDING] == []
    assert "pending" not in loops.values()
    for loop_id, status in loops.items():
        mine = [r for r in rows if r.loop_id == loop_id]
        live = [r for r in mine if r.status is storage.InterviewStatus.CONFIRMED]
        assert len(live) == (len(PANELS) if status == "confirmed" else 0), (status, mine)
    confirmed = [r for r in rows if r.status is storage.InterviewStatus.CONFIRMED]
    ours = sorted(e["id"] for e in organizer_events(stack.devtenant, ALEX) if e.get("transactionId"))
    assert ours == sorted(
        [str(r.event_id) for r in confirmed] + [str(r.candidate_event_id) for r in confirmed]
    )
    for person in (MEGAN, DIEGO):
        spans = sorted(
            (to_utc(e["start"]), to_utc(e["end"]))
            for e in organizer_events(stack.devtenant, person)
            if e.get("transactionId")
        )
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, person


async def test_fifty_loop_bookings_race_on_sqlite(devtenant: DevTenantHandle, tmp_path: Path) -> None:
    async with running_stack(devtenant, tmp_path) as stack:
        await _race(stack)


@pytest.mark.postgres
async def test_fifty_loop_bookings_race_on_postgres(
    devtenant: DevTenantHandle, tmp_path: Path, fresh_pg_url: str
) -> None:
    async with running_stack(devtenant, tmp_path, fresh_pg_url) as stack:
        await _race(stack)
