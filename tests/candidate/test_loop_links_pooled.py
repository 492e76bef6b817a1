"""A candidate link for a loop whose session draws its panel from an interviewer pool (issue 18 on
issue 17), through the Calendar Service's HTTP API against devtenant.

The candidate sees times only (never who from the pool); booking from the link picks the members
then (free, under caps, least loaded first) and draws them in the loop's reservation transaction;
a pool backed by an Entra group is read live; a cap reached meanwhile is the neutral "just taken"
(409 ``slot_taken``, no name); a move keeps the members drawn.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from calendar_backend import storage
from calendar_backend.contract import format_time
from calendar_backend.pools import Member, Pool
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.reliability.conftest import organizer_events
from tests.security.gate_env import allow, disallow
from tests.service.conftest import ALEX, Stack, next_week, service_for
from tests.service.test_loop_pools import MEGAN, POOL, pooled_template
from tests.service.test_pool_groups import SIX, group_pool, set_group


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


async def listed_pool(stack: Stack, members: list[str], weekly: int = 5, daily: int = 2) -> str:
    async with stack.runtime.store.transaction() as tx:
        pool_id = await storage.create_pool(
            tx,
            stack.devtenant.tenant_id,
            Pool("Backend", "backend", weekly, daily, tuple(Member(a) for a in members)),
        )
    assert pool_id is not None
    return pool_id


async def link(stack: Stack, count: int = 2, email: str = "dana.smith@example.com") -> str:
    start, end = next_week(datetime.now(UTC))
    body = {
        "loop_template": pooled_template(count=count),
        "window_start": format_time(start),
        "window_end": format_time(end),
        "candidate_name": "Dana Smith",
        "candidate_email": email,
        "candidate_time_zone": "Europe/Berlin",
    }
    status, doc = await stack.post("/v1/offers", body, stack.token())
    assert status == 201, doc
    return str(doc["url"]).rsplit("/c/", 1)[1]


async def page(stack: Stack, cap: str) -> dict[str, Any]:
    status, doc = await stack.post("/v1/candidate/slots", {"token": cap})
    assert status == 200, doc
    return doc


def options(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for day in doc["loop"]["days"] for o in day["options"]]


def no_pool_names(doc: object) -> None:
    """Never who: no address, no local part of anyone in the pool (nor the fixed interviewer)."""
    body = json.dumps(doc).lower()
    for address in [*SIX, *POOL, MEGAN]:
        assert address not in body, address
        assert address.split("@")[0] not in body, address


async def drawn(stack: Stack) -> dict[str, set[str]]:
    """Pool seats by interview id."""
    async with stack.runtime.store.transaction() as tx:
        rows = (await tx.execute(text("SELECT interview_id, mailbox FROM pool_assignments"))).all()
    out: dict[str, set[str]] = {}
    for interview_id, mailbox in rows:
        out.setdefault(str(interview_id), set()).add(str(mailbox))
    return out


async def coding_row(stack: Stack, loop_id: str) -> storage.InterviewRow:
    async with stack.runtime.store.transaction() as tx:
        rows = await storage.loop_sessions(tx, loop_id)
    return next(r for r in rows if r.session_index == 1)


async def book(stack: Stack, cap: str, option: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = {"token": cap, "start": option["start"], "option": option["option_id"]}
    return await stack.post("/v1/candidate/book", body)


async def test_a_pooled_loop_link_shows_times_only_and_books_members_from_the_pool(stack: Stack) -> None:
    await listed_pool(stack, POOL)
    cap = await link(stack)
    doc = await page(stack, cap)
    no_pool_names(doc)
    found = options(doc)
    assert found, doc
    assert {k for o in found for s in o["sessions"] for k in s} == {"title", "start", "end"}

    status, booked = await book(stack, cap, found[0])
    assert status == 201, booked
    no_pool_names(booked)
    row = await coding_row(stack, booked["loop_id"])
    members = {a for a in row.attendees if a in POOL}
    assert len(members) == 2, row.attendees  # two members of the pool on the Coding session's panel
    assert (await drawn(stack)).get(row.id) == members  # drawn from the pool (caps, fairness)
    event = next(e for e in organizer_events(stack.devtenant, ALEX) if e.get("id") == row.event_id)
    invited = {a["emailAddress"]["address"].lower() for a in event["attendees"]}
    assert members <= invited


async def test_booking_from_the_link_draws_the_least_loaded_members(stack: Stack) -> None:
    await listed_pool(stack, POOL[:3])
    first_cap = await link(stack, count=1)
    first = options(await page(stack, first_cap))[0]
    status, one = await book(stack, first_cap, first)
    assert status == 201, one
    busy = {a for a in (await coding_row(stack, one["loop_id"])).attendees if a in POOL}
    second_cap = await link(stack, count=1, email="eve.jones@example.com")
    later = [o for o in options(await page(stack, second_cap)) if o["start"][:10] != first["start"][:10]]
    status, two = await book(stack, second_cap, later[0])
    assert status == 201, two
    picked = {a for a in (await coding_row(stack, two["loop_id"])).attendees if a in POOL}
    assert len(picked) == 1
    assert not picked & busy  # the member with a loop this week is not drawn again while others are free


async def test_a_group_backed_pool_is_read_live_for_the_link(stack: Stack) -> None:
    set_group(stack, SIX[:4])
    await group_pool(stack)
    cap = await link(stack)
    doc = await page(stack, cap)
    no_pool_names(doc)
    status, booked = await book(stack, cap, options(doc)[0])
    assert status == 201, booked
    row = await coding_row(stack, booked["loop_id"])
    assert (await drawn(stack)).get(row.id, set()) <= set(SIX[:4])
    assert len((await drawn(stack)).get(row.id, set())) == 2


async def test_a_member_the_allow_list_refuses_is_skipped_not_the_link(stack: Stack) -> None:
    await listed_pool(stack, POOL)
    cap = await link(stack)
    await allow(stack, MEGAN, *POOL[:3])  # POOL[3] is no longer allowed: skipped, the link still works
    doc = await page(stack, cap)
    assert options(doc), doc
    status, booked = await book(stack, cap, options(doc)[0])
    assert status == 201, booked
    row = await coding_row(stack, booked["loop_id"])
    assert POOL[3] not in row.attendees
    await disallow(stack, POOL[1], POOL[2])  # too few left: no option, never a name
    doc = await page(stack, cap)
    no_pool_names(doc)


async def test_a_cap_reached_meanwhile_is_just_taken_without_a_name(stack: Stack) -> None:
    await listed_pool(stack, POOL[:2], weekly=1, daily=1)  # both drawn every time, one loop a week each
    caps = [await link(stack), await link(stack, email="eve.jones@example.com")]
    seen = [options(await page(stack, c)) for c in caps]
    day = seen[0][0]["start"][:10]
    other = next(o for o in seen[1] if o["start"][:10] == day and o["option_id"] != seen[0][0]["option_id"])
    results = await asyncio.gather(book(stack, caps[0], seen[0][0]), book(stack, caps[1], other))
    statuses = sorted(s for s, _ in results)
    assert statuses == [201, 409], results
    refused = next(d for s, d in results if s == 409)
    assert refused["error"] == "slot_taken", refused
    no_pool_names(refused)
    loser = caps[[s for s, _ in results].index(409)]
    assert options(await page(stack, loser)) == []  # the week is at its cap now: nothing offered


async def test_a_move_keeps_the_members_drawn(stack: Stack) -> None:
    await listed_pool(stack, POOL)
    cap = await link(stack)
    first = options(await page(stack, cap))[0]
    status, booked = await book(stack, cap, first)
    assert status == 201, booked
    before = await coding_row(stack, booked["loop_id"])
    seen = await page(stack, cap)
    no_pool_names(seen)
    target = next(o for o in options(seen) if o["option_id"] != first["option_id"])
    status, moved = await stack.post(
        "/v1/candidate/reschedule", {"token": cap, "option": target["option_id"]}
    )
    assert status == 200, moved
    after = await coding_row(stack, booked["loop_id"])
    assert after.start != before.start or after.end != before.end
    assert set(after.attendees) == set(before.attendees)
    assert (await drawn(stack)).get(after.id) == {a for a in before.attendees if a in POOL}


async def _link_status(stack: Stack) -> tuple[int, dict[str, Any]]:
    start, end = next_week(datetime.now(UTC))
    body = {
        "loop_template": pooled_template(count=2),
        "window_start": format_time(start),
        "window_end": format_time(end),
        "candidate_name": "Dana Smith",
        "candidate_email": "dana.smith@example.com",
        "candidate_time_zone": "Europe/Berlin",
    }
    status, doc = await stack.post("/v1/offers", body, stack.token())
    return status, doc


async def test_a_link_for_a_pool_that_does_not_exist_is_refused_naming_the_pool(stack: Stack) -> None:
    status, doc = await _link_status(stack)  # no pool "Backend" in this tenant
    assert status == 400, doc
    assert doc["error"] == "invalid_template", doc
    assert any('pool named "Backend"' in p for p in doc["problems"]), doc
    async with stack.runtime.store.transaction() as tx:
        assert (await tx.execute(text("SELECT count(*) FROM offers"))).scalar_one() == 0


async def test_a_link_for_a_pool_whose_group_cannot_be_read_is_refused(stack: Stack) -> None:
    await group_pool(stack)  # the group does not exist in the tenant: it cannot be read
    status, doc = await _link_status(stack)
    assert status == 400, doc
    assert doc["error"] == "invalid_template", doc
    assert any("Backend" in p and "Entra group" in p for p in doc["problems"]), doc
