"""SqlStorage: real eTags on a SQLite file."""

from __future__ import annotations

import pytest

from dialogs.sql_storage import EtagConflictError, SqlStorage


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
