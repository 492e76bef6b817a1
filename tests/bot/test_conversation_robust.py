"""Issue 13 part 1: the conversation never crashes or dead-ends (TestAdapter, real OpenSlotBot)."""

from __future__ import annotations

import pytest
from botbuilder.core.adapters import TestAdapter

from tests.bot.test_schedule_dialog import cards, invoke, invoke_body, say, texts


@pytest.mark.parametrize("verb", ["schedule", "my_interviews", "help"])
async def test_command_buttons_answer_invoke_200(adapter: TestAdapter, verb: str) -> None:
    replies = await say(adapter, invoke({"verb": verb, "flow": "f0123456789abcdef"}))
    body = invoke_body(replies)
    assert body["statusCode"] == 200, body
    assert "went wrong" not in texts(replies).lower()


async def test_schedule_button_starts_the_flow_and_the_next_answer_continues_it(
        adapter: TestAdapter) -> None:
    replies = await say(adapter, invoke({"verb": "schedule", "flow": "f0123456789abcdef"}))
    body = invoke_body(replies)
    assert body["type"] == "application/vnd.microsoft.activity.message"
    assert isinstance(body["value"], str)
    assert "candidate's name" in texts(replies)
    assert "e-mail" in texts(await say(adapter, "Dana Smith"))


async def test_help_and_my_interviews_buttons_post_their_cards(adapter: TestAdapter) -> None:
    replies = await say(adapter, invoke({"verb": "help", "flow": "f0123456789abcdef"}))
    assert cards(replies), texts(replies)
    replies = await say(adapter, invoke({"verb": "my_interviews", "flow": "f0123456789abcdef"}))
    assert cards(replies), texts(replies)
