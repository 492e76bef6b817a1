"""Issue 12 finding 13: candidate PII in bot_state is sealed (AES-256-GCM) in the prod profile."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import sqlalchemy as sa

import bot as bot_module
from dialogs.sql_storage import BOT_STATE, METADATA, SqlStorage
from dialogs.state_seal import StateSealer, state_key

DRAFT = {"flows": [{"candidate_name": "Dana Smith", "candidate_email": "dana.smith@example.com"}]}


async def _storage(tmp_path: Path, sealer: StateSealer | None, name: str = "bot.db") -> SqlStorage:
    store = SqlStorage.from_url(f"sqlite+aiosqlite:///{tmp_path / name}", sealer)
    async with store.engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    return store


async def _raw(store: SqlStorage) -> dict[str, str]:
    async with store.engine.connect() as conn:
        return dict((await conn.execute(sa.select(BOT_STATE.c.key, BOT_STATE.c.data))).all())


async def test_rows_are_sealed_and_read_back(tmp_path: Path) -> None:
    store = await _storage(tmp_path, StateSealer(state_key("", "app-password")))
    await store.write({"conv/a": dict(DRAFT)})
    raw = await _raw(store)
    assert raw["conv/a"].startswith("osb1.")
    assert "Dana" not in raw["conv/a"]
    files = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("bot.db"))
    assert b"dana.smith" not in files
    assert b"Dana Smith" not in files
    item = (await store.read(["conv/a"]))["conv/a"]
    assert item["flows"] == DRAFT["flows"]
    item["flows"] = []
    await store.write({"conv/a": item})  # eTag rules unchanged
    assert (await store.read(["conv/a"]))["conv/a"]["flows"] == []
    await store.close()


async def test_a_row_moved_to_another_key_or_read_with_another_key_does_not_open(tmp_path: Path) -> None:
    sealer = StateSealer(state_key("", "app-password"))
    store = await _storage(tmp_path, sealer)
    await store.write({"conv/a": dict(DRAFT), "conv/b": {"x": 1}})
    async with store.engine.begin() as conn:
        sealed_a = (await _raw(store))["conv/a"]
        await conn.execute(sa.update(BOT_STATE).where(BOT_STATE.c.key == "conv/b").values(data=sealed_a))
    moved = (await store.read(["conv/b"]))["conv/b"]
    assert set(moved) == {"e_tag"}  # an empty state, not Dana's draft
    await store.write({"conv/b": {**moved, "fresh": True}})  # and the next write replaces it
    assert (await store.read(["conv/b"]))["conv/b"]["fresh"] is True
    await store.close()
    other = SqlStorage.from_url(
        f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", StateSealer(state_key("", "rotated-password"))
    )
    assert set((await other.read(["conv/a"]))["conv/a"]) == {"e_tag"}
    plain = SqlStorage.from_url(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    assert set((await plain.read(["conv/a"]))["conv/a"]) == {"e_tag"}
    await other.close()
    await plain.close()


async def test_rows_from_before_sealing_still_read(tmp_path: Path) -> None:
    plain = await _storage(tmp_path, None)
    await plain.write({"conv/a": dict(DRAFT)})
    await plain.close()
    sealed = SqlStorage.from_url(
        f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", StateSealer(state_key("", "pw"))
    )
    item = (await sealed.read(["conv/a"]))["conv/a"]
    assert item["flows"] == DRAFT["flows"]
    await sealed.write({"conv/a": item})
    assert (await _raw(sealed))["conv/a"].startswith("osb1.")
    await sealed.close()


def test_prod_always_seals_dev_only_with_a_key() -> None:
    prod = bot_module.load_bot_settings(
        {
            "OPENSLOT_ENV": "prod",
            "OPENSLOT_BOT_APP_ID": "a",
            "OPENSLOT_BOT_APP_PASSWORD": "p",
            "OPENSLOT_BOT_ALLOWED_TENANTS": "t1",
        }
    )
    assert len(prod.state_key) == 32
    assert "state_key" not in repr(prod)
    dev = {"OPENSLOT_ENV": "dev", "OPENSLOT_DEV_TENANT_ID": "t1"}
    assert bot_module.load_bot_settings(dev).state_key == b""
    explicit = base64.b64encode(bytes(range(32))).decode()
    assert bot_module.load_bot_settings({**dev, "OPENSLOT_BOT_STATE_KEY": explicit}).state_key == bytes(
        range(32)
    )
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(bot_module.SettingsError, match="OPENSLOT_BOT_STATE_KEY"):
            bot_module.load_bot_settings({**dev, "OPENSLOT_BOT_STATE_KEY": bad})
