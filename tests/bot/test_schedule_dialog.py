"""The conversation, driven through botbuilder's TestAdapter with the FakeCalendarService."""

from __future__ import annotations

from typing import Any

from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity

from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import FakeCalendarService, make_adapter, make_bot


async def say(adapter: TestAdapter, text: str | Activity) -> list[Activity]:
    adapter.activity_buffer.clear()
    await adapter.receive_activity(text)
    return list(adapter.activity_buffer)


def texts(replies: list[Activity]) -> str:
    return " | ".join(r.text or "" for r in replies)


def cards(replies: list[Activity]) -> list[dict[str, Any]]:
    return [
        a.content
        for r in replies
        for a in (r.attachments or [])
        if a.content_type == "application/vnd.microsoft.card.adaptive"
    ]


def actions_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute":
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


def invoke(data: dict[str, Any]) -> Activity:
    return Activity(
        type="invoke",
        name="adaptiveCard/action",
        value={"action": {"type": "Action.Execute", "verb": data["verb"], "data": data}, "trigger": "manual"},
    )


def invoke_body(replies: list[Activity]) -> dict[str, Any]:
    responses = [r for r in replies if r.type == "invokeResponse"]
    assert len(responses) == 1
    body = responses[0].value.body
    return body if isinstance(body, dict) else body.serialize()


async def full_flow(adapter: TestAdapter) -> dict[str, Any]:
    """Walk the whole conversation step by step; return the slot picker card."""
    assert "candidate's name" in texts(await say(adapter, "schedule"))
    assert "e-mail" in texts(await say(adapter, "Dana Smith"))
    assert "Who should interview" in texts(await say(adapter, "dana@example.com"))
    assert "How long" in texts(await say(adapter, "Megan, adelev@contoso.example"))
    assert "When?" in texts(await say(adapter, "45 min"))
    assert "time zone" in texts(await say(adapter, "next week"))
    assert "buffer" in texts(await say(adapter, "India"))
    replies = await say(adapter, "none")
    [card] = cards(replies)
    return card


