"""Map dialog state + Calendar Service answers onto the card builders' view models. No I/O."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from calendar_backend.contract import InterviewOut, SlotsResult
from cards.views import (
    Blocker,
    BlockReason,
    ConfirmationView,
    InterviewView,
    Person,
    SlotPickerView,
    SlotView,
    ZonePair,
)
from dialogs.state import Member, ScheduleDraft, slot_id_for, slot_start_from


def zone_or_utc(name: str | None) -> ZoneInfo:
    """The zone named ``name``, UTC when empty or unknown."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ValueError, KeyError, OSError):  # OSError: "Europe" is a tzdata directory
        return ZoneInfo("UTC")


def zones_of(draft: ScheduleDraft) -> ZonePair:
    """Manager and candidate zones of a draft (the candidate's defaults to the manager's)."""
    manager = zone_or_utc(draft.manager_zone)
    return ZonePair(manager, zone_or_utc(draft.candidate_zone) if draft.candidate_zone else manager)


def window_of(draft: ScheduleDraft) -> tuple[datetime, datetime]:
    """The UTC search window ``[start of range_start, end of range_end)`` in the manager's zone.

    Raises:
        ValueError: when the draft has no date range.
    """
    if draft.range_start is None or draft.range_end is None:
        raise ValueError("draft has no date range")
    tz = zone_or_utc(draft.manager_zone)
    start = datetime.combine(draft.range_start, time(0), tzinfo=tz).astimezone(UTC)
    end_day: date = draft.range_end + timedelta(days=1)
    return start, datetime.combine(end_day, time(0), tzinfo=tz).astimezone(UTC)


CANDIDATE_DAY_KEY = "candidate_day"  # draft.extras: "HH:MM-HH:MM", the candidate's working day


def candidate_day_of(draft: ScheduleDraft) -> tuple[str, str] | None:
    """The candidate's working day the manager set for this request, else ``None`` (default)."""
    start, _, end = draft.extras.get(CANDIDATE_DAY_KEY, "").partition("-")
    return (start, end) if start and end else None


def link_day_of(draft: ScheduleDraft) -> tuple[int, int]:
    """The candidate's day in whole hours for a link: the working day the manager gave, widened
    to whole hours (08:30-17:30 gives 8-18), else 8-20."""
    given = candidate_day_of(draft)
    if given is None:
        return (8, 20)
    try:
        (sh, _sm), (eh, em) = ((int(x) for x in t.split(":")) for t in given)
    except ValueError:
        return (8, 20)
    end = 24 if (eh, em) == (0, 0) else min(24, eh + (1 if em else 0))
    return (sh, end) if 0 <= sh < end else (8, 20)


def person_key(address: str) -> str:
    """The opaque key a card button carries for a panel member (no address on the card)."""
    return "p" + hashlib.sha256(address.lower().encode()).hexdigest()[:16]


def _person(member: Member) -> Person:
    name = f"{member.display_name} (optional)" if member.optional else member.display_name
    return Person(name, member.address, is_room=member.is_room)


def candidate_of(draft: ScheduleDraft) -> Person:
    """The candidate as a card person."""
    return Person(draft.candidate_name or "Candidate", draft.candidate_email or "")


def slot_picker_view(draft: ScheduleDraft, result: SlotsResult, page: int = 1) -> SlotPickerView:
    """The slot picker for ``result`` (slots kept in the service's best-first order)."""
    names = {
        p.address.lower(): p.display_name
        for p in result.people
        if p.display_name and p.display_name.lower() != p.address.lower()
    }
    names.update({m.address.lower(): m.display_name for m in draft.members})  # the draft wins
    can_drop = len(draft.required) >= 2  # never offer to drop the last required interviewer
    blockers = tuple(
        Blocker(
            names.get(b.address.lower(), b.address),
            BlockReason(b.reason),
            person_key(b.address) if can_drop else None,
        )
        for b in result.blockers
        if b.reason in BlockReason.__members__.values()
    )
    slots = tuple(
        SlotView(slot_id_for(s.start), s.start, s.end, s.outside_candidate_day) for s in result.slots
    )
    return SlotPickerView(
        flow=draft.flow,
        candidate=candidate_of(draft),
        interviewers=tuple(_person(m) for m in draft.interviewers),
        duration=draft.length,
        zones=zones_of(draft),
        slots=slots,
        blockers=blockers,
        page=page,
        candidate_day="\u2013".join(candidate_day_of(draft) or ("08:00", "20:00"))
        if draft.candidate_zone
        else None,
        link_day=link_day_of(draft),
    )


def slot_of(draft: ScheduleDraft, slot_id: str) -> SlotView:
    """The slot a ``slot_id`` stands for, with the draft's duration. Raises ``ValueError``."""
    start = slot_start_from(slot_id)
    return SlotView(slot_id, start, start + draft.length)


def confirmation_view(draft: ScheduleDraft, slot_id: str) -> ConfirmationView:
    """The confirmation card's view for ``slot_id``."""
    return ConfirmationView(
        flow=draft.flow,
        candidate=candidate_of(draft),
        interviewers=tuple(_person(m) for m in draft.interviewers),
        rooms=tuple(_person(m) for m in draft.rooms),
        slot=slot_of(draft, slot_id),
        zones=zones_of(draft),
    )


def interview_view(
    interview: InterviewOut,
    zones: ZonePair,
    draft: ScheduleDraft | None = None,
    directory: dict[str, Member] | None = None,
) -> InterviewView:
    """An interview for the booked/list/cancelled cards.

    Names come from the draft, else from ``directory`` (address → member, lower-case keys), else
    the address. The candidate (the service's ``candidate_email``, else the draft's) is never
    listed as an interviewer.
    """
    members = {**(directory or {}), **{m.address.lower(): m for m in (draft.members if draft else ())}}
    candidate_email = (interview.candidate_email or ((draft.candidate_email or "") if draft else "")).lower()
    people = [a for a in interview.attendees if a.lower() != candidate_email]
    interviewers = tuple(
        _person(members[a.lower()]) if a.lower() in members else Person(a, a)
        for a in people
        if not (members.get(a.lower()) and members[a.lower()].is_room)
    )
    rooms = tuple(
        _person(members[a.lower()]) for a in people if members.get(a.lower()) and members[a.lower()].is_room
    )
    return InterviewView(
        interview_id=interview.id,
        candidate=Person(
            interview.candidate_name or "Candidate",
            candidate_email or (draft.candidate_email or "" if draft else ""),
        ),
        interviewers=interviewers or (Person("(nobody)", ""),),
        rooms=rooms,
        start_utc=interview.start,
        end_utc=interview.end,
        zones=zones,
        join_url=interview.join_url,
        outlook=interview.outlook if interview.outlook in {"deleted", "moved"} else None,
        moved_to=SlotView("moved", interview.outlook_start, interview.outlook_end)
        if interview.outlook_start
        and interview.outlook_end
        and interview.outlook_start < interview.outlook_end
        else None,
    )
