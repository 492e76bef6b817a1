"""The candidate's own invite (issue 14): two Outlook events per booking, both from the manager.

Checked on devtenant's raw store: the candidate is an attendee of their own event only; the
panel's event has no candidate attendee and says who the candidate is; a room shows by its display
name; the candidate's event carries the panel's Teams join link and no panel address. Moving
PATCHes each event once; cancelling cancels each once. A candidate event Graph refuses withdraws
the whole booking (the panel event is cancelled, the time freed).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from calendar_backend.app import SERVICE_KEY
from calendar_backend.contract import format_time, parse_time
from tests.service.conftest import ALEX, Stack, booking_body, events_at, next_week, user

CANDIDATE = "dana.smith@example.com"


async def _slot(
    stack: Stack, people: list[str], minutes: int = 45, rooms: list[str] | None = None
) -> dict[str, str]:
    start, end = next_week(datetime.now(UTC))
    body: dict[str, Any] = {
        "interviewers": people,
        "duration_min": minutes,
        "start": format_time(start),
        "end": format_time(end),
    }
    if rooms:
        body["rooms"] = rooms
    status, doc = await stack.post("/v1/slots/find", body, stack.token())
    assert status == 200, doc
    assert doc["slots"], doc
    return doc["slots"][0]  # type: ignore[no-any-return]


def _addresses(event: dict[str, Any]) -> list[str]:
    return [a["emailAddress"]["address"].lower() for a in event.get("attendees", [])]


def _split(stack: Stack, start: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The organizer's two events at ``start``: (panel's, candidate's)."""
    mine = events_at(stack, ALEX, start)
    assert len(mine) == 2, [_addresses(e) for e in mine]
    theirs = [e for e in mine if CANDIDATE in _addresses(e)]
    panel = [e for e in mine if CANDIDATE not in _addresses(e)]
    assert len(theirs) == 1
    assert len(panel) == 1
    return panel[0], theirs[0]


async def test_the_candidate_gets_their_own_invite_and_the_panel_never_shows_them(
    calendar_stack: Stack,
) -> None:
    stack = calendar_stack
    people = [user(stack, "Megan Bowen")["mail"].lower(), user(stack, "Adele Vance")["mail"].lower()]
    room = stack.devtenant.tenant.rooms()[0]
    slot = await _slot(stack, people, rooms=[room["emailAddress"]])
    body = {**booking_body(people, slot, "own-invite"), "rooms": [room["emailAddress"]]}
    creates = stack.devtenant.tenant.counters["graph.events.create"]
    status, interview = await stack.post("/v1/interviews", body, stack.token())
    assert status == 201, interview
    assert stack.devtenant.tenant.counters["graph.events.create"] == creates + 2
    panel, theirs = _split(stack, slot["start"])
    assert _addresses(theirs) == [CANDIDATE]  # the only attendee of their own invite
    assert CANDIDATE not in _addresses(panel)
    assert set(people) <= set(_addresses(panel))
    dumped = json.dumps(theirs)
    for address in [*people, room["emailAddress"].lower()]:
        assert address not in dumped.lower()
    assert interview["join_url"] in theirs["body"]["content"]  # the same Teams meeting
    assert theirs["organizer"]["emailAddress"]["address"].lower() == ALEX
    assert "Dana Smith" in panel["body"]["content"]  # the panel's invite says who
    assert panel["location"]["displayName"] == room["displayName"]  # not the address
    for person in people:  # interviewers get the panel's invite only
        assert len(events_at(stack, person, slot["start"])) == 1
    # The idempotent retry finds both: nothing new is written.
    status, again = await stack.post("/v1/interviews", body, stack.token())
    assert status == 201
    assert again["id"] == interview["id"]
    assert stack.devtenant.tenant.counters["graph.events.create"] == creates + 2
    async with stack.runtime.store.transaction() as tx:
        from calendar_backend import storage

        row = await storage.get_interview(tx, interview["id"])
    assert row is not None
    assert row.candidate_event_id == theirs["id"]
    assert row.event_id == panel["id"]


