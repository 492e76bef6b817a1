"""Robustness of applying a drift repair (issue 19 follow-ups), against devtenant.

- A process dying mid-apply (a fault injected at `RepairPlanner`'s crash points, raised past every
  handler like ``os._exit`` would): the row stays ``applying`` until its lease runs out, then the
  watcher's round settles it from Outlook: closed as applied when the write happened (no second
  write), open again when it did not.
- ``rebook``: the candidate's invite carries the NEW Teams meeting's join link (one update).
- A ``move`` repair of a pool-drawn panel rechecks the caps: 409 ``cap_reached`` with fresh repairs.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from calendar_backend import storage
from calendar_backend.app import SERVICE_KEY
from calendar_backend.auth import Principal
from calendar_backend.booking import Writer
from calendar_backend.contract import parse_time
from calendar_backend.storage import watch as store_watch
from calendar_backend.watch import Watcher
from calendar_backend.watch_repairs import RepairPlanner
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.security.gate_env import MEGAN, audit_rows
from tests.service.conftest import ALEX, Stack, service_for
from tests.service.test_watch import acontrol, copy_of, watcher_of
from tests.service.test_watch_pool_repairs import LA, LEE, book_drawn, decline, make_pool

JsonDict = dict[str, Any]


class Died(BaseException):
    """The process dying at a crash point: no handler of the apply runs."""


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


def planner_of(stack: Stack) -> RepairPlanner:
    planner = stack.client.app[SERVICE_KEY].repairs
    assert isinstance(planner, RepairPlanner)
    return planner


def die_at(stack: Stack, point: str) -> None:
    def hook(name: str) -> None:
        if name == point:
            raise Died(name)

    planner_of(stack)._crash_point = hook
    stack.client.app[SERVICE_KEY].bookings._crash_point = hook


async def apply_dying(stack: Stack, watcher: Watcher, drift_id: str, repair_id: str) -> None:
    """Apply as the watcher would (app-only token, booking.py); the injected fault kills it."""
    async with stack.runtime.store.transaction() as tx:
        drift = await store_watch.get_drift(tx, drift_id)
        assert drift is not None
        row = await storage.get_interview(tx, drift.interview_id)
    assert row is not None
    token = await watcher._token(row.tenant_id)
    assert token is not None
    repair = next(r for r in drift.repairs if r["id"] == repair_id)
    w = Writer(Principal(row.tenant_id, "watcher", frozenset()), row.tenant_id, token, row.organizer_upn, "t")
    with pytest.raises(Died):
        await planner_of(stack)._apply(w, drift, row, repair, "applied")
    die_at(stack, "")  # the restarted process has no fault


async def status_of(stack: Stack, drift_id: str) -> store_watch.DriftRow:
    async with stack.runtime.store.transaction() as tx:
        found = await store_watch.get_drift(tx, drift_id)
    assert found is not None
    return found


async def age_lease(stack: Stack, drift_id: str) -> None:
    """Three minutes pass (the lease is two)."""
    old = datetime.now(UTC) - timedelta(minutes=3)
    async with stack.runtime.store.transaction() as tx:
        await tx.execute(
            text("UPDATE watch_drift SET applying_since = :t WHERE id = :i"), {"t": old, "i": drift_id}
        )


async def declined_pool_interview(stack: Stack) -> tuple[Watcher, JsonDict, JsonDict]:
    await acontrol(stack.devtenant, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    pool_id = await make_pool(stack, [MEGAN, LEE])
    made = await book_drawn(stack, pool_id)
    await watcher.ensure()
    item = await decline(stack, watcher, made)
    return watcher, made, item


async def test_a_death_after_the_outlook_write_is_closed_as_applied(stack: Stack) -> None:
    dt = stack.devtenant
    watcher, made, item = await declined_pool_interview(stack)
    die_at(stack, "watch_after_write")
    updates = int(dt.tenant.counters["graph.events.update"])
    await apply_dying(stack, watcher, item["id"], "replace-1")
    assert int(dt.tenant.counters["graph.events.update"]) == updates + 1  # the write happened
    assert (await status_of(stack, item["id"])).status == "applying"
    await watcher.round()  # within the lease: left alone (a live apply may still be running)
    assert (await status_of(stack, item["id"])).status == "applying"
    await age_lease(stack, item["id"])
    await watcher.round()
    settled = await status_of(stack, item["id"])
    assert (settled.status, settled.applied_repair) == ("applied", "replace-1")
    assert int(dt.tenant.counters["graph.events.update"]) == updates + 1  # no second write
    async with stack.runtime.store.transaction() as tx:
        row = await storage.get_interview(tx, made["id"])
    assert row is not None
    assert LEE in row.attendees
    assert ("watch.repair", [MEGAN], "recovered:applied:replace-1") in await audit_rows(stack)
    _status, listed = await stack.get("/v1/watch/drift", stack.token())
    assert item["id"] not in [d["id"] for d in listed["drift"]]


async def test_a_death_before_the_outlook_write_opens_the_row_again(stack: Stack) -> None:
    dt = stack.devtenant
    watcher, _made, item = await declined_pool_interview(stack)
    die_at(stack, "watch_after_claim")
    updates = int(dt.tenant.counters["graph.events.update"])
    await apply_dying(stack, watcher, item["id"], "replace-1")
    status, listed = await stack.get("/v1/watch/drift", stack.token())
    assert item["id"] not in [d["id"] for d in listed["drift"]]  # invisible while applying
    await age_lease(stack, item["id"])
    await watcher.round()
    assert (await status_of(stack, item["id"])).status == "open"
    assert int(dt.tenant.counters["graph.events.update"]) == updates  # nothing was written
    status, listed = await stack.get("/v1/watch/drift", stack.token())
    assert item["id"] in [d["id"] for d in listed["drift"]]  # the manager can tap again
    status, done = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": "replace-1"}, stack.token()
    )
    assert status == 200, done
    assert ("watch.repair", [MEGAN], "recovered:open:replace-1") in await audit_rows(stack)


async def deleted_interview(stack: Stack) -> tuple[Watcher, JsonDict, JsonDict]:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    pool_id = await make_pool(stack, [MEGAN, LEE])
    made = await book_drawn(stack, pool_id)
    await watcher.ensure()
    event_id = await copy_of(stack, made["id"], ALEX)
    await acontrol(dt, "POST", f"mailboxes/{ALEX}/events/{event_id}/delete", {})
    await watcher.drain()
    await watcher.sweep()
    _status, doc = await stack.get("/v1/watch/drift", stack.token())
    (item,) = [d for d in doc["drift"] if d["kind"] == "deleted"]
    assert item["repairs"][0]["id"] == "rebook"
    return watcher, made, item


def candidate_body(stack: Stack, event_id: str | None) -> str:
    alex = stack.devtenant.tenant.find_mailbox(ALEX)
    assert alex is not None
    (event,) = [e for e in stack.devtenant.tenant.events_of(alex) if e.get("id") == event_id]
    return str(event["body"]["content"])


async def rebooked(stack: Stack, made: JsonDict) -> tuple[storage.InterviewRow, storage.InterviewRow]:
    async with stack.runtime.store.transaction() as tx:
        old = await storage.get_interview(tx, made["id"])
        rows = await store_watch.upcoming_confirmed(
            tx, old.start if old else datetime.now(UTC), datetime.max.replace(tzinfo=UTC)
        )
    assert old is not None
    (new,) = [r for r in rows if r.id != old.id and r.start == old.start]
    return old, new


async def test_rebook_gives_the_candidate_the_new_join_link(stack: Stack) -> None:
    dt = stack.devtenant
    _watcher, made, item = await deleted_interview(stack)
    creates = int(dt.tenant.counters["graph.events.create"])
    updates = int(dt.tenant.counters["graph.events.update"])
    status, done = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": "rebook"}, stack.token()
    )
    assert status == 200, done
    old, new = await rebooked(stack, made)
    assert new.id == done["interview_id"]
    assert new.join_url
    assert new.join_url != old.join_url
    assert new.candidate_event_id == old.candidate_event_id
    body = candidate_body(stack, new.candidate_event_id)
    assert new.join_url in body.replace("&amp;", "&")
    assert (old.join_url or "-") not in body.replace("&amp;", "&")
    assert int(dt.tenant.counters["graph.events.create"]) == creates + 1  # no second invite
    assert int(dt.tenant.counters["graph.events.update"]) == updates + 1  # one update of theirs


async def test_a_death_inside_rebook_after_the_create_is_finished_by_recovery(stack: Stack) -> None:
    dt = stack.devtenant
    watcher, made, item = await deleted_interview(stack)
    die_at(stack, "after_graph_create")
    await apply_dying(stack, watcher, item["id"], "rebook")
    assert (await status_of(stack, item["id"])).status == "applying"
    creates = int(dt.tenant.counters["graph.events.create"])
    await age_lease(stack, item["id"])
    await watcher.round()
    assert (await status_of(stack, item["id"])).status == "applied"
    old, new = await rebooked(stack, made)
    assert old.status is storage.InterviewStatus.CANCELLED
    assert new.candidate_event_id == old.candidate_event_id
    assert new.join_url
    assert new.join_url in candidate_body(stack, new.candidate_event_id).replace("&amp;", "&")
    assert int(dt.tenant.counters["graph.events.create"]) == creates  # not created twice


async def test_a_move_repair_into_a_capped_day_is_409_with_fresh_repairs(stack: Stack) -> None:
    dt = stack.devtenant
    _watcher, made, item = await declined_pool_interview(stack)  # daily cap 1
    target = next(r for r in item["repairs"] if r["id"] == "time-1")
    start = parse_time(target["start"])
    local = start.astimezone(ZoneInfo(LA))
    at = start + (timedelta(hours=-2) if local.hour >= 12 else timedelta(hours=2))
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
    updates = int(dt.tenant.counters["graph.events.update"])
    status, doc = await stack.post(f"/v1/watch/drift/{item['id']}/apply", {"repair": "time-1"}, stack.token())
    assert status == 409, doc
    assert doc["error"] == "cap_reached"
    assert "repairs" in doc
    assert int(dt.tenant.counters["graph.events.update"]) == updates  # no Outlook write
    assert (await status_of(stack, item["id"])).status == "open"
    async with stack.runtime.store.transaction() as tx:
        row = await storage.get_interview(tx, made["id"])
    assert row is not None
    assert (row.start, row.end) == (parse_time(made["start"]), parse_time(made["end"]))
