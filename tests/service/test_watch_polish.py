"""Issue 19 polish, against devtenant:

- a drift row is created WITH its repairs (planned first): nobody sees it unplanned;
- ``time-N`` of a deleted event rechecks the pool caps at the new time: 409 with fresh repairs;
- the stale-pending reconciler leaves a rebook's half-written row to the watcher's recovery (no
  second candidate invite), whichever runs first;
- a same-pool newcomer the manager cannot read: 409 with fresh repairs without them (remembered);
- a rebooked loop session keeps the loop's one Teams meeting; when the deleted session held it,
  the new session's meeting becomes the loop's and the others' candidate invites are relinked.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from calendar_backend import storage
from calendar_backend.contract import parse_time
from calendar_backend.runtime import build_reconciler
from calendar_backend.storage import watch as store_watch
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.security.gate_env import MEGAN, MIRIAM
from tests.service.conftest import ALEX, Stack, service_for
from tests.service.test_watch import acontrol, watcher_of
from tests.service.test_watch_loop_repairs import booked_loop, delete_session, sessions
from tests.service.test_watch_pool_repairs import LEE, book_drawn, decline, make_pool
from tests.service.test_watch_recover import (
    age_lease,
    apply_dying,
    candidate_body,
    deleted_interview,
    die_at,
    planner_of,
    status_of,
)

JsonDict = dict[str, Any]


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


async def test_a_drift_row_is_created_with_its_repairs(stack: Stack) -> None:
    await acontrol(stack.devtenant, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    planner = planner_of(stack)
    seen: list[int] = []
    plan = planner.plan

    async def watching(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        async with stack.runtime.store.transaction() as tx:  # what a poller could read meanwhile
            seen.append(len(await store_watch.all_drift(tx)))
        return await plan(*args, **kwargs)

    planner.plan = watching  # type: ignore[method-assign]
    pool_id = await make_pool(stack, [MEGAN, LEE])
    made = await book_drawn(stack, pool_id)
    await watcher.ensure()
    item = await decline(stack, watcher, made)
    assert seen == [0]  # planned before the row existed
    assert item["repairs"]
    rows = await watcher.drift_rows()
    assert [len(r.repairs) > 0 for r in rows] == [True]


async def test_a_new_time_for_a_deleted_event_rechecks_the_caps(stack: Stack) -> None:
    dt = stack.devtenant
    _watcher, made, item = await deleted_interview(stack)  # Megan drawn from a pool, daily cap 1
    target = next(r for r in item["repairs"] if r["id"] == "time-1")
    start = parse_time(target["start"])
    at = start + timedelta(hours=2)
    if at.date() != start.date():
        at = start - timedelta(hours=2)
    async with stack.runtime.store.transaction() as tx:  # Megan's other interview that day
        await storage.insert_pending(
            tx,
            tenant_id=dt.tenant_id,
            organizer_oid="someone",
            organizer_upn=ALEX,
            transaction_id=uuid.uuid4().hex,
            start=at,
            end=at + timedelta(minutes=30),
            attendees=[MEGAN, "cand@example.com"],
            candidate_name="C",
            subject="Interview: C",
            source="bot",
        )
    creates = int(dt.tenant.counters["graph.events.create"])
    status, doc = await stack.post(f"/v1/watch/drift/{item['id']}/apply", {"repair": "time-1"}, stack.token())
    assert status == 409, doc
    assert doc["error"] == "cap_reached"
    assert "repairs" in doc
    assert int(dt.tenant.counters["graph.events.create"]) == creates  # nothing created
    assert (await status_of(stack, item["id"])).status == "open"
    async with stack.runtime.store.transaction() as tx:
        row = await storage.get_interview(tx, made["id"])
    assert row is not None
    assert row.status is storage.InterviewStatus.CONFIRMED


async def test_the_reconciler_leaves_a_rebooks_row_to_the_watchers_recovery(stack: Stack) -> None:
    dt = stack.devtenant
    watcher, made, item = await deleted_interview(stack)
    die_at(stack, "after_graph_create")
    await apply_dying(stack, watcher, item["id"], "rebook")
    creates = int(dt.tenant.counters["graph.events.create"])
    reconciler = build_reconciler(stack.runtime, stale_min=0)
    await reconciler.run_once()  # first: the half-written row belongs to an applying drift row
    assert int(dt.tenant.counters["graph.events.create"]) == creates  # no second candidate invite
    await age_lease(stack, item["id"])
    await watcher.round()
    await reconciler.run_once()  # after: nothing left for it
    assert (await status_of(stack, item["id"])).status == "applied"
    assert int(dt.tenant.counters["graph.events.create"]) == creates
    ref = (await status_of(stack, item["id"])).apply_ref
    assert ref is not None
    async with stack.runtime.store.transaction() as tx:
        old = await storage.get_interview(tx, made["id"])
        new = await storage.get_interview_by_transaction(tx, ref)
    assert old is not None
    assert new is not None
    assert old.status is storage.InterviewStatus.CANCELLED
    assert new.status is storage.InterviewStatus.CONFIRMED
    assert new.candidate_event_id == old.candidate_event_id


async def test_a_newcomer_the_manager_cannot_read_is_409_with_repairs_without_them(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    pool_id = await make_pool(stack, [MEGAN, MIRIAM, LEE])
    made = await book_drawn(stack, pool_id)
    await watcher.ensure()
    item = await decline(stack, watcher, made)
    offered = [r for r in item["repairs"] if r["kind"] == "replace"]
    assert MIRIAM in [r["in"] for r in offered]  # the static rules let her through
    mine = next(r for r in offered if r["in"] == MIRIAM)
    updates = int(dt.tenant.counters["graph.events.update"])
    status, doc = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": mine["id"]}, stack.token()
    )
    assert status == 409, doc
    assert MIRIAM not in [r.get("in") for r in doc["repairs"]]
    assert LEE in [r.get("in") for r in doc["repairs"]]
    assert int(dt.tenant.counters["graph.events.update"]) == updates
    _status, listed = await stack.get("/v1/watch/drift", stack.token())
    (again,) = [d for d in listed["drift"] if d["id"] == item["id"]]
    assert MIRIAM not in [r.get("in") for r in again["repairs"]]
    lee = next(r for r in again["repairs"] if r.get("in") == LEE)
    status, done = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": lee["id"]}, stack.token()
    )
    assert status == 200, done


async def test_a_rebooked_loop_session_keeps_the_loops_one_meeting(stack: Stack) -> None:
    dt = stack.devtenant
    watcher, loop, rows = await booked_loop(stack)
    assert rows[0].join_url
    assert rows[0].join_url == rows[1].join_url
    item = await delete_session(stack, watcher, rows[1])  # not the meeting's own session
    updates = int(dt.tenant.counters["graph.events.update"])
    status, done = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": "rebook"}, stack.token()
    )
    assert status == 200, done
    first, second = await sessions(stack, loop["id"])
    assert second.id == done["interview_id"]
    assert second.join_url == first.join_url == rows[0].join_url  # the loop's meeting, reused
    assert int(dt.tenant.counters["graph.events.update"]) == updates  # nobody's link changed


async def test_rebooking_the_session_that_held_the_loops_meeting_relinks_the_others(stack: Stack) -> None:
    dt = stack.devtenant
    watcher, loop, rows = await booked_loop(stack)
    item = await delete_session(stack, watcher, rows[0])  # its event was the loop's meeting
    updates = int(dt.tenant.counters["graph.events.update"])
    status, done = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": "rebook"}, stack.token()
    )
    assert status == 200, done
    first, second = await sessions(stack, loop["id"])
    assert first.id == done["interview_id"]
    assert first.join_url
    assert first.join_url != rows[0].join_url
    assert second.join_url == first.join_url  # the other session follows it
    for row in (first, second):
        body = candidate_body(stack, row.candidate_event_id).replace("&amp;", "&")
        assert first.join_url in body
        assert (rows[0].join_url or "-") not in body
    assert int(dt.tenant.counters["graph.events.update"]) == updates + 2  # one per candidate invite
