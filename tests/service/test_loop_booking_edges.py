"""Loop booking's rough edges found at merge (issue 17): a 409 carries fresh whole-loop options
(``fresh_loops``, parsed back by the bot's client), the manager's zone is read without an extra
``me.settings`` audit row, and a room chosen by capacity/building is rechecked at booking."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from calendar_backend.client import CalendarServiceClient
from calendar_backend.contract import LoopSessionOut, format_time, parse_time
from calendar_backend.errors import SlotTakenError
from tests.security.gate_env import audit_rows
from tests.service.conftest import Stack
from tests.service.test_loop_booking import DIEGO, MEGAN, body, loop_options, stack, template  # noqa: F401
from tests.service.test_loops_api import search_body

ROOMY = {"min_capacity": 4, "building": "Redmond B92"}


async def test_a_taken_loop_answers_409_with_fresh_loop_options(stack: Stack) -> None:
    panels = [[MEGAN], [DIEGO]]
    start = (await loop_options(stack, panels))[0]
    second = start + timedelta(minutes=30)
    status, doc = await stack.post(
        "/v1/interviews",
        {
            "candidate": {"name": "Other", "email": "other@example.com"},
            "interviewers": [DIEGO],
            "start": format_time(second),
            "end": format_time(second + timedelta(minutes=30)),
            "idempotency_key": "single-fresh",
        },
        stack.token(),
    )
    assert status == 201, doc
    status, doc = await stack.post("/v1/loops", body(panels, start, "loop-fresh"), stack.token())
    assert status == 409, doc
    assert doc["error"] == "slot_taken"
    assert "fresh" not in doc  # the single-slot field stays the single-slot field
    options = doc["fresh_loops"]["options"]
    assert options, doc
    for option in options:
        for s in option["sessions"]:
            if DIEGO in s["interviewers"]:
                lo, hi = parse_time(s["start"]), parse_time(s["end"])
                assert not (lo < second + timedelta(minutes=30) and second < hi), option
    # the bot's client reads them back as loop options
    base = str(stack.client.make_url("/")).rstrip("/")
    sessions = [
        LoopSessionOut(
            k,
            f"Session {k + 1}",
            start + k * timedelta(minutes=30),
            start + (k + 1) * timedelta(minutes=30),
            tuple(p),
        )
        for k, p in enumerate(panels)
    ]
    async with aiohttp.ClientSession() as session:
        client = CalendarServiceClient(base, session)
        with pytest.raises(SlotTakenError) as taken:
            await client.book_loop(
                stack.token(),
                template=template(*panels),
                sessions=sessions,
                candidate_name="Dana Smith",
                candidate_email="dana.smith@example.com",
                candidate_time_zone=None,
                transaction_id="loop-fresh-client",
            )
    fresh = taken.value.fresh_loops
    assert fresh is not None
    assert [o.id for o in fresh.options] == [o["id"] for o in options]


async def test_booking_reads_the_managers_zone_without_an_extra_audit_row(stack: Stack) -> None:
    panels = [[MEGAN], [DIEGO]]
    start = (await loop_options(stack, panels))[0]
    before = len(await audit_rows(stack))
    status, doc = await stack.post("/v1/loops", body(panels, start, "loop-zone"), stack.token())
    assert status == 201, doc
    operations = [op for op, _targets, _result in (await audit_rows(stack))[before:]]
    assert "me.settings" not in operations, operations


def roomy_template() -> dict[str, Any]:
    return {
        "name": "Roomy",
        "sessions": [{"title": "Design", "minutes": 60, "interviewers": [MEGAN], "room": ROOMY}],
    }


async def test_a_room_chosen_by_capacity_is_rechecked_at_booking(stack: Stack) -> None:
    status, found = await stack.post(
        "/v1/loops/search", search_body(template=roomy_template()), stack.token()
    )
    assert status == 200, found
    option = found["options"][0]
    [session] = option["sessions"]
    room = session["room"]
    assert room, option
    request = {
        "template": roomy_template(),
        "sessions": [{k: session[k] for k in ("index", "start", "end", "room")}],
        "candidate": {"name": "Dana Smith", "email": "dana.smith@example.com"},
        "transaction_id": "loop-roomy",
    }
    for r in stack.devtenant.tenant.data["rooms"]:  # the room shrank since the search
        if r["emailAddress"] == room:
            r["capacity"] = 2
    status, doc = await stack.post("/v1/loops", request, stack.token())
    assert status == 409, doc
    assert doc["error"] == "slot_taken"
    assert all(s["room"] != room for o in doc["fresh_loops"]["options"] for s in o["sessions"])
    for r in stack.devtenant.tenant.data["rooms"]:
        if r["emailAddress"] == room:
            r["capacity"] = 8
    status, doc = await stack.post("/v1/loops", {**request, "transaction_id": "loop-roomy-2"}, stack.token())
    assert status == 201, doc
    assert doc["sessions"][0]["room"] == room
