"""Invite bodies: the panel's says who and what; the candidate's own shows no panel address."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from calendar_backend.invites import candidate_event, panel_body, room_location

PANEL = {
    "subject": "Interview: Dana Smith",
    "start": {"dateTime": "2026-12-16T10:00:00", "timeZone": "UTC"},
    "end": {"dateTime": "2026-12-16T10:45:00", "timeZone": "UTC"},
    "attendees": [
        {"type": "required", "emailAddress": {"address": "meganb@contoso.example"}},
        {"type": "required", "emailAddress": {"address": "dana@example.com"}},
    ],
    "body": {"contentType": "text", "content": "internal: strong on SQL"},
    "transactionId": "txn-1",
    "isOnlineMeeting": True,
}


def test_panel_body_names_candidate_role_and_loop_escaped() -> None:
    loop = [
        (
            datetime(2026, 12, 16, 10, tzinfo=UTC),
            datetime(2026, 12, 16, 10, 45, tzinfo=UTC),
            "Megan Bowen <x>",
        )
    ]
    body = panel_body(candidate_name="Dana <Smith>", role="Data Engineer", loop=loop)
    assert body["contentType"] == "html"
    assert "<b>Candidate:</b> Dana &lt;Smith&gt;" in body["content"]
    assert "<b>Role:</b> Data Engineer" in body["content"]
    assert "Wed 16 Dec 10:00\u201310:45 UTC: Megan Bowen &lt;x&gt;" in body["content"]


def test_candidate_event_has_only_the_candidate_and_the_join_link() -> None:
    event = candidate_event(
        PANEL,
        candidate_name="Dana Smith",
        candidate_email="dana@example.com",
        join_url="https://teams.microsoft.com/l/meetup-join/abc",
        role="Data Engineer",
        company="Contoso",
        organizer_name="Alex Wilber",
    )
    dumped = json.dumps(event)
    assert "meganb@" not in dumped
    assert "strong on SQL" not in dumped
    assert [a["emailAddress"]["address"] for a in event["attendees"]] == ["dana@example.com"]
    assert event["start"] == PANEL["start"]
    assert event["end"] == PANEL["end"]
    assert "https://teams.microsoft.com/l/meetup-join/abc" in event["body"]["content"]
    assert event["isOnlineMeeting"] is False  # the panel's meeting, not a second one
    assert event["transactionId"] != PANEL["transactionId"]
    unsafe = candidate_event(
        PANEL, candidate_name="D", candidate_email="d@example.com", join_url="javascript:alert(1)"
    )
    assert "javascript:" not in json.dumps(unsafe)


def test_rooms_show_their_display_name() -> None:
    where = room_location("rainier@contoso.example", "Rainier (4th floor)")
    assert where["displayName"] == "Rainier (4th floor)"
    assert where["locationEmailAddress"] == "rainier@contoso.example"


def test_the_candidate_transaction_id_is_deterministic_and_findable() -> None:
    """Recovery finds the candidate's event by its transactionId: it must be derived the same way
    every time and pass the Graph client's look-up rule (a colon suffix would not)."""
    import re

    from calendar_backend.invites import candidate_transaction_id

    panel = "2f1e4c8a-0b7d-5a3e-9c21-6d4b8e0f1a23"
    theirs = candidate_transaction_id(panel)
    assert theirs == candidate_transaction_id(panel)
    assert theirs != panel
    assert candidate_transaction_id(panel + "x") != theirs
    assert re.fullmatch(r"[A-Za-z0-9\-]{1,64}", theirs)
    assert candidate_event(PANEL, candidate_name="D", candidate_email="d@example.com", join_url="")[
        "transactionId"
    ] == candidate_transaction_id("txn-1")
