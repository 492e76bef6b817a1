"""Moving an interview with pool seats rechecks the caps in the new local week/day (issue 18).

The check runs in the move hold's own transaction under the booking lock
(:func:`calendar_backend.storage.move_pool_seats`), and the hold carries the seats, so a move and a
booking racing for a member's last seat of a week cannot both win. SQLite and PostgreSQL (``store``).
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from calendar_backend import storage
from calendar_backend.pools import Member, Pool
from calendar_backend.pools_selection import CapOverride

TENANT = "11111111-2222-3333-4444-555555555555"
MON = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday
NEXT = MON + timedelta(days=7)
A, B = "a@contoso.example", "b@contoso.example"


async def _pool(store: storage.Store, weekly: int, daily: int = 5) -> str:
    async with store.transaction() as tx:
        pool_id = await storage.create_pool(
            tx, TENANT, Pool("Backend", "backend", weekly, daily, (Member(A), Member(B)))
        )
    assert pool_id is not None
    return pool_id


async def _booked(
    store: storage.Store, pool_id: str | None, start: datetime, *, pooled: bool = True
) -> storage.InterviewRow:
    async with store.transaction() as tx:
        row = await storage.insert_pending(
            tx, tenant_id=TENANT, organizer_oid="org", organizer_upn="hm@contoso.example",
            transaction_id=f"tx-{random.random()}", start=start, end=start + timedelta(minutes=30),
            attendees=[A, f"cand{random.random()}@example.com"], candidate_name="C", subject="Interview",
            source=storage.InterviewSource.BOT,
        )  # fmt: skip
        if pooled and pool_id is not None:
            await storage.reserve_pool_seats(
                tx, tenant_id=TENANT, pool_id=pool_id, interview_id=row.id, start=row.start, members=[A]
            )
        await storage.confirm_interview(tx, row.id, f"ev-{row.id}", None)
        found = await storage.get_interview(tx, row.id)
    assert found is not None
    return found


async def _move(
    store: storage.Store, row: storage.InterviewRow, start: datetime, overrides: tuple[CapOverride, ...] = ()
) -> tuple[storage.InterviewRow, tuple[tuple[str, str], ...]]:
    async with store.transaction() as tx:
        hold = await storage.insert_hold(tx, row, start, start + timedelta(minutes=30))
        assert hold is not None
        used = await storage.move_pool_seats(
            tx, tenant_id=TENANT, interview_id=row.id, hold_id=hold.id, start=start, overrides=overrides
        )
    return hold, used


async def _holds(store: storage.Store) -> list[storage.InterviewRow]:
    async with store.transaction() as tx:
        rows = [storage.interview_row(r) for r in await tx.execute(storage.interviews.select())]
    return [r for r in rows if r.source is storage.InterviewSource.MOVE]


async def test_a_move_into_a_week_at_cap_is_refused_and_leaves_no_hold(store: storage.Store) -> None:
    pool_id = await _pool(store, weekly=2)
    moving = await _booked(store, pool_id, NEXT + timedelta(hours=9))
    await _booked(store, pool_id, MON + timedelta(hours=9))
    await _booked(store, None, MON + timedelta(days=1, hours=9), pooled=False)  # A's load, not drawn
    with pytest.raises(storage.CapReachedError) as refused:
        await _move(store, moving, MON + timedelta(days=2, hours=9))
    assert (refused.value.address, refused.value.cap) == (A, "weekly")
    assert await _holds(store) == []


async def test_a_move_into_a_day_at_cap_is_refused(store: storage.Store) -> None:
    pool_id = await _pool(store, weekly=5, daily=1)
    moving = await _booked(store, pool_id, NEXT + timedelta(hours=9))
    await _booked(store, pool_id, MON + timedelta(hours=9))
    with pytest.raises(storage.CapReachedError) as refused:
        await _move(store, moving, MON + timedelta(hours=13))
    assert refused.value.cap == "daily"
    await _move(store, moving, MON + timedelta(days=1, hours=13))  # another day of that week is fine


async def test_moving_within_the_same_week_and_day_does_not_count_itself(store: storage.Store) -> None:
    pool_id = await _pool(store, weekly=1, daily=1)
    moving = await _booked(store, pool_id, MON + timedelta(hours=9))
    hold, used = await _move(store, moving, MON + timedelta(hours=15))
    assert used == ()
    async with store.transaction() as tx:
        assert await storage.complete_move(tx, hold.id) is not None
        seats = [tuple(r) for r in await tx.execute(storage.pool_assignments.select())]
    assert [(s[0], s[1]) for s in seats] == [(moving.id, A)]  # the hold's copy went with the hold


async def test_an_override_lets_the_move_pass_and_is_stored_with_its_reason(store: storage.Store) -> None:
    pool_id = await _pool(store, weekly=1)
    moving = await _booked(store, pool_id, NEXT + timedelta(hours=9))
    await _booked(store, pool_id, MON + timedelta(hours=9))
    _hold, used = await _move(
        store, moving, MON + timedelta(days=2, hours=9), (CapOverride(A, "oid-hm", "only Java expert"),)
    )
    async with store.transaction() as tx:
        stored = await storage.list_cap_overrides(tx, TENANT)
    assert [(o["address"], o["interview_id"], o["reason"]) for o in stored] == [
        (A, moving.id, "only Java expert")
    ]
    assert [u[0] for u in used] == [A]


async def test_an_interview_without_seats_moves_without_a_check(store: storage.Store) -> None:
    pool_id = await _pool(store, weekly=1)
    await _booked(store, pool_id, MON + timedelta(hours=9))
    free = await _booked(store, None, NEXT + timedelta(hours=9), pooled=False)
    _hold, used = await _move(store, free, MON + timedelta(days=1, hours=9))
    assert used == ()


async def test_a_move_and_a_booking_racing_for_the_last_seat_exactly_one_wins(store: storage.Store) -> None:
    for round_ in range(6):
        async with store.transaction() as tx:
            for table in (storage.pool_assignments, storage.interview_mailboxes, storage.interviews):
                await tx.execute(table.delete())
            await tx.execute(storage.pool_members.delete())
            await tx.execute(storage.pools.delete())
        pool_id = await _pool(store, weekly=2)
        moving = await _booked(store, pool_id, NEXT + timedelta(hours=9))
        await _booked(store, pool_id, MON + timedelta(hours=9))  # one of two taken in week MON

        move = _move(store, moving, MON + timedelta(days=2, hours=9))
        book = _booked(store, pool_id, MON + timedelta(days=3, hours=9))
        calls = [move, book] if round_ % 2 else [book, move]
        results = await asyncio.gather(*calls, return_exceptions=True)
        refused = [r for r in results if isinstance(r, storage.CapReachedError)]
        assert len(refused) == 1, results
        assert not [r for r in results if isinstance(r, BaseException) and r not in refused], results
