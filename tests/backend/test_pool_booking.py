"""Drawing from a pool inside a booking (calendar_backend/pools_booking.py): overrides and training
are audited in the booking's transaction; outside "Interview" events count toward the caps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from calendar_backend import storage
from calendar_backend.audit import audit_log, verify_audit
from calendar_backend.pools import Member, Pool
from calendar_backend.pools_booking import complete_training, reserve_from_pool
from calendar_backend.pools_selection import CapOverride
from calendar_backend.pools_training import Trainee, TrainingStage

TENANT = "11111111-2222-3333-4444-555555555555"
MON = datetime(2026, 12, 7, tzinfo=UTC)
A, T = "a@contoso.example", "t@contoso.example"
KEY = bytes(range(32))


async def _setup(store: storage.Store, weekly: int) -> str:
    async with store.transaction() as tx:
        pool_id = await storage.create_pool(tx, TENANT, Pool("Backend", "backend", weekly, 3, (Member(A),)))
        assert pool_id is not None
        await storage.add_trainee(tx, pool_id, Trainee(T, shadow_required=1, reverse_shadow_required=0))
    return pool_id


async def _interview(tx, n: int, start: datetime, attendees: list[str]) -> storage.InterviewRow:
    return await storage.insert_pending(
        tx,
        tenant_id=TENANT,
        organizer_oid="org",
        organizer_upn="hm@contoso.example",
        transaction_id=f"booking-{n}",
        start=start,
        end=start + timedelta(hours=1),
        attendees=attendees,
        candidate_name="Candidate",
        subject="Interview",
        source=storage.InterviewSource.BOT,
    )


async def _audit_rows(store: storage.Store, operation: str) -> list[tuple[str, list[str], str]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(audit_log.c.actor_oid, audit_log.c.targets, audit_log.c.result)
            .where(audit_log.c.operation == operation)
            .order_by(audit_log.c.seq)
        )
        return [(r[0], r[1] if isinstance(r[1], list) else json.loads(r[1]), r[2]) for r in rows]


async def test_an_override_is_stored_and_audited_with_the_booking(store: storage.Store) -> None:
    pool_id = await _setup(store, weekly=1)
    async with store.transaction() as tx:
        first = await _interview(tx, 1, MON + timedelta(hours=9), [A])
        assert (
            await reserve_from_pool(
                tx,
                tenant_id=TENANT,
                pool_id=pool_id,
                interview_id=first.id,
                start=first.start,
                members=[A],
                request_id="r1",
            )
            == ()
        )
    override = CapOverride(A, "manager-oid", "hiring freeze ends Friday")
    async with store.transaction() as tx:
        second = await _interview(tx, 2, MON + timedelta(days=1, hours=9), [A])
        used = await reserve_from_pool(
            tx,
            tenant_id=TENANT,
            pool_id=pool_id,
            interview_id=second.id,
            start=second.start,
            members=[A],
            overrides=[override],
            request_id="r2",
        )
    assert [a for a, _ in used] == [A]
    assert await _audit_rows(store, "pool.cap_override") == [
        ("manager-oid", [pool_id, A, used[0][1], second.id], "overridden")
    ]
    async with store.engine.connect() as conn:
        assert (await verify_audit(conn, signing_key={1: KEY})).ok


async def test_outside_interview_events_count_toward_the_cap(store: storage.Store) -> None:
    pool_id = await _setup(store, weekly=2)
    outside = {A: [MON + timedelta(hours=8), MON + timedelta(days=2, hours=8)]}  # two category-only events

    async def book() -> None:
        async with store.transaction() as tx:
            row = await _interview(tx, 1, MON + timedelta(days=1, hours=9), [A])
            await reserve_from_pool(
                tx,
                tenant_id=TENANT,
                pool_id=pool_id,
                interview_id=row.id,
                start=row.start,
                members=[A],
                outside=outside,
                request_id="r1",
            )

    with pytest.raises(storage.CapReachedError):
        await book()
    async with store.transaction() as tx:  # one of them is in another week: the booking fits
        row = await _interview(tx, 2, MON + timedelta(days=1, hours=9), [A])
        await reserve_from_pool(
            tx,
            tenant_id=TENANT,
            pool_id=pool_id,
            interview_id=row.id,
            start=row.start,
            members=[A],
            outside={A: [outside[A][0], MON + timedelta(days=9)]},
            request_id="r2",
        )


async def test_completed_training_is_credited_once_and_graduation_audited(store: storage.Store) -> None:
    pool_id = await _setup(store, weekly=5)
    async with store.transaction() as tx:
        row = await _interview(tx, 1, MON + timedelta(hours=9), [A, T])
        await reserve_from_pool(
            tx,
            tenant_id=TENANT,
            pool_id=pool_id,
            interview_id=row.id,
            start=row.start,
            members=[A],
            trainees=[(T, TrainingStage.SHADOW)],
            request_id="r1",
        )
    for _ in range(2):
        async with store.transaction() as tx:
            events = await complete_training(
                tx, tenant_id=TENANT, interview_id=row.id, trainees=[T], actor="openslot", request_id="done"
            )
    assert events == ()  # the second call credits nothing
    assert await _audit_rows(store, "pool.training") == [  # nothing to reverse-shadow: both steps at once
        ("openslot", [row.id, T], "reverse_shadow"),
        ("openslot", [row.id, T], "graduated"),
    ]
    async with store.transaction() as tx:
        record = await storage.get_pool_by_id(tx, pool_id)
    assert record is not None
    assert record.pool.member(T) is not None  # graduates join the pool
