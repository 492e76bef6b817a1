"""Interviewer pools in the bot (issue 18): "my load", "pools", "pool <name>" and the pool card's
buttons (edit caps, add and remove a member), with the fake Calendar Service."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount, Entity

from calendar_backend.client import PoolCalendarApi
from calendar_backend.contract import (
    MemberLoadOut,
    MyLoadOut,
    PoolCardOut,
    PoolLoadOut,
    PoolMemberRequest,
    TraineeProgressOut,
    WeekLoadOut,
)
from dialogs.pools import member_key, pool_api
from tests.bot.conftest import FakeCalendarService
from tests.bot.test_loop_dialog import button, card_of, heading, press, text_of
from tests.bot.test_schedule_dialog import actions_of, cards, invoke, invoke_body, say, texts

MEGAN, ADELE = "meganb@contoso.example", "adelev@contoso.example"
THIS, NEXT = date(2026, 11, 23), date(2026, 11, 30)


def _member(address: str, booked: int, weekly: int = 5, daily: int = 2, own: bool = False) -> MemberLoadOut:
    return MemberLoadOut(
        address,
        "America/Los_Angeles",
        0,
        weekly,
        daily,
        WeekLoadOut(THIS, booked),
        WeekLoadOut(NEXT, 0),
        own,
        "Megan Bowen" if address == MEGAN else "",
    )


@pytest.fixture
def fake() -> FakeCalendarService:
    fake = FakeCalendarService()
    fake.pools["pool-1"] = PoolCardOut(
        "pool-1",
        "Backend",
        "backend",
        5,
        2,
        (_member(MEGAN, 3),),
        (TraineeProgressOut("lee@contoso.example", "shadow", 1, 3, 0, 2, display_name="Lee Gu"),),
    )
    fake.load = MyLoadOut(
        "alexw@contoso.example",
        (
            PoolLoadOut(
                "pool-1", "Backend", "Europe/London", 4, 1, WeekLoadOut(THIS, 2), WeekLoadOut(NEXT, 5)
            ),
        ),
        (TraineeProgressOut("alexw@contoso.example", "reverse_shadow", 3, 3, 1, 2, "Frontend"),),
    )
    return fake


def test_the_fake_is_a_pools_client() -> None:
    client: PoolCalendarApi = FakeCalendarService()  # mypy checks the signatures, name for name
    assert pool_api(client) is client
    assert pool_api(object()) is None


async def test_my_load_shows_both_weeks_caps_and_training(adapter: TestAdapter) -> None:
    [card] = cards(await say(adapter, "my load"))
    assert heading(card) == "My interview load"
    text = text_of(card)
    assert "■■□□ 2 / 4" in text
    assert "■■■■■ 5 / 4 (over cap)" in text
    assert "from Mon 23 Nov" in text
    assert "from Mon 30 Nov" in text
    assert "Europe/London" in text
    assert "Reverse shadowing: shadow 3 / 3, reverse shadow 1 / 2" in text
    refreshed = card_of(await press(adapter, card, "Refresh"))
    assert heading(refreshed) == "My interview load"


async def test_pools_opens_the_one_pool_and_pool_name_finds_it(adapter: TestAdapter) -> None:
    [card] = cards(await say(adapter, "pools"))
    assert heading(card) == "Interviewer pool"
    text = text_of(card)
    assert "Backend (backend)" in text
    assert "■■■□□ 3 / 5" in text
    assert "5 a week, 2 a day (pool default)" in text
    assert "Lee Gu: Shadowing: shadow 1 / 3" in text
    assert "Megan Bowen" in text
    assert MEGAN not in json.dumps(card)  # names on the card; the buttons carry an opaque key
    assert "lee@contoso.example" not in json.dumps(card)
    [named] = cards(await say(adapter, "pool BACKEND"))
    assert heading(named) == "Interviewer pool"


async def test_unknown_pool_name_and_no_pools(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    replies = await say(adapter, "pool data")
    assert 'You don\'t own a pool called "data"' in texts(replies)
    assert "Backend" in texts(replies)
    fake.pools.clear()
    [empty] = cards(await say(adapter, "pools"))
    assert "You don't own any interviewer pool" in text_of(empty)


async def test_edit_a_members_caps(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    [card] = cards(await say(adapter, "pools"))
    form = card_of(await press(adapter, card, "Edit caps"))
    assert heading(form) == "Edit caps"
    saved = card_of(await press(adapter, form, "Save", weekly_cap="3", daily_cap="default"))
    assert heading(saved) == "Interviewer pool"
    assert "Saved the caps of Megan Bowen." in text_of(saved)
    assert "3 a week, 2 a day" in text_of(saved)
    assert fake.pool_changes == [("pool-1", PoolMemberRequest("set_caps", MEGAN, 3, None))]
    back = card_of(await press(adapter, form, "Back"))
    assert heading(back) == "Interviewer pool"


async def test_add_a_member_by_name_and_remove_them(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    [card] = cards(await say(adapter, "pools"))
    form = card_of(await press(adapter, card, "Add a member"))
    assert heading(form) == "Add a member"
    added = card_of(await press(adapter, form, "Add", member="Adele"))
    assert "Added Adele Vance." in text_of(added)
    assert fake.pool_changes[-1] == ("pool-1", PoolMemberRequest("add", ADELE, zone="Europe/London"))
    again = card_of(await press(adapter, form, "Add", member="adelev@contoso.example"))
    assert "Adele Vance is already a member." in text_of(again)
    remove = next(
        a
        for a in _buttons(added)
        if a["title"] == "Remove" and a["data"]["person"] == member_key("pool-1", ADELE)
    )
    removed = card_of(await say(adapter, invoke(remove["data"])))
    assert "Removed adelev." in text_of(removed)  # no display name known: the local part
    assert ADELE not in [m.address for m in fake.pools["pool-1"].members]
    stale = card_of(await say(adapter, invoke(remove["data"])))  # the same button again
    assert "That member is no longer in the pool." in text_of(stale)


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("", "Type a name or an email address."),
        ("Zed Nobody", "I couldn't find \u201cZed Nobody\u201d"),
        ("Adam", "Several people match \u201cAdam\u201d"),
        ("Room 1", "That is a room, not a person."),
    ],
)
async def test_wrong_people_are_said_on_the_add_form(
    adapter: TestAdapter, fake: FakeCalendarService, typed: str, problem: str
) -> None:
    [card] = cards(await say(adapter, "pools"))
    form = card_of(await press(adapter, card, "Add a member"))
    answer = card_of(await press(adapter, form, "Add", member=typed))
    assert heading(answer) == "Add a member"
    assert problem in text_of(answer)
    assert fake.pool_changes == []


async def test_bad_caps_and_bad_presses_are_refused(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    [card] = cards(await say(adapter, "pools"))
    form = card_of(await press(adapter, card, "Edit caps"))
    data = button(form, "Save")["data"]
    replies = await say(adapter, invoke({**data, "weekly_cap": "500"}))
    assert invoke_body(replies)["statusCode"] == 400
    unknown = card_of(
        await say(adapter, invoke({"verb": "pool_open", "flow": data["flow"], "pool_id": "nope"}))
    )
    assert "not one of yours" in text_of(unknown)
    assert fake.pool_changes == []
    submitted = await say(adapter, Activity(type="message", value={**data, "weekly_cap": "x"}))
    assert "I didn't understand that button" in texts(submitted)


async def test_the_submit_fallback_answers_with_a_card(adapter: TestAdapter) -> None:
    [card] = cards(await say(adapter, "pools"))
    [listing] = cards(await say(adapter, Activity(type="message", value=button(card, "My pools")["data"])))
    assert heading(listing) == "Interviewer pool"  # the one pool, opened


def _group(text: str | None = None, value: dict[str, Any] | None = None) -> Activity:
    return Activity(
        type="message",
        text=f"<at>OpenSlot</at> {text}" if text else None,
        value=value,
        from_property=ChannelAccount(id="29:alex", name="Alex Wilber"),
        conversation=ConversationAccount(id="19:group@thread.v2", conversation_type="groupChat"),
        entities=[
            Entity().deserialize(
                {
                    "type": "mention",
                    "text": "<at>OpenSlot</at>",
                    "mentioned": {"id": "28:bot", "name": "OpenSlot"},
                }
            )
        ],
    )


async def test_loads_and_pools_stay_private_in_a_group_chat(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    for command in ("my load", "pools", "pool backend"):
        replies = await say(adapter, _group(command))
        assert "private" in texts(replies)
        assert cards(replies) == []
    [card] = cards(await say(adapter, "pools"))
    data = button(card, "Remove")["data"]
    group_press = Activity(
        type="invoke",
        name="adaptiveCard/action",
        value={"action": {"type": "Action.Execute", "verb": data["verb"], "data": data}, "trigger": "manual"},
        from_property=ChannelAccount(id="29:alex", name="Alex Wilber"),
        conversation=ConversationAccount(id="19:group@thread.v2", conversation_type="groupChat"),
    )
    body = invoke_body(await say(adapter, group_press))  # the pressed card stays as it is
    assert (body["statusCode"], body["type"]) == (200, "application/vnd.microsoft.activity.message")
    assert "private" in body["value"]
    submitted = await say(adapter, _group(value=data))
    assert "private" in texts(submitted)
    assert cards(submitted) == []
    assert fake.pool_changes == []


async def test_help_mentions_my_load_and_pools(adapter: TestAdapter) -> None:
    [card] = cards(await say(adapter, "help"))
    assert "my load" in text_of(card)
    assert "pool" in text_of(card)


def _buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    return actions_of(card)


async def test_helps_my_load_button_shows_my_load(adapter: TestAdapter) -> None:
    [card] = cards(await say(adapter, "help"))
    assert heading(card_of(await press(adapter, card, "My load"))) == "My interview load"


async def test_my_load_links_to_the_pools_i_own(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    [card] = cards(await say(adapter, "my load"))
    assert heading(card_of(await press(adapter, card, "Pools I own"))) == "Interviewer pool"
    fake.pools.clear()
    empty = card_of(await press(adapter, card, "Pools I own"))
    assert heading(empty) == "Your interviewer pools"
    assert heading(card_of(await press(adapter, empty, "My load"))) == "My interview load"
