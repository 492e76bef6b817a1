"""The attacker's pass over the bot's new loop surfaces (issue 18/19): forged presses of the cap
override on the loop options card. Each is a regression test of a defence that HELD (none was seen
failing): a 10k / bidi / control reason, and an override naming someone the search did not offer."""

from __future__ import annotations

from typing import Any

import pytest
from botbuilder.core.adapters import TestAdapter

from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import make_adapter, make_bot, storage  # noqa: F401
from tests.bot.loop_fakes import FakeLoopCalendar
from tests.bot.test_loop_cap_override import ADAM, _nodes
from tests.bot.test_loop_dialog import card_of, press, text_of, to_options
from tests.bot.test_schedule_dialog import invoke, invoke_body, say


@pytest.fixture
def loops() -> FakeLoopCalendar:
    return FakeLoopCalendar(capped=ADAM)


@pytest.fixture
def chat(storage: SqlStorage, loops: FakeLoopCalendar) -> TestAdapter:
    return make_adapter(make_bot(storage, loops))


@pytest.mark.parametrize(
    "reason",
    [
        "x" * 10_000,
        "ok \u202egnp.exe",  # a right-to-left override
        "ok \u2066isolate\u2069",
        "zero\u200bwidth",
        "esc \x1b[31m red",
        "nul \x00 byte",
        "two\u2028lines",
        "cr\r\nInjected: yes",
    ],
)
async def test_a_forged_press_with_a_hostile_reason_searches_and_books_nothing(
    chat: TestAdapter, loops: FakeLoopCalendar, reason: str
) -> None:
    options = await to_options(chat)
    body = invoke_body(await press(chat, options, "Use Adam Smith anyway", cap_reason=reason))
    if body["statusCode"] == 200:  # a short one: the options card says a reason is needed
        assert "Give a reason" in text_of(body["value"])
    else:  # past what a press may carry at all: the invoke is refused
        assert body["statusCode"] == 400, body
    assert all(not s["cap_overrides"] for s in loops.loop_searches)
    assert not loops.loop_bookings


async def test_an_override_naming_someone_not_offered_is_not_used(
    chat: TestAdapter, loops: FakeLoopCalendar
) -> None:
    options = await to_options(chat)
    data: dict[str, Any] = next(
        a["data"]
        for a in _nodes(options)
        if a.get("type") == "Action.Execute" and a.get("title") == "Use Adam Smith anyway"
    )
    forged = {**data, "cap_reason": "because", "person": "p" + "0" * 16}  # a well-formed key never offered
    forged_session = {**data, "cap_reason": "because", "session": 0}
    for press_data in (forged, forged_session):
        answer = card_of(await say(chat, invoke(press_data)))
        assert "no longer offered" in text_of(answer)
    assert all(not s["cap_overrides"] for s in loops.loop_searches)
    assert not loops.loop_bookings
    assert card_of(await press(chat, options, "Use Adam Smith anyway", cap_reason="ok"))  # the real one works
    assert loops.loop_searches[-1]["cap_overrides"] == ((1, ADAM),)
