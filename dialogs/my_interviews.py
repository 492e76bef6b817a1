"""The manager's interviews as cards show them: names, the candidate's own zone, no raw e-mails."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from botbuilder.core import TurnContext

from calendar_backend.contract import InterviewOut
from calendar_backend.errors import CalendarError
from cards.views import InterviewView, ZonePair
from dialogs.services import DialogServices
from dialogs.state import Member, ScheduleDraft
from dialogs.views import interview_view, zone_or_utc

MAX_LOOKUPS = 20


async def interview_views(
    context: TurnContext,
    services: DialogServices,
    token: str,
    interviews: Sequence[InterviewOut],
    zone: ZoneInfo,
) -> list[InterviewView]:
    """Views for ``interviews`` in the manager's ``zone``.

    The flow that booked an interview (conversation state) gives the panel's names and the
    candidate's zone; attendees no flow knows are looked up in the directory once (at most
    ``MAX_LOOKUPS``; a failed lookup leaves the address). The candidate's time is shown in the
    candidate's zone when known, else in the manager's.
    """
    drafts: dict[str, ScheduleDraft] = {}
    for doc in (await services.load_flows(context)).values():
        try:
            draft = ScheduleDraft.from_json(doc)
        except (KeyError, TypeError, ValueError):
            continue
        if draft.interview_id:
            drafts[draft.interview_id] = draft
    directory = {m.address.lower(): m for d in drafts.values() for m in d.members}
    unknown = sorted(
        {
            a.lower()
            for i in interviews
            for a in i.attendees
            if a.lower() not in directory and a.lower() != (i.candidate_email or "").lower()
        }
    )[:MAX_LOOKUPS]
    if unknown:
        try:
            found = await services.calendar.resolve_people(token, unknown)
        except CalendarError:
            found = []
        for address, matches in zip(unknown, found, strict=False):
            exact = [p for p in matches if p.address.lower() == address]
            if len(exact) == 1:
                p = exact[0]
                directory[address] = Member(p.address, p.display_name, p.time_zone, p.is_room)
    views = []
    for interview in interviews:
        booked = drafts.get(interview.id)
        candidate = zone_or_utc(booked.candidate_zone) if booked and booked.candidate_zone else zone
        views.append(interview_view(interview, ZonePair(zone, candidate), booked, directory))
    return views
