"""Reserve before write (issue 12 finding 3): no Graph write before the database reservation that
makes an overlap impossible has committed.

The race is made deterministic: a rival booking of the same interviewer at the same time is sent
while the mover's free/busy re-check is on the wire (the re-check's answer is the one read before
the rival existed, as with real latency). Whatever wins, Outlook must hold exactly one event at
that time in the interviewer's calendar, and every live database row must name an Outlook event at
the row's own time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from calendar_backend import storage
from calendar_backend.app import SERVICE_KEY
from calendar_backend.audit import audit_log
from calendar_backend.contract import format_time, parse_time
from calendar_backend.errors import GraphUnavailableError
from calendar_backend.runtime import build_reconciler
from devtenant.zones import to_utc
from tests.candidate.test_offers_api import capability, make_offer
from tests.reliability.conftest import organizer_events
from tests.service.conftest import Stack, booking_body, calendar_stack, user  # noqa: F401

Rival = Callable[[], Awaitable[tuple[int, Any]]]


def _graph(stack: Stack) -> Any:
    return stack.client.app[SERVICE_KEY]._graph


def _rival_during_recheck(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, rival: Rival
) -> list[tuple[int, Any]]:
    """Run `rival` once, right after the next free/busy read returned (its answer is stale)."""
    graph = _graph(stack)
    real = graph.get_schedules
    outcome: list[tuple[int, Any]] = []

    async def hooked(*args: Any, **kwargs: Any) -> Any:
        answer = await real(*args, **kwargs)
        if not outcome:
            outcome.append((0, None))
            outcome[0] = await rival()
        return answer

    monkeypatch.setattr(graph, "get_schedules", hooked)
    return outcome


async def assert_outlook_agrees(stack: Stack, mailboxes: list[str]) -> None:
    """One live event per start time per mailbox; every live row is in Outlook at its time."""
    for mailbox in mailboxes:
        starts = [to_utc(e["start"]) for e in organizer_events(stack.devtenant, mailbox)]
        doubled = sorted({s for s in starts if starts.count(s) > 1})
        assert not doubled, f"{mailbox} double-booked at {doubled}"
    async with stack.runtime.store.transaction() as tx:
        rows = [storage.interview_row(r) for r in await tx.execute(sa.select(storage.interviews))]
    for row in rows:
        if row.status is not storage.InterviewStatus.CONFIRMED:
            continue
        events = {e["id"]: e for e in organizer_events(stack.devtenant, row.organizer_upn)}
        assert row.event_id in events, f"{row.id} confirmed but not in Outlook"
        for event_id in (row.event_id, row.candidate_event_id):  # the panel's, the candidate's
            if event_id is None:
                continue
            assert event_id in events, f"{row.id}: {event_id} not in Outlook"
            event = events[event_id]
            assert (to_utc(event["start"]), to_utc(event["end"])) == (row.start, row.end), (
                f"{row.id}: database says {row.start}, Outlook says {event['start']}"
            )
    assert not [r for r in rows if r.status is storage.InterviewStatus.PENDING], (
        "no reservation is left pending after the requests answered"
    )


def _later_slot(slots: list[dict[str, str]], after: datetime) -> dict[str, str]:
    return next(s for s in slots if parse_time(s["start"]) >= after + timedelta(hours=2))


async def test_candidate_reschedule_racing_a_booking_never_double_books(
    calendar_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    offer = await make_offer(stack, [megan])
    token = capability(offer)
    status, view = await stack.post("/v1/candidate/slots", {"token": token})
    assert status == 200, view
    first = view["slots"][0]
    status, booked = await stack.post("/v1/candidate/book", {"token": token, "start": first["start"]})
    assert status == 201, booked
    target = _later_slot(view["slots"], parse_time(first["end"]))
    rival = _rival_during_recheck(
        stack,
        monkeypatch,
        lambda: stack.post("/v1/interviews", booking_body([megan], target, "rival"), stack.token()),
    )
    status, moved = await stack.post("/v1/candidate/reschedule", {"token": token, "start": target["start"]})
    assert rival, "the rival ran during the re-check"
    assert sorted([status, rival[0][0]]) in ([200, 409], [201, 409]), (status, moved, rival)
    await assert_outlook_agrees(stack, [megan])


async def test_manager_reschedule_racing_a_booking_never_double_books(
    calendar_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    offer = await make_offer(stack, [megan])
    status, view = await stack.post("/v1/candidate/slots", {"token": capability(offer)})
    assert status == 200, view
    first = view["slots"][0]
    status, booked = await stack.post("/v1/interviews", booking_body([megan], first, "mine"), stack.token())
    assert status == 201, booked
    target = _later_slot(view["slots"], parse_time(first["end"]))
    target = {
        "start": target["start"],
        "end": format_time(parse_time(target["start"]) + timedelta(minutes=30)),
    }
    rival = _rival_during_recheck(
        stack,
        monkeypatch,
        lambda: stack.post("/v1/candidate/book", {"token": capability(offer), "start": target["start"]}),
    )
    status, moved = await stack.post(f"/v1/interviews/{booked['id']}/reschedule", target, stack.token())
    assert rival, "the rival ran during the re-check"
    assert sorted([status, rival[0][0]]) in ([200, 409], [201, 409]), (status, moved, rival)
    await assert_outlook_agrees(stack, [megan])


async def test_a_failed_move_restores_the_reservation_and_keeps_its_audit_row(
    calendar_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    offer = await make_offer(stack, [megan])
    token = capability(offer)
    status, view = await stack.post("/v1/candidate/slots", {"token": token})
    first = view["slots"][0]
    status, booked = await stack.post("/v1/candidate/book", {"token": token, "start": first["start"]})
    assert status == 201, booked
    target = _later_slot(view["slots"], parse_time(first["end"]))
    graph = _graph(stack)
    real, calls = graph.update_event, []

    async def broken(*args: Any, **kwargs: Any) -> Any:  # the move's PATCH times out
        calls.append(args)
        if len(calls) == 1:
            raise GraphUnavailableError()
        return await real(*args, **kwargs)

    monkeypatch.setattr(graph, "update_event", broken)
    status, failed = await stack.post("/v1/candidate/reschedule", {"token": token, "start": target["start"]})
    assert status == 504, failed
    await assert_outlook_agrees(stack, [megan])
    async with stack.runtime.store.transaction() as tx:
        rows = (await tx.execute(sa.select(audit_log.c.operation, audit_log.c.result))).all()
        free = await storage.find_conflicts(
            tx, stack.devtenant.tenant_id, [megan], parse_time(target["start"]), parse_time(target["end"])
        )
    assert ("offer.reschedule", "error:upstream_unavailable") in [tuple(r) for r in rows], rows
    assert ("offer.reschedule", "restored") in [tuple(r) for r in rows], rows
    assert free == [], "the new time is free again"
    monkeypatch.undo()
    status, moved = await stack.post("/v1/candidate/reschedule", {"token": token, "start": target["start"]})
    assert status == 200, moved
    await assert_outlook_agrees(stack, [megan])


@pytest.mark.parametrize("applied", [True, False], ids=["patch-applied", "patch-lost"])
async def test_a_move_whose_undo_failed_is_settled_by_recovery(
    calendar_stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    applied: bool,
) -> None:
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    offer = await make_offer(stack, [megan])
    token = capability(offer)
    status, view = await stack.post("/v1/candidate/slots", {"token": token})
    first = view["slots"][0]
    status, booked = await stack.post("/v1/candidate/book", {"token": token, "start": first["start"]})
    assert status == 201, booked
    target = _later_slot(view["slots"], parse_time(first["end"]))
    graph = _graph(stack)
    real, calls = graph.update_event, []

    async def flaky(*args: Any, **kwargs: Any) -> Any:  # every answer lost; the first applied
        calls.append(args)
        if applied and len(calls) == 1:
            await real(*args, **kwargs)
        raise GraphUnavailableError()

    monkeypatch.setattr(graph, "update_event", flaky)
    status, failed = await stack.post("/v1/candidate/reschedule", {"token": token, "start": target["start"]})
    assert status == 504, failed
    async with stack.runtime.store.transaction() as tx:  # the new time stays reserved
        held = await storage.find_conflicts(
            tx, stack.devtenant.tenant_id, [megan], parse_time(target["start"]), parse_time(target["end"])
        )
    assert [storage.hold_target(r) is not None for r in held] == [True]
    report = await build_reconciler(stack.runtime, stale_min=0).run_once()
    assert (report.confirmed, report.failed, report.left_pending) == (int(applied), int(not applied), 0)
    await assert_outlook_agrees(stack, [megan])
    async with stack.runtime.store.transaction() as tx:
        live = await storage.find_conflicts(
            tx, stack.devtenant.tenant_id, [megan], parse_time(first["start"]), parse_time(target["end"])
        )
    assert [(r.start, storage.hold_target(r)) for r in live] == [
        (parse_time(target["start"] if applied else first["start"]), None)
    ]


async def _audit_rows(stack: Stack) -> list[tuple[str, str]]:
    async with stack.runtime.store.transaction() as tx:
        rows = await tx.execute(
            sa.select(audit_log.c.operation, audit_log.c.result).order_by(audit_log.c.seq)
        )
        return [(str(r[0]), str(r[1])) for r in rows]


async def test_the_create_audit_row_survives_a_failed_confirm_and_recovery_confirms(
    calendar_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    offer = await make_offer(stack, [megan])
    status, view = await stack.post("/v1/candidate/slots", {"token": capability(offer)})
    slot = view["slots"][0]
    slot = {"start": slot["start"], "end": format_time(parse_time(slot["start"]) + timedelta(minutes=30))}

    async def database_down(*_a: Any, **_kw: Any) -> bool:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(storage, "confirm_interview", database_down)
    status, doc = await stack.post("/v1/interviews", booking_body([megan], slot, "k"), stack.token())
    assert status == 500, doc
    assert ("interview.create", "ok") in await _audit_rows(stack)  # the Graph write's own row
    monkeypatch.undo()
    report = await build_reconciler(stack.runtime, stale_min=0).run_once()
    assert report.confirmed == 1
    await assert_outlook_agrees(stack, [megan])


async def test_a_failed_cancel_keeps_the_reservation_and_audits_the_failure(
    calendar_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    offer = await make_offer(stack, [megan])
    status, view = await stack.post("/v1/candidate/slots", {"token": capability(offer)})
    slot = {
        "start": view["slots"][0]["start"],
        "end": format_time(parse_time(view["slots"][0]["start"]) + timedelta(minutes=30)),
    }
    status, booked = await stack.post("/v1/interviews", booking_body([megan], slot, "k"), stack.token())
    assert status == 201, booked

    async def broken(*_a: Any, **_kw: Any) -> None:
        raise GraphUnavailableError()

    monkeypatch.setattr(_graph(stack), "cancel_event", broken)
    status, doc = await stack.post(f"/v1/interviews/{booked['id']}/cancel", {}, stack.token())
    assert status == 504, doc
    # the candidate's own invite is cancelled first: its failure stops the cancel there
    assert ("interview.cancel.candidate", "error:upstream_unavailable") in await _audit_rows(stack)
    async with stack.runtime.store.transaction() as tx:
        still = await storage.find_conflicts(
            tx, stack.devtenant.tenant_id, [megan], parse_time(slot["start"]), parse_time(slot["end"])
        )
    assert [r.id for r in still] == [booked["id"]]  # Outlook still holds it: so does the DB
    await assert_outlook_agrees(stack, [megan])
    monkeypatch.undo()
    status, doc = await stack.post(f"/v1/interviews/{booked['id']}/cancel", {}, stack.token())
    assert status == 200, doc
    assert ("interview.cancel", "ok") in await _audit_rows(stack)
    await assert_outlook_agrees(stack, [megan])


async def test_a_cancel_during_a_move_leaves_outlook_and_the_database_agreeing(
    calendar_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    offer = await make_offer(stack, [megan])
    status, view = await stack.post("/v1/candidate/slots", {"token": capability(offer)})
    first = {
        "start": view["slots"][0]["start"],
        "end": format_time(parse_time(view["slots"][0]["start"]) + timedelta(minutes=30)),
    }
    status, booked = await stack.post("/v1/interviews", booking_body([megan], first, "mine"), stack.token())
    assert status == 201, booked
    target = _later_slot(view["slots"], parse_time(first["end"]))
    target = {
        "start": target["start"],
        "end": format_time(parse_time(target["start"]) + timedelta(minutes=30)),
    }
    rival = _rival_during_recheck(
        stack, monkeypatch, lambda: stack.post(f"/v1/interviews/{booked['id']}/cancel", {}, stack.token())
    )
    status, moved = await stack.post(f"/v1/interviews/{booked['id']}/reschedule", target, stack.token())
    assert rival[0][0] == 200, rival
    assert status == 409, moved
    await assert_outlook_agrees(stack, [megan])
    assert [
        e for e in organizer_events(stack.devtenant, megan) if e.get("subject") == "Interview: Dana Smith"
    ] == []
