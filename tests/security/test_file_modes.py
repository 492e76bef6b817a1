"""Issue 12 finding 13: the SQLite database and its -wal/-shm files are 0600 whoever opens them first
(Calendar Service engine, bot storage engine, the bot's own sqlite3 connection), also under a 022 umask
and for a file an older version left 0644."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from calendar_backend import storage
from dialogs.sql_storage import METADATA, SqlStorage


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def modes(db: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in db.parent.iterdir() if p.name.startswith(db.name)}


async def test_calendar_service_database_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "data" / "openslot.db"
    engine = storage.create_engine(f"sqlite+aiosqlite:///{db}")
    await storage.migrate(engine)
    got = modes(db)
    await engine.dispose()
    assert {"openslot.db", "openslot.db-wal", "openslot.db-shm"} <= set(got)
    assert set(got.values()) == {0o600}, got


async def test_bot_state_files_are_private_and_old_files_are_tightened(tmp_path: Path) -> None:
    db = tmp_path / "openslot.db"
    db.touch(mode=0o644)
    store = SqlStorage.from_url(f"sqlite+aiosqlite:///{db}")
    async with store.engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)  # the bot owns bot_state
    await store.write({"k": {"candidate": "x"}})  # the bot's own sqlite3 connection
    got = modes(db)
    await store.close()
    assert "openslot.db-wal" in got
    assert set(got.values()) == {0o600}, got
