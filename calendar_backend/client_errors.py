"""The Calendar Service's error answers read back into the one error tree (the bot's side)."""

from __future__ import annotations

from typing import Any

from calendar_backend import errors
from calendar_backend.contract import LoopSearchOut, SlotsResult

BY_CODE: dict[str, type[errors.CalendarError]] = {
    "unauthorized": errors.AuthError,
    "forbidden": errors.PermissionDeniedError,
    "not_found": errors.NotFoundError,
    "gone": errors.GoneError,
    "conflict": errors.ConflictError,
    "slot_taken": errors.SlotTakenError,
    "reconnect_required": errors.ReconnectRequiredError,
    "upstream_error": errors.UpstreamError,
    "upstream_unavailable": errors.GraphUnavailableError,
    "calendar_unreadable": errors.UpstreamError,
}


def error_from(status: int, doc: dict[str, Any]) -> errors.CalendarError:
    """The error tree's exception for an error answer (``{"error": code, "message": ...}``)."""
    code = str(doc.get("error", ""))
    message = str(doc.get("message", "")) or None
    if code == "invalid_template":
        return errors.InvalidTemplateError(tuple(str(p) for p in doc.get("problems", [])))
    if code == "slot_taken":
        loops = doc.get("fresh_loops")
        return errors.SlotTakenError(
            message,
            fresh=SlotsResult.from_json(doc.get("fresh", {})),
            fresh_loops=LoopSearchOut.from_json(loops) if isinstance(loops, dict) else None,
        )
    if code == "invalid_request":
        field = str(doc.get("field", "request"))
        reason = (message or "invalid").removeprefix(f"{field}: ")  # the message names it already
        return errors.ValidationError(field, reason)
    if code in {"rate_limited", "throttled"}:
        return errors.RateLimitedError(float(doc.get("retry_after_s", 1)))
    cls = BY_CODE.get(code)
    if cls is None:
        return errors.UpstreamError(None if status >= 500 else message)
    return cls(message)
