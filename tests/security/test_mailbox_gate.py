"""Issue 12, the mailbox gate (`calendar_backend/gate.py`): findings 1, 4, 6, 8, 9 and 12.

Every test runs the real Calendar Service against devtenant's sample tenant. Alex (the manager) reads
free/busy of everyone except Miriam Graham, whose calendar shares nothing ("My Organization": none).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from calendar_backend import app as service_app
from calendar_backend.contract import format_time, parse_time
from devtenant.bot_connector import FakeBotConnector
from tests.candidate.conftest import bot_instance, teams  # noqa: F401
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.security.gate_env import (
    ADELE,
    CHRISTIE,
    MEGAN,
    MIRIAM,
    ROOM,
    allow,
    archive,
    audit_rows,
    calendar_calls,
    disallow,
    find_body,
    interview_body,
    make_offer,
    offer_body,
)
from tests.service.conftest import Stack, next_week, service_for


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    """The sample tenant behind the real Calendar Service (getSchedule source)."""
    async with service_for(devtenant, tmp_path) as running:
        yield running


async def _first_slot(stack: Stack, people: list[str]) -> dict[str, str]:
    status, doc = await stack.post("/v1/slots/find", find_body(people), stack.token())
    assert status == 200, doc
    assert doc["slots"], doc
    return dict(doc["slots"][0])


# ---- finding 1: candidate links and the allow-list / Outlook sharing --------------------------------
async def test_offer_for_a_mailbox_outside_the_allowlist_is_refused_by_name(stack: Stack) -> None:
    await allow(stack, MEGAN)
    before_rows, before_calls = len(await audit_rows(stack)), calendar_calls(stack)
    status, doc = await stack.post("/v1/offers", offer_body([MEGAN, ADELE]), stack.token())
    assert (status, doc["error"]) == (403, "forbidden"), doc
    assert ADELE in doc["message"]
    assert MEGAN not in doc["message"]
    assert calendar_calls(stack) == before_calls  # nobody's calendar was read
    assert (await audit_rows(stack))[before_rows:] == [("offer.create", [ADELE], "denied:not_allowed")]


async def test_offer_for_a_calendar_the_manager_cannot_read_is_refused_by_name(stack: Stack) -> None:
    before_rows = len(await audit_rows(stack))
    status, doc = await stack.post("/v1/offers", offer_body([MEGAN, MIRIAM]), stack.token())
    assert (status, doc["error"]) == (403, "forbidden"), doc
    assert MIRIAM in doc["message"]
    assert MEGAN not in doc["message"]
    assert (await audit_rows(stack))[before_rows:] == [("offer.create", [MIRIAM], "denied:unreadable")]
    # Nothing was made: Alex has no links.
    _, listed = await stack.get("/v1/offers", stack.token())
    assert listed["offers"] == []


async def test_every_view_of_a_link_reapplies_the_allowlist_and_fails_closed(stack: Stack) -> None:
    token = await make_offer(stack, [MEGAN, ADELE])
    status, doc = await stack.post("/v1/candidate/slots", {"token": token})
    assert status == 200
    assert doc["slots"]
    slot = doc["slots"][0]
    await allow(stack, MEGAN)  # the admin narrows the allow-list after the link was made
    before_rows, before_calls = len(await audit_rows(stack)), calendar_calls(stack)
    status, doc = await stack.post("/v1/candidate/slots", {"token": token})
    assert (status, doc["error"]) == (410, "gone"), doc
    assert "adele" not in str(doc).lower()  # the candidate is not told who
    status, doc = await stack.post("/v1/candidate/book", {"token": token, "start": slot["start"]})
    assert (status, doc["error"]) == (410, "gone"), doc
    assert calendar_calls(stack) == before_calls
    assert (await audit_rows(stack))[before_rows:] == [
        ("offer.slots", [ADELE], "denied:not_allowed"),
        ("offer.book", [ADELE], "denied:not_allowed"),
    ]
    await disallow(stack, MEGAN)  # an empty list allows everyone again
    status, doc = await stack.post("/v1/candidate/slots", {"token": token})
    assert status == 200
    assert doc["slots"]


# ---- finding 4: a room is a room ---------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/slots/find", "/v1/interviews"])
async def test_a_person_used_as_a_room_is_refused_by_name_and_never_read(stack: Stack, path: str) -> None:
    body = (
        find_body([MEGAN], rooms=[CHRISTIE])
        if path == "/v1/slots/find"
        else interview_body([MEGAN], "room-is-a-room-1", rooms=[CHRISTIE])
    )
    before_rows, before_calls = len(await audit_rows(stack)), calendar_calls(stack)
    status, doc = await stack.post(path, body, stack.token())
    assert (status, doc["error"]) == (403, "forbidden"), doc
    assert CHRISTIE in doc["message"]
    assert calendar_calls(stack) == before_calls
    new = (await audit_rows(stack))[before_rows:]
    assert [(r[1], r[2]) for r in new] == [([CHRISTIE], "denied:not_a_room")]


async def test_a_real_room_still_works(stack: Stack) -> None:
    status, doc = await stack.post("/v1/slots/find", find_body([MEGAN], rooms=[ROOM]), stack.token())
    assert status == 200, doc
    assert doc["slots"], doc
    assert [p["is_room"] for p in doc["people"]] == [False, True]


# ---- finding 6: anchored patterns, control characters -----------------------------------------------
@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: {**b, "rooms": [f"{ROOM}\n"]},
        lambda b: {**b, "interviewers": [f"{MEGAN}\n"]},
        lambda b: {**b, "start": b["start"] + "\n"},
        lambda b: {**b, "interviewers": [MEGAN.replace("m", "\u0000m", 1)]},
        lambda b: {**b, "start": b["start"].replace("0", "\u0660", 1)},  # an Arabic-Indic digit
    ],
    ids=["room-newline", "interviewer-newline", "time-newline", "nul", "unicode-digit"],
)
async def test_trailing_newline_and_control_characters_are_400_with_one_audit_row(
    stack: Stack, mutate: Any
) -> None:
    before_rows, before_calls = len(await audit_rows(stack)), calendar_calls(stack)
    status, doc = await stack.post("/v1/slots/find", mutate(find_body([MEGAN])), stack.token())
    assert (status, doc["error"]) == (400, "invalid_request"), doc
    assert calendar_calls(stack) == before_calls
    new = (await audit_rows(stack))[before_rows:]
    assert [r[2] for r in new] == ["denied:payload"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/offers", offer_body([MEGAN], candidate_name="Dana\nSmith")),
        ("/v1/offers", offer_body([MEGAN], conversation_ref={"serviceUrl": "https://x\r\n"})),
        ("/v1/interviews", interview_body([MEGAN], "ctl-1", subject="Hi\u2028there")),
        ("/v1/directory/resolve", {"queries": ["meg\u0085"]}),
    ],
)
async def test_control_characters_anywhere_are_refused(stack: Stack, path: str, body: dict[str, Any]) -> None:
    status, doc = await stack.post(path, body, stack.token())
    assert (status, doc["error"]) == (400, "invalid_request"), doc


# ---- finding 8: a booking must be a slot the engine would offer -------------------------------------
async def test_candidate_cannot_book_a_time_never_offered(stack: Stack) -> None:
    token = await make_offer(stack, [MEGAN])
    status, doc = await stack.post("/v1/candidate/slots", {"token": token})
    offered = {s["start"] for s in doc["slots"]}
    monday, _ = next_week(datetime.now(UTC))
    night = monday + timedelta(days=2, hours=6)  # Tuesday 22:00 Pacific
    assert format_time(night) not in offered
    before_events = int(stack.devtenant.tenant.counters["graph.events.create"])
    status, doc = await stack.post("/v1/candidate/book", {"token": token, "start": format_time(night)})
    assert (status, doc["error"], doc.get("field")) == (400, "invalid_request", "start"), doc
    assert int(stack.devtenant.tenant.counters["graph.events.create"]) == before_events
    # An offered time books.
    first = sorted(offered)[0]
    status, doc = await stack.post("/v1/candidate/book", {"token": token, "start": first})
    assert status == 201, doc


async def test_bot_confirm_cannot_book_a_time_never_offered(stack: Stack) -> None:
    monday, _ = next_week(datetime.now(UTC))
    sunday = monday + timedelta(days=6, hours=3)  # Sunday 03:00Z: nobody works
    for start in (sunday, monday + timedelta(days=1, hours=18, minutes=7)):  # off the grid
        body = interview_body(
            [MEGAN],
            f"never-offered-{start:%d%H%M}",
            format_time(start),
            format_time(start + timedelta(minutes=30)),
        )
        before_events = int(stack.devtenant.tenant.counters["graph.events.create"])
        status, doc = await stack.post("/v1/interviews", body, stack.token())
        assert (status, doc["error"]) == (400, "invalid_request"), doc
        assert int(stack.devtenant.tenant.counters["graph.events.create"]) == before_events
    slot = await _first_slot(stack, [MEGAN])
    status, doc = await stack.post(
        "/v1/interviews", interview_body([MEGAN], "offered-1", slot["start"], slot["end"]), stack.token()
    )
    assert status == 201, doc
    assert parse_time(doc["start"]) == parse_time(slot["start"])


async def test_manager_cannot_move_an_interview_to_a_time_never_offered(stack: Stack) -> None:
    status, doc = await stack.post("/v1/slots/find", find_body([MEGAN], all=True, limit=500), stack.token())
    starts = {s["start"] for s in doc["slots"]}
    slot = next(
        s
        for s in sorted(doc["slots"], key=lambda s: s["start"])
        if format_time(parse_time(s["start"]) + timedelta(minutes=15)) in starts
    )
    status, doc = await stack.post(
        "/v1/interviews", interview_body([MEGAN], "move-never-1", slot["start"], slot["end"]), stack.token()
    )
    assert status == 201, doc
    interview = doc["id"]
    monday, _ = next_week(datetime.now(UTC))
    sunday = monday + timedelta(days=6, hours=3)
    before = int(stack.devtenant.tenant.counters["graph.events.update"])
    status, doc = await stack.post(
        f"/v1/interviews/{interview}/reschedule",
        {"start": format_time(sunday), "end": format_time(sunday + timedelta(minutes=30))},
        stack.token(),
    )
    assert (status, doc["error"]) == (400, "invalid_request"), doc
    assert int(stack.devtenant.tenant.counters["graph.events.update"]) == before
    # Moving by 15 minutes, overlapping its own old time, is still allowed (its event is ignored).
    later = parse_time(slot["start"]) + timedelta(minutes=15)
    status, doc = await stack.post(
        f"/v1/interviews/{interview}/reschedule",
        {"start": format_time(later), "end": format_time(later + timedelta(minutes=30))},
        stack.token(),
    )
    assert status == 200, doc
    assert parse_time(doc["start"]) == later


# ---- finding 9: the invitee of a link ------------------------------------------------------------------
@pytest.mark.parametrize(
    "email", [CHRISTIE, "someone@contoso.example", "x@mail.contoso.example", "ChristieC@Contoso.Example"]
)
async def test_a_typed_invitee_can_never_be_inside_the_tenant(stack: Stack, email: str) -> None:
    body = offer_body([MEGAN])
    del body["candidate_email"]
    status, doc = await stack.post("/v1/offers", body, stack.token())
    assert status == 201, doc
    token = str(doc["url"]).rsplit("/c/", 1)[1]
    _, slots = await stack.post("/v1/candidate/slots", {"token": token})
    start = slots["slots"][0]["start"]
    before_events = int(stack.devtenant.tenant.counters["graph.events.create"])
    status, doc = await stack.post("/v1/candidate/book", {"token": token, "start": start, "email": email})
    assert (status, doc.get("field")) == (400, "email"), doc
    assert int(stack.devtenant.tenant.counters["graph.events.create"]) == before_events
    assert (await audit_rows(stack))[-1][2] == "denied:internal_invitee"
    status, doc = await stack.post(
        "/v1/candidate/book", {"token": token, "start": start, "email": "dana@example.org"}
    )
    assert status == 201, doc


# ---- finding 12: unauthenticated refusals are budgeted -----------------------------------------------
async def test_unauthenticated_refusals_are_budgeted_and_counted(stack: Stack) -> None:
    server = stack.client.server
    assert isinstance(server, TestServer)
    budget = server.app[service_app.BUDGET_KEY]
    frozen = budget._last
    budget._clock = lambda: frozen  # no refill mid-run, however slow the machine is
    before = len(await audit_rows(stack))
    for _ in range(200):
        status, _doc = await stack.post("/v1/slots/find", find_body([MEGAN]), "not-a-token")
        assert status == 401
    written = (await audit_rows(stack))[before:]
    assert 1 <= len(written) <= 70, len(written)
    assert all(r[2].startswith("denied:") for r in written)
    # After the bucket refills, the next row says how many were not written.
    budget._tokens = 1.0  # as after a quiet second
    await stack.post("/v1/slots/find", find_body([MEGAN]), "not-a-token")
    last = (await audit_rows(stack))[-1][2]
    assert last.startswith("denied:token:skipped:"), last
    assert int(last.rsplit(":", 1)[1]) == 200 - len(written)


async def test_the_candidate_page_shows_a_dead_link_once_the_allowlist_refuses(
    stack: Stack, teams: FakeBotConnector, tmp_path: Path
) -> None:
    token = await make_offer(stack, [MEGAN, ADELE])
    async with bot_instance(stack, teams, tmp_path / "bot.db") as bot:
        assert (await bot.get(f"/c/{token}")).status == 200
        await allow(stack, MEGAN)
        resp = await bot.get(f"/c/{token}")
        assert resp.status == 410
        page = await resp.text()
        assert "adele" not in page.lower()
        assert "withdrew it" in page  # the same page as a link the manager withdrew


# ---- the archived flag for the people being scheduled -----------------------------------------------
async def test_a_person_who_left_is_refused_by_name_everywhere(stack: Stack) -> None:
    token = await make_offer(stack, [MEGAN])
    await archive(stack, MEGAN)  # the leavers job archived Megan
    before_rows, before_calls = len(await audit_rows(stack)), calendar_calls(stack)
    status, doc = await stack.post("/v1/slots/find", find_body([MEGAN, ADELE]), stack.token())
    assert (status, doc["error"]) == (403, "forbidden"), doc
    assert MEGAN in doc["message"]
    assert ADELE not in doc["message"]
    status, doc = await stack.post("/v1/offers", offer_body([MEGAN]), stack.token())
    assert status == 403, doc
    status, doc = await stack.post("/v1/candidate/slots", {"token": token})
    assert (status, doc["error"]) == (410, "gone"), doc
    assert calendar_calls(stack) == before_calls
    assert [(r[0], r[1], r[2]) for r in (await audit_rows(stack))[before_rows:]] == [
        ("slots.find", [MEGAN], "denied:archived"),
        ("offer.create", [MEGAN], "denied:archived"),
        ("offer.slots", [MEGAN], "denied:archived"),
    ]
    # Others are scheduled as before.
    status, doc = await stack.post("/v1/slots/find", find_body([ADELE]), stack.token())
    assert status == 200, doc
    assert doc["slots"]
