"""50 concurrent drift repairs (issue 19) on SQLite and on PostgreSQL.

Six interviews, each with one interviewer drawn from the pool "Backend", three at one time and
three at another; each gets a drift row whose repairs compete: ``replace`` into Lee (weekly cap 1)
or Grady (no cap in play) at the same time, and ``move``s of Megan's two interviews to one same
free time. 50 applies at once (several per row, different repairs), then: no person is in two
overlapping interviews, no cap is passed, each drift row is applied at most once, every pool seat
belongs to an attendee, and devtenant counts exactly the Outlook writes of the applied repairs (one
update per replace; a move updates the panel's event and the candidate's own invite).

On PostgreSQL the attendee swap runs under the booking advisory lock; without it, two Grady swaps
can both pass the conflict check before either commits (the test then finds Grady twice at once).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from calendar_backend import storage
from calendar_backend.contract import parse_time
from calendar_backend.pools import Member, Pool
from calendar_backend.storage import watch as store_watch
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.scaleout.conftest import DEFAULT_PG, pg_admin
from tests.security.gate_env import MEGAN, find_body, interview_body
from tests.service.conftest import Stack, service_for
from tests.service.test_watch import DIEGO, acontrol
from tests.service.test_watch_pool_repairs import GRADY, LA, LEE, PATTI

JsonDict = dict[str, Any]
APPLIES = 50


@pytest.fixture(params=["sqlite", "postgresql"])
async def stack(
    request: pytest.FixtureRequest, devtenant: DevTenantHandle, tmp_path: Path
) -> AsyncIterator[Stack]:
    overrides: dict[str, Any] = {}
    name = ""
    if request.param == "postgresql":
        name = f"openslot_wrepair_{uuid.uuid4().hex[:10]}"
        try:
            pg_admin(DEFAULT_PG, f'CREATE DATABASE "{name}"')
        except OSError as exc:  # pragma: no cover - CI always has PostgreSQL
            pytest.skip(f"PostgreSQL is not running: {exc}")
        overrides["database_url"] = f"{DEFAULT_PG}{name}"
    try:
        async with service_for(devtenant, tmp_path, **overrides) as running:
            yield running
    finally:
        if name:
            pg_admin(DEFAULT_PG, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def book(stack: Stack, pool_id: str, person: str, slot: JsonDict, n: int) -> JsonDict:
    candidate = {"name": f"Cand {n}", "email": f"cand{n}@example.com"}
    body = interview_body(
        [person], f"c-{uuid.uuid4().hex[:12]}", slot["start"], slot["end"], candidate=candidate
    )
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


async def drift_for(stack: Stack, made: JsonDict, who: str, repairs: list[JsonDict]) -> str:
    async with stack.runtime.store.transaction() as tx:
        row = await storage.get_interview(tx, made["id"])
        assert row is not None
        drift = await store_watch.record_drift(
            tx, row, "declined", who, "sweep", f"{row.id}:declined:{who}", row.created_at
        )
        assert drift is not None
        await store_watch.set_repairs(tx, drift.id, repairs)
    return drift.id


def replace(n: int, out: str, into: str) -> JsonDict:
    return {"id": f"replace-{n}", "kind": "replace", "out": out, "in": into}


def move(slot: JsonDict) -> JsonDict:
    return {"id": "time-1", "kind": "move", "start": slot["start"], "end": slot["end"]}


async def test_50_concurrent_repairs_keep_people_caps_and_drift_rows_straight(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    people = [MEGAN, DIEGO, PATTI, LEE, GRADY]
    status, doc = await stack.post("/v1/slots/find", find_body(people, limit=40), stack.token())
    assert status == 200, doc
    slots: list[JsonDict] = []
    for slot in sorted(doc["slots"], key=lambda s: s["start"]):
        if not slots or slot["start"] >= slots[-1]["end"]:
            slots.append(slot)
    assert len(slots) >= 3, doc["slots"]
    s0, s1, s2 = slots[:3]  # everyone free at each
    pool = Pool(
        "Backend",
        default_weekly_cap=5,
        default_daily_cap=5,
        members=(
            *(Member(a, zone=LA) for a in (MEGAN, DIEGO, PATTI, GRADY)),
            Member(LEE, zone=LA, weekly_cap=1),
        ),
    )
    async with stack.runtime.store.transaction() as tx:
        pool_id = await storage.create_pool(tx, dt.tenant_id, pool)
    assert pool_id is not None
    booked = [
        await book(stack, pool_id, person, slot, n)
        for n, (person, slot) in enumerate(
            [(MEGAN, s0), (DIEGO, s0), (PATTI, s0), (MEGAN, s2), (DIEGO, s2), (PATTI, s2)]
        )
    ]
    plans = [
        (booked[0], MEGAN, [replace(1, MEGAN, LEE), replace(2, MEGAN, GRADY), move(s1)]),
        (booked[1], DIEGO, [replace(1, DIEGO, LEE), replace(2, DIEGO, GRADY)]),
        (booked[2], PATTI, [replace(1, PATTI, GRADY), replace(2, PATTI, LEE)]),
        (booked[3], MEGAN, [replace(1, MEGAN, LEE), replace(2, MEGAN, GRADY), move(s1)]),
        (booked[4], DIEGO, [replace(1, DIEGO, GRADY), replace(2, DIEGO, LEE)]),
        (booked[5], PATTI, [replace(1, PATTI, LEE), replace(2, PATTI, GRADY)]),
    ]
    drifts = [(await drift_for(stack, made, who, repairs), repairs) for made, who, repairs in plans]
    taps = []
    for i in range(APPLIES):  # every row tapped ~8 times, cycling through its repairs
        drift_id, repairs = drifts[i % len(drifts)]
        taps.append((drift_id, repairs[(i // len(drifts)) % len(repairs)]))
    before = int(dt.tenant.counters["graph.events.update"])
    path = "/v1/watch/drift/{}/apply"
    answers = await asyncio.gather(
        *(stack.post(path.format(drift_id), {"repair": r["id"]}, stack.token()) for drift_id, r in taps)
    )
    assert len(answers) == APPLIES
    assert {s for s, _ in answers} <= {200, 409}, answers
    won = [(drift_id, r) for (drift_id, r), (s, _) in zip(taps, answers, strict=True) if s == 200]
    assert won, answers
    per_drift = collections.Counter(d for d, _ in won)
    assert max(per_drift.values()) == 1, per_drift  # each drift applied at most once
    writes = sum(1 if r["kind"] == "replace" else 2 for _, r in won)
    assert int(dt.tenant.counters["graph.events.update"]) - before == writes  # losers wrote nothing

    async with stack.runtime.store.transaction() as tx:
        rows = [await storage.get_interview(tx, m["id"]) for m in booked]
        states = {d: await store_watch.get_drift(tx, d) for d, _ in drifts}
        seats = {
            m["id"]: {p for p in people if await store_watch.pool_seat(tx, m["id"], p) is not None}
            for m in booked
        }
    assert all(r is not None and r.status is storage.InterviewStatus.CONFIRMED for r in rows)
    live = [r for r in rows if r is not None]
    for i, a in enumerate(live):  # nobody in two overlapping interviews
        for b in live[i + 1 :]:
            if a.start < b.end and b.start < a.end:
                shared = set(a.attendees) & set(b.attendees) - {a.organizer_upn}
                assert not shared, (a.attendees, b.attendees)
    for row in live:  # the seat followed the person
        assert seats[row.id] == set(row.attendees) & set(people), (row.attendees, seats[row.id])
    assert sum(LEE in r.attendees for r in live) <= 1  # Lee's weekly cap
    applied = {d for d, s in states.items() if s is not None and s.status == "applied"}
    assert applied == set(per_drift), (applied, per_drift)
    assert all(s is not None and s.status in {"open", "applied"} for s in states.values())


async def test_two_swaps_into_one_person_wait_for_the_booking_lock(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic: each swap's conflict check for Grady waits (up to 1 s) for the other's.
    Under the booking lock the second cannot even start its check before the first commits, so
    it sees Grady taken (409); without the lock both checks pass and Grady is booked twice."""
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    status, doc = await stack.post("/v1/slots/find", find_body([MEGAN, DIEGO, GRADY]), stack.token())
    assert status == 200, doc
    slot = sorted(doc["slots"], key=lambda s: s["start"])[0]
    pool = Pool("Backend", members=tuple(Member(a, zone=LA) for a in (MEGAN, DIEGO, GRADY)))
    async with stack.runtime.store.transaction() as tx:
        pool_id = await storage.create_pool(tx, dt.tenant_id, pool)
    assert pool_id is not None
    first = await book(stack, pool_id, MEGAN, slot, 1)
    second = await book(stack, pool_id, DIEGO, slot, 2)
    a = await drift_for(stack, first, MEGAN, [replace(1, MEGAN, GRADY)])
    b = await drift_for(stack, second, DIEGO, [replace(1, DIEGO, GRADY)])
    real = storage.find_conflicts
    arrived: list[int] = []
    both = asyncio.Event()

    async def paused(tx: Any, tenant_id: str, mailboxes: Any, start: Any, end: Any) -> Any:
        found = await real(tx, tenant_id, mailboxes, start, end)
        if list(mailboxes) == [GRADY]:
            arrived.append(1)
            if len(arrived) >= 2:
                both.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(both.wait(), 1.0)
        return found

    monkeypatch.setattr(storage, "find_conflicts", paused)
    path = "/v1/watch/drift/{}/apply"
    answers = await asyncio.gather(
        *(stack.post(path.format(d), {"repair": "replace-1"}, stack.token()) for d in (a, b))
    )
    assert sorted(s for s, _ in answers) == [200, 409], answers
    async with stack.runtime.store.transaction() as tx:
        rows = [await storage.get_interview(tx, m["id"]) for m in (first, second)]
    assert sum(GRADY in (r.attendees if r else ()) for r in rows) == 1
    # the loser was refused by the reservation itself, before any calendar read: without the lock
    # both reservations pass and only the live recheck (after Grady's first write) catches it
    assert ("watch.repair.replace", [GRADY], "slot_taken") not in await audits(stack)


async def audits(stack: Stack) -> list[tuple[str, list[str], str]]:
    """(operation, targets, result) of every audit row, on SQLite (JSON text) or PostgreSQL."""
    async with stack.runtime.store.transaction() as tx:
        rows = (await tx.execute(text("SELECT operation, targets, result FROM audit_log ORDER BY seq"))).all()
    return [(str(r[0]), r[1] if isinstance(r[1], list) else list(json.loads(r[1])), str(r[2])) for r in rows]
