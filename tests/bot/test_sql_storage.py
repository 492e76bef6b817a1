"""SqlStorage: real eTags on a SQLite file."""

from __future__ import annotations

import ast
import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from dialogs import sql_storage
from dialogs.sql_storage import EtagConflictError, SqlStorage, create_bot_state


async def test_stale_etag_conflicts(storage: SqlStorage) -> None:
    await storage.write({"k": {"n": 1}})
    first = (await storage.read(["k"]))["k"]
    stale = dict(first)  # type: ignore[call-overload]
    await storage.write({"k": {**first, "n": 2}})  # type: ignore[dict-item]
    with pytest.raises(EtagConflictError, match="Etag conflict"):
        await storage.write({"k": {**stale, "n": 3}})
    assert (await storage.read(["k"]))["k"]["n"] == 2  # type: ignore[index]


async def test_create_only_without_etag_and_star_overwrites(storage: SqlStorage) -> None:
    await storage.write({"k": {"n": 1}})
    with pytest.raises(EtagConflictError):
        await storage.write({"k": {"n": 2}})
    await storage.write({"k": {"n": 3, "e_tag": "*"}})
    assert (await storage.read(["k"]))["k"]["n"] == 3  # type: ignore[index]


async def test_unknown_objects_are_refused(storage: SqlStorage) -> None:
    with pytest.raises(TypeError):
        await storage.write({"k": {"obj": object()}})


async def test_delete(storage: SqlStorage) -> None:
    await storage.write({"k": {"n": 1}})
    await storage.delete(["k"])
    assert await storage.read(["k"]) == {}


async def test_one_conflict_writes_nothing(storage: SqlStorage) -> None:
    """A batch is one transaction: a refused create leaves the other items unwritten too."""
    await storage.write({"k": {"n": 1}})
    with pytest.raises(EtagConflictError):
        await storage.write({"new": {"n": 2}, "k": {"n": 3}})
    assert await storage.read(["new"]) == {}
    assert (await storage.read(["k"]))["k"]["n"] == 1  # type: ignore[index]
    await storage.write({"new": {"n": 4}})  # the connection and table are still usable
    assert (await storage.read(["new"]))["new"]["n"] == 4  # type: ignore[index]


async def test_a_bare_database_gets_its_table_on_first_use(tmp_path: Path) -> None:
    """The bot owns ``bot_state``: no migration of the Calendar Service is needed before a turn."""
    store = SqlStorage.from_url(f"sqlite+aiosqlite:///{tmp_path / 'bare.db'}")
    try:
        assert await store.read(["k"]) == {}
        await store.write({"k": {"n": 1}})
        await store.open()  # idempotent
        assert (await store.read(["k"]))["k"]["n"] == 1  # type: ignore[index]
    finally:
        await store.close()


async def test_two_replicas_opening_one_database_at_once_both_succeed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    stores = [SqlStorage.from_url(url) for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        await asyncio.gather(*(s.write({f"k{i}": {"n": i}}) for i, s in enumerate(stores)))
        assert len(await stores[0].read([f"k{i}" for i in range(4)])) == 4
    finally:
        for store in stores:
            await store.close()


async def test_losing_the_create_race_is_tolerated(storage: SqlStorage) -> None:
    """The table exists (the other replica won between the check and the CREATE): no error."""
    await create_bot_state(storage.engine, checkfirst=False)
    await storage.write({"k": {"n": 1}})


async def test_a_create_that_fails_for_another_reason_raises(tmp_path: Path) -> None:
    read_only = tmp_path / "ro.db"
    sqlite3.connect(read_only).close()
    read_only.chmod(0o400)
    engine = create_async_engine(f"sqlite+aiosqlite:///file:{read_only}?mode=ro&uri=true")
    try:
        with pytest.raises(DBAPIError):
            await create_bot_state(engine)
    finally:
        await engine.dispose()


def test_the_bot_owns_its_table_without_the_calendar_service() -> None:
    tree = ast.parse(Path(sql_storage.__file__).read_text(encoding="utf-8"))
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m.startswith("calendar_backend")}, imported
