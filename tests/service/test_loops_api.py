"""Issue 17: saved loop templates and the loop search, through the real Calendar Service and devtenant.

The sample tenant's ``loopTemplates`` are searched as a hiring manager would (inline and saved by
name); every person and room goes through the mailbox gate; a calendar that cannot be read is
never free; every search writes one audit row and every template change one more.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from bench.stack import SAMPLE
from calendar_backend.client import CalendarServiceClient
from calendar_backend.contract import LoopSearchOut, LoopTemplateOut, format_time, parse_time
from calendar_backend.errors import InvalidTemplateError, NotFoundError
from tests.security.gate_env import ADELE, MEGAN, allow, audit_rows
from tests.service.conftest import Stack, next_week

TEMPLATES: dict[str, dict[str, Any]] = {
    t["name"]: t for t in json.loads(SAMPLE.read_text(encoding="utf-8"))["loopTemplates"]
}
FRONTEND = "Frontend screen and pairing"
BACKEND = "Backend engineer onsite"


def search_body(**extra: Any) -> dict[str, Any]:
    start, end = next_week(datetime.now(UTC))
    return {"start": format_time(start), "end": format_time(end), **extra}


def megan_loop() -> dict[str, Any]:
    return {
        "name": "Megan pair",
        "sessions": [
            {"title": "Chat", "minutes": 30, "interviewers": [MEGAN]},
            {"title": "Values", "minutes": 30, "interviewers": [ADELE]},
        ],
    }


async def search(stack: Stack, **body: Any) -> tuple[int, Any]:
    return await stack.post("/v1/loops/search", search_body(**body), stack.token())


async def test_search_finds_the_sample_loops_inline(calendar_stack: Stack) -> None:
    for name in (FRONTEND, BACKEND):
        template = TEMPLATES[name]
        status, doc = await search(calendar_stack, template=template, candidate_time_zone="Europe/London")
        assert status == 200, doc
        result = LoopSearchOut.from_json(doc)
        assert result.options, (name, doc["explanations"])
        assert len(result.options) <= 5
        assert LoopSearchOut.from_json(json.loads(json.dumps(result.to_json()))) == result
        window = search_body()
        for option in result.options:
            assert len(option.sessions) == len(template["sessions"])
            starts = [s.start for s in option.sessions]
            assert starts == sorted(starts)
            for s in option.sessions:
                spec = template["sessions"][s.index]
                assert s.title == spec["title"]
                assert s.end - s.start == timedelta(minutes=spec["minutes"])
                assert list(s.interviewers) == spec.get("interviewers", [])
                assert s.start.minute % 15 == 0
                assert parse_time(window["start"]) <= s.start
                assert s.end <= parse_time(window["end"])
                assert (s.room is not None) == ("room" in spec)
            for a, b in zip(option.sessions, option.sessions[1:], strict=False):
                assert a.end <= b.start
        ids = [o.id for o in result.options]
        assert len(set(ids)) == len(ids)
        addresses = {p.address for p in result.people}
        assert {a for s in template["sessions"] for a in s.get("interviewers", [])} <= addresses
    # Backend: the system design room is a 4+ seat room of Redmond B92, found in the room list.
    backend = LoopSearchOut.from_json(doc)
    assert any(p.is_room for p in backend.people)
    design = [s for o in backend.options for s in o.sessions if s.title == "System design"]
    assert design
    assert all(s.room and s.room.endswith("@contoso.example") for s in design)


async def test_saved_template_round_trip_and_search_by_name(calendar_stack: Stack) -> None:
    stack = calendar_stack
    token = stack.token()
    path = f"/v1/loop-templates/{quote(FRONTEND)}"
    status, doc = await stack.send("PUT", path, {"template": TEMPLATES[FRONTEND]}, token)
    assert status == 200, doc
    saved = LoopTemplateOut.from_json(doc)
    assert saved.name == FRONTEND
    assert saved.template["sessions"][1]["interviewers"] == [
        "raulr@contoso.example",
        "gradya@contoso.example",
    ]
    status, doc = await stack.get("/v1/loop-templates", token)
    assert status == 200, doc
    assert [t["name"] for t in doc["templates"]] == [FRONTEND]
    assert LoopTemplateOut.from_json(doc["templates"][0]) == saved

    status, doc = await search(stack, template_name=FRONTEND, limit=3)
    assert status == 200, doc
    assert 1 <= len(doc["options"]) <= 3

    status, doc = await stack.send("DELETE", path, None, token)
    assert (status, doc) == (200, {"name": FRONTEND, "deleted": True})
    status, doc = await stack.send("DELETE", path, None, token)
    assert status == 404, doc
    status, doc = await search(stack, template_name=FRONTEND)
    assert status == 404, doc
    changes = [r for r in await audit_rows(stack) if r[0].startswith("loop_templates.")]
    assert changes == [("loop_templates.save", [], "ok"), ("loop_templates.delete", [], "ok")]


async def test_an_invalid_template_answers_400_with_every_problem(calendar_stack: Stack) -> None:
    stack = calendar_stack
    bad = {"name": "Broken", "sessions": [{"title": "Intro", "minutes": 0}, {"title": "", "minutes": 30}]}
    status, doc = await stack.send("PUT", "/v1/loop-templates/Broken", {"template": bad}, stack.token())
    assert status == 400, doc
    assert set(doc) == {"error", "message", "problems"}
    assert doc["error"] == "invalid_template"
    assert len(doc["problems"]) >= 2
    assert all(isinstance(p, str) and p for p in doc["problems"])
    status, doc = await search(stack, template=bad)
    assert (status, doc["error"]) == (400, "invalid_template"), doc
    # Other errors keep their shape: a bad request names its field and carries no problems.
    status, doc = await search(stack, template=bad, template_name="Broken")
    assert (status, set(doc)) == (400, {"error", "message", "field"}), doc
    status, doc = await stack.get("/v1/loop-templates", stack.token())
    assert doc == {"templates": []}


async def test_a_person_the_allow_list_refuses_is_explained_and_never_read(calendar_stack: Stack) -> None:
    stack = calendar_stack
    await allow(stack, ADELE)  # Megan is not allowed
    reads = int(stack.devtenant.tenant.counters["graph.getSchedule"])
    status, doc = await search(stack, template=megan_loop())
    assert status == 200, doc
    assert doc["options"] == []
    assert [(e["reason"], e["mailboxes"]) for e in doc["explanations"]] == [("not_allowed", [MEGAN])]
    assert int(stack.devtenant.tenant.counters["graph.getSchedule"]) == reads
    assert (await audit_rows(stack))[-1] == ("loops.search", [MEGAN], "denied:not_allowed")


async def test_an_unreadable_calendar_is_never_free(calendar_stack: Stack) -> None:
    stack = calendar_stack
    megan = stack.devtenant.tenant.find_user(MEGAN)
    assert megan is not None
    megan["calendarPermissions"] = [{"emailAddress": {"name": "My Organization"}, "role": "none"}]
    status, doc = await search(stack, template=megan_loop())
    assert status == 200, doc
    assert doc["options"] == []
    assert doc["explanations"][0]["reason"] == "unreadable"
    assert doc["explanations"][0]["mailboxes"] == [MEGAN]
    assert MEGAN in {p["address"] for p in doc["people"]}
    assert (await audit_rows(stack))[-1][2] == "partial"


async def test_each_search_writes_one_audit_row(calendar_stack: Stack) -> None:
    stack = calendar_stack
    before = len(await audit_rows(stack))
    status, doc = await search(stack, template=TEMPLATES[FRONTEND])
    assert status == 200, doc
    new = (await audit_rows(stack))[before:]
    assert len(new) == 1, new
    operation, targets, result = new[0]
    assert (operation, result) == ("loops.search", "ok")
    assert set(targets) == {"jonis@contoso.example", "raulr@contoso.example", "gradya@contoso.example"}


async def test_the_client_speaks_the_loop_api(calendar_stack: Stack) -> None:
    """The bot's side: `CalendarServiceClient` against the real service (the signatures the bot uses)."""
    stack = calendar_stack
    client = CalendarServiceClient(str(stack.client.make_url("/")), stack.client.session)
    token = stack.token()
    saved = await client.save_loop_template(token, FRONTEND, TEMPLATES[FRONTEND])
    assert saved.name == FRONTEND
    assert await client.list_loop_templates(token) == [saved]
    start, end = next_week(datetime.now(UTC))
    by_name = await client.search_loops(token, template_name=FRONTEND, start=start, end=end, limit=2)
    inline = await client.search_loops(
        token, template=TEMPLATES[FRONTEND], start=start, end=end, candidate_time_zone="Asia/Kolkata"
    )
    assert 1 <= len(by_name.options) <= 2
    assert inline.options
    assert by_name.options[0].sessions[0].title == "Phone screen"
    with pytest.raises(InvalidTemplateError) as bad:
        await client.save_loop_template(token, "Broken", {"sessions": [{"title": "Intro", "minutes": 0}]})
    assert bad.value.problems
    await client.delete_loop_template(token, FRONTEND)
    with pytest.raises(NotFoundError):
        await client.delete_loop_template(token, FRONTEND)
    assert await client.list_loop_templates(token) == []


async def test_a_person_named_as_a_room_is_refused_even_when_also_an_interviewer(
    calendar_stack: Stack,
) -> None:
    template = megan_loop()
    template["sessions"][1]["room"] = {"any_of": [MEGAN]}
    status, doc = await search(calendar_stack, template=template)
    assert status == 403, doc
    assert (await audit_rows(calendar_stack))[-1] == ("loops.search", [MEGAN], "denied:not_a_room")
