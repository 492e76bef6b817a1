"""A tap on the drift repair card (issue 19): apply the repair with the manager's SSO token.

The card's button carries only the drift id and the repair id. The handler reads the manager's
open drift items first (the repair must still be offered), applies it (``POST
/v1/watch/drift/{id}/apply``: one Outlook update) and answers "Applied: …"; a 409 (the time was
taken, the interview changed) refreshes the card with the current repairs; no token → the
reconnect card (the caller maps ``ReconnectRequiredError``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from botbuilder.core import TurnContext

from calendar_backend import errors
from calendar_backend.contract import InterviewOut
from cards.actions import CardAction
from cards.drift_repair import DriftView, build_drift_applied, build_drift_failed, build_drift_repair
from dialogs.services import DialogServices, mailbox_zone
from dialogs.sso import require_user_token
from dialogs.views import zone_or_utc

Card = dict[str, object]
TAKEN = (
    "That repair can no longer be applied (the time was taken or the interview changed). "
    "Here are the current repairs."
)


@runtime_checkable
class DriftApi(Protocol):
    """The Calendar Service calls a drift tap needs (`CalendarServiceClient` has them)."""

    async def list_drift(self, token: str) -> list[dict[str, Any]]: ...
    async def apply_repair(self, token: str, drift_id: str, repair: str) -> dict[str, Any]: ...
    async def list_interviews(self, token: str) -> list[InterviewOut]: ...


def _view(item: Mapping[str, Any], interview: InterviewOut | None, zone: ZoneInfo) -> DriftView:
    who = str(item.get("who_name") or item.get("who") or "")
    start = (
        interview.start
        if interview is not None
        else datetime.fromisoformat(str(item["detected_at"]).replace("Z", "+00:00"))
    )
    return DriftView(
        str(item.get("id", "")),
        str(item.get("kind", "")),
        "" if "@" in who else who,  # never an address on a card
        interview.subject if interview is not None and interview.subject else "the interview",
        start,
        zone,
        tuple(r for r in item.get("repairs", ()) if isinstance(r, Mapping)),
    )


async def _current(calendar: DriftApi, token: str, drift_id: str, zone: ZoneInfo) -> DriftView | None:
    items = await calendar.list_drift(token)
    item = next((i for i in items if i.get("id") == drift_id), None)
    if item is None:
        return None
    interviews = await calendar.list_interviews(token)
    interview = next((i for i in interviews if i.id == item.get("interview_id")), None)
    return _view(item, interview, zone)


async def apply_repair_card(context: TurnContext, services: DialogServices, action: CardAction) -> Card:
    """The card that replaces the tapped drift card. Raises: ReconnectRequiredError (no token)."""
    calendar = services.calendar
    if not isinstance(calendar, DriftApi):  # pragma: no cover - every real client has them
        raise errors.UpstreamError("Repairs are not available.")
    token = await require_user_token(context, services.connection)
    zone = zone_or_utc(await mailbox_zone(context, services, token))
    drift_id, repair_id = action.drift_id or "", action.repair or ""
    view = await _current(calendar, token, drift_id, zone)
    if view is None:
        return build_drift_failed(None, "This change was already handled (or is no longer open).")
    repair = next((r for r in view.repairs if r.get("id") == repair_id), None)
    if repair is None:
        return build_drift_repair(view, notice=TAKEN)
    try:
        await calendar.apply_repair(token, drift_id, repair_id)
    except (errors.ConflictError, errors.SlotTakenError):
        fresh = await _current(calendar, token, drift_id, zone)
        if fresh is None:
            return build_drift_failed(view, "This change was already handled.")
        return build_drift_repair(fresh, notice=TAKEN)
    except errors.NotFoundError:
        return build_drift_failed(view, "This change was already handled (or is no longer open).")
    except errors.PermissionDeniedError:
        return build_drift_failed(view, "OpenSlot may not change this calendar any more.")
    return build_drift_applied(view, repair)
