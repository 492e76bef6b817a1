"""`serve` credits trainees' completed sessions by itself (runtime.start_training_sweep, every
OPENSLOT_TRAINING_SWEEP_S; 0 turns it off), audited."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

from calendar_backend import storage
from calendar_backend.pools import Member, Pool
from calendar_backend.pools_booking import reserve_from_pool
from calendar_backend.pools_training import Trainee, TrainingStage
from calendar_backend.runtime import start_training_sweep
from tests.security.gate_env import ADELE, MEGAN, audit_rows
from tests.service.conftest import ALEX, Stack


async def _trainee_done(stack: Stack, pool_id: str) -> int:
    async with stack.runtime.store.transaction() as tx:
        record = await storage.get_pool_by_id(tx, pool_id)
    assert record is not None
    return sum(t.shadow_done for t in record.trainees)


async def test_serve_credits_ended_sessions_periodically(calendar_stack: Stack) -> None:
    stack, rt = calendar_stack, calendar_stack.runtime
    tenant = stack.devtenant.tenant_id
    start = datetime.now(UTC) - timedelta(hours=2)
    async with rt.store.transaction() as tx:
        pool_id = await storage.create_pool(
            tx, tenant, Pool("Backend", "backend", 5, 2, (Member(MEGAN),)), owner=ALEX
        )
        assert pool_id is not None
        await storage.add_trainee(tx, pool_id, Trainee(ADELE, shadow_required=2))
        row = await storage.insert_pending(
            tx, tenant_id=tenant, organizer_oid="org", organizer_upn=ALEX, transaction_id="sweep-1",
            start=start, end=start + timedelta(hours=1), attendees=[MEGAN, ADELE],
            candidate_name="Dana Smith", subject="Interview", source=storage.InterviewSource.BOT,
        )  # fmt: skip
        await reserve_from_pool(
            tx, tenant_id=tenant, pool_id=pool_id, interview_id=row.id, start=row.start, members=[MEGAN],
            trainees=[(ADELE, TrainingStage.SHADOW)], request_id="r1",
        )  # fmt: skip
        assert await storage.confirm_interview(tx, row.id, "event-1", None)

    rt.settings = dataclasses.replace(rt.settings, training_sweep_s=0)
    assert start_training_sweep(rt) == []  # off
    rt.settings = dataclasses.replace(rt.settings, training_sweep_s=3600)
    tasks = start_training_sweep(rt)  # a round now, then hourly
    try:
        for _ in range(100):
            if await _trainee_done(stack, pool_id) == 1:
                break
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert await _trainee_done(stack, pool_id) == 1
    assert ("pool.training_credit", [row.id, ADELE], "shadow") in await audit_rows(stack)
    status, card = await stack.get(f"/v1/pools/{pool_id}", stack.token())  # the owner's card shows it
    assert status == 200, card
    assert [(t["address"], t["shadow_done"]) for t in card["trainees"]] == [(ADELE, 1)]
