"""Issue 13 part 1: the conversation never crashes or dead-ends (TestAdapter, real OpenSlotBot)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from botbuilder.core import TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount, Entity

from dialogs.sql_storage import SqlStorage
from dialogs.teams_bot import strip_bot_mention
from dialogs.turn_log import log_turn_failure
from tests.bot.conftest import CONNECTION, TOKEN, FakeCalendarService, make_adapter, make_bot
from tests.bot.test_schedule_dialog import (
    actions_of,
    cards,
    full_flow,
    invoke,
    invoke_body,
    say,
    texts,
)


@pytest.mark.parametrize("verb", ["schedule", "my_interviews", "help"])
async def test_command_buttons_answer_invoke_200(adapter: TestAdapter, verb: str) -> None:
    replies = await say(adapter, invoke({"verb": verb, "flow": "f0123456789abcdef"}))
    body = invoke_body(replies)
    assert body["statusCode"] == 200, body
    assert "went wrong" not in texts(replies).lower()


async def test_schedule_button_starts_the_flow_and_the_next_answer_continues_it(adapter: TestAdapter) -> None:
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


async def test_failed_turn_logs_frames_and_context_without_pii(
    storage: SqlStorage, fake: FakeCalendarService, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "eyJsecret-token-dana@example.com"

    async def broken(token: str) -> list[object]:
        raise RuntimeError(secret)

    fake.list_interviews = broken  # type: ignore[assignment,method-assign]
    adapter = make_adapter(make_bot(storage, fake))
    logger = logging.getLogger("openslot.bot")

    async def on_error(context: TurnContext, error: Exception) -> None:
        log_turn_failure(logger, context, error)

    adapter.on_turn_error = on_error
    with caplog.at_level(logging.ERROR, "openslot.bot"):
        await say(adapter, "my interviews")
    [record] = [r for r in caplog.records if r.name == "openslot.bot"]
    text = record.getMessage()
    assert "turn failed: RuntimeError" in text
    assert "activity=message" in text
    assert "channel=msteams" in text
    assert "dialogs/main_dialog.py" in text
    assert "_my_interviews" in text
    for private in (secret, "dana", "a:conv1", "29:alex", "Alex", TOKEN, "my interviews"):
        assert private not in text


def _heading(body: dict[str, Any]) -> str:
    return str(body["value"]["body"][0]["text"])


async def test_revoking_a_link_is_reported_as_done_not_as_an_error(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    card = await full_flow(adapter)
    send = next(a for a in actions_of(card) if a["verb"] == "send_to_candidate")
    link = invoke_body(await say(adapter, invoke(send["data"])))["value"]
    revoke = next(a for a in actions_of(link) if a["verb"] == "revoke_offer")
    body = invoke_body(await say(adapter, invoke(revoke["data"])))
    assert body["statusCode"] == 200
    assert "went wrong" not in str(body["value"]).lower()
    assert "revoked" in _heading(body).lower()
    assert fake.calls[-1] == "revoke_offer"


async def _booked_listing(adapter: TestAdapter) -> dict[str, Any]:
    card = await full_flow(adapter)
    choose = next(a for a in actions_of(card) if a["verb"] == "choose_slot")
    await say(adapter, invoke({**choose["data"], "verb": "confirm"}))
    [listing] = cards(await say(adapter, "my interviews"))
    return listing


async def test_cancel_in_my_interviews_asks_first_and_keep_it_cancels_nothing(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    listing = await _booked_listing(adapter)
    cancel = next(a for a in actions_of(listing) if a["title"] == "Cancel")
    question = invoke_body(await say(adapter, invoke(cancel["data"])))
    assert fake.interviews["iv1"].status == "confirmed"  # nothing cancelled yet
    assert "Cancel this interview?" in _heading(question)
    assert "Dana Smith" in str(question["value"])
    keep = next(a for a in actions_of(question["value"]) if a["title"] == "Keep it")
    kept = invoke_body(await say(adapter, invoke(keep["data"])))
    assert _heading(kept) == "My interviews"
    assert fake.interviews["iv1"].status == "confirmed"

    yes = next(a for a in actions_of(question["value"]) if a["title"] == "Yes, cancel it")
    assert yes["style"] == "destructive"
    done = invoke_body(await say(adapter, invoke(yes["data"])))
    assert _heading(done) == "Interview cancelled"
    assert fake.interviews["iv1"].status == "cancelled"


async def test_cancel_question_and_cancelled_card_read_like_my_interviews(adapter: TestAdapter) -> None:
    """Names, not addresses, and the candidate's time in their zone (India), as on the list."""
    listing = await _booked_listing(adapter)
    assert "IST" in str(listing)
    cancel = next(a for a in actions_of(listing) if a["title"] == "Cancel")
    question = invoke_body(await say(adapter, invoke(cancel["data"])))["value"]
    yes = next(a for a in actions_of(question) if a["title"] == "Yes, cancel it")
    done = invoke_body(await say(adapter, invoke(yes["data"])))["value"]
    for card in (question, done):
        assert "@contoso.example" not in str(card), card
        assert "Megan Bowen" in str(card), card
        assert "IST" in str(card), card


