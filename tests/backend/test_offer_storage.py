"""Offer repository transitions used by candidate changes: ``reopen_offer`` and
``count_reschedule``, race-safe on real SQLite and (when reachable) real PostgreSQL."""

from __future__ import annotations

import asyncio

from calendar_backend import storage
from calendar_backend.storage import OfferStatus, Store
from tests.backend.test_storage import _offer


async def _booked(store: Store, token_hash: bytes, interview_id: str = "iv-1") -> storage.OfferRow:
    async with store.transaction() as tx:
        offer = await _offer(tx, token_hash)
        assert await storage.mark_offer_booked(tx, offer.id, interview_id)
    return offer


async def _read(store: Store, offer_id: str) -> storage.OfferRow:
    async with store.transaction() as tx:
        row = await storage.get_offer(tx, offer_id)
    assert row is not None
    return row


async def test_reopen_gives_a_booked_link_back_once(store: Store) -> None:
    offer = await _booked(store, b"r" * 32)

    async def reopen() -> bool:
        async with store.transaction() as tx:
            return await storage.reopen_offer(tx, offer.id)

    assert sorted(await asyncio.gather(*(reopen() for _ in range(6)))) == [False] * 5 + [True]
    row = await _read(store, offer.id)
    assert (row.status, row.interview_id) == (OfferStatus.OPEN, None)
    async with store.transaction() as tx:
        assert await storage.mark_offer_booked(tx, offer.id, "iv-2")  # books again
    assert (await _read(store, offer.id)).interview_id == "iv-2"


async def test_reopen_for_a_stale_interview_keeps_the_newer_booking(store: Store) -> None:
    offer = await _booked(store, b"s" * 32, "iv-new")
    async with store.transaction() as tx:
        assert not await storage.reopen_offer(tx, offer.id, interview_id="iv-old")
        assert not await storage.reopen_offer(tx, "no-such-offer")
    assert (await _read(store, offer.id)).status is OfferStatus.BOOKED
    async with store.transaction() as tx:
        assert await storage.reopen_offer(tx, offer.id, interview_id="iv-new")


async def test_reopen_never_revives_open_revoked_or_expired_offers(store: Store) -> None:
    async with store.transaction() as tx:
        fresh = await _offer(tx, b"o" * 32)
        revoked = await _offer(tx, b"v" * 32)
        assert await storage.revoke_offer(tx, revoked.id)
        assert not await storage.reopen_offer(tx, fresh.id)
        assert not await storage.reopen_offer(tx, revoked.id)
    assert (await _read(store, revoked.id)).status is OfferStatus.REVOKED


async def test_count_reschedule_never_exceeds_the_limit_under_concurrency(store: Store) -> None:
    offer = await _booked(store, b"c" * 32)

    async def count() -> bool:
        async with store.transaction() as tx:
            return await storage.count_reschedule(tx, offer.id, limit=2)

    outcomes = await asyncio.gather(*(count() for _ in range(8)))
    assert outcomes.count(True) == 2
    assert (await _read(store, offer.id)).reschedules_used == 2


async def test_count_without_limit_and_only_on_booked_offers(store: Store) -> None:
    offer = await _booked(store, b"u" * 32)
    async with store.transaction() as tx:
        for _ in range(3):
            assert await storage.count_reschedule(tx, offer.id)
        open_offer = await _offer(tx, b"p" * 32)
        assert not await storage.count_reschedule(tx, open_offer.id)
        assert await storage.reopen_offer(tx, offer.id)
        assert not await storage.count_reschedule(tx, offer.id)  # open again: nothing to change
    assert (await _read(store, offer.id)).reschedules_used == 3  # kept across the reopen
    assert (await _read(store, open_offer.id)).reschedules_used == 0
