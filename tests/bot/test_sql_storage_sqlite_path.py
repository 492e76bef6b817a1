"""SqlStorage on a SQLite file uses its own aiosqlite connection; rows and errors match the
SQLAlchemy path (which PostgreSQL and in-memory SQLite use)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from dialogs.sql_storage import METADATA, EtagConflictError, SqlStorage

STAMP = datetime(2026, 11, 28, 4, 26, 34, 571730, tzinfo=UTC)


async def make(path: Path, *, direct: bool) -> SqlStorage:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    storage = SqlStorage(engine, clock=lambda: STAMP)
    assert storage._sqlite is not None  # a SQLite file: the direct path is chosen
    assert storage._sqlite._path == str(path)
    if not direct:
        storage._sqlite = None  # the SQLAlchemy statements, as on PostgreSQL
    return storage


def rows(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT key, data, updated_at FROM bot_state ORDER BY key").fetchall()


async def scenario(storage: SqlStorage) -> list[str]:
    """Creates, updates, '*' upserts and conflicts; returns what was refused."""
    refused = []
    await storage.write({"a": {"n": 1}, "b": {"s": "x", "when": STAMP}})
    a = (await storage.read(["a"]))["a"]
    a["n"] = 2  # type: ignore[index]
    await storage.write({"a": a})
    for change in ({"a": {"n": 3}}, {"a": {"n": 4, "e_tag": "stale"}}, {"c": {"n": 5}, "a": {"n": 6}}):
        try:
            await storage.write(change)  # type: ignore[arg-type]
        except EtagConflictError as exc:
            refused.append(str(exc))
    await storage.write({"b": {"s": "y", "e_tag": "*"}, "d": {"n": 7, "e_tag": "*"}})
    await storage.delete(["d"])
    return refused


def without_etags(found: dict[str, object]) -> dict[str, object]:
    return {
        k: {f: v for f, v in item.items() if f != "e_tag"}  # type: ignore[attr-defined]
        for k, item in found.items()
    }


async def test_same_rows_and_refusals_as_the_sqlalchemy_path(tmp_path: Path) -> None:
    direct = await make(tmp_path / "direct.db", direct=True)
    generic = await make(tmp_path / "generic.db", direct=False)
    assert await scenario(direct) == await scenario(generic)
    assert rows(tmp_path / "direct.db") == rows(tmp_path / "generic.db")
    assert rows(tmp_path / "direct.db")[0] == ("a", '{"n":2}', "2026-11-28 04:26:34.571730")
    assert without_etags(await direct.read(["a", "b", "c"])) == without_etags(
        await generic.read(["a", "b", "c"])
    )
    await direct.close()
    await generic.close()


async def test_a_refused_batch_leaves_the_connection_clean(tmp_path: Path) -> None:
    storage = await make(tmp_path / "s.db", direct=True)
    await storage.write({"k": {"n": 1}})
    with pytest.raises(EtagConflictError):
        await storage.write({"new": {"n": 2}, "k": {"n": 3}})
    with pytest.raises(TypeError):
        await storage.write({"new": {"n": 2}, "bad": {"o": object()}})
    with pytest.raises(ValueError, match=r"1\.\.512"):
        await storage.write({"new": {"n": 2}, "": {"n": 1}})
    assert await storage.read(["new"]) == {}
    with sqlite3.connect(tmp_path / "s.db", timeout=0) as other:  # no lock left behind
        other.execute("UPDATE bot_state SET data = data")
    await storage.close()


async def _from_url(path: Path) -> SqlStorage:
    storage = SqlStorage.from_url(f"sqlite+aiosqlite:///{path}")
    async with storage.engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    return storage


async def test_a_connection_returned_inside_a_transaction_is_still_rolled_back(tmp_path: Path) -> None:
    # The pool skips its reset rollback when no transaction is open; when one is (here opened on
    # the driver behind SQLAlchemy's back), the rollback must still happen on check-in.
    storage = await _from_url(tmp_path / "s.db")
    async with storage.engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.execute(
            "INSERT INTO bot_state (key, etag, data, updated_at) "
            "VALUES ('k', 'e', '{}', '2026-11-28 00:00:00')"
        )
        assert driver.in_transaction
    assert rows(tmp_path / "s.db") == []
    with sqlite3.connect(tmp_path / "s.db", timeout=0) as other:  # no lock left behind
        other.execute("UPDATE bot_state SET data = data")
    await storage.write({"k": {"n": 1}})  # the pooled connection is usable and clean
    assert rows(tmp_path / "s.db") == [("k", '{"n":1}', rows(tmp_path / "s.db")[0][2])]
    await storage.close()


async def test_the_engines_reads_and_commits_skip_the_pools_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine serves the bot's other tables (refusal audits) and ``delete``.
    import aiosqlite
    import sqlalchemy as sa

    storage = await _from_url(tmp_path / "s.db")
    rollbacks = 0
    real = aiosqlite.Connection.rollback

    async def counting(self: aiosqlite.Connection) -> None:
        nonlocal rollbacks
        rollbacks += 1
        await real(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counting)
    insert = sa.text(
        "INSERT INTO bot_state (key, etag, data, updated_at) VALUES ('k', 'e', '{}', '2026-11-28 00:00:00')"
    )
    async with storage.engine.begin() as conn:
        await conn.execute(insert)
    assert rollbacks == 0  # committed: nothing to roll back on check-in
    assert rows(tmp_path / "s.db")[0][0] == "k"
    with pytest.raises(sa.exc.IntegrityError):  # a failed transaction is still rolled back
        async with storage.engine.begin() as conn:
            await conn.execute(insert)
    assert rollbacks == 1
    with sqlite3.connect(tmp_path / "s.db", timeout=0) as other:
        other.execute("UPDATE bot_state SET data = data")
    await storage.close()


def test_only_a_sqlite_file_gets_its_own_connection(tmp_path: Path) -> None:
    def path_of(url: str) -> str | None:
        own = SqlStorage(create_async_engine(url))._sqlite
        return None if own is None else own._path

    assert path_of(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}") == str(tmp_path / "b.db")
    assert path_of("sqlite+aiosqlite:///:memory:") is None
    assert path_of("sqlite+aiosqlite://") is None
    assert path_of("postgresql+asyncpg://u:p@127.0.0.1/db") is None


async def test_in_memory_sqlite_uses_the_sqlalchemy_statements() -> None:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    async with engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    storage = SqlStorage(engine)
    await storage.write({"k": {"n": 1}})
    assert without_etags(await storage.read(["k"])) == {"k": {"n": 1}}
    await storage.close()


async def test_the_storages_connection_puts_the_file_in_wal(tmp_path: Path) -> None:
    storage = await make(tmp_path / "s.db", direct=True)  # a plain engine: no WAL hook
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    await storage.write({"k": {"n": 1}})
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    await storage.close()


async def test_two_storages_on_one_file_write_concurrently_without_loss(tmp_path: Path) -> None:
    # Two bot processes on one SQLite file: each storage has its own connection; SQLite's locks
    # and the busy timeout order their writes, and eTag conflicts are still found across them.
    import asyncio

    first = await make(tmp_path / "s.db", direct=True)
    second = SqlStorage(create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 's.db'}"))
    await asyncio.gather(
        *(
            store.write({f"{name}-{i}": {"i": i}})
            for i in range(25)
            for name, store in (("a", first), ("b", second))
        )
    )
    assert len(await first.read([f"{n}-{i}" for n in "ab" for i in range(25)])) == 50
    item = (await first.read(["a-0"]))["a-0"]
    await second.write({"a-0": dict(item)})  # same eTag: the first write wins...
    with pytest.raises(EtagConflictError):
        await first.write({"a-0": item})  # ...and the other one, holding the old eTag, loses
    await first.close()
    await second.close()
