"""SqlStorage on aiosqlite talks to the driver directly; rows and errors match the SQLAlchemy path."""

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
    assert storage._sqlite_stamp is not None  # aiosqlite: the direct path is chosen
    if not direct:
        storage._sqlite_stamp = None  # the SQLAlchemy statements, as on PostgreSQL
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
    for change in ({"a": {"n": 3}}, {"a": {"n": 4, "e_tag": "stale"}},
                   {"c": {"n": 5}, "a": {"n": 6}}):
        try:
            await storage.write(change)  # type: ignore[arg-type]
        except EtagConflictError as exc:
            refused.append(str(exc))
    await storage.write({"b": {"s": "y", "e_tag": "*"}, "d": {"n": 7, "e_tag": "*"}})
    await storage.delete(["d"])
    return refused


def without_etags(found: dict[str, object]) -> dict[str, object]:
    return {k: {f: v for f, v in item.items() if f != "e_tag"}  # type: ignore[attr-defined]
            for k, item in found.items()}


async def test_same_rows_and_refusals_as_the_sqlalchemy_path(tmp_path: Path) -> None:
    direct = await make(tmp_path / "direct.db", direct=True)
    generic = await make(tmp_path / "generic.db", direct=False)
    assert await scenario(direct) == await scenario(generic)
    assert rows(tmp_path / "direct.db") == rows(tmp_path / "generic.db")
    assert rows(tmp_path / "direct.db")[0] == ("a", '{"n":2}', "2026-11-28 04:26:34.571730")
    assert without_etags(await direct.read(["a", "b", "c"])) == without_etags(
        await generic.read(["a", "b", "c"]))
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


async def test_a_connection_returned_inside_a_transaction_is_still_rolled_back(
        tmp_path: Path) -> None:
    # The pool skips its reset rollback when no transaction is open; when one is (here opened on
    # the driver behind SQLAlchemy's back), the rollback must still happen on check-in.
    storage = await _from_url(tmp_path / "s.db")
    async with storage.engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.execute("INSERT INTO bot_state (key, etag, data, updated_at) "
                             "VALUES ('k', 'e', '{}', '2026-11-28 00:00:00')")
        assert driver.in_transaction
    assert rows(tmp_path / "s.db") == []
    with sqlite3.connect(tmp_path / "s.db", timeout=0) as other:  # no lock left behind
        other.execute("UPDATE bot_state SET data = data")
    await storage.write({"k": {"n": 1}})  # the pooled connection is usable and clean
    assert rows(tmp_path / "s.db") == [("k", '{"n":1}', rows(tmp_path / "s.db")[0][2])]
    await storage.close()


async def test_reads_and_committed_writes_skip_the_pools_rollback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aiosqlite

    storage = await _from_url(tmp_path / "s.db")
    await storage.write({"k": {"n": 1}})
    rollbacks = 0
    real = aiosqlite.Connection.rollback

    async def counting(self: aiosqlite.Connection) -> None:
        nonlocal rollbacks
        rollbacks += 1
        await real(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counting)
    item = (await storage.read(["k"]))["k"]
    await storage.write({"k": item})
    assert rollbacks == 0
    with pytest.raises(EtagConflictError):  # a refused write is rolled back (by its transaction)
        await storage.write({"k": {"n": 2, "e_tag": "stale"}})
    assert rollbacks == 1
    with sqlite3.connect(tmp_path / "s.db", timeout=0) as other:
        other.execute("UPDATE bot_state SET data = data")
    await storage.close()
