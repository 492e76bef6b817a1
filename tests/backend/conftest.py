"""Storage fixtures: a migrated SQLite database in ``tmp_path`` and, when reachable, PostgreSQL.

PostgreSQL: one fresh database ``openslot_test_<random>`` per test session on
``OPENSLOT_TEST_POSTGRES_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/``), dropped
at the end. Tests using it are marked ``postgres`` and skipped, with the reason, when the server
cannot be reached. Each test gets a migrated, emptied database.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from calendar_backend import audit, storage

_ = audit  # registers the audit tables on storage.metadata

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"


def _admin_dsn(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql", database="postgres")
    return parsed.render_as_string(hide_password=False)


async def _pg_admin_async(url: str, statement: str) -> None:
    conn = await asyncpg.connect(_admin_dsn(url), timeout=3)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _pg_admin(url: str, statement: str) -> None:
    """Run one admin statement (on its own loop in a worker thread)."""
    _run_in_thread(_pg_admin_async(url, statement))


class PgDatabases:
    """Creates throw-away databases on the test server and drops them all at the end."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.created: list[str] = []

    def create(self) -> str:
        name = f"openslot_test_{secrets.token_hex(6)}"
        _pg_admin(self.base_url, f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return make_url(self.base_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        for name in self.created:
            _pg_admin(self.base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    base = os.environ.get("OPENSLOT_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        _pg_admin(base, "SELECT 1")
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.skip(f"PostgreSQL not reachable at {make_url(base).host}: {exc!r}")
    databases = PgDatabases(base)
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def pg_url(pg_databases: PgDatabases) -> str:
    """The session's PostgreSQL database, migrated once."""
    url = pg_databases.create()
    _run_in_thread(_migrate_url(url))
    return url


async def _migrate_url(url: str) -> None:
    eng = storage.create_engine(url)
    try:
        await storage.migrate(eng)
    finally:
        await eng.dispose()


def _run_in_thread(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on a fresh loop in a worker thread (the caller may be inside a loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied per test (running Alembic for every test is slow)."""
    path = tmp_path_factory.mktemp("template") / "openslot.db"

    _run_in_thread(_migrate_url(f"sqlite+aiosqlite:///{path}"))
    return path


async def _empty_all_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for table in reversed(storage.metadata.sorted_tables):
            await conn.execute(table.delete())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database: SQLite in ``tmp_path`` or the session's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "data" / "openslot.db"
        path.parent.mkdir()
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        eng = storage.create_engine(f"sqlite+aiosqlite:///{path}")
    else:
        eng = storage.create_engine(request.getfixturevalue("pg_url"))
        await _empty_all_tables(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
def store(engine: AsyncEngine) -> storage.Store:
    return storage.Store(engine)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """A factory of URLs of brand-new, never-migrated databases on the parametrized backend."""
    if request.param == "sqlite":
        counter = iter(range(1000))
        return lambda: f"sqlite+aiosqlite:///{tmp_path / f'fresh{next(counter)}' / 'db.sqlite'}"
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    return databases.create
