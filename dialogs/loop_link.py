"""'Send a link to the candidate' for an interview loop (issue 17): the loop options card's button.

Instead of the manager picking an option, the candidate gets one link whose page offers whole-loop
options by day; one post there books every session (calendar_backend/candidate_loops.py). The link is
made with the flow's template and search window (``POST /v1/offers`` with ``loop_template``; the
mailbox gate checks every person and room then, and again on every view) and shown on the same link
card as a single-meeting link (`cards.candidate_link`): copy, e-mail to the candidate, revoke.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from botbuilder.core import TurnContext

from calendar_backend.contract import OfferOut
from cards.candidate_link import build_candidate_link
from cards.loop_booked import build_loop_notice
from cards.views import OfferView, Person
from dialogs.loop_search import TITLE, window_of
from dialogs.loop_state import LoopDraft
from dialogs.services import DialogServices
from dialogs.sso import require_user_token
from dialogs.views import zone_or_utc

Card = dict[str, object]
UNAVAILABLE = "Candidate links for interview loops are not available on this Calendar Service yet."


@runtime_checkable
class LoopLinkApi(Protocol):
    """The client method that mints a loop link (calendar_backend.client, name for name)."""

    async def create_loop_offer(
        self,
        token: str,
        *,
        template: dict[str, Any],
        window_start: datetime,
        window_end: datetime,
        candidate_name: str,
        candidate_time_zone: str | None = None,
        conversation_ref: dict[str, Any] | None = None,
        candidate_email: str | None = None,
        manager_time_zone: str | None = None,
    ) -> OfferOut: ...


async def send_loop_link(context: TurnContext, services: DialogServices, draft: LoopDraft) -> Card:
    """Mint the loop link for ``draft`` and answer the link card (or a notice why not)."""
    api = services.calendar
    if not isinstance(api, LoopLinkApi) or draft.template is None:
        return build_loop_notice(TITLE, UNAVAILABLE)
    token = await require_user_token(context, services.connection)
    start, end = window_of(draft, services.clock())
    name = draft.candidate_name or "Candidate"
    offer = await api.create_loop_offer(
        token,
        template=draft.template,
        window_start=start,
        window_end=end,
        candidate_name=name,
        candidate_time_zone=draft.candidate_zone,
        # sealed in the offer; returned only on a booking, for the manager's notice
        conversation_ref=TurnContext.get_conversation_reference(context.activity).serialize(),
        candidate_email=draft.candidate_email or None,
        manager_time_zone=draft.manager_zone,
    )
    if not offer.url:
        return build_loop_notice(TITLE, "The booking link could not be created.")
    candidate = Person(name, draft.candidate_email or "")
    view = OfferView(offer.id, offer.url, offer.expires_at)
    return build_candidate_link(draft.flow, candidate, view, zone_or_utc(draft.manager_zone))
