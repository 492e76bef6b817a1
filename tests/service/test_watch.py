"""The drift watcher against devtenant's Graph subscriptions (issue 19, the Calendar Service side).

The real Calendar Service (aiohttp test server, http on 127.0.0.1: devtenant is told to allow http
notification URLs) books interviews as Alex with Megan; devtenant's test controls then decline,
move, delete or add a conflicting meeting as a given user. Each change must become one drift row:
within 5 s when devtenant delivers at once, within 2 sweep intervals when every notification is
dropped. devtenant's read log proves no subject or body is ever read.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from calendar_backend import storage
from calendar_backend.app import SERVICE_KEY
from calendar_backend.contract import format_time, parse_time
from calendar_backend.runtime import build_clients
from calendar_backend.storage import watch as store_watch
from calendar_backend.watch import Watcher
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.security.gate_env import ADELE, MEGAN, archive, audit_rows, find_body, interview_body
from tests.service.conftest import ALEX, Stack, service_for

JsonDict = dict[str, Any]
DIEGO = "diegos@contoso.example"


def control(dt: DevTenantHandle, method: str, path: str, body: Any = None) -> Any:
    response = dt.session().request(method, f"{dt.base_url}/_devtenant/{path}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


async def acontrol(dt: DevTenantHandle, method: str, path: str, body: Any = None) -> Any:
    return await asyncio.to_thread(control, dt, method, path, body)


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


def watcher_of(stack: Stack) -> Watcher:
    watcher = stack.client.app[SERVICE_KEY].watch
    assert isinstance(watcher, Watcher)
    url = str(stack.client.make_url("/v1/watch/notifications"))
    watcher.config = dataclasses.replace(
        watcher.config, notification_url=url, dev=True, near=timedelta(days=30)
    )
    return watcher


async def book(stack: Stack, n: int) -> list[JsonDict]:
    """``n`` interviews of Megan (Adele optional: the replacement), organised by Alex."""
    status, doc = await stack.post("/v1/slots/find", find_body([MEGAN], limit=20), stack.token())
    assert status == 200, doc
    slots = sorted(doc["slots"], key=lambda s: s["start"])
    chosen: list[JsonDict] = []
    for slot in slots:
        if chosen and slot["start"] < chosen[-1]["end"]:
            continue
        body = interview_body(
            [MEGAN], f"w-{uuid.uuid4().hex[:12]}", slot["start"], slot["end"], optional=[ADELE]
        )
        status, made = await stack.post("/v1/interviews", body, stack.token())
        assert status == 201, made
        chosen.append(made)
        if len(chosen) == n:
            return chosen
    raise AssertionError("not enough slots")


async def drift(stack: Stack) -> list[store_watch.DriftRow]:
    async with stack.runtime.store.transaction() as tx:
        return await store_watch.all_drift(tx)


async def wait_for(
    stack: Stack, kind: str, interview: str, limit_s: float
) -> tuple[store_watch.DriftRow, float]:
    started = time.monotonic()
    while time.monotonic() - started < limit_s + 10:
        found = [d for d in await drift(stack) if d.kind == kind and d.interview_id == interview]
        if found:
            return found[0], time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {kind} drift for {interview}: {await drift(stack)}")


async def copy_of(stack: Stack, interview: str, mailbox: str) -> str:
    async with stack.runtime.store.transaction() as tx:
        return (await store_watch.events_of_interview(tx, interview))[mailbox]


async def changes(stack: Stack, booked: list[JsonDict]) -> list[tuple[str, str, Any]]:
    """Decline (no response sent), move, delete and a conflicting meeting, one per interview."""
    declined, moved, deleted, conflicted = booked
    megan_copy = await copy_of(stack, declined["id"], MEGAN)
    moved_id = await copy_of(stack, moved["id"], ALEX)
    deleted_id = await copy_of(stack, deleted["id"], ALEX)
    later = {k: format_time(parse_time(moved[k]) + timedelta(hours=3)) for k in ("start", "end")}
    return [
        (
            "declined",
            declined["id"],
            (
                "POST",
                f"mailboxes/{MEGAN}/events/{megan_copy}/respond",
                {"response": "declined", "sendResponse": False},
            ),
        ),
        ("moved", moved["id"], ("POST", f"mailboxes/{ALEX}/events/{moved_id}/move", later)),
        ("deleted", deleted["id"], ("POST", f"mailboxes/{ALEX}/events/{deleted_id}/delete", {})),
        (
            "conflict",
            conflicted["id"],
            (
                "POST",
                f"mailboxes/{MEGAN}/events",
                {"start": conflicted["start"], "end": conflicted["end"], "showAs": "busy"},
            ),
        ),
    ]


def assert_no_content_read(dt: DevTenantHandle) -> None:
    reads = control(dt, "GET", "graph/event-reads")["value"]
    assert reads, "the watcher read no event at all"
    for read in reads:
        assert read["select"] is not None, read  # every read names its fields
        assert not {"subject", "body", "bodyPreview", "location"} & set(read["select"]), read


async def test_each_change_is_drift_within_5s_when_delivered(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    booked = await book(stack, 4)
    assert await watcher.ensure() == 4
    subs = (await acontrol(dt, "GET", "subscriptions"))["value"]
    assert sorted(s["resource"].split("/")[2].lower() for s in subs) == sorted([ALEX, MEGAN])
    await acontrol(dt, "DELETE", "graph/event-reads")
    worker = asyncio.create_task(watcher.run_worker(idle_s=0.2))
    try:
        for kind, interview, (method, path, body) in await changes(stack, booked):
            await acontrol(dt, method, path, body)
            found, took = await wait_for(stack, kind, interview, 5.0)
            assert took <= 5.0, (kind, took)
            assert found.source == "notification", found
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    rows = await drift(stack)
    assert sorted(d.kind for d in rows) == ["conflict", "declined", "deleted", "moved"], rows
    declined = next(d for d in rows if d.kind == "declined")
    assert declined.who == MEGAN
    kinds = [r["kind"] for r in declined.repairs]
    assert len(declined.repairs) >= 2, declined.repairs
    assert {"replace", "move"} <= set(kinds), declined.repairs
    assert {"kind": "replace", "in": ADELE}.items() <= next(
        r for r in declined.repairs if r["kind"] == "replace"
    ).items()
    assert watcher.stats.dropped == 0
    assert_no_content_read(dt)


async def test_duplicates_and_forged_notifications(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    await book(stack, 1)
    await watcher.ensure()
    sub = (await acontrol(dt, "GET", "subscriptions"))["value"][0]
    forged = {
        "value": [
            {
                "subscriptionId": sub["id"],
                "clientState": "guess",
                "changeType": "updated",
                "resourceData": {"id": "x"},
            }
        ]
    }
    resp = await stack.client.post("/v1/watch/notifications", json=forged)
    assert resp.status == 202
    assert (await resp.json()) == {"queued": 0, "dropped": 1}
    unknown = {"value": [{"subscriptionId": str(uuid.uuid4()), "clientState": "x", "changeType": "updated"}]}
    resp = await stack.client.post("/v1/watch/notifications", json=unknown)
    assert (await resp.json()) == {"queued": 0, "dropped": 1}
    resp = await stack.client.post("/v1/watch/notifications?validationToken=abc%20def", data=b"")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert await resp.text() == "abc def"
    resp = await stack.client.post("/v1/watch/notifications", data=b"x" * (70 * 1024))
    assert resp.status in {400, 413}


async def test_dropped_notifications_are_caught_within_two_sweeps(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True, "drop_rate": 1.0})
    watcher = watcher_of(stack)
    interval = 1.5
    watcher.config = dataclasses.replace(watcher.config, sweep_every=timedelta(seconds=interval))
    booked = await book(stack, 4)
    await watcher.ensure()

    async def sweeping() -> None:
        while True:
            await watcher.sweep()
            await asyncio.sleep(interval)

    sweeper = asyncio.create_task(sweeping())
    try:
        for kind, interview, (method, path, body) in await changes(stack, booked):
            await acontrol(dt, method, path, body)
            found, took = await wait_for(stack, kind, interview, 2 * interval)
            assert took <= 2 * interval, (kind, took)
            assert found.source == "sweep"
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
    assert watcher.stats.queued == 0  # every notification was dropped
    assert_no_content_read(dt)


async def test_subscriptions_never_lapse_over_30_days(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    watcher.clock = dt.tenant.clock
    await book(stack, 1)
    await watcher.ensure()
    first = {s["id"] for s in (await acontrol(dt, "GET", "subscriptions"))["value"]}
    assert len(first) == 2
    for _ in range(60):  # 30 days in steps of 12 hours
        await acontrol(dt, "PUT", "clock", {"advance_s": 12 * 3600})
        watcher.tokens, _graph = build_clients(stack.runtime)  # real time would fetch new tokens
        await watcher.renew()
        now = dt.tenant.clock()
        subs = (await acontrol(dt, "GET", "subscriptions"))["value"]
        assert {s["id"] for s in subs} == first  # renewed in place, never recreated
        for sub in subs:
            left = datetime.fromisoformat(sub["expirationDateTime"].replace("Z", "+00:00")) - now
            assert left > timedelta(days=2), left
    events = {d["status"] for d in (await acontrol(dt, "GET", "subscriptions/deliveries"))["value"]}
    assert "removed" not in events


async def test_lifecycle_removed_is_recreated_and_missed_sweeps(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    booked = await book(stack, 1)
    await watcher.ensure()
    subs = (await acontrol(dt, "GET", "subscriptions"))["value"]
    megan_sub = next(s for s in subs if MEGAN in s["resource"].lower())
    worker = asyncio.create_task(watcher.run_worker(idle_s=0.2))
    try:
        await acontrol(
            dt,
            "POST",
            f"subscriptions/{megan_sub['id']}/lifecycle",
            {"lifecycleEvent": "subscriptionRemoved"},
        )
        for _ in range(100):
            now = (await acontrol(dt, "GET", "subscriptions"))["value"]
            if any(MEGAN in s["resource"].lower() for s in now):
                break
            await asyncio.sleep(0.05)
        assert any(MEGAN in s["resource"].lower() and s["id"] != megan_sub["id"] for s in now), now
        # a decline nobody was told about, then `missed`: the mailbox is swept at once
        await acontrol(dt, "PUT", "subscriptions/delivery", {"drop_next": 10})
        copy = await copy_of(stack, booked[0]["id"], MEGAN)
        await acontrol(
            dt,
            "POST",
            f"mailboxes/{MEGAN}/events/{copy}/respond",
            {"response": "declined", "sendResponse": False},
        )
        new_sub = next(s for s in now if MEGAN in s["resource"].lower())
        await acontrol(dt, "POST", f"subscriptions/{new_sub['id']}/lifecycle", {"lifecycleEvent": "missed"})
        await wait_for(stack, "declined", booked[0]["id"], 5.0)
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


async def test_drift_routes_list_and_apply_one_repair(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    booked = await book(stack, 1)
    await watcher.ensure()
    copy = await copy_of(stack, booked[0]["id"], MEGAN)
    await acontrol(
        dt,
        "POST",
        f"mailboxes/{MEGAN}/events/{copy}/respond",
        {"response": "declined", "sendResponse": False},
    )
    await watcher.drain()
    await watcher.sweep()
    status, doc = await stack.get("/v1/watch/drift", stack.token())
    assert status == 200, doc
    (item,) = doc["drift"]
    assert item["kind"] == "declined"
    assert item["who"] == MEGAN
    status, other = await stack.get("/v1/watch/drift", stack.token(MEGAN))
    assert status == 200
    assert other["drift"] == []
    replace = next(r for r in item["repairs"] if r["kind"] == "replace")
    updates = int(dt.tenant.counters["graph.events.update"])
    status, done = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": replace["id"]}, stack.token()
    )
    assert status == 200, done
    assert int(dt.tenant.counters["graph.events.update"]) == updates + 1  # ONE Outlook update
    status, again = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": replace["id"]}, stack.token()
    )
    assert status == 409, again
    status, doc = await stack.get("/v1/watch/drift", stack.token())
    assert doc["drift"] == []


async def test_concurrent_replacements_never_double_book_the_same_person(stack: Stack) -> None:
    """Two interviews at one time, both declined, both repaired with Adele at once: one wins (the
    reservation in the database decides; the loser changes nothing in Outlook)."""
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    status, doc = await stack.post("/v1/slots/find", find_body([MEGAN, DIEGO]), stack.token())
    assert status == 200, doc
    slot = sorted(doc["slots"], key=lambda s: s["start"])[0]
    made = []
    for person in (MEGAN, DIEGO):
        body = interview_body(
            [person],
            f"w-{uuid.uuid4().hex[:12]}",
            slot["start"],
            slot["end"],
            candidate={"name": "Dana Smith", "email": f"dana.{person[:5]}@example.com"},
        )
        status, row = await stack.post("/v1/interviews", body, stack.token())
        assert status == 201, row
        made.append(row)
    await watcher.ensure()
    for row, person in zip(made, (MEGAN, DIEGO), strict=True):
        copy = await copy_of(stack, row["id"], person)
        body = {"response": "declined", "sendResponse": True}
        await acontrol(dt, "POST", f"mailboxes/{person}/events/{copy}/respond", body)
    await watcher.drain()
    await watcher.sweep()
    status, doc = await stack.get("/v1/watch/drift", stack.token())
    items = [d for d in doc["drift"] if d["kind"] == "declined"]
    assert len(items) == 2, doc
    async with stack.runtime.store.transaction() as tx:
        for item in items:
            repair = {"id": "replace-1", "kind": "replace", "out": item["who"], "in": ADELE}
            await store_watch.set_repairs(tx, item["id"], [repair])
    updates = int(dt.tenant.counters["graph.events.update"])
    path = "/v1/watch/drift/{}/apply"
    applies = [stack.post(path.format(item["id"]), {"repair": "replace-1"}, stack.token()) for item in items]
    answers = await asyncio.gather(*applies)
    assert sorted(s for s, _ in answers) == [200, 409], answers
    async with stack.runtime.store.transaction() as tx:
        rows = [await storage.get_interview(tx, r["id"]) for r in made]
    assert sum(ADELE in (r.attendees if r else ()) for r in rows) == 1
    assert int(dt.tenant.counters["graph.events.update"]) == updates + 1


async def test_a_cancelled_interview_is_no_longer_watched(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    (made,) = await book(stack, 1)
    await watcher.ensure()
    assert len((await acontrol(dt, "GET", "subscriptions"))["value"]) == 2
    assert await watcher.prune() == 0
    status, doc = await stack.post(f"/v1/interviews/{made['id']}/cancel", {}, stack.token())
    assert status == 200, doc
    assert await watcher.prune() == 2
    assert (await acontrol(dt, "GET", "subscriptions"))["value"] == []
    assert await watcher.copies(made["id"]) == {}


async def test_a_move_in_outlook_is_restored_with_one_update(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    (made,) = await book(stack, 1)
    await watcher.ensure()
    event_id = await copy_of(stack, made["id"], ALEX)
    later = {k: format_time(parse_time(made[k]) + timedelta(hours=2)) for k in ("start", "end")}
    await acontrol(dt, "POST", f"mailboxes/{ALEX}/events/{event_id}/move", later)
    await watcher.drain()
    await watcher.sweep()
    status, doc = await stack.get("/v1/watch/drift", stack.token())
    (item,) = doc["drift"]
    assert item["kind"] == "moved"
    assert {r["id"] for r in item["repairs"]} >= {"restore", "time-1"}
    updates = int(dt.tenant.counters["graph.events.update"])
    status, done = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": "restore"}, stack.token()
    )
    assert status == 200, done
    assert int(dt.tenant.counters["graph.events.update"]) - updates <= 2  # panel (+ candidate's own invite)
    alex = dt.tenant.find_mailbox(ALEX)
    assert alex is not None
    event = next(e for e in dt.tenant.events_of(alex) if e.get("id") == event_id)
    assert parse_time(event["start"]["dateTime"][:19] + "Z") == parse_time(made["start"])


async def test_the_gate_stops_reads_of_a_mailbox_that_left(stack: Stack) -> None:
    """An interviewer archived after the booking: their notifications are read no further."""
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    (made,) = await book(stack, 1)
    await watcher.ensure()
    await archive(stack, MEGAN)
    await acontrol(dt, "DELETE", "graph/event-reads")
    copy = await copy_of(stack, made["id"], MEGAN)
    await acontrol(dt, "POST", f"mailboxes/{MEGAN}/events/{copy}/respond", {"response": "declined"})
    for _ in range(40):
        if watcher.stats.queued:
            break
        await asyncio.sleep(0.05)
    await watcher.drain()
    await watcher.sweep()
    assert await watcher.drift_rows() == []
    assert control(dt, "GET", "graph/event-reads")["value"] == []
    assert ("watch.gate", [MEGAN], "denied:archived") in [
        (op, targets, result) for op, targets, result in await audit_rows(stack)
    ]
