"""Booked loops on "My interviews": the list, cancel, move (whole loop or one session), 409, twice-
pressed buttons and someone else in a group chat (dialogs/loop_manage.py, cards/loop_manage.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount

from calendar_backend import errors
from calendar_backend.contract import InterviewOut, LoopOut, LoopSessionOut
from cards.loop_actions import LoopAction, LoopVerb, parse_loop_action
from dialogs.loop_manage import decode_move, encode_move
from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import CONNECTION, NOW, TOKEN, make_adapter, make_bot
from tests.bot.loop_fakes import FakeLoopCalendar
from tests.bot.test_loop_dialog import button, card_of, heading, press, text_of, to_options
from tests.bot.test_schedule_dialog import actions_of, cards, invoke, say

BOB_TOKEN = "user-token-for-bob"


@dataclass
class ManagedLoops(FakeLoopCalendar):
    """The loop fake with a second user (Bob, who organised nothing) and a move taken once."""

    move_taken_once: bool = False
    moves: int = 0
    cancels: int = 0

    def _check(self, token: str, op: str) -> None:
        super()._check(TOKEN if token == BOB_TOKEN else token, op)

    async def list_loops(self, token: str) -> list[LoopOut]:
        mine = await super().list_loops(token)
        return [] if token == BOB_TOKEN else mine

    async def cancel_loop(self, token: str, loop_id: str) -> Any:
        if token == BOB_TOKEN or loop_id not in self.loops:
            raise errors.NotFoundError()
        self.cancels += self.loops[loop_id].status != "cancelled"
        return await super().cancel_loop(token, loop_id)

    async def reschedule_loop(self, token: str, loop_id: str, sessions: list[LoopSessionOut]) -> Any:
        if token == BOB_TOKEN:
            raise errors.NotFoundError()
        if self.move_taken_once:
            self.move_taken_once = False
            raise errors.SlotTakenError()
        self.moves += 1
        old = self.loops[loop_id]
        by_index = {s.index: s for s in old.sessions}
        for s in sessions:
            by_index[s.index] = type(by_index[s.index])(
                s.index, s.title, s.start, s.end, by_index[s.index].interviewers, s.room, "iv", "ev"
            )
        return await super().reschedule_loop(token, loop_id, [by_index[i] for i in sorted(by_index)])


@pytest.fixture
def loops() -> ManagedLoops:
    return ManagedLoops()


@pytest.fixture
def chat(storage: SqlStorage, loops: ManagedLoops) -> TestAdapter:
    adapter = make_adapter(make_bot(storage, loops))
    adapter.add_user_token(CONNECTION, "msteams", "29:bob", BOB_TOKEN)
    return adapter


async def booked_listing(chat: TestAdapter) -> dict[str, Any]:
    """Book the "Backend onsite" loop for Dana Scully (India), then "my interviews"."""
    options = await to_options(chat)
    confirm = card_of(await press(chat, options, "Pick option 1"))
    assert heading(card_of(await press(chat, confirm, "Book the loop"))) == "Interview loop booked"
    [listing] = cards(await say(chat, "my interviews"))
    return listing


def titles(card: dict[str, Any]) -> list[str]:
    return [a["title"] for a in actions_of(card)]


async def test_my_interviews_lists_a_loop_once_with_both_zones(
    chat: TestAdapter, loops: ManagedLoops
) -> None:
    loops.interviews["iv0"] = InterviewOut(  # the loop's first session, as list_interviews has it
        "iv0", "confirmed", NOW + timedelta(days=6, hours=1), NOW + timedelta(days=6, hours=1, minutes=30),
        "Intro: Dana Scully", ("meganb@contoso.example", "dana@example.com"), "Dana Scully", None, "ev0",
        candidate_email="dana@example.com",
    )  # fmt: skip
    listing = await booked_listing(chat)
    text = text_of(listing)
    assert heading(listing) == "My interviews"
    assert "Interview loops" in text
    assert "Interview loop: Dana Scully" in text
    assert "Backend onsite" in text
    assert "2 sessions" in text
    assert "10:00\u201311:30 GMT" in text  # first start to last end, the manager's zone
    assert "15:30\u201317:00 IST" in text  # and the candidate's
    assert titles(listing) == ["Sessions", "Move loop", "Cancel loop"]  # no single "Reschedule" for iv0
    assert "contoso.example" not in str(listing)


async def test_loops_are_listed_newest_booked_first(chat: TestAdapter, loops: ManagedLoops) -> None:
    await booked_listing(chat)
    first = loops.loops["lp1"]
    later = first.sessions[0].start - timedelta(days=1)
    loops.loops["lp2"] = type(first)(
        "lp2", "confirmed", "Data loop", "Fox Mulder",
        tuple(type(s)(s.index, s.title, later, later + (s.end - s.start), s.interviewers)
              for s in first.sessions),
        None,
    )  # fmt: skip
    [listing] = cards(await say(chat, "my interviews"))
    text = text_of(listing)
    assert text.index("Fox Mulder") < text.index("Dana Scully")


async def test_cancel_the_loop_asks_then_cancels_once(chat: TestAdapter, loops: ManagedLoops) -> None:
    listing = await booked_listing(chat)
    question = card_of(await press(chat, listing, "Cancel loop"))
    assert heading(question) == "Cancel the whole loop?"
    assert "The candidate and 3 interviewers get a cancellation" in text_of(question)
    kept = card_of(await press(chat, question, "Keep it"))
    assert heading(kept) == "Interview loop"
    assert loops.cancels == 0
    done = card_of(await press(chat, question, "Yes, cancel the loop"))
    assert heading(done) == "Interview loop cancelled"
    assert loops.loops["lp1"].status == "cancelled"
    again = card_of(await press(chat, question, "Yes, cancel the loop"))  # a second tap
    assert heading(again) == "Interview loop cancelled"
    assert "Already done" in text_of(again)
    assert loops.cancels == 1
    [after] = cards(await say(chat, "my interviews"))
    assert "Dana Scully" not in text_of(after)


async def test_move_the_whole_loop_and_a_second_tap_is_already_done(
    chat: TestAdapter, loops: ManagedLoops
) -> None:
    listing = await booked_listing(chat)
    options = card_of(await press(chat, listing, "Move loop"))
    assert heading(options) == "Move the loop"
    assert [t for t in titles(options) if t.startswith("Move to")] == ["Move to option 1", "Move to option 2"]
    search = loops.loop_searches[-1]
    assert search["template"]["sessions"][1]["room"] == {"any_of": ["room1@contoso.example"]}
    assert search["candidate_time_zone"] == "Asia/Kolkata"
    moved = card_of(await press(chat, options, "Move to option 1"))
    assert heading(moved) == "Interview loop moved"
    assert loops.loops["lp1"].sessions[0].start == NOW + timedelta(days=6, hours=3)
    assert loops.loops["lp1"].sessions[1].room == "room1@contoso.example"
    again = card_of(await press(chat, options, "Move to option 1"))
    assert "Already done" in text_of(again)
    assert loops.moves == 1


async def test_move_one_session_keeps_the_others(chat: TestAdapter, loops: ManagedLoops) -> None:
    listing = await booked_listing(chat)
    detail = card_of(await press(chat, listing, "Sessions"))
    assert heading(detail) == "Interview loop"
    assert "Megan Bowen" in text_of(detail)
    assert {"Move Intro", "Cancel Intro", "Move System design", "Cancel System design"} <= set(titles(detail))
    options = card_of(await press(chat, detail, "Move Intro"))
    assert heading(options) == "Move Intro"
    # 10:00 is where it is, 11:00 would overlap System design (10:30-11:30): only 13:00 is offered
    assert "13:00\u201313:30 GMT" in text_of(options)
    assert [t for t in titles(options) if t.startswith("Move to")] == ["Move to option 1"]
    moved = card_of(await press(chat, options, "Move to option 1"))
    assert heading(moved) == "Interview loop moved"
    intro, design = loops.loops["lp1"].sessions
    assert intro.start == NOW + timedelta(days=6, hours=4)
    assert design.start == NOW + timedelta(days=6, hours=1, minutes=30)


async def test_a_session_is_not_offered_a_time_that_leaves_a_long_break(
    chat: TestAdapter, loops: ManagedLoops
) -> None:
    loops.slots = [  # 10:00 and 11:00 are taken by the loop; 16:00 would leave a 4.5 h break
        type(s)(NOW + timedelta(days=6, hours=h), NOW + timedelta(days=6, hours=h, minutes=30))
        for s, h in zip(loops.slots * 2, (4, 7), strict=False)
    ]
    detail = card_of(await press(chat, await booked_listing(chat), "Sessions"))
    options = card_of(await press(chat, detail, "Move Intro"))
    assert "13:00\u201313:30 GMT" in text_of(options)
    assert "16:00\u201316:30 GMT" not in text_of(options)
    assert [t for t in titles(options) if t.startswith("Move to")] == ["Move to option 1"]


async def test_cancel_one_session_explains_a_loop_cancels_whole(
    chat: TestAdapter, loops: ManagedLoops
) -> None:
    detail = card_of(await press(chat, await booked_listing(chat), "Sessions"))
    answer = card_of(await press(chat, detail, "Cancel Intro"))
    assert heading(answer) == "Cancel Intro?"
    assert "cancelled as a whole" in text_of(answer)
    assert titles(answer) == ["Move Intro", "Cancel loop", "Keep it"]
    assert loops.cancels == 0


async def test_a_taken_move_shows_fresh_options(chat: TestAdapter, loops: ManagedLoops) -> None:
    options = card_of(await press(chat, await booked_listing(chat), "Move loop"))
    loops.move_taken_once = True
    searches = len(loops.loop_searches)
    fresh = card_of(await press(chat, options, "Move to option 2"))
    assert heading(fresh) == "Move the loop"
    assert "just taken" in text_of(fresh)
    assert len(loops.loop_searches) == searches + 1
    assert loops.loops["lp1"].sessions[0].start == NOW + timedelta(days=6, hours=1)  # not moved
    moved = card_of(await press(chat, fresh, "Move to option 1"))
    assert heading(moved) == "Interview loop moved"


async def test_someone_else_in_a_group_chat_is_refused(chat: TestAdapter, loops: ManagedLoops) -> None:
    listing = await booked_listing(chat)
    question = card_of(await press(chat, listing, "Cancel loop"))
    for card, title in ((listing, "Move loop"), (question, "Yes, cancel the loop"), (listing, "Sessions")):
        activity: Activity = invoke(dict(button(card, title)["data"]))
        activity.from_property = ChannelAccount(id="29:bob", name="Bob")
        activity.conversation = ConversationAccount(id="19:group@thread.v2", conversation_type="groupChat")
        refused = card_of(await say(chat, activity))
        assert "Only the organizer of this loop can change it" in text_of(refused)
    assert loops.loops["lp1"].status == "confirmed"
    assert loops.cancels == 0
    assert loops.moves == 0


async def test_a_press_on_a_loop_that_is_gone_says_so(chat: TestAdapter, loops: ManagedLoops) -> None:
    listing = await booked_listing(chat)
    del loops.loops["lp1"]
    gone = card_of(await press(chat, listing, "Move loop"))
    assert "no longer booked" in text_of(gone)


def test_move_option_ids_round_trip_and_parse() -> None:
    starts = {i: datetime(2026, 12, 1, 9 + i, 7 * i, tzinfo=UTC) for i in range(8)}
    option_id = encode_move(starts)
    assert len(option_id) <= 128
    assert decode_move(option_id) == starts
    assert decode_move("o1234abcd") is None
    assert decode_move("0-zz") is None
    action = LoopAction(LoopVerb.MOVE_SESSION_PICK, "f1", loop_id="lp1", option_id=option_id, session=0)
    assert parse_loop_action(action.to_data()) == action
    with pytest.raises(ValueError, match="requires loop_id"):
        LoopAction(LoopVerb.CANCEL, "f1")
    with pytest.raises(ValueError, match="does not take loop_id"):
        LoopAction(LoopVerb.MORE, "f1", page=1, loop_id="lp1")
