"""What the loop conversation needs from the Calendar Service: the loop half of the client API
(/work/prompts/loops_api.md, issue 17), as a Protocol the dialogs code against.

The answers are ``calendar_backend.contract``'s dataclasses; ``LoopCalendarApi``'s signatures are the
client's, name for name.

Until the HTTP client has these methods, :func:`loop_api` answers ``None`` and the bot says that
loops are not available yet; a Calendar Service without the loop routes answers 404
(``errors.NotFoundError``), which the bot says the same way (:data:`UNAVAILABLE`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Protocol, runtime_checkable

from calendar_backend.contract import (
    LoopOut,
    LoopSearchOut,
    LoopSessionOut,
    LoopTemplateOut,
)

UNAVAILABLE: Final = "Interview loops are not available on this Calendar Service yet."


@runtime_checkable
class LoopCalendarApi(Protocol):
    """The loop methods of the Calendar Service client (loops_api.md, signatures name for name)."""

    async def list_loop_templates(self, token: str) -> list[LoopTemplateOut]: ...

    async def save_loop_template(
        self, token: str, name: str, template: dict[str, Any]
    ) -> LoopTemplateOut: ...

    async def delete_loop_template(self, token: str, name: str) -> None: ...

    async def search_loops(
        self,
        token: str,
        *,
        template: dict[str, Any] | None = None,
        template_name: str | None = None,
        start: datetime,
        end: datetime,
        candidate_time_zone: str | None = None,
        limit: int = 5,
    ) -> LoopSearchOut: ...

    async def book_loop(
        self,
        token: str,
        *,
        template: dict[str, Any],
        sessions: list[LoopSessionOut],
        candidate_name: str,
        candidate_email: str,
        candidate_time_zone: str | None,
        transaction_id: str,
    ) -> LoopOut: ...

    async def list_loops(self, token: str) -> list[LoopOut]: ...

    async def cancel_loop(self, token: str, loop_id: str) -> LoopOut: ...

    async def reschedule_loop(self, token: str, loop_id: str, sessions: list[LoopSessionOut]) -> LoopOut: ...


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
