"""The interview panel while it is collected: the people picker's answer, the directory check's
verdicts and the in-place fixes ("remove <name>", "optional <name>", "done"). Pure: no I/O, the
caller sends the replies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from calendar_backend.contract import PersonCheckOut, PersonOut
from cards.people_picker import PICKER_INPUT, PICKER_MARKER, TYPED_INPUT
from dialogs import parse
from dialogs.state import Member, ScheduleDraft

_OBJECT_ID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
MAX_PICKED = 20
MAX_CHOICES = 8  # candidates offered for one ambiguous name
FIXING_PANEL: Final = "fixing_panel"  # draft.extras flag: the panel is being corrected
DONE_WORDS: Final = frozenset(
    {"done", "ok", "okay", "skip", "go on", "continue", "no", "none", "that's it", "thats it"}
)
_PROBLEM_TEXT: Final = {
    "not_found": "I couldn't find \u201c{query}\u201d in your directory. Check the spelling or "
    "use an e-mail address.",
    "disabled": "{name}'s account is switched off, so they can't interview.",
    "no_mailbox": "{name} has no mailbox, so they can't get an invite.",
    "unreadable": "I can't see {name}'s free/busy time (their calendar isn't shared with you).",
    "not_allowed": "Your organisation doesn't let OpenSlot read {name}'s calendar.",
}


def picked_people_text(value: object) -> str | None:
    """The people-picker submit ``value`` as a typed answer.

    Picked people come as Entra object ids (GUIDs): ``"id1, id2"`` (lower-case). Names typed into
    the picker's box (a client without the people picker, e.g. the Agents Playground, submits the
    text) or into the card's ``typed`` box count as typed names: ``"Megan, adelev@x.com"``; both
    boxes may be used at once. Returns ``None`` when ``value`` is not a picker submit, and ``""``
    (the dialog then asks again) when nothing usable was given, more than ``MAX_PICKED`` people,
    or a part that is neither an id, a name nor an e-mail.
    """
    if not isinstance(value, dict) or value.get("picker") != PICKER_MARKER:
        return None
    parts: list[str] = []
    for key in (PICKER_INPUT, TYPED_INPUT):
        raw = value.get(key)
        if raw is not None and not isinstance(raw, str):
            return ""
        parts.extend(parse.split_people(raw or "", limit=None))
    if not parts or len(parts) > MAX_PICKED:
        return ""
    usable = [
        part.lower() if _OBJECT_ID_RE.fullmatch(part) else parse.parse_email(part) or parse.parse_name(part)
        for part in parts
    ]
    if not all(usable):
        return ""
    return ", ".join(dict.fromkeys(str(u) for u in usable))


def problem_text(check: PersonCheckOut) -> str:
    """What is wrong with one typed name, by display name (the typed text when not found)."""
    name = check.person.display_name if check.person else check.query
    template = _PROBLEM_TEXT.get(check.status, "I can't use \u201c{query}\u201d ({status}).")
    return template.format(name=name, query=check.query[:60], status=check.status)


def panel_text(draft: ScheduleDraft) -> str:
    """The panel shown back: people by display name, then rooms."""
    people = [f"{m.display_name} (optional)" if m.optional else m.display_name for m in draft.interviewers]
    rooms = [m.display_name for m in draft.rooms]
    text = "Panel: " + (", ".join(people) if people else "nobody yet")
    return text + (f"; room: {', '.join(rooms)}." if rooms else ".")


def is_fixing(draft: ScheduleDraft) -> bool:
    """True while the panel is being corrected in place."""
    return bool(draft.extras.get(FIXING_PANEL))


def fix_panel(draft: ScheduleDraft) -> ScheduleDraft:
    """The draft with the panel to be corrected in place."""
    return draft.evolve(extras={**draft.extras, FIXING_PANEL: "1"})


def _names(member: Member, typed: str) -> bool:
    """True when ``typed`` names ``member``: the address, or the start of the name or a word."""
    t = " ".join(typed.lower().split())
    name = member.display_name.lower()
    return bool(t) and (
        member.address == t or name.startswith(t) or any(word.startswith(t) for word in name.split())
    )


@dataclass(frozen=True, slots=True)
class PanelEdit:
    """One answer while the panel is being fixed: the draft after it, the names it adds ("" when
    none) and what to say (None: nothing)."""

    draft: ScheduleDraft
    names: str = ""
    reply: str | None = None


def edit_panel(draft: ScheduleDraft, answer: str) -> PanelEdit:
    """Apply "done", "remove <name>" or "optional <name>"; other text is names to add. The draft
    leaves fixing mode on "done" (with at least one required interviewer) or on names to add."""
    command = " ".join(answer.lower().split())
    settled = draft.evolve(extras={k: v for k, v in draft.extras.items() if k != FIXING_PANEL})
    if command in DONE_WORDS:
        if draft.required:
            return PanelEdit(settled)
        return PanelEdit(draft, reply="The panel has no required interviewer yet: please name at least one.")
    optional = re.match(r"^(?:make\s+)?(.+?)\s+optional$", answer.strip(), re.I) or re.match(
        r"^optional\s+(.+)$", answer.strip(), re.I
    )
    if optional:
        named = parse.split_people(optional.group(1))
        members = tuple(
            replace(m, optional=True) if not m.is_room and any(_names(m, n) for n in named) else m
            for m in draft.members
        )
        draft = draft.evolve(members=members)
        return PanelEdit(draft, reply=panel_text(draft))
    removal = re.match(r"^(?:remove|drop|without|delete)\s+(.+)$", answer.strip(), re.I)
    if removal:
        gone = parse.split_people(removal.group(1))
        kept = tuple(m for m in draft.members if not any(_names(m, g) for g in gone))
        draft = draft.evolve(members=kept)
        return PanelEdit(draft, reply=panel_text(draft) if kept else "The panel is empty now.")
    return PanelEdit(settled, names=answer)


def member_of(person: PersonOut) -> Member:
    """A directory person as a panel member."""
    return Member(person.address, person.display_name, person.time_zone, person.is_room)


@dataclass(frozen=True, slots=True)
class Checked:
    """The panel after a directory check: the draft, the first ambiguous name with its candidates
    (the names after it are still pending), and what is wrong with the others, by name."""

    draft: ScheduleDraft
    ambiguous: tuple[str, tuple[PersonOut, ...]] | None = None
    problems: tuple[str, ...] = ()


def apply_checks(draft: ScheduleDraft, checks: list[PersonCheckOut]) -> Checked:
    """Add every usable person of ``checks`` (``ok``, ``duplicate``; ``unreadable`` too, as they can
    still be made optional) to the panel, up to the first ambiguous name."""
    members, problems = list(draft.members), []
    known = {m.address for m in members}
    for check in checks:
        person = check.person
        if check.status == "ambiguous" and check.choices:
            rest = tuple(q for q in draft.pending_people if q != check.query)
            ambiguous = (check.query, tuple(check.choices[:MAX_CHOICES]))
            return Checked(draft.evolve(members=tuple(members), pending_people=rest), ambiguous)
        if check.status in {"ok", "duplicate", "unreadable"} and person is not None:
            if person.address not in known:
                known.add(person.address)
                members.append(member_of(person))
            if check.status == "unreadable":
                problems.append(
                    problem_text(check) + " Say \u201coptional "
                    f"{person.display_name}\u201d to invite them without checking, "
                    f"or \u201cremove {person.display_name}\u201d."
                )
            continue
        problems.append(problem_text(check))
    return Checked(draft.evolve(members=tuple(members), pending_people=()), problems=tuple(problems))
