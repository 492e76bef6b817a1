"""Alembic environment, driven programmatically by :func:`calendar_backend.storage.migrate`.

The caller passes an open synchronous ``Connection`` (already inside its transaction, and on
PostgreSQL
already holding the migration advisory lock) as ``config.attributes["connection"]``. There is no
``alembic.ini`` and no offline (SQL script) mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from calendar_backend import audit, storage

_ = audit  # registers the audit tables on storage.metadata (for autogenerate / drift checks)


def _include_name(name: str | None, kind: str, _parent: object) -> bool:
    """Leave ``bot_state`` out of autogenerate / drift checks: the bot owns that table
    (dialogs/sql_storage.py); r0001 created it, but it is not in ``storage.metadata``."""
    return not (kind == "table" and name == "bot_state")


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=storage.metadata, include_name=_include_name)
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise TypeError("run migrations through calendar_backend.storage.migrate(engine)")
_run(_connection)
