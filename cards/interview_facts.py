"""Label/value rows for a booked interview (booked, list and cancelled cards)."""

from __future__ import annotations

from cards.elements import join_names
from cards.local_time import format_range
from cards.views import InterviewView

__all__ = ["interview_rows"]


def interview_rows(interview: InterviewView) -> list[tuple[str, str]]:
    """Return rows: candidate, interviewers, rooms (if any), time in both zones."""
    start, end, zones = interview.start_utc, interview.end_utc, interview.zones
    rows = [
        ("Candidate", interview.candidate.display_name),
        ("Interviewers", join_names([p.display_name for p in interview.interviewers])),
    ]
    if interview.rooms:
        rows.append(("Room", join_names([r.display_name for r in interview.rooms])))
    rows += [
        ("Your time", format_range(start, end, zones.manager)),
        ("Their time", format_range(start, end, zones.candidate)),
    ]
    return rows
