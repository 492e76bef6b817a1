"""JsonConversationState: botbuilder's ConversationState with the stored JSON text as its change check."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from botbuilder.core import ConversationState, MemoryStorage, MessageFactory, TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.dialogs import DialogInstance, DialogState
from botbuilder.dialogs.prompts import PromptOptions
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dialogs.conversation_state import JsonConversationState
from dialogs.services import DialogServices
from dialogs.sql_storage import BOT_STATE, METADATA, EtagConflictError, SqlStorage, encode_item
from dialogs.teams_bot import OpenSlotBot
from tests.bot.conftest import CONNECTION, NOW, FakeCalendarService, make_adapter

KEY = "msteams/conversations/a:conv1"


class CountingStorage(SqlStorage):
    """SqlStorage that counts reads and writes."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.reads = 0
        self.writes = 0

    async def read_with_data(self, keys: list[str]) -> dict[str, tuple[dict[str, Any], str]]:
        self.reads += 1
        return await super().read_with_data(keys)

    async def write(self, changes: dict[str, object]) -> None:
        self.writes += 1
        await super().write(changes)


@pytest.fixture
async def counting(storage: SqlStorage) -> AsyncIterator[CountingStorage]:
    counted = CountingStorage(storage._engine)
    yield counted
    await counted.close()  # its own SQLite connection (the engine is shared with ``storage``)


def context() -> TurnContext:
    activity = Activity(
        type="message",
        channel_id="msteams",
        text="hi",
        conversation=ConversationAccount(id="a:conv1"),
        from_property=ChannelAccount(id="29:alex"),
        recipient=ChannelAccount(id="28:bot"),
    )
    return TurnContext(TestAdapter(), activity)


def dialog_state() -> DialogState:
    """A stack like a waiting prompt's: plain classes and an msrest Activity inside."""
    prompt = DialogInstance(
        id="zone",
        state={"options": PromptOptions(prompt=MessageFactory.text("Which time zone?")), "state": {}},
    )
    waterfall = DialogInstance(id="schedule", state={"values": {"draft": {"flow": "f1"}}, "stepIndex": 6})
    return DialogState([prompt, waterfall])


async def stored_etag(storage: SqlStorage) -> str | None:
    async with storage._engine.connect() as conn:
        row = (await conn.execute(BOT_STATE.select().where(BOT_STATE.c.key == KEY))).first()
    return None if row is None else str(row.etag)


async def stored_data(storage: SqlStorage) -> str:
    async with storage._engine.connect() as conn:
        row = (await conn.execute(BOT_STATE.select().where(BOT_STATE.c.key == KEY))).one()
    return str(row.data)


async def turn(state: ConversationState, change: Any = None) -> None:
    """One turn: load the dialog state property, optionally change it, save."""
    ctx = context()
    accessor = state.create_property("DialogState")
    value = await accessor.get(ctx, dialog_state)
    if change is not None:
        change(value)
    await state.save_changes(ctx)


async def test_new_state_is_read_once_and_written(counting: CountingStorage) -> None:
    await turn(JsonConversationState(counting))
    assert (counting.reads, counting.writes) == (1, 1)  # botbuilder's own reads twice here
    data = await stored_data(counting)
    assert "Which time zone?" in data
    assert data == encode_item((await counting.read([KEY]))[KEY])


async def test_unchanged_state_is_not_written(counting: CountingStorage) -> None:
    state = JsonConversationState(counting)
    await turn(state)
    etag = await stored_etag(counting)
    await turn(state)  # loads the stored text (prompt Activity included) and changes nothing
    assert counting.writes == 1
    assert await stored_etag(counting) == etag


async def test_a_nested_change_is_written(counting: CountingStorage) -> None:
    state = JsonConversationState(counting)
    await turn(state)
    etag = await stored_etag(counting)

    def bump(value: DialogState) -> None:
        value.dialog_stack[1].state["stepIndex"] = 7

    await turn(state, bump)
    assert counting.writes == 2
    assert await stored_etag(counting) != etag
    assert '"stepIndex":7' in await stored_data(counting)


async def test_hash_is_the_stored_text_and_differs_on_change(storage: SqlStorage) -> None:
    state = JsonConversationState(storage)
    await turn(state)
    ctx = context()
    await state.load(ctx)
    cached = state.get_cached_state(ctx)
    assert cached.hash == await stored_data(storage)
    cached.state["DialogState"].dialog_stack[0].state["state"]["attemptCount"] = 1
    assert cached.compute_hash(cached.state) != cached.hash


async def test_force_writes_unchanged_state(counting: CountingStorage) -> None:
    state = JsonConversationState(counting)
    await turn(state)
    ctx = context()
    await state.load(ctx)
    await state.save_changes(ctx, force=True)
    assert counting.writes == 2


