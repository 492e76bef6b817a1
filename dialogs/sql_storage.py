"""A botbuilder ``Storage`` over SQLAlchemy async (SQLite or PostgreSQL) with real eTags.

Table ``bot_state(key TEXT PK, etag TEXT, data TEXT (JSON), updated_at)`` (the Calendar Service's
migrations create it; tests create it with ``BOT_STATE.metadata.create_all``).

eTag semantics of ``write`` (per item; ``e_tag`` is a dict key or an attribute):

- ``e_tag`` absent/``None``: create only. If the key already exists → ``KeyError("Etag conflict")``.
- ``e_tag == "*"``: unconditional upsert (only where botbuilder itself passes ``"*"``).
- any other ``e_tag``: the stored eTag must equal it, else ``KeyError("Etag conflict")`` (the same
  exception type and message prefix as ``MemoryStorage``, which botbuilder's SSO dedupe matches).

Every successful write stores a fresh random eTag; ``read`` returns items with ``e_tag`` set to it.

Serialisation is an allow-list, never pickle: plain JSON values, ``datetime``, and the few
botbuilder classes dialog state contains (``DialogState``, ``DialogInstance``, ``PromptOptions``,
``Choice``, ``CallerInfo``, ``ListStyle``, and botbuilder.schema msrest models such as ``Activity``).
Anything else raises ``TypeError`` at write time, so tokens or arbitrary objects cannot sneak in.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from botbuilder import schema as bf_schema
from botbuilder.core import Storage
from botbuilder.dialogs import DialogInstance, DialogState
from botbuilder.dialogs.choices import Choice, ListStyle
from botbuilder.dialogs.prompts import PromptOptions
from botbuilder.dialogs.prompts.oauth_prompt import CallerInfo
from msrest.serialization import Model
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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
_TAG: Final = "$t"
_PLAIN_CLASSES: Final[dict[str, type]] = {
    "DialogState": DialogState, "DialogInstance": DialogInstance,
    "PromptOptions": PromptOptions, "Choice": Choice, "CallerInfo": CallerInfo,
}


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


def _payload(item: object) -> str:
    body = dict(item) if isinstance(item, Mapping) else dict(vars(item))
    body.pop("e_tag", None)
    return json.dumps(_encode(body), separators=(",", ":"))


class SqlStorage(Storage):
    """botbuilder ``Storage`` on the ``bot_state`` table. One instance per process."""

    def __init__(self, engine: AsyncEngine,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__()
        self._engine = engine
        self._clock = clock

    @staticmethod
    def from_url(url: str) -> SqlStorage:
        """Build on a database URL (``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``)."""
        # SQLite: wait for a concurrent writer instead of failing with "database is locked".
        connect_args = {"timeout": 15} if url.startswith("sqlite") else {}
        return SqlStorage(create_async_engine(url, pool_pre_ping=True, connect_args=connect_args))

    @property
    def engine(self) -> AsyncEngine:
        """The engine (the bot's other tables in the same database use it, e.g. refusal audits)."""
        return self._engine

    async def close(self) -> None:
        """Dispose of the engine's connections."""
        await self._engine.dispose()

    async def read(self, keys: list[str]) -> dict[str, object]:
        """Return ``{key: dict}`` for the keys that exist; each dict carries its ``e_tag``."""
        if not keys:
            return {}
        query = sa.select(BOT_STATE.c.key, BOT_STATE.c.etag, BOT_STATE.c.data).where(
            BOT_STATE.c.key.in_(list(keys)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found: dict[str, object] = {}
        for key, etag, data in rows:
            item = _decode(json.loads(data))
            if isinstance(item, dict):
                item["e_tag"] = etag
                found[key] = item
        return found

    async def write(self, changes: dict[str, object]) -> None:
        """Write all ``changes`` in one transaction (see module docstring for eTag rules).

        Raises:
            EtagConflictError: on any eTag mismatch (nothing is written).
            TypeError: if an item holds a value outside the serialisation allow-list.
            ValueError: if a key is empty or longer than 512 characters.
        """
        if changes is None:
            raise TypeError("changes are required")
        async with self._engine.begin() as conn:
            for key, item in changes.items():
                if not key or len(key) > MAX_KEY_LEN:
                    raise ValueError("storage key must be 1..512 characters")
                await self._write_one(conn, key, item)

    async def _write_one(self, conn: Any, key: str, item: object) -> None:
        expected, data, now = _etag_of(item), _payload(item), self._clock()
        new_etag = uuid.uuid4().hex
        values = {"etag": new_etag, "data": data, "updated_at": now}
        if expected is not None:
            update = sa.update(BOT_STATE).where(BOT_STATE.c.key == key)
            if expected != "*":
                update = update.where(BOT_STATE.c.etag == expected)
            if (await conn.execute(update.values(**values))).rowcount == 1:
                _set_etag(item, new_etag)
                return
            if expected != "*":
                raise EtagConflictError(f"Etag conflict for {key!r}")
        try:
            async with conn.begin_nested():
                await conn.execute(sa.insert(BOT_STATE).values(key=key, **values))
        except IntegrityError as exc:
            raise EtagConflictError(f"Etag conflict for {key!r}: it already exists") from exc
        _set_etag(item, new_etag)

    async def delete(self, keys: list[str]) -> None:
        """Delete the given keys (missing keys are ignored)."""
        if not keys:
            return
        async with self._engine.begin() as conn:
            await conn.execute(sa.delete(BOT_STATE).where(BOT_STATE.c.key.in_(list(keys))))


def _set_etag(item: object, etag: str) -> None:
    """Give the written item its new eTag so the same turn can write it again."""
    if isinstance(item, dict):
        item["e_tag"] = etag
    elif hasattr(item, "e_tag"):
        item.e_tag = etag
