"""`signin/verifyState` (platform.md §A2): a valid magic code signs in and the dialog continues;
an unknown code answers 404 without crashing and the sign-in prompt stays active."""

from __future__ import annotations

from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity

from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import CONNECTION, TOKEN, FakeCalendarService, make_adapter, make_bot
from tests.bot.test_schedule_dialog import say, texts

MAGIC = "314159"


def verify_state(code: str) -> Activity:
    return Activity(type="invoke", name="signin/verifyState", value={"state": code})


def invoke_status(replies: list[Activity]) -> int:
    """The status Teams gets: the first invokeResponse sent in the turn. CloudAdapter keeps that
    one and ActivityHandler then skips its own default 200; TestAdapter records both."""
    responses = [r for r in replies if r.type == "invokeResponse"]
    assert responses
    return int(responses[0].value.status)


def signed_out(storage: SqlStorage, fake: FakeCalendarService) -> TestAdapter:
    adapter = make_adapter(make_bot(storage, fake), signed_in=False)
    adapter.add_user_token(CONNECTION, "msteams", "29:alex", TOKEN, magic_code=MAGIC)
    return adapter


def oauth_cards(replies: list[Activity]) -> list[object]:
    return [
        a
        for r in replies
        for a in (r.attachments or [])
        if a.content_type == "application/vnd.microsoft.card.oauth"
    ]


async def test_valid_magic_code_signs_in_and_continues(
    storage: SqlStorage, fake: FakeCalendarService
) -> None:
    adapter = signed_out(storage, fake)
    assert oauth_cards(await say(adapter, "schedule"))
    replies = await say(adapter, verify_state(MAGIC))
    assert invoke_status(replies) == 200
    assert "candidate's name" in texts(replies)
    assert "e-mail" in texts(await say(adapter, "Dana Smith"))


async def test_unknown_magic_code_is_404_and_prompt_stays(
    storage: SqlStorage, fake: FakeCalendarService
) -> None:
    adapter = signed_out(storage, fake)
    assert oauth_cards(await say(adapter, "schedule"))
    replies = await say(adapter, verify_state("000000"))
    assert invoke_status(replies) == 404
    assert "went wrong" not in texts(replies)
    assert "candidate's name" not in texts(replies)
    replies = await say(adapter, verify_state(MAGIC))  # the prompt is still waiting
    assert invoke_status(replies) == 200
    assert "candidate's name" in texts(replies)


async def test_malformed_verify_state_does_not_crash(storage: SqlStorage, fake: FakeCalendarService) -> None:
    adapter = signed_out(storage, fake)
    await say(adapter, "schedule")
    for value in ({}, {"state": None}, {"state": "x" * 5000}, "not-an-object"):
        replies = await say(adapter, Activity(type="invoke", name="signin/verifyState", value=value))
        assert "went wrong" not in texts(replies)
        assert invoke_status(replies) in {404, 412}
