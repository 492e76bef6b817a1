"""The bot's client turns service errors back into readable messages (issue 13 defect 3)."""

from __future__ import annotations

from calendar_backend.client import _error_from


def test_a_refused_field_is_named_once() -> None:
    """No "interviewers: interviewers: has duplicate items"."""
    err = _error_from(
        400,
        {"error": "invalid_request", "field": "interviewers", "message": "interviewers: has duplicate items"},
    )
    assert err.message == "interviewers: has duplicate items"
