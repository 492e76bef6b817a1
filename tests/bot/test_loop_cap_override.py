"""The manager's cap override on the loop options card (issue 18), through the TestAdapter.

A pooled session only a member past their cap could fill: the card offers "Over cap: use <name>
anyway" (a reason box, then "Use <name> anyway"); no valid reason → the card says so, nothing is
searched with the override or booked; a reason → the search as if they were under cap there, the
booking carries ``cap_override`` (address, reason), the booked card says so. Nobody but the manager
who searched may use it. No address on any card.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import ChannelAccount

from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import make_adapter, make_bot
from tests.bot.loop_fakes import FakeLoopCalendar
from tests.bot.test_loop_dialog import card_of, press, text_of, to_options
from tests.bot.test_schedule_dialog import invoke, say

ADAM = "adams@contoso.example"


@pytest.fixture
def loops() -> FakeLoopCalendar:
    return FakeLoopCalendar(capped=ADAM)


@pytest.fixture
def chat(storage: SqlStorage, loops: FakeLoopCalendar) -> TestAdapter:
    return make_adapter(make_bot(storage, loops))


def _show_card(card: dict[str, Any], title: str) -> dict[str, Any]:
    found = [a for a in _nodes(card) if a.get("type") == "Action.ShowCard" and a.get("title") == title]
    assert found, text_of(card)
    return dict(found[0])


def _nodes(node: object) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            out += _nodes(value)
    elif isinstance(node, list):
        for value in node:
            out += _nodes(value)
    return out


async def test_over_cap_asks_a_reason_then_searches_and_books_with_the_override(
    chat: TestAdapter, loops: FakeLoopCalendar
) -> None:
    options = await to_options(chat)
    assert "No loop fits yet" in text_of(options)
    assert ADAM not in json.dumps(options)  # names only, the key is opaque
    show = _show_card(options, "Over cap: use Adam Smith anyway")
    [box] = [n for n in _nodes(show["card"]) if n.get("type") == "Input.Text"]
    assert box["id"] == "cap_reason"
    assert box["maxLength"] == 200
    assert not box.get("isRequired")  # a validating client would send nothing: the bot answers

    for bad in ("", "   ", "x" * 201, "line\u0007bell"):
        refused = card_of(await press(chat, options, "Use Adam Smith anyway", cap_reason=bad))
        assert "Give a reason" in text_of(refused)
        assert "No loop fits yet" in text_of(refused)
    assert all(not s["cap_overrides"] for s in loops.loop_searches)

    fitted = card_of(await press(chat, options, "Use Adam Smith anyway", cap_reason="  only Java expert  "))
    assert "Pick a loop" in text_of(fitted)
    assert "Over cap: Adam Smith" in text_of(fitted)
    assert loops.loop_searches[-1]["cap_overrides"] == ((1, ADAM),)
    confirm = card_of(await press(chat, fitted, "Pick option 1"))
    assert "Over cap: Adam Smith" in text_of(confirm)
    booked = card_of(await press(chat, confirm, "Book the loop"))
    assert "Interview loop booked" in text_of(booked)
    assert "Over cap: Adam Smith" in text_of(booked)
    assert loops.loop_bookings[-1]["cap_override"] == (ADAM, "only Java expert")
    assert ADAM not in json.dumps(booked)


async def test_only_the_manager_who_searched_may_override(chat: TestAdapter, loops: FakeLoopCalendar) -> None:
    options = await to_options(chat)
    data = next(
        a["data"]
        for a in _nodes(options)
        if a.get("type") == "Action.Execute" and a.get("title") == "Use Adam Smith anyway"
    )
    other = invoke({**data, "cap_reason": "I say so"})
    other.from_property = ChannelAccount(id="someone-else", name="Someone Else")
    refused = card_of(await say(chat, other))
    assert "Only the hiring manager who searched" in text_of(refused)
    assert all(not s["cap_overrides"] for s in loops.loop_searches)
    assert not loops.loop_bookings