@pytest.mark.parametrize("command", ["schedule", "restart", "start over", "Start over."])
async def test_restart_commands_at_a_prompt_start_a_fresh_flow(adapter: TestAdapter, command: str) -> None:
    await say(adapter, "schedule")
    assert "e-mail" in texts(await say(adapter, "Dana Smith"))
    replies = await say(adapter, command)
    assert "What is the candidate's name?" in texts(replies)
    assert "e-mail" not in texts(replies)
    assert "What is Ola's e-mail?" in texts(await say(adapter, "Ola"))


async def test_global_commands_interrupt_any_prompt(adapter: TestAdapter) -> None:
    await say(adapter, "schedule")
    listing = cards(await say(adapter, "my interviews"))
    assert listing[0]["body"][0]["text"] == "My interviews"
    replies = await say(adapter, "hello")  # the name prompt is gone
    assert "e-mail" not in texts(replies)
    await say(adapter, "schedule Dana Smith (dana@example.com) with Megan, 45 min, next week")
    replies = await say(adapter, "schedule")
    assert "What is the candidate's name?" in texts(replies)
    assert "Cancelled" in texts(await say(adapter, "cancel"))


async def test_a_fresh_welcome_drops_the_waiting_question(adapter: TestAdapter) -> None:
    await say(adapter, "schedule")
    await say(adapter, "Dana Smith")
    member = ChannelAccount(id="29:alex", name="Alex Wilber")
    member.additional_properties = {"userRole": "user"}  # as Teams sends it: no roster lookup
    reload = Activity(type="conversationUpdate", channel_data={}, members_added=[member])
    assert cards(await say(adapter, reload))  # the welcome card
    replies = await say(adapter, "dana@example.com")
    assert "Who should interview" not in texts(replies)
    assert cards(replies)  # not understood as an answer: the help card


async def _slot_card(adapter: TestAdapter) -> dict[str, Any]:
    card = await full_flow(adapter)
    assert "45 min" in str(card)
    return card


@pytest.mark.parametrize(
    ("typed", "expect"),
    [
        ("make it 60 minutes", "1 h with"),
        ("60 min", "1 h with"),
        ("1 hour", "1 h with"),
        ("make it 30 minutes", "30 min with"),
    ],
)
async def test_typed_duration_edit_searches_again(
    adapter: TestAdapter, fake: FakeCalendarService, typed: str, expect: str
) -> None:
    await _slot_card(adapter)
    calls = len(fake.calls)
    [card] = cards(await say(adapter, typed))
    assert expect in str(card)
    assert "find_slots" in fake.calls[calls:]
    assert "Pick a time" in str(card)


async def test_typed_window_zone_and_panel_edits(adapter: TestAdapter) -> None:
    await _slot_card(adapter)
    [card] = cards(await say(adapter, "candidate is in New York"))
    assert "EST" in str(card)
    assert "IST" not in str(card)
    [card] = cards(await say(adapter, "change the panel to Adele"))
    assert "with Adele Vance" in str(card), card
    assert "EST" in str(card)  # the earlier edit is kept
    [card] = cards(await say(adapter, "make it tomorrow"))  # the fake has no slot tomorrow
    assert "No time fits yet" in str(card)


@pytest.mark.parametrize(
    ("title", "question", "answer", "check"),
    [
        ("Change length", "How long", "30 min", "30 min with"),
        ("Change dates", "When?", "next week", "Pick a time"),
        ("Candidate's zone", "time zone", "New York", "EST"),
        ("Change panel", "Who should interview", "Adele", "with Adele Vance"),
    ],
)
async def test_edit_buttons_ask_one_question_and_search_again(
    adapter: TestAdapter, title: str, question: str, answer: str, check: str
) -> None:
    card = await _slot_card(adapter)
    button = next(a for a in actions_of(card) if a["title"] == title)
    replies = await say(adapter, invoke(button["data"]))
    assert invoke_body(replies)["statusCode"] == 200
    assert question in texts(replies)
    replies = await say(adapter, answer)
    [new_card] = [c for c in cards(replies) if "Interview:" in str(c)]
    assert check in str(new_card)
    for other in ("candidate's name", "e-mail?", "buffer"):
        assert other not in texts(replies)


async def test_edit_button_on_a_booked_flow_says_so(adapter: TestAdapter) -> None:
    card = await _slot_card(adapter)
    choose = next(a for a in actions_of(card) if a["verb"] == "choose_slot")
    await say(adapter, invoke({**choose["data"], "verb": "confirm"}))
    button = next(a for a in actions_of(card) if a["title"] == "Change length")
    replies = await say(adapter, invoke(button["data"]))
    assert invoke_body(replies)["statusCode"] == 200
    assert "finished" in texts(replies)


