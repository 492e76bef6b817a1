"""bot_state belongs to the bot: whichever process touches a fresh database first, both work."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from calendar_backend import storage
from dialogs.sql_storage import create_bot_state


async def _tables(engine: sa.ext.asyncio.AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def test_the_service_migrates_a_database_the_bot_touched_first(tmp_path: Path) -> None:
    engine = storage.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'openslot.db'}")
    try:
        await create_bot_state(engine)  # the bot answered a turn before the service ever started
        await storage.migrate(engine)
        tables = await _tables(engine)
        assert {"bot_state", "interviews", "offers", "tenants"} <= tables
        await create_bot_state(engine)  # and the bot's next start is a no-op
    finally:
        await engine.dispose()


async def test_the_bot_opens_a_database_the_service_migrated_first(tmp_path: Path) -> None:
    engine = storage.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'openslot.db'}")
    try:
        await storage.migrate(engine)
        await create_bot_state(engine)
        assert "bot_state" in await _tables(engine)
    finally:
        await engine.dispose()
