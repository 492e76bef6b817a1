"""The manager's notice that a candidate booked, moved or cancelled through their link (pure).

The time in the manager's zone and in the candidate's, the role, the Teams join link, and
Reschedule / Cancel (the same interview actions as "My interviews"), or none after a cancel.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from cards.actions import CardAction, Verb, build_execute
from cards.elements import action_set, build_card, field_rows, heading, note
from cards.local_time import format_range

__all__ = ["build_candidate_notice", "notice_line"]

_VERBS = {
    "booked": "booked their interview",
    "rescheduled": "moved their interview",
    "cancelled": "cancelled their interview",
}


def notice_line(candidate: str, event: str, when: str, *, reopened: bool = False) -> str:
    """One line for the manager, e.g. ``Dana Smith booked their interview: Wed 16 Dec, ...``."""
    verb = _VERBS.get(event, event)
    if event == "cancelled":
        again = " The link is open for a new booking." if reopened else ""
        return f"{candidate} {verb} ({when}).{again}"
    if event == "rescheduled":
        return f"{candidate} moved their interview to {when}."
    return f"{candidate} {verb}: {when}."


def build_candidate_notice(
    flow: str,
    *,
    candidate: str,
    event: str,
    start: datetime,
    end: datetime,
    manager_zone: ZoneInfo,
    candidate_zone: ZoneInfo,
    role: str = "",
    join_url: str = "",
    interview_id: str = "",
    reopened: bool = False,
) -> dict[str, object]:
    """Return the notice card; actions only while the interview stands. ``flow`` is the id the
    buttons carry (the interview actions need no flow state)."""
    mine = format_range(start, end, manager_zone)
    theirs = format_range(start, end, candidate_zone)
    titles = {
        "booked": "Interview booked by the candidate",
        "rescheduled": "Interview moved by the candidate",
        "cancelled": "Interview cancelled by the candidate",
    }
    rows = [("Candidate", candidate)]
    if role:
        rows.append(("Role", role))
    rows.append(("Your time", mine))
    if theirs != mine:
        rows.append(("Their time", theirs))
    body: list[dict[str, object]] = [heading(titles.get(event, "Candidate update")), field_rows(rows)]
    actions: list[dict[str, object]] = []
    if event == "cancelled":
        body.append(
            note(
                "The link is open for a new booking."
                if reopened
                else "The link is closed; create a new one to offer other times.",
                subtle=True,
            )
        )
    else:
        body.append(note("The invite is in your Outlook calendar.", subtle=True))
        if join_url.startswith("https://"):
            actions.append({"type": "Action.OpenUrl", "title": "Join Teams meeting", "url": join_url})
        if interview_id:
            actions += [
                build_execute(
                    "Reschedule", CardAction(Verb.RESCHEDULE_INTERVIEW, flow, interview_id=interview_id)
                ),
                build_execute(
                    "Cancel",
                    CardAction(Verb.CANCEL_INTERVIEW, flow, interview_id=interview_id),
                    style="destructive",
                ),
            ]
    if actions:
        body.append(action_set(actions))
    return build_card(body, fallback_text=notice_line(candidate, event, mine, reopened=reopened))