async def test_moving_and_cancelling_update_both_events_once_each(calendar_stack: Stack) -> None:
    stack = calendar_stack
    people = [user(stack, "Adele Vance")["mail"]]
    slot = await _slot(stack, people, 30)
    status, interview = await stack.post("/v1/interviews", booking_body(people, slot, "mv"), stack.token())
    assert status == 201, interview
    counters = stack.devtenant.tenant.counters
    updates = counters["graph.events.update"]
    start = parse_time(slot["start"]) + timedelta(days=1)
    new = {"start": format_time(start), "end": format_time(start + timedelta(minutes=30))}
    status, moved = await stack.post(f"/v1/interviews/{interview['id']}/reschedule", new, stack.token())
    assert status == 200, moved
    assert counters["graph.events.update"] == updates + 2  # one PATCH each
    assert events_at(stack, ALEX, slot["start"]) == []
    _panel, theirs = _split(stack, new["start"])
    assert _addresses(theirs) == [CANDIDATE]
    cancels = counters["graph.events.cancel"]
    status, cancelled = await stack.post(f"/v1/interviews/{interview['id']}/cancel", {}, stack.token())
    assert status == 200, cancelled
    assert cancelled["status"] == "cancelled"
    assert counters["graph.events.cancel"] == cancels + 2  # one cancel each
    assert events_at(stack, ALEX, new["start"]) == []


