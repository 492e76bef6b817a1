"""Issue 13 (dates, the panel, the candidate's day), through the TestAdapter and the fake service."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

from botbuilder.core.adapters import TestAdapter

from calendar_backend.contract import BlockerOut, SlotOut
from cards.slot_picker import OUTSIDE_DAY_TEXT
from tests.bot.conftest import FakeCalendarService
from tests.bot.test_schedule_dialog import actions_of, cards, invoke, invoke_body, say, texts


async def test_typed_dates_are_understood(adapter: TestAdapter) -> None:
    await say(adapter, "schedule Dana Smith (dana@example.com) with Megan, 45 min")
    prompt = texts(adapter.activity_buffer)
    assert "2026-12-01" not in prompt  # examples relative to today (Wed 25 Nov), never past
    replies = await say(adapter, "15/12")
    assert "time zone" in texts(replies)


async def test_unusable_date_says_what_was_not_understood(adapter: TestAdapter) -> None:
    await say(adapter, "schedule Dana Smith (dana@example.com) with Megan, 45 min")
    replies = await say(adapter, "whenever suits")
    assert "whenever suits" in texts(replies)
    replies = await say(adapter, "yesterday")
    assert "past" in texts(replies)
    assert "time zone" in texts(await say(adapter, "next tuesday"))


async def test_one_message_with_bad_length_and_past_date_says_both(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    replies = await say(adapter, "schedule Dana Smith (dana@example.com) with Megan, 600 min, yesterday")
    said = texts(replies)
    assert "600 minutes" in said
    assert "between 15 and 240" in said
    assert "yesterday" in said
    assert "past" in said
    assert "How long" in said
    assert "When?" in texts(await say(adapter, "45 min"))
    assert "time zone" in texts(await say(adapter, "Dec 1"))
    assert "buffer" in texts(await say(adapter, "IST"))


async def test_candidate_day_is_sent_and_outside_times_are_marked(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    inside, outside = fake.slots[0], fake.slots[1]
    fake.slots = [
        SlotOut(inside.start, inside.end),
        SlotOut(outside.start, outside.end, outside_candidate_day=True),
    ]
    await say(adapter, "schedule Dana Smith (dana@example.com) with Megan, 45 min, next week")
    assert "08:00-20:00" in texts(adapter.activity_buffer)
    assert "buffer" in texts(await say(adapter, "India 09:00-18:00"))
    [card] = cards(await say(adapter, "none"))
    assert fake.slot_requests[-1]["candidate_time_zone"] == "Asia/Kolkata"
    assert fake.slot_requests[-1]["candidate_day"] == ("09:00", "18:00")
    rows = [json.dumps(item) for item in card["body"] if item.get("type") == "ColumnSet"]
    assert len(rows) == 2
    assert OUTSIDE_DAY_TEXT not in rows[0]
    assert OUTSIDE_DAY_TEXT in rows[1]
    assert "Best times inside the candidate's 09:00\u201318:00 first" in _card_text(card)


async def test_candidate_day_must_start_before_it_ends(adapter: TestAdapter) -> None:
    await say(adapter, "schedule Dana Smith (dana@example.com) with Megan, 45 min, next week")
    assert "start before they end" in texts(await say(adapter, "India 20:00-08:00"))
    assert "buffer" in texts(await say(adapter, "India"))


def _card_text(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


async def _no_slot_card(adapter: TestAdapter, panel: str = "Megan, Adele") -> dict[str, Any]:
    await say(adapter, f"schedule Dana Smith (dana@example.com) with {panel}, 45 min, next week")
    await say(adapter, "India")
    [card] = cards(await say(adapter, "none"))
    return card


async def test_weekend_reason_by_name_offers_other_days_not_shorter(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    fake.slots = []
    fake.blockers = [BlockerOut("meganb@contoso.example", "not_working_days")]
    card = await _no_slot_card(adapter)
    text = _card_text(card)
    assert "Megan Bowen doesn't work on these days" in text
    assert "meganb@" not in text
    verbs = [a["verb"] for a in actions_of(card)]
    assert "other_days" in verbs
    assert "shorten" not in verbs  # 30 minutes cannot help on a weekend
    other = next(a for a in actions_of(card) if a["verb"] == "other_days")
    before = len(fake.slot_requests)
    body = invoke_body(await say(adapter, invoke(other["data"])))
    assert body["statusCode"] == 200
    assert len(fake.slot_requests) == before + 1


async def test_unreadable_person_can_be_dropped_from_the_slot_card(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    later = fake.slots
    fake.slots = []
    fake.blockers = [BlockerOut("meganb@contoso.example", "unreadable")]
    card = await _no_slot_card(adapter)
    assert "I couldn't read these calendars: Megan Bowen" in _card_text(card)
    drop = next(a for a in actions_of(card) if a["verb"] == "drop_person")
    assert drop["title"] == "Drop Megan Bowen"
    assert "@" not in json.dumps(drop["data"])
    fake.slots = later
    body = invoke_body(await say(adapter, invoke(drop["data"])))
    assert fake.slot_requests[-1]["interviewers"] == ["adelev@contoso.example"]
    new_card = body["value"]
    assert "Megan Bowen" not in _card_text(new_card)
    assert any(a["verb"] == "choose_slot" for a in actions_of(new_card))


async def test_the_last_interviewer_is_not_offered_for_dropping(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    fake.slots = []
    fake.blockers = [BlockerOut("meganb@contoso.example", "fully_busy")]
    card = await _no_slot_card(adapter, "Megan")
    verbs = [a["verb"] for a in actions_of(card)]
    assert "drop_person" not in verbs
    assert "shorten" in verbs  # a busy calendar may have room for 30 minutes


async def _to_panel(adapter: TestAdapter) -> None:
    await say(adapter, "schedule Dana Smith (dana@example.com)")


async def test_each_bad_name_is_said_by_name_and_fixed_in_place(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    fake.person_status = {"adelev@contoso.example": "no_mailbox"}
    await _to_panel(adapter)
    said = texts(await say(adapter, "Megan, Adele, Nobody Known, Room 1"))
    assert "Adele Vance has no mailbox" in said
    assert "\u201cNobody Known\u201d" in said
    assert "Panel: Megan Bowen; room: Room 1." in said
    assert "Not found." not in said
    assert "remove <name>" in said  # the manager is asked to fix it, not sent back to the start
    said = texts(await say(adapter, "remove room"))
    assert "Panel: Megan Bowen." in said
    said = texts(await say(adapter, "Adam Smith"))
    assert "Panel: Megan Bowen, Adam Smith." in said
    assert "How long" in said


async def test_the_same_person_three_ways_is_one_panel_member(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    await _to_panel(adapter)
    said = texts(await say(adapter, "Megan, meganb@contoso.example, Megan Bowen"))
    assert "Panel: Megan Bowen." in said
    assert "duplicate" not in said
    assert "How long" in said
    await say(adapter, "45 min")
    await say(adapter, "next week")
    await say(adapter, "London")
    await say(adapter, "none")
    assert fake.slot_requests[-1]["interviewers"] == ["meganb@contoso.example"]


async def test_unreadable_and_disallowed_people_are_named(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    fake.person_status = {"meganb@contoso.example": "unreadable", "adelev@contoso.example": "not_allowed"}
    await _to_panel(adapter)
    said = texts(await say(adapter, "Megan and Adele"))
    assert "I can't see Megan Bowen's free/busy" in said
    assert "optional Megan Bowen" in said  # the way out is offered by name
    assert "doesn't let OpenSlot read Adele Vance's calendar" in said
    assert "Panel: Megan Bowen." in said
    assert "Panel: Megan Bowen (optional)." in texts(await say(adapter, "optional Megan"))
    assert "no required interviewer" in texts(await say(adapter, "done"))
    said = texts(await say(adapter, "Adam Brown"))
    assert "Panel: Megan Bowen (optional), Adam Brown." in said
    assert "How long" in said
    await say(adapter, "45 min")
    await say(adapter, "next week")
    await say(adapter, "London")
    [card] = cards(await say(adapter, "none"))
    assert fake.slot_requests[-1]["interviewers"] == ["adamb@contoso.example"]
    choose = next(a for a in actions_of(card) if a["verb"] == "choose_slot")
    await say(adapter, invoke({**choose["data"], "verb": "confirm"}))
    assert fake.create_requests[-1]["interviewers"] == ["adamb@contoso.example"]
    assert fake.create_requests[-1]["optional"] == ["meganb@contoso.example"]


async def test_a_blocker_can_be_made_optional_from_the_slot_card(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    later = fake.slots
    fake.slots = []
    fake.blockers = [BlockerOut("meganb@contoso.example", "fully_busy")]
    card = await _no_slot_card(adapter)
    optional = next(a for a in actions_of(card) if a["verb"] == "optional_person")
    assert optional["title"] == "Make Megan Bowen optional"
    fake.slots = later
    body = invoke_body(await say(adapter, invoke(optional["data"])))
    assert fake.slot_requests[-1]["interviewers"] == ["adelev@contoso.example"]
    assert "Megan Bowen (optional)" in _card_text(body["value"])


async def test_manager_zone_comes_from_the_mailbox(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    """Defect 5: the activity says Europe/London, Outlook says Pacific: Outlook wins."""
    fake.mailbox_zone = "America/Los_Angeles"
    await say(adapter, "schedule Dana Smith (dana@example.com) with Megan, 45 min, next week")
    await say(adapter, "India")
    [card] = cards(await say(adapter, "none"))
    text = _card_text(card)
    assert "PST" in text
    assert "GMT" not in text
    assert "IST" in text


async def test_my_interviews_show_names_the_candidate_zone_and_no_candidate_panelist(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    fake.mailbox_zone = "America/Los_Angeles"
    await say(adapter, "schedule Dana Smith (dana@example.com) with Megan and Adam Brown, 45 min, next week")
    await say(adapter, "India")
    [card] = cards(await say(adapter, "none"))
    choose = next(a for a in actions_of(card) if a["verb"] == "choose_slot")
    await say(adapter, invoke({**choose["data"], "verb": "confirm"}))
    booked = fake.interviews["iv1"]
    fake.interviews["iv1"] = replace(booked, candidate_email="dana@example.com")
    # An interview no flow of this conversation knows: names come from the directory.
    fake.interviews["iv9"] = replace(
        booked,
        id="iv9",
        attendees=("adelev@contoso.example", "sam@example.org"),
        candidate_email="sam@example.org",
        candidate_name="Sam Lee",
    )
    [listing] = cards(await say(adapter, "my interviews"))
    text = _card_text(listing)
    assert "Megan Bowen" in text
    assert "Adam Brown" in text
    assert "Adele Vance" in text
    assert "meganb@" not in text
    assert "adelev@" not in text
    assert "dana@example.com" not in text
    assert "sam@example.org" not in text
    assert "IST" in text  # Dana's time in Dana's zone
    assert "PST" in text


async def test_my_interviews_say_what_outlook_did(adapter: TestAdapter, fake: FakeCalendarService) -> None:
    """Defect 11: no phantom interviews: deleted or moved in Outlook is said on the card."""
    await say(adapter, "schedule Dana Smith (dana@example.com) with Megan, 45 min, next week")
    await say(adapter, "London")
    [card] = cards(await say(adapter, "none"))
    choose = next(a for a in actions_of(card) if a["verb"] == "choose_slot")
    await say(adapter, invoke({**choose["data"], "verb": "confirm"}))
    booked = fake.interviews["iv1"]
    fake.interviews["iv1"] = replace(booked, outlook="deleted")
    fake.interviews["iv2"] = replace(
        booked,
        id="iv2",
        outlook="moved",
        outlook_start=booked.start + timedelta(hours=2),
        outlook_end=booked.end + timedelta(hours=2),
    )
    [listing] = cards(await say(adapter, "my interviews"))
    text = _card_text(listing)
    assert "deleted in Outlook" in text
    assert "Moved in Outlook to" in text
    ids = [a["data"].get("interview_id") for a in actions_of(listing)]
    assert "iv1" not in ids  # nothing to reschedule or cancel: it is gone
    assert "iv2" in ids


async def test_the_last_required_interviewer_is_never_offered_for_dropping(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    fake.person_status = {"meganb@contoso.example": "unreadable"}
    await _to_panel(adapter)
    await say(adapter, "Megan, Adele")
    await say(adapter, "optional Megan")
    await say(adapter, "done")
    await say(adapter, "45 min")
    await say(adapter, "next week")
    await say(adapter, "London")
    fake.slots = []
    fake.blockers = [BlockerOut("adelev@contoso.example", "fully_busy")]
    [card] = cards(await say(adapter, "none"))
    verbs = [a["verb"] for a in actions_of(card)]
    assert "drop_person" not in verbs
    assert "optional_person" not in verbs
    assert "Adele Vance is busy for the whole window." in _card_text(card)


async def test_no_time_inside_the_candidates_day_is_said(
    adapter: TestAdapter, fake: FakeCalendarService
) -> None:
    fake.slots = [SlotOut(s.start, s.end, outside_candidate_day=True) for s in fake.slots]
    await say(adapter, "schedule Dana Smith (dana@example.com) with Megan, 45 min, next week")
    await say(adapter, "India")
    [card] = cards(await say(adapter, "none"))
    assert "No time fits inside the candidate's 08:00\u201320:00" in _card_text(card)
