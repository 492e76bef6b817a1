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
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

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
