"""Edits of a loop template: what the loop options card's buttons and "why nothing fits" offer
(pure: no clock, I/O, env, logging).

Each edit returns a new template that passed :func:`~calendar_backend.loop_templates.parse_template`
again (one set of rules), or raises :class:`~calendar_backend.loop_templates.LoopTemplateError`
with the user-facing reason. :func:`apply_change` applies a
:class:`~calendar_backend.loops.Suggestion` of the engine's explanations; a longer search window is
not a template edit (the caller widens its window), so it returns ``None`` for that one.
"""

from __future__ import annotations

from dataclasses import replace

from calendar_backend.loop_templates import (
    LoopTemplate,
    LoopTemplateError,
    Order,
    Problem,
    SessionTemplate,
    parse_template,
    to_json,
)
from calendar_backend.loops import Change, Suggestion

__all__ = [
    "apply_change",
    "with_free_order",
    "with_max_break",
    "with_max_days",
    "with_person_replaced",
    "with_session_minutes",
    "without_person",
]


def _checked(template: LoopTemplate) -> LoopTemplate:
    """Re-validate an edited template through its JSON form (one set of rules)."""
    return parse_template(to_json(template))


def _with_session(template: LoopTemplate, index: int, session: SessionTemplate) -> LoopTemplate:
    _session(template, index)
    sessions = list(template.sessions)
    sessions[index] = session
    return _checked(replace(template, sessions=tuple(sessions)))


def _session(template: LoopTemplate, index: int) -> SessionTemplate:
    if not 0 <= index < len(template.sessions):
        raise LoopTemplateError([Problem("sessions", f"there is no session {index + 1}")])
    return template.sessions[index]


def with_session_minutes(template: LoopTemplate, index: int, minutes: int) -> LoopTemplate:
    """Session ``index`` lasting ``minutes``. Raises LoopTemplateError on a bad length."""
    return _with_session(template, index, replace(_session(template, index), minutes=minutes))


def without_person(template: LoopTemplate, index: int, mailbox: str) -> LoopTemplate:
    """Session ``index`` without ``mailbox``. Raises LoopTemplateError when they are not on it."""
    return with_person_replaced(template, index, mailbox, None)


def with_person_replaced(
    template: LoopTemplate, index: int, mailbox: str, replacement: str | None
) -> LoopTemplate:
    """Session ``index`` with ``mailbox`` replaced by ``replacement`` (``None``: dropped).

    Raises:
        LoopTemplateError: no such session, the person is not on it, or the replacement is invalid
            or already on it.
    """
    session = _session(template, index)
    address = mailbox.strip().lower()
    if address not in session.interviewers:
        where = f'Session {index + 1} "{session.title}"'
        raise LoopTemplateError(
            [Problem(f"sessions[{index}].interviewers", f"{where}: {address} is not on it")]
        )
    if replacement is None:
        if len(session.interviewers) == 1:
            where = f'Session {index + 1} "{session.title}"'
            message = f"{where}: {address} is its only interviewer; replace them instead"
            raise LoopTemplateError([Problem(f"sessions[{index}].interviewers", message)])
        people = tuple(m for m in session.interviewers if m != address)
    else:
        people = tuple(replacement if m == address else m for m in session.interviewers)
    return _with_session(template, index, replace(session, interviewers=people))


def with_max_days(template: LoopTemplate, days: int) -> LoopTemplate:
    """The loop allowed to span ``days`` days. Raises LoopTemplateError outside 1..MAX_DAYS."""
    return _checked(replace(template, max_days=days))


def with_max_break(template: LoopTemplate, minutes: int) -> LoopTemplate:
    """Breaks of up to ``minutes``. Raises LoopTemplateError outside the break rule's range."""
    return _checked(replace(template, max_break=minutes))


def with_free_order(template: LoopTemplate) -> LoopTemplate:
    """The sessions in any order (pinned first/last sessions stay pinned)."""
    return _checked(replace(template, order=Order.FREE))


def apply_change(template: LoopTemplate, suggestion: Suggestion, session: int | None) -> LoopTemplate | None:
    """``template`` with ``suggestion`` (from the explanation about ``session``, ``None`` for the
    whole loop) applied; ``None`` for :attr:`Change.LONGER_WINDOW` (widen the search instead).

    Raises:
        LoopTemplateError: the change does not fit the template (e.g. a stale suggestion).
    """
    kind, value = suggestion.kind, suggestion.value
    if kind is Change.LONGER_WINDOW:
        return None
    if kind is Change.FREE_ORDER:
        return with_free_order(template)
    expected = str if kind is Change.DROP_PERSON else int
    if not isinstance(value, expected) or isinstance(value, bool):
        raise LoopTemplateError([Problem("", f"{kind.value}: unexpected value {value!r}")])
    if kind is Change.ADD_DAY:
        return with_max_days(template, int(value))
    if kind is Change.LONGER_BREAK:
        return with_max_break(template, int(value))
    if session is None:
        raise LoopTemplateError([Problem("sessions", f"{kind.value} needs a session")])
    if kind is Change.SHORTEN:
        return with_session_minutes(template, session, int(value))
    return without_person(template, session, str(value))