def _mention(text: str, *, sender: str = "29:alex", kind: str = "groupChat") -> Activity:
    return Activity(
        type="message",
        text=text,
        from_property=ChannelAccount(id=sender, name=sender),
        conversation=ConversationAccount(id="19:group@thread.v2", conversation_type=kind),
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


@pytest.mark.parametrize("kind", ["groupChat", "channel"])
async def test_mention_is_stripped_in_group_chats_and_channels(adapter: TestAdapter, kind: str) -> None:
    replies = await say(adapter, _mention("<at>OpenSlot</at> schedule", kind=kind))
    assert "What is the candidate's name?" in texts(replies)
    replies = await say(adapter, _mention("<at>OpenSlot</at> Dana Smith", kind=kind))
    assert "What is Dana Smith's e-mail?" in texts(replies)


def test_strip_bot_mention_keeps_other_mentions() -> None:
    activity = _mention("<at>OpenSlot</at> schedule with <at>Megan Bowen</at>")
    activity.recipient = ChannelAccount(id="28:bot", name="OpenSlot")
    assert strip_bot_mention(activity) == "schedule with <at>Megan Bowen</at>"
    no_entity = Activity(
        type="message", text="<at>OpenSlot</at>  help", recipient=ChannelAccount(id="28:bot", name="OpenSlot")
    )
    assert strip_bot_mention(no_entity) == "help"


async def test_each_manager_in_a_group_chat_has_their_own_questions(adapter: TestAdapter) -> None:
    await say(adapter, _mention("<at>OpenSlot</at> schedule"))
    adapter.add_user_token(CONNECTION, "msteams", "29:megan", TOKEN)
    replies = await say(adapter, _mention("<at>OpenSlot</at> Ola Nordmann", sender="29:megan"))
    assert "e-mail" not in texts(replies)  # Megan's message is not Alex's answer
    replies = await say(adapter, _mention("<at>OpenSlot</at> Dana Smith"))
    assert "What is Dana Smith's e-mail?" in texts(replies)


async def test_a_first_welcome_with_no_state_yet_does_not_fail(adapter: TestAdapter) -> None:
    member = ChannelAccount(id="29:alex", name="Alex Wilber")
    member.additional_properties = {"userRole": "user"}
    replies = await say(adapter, Activity(type="conversationUpdate", channel_data={}, members_added=[member]))
    assert cards(replies)
    assert "went wrong" not in texts(replies)


async def test_sign_out_is_not_a_dead_end(adapter: TestAdapter) -> None:
    assert "You are signed out" in texts(await say(adapter, "sign out"))
    replies = await say(adapter, "schedule")
    assert "Please sign in" in texts(replies)
    assert "code" in texts(await say(adapter, "hello"))  # the retry says how to finish
    adapter.add_user_token(CONNECTION, "msteams", "29:alex", TOKEN, magic_code="123456")
    replies = await say(adapter, "123456")  # the code the sign-in page showed
    assert "What is the candidate's name?" in texts(replies)
    assert "What is Dana Smith's e-mail?" in texts(await say(adapter, "Dana Smith"))


async def test_sign_in_again_after_sign_out_by_typing_sign_in(adapter: TestAdapter) -> None:
    await say(adapter, "sign out")
    assert "Please sign in" in texts(await say(adapter, "sign in"))
    adapter.add_user_token(CONNECTION, "msteams", "29:alex", TOKEN, magic_code="654321")
    assert "You are signed in" in texts(await say(adapter, "654321"))
    assert "What is the candidate's name?" in texts(await say(adapter, "schedule"))


async def test_my_interviews_in_a_group_chat_shows_the_list_to_the_presser_only(adapter: TestAdapter) -> None:
    await _booked_listing(adapter)  # Alex booked one with Dana Smith (personal chat)
    replies = await say(adapter, _mention("<at>OpenSlot</at> my interviews"))
    [public] = cards(replies)
    assert "Dana Smith" not in str(public)  # visible to the whole chat: no details
    button = next(a for a in actions_of(public) if a["title"] == "Show my interviews")
    press = invoke({**button["data"]})
    press.conversation = ConversationAccount(id="19:group@thread.v2", conversation_type="groupChat")
    replies = await say(adapter, press)
    assert [r.type for r in replies] == ["invokeResponse"]  # nothing posted to the chat
    listing = invoke_body(replies)["value"]
    assert _heading({"value": listing}) == "My interviews"
    assert "Dana Smith" in str(listing)


async def test_a_press_that_fails_still_gets_an_answer(
    storage: SqlStorage, fake: FakeCalendarService, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(token: str) -> list[object]:
        raise RuntimeError("boom")

    fake.list_interviews = broken  # type: ignore[assignment,method-assign]
    adapter = make_adapter(make_bot(storage, fake))
    press = invoke({"verb": "keep_interview", "flow": "f0123456789abcdef", "interview_id": "iv1"})
    with caplog.at_level(logging.ERROR, "openslot.bot"):
        body = invoke_body(await say(adapter, press))
    assert body["statusCode"] == 200
    assert _heading(body) == "Something went wrong"
    assert any("turn failed: RuntimeError" in r.getMessage() for r in caplog.records)
