"""The drift feed's lease (issue 19, r0014) on SQLite and PostgreSQL: concurrent claims by two
pollers hand each undelivered row to ONE of them; the holder gets it again, the other only after the
lease ran out; a delivered row to no one."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from calendar_backend.storage import Store
from calendar_backend.storage import watch as store_watch
from calendar_backend.storage import watch_feed as rows
from tests.backend.test_storage import T0, _pending, _tenant

LEASE = timedelta(seconds=60)


async def drift_row(store: Store) -> str:
    async with store.transaction() as tx:
        await _tenant(tx)
        interview = await _pending(tx, T0 + timedelta(days=1))
        await rows.set_conversation_ref(tx, interview.id, interview.tenant_id, b"sealed", 1)
        drift = await store_watch.record_drift(
            tx, interview, "declined", "ada@contoso.example", "sweep", "fp", T0
        )
    assert drift is not None
    return drift.id


async def claim(store: Store, poller: str, at: timedelta = timedelta()) -> list[str]:
    async with store.transaction() as tx:
        return [r.drift_id for r in await rows.claim(tx, poller, T0 + at, T0 + at + LEASE)]


async def test_concurrent_claims_hand_a_row_to_one_poller(store: Store) -> None:
    drift_id = await drift_row(store)
    got = await asyncio.gather(*(claim(store, f"bot-{i}") for i in range(6)))
    assert sorted(d for g in got for d in g) == [drift_id]  # exactly one replica holds it
    holder = next(f"bot-{i}" for i, g in enumerate(got) if g)
    assert await claim(store, holder) == [drift_id]  # the holder's retry
    assert await claim(store, "bot-x", timedelta(seconds=59)) == []
    assert await claim(store, "bot-x", timedelta(seconds=61)) == [drift_id]  # the lease ran out
    assert await claim(store, holder, timedelta(seconds=62)) == []  # now bot-x holds it
    async with store.transaction() as tx:
        assert await rows.mark_delivered(tx, [drift_id], T0) == 1
        held = (await tx.execute(sa.select(store_watch.watch_drift.c.claimed_by))).scalar_one()
    assert held == "bot-x"
    assert await claim(store, "bot-y", timedelta(hours=1)) == []  # delivered: to no one
