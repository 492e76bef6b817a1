"""Spent candidate-form nonces: each nonce the candidate page issues changes at most one booking.

`SqlNonceLedger` records a spent nonce as a create-only row of the bot's shared ``bot_state`` table
(key ``form-nonce/<sha256 of the nonce>``, no content), so a replay is refused on every bot instance
of a deployment, and two concurrent posts of one form cannot both pass (the second insert conflicts).
Rows older than the nonce lifetime are pruned now and then. `MemoryNonceLedger` is the one-process
version (tests and tools that mount the page without a database).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from dialogs.sql_storage import BOT_STATE, EtagConflictError, SqlStorage

PREFIX = "form-nonce/"
PRUNE_EVERY = 256


class NonceLedger(Protocol):
    async def spend(self, nonce: str) -> bool:
        """True the first time ``nonce`` is spent, False ever after (within its lifetime)."""
        ...


def _key(nonce: str) -> str:
    return PREFIX + hashlib.sha256(nonce.encode()).hexdigest()


class MemoryNonceLedger:
    """Spent nonces of this process, forgotten after ``ttl_s`` (at most ``limit`` kept)."""

    def __init__(
        self, ttl_s: float, limit: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s, self._limit, self._clock = ttl_s, limit, clock
        self._spent: OrderedDict[str, float] = OrderedDict()

    async def spend(self, nonce: str) -> bool:
        now, key = self._clock(), _key(nonce)
        while self._spent and (
            next(iter(self._spent.values())) < now - self._ttl_s or len(self._spent) >= self._limit
        ):
            self._spent.popitem(last=False)
        if key in self._spent:
            return False
        self._spent[key] = now
        return True


class SqlNonceLedger:
    """Spent nonces in the bot's SQL store, shared by every bot instance."""

    def __init__(
        self, store: SqlStorage, ttl_s: float, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._store, self._ttl = store, timedelta(seconds=ttl_s + 60)
        self._clock = clock
        self._writes = 0

    async def spend(self, nonce: str) -> bool:
        try:
            await self._store.write({_key(nonce): {}})  # no eTag: insert only
        except EtagConflictError:
            return False
        self._writes += 1
        if self._writes % PRUNE_EVERY == 0:
            await self.prune()
        return True

    async def prune(self) -> None:
        """Delete spent nonces older than their lifetime (they would fail the time check anyway)."""
        cutoff = self._clock() - self._ttl
        async with self._store.engine.begin() as conn:
            await conn.execute(
                sa.delete(BOT_STATE)
                .where(BOT_STATE.c.key.startswith(PREFIX))
                .where(BOT_STATE.c.updated_at < cutoff)
            )
