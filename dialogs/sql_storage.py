"""A botbuilder ``Storage`` over SQLAlchemy async (SQLite or PostgreSQL) with real eTags.

Table ``bot_state(key TEXT PK, etag TEXT, data TEXT (JSON), updated_at)``: this module owns it. The
storage creates it when it is missing, before its first read, write or delete (``open``; a checkfirst
``create_all``, idempotent, and a concurrent creator, e.g. a second bot replica on PostgreSQL that wins
the race between the check and the CREATE, is tolerated). A database an older Calendar Service migration
already gave the table is used as it is (same columns).

eTag semantics of ``write`` (per item; ``e_tag`` is a dict key or an attribute):

- ``e_tag`` absent/``None``: create only. If the key already exists → ``KeyError("Etag conflict")``.
- ``e_tag == "*"``: unconditional upsert (only where botbuilder itself passes ``"*"``).
- any other ``e_tag``: the stored eTag must equal it, else ``KeyError("Etag conflict")`` (the same
  exception type and message prefix as ``MemoryStorage``, which botbuilder's SSO dedupe matches).

Every successful write stores a fresh random eTag; ``read`` returns items with ``e_tag`` set to it.
A caller that already holds the JSON text ``encode_item`` makes for an item may write an
``EncodedItem`` instead of the item, so the state is not serialised a second time in the same turn.

Serialisation is an allow-list, never pickle: plain JSON values, ``datetime``, and the few
botbuilder classes dialog state contains (``DialogState``, ``DialogInstance``, ``PromptOptions``,
``Choice``, ``CallerInfo``, ``ListStyle``, and botbuilder.schema msrest models such as ``Activity``).
Anything else raises ``TypeError`` at write time, so tokens or arbitrary objects cannot sneak in.

Speed (every turn reads and writes once): on a SQLite file the reads and writes go to one sqlite3
connection of this storage, used by one worker thread of its own (``_SqliteFile``, WAL), not
through SQLAlchemy's pool: a read is one hand-off to that thread, and so is a whole write (its
statements and the commit). Other databases (PostgreSQL, in-memory SQLite) use SQLAlchemy's
statements. The engine also serves ``delete`` and the bot's other tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from botbuilder import schema as bf_schema
from botbuilder.core import Storage
from botbuilder.dialogs import DialogInstance, DialogState
from botbuilder.dialogs.choices import Choice, ListStyle
from botbuilder.dialogs.prompts import PromptOptions
from botbuilder.dialogs.prompts.oauth_prompt import CallerInfo
from msrest.serialization import Model
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolResetState

from dialogs.state_seal import PREFIX as SEALED_PREFIX
from dialogs.state_seal import SealError, StateSealer

METADATA: Final = sa.MetaData()
BOT_STATE: Final = sa.Table(
    "bot_state",
    METADATA,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
MAX_KEY_LEN: Final = 512
SQLITE_BUSY_TIMEOUT_S: Final = 15.0  # how long SQLite waits for another connection's write lock
# Through SQLAlchemy's async engine on aiosqlite (pool checkout and reset, greenlet hand-offs, a
# thread round trip per driver call) a read and a write of a 2 KB item took 0.62 ms together on the
# bench host; see ``_SqliteFile`` for the path that replaced it.
_SQLITE_SELECT: Final = "SELECT key, etag, data FROM bot_state WHERE key IN ({})"
_SQLITE_UPDATE: Final = "UPDATE bot_state SET etag = ?, data = ?, updated_at = ? WHERE key = ?"
_SQLITE_INSERT: Final = "INSERT INTO bot_state (key, etag, data, updated_at) VALUES (?, ?, ?, ?)"
_TAG: Final = "$t"
_WAL_ATTEMPTS: Final = 20  # brand-new-file race only; ~2 s in all
_PLAIN_CLASSES: Final[dict[str, type]] = {
    "DialogState": DialogState,
    "DialogInstance": DialogInstance,
    "PromptOptions": PromptOptions,
    "Choice": Choice,
    "CallerInfo": CallerInfo,
}


def _sqlite_wal(dbapi_connection: Any, _record: object) -> None:
    """WAL, as the Calendar Service's engine sets on the same file (``OPENSLOT_DATABASE_URL`` is
    one database for both apps), so the bot does not depend on which process opened it first.

    Durability is unchanged (``synchronous`` stays FULL: every commit is fsynced), but a commit
    appends to one log instead of writing, syncing and deleting a rollback journal, and readers
    do not block the writer.
    """
    cursor = dbapi_connection.cursor()
    try:
        _enable_wal(cursor)
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch the database to WAL (persistent in the file: only a brand-new file really switches),
    then make its files private (``_restrict_files``).

    Two connections opening a brand-new file at once can both hold a shared lock and both want the
    exclusive one; SQLite then answers one of them "database is locked" at once, without the busy
    handler (its deadlock rule). That race lasts as long as the other's switch, so retry briefly.
    """
    for attempt in range(_WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except Exception as exc:  # sqlite3's OperationalError, or the driver's as SQLAlchemy adapts it
            if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    _restrict_files(cursor)


def _restrict_files(cursor: Any) -> None:
    """Make the database file and its -wal/-shm/-journal files 0600 (owner only), whichever process
    created them and under whatever umask (SQLite gives later -wal/-shm files the database's mode)."""
    cursor.execute("PRAGMA database_list")
    for row in cursor.fetchall():
        path = row[2]
        if row[1] != "main" or not path:
            continue  # in-memory database
        for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(name).chmod(0o600)


async def create_bot_state(engine: AsyncEngine, *, checkfirst: bool = True) -> None:
    """Create the ``bot_state`` table when it is missing. Idempotent.

    Two creators at once (two bot replicas starting on one PostgreSQL) can both find the table
    missing and both CREATE it; the loser's error (duplicate table, or PostgreSQL's unique
    violation on ``pg_type``) is tolerated when the table exists afterwards. ``checkfirst=False``
    is that loser's path, for tests.

    Raises:
        sqlalchemy.exc.DBAPIError: the table could not be created and does not exist.
    """
    try:
        async with engine.begin() as conn:
            await conn.run_sync(METADATA.create_all, checkfirst=checkfirst)
    except DBAPIError:
        async with engine.connect() as conn:
            exists = await conn.run_sync(lambda sync: sa.inspect(sync).has_table(BOT_STATE.name))
        if not exists:
            raise


def _sqlite_reset(dbapi_connection: Any, _record: object, reset_state: PoolResetState) -> None:
    """The pool's reset of a SQLite connection on check-in: roll back only if a transaction is
    still open (``sqlite3.Connection.in_transaction``, i.e. not in autocommit mode).

    SQLAlchemy's default reset always rolls back, which on aiosqlite is one more round trip to the
    driver's thread after every commit and every read (a SELECT opens no transaction in sqlite3),
    for the engine's users (``delete``, nonce pruning; turns' state has its own connection).
    Where that rollback would do something, it still happens; a connection being discarded needs
    none.
    """
    if reset_state.terminate_only:
        return
    if dbapi_connection.driver_connection.in_transaction:
        dbapi_connection.rollback()


class _SqliteFile:
    """One sqlite3 connection to the bot's SQLite file, opened and used only by one worker thread.

    Each operation (a read, or a whole write with its commit or rollback) is one hand-off to that
    thread, and the thread runs them one at a time in submission order. A cancelled caller does
    not cut an operation short: it still commits or rolls back. Across processes SQLite's locks and
    the busy timeout order writes. The file is switched to WAL as the connection opens (the rule of
    ``_sqlite_wal``), as the Calendar Service's engine does on the same file.
    """

    def __init__(self, path: str, busy_timeout_s: float) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None  # touched only in the worker thread

    async def run(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        """``operation(connection)`` in the worker thread; its result or exception."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openslot-bot-state")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, operation)

    def _call(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._db is None:
            db = sqlite3.connect(self._path, timeout=self._busy_timeout_s)
            try:
                _sqlite_wal(db, None)
            except BaseException:
                db.close()
                raise
            self._db = db
        return operation(self._db)

    async def close(self) -> None:
        """Close the connection and stop the thread (a later operation starts them again)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.get_running_loop().run_in_executor(executor, self._close_db)
        executor.shutdown(wait=False)

    def _close_db(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()


@dataclass(frozen=True, slots=True)
class _Row:
    """One prepared change of a write: its item, the values to store and the eTag it expects."""

    key: str
    item: object
    values: dict[str, Any]
    expected: str | None


def _apply_sqlite(db: sqlite3.Connection, rows: list[_Row], stamp: Callable[[datetime], str]) -> None:
    """A whole write in the worker thread: the eTag rules of ``SqlStorage.write`` for every row,
    then one commit; any exception rolls the whole write back."""
    try:
        for row in rows:
            _apply_row(db, row, stamp)
        db.commit()
    except BaseException:
        db.rollback()
        raise


def _apply_row(db: sqlite3.Connection, row: _Row, stamp: Callable[[datetime], str]) -> None:
    v = row.values
    params = [v["etag"], v["data"], stamp(v["updated_at"]), row.key]
    if row.expected is not None:
        if row.expected == "*":
            updated = db.execute(_SQLITE_UPDATE, params).rowcount
        else:
            updated = db.execute(_SQLITE_UPDATE + " AND etag = ?", [*params, row.expected]).rowcount
        if updated == 1:
            return
        if row.expected != "*":
            raise EtagConflictError(f"Etag conflict for {row.key!r}")
    try:
        db.execute(_SQLITE_INSERT, [row.key, v["etag"], v["data"], stamp(v["updated_at"])])
    except sqlite3.IntegrityError as exc:
        raise EtagConflictError(f"Etag conflict for {row.key!r}: it already exists") from exc


def _sqlite_file(engine: AsyncEngine) -> str | None:
    """The file behind an aiosqlite engine, or ``None`` (another driver, or an in-memory database,
    which another connection would not see)."""
    url = engine.url
    if (engine.dialect.name, engine.dialect.driver) != ("sqlite", "aiosqlite"):
        return None
    path = url.database or ""
    if path in ("", ":memory:") or path.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return path


_T = TypeVar("_T")
_Update = Callable[[str, dict[str, Any], str | None], Awaitable[int]]  # rowcount
_Insert = Callable[[str, dict[str, Any]], Awaitable[None]]  # raises IntegrityError on a duplicate


class EtagConflictError(KeyError):
    """A write's eTag does not match the stored one (message starts with "Etag conflict")."""


def _encode(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, ListStyle):
        return {_TAG: "ListStyle", "v": value.name}
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, datetime):
        return {_TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, Mapping):
        if _TAG in value or not all(isinstance(k, str) for k in value):
            raise TypeError("state dict keys must be strings and not '$t'")
        return {k: _encode(v) for k, v in value.items()}
    name = type(value).__name__
    if _PLAIN_CLASSES.get(name) is type(value):
        return {_TAG: name, "v": {k: _encode(v) for k, v in vars(value).items()}}
    if isinstance(value, Model) and getattr(bf_schema, name, None) is type(value):
        return {_TAG: "schema", "c": name, "v": value.serialize()}
    raise TypeError(f"cannot store a {name} in bot state")


def _decode(value: object) -> object:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(_TAG)
    if tag is None:
        return {k: _decode(v) for k, v in value.items()}
    return _decode_tagged(str(tag), value)


def _decode_tagged(tag: str, value: dict[str, Any]) -> object:
    if tag == "datetime":
        return datetime.fromisoformat(str(value["v"]))
    if tag == "ListStyle":
        return ListStyle[str(value["v"])]
    if tag == "schema":
        cls = getattr(bf_schema, str(value["c"]), None)
        if not (isinstance(cls, type) and issubclass(cls, Model)):
            raise ValueError("unknown schema class in bot state")
        return cls.deserialize(value["v"])
    cls_plain = _PLAIN_CLASSES.get(tag)
    if cls_plain is None:
        raise ValueError("unknown type tag in bot state")
    obj: object = object.__new__(cls_plain)
    for key, item in dict(value["v"]).items():
        setattr(obj, key, _decode(item))
    return obj


def _etag_of(item: object) -> str | None:
    raw = item.get("e_tag") if isinstance(item, Mapping) else getattr(item, "e_tag", None)
    return None if raw is None else str(raw)


def encode_item(item: object) -> str:
    """The JSON text ``write`` stores for ``item`` (its ``e_tag`` left out).

    Raises:
        TypeError: if the item holds a value outside the serialisation allow-list.
    """
    body = dict(item) if isinstance(item, Mapping) else dict(vars(item))
    body.pop("e_tag", None)
    return json.dumps(_encode(body), separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class EncodedItem:
    """A state item for ``SqlStorage.write`` together with ``data == encode_item(item)``, made by
    the caller in the same turn with no change to ``item`` since. ``item`` gets the new eTag."""

    item: object
    data: str


class SqlStorage(Storage):
    """botbuilder ``Storage`` on the ``bot_state`` table. One instance per process."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S,
        sealer: StateSealer | None = None,
    ) -> None:
        """``busy_timeout_s``: how long the SQLite connection waits for another process's write;
        ``sealer``: seals every row's text (`dialogs.state_seal`; None stores plain JSON)."""
        super().__init__()
        self._engine = engine
        self._sealer = sealer
        self._clock = clock
        dialect = engine.dialect
        # A SQLite file gets a connection of its own (``_SqliteFile``); updated_at is then written
        # as SQLAlchemy stores it on SQLite (its DATETIME text).
        path = _sqlite_file(engine)
        self._sqlite_stamp: Callable[[datetime], str] = BOT_STATE.c.updated_at.type.dialect_impl(
            dialect
        ).bind_processor(dialect) or (lambda value: value.isoformat())
        self._sqlite: _SqliteFile | None = _SqliteFile(path, busy_timeout_s) if path else None
        self._is_open = False
        self._opening = asyncio.Lock()

    @staticmethod
    def from_url(url: str, sealer: StateSealer | None = None) -> SqlStorage:
        """Build on a database URL (``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``)."""
        # SQLite: wait for a concurrent writer instead of failing with "database is locked".
        sqlite = url.startswith("sqlite")
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S} if sqlite else {}
        # A pre-ping finds server connections the network or the server dropped; a SQLite
        # connection is a local file handle that cannot go stale, so there it would only add one
        # more round trip to the driver's thread on every read and write of every turn.
        # SQLite: the pool's reset on check-in rolls back only a connection still inside a
        # transaction (``_sqlite_reset``), not after every commit and every read.
        engine = create_async_engine(
            url,
            pool_pre_ping=not sqlite,
            connect_args=connect_args,
            pool_reset_on_return=None if sqlite else "rollback",
        )
        if sqlite:
            event.listen(engine.sync_engine, "connect", _sqlite_wal)
            event.listen(engine.sync_engine, "reset", _sqlite_reset)
        return SqlStorage(engine, sealer=sealer)

    @property
    def engine(self) -> AsyncEngine:
        """The engine of the bot's database (e.g. form nonces prune their ``bot_state`` rows with it)."""
        return self._engine

    async def open(self) -> None:
        """Create ``bot_state`` when it is missing (``create_bot_state``); once per instance, and
        before the first read, write or delete without being asked."""
        if self._is_open:
            return
        async with self._opening:
            if not self._is_open:
                await create_bot_state(self._engine)
                self._is_open = True

    async def close(self) -> None:
        """Close the SQLite connection and dispose of the engine's connections."""
        if self._sqlite is not None:
            await self._sqlite.close()
        await self._engine.dispose()

    async def read(self, keys: list[str]) -> dict[str, object]:
        """Return ``{key: dict}`` for the keys that exist; each dict carries its ``e_tag``."""
        return {key: item for key, (item, _data) in (await self.read_with_data(keys)).items()}

    async def read_with_data(self, keys: list[str]) -> dict[str, tuple[dict[str, Any], str]]:
        """Like ``read``, with each item's stored JSON text (``encode_item``'s form) beside it."""
        if not keys:
            return {}
        await self.open()
        rows: list[Any]
        if self._sqlite is not None:
            select, params = _SQLITE_SELECT.format(", ".join("?" * len(keys))), list(keys)
            rows = await self._sqlite.run(lambda db: db.execute(select, params).fetchall())
        else:
            async with self._engine.connect() as conn:
                rows = list(
                    (
                        await conn.execute(
                            sa.select(BOT_STATE.c.key, BOT_STATE.c.etag, BOT_STATE.c.data).where(
                                BOT_STATE.c.key.in_(list(keys))
                            )
                        )
                    ).all()
                )
        found: dict[str, tuple[dict[str, Any], str]] = {}
        for key, etag, data in rows:
            text = self._open(key, data)
            if text is None:  # sealed under another key: an empty state the next write replaces
                found[key] = ({"e_tag": etag}, "{}")
                continue
            item = _decode(json.loads(text))
            if isinstance(item, dict):
                item["e_tag"] = etag
                found[key] = (item, text)
        return found

    def _open(self, key: str, data: str) -> str | None:
        """A row's JSON text, or None when it is sealed and does not open here."""
        if self._sealer is None:
            return None if data.startswith(SEALED_PREFIX) else data
        try:
            return self._sealer.open(key, data)
        except SealError:
            return None

    async def write(self, changes: dict[str, object]) -> None:
        """Write all ``changes`` in one transaction (see module docstring for eTag rules).

        Raises:
            EtagConflictError: on any eTag mismatch (nothing is written).
            TypeError: if an item holds a value outside the serialisation allow-list.
            ValueError: if a key is empty or longer than 512 characters.
        """
        if changes is None:
            raise TypeError("changes are required")
        await self.open()
        if self._sqlite is not None:
            rows = [self._prepare(key, change) for key, change in changes.items()]
            stamp, sqlite = self._sqlite_stamp, self._sqlite
            await sqlite.run(lambda db: _apply_sqlite(db, rows, stamp))
            for row in rows:  # only once the whole write is committed
                _set_etag(row.item, row.values["etag"])
            return
        async with self._engine.begin() as conn:

            async def update(key: str, values: dict[str, Any], expected: str | None) -> int:
                stmt = sa.update(BOT_STATE).where(BOT_STATE.c.key == key)
                if expected is not None:
                    stmt = stmt.where(BOT_STATE.c.etag == expected)
                return int((await conn.execute(stmt.values(**values))).rowcount)

            async def insert(key: str, values: dict[str, Any]) -> None:
                await conn.execute(sa.insert(BOT_STATE).values(key=key, **values))

            for key, item in changes.items():
                await self._write_one(update, insert, self._prepare(key, item))

    def _prepare(self, key: str, change: object) -> _Row:
        """A change ready to write: key checked, JSON encoded, new eTag drawn.

        Raises:
            ValueError: the key is empty or longer than 512 characters.
            TypeError: the item holds a value outside the serialisation allow-list.
        """
        if not key or len(key) > MAX_KEY_LEN:
            raise ValueError("storage key must be 1..512 characters")
        if isinstance(change, EncodedItem):
            item, data = change.item, change.data
        else:
            item, data = change, encode_item(change)
        if self._sealer is not None:
            data = self._sealer.seal(key, data)
        values = {"etag": uuid.uuid4().hex, "data": data, "updated_at": self._clock()}
        return _Row(key, item, values, _etag_of(item))

    async def _write_one(self, update: _Update, insert: _Insert, row: _Row) -> None:
        """One prepared change through SQLAlchemy (``_apply_row`` is the SQLite path's twin)."""
        key, values, expected = row.key, row.values, row.expected
        if expected is not None:
            if await update(key, values, None if expected == "*" else expected) == 1:
                _set_etag(row.item, values["etag"])
                return
            if expected != "*":
                raise EtagConflictError(f"Etag conflict for {key!r}")
        # No savepoint around the insert: a conflict raises out of ``write``, whose transaction is
        # then rolled back whole, so nothing after a failed insert needs the transaction. (A
        # savepoint cost two more statements on every new conversation's first turn.)
        try:
            await insert(key, values)
        except IntegrityError as exc:
            raise EtagConflictError(f"Etag conflict for {key!r}: it already exists") from exc
        _set_etag(row.item, values["etag"])

    async def delete(self, keys: list[str]) -> None:
        """Delete the given keys (missing keys are ignored)."""
        if not keys:
            return
        await self.open()
        async with self._engine.begin() as conn:
            await conn.execute(sa.delete(BOT_STATE).where(BOT_STATE.c.key.in_(list(keys))))


def _set_etag(item: object, etag: str) -> None:
    """Give the written item its new eTag so the same turn can write it again."""
    if isinstance(item, dict):
        item["e_tag"] = etag
    elif hasattr(item, "e_tag"):
        item.e_tag = etag
