"""The watcher's repairs for a loop's sessions, and new times for a deleted event (issue 19).

Decisions (watch_repairs.py, watch_rebook.py):

- a pool member of a loop session who declines is replaced from the SAME pool (as for a single
  interview: the loop booking recorded the seat);
- a deleted session gets ``rebook`` (the session re-created at its own time, in its loop; the
  other sessions untouched) and ``release``, which cancels the WHOLE loop (a loop is cancelled
  whole) and says so on the card; no ``time-N`` (a loop is moved whole);
- a deleted single interview's ``time-N`` books it again at that time (the event to move is gone):
  one Outlook create, one update of the candidate's invite (new time, new join link).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calendar_backend import storage
from calendar_backend.contract import parse_time
from calendar_backend.storage import watch as store_watch
from calendar_backend.watch import Watcher
from cards.drift_repair import repair_label
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.service.conftest import ALEX, Stack, service_for
from tests.service.test_loop_pools import POOL, book_body, make_pool, pooled_template, search
from tests.service.test_watch import acontrol, copy_of, watcher_of
from tests.service.test_watch_pool_repairs import decline
from tests.service.test_watch_recover import candidate_body, deleted_interview

JsonDict = dict[str, Any]


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


async def booked_loop(stack: Stack) -> tuple[Watcher, JsonDict, list[storage.InterviewRow]]:
    await acontrol(stack.devtenant, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    await make_pool(stack)
    template = pooled_template(count=1)
    status, doc = await search(stack, template)
    assert status == 200, doc
    assert doc["options"], doc["explanations"]
    status, loop = await stack.post(
        "/v1/loops", book_body(template, doc["options"][0], "wl-1"), stack.token()
    )
    assert status == 201, loop
    await watcher.ensure()
    return watcher, loop, await sessions(stack, loop["id"])


async def sessions(stack: Stack, loop_id: str) -> list[storage.InterviewRow]:
    async with stack.runtime.store.transaction() as tx:
        return await storage.loop_sessions(tx, loop_id)


async def delete_session(stack: Stack, watcher: Watcher, row: storage.InterviewRow) -> JsonDict:
    event_id = await copy_of(stack, row.id, ALEX)
    await acontrol(stack.devtenant, "POST", f"mailboxes/{ALEX}/events/{event_id}/delete", {})
    await watcher.drain()
    await watcher.sweep()
    status, doc = await stack.get("/v1/watch/drift", stack.token())
    assert status == 200, doc
    (item,) = [d for d in doc["drift"] if d["kind"] == "deleted" and d["interview_id"] == row.id]
    return dict(item)


async def test_a_loop_sessions_pool_member_who_declines_is_replaced_from_the_pool(stack: Stack) -> None:
    watcher, loop, rows = await booked_loop(stack)
    coding = rows[1]
    (member,) = [a for a in coding.attendees if a in POOL]
    dt = stack.devtenant
    for other in POOL:  # the other members' own meetings then are cancelled: they are free
        box = dt.tenant.find_mailbox(other)
        assert box is not None
        for event in list(dt.tenant.events_of(box)):
            start, end = (parse_time(str(event[k]["dateTime"])[:19] + "Z") for k in ("start", "end"))
            if other != member and start < coding.end and coding.start < end:
                await acontrol(dt, "POST", f"mailboxes/{other}/events/{event['id']}/delete", {})
    item = await decline(stack, watcher, {"id": coding.id}, member)
    replaces = [r for r in item["repairs"] if r["kind"] == "replace"]
    assert replaces, item["repairs"]
    assert all(r["out"] == member and r["in"] in set(POOL) - {member} for r in replaces)
    status, done = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": "replace-1"}, stack.token()
    )
    assert status == 200, done
    async with stack.runtime.store.transaction() as tx:
        seat = await store_watch.pool_seat(tx, coding.id, replaces[0]["in"])
    assert seat is not None  # the seat moved with the person
    after = await sessions(stack, loop["id"])
    assert replaces[0]["in"] in after[1].attendees
    assert (after[0].id, after[0].attendees) == (rows[0].id, rows[0].attendees)


async def test_a_deleted_loop_session_is_rebooked_in_its_loop(stack: Stack) -> None:
    dt = stack.devtenant
    watcher, loop, rows = await booked_loop(stack)
    item = await delete_session(stack, watcher, rows[1])
    assert [r["id"] for r in item["repairs"]] == ["rebook", "release"], item["repairs"]
    assert item["repairs"][1]["scope"] == "loop"
    creates = int(dt.tenant.counters["graph.events.create"])
    status, done = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": "rebook"}, stack.token()
    )
    assert status == 200, done
    assert int(dt.tenant.counters["graph.events.create"]) == creates + 1
    after = await sessions(stack, loop["id"])
    assert [r.session_index for r in after] == [r.session_index for r in rows]  # one row per session
    first, second = after
    assert (first.id, first.event_id, first.status) == (rows[0].id, rows[0].event_id, rows[0].status)
    assert second.id == done["interview_id"] != rows[1].id
    assert (second.start, second.end, second.status) == (rows[1].start, rows[1].end, rows[0].status)
    assert second.candidate_event_id == rows[1].candidate_event_id
    assert second.join_url
    assert second.join_url in candidate_body(stack, second.candidate_event_id).replace("&amp;", "&")
    status, listed = await stack.get("/v1/loops", stack.token())
    assert status == 200, listed
    (shown,) = [lp for lp in listed["loops"] if lp["id"] == loop["id"]]
    assert [s["start"] for s in shown["sessions"]] == [s["start"] for s in loop["sessions"]]


async def test_releasing_a_deleted_loop_session_cancels_the_whole_loop(stack: Stack) -> None:
    watcher, loop, rows = await booked_loop(stack)
    item = await delete_session(stack, watcher, rows[1])
    release = next(r for r in item["repairs"] if r["id"] == "release")
    assert repair_label(release, ZoneInfo("UTC")) == "Cancel the whole loop (every session)"
    assert repair_label({"id": "release", "kind": "release"}, ZoneInfo("UTC")) == "Release the booking"
    status, done = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": "release"}, stack.token()
    )
    assert status == 200, done
    after = await sessions(stack, loop["id"])
    assert {r.status for r in after} == {storage.InterviewStatus.CANCELLED}
    async with stack.runtime.store.transaction() as tx:
        found = await storage.get_loop(tx, loop["id"])
    assert found is not None
    assert found.status == "cancelled"
    alex = stack.devtenant.tenant.find_mailbox(ALEX)
    assert alex is not None
    live = {e.get("id") for e in stack.devtenant.tenant.events_of(alex) if not e.get("isCancelled")}
    assert rows[0].event_id not in live


async def test_a_new_time_for_a_deleted_interview_books_it_again_there(stack: Stack) -> None:
    dt = stack.devtenant
    _watcher, made, item = await deleted_interview(stack)
    target = next(r for r in item["repairs"] if r["id"] == "time-1")
    creates = int(dt.tenant.counters["graph.events.create"])
    updates = int(dt.tenant.counters["graph.events.update"])
    status, done = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": "time-1"}, stack.token()
    )
    assert status == 200, done
    async with stack.runtime.store.transaction() as tx:
        old = await storage.get_interview(tx, made["id"])
        new = await storage.get_interview(tx, done["interview_id"])
    assert old is not None
    assert new is not None
    assert old.status is storage.InterviewStatus.CANCELLED
    assert new.status is storage.InterviewStatus.CONFIRMED
    assert (new.start, new.end) == (parse_time(target["start"]), parse_time(target["end"]))
    assert new.candidate_event_id == old.candidate_event_id
    assert int(dt.tenant.counters["graph.events.create"]) == creates + 1  # the panel's, no 2nd invite
    assert int(dt.tenant.counters["graph.events.update"]) == updates + 1  # the candidate's, once
    alex = dt.tenant.find_mailbox(ALEX)
    assert alex is not None
    (theirs,) = [e for e in dt.tenant.events_of(alex) if e.get("id") == new.candidate_event_id]
    assert parse_time(str(theirs["start"]["dateTime"]).split(".")[0] + "Z") == new.start
    assert new.join_url
    assert new.join_url in candidate_body(stack, new.candidate_event_id).replace("&amp;", "&")