async def test_full_flow_shows_slots_best_first(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    card = await full_flow(adapter)
    chooses = [a for a in actions_of(card) if a["verb"] == "choose_slot"]
    assert len(chooses) == 3
    assert chooses[0]["data"]["slot_id"].startswith("s")
    assert "find_slots" in fake.calls
    assert "resolve_people" in fake.calls


async def test_bad_input_reasks_each_step(adapter: TestAdapter) -> None:
    await say(adapter, "schedule")
    await say(adapter, "Dana")
    assert "doesn't look like an e-mail" in texts(await say(adapter, "not-an-email"))
    await say(adapter, "dana@example.com")
    assert "couldn't find" in texts(await say(adapter, "Nobody Known"))
    assert "How long" in texts(await say(adapter, "Megan"))
    assert "between 15 and 240" in texts(await say(adapter, "5 min"))
    assert "Please give a length" in texts(await say(adapter, "banana"))
    await say(adapter, "1 hour")
    assert "next week" in texts(await say(adapter, "someday maybe"))
    await say(adapter, "tomorrow")
    assert "don't know that time zone" in texts(await say(adapter, "Mars"))
    await say(adapter, "London")
    assert "0 to 120" in texts(await say(adapter, "500"))
    assert cards(await say(adapter, "10"))


async def test_ambiguous_person_offers_choice(adapter: TestAdapter) -> None:
    replies = await say(adapter, "schedule Dana (dana@example.com) with Adam, 30 min, next week")
    assert 'Which "Adam"' in texts(replies)
    assert "time zone" in texts(await say(adapter, "1"))


async def test_cancel_and_help_mid_flow(adapter: TestAdapter) -> None:
    await say(adapter, "schedule")
    replies = await say(adapter, "help")
    assert cards(replies)[0]["body"][0]["text"] == "How OpenSlot works"
    assert "e-mail" in texts(await say(adapter, "Dana"))
    assert "Cancelled" in texts(await say(adapter, "cancel"))
    assert cards(await say(adapter, "whatever"))  # back to the help card, not the dialog


async def test_one_message_prefill_asks_only_the_rest(adapter: TestAdapter) -> None:
    replies = await say(
        adapter, "schedule Dana Smith (dana@example.com) with Megan and Adele, 45 min, next week"
    )
    assert "time zone" in texts(replies)
    assert "buffer" in texts(await say(adapter, "IST"))
    assert cards(await say(adapter, "none"))


async def test_choose_confirm_books_once_and_updates_card(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    card = await full_flow(adapter)
    choose = next(a for a in actions_of(card) if a["verb"] == "choose_slot")
    confirmation = invoke_body(await say(adapter, invoke(choose["data"])))
    assert confirmation["type"] == "application/vnd.microsoft.card.adaptive"
    confirm = next(a for a in actions_of(confirmation["value"]) if a["verb"] == "confirm")
    booked = invoke_body(await say(adapter, invoke(confirm["data"])))
    assert booked["value"]["body"][0]["text"] == "Interview booked"
    assert actions_of(booked["value"]) == []  # a stale copy cannot book again
    again = invoke_body(await say(adapter, invoke(confirm["data"])))
    assert again["value"]["body"][0]["text"] == "Interview booked"
    assert fake.calls.count("create_interview") == 1
    assert len(fake.interviews) == 1


async def test_slot_taken_shows_fresh_slots(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    card = await full_flow(adapter)
    fake.taken_once = True
    choose = next(a for a in actions_of(card) if a["verb"] == "choose_slot")
    replies = await say(adapter, invoke({**choose["data"], "verb": "confirm"}))
    assert "just taken" in texts(replies)
    body = invoke_body(replies)["value"]
    assert [a["verb"] for a in actions_of(body)].count("choose_slot") == 1
    assert not fake.interviews


async def test_reconnect_card_when_grant_is_gone(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    card = await full_flow(adapter)
    fake.reconnect = True
    choose = next(a for a in actions_of(card) if a["verb"] == "choose_slot")
    body = invoke_body(await say(adapter, invoke({**choose["data"], "verb": "confirm"})))
    assert body["value"]["body"][0]["text"] == "Please sign in again"


async def test_no_slots_names_blockers_and_widen(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    from calendar_backend.contract import BlockerOut

    fake.slots = []
    fake.blockers = [BlockerOut("meganb@contoso.example", "unreadable")]
    card = await full_flow(adapter)
    assert "Megan Bowen" in str(card)
    widen = next(a for a in actions_of(card) if a["verb"] == "widen_days")
    body = invoke_body(await say(adapter, invoke(widen["data"])))
    assert body["value"]["body"][2]["text"] == "No time fits yet"


async def test_my_interviews_and_cancel(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    card = await full_flow(adapter)
    choose = next(a for a in actions_of(card) if a["verb"] == "choose_slot")
    await say(adapter, invoke({**choose["data"], "verb": "confirm"}))
    [listing] = cards(await say(adapter, "my interviews"))
    cancel = next(a for a in actions_of(listing) if a["verb"] == "cancel_interview")
    question = invoke_body(await say(adapter, invoke(cancel["data"])))["value"]
    yes = next(a for a in actions_of(question) if a["verb"] == "cancel_interview_confirmed")
    body = invoke_body(await say(adapter, invoke(yes["data"])))
    assert body["value"]["body"][0]["text"] == "Interview cancelled"
    assert fake.interviews["iv1"].status == "cancelled"


async def test_send_to_candidate_not_available(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    card = await full_flow(adapter)
    send = next(a for a in actions_of(card) if a["verb"] == "send_to_candidate")
    fake.offers_available = False
    body = invoke_body(await say(adapter, invoke(send["data"])))
    assert "not available yet" in str(body["value"])
    fake.offers_available = True
    body = invoke_body(await say(adapter, invoke(send["data"])))
    assert "https://bot.example/c/abc" in str(body["value"])


async def test_invalid_card_action_is_400(adapter: TestAdapter) -> None:
    body = invoke_body(await say(adapter, invoke({"verb": "confirm", "flow": "x"})))
    assert body["statusCode"] == 400


async def test_restart_resumes_mid_dialog(storage: SqlStorage, fake: FakeCalendarService) -> None:
    first = make_adapter(make_bot(storage, fake))
    await say(first, "schedule")
    await say(first, "Dana Smith")
    second = make_adapter(make_bot(storage, fake))  # a new process on the same database
    assert "Who should interview" in texts(await say(second, "dana@example.com"))


async def test_disconnect_calls_service(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    assert "Disconnected" in texts(await say(adapter, "disconnect"))
    assert fake.disconnected
