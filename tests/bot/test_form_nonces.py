"""Candidate form nonces are single-use (issue 12 finding 14): the SQL ledger shared by bot instances."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from dialogs.form_nonces import MemoryNonceLedger, SqlNonceLedger
from dialogs.sql_storage import BOT_STATE, SqlStorage


async def test_spent_once_even_when_posted_concurrently(storage: SqlStorage) -> None:
    ledger, other_instance = SqlNonceLedger(storage, 3600), SqlNonceLedger(storage, 3600)
    results = await asyncio.gather(*(lg.spend("1700000000.abcd.mac") for lg in [ledger, other_instance] * 5))
    assert sorted(results) == [False] * 9 + [True]
    assert await ledger.spend("1700000000.abce.mac")
    async with storage.engine.connect() as conn:
        keys = (await conn.execute(sa.select(BOT_STATE.c.key))).scalars().all()
    assert len(keys) == 2
    assert all(k.startswith("form-nonce/") and "1700000000" not in k for k in keys)  # hashed


async def test_prune_forgets_only_expired_nonces(storage: SqlStorage) -> None:
    now = [datetime.now(UTC)]
    ledger = SqlNonceLedger(storage, 60, clock=lambda: now[0])
    assert await ledger.spend("old")
    now[0] += timedelta(hours=1)
    await ledger.prune()
    assert await ledger.spend("old")  # gone (and its time check would refuse it anyway)
    now[0] = datetime.now(UTC)
    await ledger.prune()
    assert not await ledger.spend("old")


async def test_memory_ledger() -> None:
    now = [0.0]
    ledger = MemoryNonceLedger(10, clock=lambda: now[0])
    assert await ledger.spend("n")
    assert not await ledger.spend("n")
    now[0] = 11
    assert await ledger.spend("n")
