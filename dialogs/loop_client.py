"""What the loop conversation needs from the Calendar Service: the loop half of the client API
(issue 17), as a Protocol the dialogs code against.

The answers are ``calendar_backend.contract``'s dataclasses and ``LoopCalendarApi`` is the client's own
Protocol (``calendar_backend.client``), re-exported here.

Until the HTTP client has these methods, :func:`loop_api` answers ``None`` and the bot says that
loops are not available yet; a Calendar Service without the loop routes answers 404
(``errors.NotFoundError``), which the bot says the same way (:data:`UNAVAILABLE`).
"""

from __future__ import annotations

from typing import Final

from calendar_backend.client import LoopCalendarApi as LoopCalendarApi

UNAVAILABLE: Final = "Interview loops are not available on this Calendar Service yet."


def loop_api(calendar: object) -> LoopCalendarApi | None:
    """``calendar`` as the loop client, or ``None`` when it has no loop methods (yet)."""
    return calendar if isinstance(calendar, LoopCalendarApi) else None


def template_problems(err: Exception) -> tuple[str, ...]:
    """The template checker's sentences an ``invalid_template`` answer carries (``problems``),
    else ``()``."""
    problems = getattr(err, "problems", None)
    if isinstance(problems, (list, tuple)):
        return tuple(str(getattr(p, "message", p)) for p in problems)[:20]
    return ()
