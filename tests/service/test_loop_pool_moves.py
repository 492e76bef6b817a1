"""Moving a loop session drawn from a pool rechecks the member's caps in the new week (issue 18).

A move into a local week where the member is at their cap is refused (409 ``cap_reached``, the
loop unchanged) unless the reschedule request carries the manager's ``cap_override`` (audited,
the reason stored); a move within the same week never fails on the session's own seat.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from calendar_backend import storage
from calendar_backend.contract import format_time, parse_time
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.security.gate_env import audit_rows
from tests.service.conftest import Stack, next_week, service_for
from tests.service.test_loop_pools import book_body, make_pool, search

TEMPLATE: dict[str, Any] = {
    "name": "Pool move",
    "sessions": [{"title": "Coding", "minutes": 60, "pool": {"name": "Backend", "count": 1}}],
}


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


async def _booked(stack: Stack) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    status, doc = await search(stack, TEMPLATE, limit=10)
    assert status == 200, doc
    assert doc["options"], doc["explanations"]
    first = doc["options"][0]
    status, booked = await stack.post("/v1/loops", book_body(TEMPLATE, first, "move-1"), stack.token())
    assert status == 201, booked
    return booked, doc["options"][1:]


async def _free_next_week(stack: Stack, member: str) -> dict[str, Any]:
    """A free hour of ``member`` in the week after the searched one."""
    start, end = next_week(datetime.now(UTC))
    template = {"name": "Probe", "sessions": [{"title": "Coding", "minutes": 60, "interviewers": [member]}]}
    body = {
        "template": template,
        "start": format_time(start + timedelta(days=7)),
        "end": format_time(end + timedelta(days=7)),
        "limit": 3,
    }
    status, doc = await stack.post("/v1/loops/search", body, stack.token())
    assert status == 200, doc
    assert doc["options"], doc["explanations"]
    return dict(doc["options"][0]["sessions"][0])


async def _other_interview(stack: Stack, member: str, start: datetime) -> None:
    """An interview of ``member`` OpenSlot holds (their load) at ``start``."""
    async with stack.runtime.store.transaction() as tx:
        row = await storage.insert_pending(
            tx, tenant_id=stack.devtenant.tenant_id, organizer_oid="someone-else",
            organizer_upn="hm@contoso.example", transaction_id="other-1", start=start,
            end=start + timedelta(minutes=30), attendees=[member, "cand@example.com"],
            candidate_name="C", subject="Interview", source=storage.InterviewSource.BOT,
        )  # fmt: skip
        await storage.confirm_interview(tx, row.id, "ev-other", None)


def _move(session: dict[str, Any], to: dict[str, Any]) -> dict[str, Any]:
    return {"index": session["index"], "start": to["start"], "end": to["end"], "room": session["room"]}


async def test_a_move_into_a_week_at_cap_is_refused_unless_overridden(stack: Stack) -> None:
    await make_pool(stack, weekly=1, daily=1)
    booked, _ = await _booked(stack)
    session = booked["sessions"][0]
    member = session["interviewers"][0]
    target = await _free_next_week(stack, member)
    monday = parse_time(target["start"]) - timedelta(days=parse_time(target["start"]).weekday())
    monday = monday.replace(hour=1, minute=0)
    await _other_interview(stack, member, monday)  # the member's one interview of that week
    path = f"/v1/loops/{booked['id']}/reschedule"
    status, refused = await stack.post(path, {"sessions": [_move(session, target)]}, stack.token())
    assert status == 409, refused
    assert refused["error"] == "cap_reached"
    assert "Session 1" in refused["message"]
    assert "weekly cap" in refused["message"]
    status, loops = await stack.get("/v1/loops", stack.token())
    assert status == 200, loops
    assert [s["start"] for lp in loops["loops"] for s in lp["sessions"]] == [session["start"]]
    override = {"address": member, "reason": "only Java expert this week"}
    body = {"sessions": [_move(session, target)], "cap_override": override}
    status, moved = await stack.post(path, body, stack.token())
    assert status == 200, moved
    assert moved["sessions"][0]["start"] == target["start"]
    async with stack.runtime.store.transaction() as tx:
        overrides = await storage.list_cap_overrides(tx, stack.devtenant.tenant_id)
    assert [(o["address"], o["reason"]) for o in overrides] == [(member, "only Java expert this week")]
    assert any(op == "pool.cap_override" for op, _targets, _result in await audit_rows(stack))


async def test_a_move_within_the_same_week_never_fails_on_its_own_seat(stack: Stack) -> None:
    await make_pool(stack, weekly=1, daily=5)
    booked, others = await _booked(stack)
    session = booked["sessions"][0]
    member = session["interviewers"][0]
    later = next((o["sessions"][0] for o in others if o["sessions"][0]["start"] >= session["end"]), None)
    assert later is not None, others
    body = {"sessions": [_move(session, later)]}
    status, moved = await stack.post(f"/v1/loops/{booked['id']}/reschedule", body, stack.token())
    assert status == 200, moved
    assert moved["sessions"][0]["start"] == later["start"]
    assert moved["sessions"][0]["interviewers"] == [member]
