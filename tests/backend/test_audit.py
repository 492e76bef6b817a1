"""Hash-chained audit log: appends, tamper detection, signed checkpoints, concurrency, export."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from calendar_backend import audit
from calendar_backend.audit import AuditEvent, append_audit, verify_audit, write_checkpoint
from calendar_backend.storage import Store

KEY = bytes(range(32))
T0 = datetime(2024, 11, 3, 8, 0, tzinfo=UTC)
log = audit.audit_log


def _event(i: int, tenant: str = "t1", at: datetime | None = None) -> AuditEvent:
    return AuditEvent(
        tenant_id=tenant,
        actor_oid=f"oid-{i % 3}",
        operation="freebusy_read",
        targets=(f"user{i}@contoso.example", "ada@contoso.example"),
        result="ok",
        at=at or T0 + timedelta(minutes=i),
        request_id=f"req-{i}",
        graph_request_ids=(f"graph-{i}",),
    )


async def _append(store: Store, count: int, start: int = 1) -> None:
    async with store.transaction() as tx:
        for i in range(start, start + count):
            await append_audit(tx, _event(i))


async def _verify(engine: AsyncEngine, key: bytes | None = KEY) -> audit.VerifyReport:
    async with engine.connect() as conn:
        return await verify_audit(conn, signing_key=key)


async def _tamper(engine: AsyncEngine, *statements: sa.Executable) -> None:
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(statement)


# ---- the event type ---------------------------------------------------------------------------


def test_event_normalises_time_and_refuses_free_text() -> None:
    est = timezone(timedelta(hours=-5))
    event = _event(1, at=datetime(2024, 11, 3, 1, 30, tzinfo=est))
    assert event.at == datetime(2024, 11, 3, 6, 30, tzinfo=UTC)
    assert event.at.tzinfo is UTC
    with pytest.raises(ValueError, match="aware"):
        _event(1, at=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="code"):
        AuditEvent("t", "o", "Read calendar of Bob", (), "ok", T0, "r")
    with pytest.raises(ValueError, match="ids"):
        AuditEvent("t", "o", "read", ("bob@x\r\nInjected: 1",), "ok", T0, "r")
    with pytest.raises(ValueError, match="ids"):
        AuditEvent("t", "o", "read", (), "ok", T0, "")


def test_chain_hash_follows_the_documented_construction() -> None:
    event = _event(7)
    canonical = json.dumps(
        {
            "seq": 3,
            "tenant_id": "t1",
            "actor_oid": "oid-1",
            "operation": "freebusy_read",
            "targets": ["user7@contoso.example", "ada@contoso.example"],
            "result": "ok",
            "at": "2024-11-03T08:07:00.000000Z",
            "request_id": "req-7",
            "graph_request_ids": ["graph-7"],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    prev = hashlib.sha256(b"previous").hexdigest()
    assert audit.canonical_row(3, event) == canonical
    assert audit.chain_hash(prev, 3, event) == hashlib.sha256(bytes.fromhex(prev) + canonical).hexdigest()


# ---- appending and verifying ------------------------------------------------------------------


async def test_append_links_rows_and_verifies(engine: AsyncEngine, store: Store) -> None:
    empty = await _verify(engine)
    async with store.transaction() as tx:
        seqs = [await append_audit(tx, _event(i)) for i in range(1, 6)]
    report = await _verify(engine)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(log).order_by(log.c.seq))).all()
    assert (empty.ok, empty.rows) == (True, 0)
    assert seqs == [1, 2, 3, 4, 5]
    assert (report.ok, report.rows, report.first_broken_seq) == (True, 5, None)
    assert rows[0].prev_hash == audit.GENESIS_HASH
    assert all(b.prev_hash == a.row_hash for a, b in itertools.pairwise(rows))
    assert rows[2].at == T0 + timedelta(minutes=3)
    assert rows[2].at.tzinfo is UTC


async def test_audit_row_rolls_back_with_its_transaction(engine: AsyncEngine, store: Store) -> None:
    async def append_then_fail() -> None:
        async with store.transaction() as tx:
            await append_audit(tx, _event(3))
            raise RuntimeError("the state change failed")

    await _append(store, 2)
    with pytest.raises(RuntimeError, match="state change"):
        await append_then_fail()
    await _append(store, 1, start=3)
    report = await _verify(engine)
    assert (report.ok, report.rows) == (True, 3)


@pytest.mark.parametrize("seq", [1, 4, 8])
async def test_edited_row_is_detected_at_its_seq(engine: AsyncEngine, store: Store, seq: int) -> None:
    await _append(store, 8)
    await _tamper(engine, sa.update(log).where(log.c.seq == seq).values(result="denied"))
    report = await _verify(engine, key=None)
    assert (report.ok, report.first_broken_seq) == (False, seq)


async def test_edited_timestamp_is_detected(engine: AsyncEngine, store: Store) -> None:
    await _append(store, 5)
    await _tamper(engine, sa.update(log).where(log.c.seq == 2).values(at=T0 + timedelta(days=1)))
    assert (await _verify(engine)).first_broken_seq == 2


@pytest.mark.parametrize("seq", [1, 5])
async def test_deleted_row_is_detected_at_its_seq(engine: AsyncEngine, store: Store, seq: int) -> None:
    await _append(store, 8)
    await _tamper(engine, sa.delete(log).where(log.c.seq == seq))
    report = await _verify(engine)
    assert (report.ok, report.first_broken_seq) == (False, seq)


async def test_swapped_row_contents_are_detected_at_the_first(engine: AsyncEngine, store: Store) -> None:
    await _append(store, 8)
    async with engine.connect() as conn:
        r3, r6 = (await conn.execute(sa.select(log).where(log.c.seq.in_([3, 6])).order_by(log.c.seq))).all()
    content = [c.name for c in log.columns if c.name != "seq"]
    await _tamper(
        engine,
        sa.update(log).where(log.c.seq == 3).values({k: getattr(r6, k) for k in content}),
        sa.update(log).where(log.c.seq == 6).values({k: getattr(r3, k) for k in content}),
    )
    report = await _verify(engine)
    assert (report.ok, report.first_broken_seq) == (False, 3)


async def test_reordered_rows_are_detected(engine: AsyncEngine, store: Store) -> None:
    await _append(store, 6)
    await _tamper(
        engine,
        sa.update(log).where(log.c.seq == 2).values(seq=100),
        sa.update(log).where(log.c.seq == 4).values(seq=2),
        sa.update(log).where(log.c.seq == 100).values(seq=4),
    )
    report = await _verify(engine)
    assert (report.ok, report.first_broken_seq) == (False, 2)


async def test_inserted_row_is_detected(engine: AsyncEngine, store: Store) -> None:
    """A forged row slotted in at seq 4 (later rows shifted up, forged hash computed correctly)."""
    await _append(store, 6)
    async with engine.connect() as conn:
        prev = (await conn.execute(sa.select(log.c.row_hash).where(log.c.seq == 3))).scalar_one()
    forged = _event(99)
    shift = [sa.update(log).where(log.c.seq == s).values(seq=s + 1) for s in range(6, 3, -1)]
    insert = sa.insert(log).values(
        seq=4,
        tenant_id=forged.tenant_id,
        actor_oid=forged.actor_oid,
        operation=forged.operation,
        targets=list(forged.targets),
        result=forged.result,
        at=forged.at,
        request_id=forged.request_id,
        graph_request_ids=list(forged.graph_request_ids),
        prev_hash=prev,
        row_hash=audit.chain_hash(prev, 4, forged),
    )
    await _tamper(engine, *shift, insert)
    report = await _verify(engine)
    assert (report.ok, report.first_broken_seq) == (False, 5)


async def test_unknown_gap_after_valid_prefix_reports_rows_checked(engine: AsyncEngine, store: Store) -> None:
    await _append(store, 5)
    await _tamper(engine, sa.delete(log).where(log.c.seq == 4))
    report = await _verify(engine)
    assert (report.ok, report.rows, report.first_broken_seq) == (False, 3, 4)
    assert "missing" in report.reason


# ---- checkpoints ------------------------------------------------------------------------------


async def _recompute_chain(engine: AsyncEngine) -> None:
    """What an attacker with database access but without the key can do."""
    async with engine.begin() as conn:
        rows = (await conn.execute(sa.select(log).order_by(log.c.seq))).all()
        prev = audit.GENESIS_HASH
        for row in rows:
            event = AuditEvent(
                row.tenant_id,
                row.actor_oid,
                row.operation,
                tuple(row.targets),
                row.result,
                row.at,
                row.request_id,
                tuple(row.graph_request_ids),
            )
            new = audit.chain_hash(prev, row.seq, event)
            await conn.execute(
                sa.update(log).where(log.c.seq == row.seq).values(prev_hash=prev, row_hash=new)
            )
            prev = new


async def test_checkpoint_round_trip(engine: AsyncEngine, store: Store) -> None:
    await _append(store, 4)
    async with store.transaction() as tx:
        first = await write_checkpoint(tx, 1, KEY, at=T0)
    await _append(store, 3, start=5)
    async with store.transaction() as tx:
        second = await write_checkpoint(tx, 1, KEY, at=T0 + timedelta(hours=1))
    report = await _verify(engine)
    assert (first.head_seq, first.row_count, second.head_seq, second.row_count) == (4, 4, 7, 7)
    assert second.prev_signature == first.signature
    assert json.loads(json.dumps(second.to_dict()))["created_at"] == "2024-11-03T09:00:00.000000Z"
    assert (report.ok, report.rows) == (True, 7)
    with pytest.raises(ValueError, match="32 bytes"):
        async with store.transaction() as tx:
            await write_checkpoint(tx, 1, b"short")


async def test_recomputed_chain_is_caught_by_the_checkpoint(engine: AsyncEngine, store: Store) -> None:
    await _append(store, 5)
    async with store.transaction() as tx:
        await write_checkpoint(tx, 1, KEY, at=T0)
    await _append(store, 3, start=6)
    async with store.transaction() as tx:
        await write_checkpoint(tx, 1, KEY, at=T0 + timedelta(hours=1))
    await _tamper(engine, sa.update(log).where(log.c.seq == 7).values(result="denied"))
    await _recompute_chain(engine)
    report = await _verify(engine)
    assert (report.ok, report.first_broken_seq) == (False, 6)  # rows 6..8 are no longer trusted
    assert "checkpoint" in report.reason


async def test_forged_checkpoint_fails_the_signature_check(engine: AsyncEngine, store: Store) -> None:
    await _append(store, 5)
    async with store.transaction() as tx:
        await write_checkpoint(tx, 1, KEY, at=T0)
    await _tamper(
        engine,
        sa.update(log).where(log.c.seq == 2).values(result="denied"),
        sa.delete(audit.audit_checkpoints),
    )
    await _recompute_chain(engine)
    async with store.transaction() as tx:  # the attacker re-signs with a key they made up
        await write_checkpoint(tx, 1, b"\x01" * 32, at=T0)
    with_key = await _verify(engine)
    without_key = await _verify(engine, key=None)
    assert (with_key.ok, with_key.first_broken_seq) == (False, 1)
    assert "signature" in with_key.reason
    assert without_key.ok
    assert "not checked" in without_key.reason


async def test_truncated_tail_is_caught_by_the_checkpoint(engine: AsyncEngine, store: Store) -> None:
    await _append(store, 6)
    async with store.transaction() as tx:
        await write_checkpoint(tx, 1, KEY, at=T0)
    await _tamper(engine, sa.delete(log).where(log.c.seq >= 5))
    report = await _verify(engine)
    assert (report.ok, report.first_broken_seq) == (False, 5)


async def test_deleted_middle_checkpoint_is_detected(engine: AsyncEngine, store: Store) -> None:
    for i in range(3):
        await _append(store, 2, start=2 * i + 1)
        async with store.transaction() as tx:
            await write_checkpoint(tx, 1, KEY, at=T0 + timedelta(hours=i))
    cps = audit.audit_checkpoints
    await _tamper(engine, sa.delete(cps).where(cps.c.head_seq == 4))
    report = await _verify(engine)
    assert (report.ok, report.first_broken_seq) == (False, 3)


async def test_checkpoint_keys_by_id(engine: AsyncEngine, store: Store) -> None:
    other = bytes(range(1, 33))
    await _append(store, 2)
    async with store.transaction() as tx:
        await write_checkpoint(tx, 1, KEY, at=T0)
    await _append(store, 2, start=3)
    async with store.transaction() as tx:
        await write_checkpoint(tx, 2, other, at=T0)
    async with engine.connect() as conn:
        both = await verify_audit(conn, signing_key={1: KEY, 2: other})
        only_one = await verify_audit(conn, signing_key={1: KEY})
    assert both.ok
    assert (only_one.ok, only_one.first_broken_seq) == (False, 3)
    assert "unknown key" in only_one.reason


# ---- concurrency ------------------------------------------------------------------------------


async def test_concurrent_appends_form_one_linear_chain(engine: AsyncEngine, store: Store) -> None:
    async def one(i: int) -> int:
        async with store.transaction() as tx:
            return await append_audit(tx, _event(i))

    seqs = await asyncio.gather(*(one(i) for i in range(50)))
    async with store.transaction() as tx:
        await write_checkpoint(tx, 1, KEY, at=T0)
    report = await _verify(engine)
    assert sorted(seqs) == list(range(1, 51))
    assert (report.ok, report.rows) == (True, 50)


# ---- export -----------------------------------------------------------------------------------


async def test_export_filters_by_tenant_and_time(engine: AsyncEngine, store: Store) -> None:
    async with store.transaction() as tx:
        for i in range(6):
            await append_audit(tx, _event(i, tenant="t1" if i % 2 else "t2", at=T0 + timedelta(hours=i)))
    since = datetime(2024, 11, 3, 4, 0, tzinfo=timezone(timedelta(hours=-6)))  # = 10:00 UTC
    async with engine.connect() as conn:
        exported = [row async for row in audit.export_audit(conn, "t1", since)]
        with pytest.raises(ValueError, match="aware"):
            _ = [row async for row in audit.export_audit(conn, "t1", datetime(2024, 1, 1))]
    assert [(r["seq"], r["at"]) for r in exported] == [
        (4, "2024-11-03T11:00:00.000000Z"),
        (6, "2024-11-03T13:00:00.000000Z"),
    ]
    assert all(r["tenant_id"] == "t1" for r in exported)
    assert json.loads(json.dumps(exported)) == exported
    assert exported[0]["targets"] == ["user3@contoso.example", "ada@contoso.example"]


async def test_verify_and_export_page_past_one_batch(engine: AsyncEngine, store: Store) -> None:
    await _append(store, 1003)
    await _tamper(engine, sa.update(log).where(log.c.seq == 1002).values(result="denied"))
    async with engine.connect() as conn:
        exported = [r["seq"] async for r in audit.export_audit(conn, "t1", T0)]
    report = await _verify(engine)
    assert exported == list(range(1, 1004))
    assert (report.ok, report.rows, report.first_broken_seq) == (False, 1001, 1002)


async def test_no_update_or_delete_api() -> None:
    public = {name for name in dir(audit) if not name.startswith("_")}
    assert not {n for n in public if n.startswith(("update", "delete", "remove", "edit"))}