async def test_a_refused_candidate_invite_withdraws_the_whole_booking(calendar_stack: Stack) -> None:
    """The candidate's event is refused (4xx): the panel event is cancelled, the row failed, the
    time free again; the manager gets the error and nobody keeps a half booking."""
    stack = calendar_stack
    people = [user(stack, "Megan Bowen")["mail"]]
    slot = await _slot(stack, people, 30)
    graph = stack.client.app[SERVICE_KEY]._graph
    real = graph.create_event

    async def refuse_candidate(
        token: str, organizer: str, event: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        if event.get("isOnlineMeeting") is False:  # the candidate's own (no second meeting)
            from calendar_backend.errors import ValidationError

            raise ValidationError("attendees", "refused")
        made: dict[str, Any] = await real(token, organizer, event, **kw)
        return made

    graph.create_event = refuse_candidate
    try:
        status, doc = await stack.post("/v1/interviews", booking_body(people, slot, "refused"), stack.token())
    finally:
        graph.create_event = real
    assert status >= 400, doc
    assert events_at(stack, ALEX, slot["start"]) == []
    assert events_at(stack, people[0], slot["start"]) == []
    async with stack.runtime.store.transaction() as tx:
        from sqlalchemy import text

        statuses = (await tx.execute(text("SELECT status FROM interviews"))).scalars().all()
        ops = (await tx.execute(text("SELECT operation, result FROM audit_log ORDER BY seq"))).all()
    assert list(statuses) == ["failed"]
    assert ("interview.create.candidate", "error:validation_error") in [tuple(o) for o in ops] or any(
        o[0] == "interview.create.candidate" and o[1].startswith("error:") for o in ops
    )
    assert ("interview.create", "withdrawn") in [tuple(o) for o in ops]
    # the time is free again: the same slot books (a new key)
    status, doc = await stack.post("/v1/interviews", booking_body(people, slot, "again"), stack.token())
    assert status == 201, doc


async def _booked(stack: Stack, key: str) -> tuple[dict[str, Any], dict[str, str]]:
    people = [user(stack, "Adele Vance")["mail"]]
    slot = await _slot(stack, people, 30)
    status, interview = await stack.post("/v1/interviews", booking_body(people, slot, key), stack.token())
    assert status == 201, interview
    return interview, slot


async def _hold_rows(stack: Stack) -> list[str]:
    async with stack.runtime.store.transaction() as tx:
        from sqlalchemy import text

        return list(
            (await tx.execute(text("SELECT id FROM interviews WHERE source = 'move'"))).scalars().all()
        )


async def test_a_refused_candidate_patch_puts_the_panel_back(calendar_stack: Stack) -> None:
    """The candidate's PATCH is refused: the panel's event is patched back to the old time, the
    hold released, both events still agree with the database."""
    stack = calendar_stack
    interview, slot = await _booked(stack, "mv-refused")
    graph = stack.client.app[SERVICE_KEY]._graph
    real = graph.update_event
    theirs_id = _split(stack, slot["start"])[1]["id"]

    async def refuse_candidate(
        token: str, organizer: str, event_id: str, patch: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        if event_id == theirs_id:
            from calendar_backend.errors import ValidationError

            raise ValidationError("start", "refused")
        done: dict[str, Any] = await real(token, organizer, event_id, patch, **kw)
        return done

    start = parse_time(slot["start"]) + timedelta(days=1)
    new = {"start": format_time(start), "end": format_time(start + timedelta(minutes=30))}
    graph.update_event = refuse_candidate
    try:
        status, doc = await stack.post(f"/v1/interviews/{interview['id']}/reschedule", new, stack.token())
    finally:
        graph.update_event = real
    assert 400 <= status < 500, doc
    panel, theirs = _split(stack, slot["start"])  # both still at the old time
    assert panel["id"] == interview["event_id"]
    assert theirs["id"] == theirs_id
    assert events_at(stack, ALEX, new["start"]) == []
    assert await _hold_rows(stack) == []  # the new time is free again
    # and the move works once Graph accepts it
    status, moved = await stack.post(f"/v1/interviews/{interview['id']}/reschedule", new, stack.token())
    assert status == 200, moved
    _split(stack, new["start"])


async def test_a_cancel_that_fails_half_way_is_finished_by_the_retry(calendar_stack: Stack) -> None:
    """The candidate's event is cancelled first; the panel's cancel fails: the booking stays
    (the time reserved, the manager told); the retry cancels the panel's, nothing twice."""
    stack = calendar_stack
    interview, slot = await _booked(stack, "cx-half")
    graph = stack.client.app[SERVICE_KEY]._graph
    real = graph.cancel_event

    async def panel_down(token: str, organizer: str, event_id: str, *a: Any, **kw: Any) -> None:
        if event_id == interview["event_id"]:
            from calendar_backend.errors import GraphUnavailableError

            raise GraphUnavailableError()
        await real(token, organizer, event_id, *a, **kw)

    graph.cancel_event = panel_down
    try:
        status, doc = await stack.post(f"/v1/interviews/{interview['id']}/cancel", {}, stack.token())
    finally:
        graph.cancel_event = real
    assert status >= 500, doc
    live = events_at(stack, ALEX, slot["start"])
    assert [e["id"] for e in live] == [interview["event_id"]]  # only the candidate's is gone
    status, doc = await stack.post(f"/v1/interviews/{interview['id']}/cancel", {}, stack.token())
    assert status == 200, doc
    assert doc["status"] == "cancelled"
    assert events_at(stack, ALEX, slot["start"]) == []


async def test_recovery_moves_the_candidate_event_with_a_settled_hold(calendar_stack: Stack) -> None:
    """A move died after the panel's PATCH (before the candidate's): recovery completes the
    move and brings the candidate's own invite to the same time, with an audit row."""
    from calendar_backend import storage
    from calendar_backend.invites import event_times as _times
    from calendar_backend.runtime import build_reconciler

    stack = calendar_stack
    interview, slot = await _booked(stack, "settle")
    async with stack.runtime.store.transaction() as tx:
        row = await storage.get_interview(tx, interview["id"])
        assert row is not None
        start = row.start + timedelta(days=1)
        hold = await storage.insert_hold(tx, row, start, start + timedelta(minutes=30))
    assert hold is not None
    graph = stack.client.app[SERVICE_KEY]._graph
    token = await stack.client.app[SERVICE_KEY]._tokens.for_app(  # the app-only token
        *await _app_credential(stack)
    )
    await graph.update_event(
        token, ALEX, str(row.event_id), _times(hold.start, hold.end)
    )  # the panel's PATCH landed
    report = await build_reconciler(stack.runtime, stale_min=0).run_once()
    assert report.confirmed == 1
    new = format_time(hold.start)
    _split(stack, new)  # both events at the new time
    assert events_at(stack, ALEX, slot["start"]) == []
    async with stack.runtime.store.transaction() as tx:
        from sqlalchemy import text

        results = (
            await tx.execute(text("SELECT result FROM audit_log WHERE operation = 'interview.recover'"))
        ).scalars()
        assert "candidate_realigned" in list(results)


async def _app_credential(stack: Stack) -> tuple[str, Any]:
    from calendar_backend.sealing import tenant_credential_aad
    from calendar_backend.tokens import AppCredential

    tid = stack.devtenant.tenant_id
    async with stack.runtime.store.transaction() as tx:
        from calendar_backend import storage

        tenant = await storage.get_tenant(tx, tid)
    assert tenant is not None
    raw = stack.runtime.cipher.decrypt(tenant.credential_blob, aad=tenant_credential_aad(tid))
    return tid, AppCredential.from_bytes(raw)


async def test_a_candidate_link_booking_moves_and_cancels_both_events(calendar_stack: Stack) -> None:
    """The same two events from a candidate link (app-only writes): the candidate's own invite
    says the role and has no panel address; a move PATCHes each once, a cancel cancels each."""
    from tests.candidate.test_offers_api import capability, make_offer

    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    token = capability(await make_offer(stack, [megan], role="Data Engineer"))
    status, view = await stack.post("/v1/candidate/slots", {"token": token})
    assert status == 200, view
    first, later = view["slots"][0]["start"], view["slots"][-1]["start"]
    status, booked = await stack.post("/v1/candidate/book", {"token": token, "start": first})
    assert status == 201, booked
    panel, theirs = _split(stack, first)
    assert megan not in json.dumps(theirs).lower()
    assert "Data Engineer" in theirs["body"]["content"]
    assert CANDIDATE not in _addresses(panel)
    counters = stack.devtenant.tenant.counters
    updates, cancels = counters["graph.events.update"], counters["graph.events.cancel"]
    status, moved = await stack.post("/v1/candidate/reschedule", {"token": token, "start": later})
    assert status == 200, moved
    assert counters["graph.events.update"] == updates + 2
    _split(stack, later)
    assert events_at(stack, ALEX, first) == []
    status, cancelled = await stack.post("/v1/candidate/cancel", {"token": token})
    assert status == 200, cancelled
    assert counters["graph.events.cancel"] == cancels + 2
    assert events_at(stack, ALEX, later) == []


async def test_a_role_the_manager_gave_reaches_the_panel_and_candidate_invites(calendar_stack: Stack) -> None:
    stack = calendar_stack
    people = [user(stack, "Megan Bowen")["mail"].lower()]
    slot = await _slot(stack, people)
    body = {**booking_body(people, slot, "with-role"), "role": "Data Engineer"}
    status, interview = await stack.post("/v1/interviews", body, stack.token())
    assert status == 201, interview
    panel, theirs = _split(stack, slot["start"])
    assert "<b>Role:</b> Data Engineer" in panel["body"]["content"]
    assert "your interview for Data Engineer" in theirs["body"]["content"]


async def test_a_role_without_one_and_bad_roles(calendar_stack: Stack) -> None:
    stack = calendar_stack
    people = [user(stack, "Megan Bowen")["mail"].lower()]
    slot = await _slot(stack, people)
    creates = stack.devtenant.tenant.counters["graph.events.create"]
    for bad in ("", "Engineer\nInjected: yes", "<script>", "x" * 121, "Tab\there", 7):
        body = {**booking_body(people, slot, "bad-role"), "role": bad}
        status, doc = await stack.post("/v1/interviews", body, stack.token())
        assert status == 400, (bad, doc)
    assert stack.devtenant.tenant.counters["graph.events.create"] == creates  # nothing written
    status, _ = await stack.post("/v1/interviews", booking_body(people, slot, "no-role"), stack.token())
    assert status == 201
    panel, _theirs = _split(stack, slot["start"])
    assert "Role:" not in panel["body"]["content"]
