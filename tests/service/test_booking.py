"""Booking through the API: live re-check, the event in every calendar, idempotency, audit, privacy."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from calendar_backend.audit import verify_audit
from calendar_backend.contract import format_time, parse_time
from tests.service.conftest import ALEX, Stack, booking_body, canary_owners, events_at, next_week, user


async def _first_slot(stack: Stack, people: list[str], minutes: int = 45) -> dict[str, str]:
    start, end = next_week(datetime.now(UTC))
    status, doc = await stack.post(
        "/v1/slots/find",
        {
            "interviewers": people,
            "duration_min": minutes,
            "start": format_time(start),
            "end": format_time(end),
        },
        stack.token(),
    )
    assert status == 200, doc
    assert doc["slots"], doc
    return doc["slots"][0]  # type: ignore[no-any-return]


async def test_booking_creates_one_invite_in_every_calendar_with_a_teams_link(calendar_stack: Stack) -> None:
    stack = calendar_stack
    people = [user(stack, "Megan Bowen")["mail"], user(stack, "Adele Vance")["mail"]]
    slot = await _first_slot(stack, people)
    key = str(uuid.uuid4())
    status, interview = await stack.post("/v1/interviews", booking_body(people, slot, key), stack.token())
    assert status == 201, interview
    assert interview["status"] == "confirmed"
    assert interview["join_url"].startswith("https://teams.microsoft.com/")
    for address in [ALEX, *people]:
        events = events_at(stack, address, slot["start"])
        # the organizer holds the panel's event and the candidate's own (test_candidate_invite)
        assert len(events) == (2 if address == ALEX else 1), address
        assert {e["organizer"]["emailAddress"]["address"].lower() for e in events} == {ALEX}
    # A retry with the same idempotency key (a lost answer, a double click) books nothing new.
    status, again = await stack.post("/v1/interviews", booking_body(people, slot, key), stack.token())
    assert status == 201
    assert again["id"] == interview["id"]
    assert len(events_at(stack, ALEX, slot["start"])) == 2
    # The booked slot is no longer offered.
    status, doc = await stack.post(
        "/v1/slots/find",
        {
            "interviewers": people,
            "duration_min": 45,
            "start": slot["start"],
            "end": format_time(parse_time(slot["end"]) + timedelta(minutes=15)),
            "all": True,
        },
        stack.token(),
    )
    assert status == 200
    assert slot not in doc["slots"]


async def test_a_second_booking_of_the_same_slot_is_refused(calendar_stack: Stack) -> None:
    stack = calendar_stack
    people = [user(stack, "Megan Bowen")["mail"]]
    slot = await _first_slot(stack, people, 30)
    status, _ = await stack.post("/v1/interviews", booking_body(people, slot, "k1"), stack.token())
    assert status == 201
    creates = stack.devtenant.tenant.counters["graph.events.create"]
    status, doc = await stack.post(
        "/v1/interviews",
        booking_body(people, slot, "k2"),
        stack.token("meganb@contoso.example" if ALEX != "meganb@contoso.example" else ALEX),
    )
    assert status == 409, doc
    assert doc["error"] == "slot_taken"
    assert stack.devtenant.tenant.counters["graph.events.create"] == creates  # never a second create


async def test_cancel_removes_the_invite_from_attendees(calendar_stack: Stack) -> None:
    stack = calendar_stack
    people = [user(stack, "Adele Vance")["mail"]]
    slot = await _first_slot(stack, people, 30)
    status, interview = await stack.post("/v1/interviews", booking_body(people, slot, "c1"), stack.token())
    assert status == 201
    status, mine = await stack.get("/v1/interviews", stack.token())
    assert status == 200
    assert interview["id"] in [i["id"] for i in mine["interviews"]]
    status, cancelled = await stack.post(f"/v1/interviews/{interview['id']}/cancel", {}, stack.token())
    assert status == 200, cancelled
    assert cancelled["status"] == "cancelled"
    assert events_at(stack, people[0], slot["start"]) == []
    # Another manager cannot see or cancel it.
    status, _ = await stack.post(
        f"/v1/interviews/{interview['id']}/cancel", {}, stack.token("meganb@contoso.example")
    )
    assert status == 404


async def test_audit_rows_match_calendar_accesses_and_the_chain_verifies(calendar_stack: Stack) -> None:
    stack = calendar_stack
    people = [user(stack, "Megan Bowen")["mail"]]
    await _first_slot(stack, people)
    await _first_slot(stack, people)
    async with stack.runtime.store.transaction() as tx:
        from sqlalchemy import text

        rows = (await tx.execute(text("SELECT operation, result FROM audit_log ORDER BY seq"))).all()
    accesses = [r for r in rows if r[0] == "slots.find"]
    assert len(accesses) == 2
    keyring = __import__("calendar_backend.keyring", fromlist=["load_keyring"]).load_keyring(
        stack.settings.key_file
    )
    async with stack.runtime.store.transaction() as tx:
        report = await verify_audit(tx, signing_key=keyring.signing_key()[1])
    assert report.ok, report


async def test_no_calendar_content_reaches_the_database_logs_or_answers(calendar_stack: Stack) -> None:
    """Canary subjects, bodies and locations planted in the sample tenant never leave Graph."""
    stack = calendar_stack
    canary_people = canary_owners(stack.devtenant)
    assert canary_people
    addresses = canary_people[:5]
    start, end = next_week(datetime.now(UTC))
    answers = []
    for body in (
        {
            "interviewers": addresses,
            "duration_min": 30,
            "start": format_time(start),
            "end": format_time(end),
            "all": True,
        },
    ):
        status, doc = await stack.post("/v1/slots/find", body, stack.token())
        answers.append(str(doc))
        assert status == 200
    slot = await _first_slot(stack, addresses[:1], 30)
    status, doc = await stack.post(
        "/v1/interviews", booking_body(addresses[:1], slot, "canary"), stack.token()
    )
    answers.append(str(doc))
    status, doc = await stack.post("/v1/directory/resolve", {"queries": ["Meg"]}, stack.token())
    answers.append(str(doc))
    db_bytes = stack.db_path.read_bytes()
    for wal in stack.db_path.parent.glob("openslot.db-*"):
        db_bytes += wal.read_bytes()
    haystacks = {
        "database": db_bytes.decode("latin-1"),
        "logs": stack.log.getvalue(),
        "answers": "\n".join(answers),
    }
    for where, text in haystacks.items():
        assert "CANARY-" not in text, where
        assert "eyJ" not in text or where == "database", where  # no JWTs in logs or answers
    assert "refresh_token" not in haystacks["database"]
