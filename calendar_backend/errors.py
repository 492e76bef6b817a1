"""The Calendar Service's one error tree.

```
CalendarError                               base; .code is stable for clients, .message is safe to show
├── ValidationError(field, reason)          400  payload or parameter does not satisfy the contract
├── InvalidTemplateError(problems)          400  a loop template that cannot be used (every problem)
├── AuthError                               401  token missing/invalid (uniform, no detail)
├── PermissionDeniedError                   403  not allowed (unconsented tenant, archived user, ...)
├── NotFoundError                           404
├── GoneError                               410  expired or revoked candidate link
├── ConflictError                           409
│   ├── CapReachedError                     409  a pool member would pass a weekly or daily cap
│   └── SlotTakenError                      409  the slot is no longer free; carries fresh options
├── RateLimitedError(retry_after_s)         429
├── ReconnectRequiredError                  401  the user's delegated grant is gone (expired or revoked
│                                                refresh token, consent withdrawn): reconnect card
├── UpstreamError                           502  Graph or Entra failed
│   ├── GraphThrottledError(retry_after_s)  503  throttled past our retry budget
│   ├── GraphUnavailableError               504
│   └── CalendarUnreadableError(mailboxes)  502  a calendar could not be read (never treated as free)
└── DecryptionError                         503  opaque; never says why (lock 2: wrong keyring)
```

Pure modules raise only `ValidationError` (or `ValueError` for programming errors). I/O modules translate
library exceptions into this tree at their boundary with `raise ... from exc`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # errors stays a leaf: contract imports it at run time
    from calendar_backend.contract import LoopSearchOut, SlotsResult


class CalendarError(Exception):
    """Base of every error the Calendar Service reports.

    The API audits a refusal once from its markers: ``lock2_denial`` (lock 2 refused: tenant
    credential or archived user, ``denied_oid`` naming the refused user when known) or
    ``denial_reason`` (a refused capability link). None of them reaches the wire.
    """

    status = 500
    code = "internal"
    message = "Something went wrong."
    lock2_denial: bool = False
    denied_oid: str | None = None
    denial_reason: str | None = None

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message is not None:
            self.message = message


class ValidationError(CalendarError):
    """The request does not satisfy the operation's contract."""

    status = 400
    code = "invalid_request"
    message = "The request is not valid."

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidTemplateError(CalendarError):
    """A loop template that cannot be used; ``problems`` lists every reason, for the user (the
    answer carries them as ``problems``)."""

    status = 400
    code = "invalid_template"
    message = "The loop template is not valid."

    def __init__(self, problems: tuple[str, ...]) -> None:
        super().__init__("; ".join(problems)[:500] or None)
        self.problems = problems


class AuthError(CalendarError):
    """Authentication failed. Deliberately uniform: no hint of which check failed."""

    status = 401
    code = "unauthorized"
    message = "Not authorised."


class PermissionDeniedError(CalendarError):
    """Authenticated, but not allowed to do this."""

    status = 403
    code = "forbidden"
    message = "Not allowed."


class NotFoundError(CalendarError):
    """No such resource (or not one the caller may see)."""

    status = 404
    code = "not_found"
    message = "Not found."


class GoneError(CalendarError):
    """The candidate link expired, was revoked or was used up."""

    status = 410
    code = "gone"
    message = "This link is no longer valid."


class ConflictError(CalendarError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"
    message = "That conflicts with the current state."
    repairs: list[Any] | None = None  # a drift repair's fresh repairs (watch_repairs), sent as ``repairs``


class CapReachedError(ConflictError):
    """Booking would take a pool member past a weekly or daily cap (and no override was given)."""

    code = "cap_reached"
    message = "An interviewer has reached their interview cap."

    def __init__(self, address: str, cap: str) -> None:
        super().__init__()
        self.address = address
        self.cap = cap  # "weekly" | "daily" | "training_weekly" | "training_daily"


class SlotTakenError(ConflictError):
    """The chosen slot is no longer free for everyone.

    ``fresh``: up to a few open times to offer instead (``None``: none could be found); the API
    sends them as ``fresh``, and the bot's client reads them back into the same field, which the
    dialogs know as ``fresh_slots``. ``fresh_loops``: for a loop (``POST /v1/loops``), a few whole
    loop options near the taken one (``None``: none computed); sent as ``fresh_loops``.
    """

    code = "slot_taken"
    message = "That time is no longer free."

    def __init__(
        self,
        message: str | None = None,
        *,
        fresh: SlotsResult | None = None,
        fresh_loops: LoopSearchOut | None = None,
    ) -> None:
        super().__init__(message)
        self.fresh = fresh
        self.fresh_loops = fresh_loops

    @property
    def fresh_slots(self) -> SlotsResult | None:
        """The bot side's name of `fresh` (what `client.CalendarServiceClient` read back)."""
        return self.fresh

    @fresh_slots.setter
    def fresh_slots(self, value: SlotsResult | None) -> None:
        self.fresh = value


class RateLimitedError(CalendarError):
    """Too many requests from this client or link."""

    status = 429
    code = "rate_limited"
    message = "Too many requests; try again shortly."

    def __init__(self, retry_after_s: float) -> None:
        super().__init__()
        self.retry_after_s = retry_after_s


class ReconnectRequiredError(CalendarError):
    """The user's delegated grant is gone; they must sign in to OpenSlot again."""

    status = 401
    code = "reconnect_required"
    message = "Please reconnect your calendar to OpenSlot."


class UpstreamError(CalendarError):
    """Microsoft Graph or Entra ID failed."""

    status = 502
    code = "upstream_error"
    message = "Microsoft 365 did not answer as expected."


class GraphThrottledError(UpstreamError):
    """Graph throttled us past the retry budget."""

    status = 503
    code = "throttled"
    message = "Microsoft 365 is busy; try again shortly."

    def __init__(self, retry_after_s: float) -> None:
        super().__init__()
        self.retry_after_s = retry_after_s


class GraphUnavailableError(UpstreamError):
    """Graph did not answer in time or is unavailable."""

    status = 504
    code = "upstream_unavailable"
    message = "Microsoft 365 is not reachable right now."


class CalendarUnreadableError(UpstreamError):
    """Some calendars could not be read; they are named, never treated as free."""

    code = "calendar_unreadable"
    message = "Some calendars could not be read."

    def __init__(self, mailboxes: tuple[str, ...]) -> None:
        super().__init__()
        self.mailboxes = mailboxes


class DecryptionError(CalendarError):
    """A sealed value could not be opened (wrong keyring, damaged or moved row). Opaque on purpose:
    the same 503 whatever the cause, so a caller learns nothing about the keys."""

    status = 503
    code = "unavailable"
    message = "OpenSlot cannot use your organisation's connection right now. Ask your admin."

    def __init__(self) -> None:
        super().__init__()
