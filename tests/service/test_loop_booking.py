"""Interview loops booked through the Calendar Service (issue 17): all sessions or none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from calendar_backend import storage
from calendar_backend.app import SERVICE_KEY
from calendar_backend.client import CalendarServiceClient
from calendar_backend.contract import LoopOut, LoopSessionOut, format_time, parse_time
from calendar_backend.errors import PermissionDeniedError
from devtenant.zones import to_utc
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.reliability.conftest import faults, organizer_events
from tests.service.conftest import ALEX, Stack, next_week, service_for

MEGAN = "meganb@contoso.example"
DIEGO = "diegos@contoso.example"
HALF = timedelta(minutes=30)


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


def template(*panels: list[str], minutes: int = 30) -> dict[str, Any]:
    return {
        "name": "Backend onsite",
        "order": "fixed",
        "breaks": {"min_minutes": 0, "max_minutes": 15},
        "sessions": [
            {"title": f"Session {i + 1}", "minutes": minutes, "interviewers": p} for i, p in enumerate(panels)
        ],
    }


async def free_starts(stack: Stack, person: str, minutes: int = 30) -> set[datetime]:
    start, end = next_week(datetime.now(UTC))
    status, doc = await stack.post(
        "/v1/slots/find",
        {
            "interviewers": [person],
            "duration_min": minutes,
            "start": format_time(start),
            "end": format_time(end),
            "all": True,
            "limit": 500,
        },
        stack.token(),
    )
    assert status == 200, doc
    return {parse_time(s["start"]) for s in doc["slots"]}


async def loop_options(stack: Stack, panels: list[list[str]], minutes: int = 30) -> list[datetime]:
    """Starts t where session k (panels[k]) fits at t + k * minutes, back to back, earliest first."""
    frees = [await free_starts(stack, p[0], minutes) for p in panels]
    step = timedelta(minutes=minutes)
    return sorted(t for t in frees[0] if all(t + k * step in frees[k] for k in range(1, len(panels))))


def body(panels: list[list[str]], start: datetime, txn: str, minutes: int = 30, **kw: Any) -> dict[str, Any]:
    step = timedelta(minutes=minutes)
    return {
        "template": template(*panels, minutes=minutes),
        "sessions": [
            {
                "index": k,
                "start": format_time(start + k * step),
                "end": format_time(start + (k + 1) * step),
                "room": None,
            }
            for k in range(len(panels))
        ],
        "candidate": {"name": "Dana Smith", "email": "dana.smith@example.com"},
        "transaction_id": txn,
        **kw,
    }


def ours(stack: Stack) -> list[dict[str, Any]]:
    return [e for e in organizer_events(stack.devtenant, ALEX) if e.get("transactionId")]


async def test_a_loop_is_booked_whole_with_one_teams_meeting(stack: Stack) -> None:
    panels = [[MEGAN], [DIEGO], [MEGAN]]
    start = (await loop_options(stack, panels))[0]
    status, doc = await stack.post("/v1/loops", body(panels, start, "loop-1"), stack.token())
    assert status == 201, doc
    assert doc["status"] == "confirmed"
    assert [s["index"] for s in doc["sessions"]] == [0, 1, 2]
    assert [s["interviewers"] for s in doc["sessions"]] == panels
    assert all(s["event_id"] for s in doc["sessions"])
    assert doc["join_url"]
    events = ours(stack)
    assert len(events) == 6  # a panel event and the candidate's own per session
    panel = sorted(
        (e for e in events if e["transactionId"].endswith(("-s0", "-s1", "-s2"))),
        key=lambda e: e["transactionId"],
    )
    assert [e["transactionId"][-3:] for e in panel] == ["-s0", "-s1", "-s2"]
    assert [bool(e.get("isOnlineMeeting")) for e in panel] == [True, False, False]
    # a retry with the same transaction id returns the same loop, writes nothing
    status, again = await stack.post("/v1/loops", body(panels, start, "loop-1"), stack.token())
    assert status == 201, again
    assert again["id"] == doc["id"]
    assert len(ours(stack)) == 6
    status, listed = await stack.get("/v1/loops", stack.token())
    assert status == 200
    assert [lp["id"] for lp in listed["loops"]] == [doc["id"]]


async def test_a_session_taken_refuses_the_whole_loop(stack: Stack) -> None:
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
            "idempotency_key": "single-1",
        },
        stack.token(),
    )
    assert status == 201, doc
    before = len(ours(stack))
    status, doc = await stack.post("/v1/loops", body(panels, start, "loop-2"), stack.token())
    assert status == 409, doc
    assert doc["error"] == "slot_taken"
    assert len(ours(stack)) == before
    async with stack.runtime.store.transaction() as tx:
        loops = list(await tx.execute(storage.loops.select()))
    assert loops == []  # the reservation refused: nothing kept


async def test_a_graph_failure_on_a_later_session_withdraws_the_loop(stack: Stack) -> None:
    panels = [[MEGAN], [DIEGO]]
    start = (await loop_options(stack, panels))[0]
    calls = {"n": 0}
    svc = stack.client.server.app[SERVICE_KEY]
    graph = svc.bookings._graph
    real = graph.create_event

    async def flaky(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # session 2's panel event
            raise PermissionDeniedError()
        return await real(*args, **kw)

    graph.create_event = flaky  # type: ignore[method-assign]
    status, doc = await stack.post("/v1/loops", body(panels, start, "loop-3"), stack.token())
    graph.create_event = real  # type: ignore[method-assign]
    assert status >= 400, doc
    assert ours(stack) == []  # session 1's events were cancelled
    async with stack.runtime.store.transaction() as tx:
        rows = [storage.interview_row(r) for r in await tx.execute(storage.interviews.select())]
        loops = list(await tx.execute(storage.loops.select()))
    assert {r.status.value for r in rows} <= {"failed", "cancelled"}
    assert [lp.status for lp in loops] == ["failed"]


async def test_cancel_and_reschedule_a_loop(stack: Stack) -> None:
    panels = [[MEGAN], [DIEGO]]
    options = await loop_options(stack, panels)
    start = options[0]
    status, doc = await stack.post("/v1/loops", body(panels, start, "loop-4"), stack.token())
    assert status == 201, doc
    later = next(t for t in options if t >= start + timedelta(hours=2))
    moved = body(panels, later, "x")["sessions"]
    status, doc2 = await stack.post(f"/v1/loops/{doc['id']}/reschedule", {"sessions": moved}, stack.token())
    assert status == 200, doc2
    assert [s["start"] for s in doc2["sessions"]] == [m["start"] for m in moved]
    starts = sorted(e["start"]["dateTime"][:16] for e in ours(stack))
    assert len(starts) == 4
    status, doc3 = await stack.post(f"/v1/loops/{doc['id']}/cancel", {}, stack.token())
    assert status == 200, doc3
    assert doc3["status"] == "cancelled"
    assert ours(stack) == []
    faults(stack.devtenant)


async def test_the_bots_client_books_lists_moves_and_cancels_a_loop(stack: Stack) -> None:
    panels = [[MEGAN], [DIEGO]]
    options = await loop_options(stack, panels)
    start = options[0]
    sessions = [
        LoopSessionOut(k, f"Session {k + 1}", start + k * HALF, start + (k + 1) * HALF, tuple(p))
        for k, p in enumerate(panels)
    ]
    base = str(stack.client.make_url("/")).rstrip("/")
    async with aiohttp.ClientSession() as session:
        client = CalendarServiceClient(base, session)
        loop = await client.book_loop(
            stack.token(),
            template=template(*panels),
            sessions=sessions,
            candidate_name="Dana Smith",
            candidate_email="dana.smith@example.com",
            candidate_time_zone="Europe/London",
            transaction_id="client-1",
        )
        assert loop.status == "confirmed"
        assert [(s.index, s.start, s.interviewers) for s in loop.sessions] == [
            (s.index, s.start, s.interviewers) for s in sessions
        ]
        assert all(s.interview_id and s.event_id for s in loop.sessions)
        assert [lp.id for lp in await client.list_loops(stack.token())] == [loop.id]
        later = next(t for t in options if t >= start + timedelta(hours=2))
        moved = [replace(s, start=later + s.index * HALF, end=later + (s.index + 1) * HALF) for s in sessions]
        again = await client.reschedule_loop(stack.token(), loop.id, moved)
        assert [s.start for s in again.sessions] == [s.start for s in moved]
        gone = await client.cancel_loop(stack.token(), loop.id)
        assert gone.status == "cancelled"
        assert await client.list_loops(stack.token()) == []
    assert LoopOut.from_json(loop.to_json()) == loop


async def test_a_loop_session_is_not_cancelled_alone(stack: Stack) -> None:
    panels = [[MEGAN], [DIEGO]]
    start = (await loop_options(stack, panels))[0]
    status, doc = await stack.post("/v1/loops", body(panels, start, "loop-5"), stack.token())
    assert status == 201, doc
    session = doc["sessions"][0]["interview_id"]
    status, refused = await stack.post(f"/v1/interviews/{session}/cancel", {}, stack.token())
    assert status == 409, refused
    assert len(ours(stack)) == 4


async def test_the_whole_loop_moves_by_a_quarter_hour_and_one_session_alone(stack: Stack) -> None:
    """Moving every session 15 minutes later overlaps the loop's own old times (the candidate is in
    every session): each move is reserved in turn, in an order where no hold meets a session's old
    time. Then one session alone moves (later, within the break rule of the booked loop)."""
    panels = [[MEGAN], [DIEGO]]
    options = await loop_options(stack, panels)
    quarter = timedelta(minutes=15)
    start = next(t for t in options if t + quarter in options and t + 2 * quarter in options)
    status, doc = await stack.post("/v1/loops", body(panels, start, "loop-6"), stack.token())
    assert status == 201, doc
    shifted = body(panels, start + quarter, "x")["sessions"]
    path = f"/v1/loops/{doc['id']}/reschedule"
    status, moved = await stack.post(path, {"sessions": shifted}, stack.token())
    assert status == 200, moved
    assert [s["start"] for s in moved["sessions"]] == [s["start"] for s in shifted]
    last = body(panels, start + 2 * quarter, "x")["sessions"][1]
    status, one = await stack.post(path, {"sessions": [last]}, stack.token())
    assert status == 200, one
    assert [s["start"] for s in one["sessions"]] == [shifted[0]["start"], last["start"]]
    starts = sorted(to_utc(e["start"]) for e in ours(stack))
    assert starts == sorted(
        [parse_time(shifted[0]["start"])] * 2 + [parse_time(last["start"])] * 2
    )  # the panel's and the candidate's event of each session


async def test_a_room_is_reserved_with_its_session_and_never_twice(stack: Stack) -> None:
    """Two loops with different people want the same room at the same time: one gets it."""
    room = "rainier@contoso.example"
    rooms = await free_starts(stack, MEGAN)
    start = min(rooms & await free_starts(stack, DIEGO))

    def with_room(person: str, txn: str) -> dict[str, Any]:
        doc = body([[person]], start, txn)
        doc["template"]["sessions"][0]["room"] = {"any_of": [room]}
        doc["sessions"][0]["room"] = room
        return doc

    status, first = await stack.post("/v1/loops", with_room(MEGAN, "room-1"), stack.token())
    assert status == 201, first
    assert first["sessions"][0]["room"] == room
    assert first["sessions"][0]["interviewers"] == [MEGAN]
    status, second = await stack.post("/v1/loops", with_room(DIEGO, "room-2"), stack.token())
    assert status == 409, second
    assert second["error"] == "slot_taken"
    resources = [
        a["emailAddress"]["address"]
        for e in ours(stack)
        for a in e.get("attendees", [])
        if a.get("type") == "resource"
    ]
    assert resources == [room]


async def test_a_whole_loop_move_failing_half_way_puts_the_moved_session_back(stack: Stack) -> None:
    panels = [[MEGAN], [DIEGO]]
    options = await loop_options(stack, panels)
    start = options[0]
    status, doc = await stack.post("/v1/loops", body(panels, start, "loop-7"), stack.token())
    assert status == 201, doc
    before = sorted((e["id"], to_utc(e["start"])) for e in ours(stack))
    later = next(t for t in options if t >= start + timedelta(hours=2))
    graph = stack.client.server.app[SERVICE_KEY].bookings._graph
    real, calls = graph.update_event, {"n": 0}

    async def flaky(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # the second session's panel event (the first moved both of its own)
            raise PermissionDeniedError()
        return await real(*args, **kw)

    graph.update_event = flaky  # type: ignore[method-assign]
    moved = body(panels, later, "x")["sessions"]
    status, refused = await stack.post(
        f"/v1/loops/{doc['id']}/reschedule", {"sessions": moved}, stack.token()
    )
    graph.update_event = real  # type: ignore[method-assign]
    assert status == 403, refused
    assert sorted((e["id"], to_utc(e["start"])) for e in ours(stack)) == before
    status, listed = await stack.get("/v1/loops", stack.token())
    assert [s["start"] for s in listed["loops"][0]["sessions"]] == [s["start"] for s in doc["sessions"]]
    assert listed["loops"][0]["status"] == "confirmed"
