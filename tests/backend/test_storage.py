"""Storage repositories against real SQLite and (when reachable) real PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from calendar_backend import storage
from calendar_backend.errors import SlotTakenError
from calendar_backend.storage import InterviewStatus, OfferStatus, Store

T0 = datetime(2024, 3, 31, 9, 0, tzinfo=UTC)
TID = "11111111-1111-1111-1111-111111111111"
OID = "aaaaaaaa-0000-0000-0000-000000000001"


async def _tenant(tx: AsyncConnection, tenant_id: str = TID) -> None:
    await storage.put_tenant(tx, tenant_id, b"sealed-credential", 1, ["Calendars.ReadBasic"], now=T0)


async def _pending(
    tx: AsyncConnection,
    start: datetime,
    minutes: int = 60,
    *,
    attendees: tuple[str, ...] = ("ada@contoso.example", "cand@mail.example"),
    txn: str | None = None,
    tenant_id: str = TID,
    now: datetime = T0,
) -> storage.InterviewRow:
    return await storage.insert_pending(
        tx,
        tenant_id=tenant_id,
        organizer_oid=OID,
        organizer_upn="hm@contoso.example",
        transaction_id=txn or str(uuid.uuid4()),
        start=start,
        end=start + timedelta(minutes=minutes),
        attendees=attendees,
        candidate_name="Cand Idate",
        subject="Interview: Cand Idate",
        source=storage.InterviewSource.BOT,
        now=now,
    )


# ---- engine, migrations -----------------------------------------------------------------------


async def test_sqlite_engine_creates_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "x.db"
    engine = storage.create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            pragmas = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
        assert path.parent.is_dir()
        assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000}
    finally:
        await engine.dispose()


async def test_sqlite_transactions_begin_immediate(tmp_path: Path) -> None:
    engine = storage.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    statements: list[str] = []
    sa.event.listen(engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("SELECT 1"))
        # A second connection cannot start a write transaction while one holds the lock.
        async with engine.connect() as holder:
            await holder.execute(sa.text("SELECT 1"))
            other = storage.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
            sa.event.listen(other.sync_engine, "connect", lambda c, _r: c.execute("PRAGMA busy_timeout=100"))
            with pytest.raises(sa.exc.OperationalError, match="locked"):
                async with other.connect() as blocked:
                    await blocked.execute(sa.text("SELECT 1"))
            await other.dispose()
    finally:
        await engine.dispose()
    assert "BEGIN IMMEDIATE" in statements


def test_create_engine_rejects_other_backends() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        storage.create_engine("mysql+aiomysql://u@h/db")


async def test_migrated_schema_matches_metadata(engine: AsyncEngine) -> None:
    def diff(sync_conn: sa.Connection) -> list[object]:
        # bot_state is migrated into the same database, but the bot owns it (dialogs/sql_storage.py):
        # it is deliberately not in the Calendar Service's metadata, so it is left out of the comparison.
        context = MigrationContext.configure(
            sync_conn,
            opts={"include_name": lambda name, kind, _parent: not (kind == "table" and name == "bot_state")},
        )
        return list(compare_metadata(context, storage.metadata))

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


MIGRATIONS = storage.MIGRATIONS / "versions"


async def test_concurrent_first_opens_of_a_new_database_all_succeed(fresh_url: Callable[[], str]) -> None:
    # Several processes starting on one brand-new database race to create it (on SQLite: to switch it to
    # WAL, which SQLite answers "locked" without waiting); every one of them must come up. One round
    # rarely loses the race, so run several.
    for _ in range(8):
        url = fresh_url()
        engines = [storage.create_engine(url) for _ in range(4)]
        try:
            await asyncio.gather(*(storage.migrate(e) for e in engines))
        finally:
            for e in engines:
                await e.dispose()


async def test_migrate_is_idempotent_and_safe_concurrently(fresh_url: Callable[[], str]) -> None:
    url = fresh_url()
    engines = [storage.create_engine(url) for _ in range(3)]
    try:
        await asyncio.gather(*(storage.migrate(e) for e in engines))
        await storage.migrate(engines[0])
        async with engines[0].connect() as conn:
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        heads = sorted(p.name.split("_")[0] for p in MIGRATIONS.glob("r*.py"))
        assert version == [(heads[-1],)]  # exactly one row: the newest revision
        assert {t.name for t in storage.metadata.sorted_tables} <= tables
        assert "bot_state" in tables
    finally:
        for e in engines:
            await e.dispose()


async def test_transaction_rolls_back_on_error(store: Store) -> None:
    async def write_then_fail() -> None:
        async with store.transaction() as tx:
            await _tenant(tx)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await write_then_fail()
    async with store.transaction() as tx:
        assert await storage.get_tenant(tx, TID) is None


# ---- time handling ----------------------------------------------------------------------------


async def test_datetimes_round_trip_as_aware_utc(store: Store) -> None:
    local = datetime(2024, 3, 31, 3, 30, 15, 123456, tzinfo=ZoneInfo("Europe/London"))
    offset = datetime(2023, 11, 5, 1, 30, tzinfo=timezone(timedelta(hours=-4)))
    async with store.transaction() as tx:
        a = await _pending(tx, local, now=offset)
    async with store.transaction() as tx:
        got = await storage.get_interview(tx, a.id)
    assert got is not None
    assert got.start_utc == local
    assert got.start_utc.tzinfo is UTC
    assert got.start_utc.hour == 2  # 03:30 BST is 02:30 UTC
    assert got.created_at == offset
    assert got.created_at.tzinfo is UTC
    assert got.end_utc - got.start_utc == timedelta(hours=1)


async def test_naive_datetimes_are_refused(store: Store) -> None:
    async with store.transaction() as tx:
        await _tenant(tx)
        with pytest.raises(ValueError, match="naive"):
            await _pending(tx, datetime(2024, 1, 1, 9, 0))
        with pytest.raises(ValueError, match="naive"):
            await storage.archive_user(tx, TID, OID, datetime(2024, 1, 1))


# ---- tenants and token caches -----------------------------------------------------------------


async def test_tenant_lifecycle(store: Store) -> None:
    later = T0 + timedelta(days=1)
    async with store.transaction() as tx:
        await _tenant(tx, "t-b")
        await _tenant(tx, "t-a")
        await storage.put_tenant(tx, "t-a", b"new-blob", 2, ["a", "b"], now=later)
        assert await storage.set_tenant_status(tx, "t-b", storage.TenantStatus.DISCONNECTED)
        assert not await storage.set_tenant_status(tx, "nope", storage.TenantStatus.ACTIVE)
    async with store.transaction() as tx:
        a = await storage.get_tenant(tx, "t-a")
        assert await storage.list_tenant_ids(tx) == ["t-a"]
        assert await storage.list_tenant_ids(tx, only_active=False) == ["t-a", "t-b"]
        assert await storage.get_tenant(tx, "missing") is None
    assert a is not None
    assert (a.credential_blob, a.key_id, a.consented_scopes) == (b"new-blob", 2, ("a", "b"))
    assert (a.created_at, a.updated_at) == (T0, later)


async def test_token_cache_put_get_delete(store: Store) -> None:
    async with store.transaction() as tx:
        await _tenant(tx)
        assert await storage.get_token_cache(tx, TID, OID) is None
        await storage.put_token_cache(tx, TID, OID, b"v1", 1)
        await storage.put_token_cache(tx, TID, OID, b"v2", 3)
        assert await storage.get_token_cache(tx, TID, OID) == (b"v2", 3)
        assert await storage.delete_token_cache(tx, TID, OID)
        assert not await storage.delete_token_cache(tx, TID, OID)
        assert await storage.get_token_cache(tx, TID, OID) is None


async def test_token_cache_requires_a_tenant(store: Store) -> None:
    with pytest.raises(IntegrityError):
        async with store.transaction() as tx:
            await storage.put_token_cache(tx, "unknown-tenant", OID, b"x", 1)


async def test_delete_tenant_removes_its_token_caches(store: Store) -> None:
    async with store.transaction() as tx:
        await _tenant(tx)
        await storage.put_token_cache(tx, TID, OID, b"x", 1)
        assert await storage.delete_tenant(tx, TID)
        assert await storage.get_token_cache(tx, TID, OID) is None


async def test_key_rotation_iterates_and_swaps_blobs(store: Store) -> None:
    async with store.transaction() as tx:
        await _tenant(tx)
        await storage.put_token_cache(tx, TID, OID, b"cache-old", 1)
        await storage.put_token_cache(tx, TID, "other", b"cache-new", 2)
        await _offer(tx, b"o" * 32, conversation_ref=(b"ref-old", 1))
    async with store.transaction() as tx:
        stale = [b async for b in storage.iter_encrypted(tx, exclude_key_id=2)]
        assert sorted(b.kind for b in stale) == sorted(
            [
                storage.BlobKind.TENANT_CREDENTIAL,
                storage.BlobKind.TOKEN_CACHE,
                storage.BlobKind.OFFER_CONVERSATION_REF,
            ]
        )
        for blob in stale:
            assert await storage.replace_blob(tx, blob, b"re:" + blob.blob, 2)
            assert not await storage.replace_blob(tx, blob, b"again", 2)  # CAS: row changed
        assert [b async for b in storage.iter_encrypted(tx, exclude_key_id=2)] == []
        everything = [b async for b in storage.iter_encrypted(tx)]
        assert await storage.get_token_cache(tx, TID, OID) == (b"re:cache-old", 2)
    assert len(everything) == 4
    assert all(b.key_id == 2 for b in everything)


# ---- interviews -------------------------------------------------------------------------------


async def test_insert_pending_and_lookups(store: Store) -> None:
    async with store.transaction() as tx:
        row = await _pending(tx, T0, txn="txn-1")
    async with store.transaction() as tx:
        by_id = await storage.get_interview(tx, row.id)
        by_txn = await storage.get_interview_by_transaction(tx, "txn-1")
    assert by_id == by_txn == row
    assert row.status is InterviewStatus.PENDING
    assert row.version == 1
    assert row.attendees == ("ada@contoso.example", "cand@mail.example")
    assert (row.start, row.end) == (T0, T0 + timedelta(hours=1))


async def test_duplicate_transaction_id_is_refused(store: Store) -> None:
    async with store.transaction() as tx:
        await _pending(tx, T0, txn="same")
    with pytest.raises(IntegrityError):
        async with store.transaction() as tx:
            await _pending(tx, T0 + timedelta(days=1), txn="same")


@pytest.mark.parametrize(
    ("offset_min", "mailbox", "tenant", "expect"),
    [
        (0, "ada@contoso.example", TID, True),
        (59, "ADA@Contoso.Example", TID, True),  # case-insensitive, 1-minute overlap
        (-59, "cand@mail.example", TID, True),
        (60, "ada@contoso.example", TID, False),  # touching [10:00,11:00) after [9:00,10:00)
        (-60, "ada@contoso.example", TID, False),
        (0, "hm@contoso.example", TID, False),  # the organizer is no attendee: not blocked
        (0, "bob@contoso.example", TID, False),
        (0, "ada@contoso.example", "other-tenant", False),
    ],
)
async def test_find_conflicts(store: Store, offset_min: int, mailbox: str, tenant: str, expect: bool) -> None:
    async with store.transaction() as tx:
        existing = await _pending(tx, T0)
    start = T0 + timedelta(minutes=offset_min)
    async with store.transaction() as tx:
        found = await storage.find_conflicts(tx, tenant, [mailbox], start, start + timedelta(hours=1))
    assert [r.id for r in found] == ([existing.id] if expect else [])


async def test_cancelled_and_failed_interviews_do_not_block(store: Store) -> None:
    async with store.transaction() as tx:
        a = await _pending(tx, T0, txn="a")
        assert await storage.mark_interview(tx, a.id, InterviewStatus.FAILED)
        b = await _pending(tx, T0, txn="b")
        assert await storage.confirm_interview(tx, b.id, "evt-b", "https://join/b")
        assert await storage.mark_interview(tx, b.id, "cancelled")
        c = await _pending(tx, T0, txn="c")  # would raise SlotTakenError if a or b still blocked
    assert c.status is InterviewStatus.PENDING


async def test_insert_pending_refuses_overlap(store: Store) -> None:
    async with store.transaction() as tx:
        await _pending(tx, T0, txn="first")
    with pytest.raises(SlotTakenError):
        async with store.transaction() as tx:
            await _pending(
                tx,
                T0 + timedelta(minutes=30),
                txn="second",
                attendees=("ADA@contoso.example", "other@mail.example"),
            )


async def test_concurrent_bookings_of_one_slot_admit_exactly_one(store: Store) -> None:
    async def book(i: int) -> bool:
        try:
            async with store.transaction() as tx:
                await _pending(tx, T0, txn=f"race-{i}", attendees=("ada@contoso.example", f"c{i}@x"))
        except SlotTakenError:
            return False
        return True

    outcomes = await asyncio.gather(*(book(i) for i in range(20)))
    assert outcomes.count(True) == 1
    async with store.transaction() as tx:
        assert (
            len(await storage.find_conflicts(tx, TID, ["ada@contoso.example"], T0, T0 + timedelta(hours=1)))
            == 1
        )


async def test_interview_transitions_and_versions(store: Store) -> None:
    async with store.transaction() as tx:
        row = await _pending(tx, T0)
        assert not await storage.mark_interview(tx, row.id, "cancelled", expected_version=7)
        assert await storage.confirm_interview(tx, row.id, "evt-1", "https://join/1")
        assert not await storage.confirm_interview(tx, row.id, "evt-2", None)
        assert not await storage.mark_interview(tx, row.id, InterviewStatus.FAILED)
        with pytest.raises(ValueError, match="cannot mark"):
            await storage.mark_interview(tx, row.id, InterviewStatus.CONFIRMED)
        confirmed = await storage.get_interview(tx, row.id)
        assert confirmed is not None
        assert await storage.mark_interview(tx, row.id, "cancelled", expected_version=2)
        final = await storage.get_interview(tx, row.id)
    assert confirmed.status is InterviewStatus.CONFIRMED
    assert (confirmed.event_id, confirmed.join_url, confirmed.version) == (
        "evt-1",
        "https://join/1",
        2,
    )
    assert final is not None
    assert (final.status, final.version) == (InterviewStatus.CANCELLED, 3)


async def test_move_interview(store: Store) -> None:
    async with store.transaction() as tx:
        row = await _pending(tx, T0, txn="moving")
        other = await _pending(tx, T0 + timedelta(hours=3), txn="other")
        assert not await storage.move_interview(tx, row.id, T0, T0 + timedelta(hours=2))
        assert await storage.confirm_interview(tx, row.id, "evt", None)
        # overlapping itself is fine; overlapping another interview is not
        assert await storage.move_interview(
            tx, row.id, T0 + timedelta(minutes=30), T0 + timedelta(minutes=90)
        )
        with pytest.raises(SlotTakenError):
            await storage.move_interview(tx, row.id, other.start, other.end)
        moved = await storage.get_interview(tx, row.id)
    assert moved is not None
    assert (moved.start, moved.end, moved.version) == (
        T0 + timedelta(minutes=30),
        T0 + timedelta(minutes=90),
        3,
    )


async def test_an_organizer_on_the_panel_is_blocked_and_one_off_it_is_not(store: Store) -> None:
    async with store.transaction() as tx:
        await _pending(tx, T0, txn="a")  # organizer hm@ is not an attendee
        await _pending(tx, T0, txn="b", attendees=("bob@contoso.example", "c2@mail.example"))
        on_panel = await _pending(
            tx, T0 + timedelta(hours=2), txn="c", attendees=("hm@contoso.example", "c3@mail.example")
        )
        with pytest.raises(SlotTakenError):
            await _pending(
                tx, T0 + timedelta(hours=2), txn="d", attendees=("HM@contoso.example", "c4@mail.example")
            )
        found = await storage.find_conflicts(tx, TID, ["hm@contoso.example"], T0, T0 + timedelta(hours=3))
    assert [r.id for r in found] == [on_panel.id]


async def test_a_hold_reserves_the_new_time_until_the_move_completes(store: Store) -> None:
    async with store.transaction() as tx:
        row = await _pending(tx, T0, txn="moving")
        assert await storage.confirm_interview(tx, row.id, "evt", None)
        confirmed = await storage.get_interview(tx, row.id)
        assert confirmed is not None
        row = confirmed
        later = T0 + timedelta(hours=4)
        hold = await storage.insert_hold(tx, row, later, later + timedelta(hours=1))
        assert hold is not None
        assert storage.hold_target(hold) == (row.id, row.version)
        assert storage.hold_target(row) is None
        # both times are now blocked for the attendees; a second move of it waits its turn
        for at in (T0, later):
            with pytest.raises(SlotTakenError):
                await _pending(tx, at + timedelta(minutes=30), attendees=("ada@contoso.example",))
        assert await storage.insert_hold(tx, row, T0 + timedelta(hours=8), T0 + timedelta(hours=9)) is None
        assert [r.id for r in await storage.list_interviews(tx, TID, OID, T0)] == [row.id]
        moved = await storage.complete_move(tx, hold.id)
        assert moved is not None
        assert (moved.start, moved.version) == (later, row.version + 1)
        assert await storage.get_interview(tx, hold.id) is None
        free = await _pending(tx, T0, attendees=("ada@contoso.example",))  # old time is free
    assert free.status is InterviewStatus.PENDING


async def test_a_hold_overlapping_its_own_old_time_is_fine_and_release_frees_it(store: Store) -> None:
    async with store.transaction() as tx:
        row = await _pending(tx, T0, txn="moving")
        assert await storage.confirm_interview(tx, row.id, "evt", None)
        confirmed = await storage.get_interview(tx, row.id)
        assert confirmed is not None
        row = confirmed
        other = await _pending(tx, T0 + timedelta(hours=3), txn="other")
        with pytest.raises(SlotTakenError):
            await storage.insert_hold(tx, row, other.start, other.end)
        hold = await storage.insert_hold(tx, row, T0 + timedelta(minutes=30), T0 + timedelta(minutes=90))
        assert hold is not None
        assert await storage.release_hold(tx, hold.id)
        assert not await storage.release_hold(tx, row.id)  # never deletes a real interview
        assert await storage.complete_move(tx, hold.id) is None
        stale = await storage.insert_hold(
            tx, dataclasses.replace(row, version=99), T0, T0 + timedelta(hours=1)
        )
    assert stale is None


async def test_list_interviews_and_stale_pending(store: Store) -> None:
    async with store.transaction() as tx:
        past = await _pending(tx, T0 - timedelta(days=2), txn="past", now=T0 - timedelta(days=3))
        soon = await _pending(tx, T0 + timedelta(hours=1), txn="soon", now=T0)
        later = await _pending(tx, T0 + timedelta(days=1), txn="later", now=T0)
        gone = await _pending(tx, T0 + timedelta(days=2), txn="gone", now=T0 - timedelta(hours=1))
        await storage.mark_interview(tx, gone.id, "cancelled")
        await storage.confirm_interview(tx, later.id, "evt", None)
    async with store.transaction() as tx:
        upcoming = await storage.list_interviews(tx, TID, OID, T0)
        others = await storage.list_interviews(tx, TID, "someone-else", T0)
        stale = await storage.list_stale_pending(tx, T0 - timedelta(minutes=10))
    assert [r.id for r in upcoming] == [soon.id, later.id]
    assert others == []
    assert [r.id for r in stale] == [past.id]


# ---- offers -----------------------------------------------------------------------------------


async def _offer(
    tx: AsyncConnection,
    token_hash: bytes,
    *,
    organizer_oid: str = OID,
    expires_at: datetime = T0 + timedelta(days=7),
    conversation_ref: tuple[bytes, int] | None = None,
    now: datetime = T0,
) -> storage.OfferRow:
    return await storage.create_offer(
        tx,
        tenant_id=TID,
        organizer_oid=organizer_oid,
        organizer_upn="hm@contoso.example",
        token_hash=token_hash,
        interviewers=["ada@contoso.example"],
        display_names=["Ada"],
        duration_min=45,
        window_start=T0,
        window_end=T0 + timedelta(days=5),
        candidate_time_zone="Europe/London",
        expires_at=expires_at,
        conversation_ref=conversation_ref,
        now=now,
    )


async def test_offer_stored_by_hash_and_read_back(store: Store) -> None:
    token_hash = hashlib.sha256(b"capability-token").digest()
    async with store.transaction() as tx:
        created = await _offer(tx, token_hash, conversation_ref=(b"sealed-ref", 4))
    async with store.transaction() as tx:
        found = await storage.get_offer_by_token_hash(tx, token_hash)
        missing = await storage.get_offer_by_token_hash(tx, hashlib.sha256(b"other").digest())
        raw = (await tx.execute(sa.text("SELECT * FROM offers"))).all()
    assert found == created
    assert missing is None
    assert found.status is OfferStatus.OPEN
    assert (found.conversation_ref, found.conversation_ref_key_id) == (b"sealed-ref", 4)
    assert found.interviewers == ("ada@contoso.example",)
    assert found.duration_min == 45
    assert b"capability-token" not in repr(raw).encode()
    with pytest.raises(ValueError, match="32-byte"):
        async with store.transaction() as tx:
            await _offer(tx, b"capability-token")


async def test_mark_offer_booked_is_race_safe(store: Store) -> None:
    async with store.transaction() as tx:
        offer = await _offer(tx, b"h" * 32)

    async def claim(i: int) -> bool:
        async with store.transaction() as tx:
            return await storage.mark_offer_booked(tx, offer.id, f"interview-{i}")

    outcomes = await asyncio.gather(*(claim(i) for i in range(10)))
    assert outcomes.count(True) == 1
    async with store.transaction() as tx:
        booked = await storage.get_offer(tx, offer.id)
        assert not await storage.revoke_offer(tx, offer.id)
    assert booked is not None
    assert booked.status is OfferStatus.BOOKED
    assert booked.interview_id == f"interview-{outcomes.index(True)}"


async def test_offer_revoke_expire_and_list(store: Store) -> None:
    async with store.transaction() as tx:
        a = await _offer(tx, b"a" * 32, now=T0)
        b = await _offer(tx, b"b" * 32, now=T0 + timedelta(minutes=1))
        c = await _offer(tx, b"c" * 32, expires_at=T0 + timedelta(hours=1), now=T0 + timedelta(minutes=2))
        theirs = await _offer(tx, b"d" * 32, organizer_oid="other")
        assert await storage.revoke_offer(tx, a.id)
        assert await storage.expire_offers(tx, T0 + timedelta(hours=1)) == 1
        assert await storage.revoke_offers_for_user(tx, TID, OID) == 1  # only b is still open
        listed = await storage.list_offers(tx, TID, OID)
        other = await storage.get_offer(tx, theirs.id)
    assert [(o.id, o.status) for o in listed] == [
        (c.id, OfferStatus.EXPIRED),
        (b.id, OfferStatus.REVOKED),
        (a.id, OfferStatus.REVOKED),
    ]
    assert other is not None
    assert other.status is OfferStatus.OPEN


# ---- archived users ---------------------------------------------------------------------------


async def test_archive_user_is_idempotent_and_scoped(store: Store) -> None:
    async with store.transaction() as tx:
        assert not await storage.is_archived(tx, TID, OID)
        assert await storage.archive_user(tx, TID, OID, T0)
        assert not await storage.archive_user(tx, TID, OID, T0 + timedelta(hours=1))
    async with store.transaction() as tx:
        assert await storage.is_archived(tx, TID, OID)
        assert not await storage.is_archived(tx, "other-tenant", OID)
        at = (await tx.execute(sa.text("SELECT archived_at FROM archived_users"))).all()
    assert len(at) == 1
