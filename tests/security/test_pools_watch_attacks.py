"""The attacker's pass over issue 18/19's new surfaces (pools from groups, skipped members, outside
load, the training sweep, cap overrides, the watcher's repairs, the drift feed's lease).

Each test is one attack. Those that found a defect were seen failing before the fix (named in
the test's docstring); the others are regression tests of a defence that held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calendar_backend import storage
from calendar_backend.pools import Member, Pool
from calendar_backend.pools_booking import reserve_from_pool
from calendar_backend.pools_completion import TrainingSweep
from calendar_backend.pools_training import Trainee, TrainingStage
from calendar_backend.storage import watch as store_watch
from calendar_backend.storage import watch_feed as feed_rows
from tests.backend.conftest import engine, pg_databases, pg_url, sqlite_template, store  # noqa: F401

TENANT = "11111111-2222-3333-4444-555555555555"
MON = datetime(2026, 12, 7, tzinfo=UTC)
A, T = "a@contoso.example", "t@contoso.example"


async def _pool_with_trainee(store: storage.Store) -> str:  # noqa: F811
    async with store.transaction() as tx:
        pool_id = await storage.create_pool(tx, TENANT, Pool("Backend", "backend", 9, 9, (Member(A),)))
        assert pool_id is not None
        await storage.add_trainee(
            tx, pool_id, Trainee(T, shadow_required=5, reverse_shadow_required=0, weekly_cap=9, daily_cap=9)
        )
    return pool_id


async def _session(store: storage.Store, pool_id: str, n: int, start: datetime) -> storage.InterviewRow:  # noqa: F811
    async with store.transaction() as tx:
        row = await storage.insert_pending(
            tx,
            tenant_id=TENANT,
            organizer_oid="org",
            organizer_upn="hm@contoso.example",
            transaction_id=f"booking-{n}",
            start=start,
            end=start + timedelta(hours=1),
            attendees=[A, T],
            candidate_name="Candidate",
            subject="Interview",
            source=storage.InterviewSource.BOT,
        )
        await reserve_from_pool(
            tx, tenant_id=TENANT, pool_id=pool_id, interview_id=row.id, start=row.start, members=[A],
            trainees=[(T, TrainingStage.SHADOW)], request_id=f"r{n}",
        )  # fmt: skip
        assert await storage.confirm_interview(tx, row.id, f"event-{n}", None)
    return row


# ---- the training sweep (pools_completion.py) ------------------------------------------------------
@pytest.mark.parametrize("kind", ["deleted", "moved"])
async def test_sweep_does_not_credit_a_session_deleted_or_moved_in_outlook(
    store: storage.Store,  # noqa: F811
    kind: str,
) -> None:
    """ATTACK: the organizer deletes the meeting in Outlook (or moves it to next month); OpenSlot's row
    is still ``confirmed`` at the old time until the manager repairs the drift. BROKEN before the fix
    (seen failing: the trainee was credited a shadow session that never happened); now a seat whose
    interview has an unrepaired ``deleted``/``moved`` drift is not due."""
    pool_id = await _pool_with_trainee(store)
    row = await _session(store, pool_id, 1, MON + timedelta(hours=9))
    async with store.transaction() as tx:
        assert await store_watch.record_drift(tx, row, kind, "hm@contoso.example", "sweep", f"fp-{kind}", MON)
    report = await TrainingSweep(store, lambda: MON + timedelta(days=1)).run_once()
    assert report.credited == 0
    async with store.transaction() as tx:
        record = await storage.get_pool_by_id(tx, pool_id)
    assert record is not None
    assert next(t for t in record.trainees if t.address == T).shadow_done == 0


async def test_sweep_credits_once_the_move_drift_is_repaired(store: storage.Store) -> None:  # noqa: F811
    """HELD (regression): a ``moved`` drift the manager repaired (``restore``: back to the booked
    time) no longer holds the credit back."""
    pool_id = await _pool_with_trainee(store)
    row = await _session(store, pool_id, 1, MON + timedelta(hours=9))
    async with store.transaction() as tx:
        drift = await store_watch.record_drift(tx, row, "moved", "hm@contoso.example", "sweep", "fp-m", MON)
        assert drift is not None
        assert await store_watch.claim_drift(tx, drift.id)
        await store_watch.settle_drift(tx, drift.id, "applied", "restore")
    assert (await TrainingSweep(store, lambda: MON + timedelta(days=1)).run_once()).credited == 1
