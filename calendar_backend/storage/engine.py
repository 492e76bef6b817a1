"""Engine, SQLite connection hooks, migrations and the transaction scope (:class:`Store`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS: Final = Path(__file__).resolve().parent.parent / "migrations"  # calendar_backend/migrations
_WAL_ATTEMPTS: Final = 20  # brand-new-file race only; ~2 s in all
_MIGRATION_LOCK: Final = 0x4F70656E536C0001  # pg_advisory_lock key for migrate()


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine for ``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``.

    SQLite: creates the database's parent directory; every connection gets WAL, ``foreign_keys=ON``
    and ``busy_timeout=5000`` (ms); every transaction begins with ``BEGIN IMMEDIATE`` (SQLAlchemy's
    documented aiosqlite recipe), so two writers never both read-then-write. Raises ``ValueError``
    for other dialects.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return create_async_engine(url, pool_pre_ping=True)
    if backend != "sqlite":
        raise ValueError(f"unsupported database backend: {backend}")
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    _install_sqlite_hooks(engine)
    return engine


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        for pragma in ("busy_timeout=5000", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        enable_wal(cursor)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def enable_wal(cursor: Any) -> None:
    """Switch a database to WAL (persistent in the file, so only a brand-new database really switches).

    Two connections opening a brand-new file at once can both hold a shared lock and both want the
    exclusive one; SQLite then answers one of them "database is locked" at once, without the busy
    handler (its deadlock rule). That race lasts as long as the other's switch, so retry briefly.
    """
    for attempt in range(_WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except Exception as exc:  # the driver's OperationalError, as adapted by SQLAlchemy
            if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    restrict_sqlite_files(cursor)


def restrict_sqlite_files(cursor: Any) -> None:
    """Make the connection's database file and its -wal/-shm/-journal files 0600 (owner only).

    Every SQLite connection of both apps passes here as it opens (``enable_wal``), so a database
    created under a loose umask, or left 0644 by an older version, is tightened at once. SQLite
    creates later -wal/-shm files with the database file's own mode.
    """
    cursor.execute("PRAGMA database_list")  # the driver cursor: execute, then fetch
    for row in cursor.fetchall():
        path = row[2]
        if row[1] != "main" or not path:
            continue  # in-memory database
        for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(name).chmod(0o600)


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the schema to Alembic ``head`` (``calendar_backend/migrations``). Idempotent.

    The whole upgrade is one transaction. On PostgreSQL it first takes ``pg_advisory_xact_lock``,
    so concurrent callers (several processes starting at once) run one after another and the later
    ones find nothing to do; on SQLite the ``BEGIN IMMEDIATE`` write lock serialises them.
    """
    async with engine.connect() as conn:
        await conn.run_sync(_upgrade_locked)
        await conn.commit()


def _upgrade_locked(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
    else:
        conn.exec_driver_sql("SELECT 1")  # autobegin: BEGIN IMMEDIATE takes the write lock now
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    alembic_command.upgrade(config, "head")


class Store:
    """The engine plus a transaction scope. ``async with store.transaction() as tx: ...``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # SQLite has a single writer and every transaction takes it (BEGIN IMMEDIATE). Queue this
        # process's transactions in FIFO order instead of letting them spin in SQLite's busy
        # handler, which is unfair and starves some past busy_timeout under load.
        self._sqlite_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One database transaction: committed on normal exit, rolled back if the block raises.

        Transactions never nest (on SQLite a nested one would wait for its own outer one).
        """
        if self._sqlite_writer is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._sqlite_writer, self.engine.begin() as conn:
            yield conn

    async def close(self) -> None:
        """Dispose of the connection pool."""
        await self.engine.dispose()
