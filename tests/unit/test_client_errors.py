"""The bot's client turns service errors back into readable messages (issue 13 defect 3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from calendar_backend.app import _error_response
from calendar_backend.client_errors import error_from as _error_from
from calendar_backend.contract import LoopSearchOut
from calendar_backend.errors import SlotTakenError


def test_a_refused_field_is_named_once() -> None:
    """No "interviewers: interviewers: has duplicate items"."""
    err = _error_from(
        400,
        {"error": "invalid_request", "field": "interviewers", "message": "interviewers: has duplicate items"},
    )
    assert err.message == "interviewers: has duplicate items"


def test_a_taken_loop_carries_its_fresh_loop_options_and_a_taken_slot_none() -> None:
    option = {
        "id": "o1",
        "days": 1,
        "idle_min": 0,
        "outside_candidate_min": 0,
        "sessions": [
            {
                "index": 0,
                "title": "Intro",
                "start": "2026-12-01T15:00:00Z",
                "end": "2026-12-01T15:30:00Z",
                "interviewers": ["meganb@contoso.example"],
                "room": None,
            }
        ],
    }
    body = {
        "error": "slot_taken",
        "message": "That time is no longer free.",
        "fresh_loops": {"options": [option]},
    }
    err = _error_from(409, body)
    assert isinstance(err, SlotTakenError)
    assert err.fresh_loops is not None
    assert [o.id for o in err.fresh_loops.options] == ["o1"]
    assert err.fresh_loops.options[0].sessions[0].start == datetime(2026, 12, 1, 15, tzinfo=UTC)
    single = _error_from(
        409, {"error": "slot_taken", "message": "That time is no longer free.", "fresh": {"slots": []}}
    )
    assert isinstance(single, SlotTakenError)
    assert single.fresh_loops is None


def test_the_error_body_names_fresh_loops_only_when_there_are_some() -> None:
    assert json.loads(_error_response(SlotTakenError()).body) == {
        "error": "slot_taken",
        "message": "That time is no longer free.",
    }
    loops = LoopSearchOut((), (), ())
    assert json.loads(_error_response(SlotTakenError(fresh_loops=loops)).body) == {
        "error": "slot_taken",
        "message": "That time is no longer free.",
        "fresh_loops": {"options": [], "people": [], "explanations": []},
    }