async def test_concurrent_turns_conflict_on_the_etag(storage: SqlStorage) -> None:
    state = JsonConversationState(storage)
    await turn(state)
    first, second = context(), context()
    for ctx in (first, second):
        await state.load(ctx)
        state.get_cached_state(ctx).state["n"] = id(ctx)
    await state.save_changes(first)
    with pytest.raises(EtagConflictError, match="Etag conflict"):
        await state.save_changes(second)


async def test_racing_first_turns_conflict(storage: SqlStorage) -> None:
    state = JsonConversationState(storage)
    first, second = context(), context()
    for ctx in (first, second):
        await state.load(ctx)
        state.get_cached_state(ctx).state["n"] = id(ctx)
    await state.save_changes(first)
    with pytest.raises(EtagConflictError):
        await state.save_changes(second)


async def test_a_second_save_in_the_same_turn_uses_the_new_etag(counting: CountingStorage) -> None:
    state = JsonConversationState(counting)
    ctx = context()
    await state.load(ctx)
    state.get_cached_state(ctx).state["n"] = 1
    await state.save_changes(ctx)
    state.get_cached_state(ctx).state["n"] = 2
    await state.save_changes(ctx)
    await state.save_changes(ctx)  # nothing changed since
    assert counting.writes == 2
    assert json.loads(await stored_data(counting)) == {"n": 2}


async def test_refused_values_still_fail_the_write(storage: SqlStorage) -> None:
    state = JsonConversationState(storage)
    ctx = context()
    await state.load(ctx)
    state.get_cached_state(ctx).state["obj"] = object()
    with pytest.raises(TypeError, match="cannot store"):
        await state.save_changes(ctx)


class CountingMemory(MemoryStorage):
    """MemoryStorage that counts writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    async def write(self, changes: dict[str, Any]) -> None:
        self.writes += 1
        await super().write(changes)


async def test_other_storages_changed_and_unchanged() -> None:
    memory = CountingMemory()
    state = JsonConversationState(memory)
    await turn(state)
    await turn(state)
    assert memory.writes == 1
    ctx = context()
    await state.load(ctx)
    state.get_cached_state(ctx).state["other"] = object()  # beyond the allow-list: jsonpickle
    await state.save_changes(ctx)
    assert memory.writes == 2
    assert type(memory.memory[KEY]["other"]) is object


@pytest.mark.parametrize("kind", [ConversationState, JsonConversationState])
async def test_clear_state_keeps_botbuilders_behaviour(storage: SqlStorage, kind: type) -> None:
    """botbuilder's clear_state drops the eTag, so on SqlStorage its write is a refused create."""
    state = kind(storage)
    await turn(state)
    ctx = context()
    await state.clear_state(ctx)
    with pytest.raises(EtagConflictError):
        await state.save_changes(ctx)


def _flows_masked(data: str) -> str:
    """Flow ids and waterfall instance ids are random."""
    return re.sub(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "U",
        re.sub(r"f[0-9a-f]{16}", "F", data),
    )


async def test_same_replies_and_stored_json_as_botbuilders_state(
    tmp_path: Path, fake: FakeCalendarService
) -> None:
    """A whole scheduling conversation, once on stock ConversationState and once on ours."""
    runs: list[tuple[list[str], list[str], int]] = []
    for kind, name in ((ConversationState, "stock"), (JsonConversationState, "json")):
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / name}.db")
        async with engine.begin() as conn:
            await conn.run_sync(METADATA.create_all)
        store = CountingStorage(engine)
        bot = OpenSlotBot(DialogServices(fake, CONNECTION, kind(store), clock=lambda: NOW))
        adapter = make_adapter(bot)
        replies, stored = [], []
        for text in (
            "schedule Dana Smith (dana@example.com) with Megan and Adele, 45 min, next week",
            "India",
            "none",
        ):
            adapter.activity_buffer.clear()
            await adapter.receive_activity(text)
            replies += [
                _flows_masked(json.dumps(r.serialize(), sort_keys=True)) for r in adapter.activity_buffer
            ]
            data = await stored_data(store)
            assert encode_item((await store.read([KEY]))[KEY]) == data  # loads re-encode exactly
            stored.append(_flows_masked(data))
        runs.append((replies, stored, store.writes))
        await engine.dispose()
    assert runs[0] == runs[1]
    assert any("Pick a time" in reply for reply in runs[1][0])


async def test_restart_resumes_mid_dialog(storage: SqlStorage, fake: FakeCalendarService) -> None:
    def bot() -> OpenSlotBot:
        return OpenSlotBot(
            DialogServices(fake, CONNECTION, JsonConversationState(storage), clock=lambda: NOW)
        )

    first = make_adapter(bot())
    await first.receive_activity("schedule")
    await first.receive_activity("Dana Smith")
    second = make_adapter(bot())  # a new process on the same database
    second.activity_buffer.clear()
    await second.receive_activity("dana@example.com")
    assert any("Who should interview" in (r.text or "") for r in second.activity_buffer)
