"""The interview loop conversation (issue 17), driven through the TestAdapter with FakeLoopCalendar."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount, Entity

from cards.loop_actions import is_loop_verb
from dialogs.loop_client import LoopCalendarApi, loop_api
from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import CONNECTION, TOKEN, FakeCalendarService, make_adapter, make_bot
from tests.bot.loop_fakes import FakeLoopCalendar
from tests.bot.test_schedule_dialog import actions_of, cards, invoke, invoke_body, say, texts


@pytest.fixture
def loops() -> FakeLoopCalendar:
    return FakeLoopCalendar()


@pytest.fixture
def chat(storage: SqlStorage, loops: FakeLoopCalendar) -> TestAdapter:
    return make_adapter(make_bot(storage, loops))


def heading(card: dict[str, Any]) -> str:
    return str(card["body"][0].get("text") or card["body"][0]["inlines"][0]["text"])


def text_of(card: dict[str, Any]) -> str:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("text", "title"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return " | ".join(found)


def button(card: dict[str, Any], title: str) -> dict[str, Any]:
    return next(a for a in actions_of(card) if a["title"] == title)


async def press(chat: TestAdapter, card: dict[str, Any], title: str, **inputs: str) -> list[Activity]:
    data = button(card, title)["data"]
    return await say(chat, invoke({**data, **inputs}))


def card_of(replies: list[Activity]) -> dict[str, Any]:
    body = invoke_body(replies)
    assert body["statusCode"] == 200, body
    return dict(body["value"])


async def to_options(chat: TestAdapter) -> dict[str, Any]:
    """schedule a loop → Use "Backend onsite" → the questions → the loop options card."""
    [builder] = cards(await say(chat, "schedule a loop"))
    assert heading(builder) == "Schedule an interview loop"
    assert "Backend onsite" in text_of(builder)
    replies = await press(chat, builder, "Use")
    assert "What is the candidate's name?" in texts(replies)
    assert "e-mail" in texts(await say(chat, "Dana Scully"))
    assert "When?" in texts(await say(chat, "dana@example.com"))
    assert "time zone" in texts(await say(chat, "next week"))
    [options] = cards(await say(chat, "India"))
    return options


def test_the_fake_is_a_loop_client() -> None:
    client: LoopCalendarApi = FakeLoopCalendar()  # mypy checks the signatures, name for name
    assert isinstance(client, LoopCalendarApi)
    assert loop_api(object()) is None  # no loop methods at all


async def test_schedule_a_loop_pick_confirm_book(chat: TestAdapter, loops: FakeLoopCalendar) -> None:
    options = await to_options(chat)
    text = text_of(options)
    assert "Interview loop: Dana Scully" in text
    assert "Pick a loop" in text
    assert "Megan Bowen" in text
    assert "Room 1" in text
    assert "contoso.example" not in str(options)  # people by name and opaque key only
    [search] = loops.loop_searches
    assert search["candidate_time_zone"] == "Asia/Kolkata"
    assert search["template"]["name"] == "Backend onsite"
    confirm = card_of(await press(chat, options, "Pick option 1"))
    assert heading(confirm) == "Book this loop?"
    booked = card_of(await press(chat, confirm, "Book the loop"))
    assert heading(booked) == "Interview loop booked"
    assert "Join Teams meeting" in text_of(booked)
    assert "https://teams.example/join/loop" in str(booked)
    assert "Intro" in text_of(booked)
    assert "System design" in text_of(booked)
    [booking] = loops.loop_bookings
    assert booking["candidate_email"] == "dana@example.com"
    assert len(booking["sessions"]) == 2
    again = card_of(await press(chat, confirm, "Book the loop"))  # a stale confirm: the same loop
    assert heading(again) == "Interview loop booked"
    assert len(loops.loops) == 1


async def test_one_message_form_asks_only_the_rest(chat: TestAdapter, loops: FakeLoopCalendar) -> None:
    replies = await say(chat, "loop backend onsite for Dana Scully (dana@example.com) next week")
    assert "time zone" in texts(replies)
    assert "name" not in texts(replies)
    [options] = cards(await say(chat, "London"))
    assert "Pick a loop" in text_of(options)
    assert loops.loop_searches[0]["candidate_time_zone"] == "Europe/London"


async def test_unknown_template_in_the_message_shows_the_builder(chat: TestAdapter) -> None:
    [builder] = cards(await say(chat, "loop Frontend onsite for Dana Scully (dana@example.com) next week"))
    assert "No saved loop is called" in text_of(builder)


async def test_build_a_loop_on_the_card_and_save_it(chat: TestAdapter, loops: FakeLoopCalendar) -> None:
    [builder] = cards(await say(chat, "loop"))
    inputs = {
        "name": "Data onsite",
        "s0_title": "Intro",
        "s0_minutes": "30",
        "s0_people": "Megan",
        "s1_title": "Coding",
        "s1_minutes": "60",
        "s1_people": "adelev@contoso.example, Adam Brown",
        "save": "true",
        "lunch": "true",
    }
    replies = await press(chat, builder, "Find loop times", **inputs)
    assert "Saved \u201cData onsite\u201d" in texts(replies)
    assert "candidate's name" in texts(replies)
    saved = loops.templates["Data onsite"]
    assert [s["title"] for s in saved["sessions"]] == ["Intro", "Coding", "Lunch"]
    assert saved["sessions"][1]["interviewers"] == ["adelev@contoso.example", "adamb@contoso.example"]
    await say(chat, "Dana Scully")
    await say(chat, "dana@example.com")
    await say(chat, "next week")
    [options] = cards(await say(chat, "India"))
    assert "Data onsite" in text_of(options)


async def test_builder_problems_are_shown_on_the_builder(chat: TestAdapter, loops: FakeLoopCalendar) -> None:
    [builder] = cards(await say(chat, "schedule a loop"))
    inputs = {"s0_title": "Intro", "s0_people": "Zed Nobody", "s1_title": "Coding", "s1_people": "Adam"}
    again = card_of(await press(chat, builder, "Find loop times", **inputs))
    text = text_of(again)
    assert "Please fix this first" in text
    assert "Zed Nobody" in text
    assert "could be Adam Brown, Adam Smith" in text
    empty = card_of(await press(chat, again, "Find loop times"))
    assert "Add at least one session" in text_of(empty)
    assert loops.loop_searches == []


async def test_edit_a_saved_template_prefills_names(chat: TestAdapter) -> None:
    [builder] = cards(await say(chat, "schedule a loop"))
    form = card_of(await press(chat, builder, "Edit"))
    people = [i.get("value") for i in _inputs(form) if str(i.get("id", "")).endswith("_people")]
    assert people[:2] == ["Megan Bowen", "Adele Vance, Adam Brown"]


def _inputs(card: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Input."):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


async def test_edits_from_the_options_card_search_again(chat: TestAdapter, loops: FakeLoopCalendar) -> None:
    options = await to_options(chat)
    card_of(await press(chat, options, "1 h 15 min"))  # Intro 30 → ... System design 60 → 75
    assert loops.loop_searches[-1]["template"]["sessions"][1]["minutes"] == 75
    card_of(await press(chat, options, "Drop Adam Brown"))
    assert loops.loop_searches[-1]["template"]["sessions"][1]["interviewers"] == ["adelev@contoso.example"]
    card_of(await press(chat, options, "Allow a second day"))
    assert loops.loop_searches[-1]["template"]["max_days"] == 2
    replies = await press(chat, options, "Replace Megan Bowen")
    assert "Who should replace Megan Bowen in Intro?" in texts(replies)
    assert "couldn't find" in texts(await say(chat, "Nobody Known"))
    assert "could be" in texts(await say(chat, "Adam"))
    [fresh] = cards(await say(chat, "Adam Smith"))
    assert "Pick a loop" in text_of(fresh)
    assert loops.loop_searches[-1]["template"]["sessions"][0]["interviewers"] == ["adams@contoso.example"]


async def test_nothing_fits_explains_with_one_tap_fixes(chat: TestAdapter, loops: FakeLoopCalendar) -> None:
    loops.nothing_fits = True
    options = await to_options(chat)
    text = text_of(options)
    assert "No loop fits yet" in text
    assert "no hour when Adele Vance and Adam Brown" in text
    assert "unknown kind" not in text
    card_of(await press(chat, options, "Shorten it to 45 min"))
    assert loops.loop_searches[-1]["template"]["sessions"][1]["minutes"] == 45
    card_of(await press(chat, options, "Without Adam Brown"))
    assert loops.loop_searches[-1]["template"]["sessions"][1]["interviewers"] == ["adelev@contoso.example"]


async def test_taken_loop_shows_fresh_options(chat: TestAdapter, loops: FakeLoopCalendar) -> None:
    options = await to_options(chat)
    confirm = card_of(await press(chat, options, "Pick option 1"))
    loops.loop_taken_once = True
    replies = await press(chat, confirm, "Book the loop")
    assert "just taken" in texts(replies)
    assert "Pick a loop" in text_of(card_of(replies))
    loops.nothing_fits = True  # the option is gone at confirm time: fresh options, no booking
    replies = await press(chat, confirm, "Book the loop")
    assert "just taken" in texts(replies)
    assert len(loops.loops) == 0


async def test_taken_loop_shows_the_fresh_loops_the_409_carried(
    chat: TestAdapter, loops: FakeLoopCalendar
) -> None:
    options = await to_options(chat)
    confirm = card_of(await press(chat, options, "Pick option 1"))
    searched = await loops.search_loops(
        TOKEN, template=loops.loop_searches[-1]["template"],
        start=loops.loop_searches[-1]["start"] + timedelta(days=1), end=loops.loop_searches[-1]["end"],
    )  # fmt: skip
    loops.loop_taken_once, loops.loop_taken_fresh = True, searched
    before = len(loops.loop_searches)
    replies = await press(chat, confirm, "Book the loop")
    assert "just taken" in texts(replies)
    fresh = card_of(replies)
    assert "Pick a loop" in text_of(fresh)
    assert len(loops.loop_searches) == before + 1  # the confirm's own check; no search after the 409
    assert len(loops.loops) == 0


async def test_names_not_addresses_when_the_search_knows_addresses_only(
    chat: TestAdapter, loops: FakeLoopCalendar
) -> None:
    loops.people_as_addresses = True
    text = text_of(await to_options(chat))
    assert "Adele Vance" in text
    assert "adelev@contoso.example" not in text


async def test_reconnect_card_when_the_grant_is_gone(chat: TestAdapter, loops: FakeLoopCalendar) -> None:
    options = await to_options(chat)
    loops.reconnect = True
    assert heading(card_of(await press(chat, options, "Pick option 1"))) == "Please sign in again"


async def test_a_refused_template_shows_its_problems_on_the_builder(
    chat: TestAdapter, loops: FakeLoopCalendar
) -> None:
    loops.template_problems = ['Session 2 "System design": minutes must be a whole number from 5 to 480']
    options = await to_options(chat)
    assert heading(options) == "Schedule an interview loop"
    assert "minutes must be a whole number" in text_of(options)


async def test_no_loop_routes_answers_plainly(chat: TestAdapter, loops: FakeLoopCalendar) -> None:
    loops.loops_missing = True
    [builder] = cards(await say(chat, "schedule a loop"))  # no saved templates listed: the form
    replies = await press(chat, builder, "Find loop times", s0_title="Intro", s0_people="Megan")
    await say(chat, "Dana Scully")
    await say(chat, "dana@example.com")
    await say(chat, "next week")
    replies = await say(chat, "India")
    [notice] = cards(replies)
    assert "not available" in text_of(notice)
    assert "went wrong" not in text_of(notice).lower()


async def test_a_client_without_loop_methods_answers_plainly(storage: SqlStorage) -> None:
    chat = make_adapter(make_bot(storage, FakeCalendarService()))
    [builder] = cards(await say(chat, "schedule a loop"))
    await press(chat, builder, "Find loop times", s0_title="Intro", s0_people="Megan")
    for answer in ("Dana Scully", "dana@example.com", "next week"):
        await say(chat, answer)
    [notice] = cards(await say(chat, "India"))
    assert "not available" in text_of(notice)


async def test_wrong_input_twice_reasks(chat: TestAdapter) -> None:
    [builder] = cards(await say(chat, "schedule a loop"))
    await press(chat, builder, "Use")
    assert "Please type the candidate's name" in texts(await say(chat, "<b>"))
    assert "e-mail" in texts(await say(chat, "Dana Scully"))
    assert "doesn't look like an e-mail" in texts(await say(chat, "nope"))
    assert "doesn't look like an e-mail" in texts(await say(chat, "still nope"))
    assert "When?" in texts(await say(chat, "dana@example.com"))
    assert "Please say" in texts(await say(chat, "someday maybe"))
    assert "time zone" in texts(await say(chat, "next week"))
    assert "don't know that time zone" in texts(await say(chat, "Mars"))
    assert "don't know that time zone" in texts(await say(chat, "Pluto"))
    assert cards(await say(chat, "India"))


async def test_an_expired_or_unknown_flow_and_a_bad_press(chat: TestAdapter) -> None:
    replies = await say(chat, invoke({"verb": "loop_choose", "flow": "fnope", "option_id": "o1"}))
    assert "expired" in text_of(card_of(replies))
    replies = await say(chat, invoke({"verb": "loop_choose", "flow": "fnope"}))
    assert invoke_body(replies)["statusCode"] == 400


async def test_the_submit_fallback_works_too(chat: TestAdapter) -> None:
    [builder] = cards(await say(chat, "schedule a loop"))
    data = button(builder, "Use")["data"]
    replies = await say(chat, Activity(type="message", value=data))
    assert "What is the candidate's name?" in texts(replies)


def _mention(text: str, sender: str = "29:alex") -> Activity:
    return Activity(
        type="message",
        text=text,
        from_property=ChannelAccount(id=sender, name=sender),
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


async def test_a_loop_in_a_group_chat_keeps_each_managers_questions(chat: TestAdapter) -> None:
    replies = await say(
        chat, _mention("<at>OpenSlot</at> loop backend onsite for Dana Scully (dana@example.com)")
    )
    assert "When?" in texts(replies)
    chat.add_user_token(CONNECTION, "msteams", "29:megan", TOKEN)
    replies = await say(chat, _mention("<at>OpenSlot</at> next week", sender="29:megan"))
    assert "time zone" not in texts(replies)  # Megan's message is not Alex's answer
    assert "time zone" in texts(await say(chat, _mention("<at>OpenSlot</at> next week")))
    [options] = cards(await say(chat, _mention("<at>OpenSlot</at> India")))
    assert "Pick a loop" in text_of(options)


async def test_help_mentions_loops(chat: TestAdapter) -> None:
    [help_card] = cards(await say(chat, "help"))
    assert "loop" in text_of(help_card).lower()
    assert any(is_loop_verb(a["verb"]) for a in actions_of(help_card))


async def test_widen_and_more_search_again(chat: TestAdapter, loops: FakeLoopCalendar) -> None:
    loops.nothing_fits = True
    options = await to_options(chat)
    before = loops.loop_searches[-1]["end"]
    widen = {"verb": "loop_widen", "flow": button(options, "Allow a second day")["data"]["flow"], "days": 7}
    card_of(await say(chat, invoke(widen)))
    assert (loops.loop_searches[-1]["end"] - before).days == 7
    more = {"verb": "loop_more", "flow": widen["flow"], "page": 2}
    card_of(await say(chat, invoke(more)))
    assert len(loops.loop_searches) == 3
