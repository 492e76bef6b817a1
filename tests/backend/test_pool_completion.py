"""Trainees' completed sessions credited automatically (calendar_backend/pools_completion.py):
once per seat even with two sweeps racing (SQLite and PostgreSQL), only ended confirmed interviews,
not a trainee who declined; graduation is audited and makes the trainee a member."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from calendar_backend import storage
from calendar_backend.audit import audit_log
from calendar_backend.pools import Member, Pool
from calendar_backend.pools_booking import reserve_from_pool
from calendar_backend.pools_completion import ACTOR, CREDIT_GRACE, TrainingSweep
from calendar_backend.pools_training import Trainee, TrainingStage
from calendar_backend.storage import watch as store_watch

TENANT = "11111111-2222-3333-4444-555555555555"
MON = datetime(2026, 12, 7, tzinfo=UTC)
A, T, U = "a@contoso.example", "t@contoso.example", "u@contoso.example"


async def _setup(store: storage.Store, shadows: int = 2) -> str:
    async with store.transaction() as tx:
        pool_id = await storage.create_pool(tx, TENANT, Pool("Backend", "backend", 9, 9, (Member(A),)))
        assert pool_id is not None
        for who in (T, U):
            await storage.add_trainee(
                tx,
                pool_id,
                Trainee(who, shadow_required=shadows, reverse_shadow_required=0, weekly_cap=9, daily_cap=9),
            )
    return pool_id


async def _session(
    store: storage.Store, pool_id: str, n: int, start: datetime, trainees: list[str], *, confirm: bool = True
) -> storage.InterviewRow:
    async with store.transaction() as tx:
        row = await storage.insert_pending(
            tx,
            tenant_id=TENANT,
            organizer_oid="org",
            organizer_upn="hm@contoso.example",
            transaction_id=f"booking-{n}",
            start=start,
            end=start + timedelta(hours=1),
            attendees=[A, *trainees],
            candidate_name="Candidate",
            subject="Interview",
            source=storage.InterviewSource.BOT,
        )
        await reserve_from_pool(
            tx, tenant_id=TENANT, pool_id=pool_id, interview_id=row.id, start=row.start, members=[A],
            trainees=[(t, TrainingStage.SHADOW) for t in trainees], request_id=f"r{n}",
        )  # fmt: skip
        if confirm:
            assert await storage.confirm_interview(tx, row.id, f"event-{n}", None)
    return row


async def _audit(store: storage.Store, operation: str) -> list[tuple[str, list[str], str]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(audit_log.c.actor_oid, audit_log.c.targets, audit_log.c.result)
            .where(audit_log.c.operation == operation)
            .order_by(audit_log.c.seq)
        )
        return [(r[0], r[1] if isinstance(r[1], list) else json.loads(r[1]), r[2]) for r in rows]


async def _trainee(store: storage.Store, pool_id: str, who: str) -> Trainee | None:
    async with store.transaction() as tx:
        record = await storage.get_pool_by_id(tx, pool_id)
    assert record is not None
    return next((t for t in record.trainees if t.address == who), None)


async def test_an_ended_confirmed_session_is_credited_once_and_graduation_audited(
    store: storage.Store,
) -> None:
    pool_id = await _setup(store)
    first = await _session(store, pool_id, 1, MON + timedelta(hours=9), [T])
    second = await _session(store, pool_id, 2, MON + timedelta(days=1, hours=9), [T])
    clock = [MON + timedelta(hours=9, minutes=59)]
    sweep = TrainingSweep(store, lambda: clock[0])
    assert (await sweep.run_once()).credited == 0  # not ended yet
    clock[0] = MON + timedelta(hours=10, minutes=1)  # just after the end: a clock running ahead may say so
    assert (await sweep.run_once()).credited == 0  # within the grace: not credited yet
    clock[0] = MON + timedelta(hours=10) + CREDIT_GRACE - timedelta(seconds=1)
    assert (await sweep.run_once()).credited == 0
    clock[0] = MON + timedelta(hours=10) + CREDIT_GRACE
    assert (await sweep.run_once()).credited == 1
    assert (await sweep.run_once()).credited == 0  # a restart credits nothing twice
    trainee = await _trainee(store, pool_id, T)
    assert trainee is not None
    assert trainee.shadow_done == 1
    clock[0] = MON + timedelta(days=2)
    report = await sweep.run_once()
    assert (report.credited, report.graduated) == (1, 1)
    assert await _audit(store, "pool.training_credit") == [
        (ACTOR, [first.id, T], "shadow"),
        (ACTOR, [second.id, T], "shadow"),
    ]
    assert await _audit(store, "pool.training") == [
        (ACTOR, [second.id, T], "reverse_shadow"),
        (ACTOR, [second.id, T], "graduated"),
    ]
    async with store.transaction() as tx:
        record = await storage.get_pool_by_id(tx, pool_id)
    assert record is not None
    assert record.pool.member(T) is not None


async def test_cancelled_pending_and_declined_sessions_are_not_credited(store: storage.Store) -> None:
    pool_id = await _setup(store)
    cancelled = await _session(store, pool_id, 1, MON + timedelta(hours=9), [T])
    await _session(store, pool_id, 2, MON + timedelta(hours=11), [T], confirm=False)  # still pending
    declined = await _session(store, pool_id, 3, MON + timedelta(hours=13), [U])
    async with store.transaction() as tx:
        assert await storage.mark_interview(tx, cancelled.id, storage.InterviewStatus.CANCELLED)
        assert await store_watch.record_drift(tx, declined, "declined", U.upper(), "sweep", "fp-1", MON)
    report = await TrainingSweep(store, lambda: MON + timedelta(days=1)).run_once()
    assert report.credited == 0
    for who in (T, U):
        trainee = await _trainee(store, pool_id, who)
        assert trainee is not None
        assert trainee.shadow_done == 0
    assert await _audit(store, "pool.training_credit") == []


async def test_two_sweeps_racing_credit_each_seat_once(store: storage.Store, engine: AsyncEngine) -> None:
    pool_id = await _setup(store, shadows=9)
    for n in range(6):
        await _session(store, pool_id, n, MON + timedelta(hours=8 + n), [T, U])
    url = engine.url.render_as_string(hide_password=False)
    other_engine = storage.create_engine(url)  # a second service instance: its own connections
    try:
        other = storage.Store(other_engine)
        now = MON + timedelta(days=1)
        reports = await asyncio.gather(
            TrainingSweep(store, lambda: now).run_once(), TrainingSweep(other, lambda: now).run_once()
        )
    finally:
        await other_engine.dispose()
    assert sum(r.credited for r in reports) == 12
    for who in (T, U):
        trainee = await _trainee(store, pool_id, who)
        assert trainee is not None
        assert trainee.shadow_done == 6
    assert len(await _audit(store, "pool.training_credit")) == 12
