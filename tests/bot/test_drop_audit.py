"""Refused-activity audit rows (dialogs/drop_audit.py, security.md §7 #8): what a row holds, the write
budget, a database without the audit table, and concurrent writers on one chain."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from calendar_backend.audit import audit_log, verify_audit
from dialogs.drop_audit import DropAudit
from tests.bot.conftest import migrated_sqlite_url

TENANT = "00000000-0000-4000-8000-0000000000ab"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = await migrated_sqlite_url(tmp_path / "bot.db")
    plain = create_async_engine(url, connect_args={"timeout": 15})  # like SqlStorage.from_url
    yield plain
    await plain.dispose()


async def _rows(engine: AsyncEngine) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        return [
            dict(r) for r in (await conn.execute(sa.select(audit_log).order_by(audit_log.c.seq))).mappings()
        ]


async def test_a_row_holds_codes_and_ids_only(engine: AsyncEngine) -> None:
    audit = DropAudit(engine)
    assert await audit.record(
        "tenant", tenant_id=TENANT.upper(), actor_oid="Robert'); DROP TABLE x", activity_id="1:abc|def"
    )
    assert await audit.record("channel", tenant_id="evil tenant\n", actor_oid=None, activity_id="x" * 500)
    rows = await _rows(engine)
    assert [(r["tenant_id"], r["actor_oid"], r["result"], r["request_id"]) for r in rows] == [
        (TENANT, "unknown", "dropped:tenant", "1:abc|def"),
        ("invalid", "unknown", "dropped:channel", "none"),
    ]
    assert {r["operation"] for r in rows} == {"bot.activity"}


async def test_writes_are_budgeted_and_the_budget_refills(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    audit = DropAudit(engine, per_minute=5, clock=lambda: now[0])
    written = [
        await audit.record("tenant", tenant_id=TENANT, actor_oid=None, activity_id=f"a{i}") for i in range(8)
    ]
    assert written == [True] * 5 + [False] * 3
    assert audit.suppressed == 3
    assert "3 not audited" not in caplog.text  # logged at 1, 10, 100, then every 1000
    assert "1 not audited" in caplog.text
    now[0] += 24.0  # 5 a minute: two tokens back
    assert [
        await audit.record("tenant", tenant_id=TENANT, actor_oid=None, activity_id="b") for _ in range(3)
    ] == [True, True, False]
    assert len(await _rows(engine)) == 7


async def test_concurrent_writers_keep_one_linear_chain(engine: AsyncEngine, tmp_path: Path) -> None:
    other = create_async_engine(str(engine.url), connect_args={"timeout": 15})
    try:
        audits = [DropAudit(engine, per_minute=1000), DropAudit(other, per_minute=1000)]
        results = await asyncio.gather(
            *(
                audits[i % 2].record("tenant", tenant_id=TENANT, actor_oid=None, activity_id=f"c{i}")
                for i in range(20)
            )
        )
    finally:
        await other.dispose()
    rows = await _rows(engine)
    assert all(results)  # SQLite: BEGIN IMMEDIATE serialises the writers; none is lost
    assert len(rows) == 20
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    async with engine.connect() as conn:
        report = await verify_audit(conn, signing_key=None)
    assert report.ok


async def test_a_database_without_the_audit_table_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bare = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'bare.db'}")
    try:
        with caplog.at_level(logging.ERROR, logger="openslot.bot.audit"):
            assert not await DropAudit(bare).record(
                "tenant", tenant_id=TENANT, actor_oid=None, activity_id="a"
            )
    finally:
        await bare.dispose()
    assert "could not audit a refused activity: OperationalError" in caplog.text
