"""Watcher repairs drawn from interviewer pools, and the repairs of a deleted event (issue 19).

The real Calendar Service against devtenant: Alex books Megan; Megan's seat was drawn from the pool
"Backend" (``storage.reserve_pool_seats``, as loop booking does). When Megan declines, the
``replace`` repairs come from that pool by its rules: not a busy member, not one at their daily
cap, not one the gate refuses, never the optional attendees of the event.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from calendar_backend import storage
from calendar_backend.contract import parse_time
from calendar_backend.pools import Member, Pool
from calendar_backend.storage import watch as store_watch
from calendar_backend.watch import Watcher
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.security.gate_env import ADELE, CHRISTIE, MEGAN, archive, audit_rows, interview_body
from tests.service.conftest import Stack, service_for
from tests.service.test_watch import DIEGO, acontrol, copy_of, watcher_of
from tests.service.test_watch_feed import KEY, REF, feed

JsonDict = dict[str, Any]
LEE, GRADY, PATTI = "leeg@contoso.example", "gradya@contoso.example", "pattif@contoso.example"
LA = "America/Los_Angeles"


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


async def make_pool(stack: Stack, members: list[str], daily_cap: int = 1) -> str:
    pool = Pool(
        "Backend",
        default_weekly_cap=5,
        default_daily_cap=daily_cap,
        members=tuple(Member(a, zone=LA) for a in members),
    )
    async with stack.runtime.store.transaction() as tx:
        pool_id = await storage.create_pool(tx, stack.devtenant.tenant_id, pool)
    assert pool_id is not None
    return pool_id


async def book_drawn(stack: Stack, pool_id: str, person: str = MEGAN, **extra: Any) -> JsonDict:
    """Book ``person`` (Tuesday 18:00 UTC next week) and record their seat as drawn from the pool."""
    body = interview_body([person], f"p-{uuid.uuid4().hex[:12]}", **extra)
    status, made = await stack.post("/v1/interviews", body, stack.token())
    assert status == 201, made
    async with stack.runtime.store.transaction() as tx:
        await storage.reserve_pool_seats(
            tx,
            tenant_id=stack.devtenant.tenant_id,
            pool_id=pool_id,
            interview_id=made["id"],
            start=parse_time(made["start"]),
            members=[person],
        )
    return made


async def load_same_day(stack: Stack, person: str, made: JsonDict) -> None:
    """A pending OpenSlot interview of ``person`` 3 hours later the same local day (their load)."""
    start = parse_time(made["start"]) + timedelta(hours=3)
    async with stack.runtime.store.transaction() as tx:
        await storage.insert_pending(
            tx,
            tenant_id=stack.devtenant.tenant_id,
            organizer_oid="someone",
            organizer_upn="alexw@contoso.example",
            transaction_id=uuid.uuid4().hex,
            start=start,
            end=start + timedelta(minutes=30),
            attendees=[person, "cand@example.com"],
            candidate_name="C",
            subject="Interview: C",
            source="bot",
        )


async def decline(stack: Stack, watcher: Watcher, made: JsonDict, person: str = MEGAN) -> JsonDict:
    copy = await copy_of(stack, made["id"], person)
    body = {"response": "declined", "sendResponse": False}
    await acontrol(stack.devtenant, "POST", f"mailboxes/{person}/events/{copy}/respond", body)
    await watcher.drain()
    await watcher.sweep()
    status, doc = await stack.get("/v1/watch/drift", stack.token())
    assert status == 200, doc
    return next(d for d in doc["drift"] if d["kind"] == "declined" and d["interview_id"] == made["id"])


async def seats(stack: Stack, interview_id: str) -> dict[str, str]:
    out = {}
    async with stack.runtime.store.transaction() as tx:
        for person in (MEGAN, ADELE, DIEGO, LEE, GRADY, PATTI):
            seat = await store_watch.pool_seat(tx, interview_id, person)
            if seat is not None:
                out[person] = seat[0]
    return out


async def test_a_pool_drawn_decliner_is_replaced_from_the_same_pool(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    pool_id = await make_pool(stack, [MEGAN, ADELE, DIEGO, LEE, GRADY])
    made = await book_drawn(stack, pool_id, optional=[CHRISTIE])
    await watcher.ensure()
    # Adele busy then; Diego at his daily cap (1); Grady refused by the gate (left the company)
    await acontrol(
        dt,
        "POST",
        f"mailboxes/{ADELE}/events",
        {"start": made["start"], "end": made["end"], "showAs": "busy"},
    )
    await load_same_day(stack, DIEGO, made)
    await archive(stack, GRADY)
    item = await decline(stack, watcher, made)
    replaces = [r for r in item["repairs"] if r["kind"] == "replace"]
    assert [(r["id"], r["out"], r["in"]) for r in replaces] == [("replace-1", MEGAN, LEE)], item["repairs"]
    assert any(r["kind"] == "move" for r in item["repairs"])  # new times still offered
    updates = int(dt.tenant.counters["graph.events.update"])
    status, done = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": "replace-1"}, stack.token()
    )
    assert status == 200, done
    assert int(dt.tenant.counters["graph.events.update"]) == updates + 1  # ONE Outlook update
    assert await seats(stack, made["id"]) == {LEE: pool_id}  # the seat moved with the person
    async with stack.runtime.store.transaction() as tx:
        row = await storage.get_interview(tx, made["id"])
    assert row is not None
    assert LEE in row.attendees
    assert MEGAN not in row.attendees
    assert ("watch.repair", [MEGAN], "applied:replace-1") in await audit_rows(stack)


async def test_a_cap_reached_at_apply_is_409_with_fresh_repairs(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    pool_id = await make_pool(stack, [MEGAN, LEE, PATTI])
    made = await book_drawn(stack, pool_id)
    await watcher.ensure()
    item = await decline(stack, watcher, made)
    offered = {r["in"] for r in item["repairs"] if r["kind"] == "replace"}
    assert offered == {LEE, PATTI}, item["repairs"]
    first = next(r for r in item["repairs"] if r["id"] == "replace-1")
    await load_same_day(stack, first["in"], made)  # meanwhile: their daily cap is reached
    updates = int(dt.tenant.counters["graph.events.update"])
    status, doc = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": "replace-1"}, stack.token()
    )
    assert status == 409, doc
    assert doc["error"] == "cap_reached"
    assert [r["in"] for r in doc["repairs"] if r["kind"] == "replace"] == list(offered - {first["in"]})
    assert int(dt.tenant.counters["graph.events.update"]) == updates  # nothing written
    assert await seats(stack, made["id"]) == {MEGAN: pool_id}  # rolled back
    status, listed = await stack.get("/v1/watch/drift", stack.token())
    (again,) = [d for d in listed["drift"] if d["id"] == item["id"]]  # still open, fresh repairs
    assert again["repairs"] == doc["repairs"]


async def test_a_non_pool_panelist_keeps_the_optional_attendee_source(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    await make_pool(stack, [MEGAN, LEE])
    body = interview_body([MEGAN], f"p-{uuid.uuid4().hex[:12]}", optional=[ADELE])
    status, made = await stack.post("/v1/interviews", body, stack.token())
    assert status == 201, made
    await watcher.ensure()
    item = await decline(stack, watcher, made)
    assert [r["in"] for r in item["repairs"] if r["kind"] == "replace"] == [ADELE]


async def test_a_deleted_event_offers_rebook_new_times_and_release(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    pool_id = await make_pool(stack, [MEGAN, LEE])
    made = await book_drawn(stack, pool_id)
    await watcher.ensure()
    event_id = await copy_of(stack, made["id"], "alexw@contoso.example")
    await acontrol(dt, "POST", f"mailboxes/alexw@contoso.example/events/{event_id}/delete", {})
    await watcher.drain()
    await watcher.sweep()
    status, doc = await stack.get("/v1/watch/drift", stack.token())
    (item,) = [d for d in doc["drift"] if d["kind"] == "deleted"]
    ids = [r["id"] for r in item["repairs"]]
    assert ids[0] == "rebook", ids
    assert "time-1" in ids
    assert ids[-1] == "release"
    assert len(ids) >= 2
    rebook = item["repairs"][0]
    assert (rebook["start"], rebook["end"]) == (made["start"], made["end"])
    creates = int(dt.tenant.counters["graph.events.create"])
    status, done = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": "rebook"}, stack.token()
    )
    assert status == 200, done
    assert int(dt.tenant.counters["graph.events.create"]) == creates + 1  # ONE create; candidate's kept
    assert done["interview_id"] != made["id"]
    async with stack.runtime.store.transaction() as tx:
        old = await storage.get_interview(tx, made["id"])
        new = await storage.get_interview(tx, done["interview_id"])
    assert old is not None
    assert new is not None
    assert old.status is storage.InterviewStatus.CANCELLED
    assert new.status is storage.InterviewStatus.CONFIRMED
    assert (new.start, new.end, sorted(new.attendees)) == (old.start, old.end, sorted(old.attendees))
    assert new.transaction_id != old.transaction_id
    assert new.event_id != old.event_id
    assert new.candidate_event_id == old.candidate_event_id
    assert await seats(stack, new.id) == {MEGAN: pool_id}
    alex = dt.tenant.find_mailbox("alexw@contoso.example")
    assert alex is not None
    assert any(e.get("id") == new.event_id for e in dt.tenant.events_of(alex))


@pytest.fixture
async def feed_stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path, watch_feed_key=KEY) as running:
        yield running


async def test_a_pool_with_auto_repair_replaces_a_decliner_itself(feed_stack: Stack) -> None:
    stack, dt = feed_stack, feed_stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    pool_id = await make_pool(stack, [MEGAN, LEE])
    made = await book_drawn(stack, pool_id, conversation_ref=REF)
    other = {"name": "Sam Lee", "email": "sam@example.com"}
    off = await book_drawn(stack, await make_other_pool(stack), DIEGO, conversation_ref=REF, candidate=other)
    async with stack.runtime.store.transaction() as tx:
        assert await store_watch.set_pool_auto_repair(tx, dt.tenant_id, "Backend", True)
    await watcher.ensure()
    updates = int(dt.tenant.counters["graph.events.update"])
    for row, person in ((made, MEGAN), (off, DIEGO)):
        copy = await copy_of(stack, row["id"], person)
        body = {"response": "declined", "sendResponse": False}
        await acontrol(dt, "POST", f"mailboxes/{person}/events/{copy}/respond", body)
    await watcher.drain()
    await watcher.sweep()
    assert int(dt.tenant.counters["graph.events.update"]) == updates + 1  # only the auto pool's
    rows = {d.interview_id: d for d in await watcher.drift_rows() if d.kind == "declined"}
    assert rows[made["id"]].status == "auto_applied"
    assert rows[made["id"]].applied_repair == "replace-1"
    assert rows[off["id"]].status == "open"  # auto-repair is off for that pool
    assert await seats(stack, made["id"]) == {LEE: pool_id}
    assert ("watch.repair", [MEGAN], "auto_applied:replace-1") in await audit_rows(stack)
    async with stack.runtime.store.transaction() as tx:
        actors = (
            await tx.execute(text("SELECT actor_oid FROM audit_log WHERE operation = 'watch.repair.replace'"))
        ).all()
    assert [a[0] for a in actors] == ["watcher"]
    status, listed = await stack.get("/v1/watch/drift", stack.token())
    assert [d["interview_id"] for d in listed["drift"]] == [off["id"]]  # nothing left to tap for it
    status, doc = await feed(stack)
    assert status == 200, doc
    by_interview = {i["interview_id"]: i for i in doc["items"]}
    assert by_interview[made["id"]]["applied"] == {"repair": "replace-1", "in_name": "Lee Gu"}
    assert "applied" not in by_interview[off["id"]]


async def make_other_pool(stack: Stack) -> str:
    pool = Pool("Frontend", members=(Member(DIEGO, zone=LA), Member(PATTI, zone=LA)))
    async with stack.runtime.store.transaction() as tx:
        pool_id = await storage.create_pool(tx, stack.devtenant.tenant_id, pool)
    assert pool_id is not None
    return pool_id
