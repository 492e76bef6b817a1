"""The sign-in prompt's token serves the same turn's people lookup: one token-service lookup, not two."""

from __future__ import annotations

from typing import Any

from botbuilder.core import TurnContext
from botbuilder.core.adapters import TestAdapter

from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import TOKEN, FakeCalendarService, make_adapter, make_bot

COMMAND = "schedule Dana Smith (dana@example.com) with Megan and Adele, 45 min, next week"


def count_lookups(adapter: TestAdapter) -> list[str]:
    """Record every token-service lookup the adapter answers."""
    lookups: list[str] = []
    original = adapter.get_user_token

    async def get_user_token(context: TurnContext, *args: Any, **kwargs: Any) -> Any:
        lookups.append(context.activity.text or "")
        return await original(context, *args, **kwargs)

    adapter.get_user_token = get_user_token  # type: ignore[method-assign]
    return lookups


async def test_prefilled_command_asks_the_token_service_once(
    storage: SqlStorage, fake: FakeCalendarService
) -> None:
    bot = make_bot(storage, fake)
    kept: list[dict[str, object]] = []
    original_on_turn = bot.on_turn

    async def on_turn(context: TurnContext) -> None:
        await original_on_turn(context)
        kept.append(dict(context.turn_state))

    bot.on_turn = on_turn  # type: ignore[method-assign]
    adapter = make_adapter(bot)
    lookups = count_lookups(adapter)
    await adapter.receive_activity(COMMAND)
    assert "resolve_people" in fake.calls
    assert any("time zone" in (a.text or "") for a in adapter.activity_buffer)
    assert lookups == [COMMAND]  # the sign-in prompt's; the resolve step reused its answer
    assert TOKEN not in [str(v) for v in kept[0].values()]  # taken on use, not left behind


async def test_later_turns_still_ask_the_token_service(
    storage: SqlStorage, fake: FakeCalendarService
) -> None:
    adapter = make_adapter(make_bot(storage, fake))
    await adapter.receive_activity("schedule")
    await adapter.receive_activity("Dana Smith")
    await adapter.receive_activity("dana@example.com")
    lookups = count_lookups(adapter)
    await adapter.receive_activity("Megan, Adele")
    assert lookups == ["Megan, Adele"]  # a typed answer: this turn has no sign-in prompt
    assert "resolve_people" in fake.calls


async def test_signed_out_user_gets_no_lookup(storage: SqlStorage, fake: FakeCalendarService) -> None:
    adapter = make_adapter(make_bot(storage, fake), signed_in=False)
    await adapter.receive_activity(COMMAND)
    assert "resolve_people" not in fake.calls
