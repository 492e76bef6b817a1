"""The push of new drift to the manager's Teams chat (issue 19, docs/watcher.md "Push").

The bot holds no manager token between turns, so it cannot ask ``GET /v1/watch/drift`` on its
own. Instead the Calendar Service keeps, sealed with the interview, the conversation reference of
the chat it was booked from, and serves a service-to-service feed (``POST /v1/watch/feed``,
authenticated by the shared ``OPENSLOT_WATCH_FEED_KEY``) of undelivered drift items: drift id,
kind, who (a display name), the interview's title and time, the repairs and that reference.
`DriftPoller` asks it every few seconds (and at once after the public receiver forwarded a
notification), checks each ``serviceUrl`` again with the outbound-URL validator, posts the repair
card proactively and acknowledges (``POST /v1/watch/feed/ack``) what was posted or can never be
(at-least-once: the card is keyed by the drift id, a repeat is harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.schema import ConversationReference

from calendar_backend import errors
from calendar_backend.contract import OutboundPolicy, OutboundUrlError, check_outbound_url
from cards.drift_repair import build_drift_repair, drift_views, headline

LOG = logging.getLogger("openslot.watch")


class FeedApi(Protocol):
    async def watch_feed(self, feed_key: str) -> list[dict[str, Any]]: ...
    async def watch_feed_ack(self, feed_key: str, ids: list[str]) -> int: ...


class Sender(Protocol):
    async def continue_conversation(self, reference: Any, callback: Any, bot_id: str) -> Any: ...


def _zone(name: object) -> ZoneInfo:
    try:
        return ZoneInfo(str(name)) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class DriftPoller:
    """Polls the feed and posts repair cards. ``poke()`` makes the next round start at once."""

    def __init__(
        self,
        feed: FeedApi,
        feed_key: str,
        adapter: Sender,
        bot_app_id: str,
        policy: OutboundPolicy,
        interval_s: float = 3.0,
    ) -> None:
        self._feed = feed
        self._key = feed_key
        self._adapter = adapter
        self._bot_id = bot_app_id
        self._policy = policy
        self._interval = interval_s
        self._wake = asyncio.Event()
        self.posted = 0

    def poke(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Forever: a round, then wait for ``interval_s`` or a poke. Failures are logged, never raised."""
        while True:
            try:
                await self.round()
            except errors.CalendarError as err:
                LOG.warning("drift feed unavailable: %s", type(err).__name__)
            except Exception as exc:
                LOG.warning("drift poller round failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()

    async def round(self) -> int:
        """One round: post every undelivered item; acknowledge the posted and the undeliverable.
        Returns the number of cards posted."""
        items = await self._feed.watch_feed(self._key)
        done: list[str] = []
        posted = 0
        for item in items:
            drift_id = str(item.get("id", ""))
            if not drift_id:
                continue
            outcome = await self._post(item)
            if outcome != "retry":
                done.append(drift_id)
            posted += outcome == "posted"
        if done:
            await self._feed.watch_feed_ack(self._key, done)
        self.posted += posted
        return posted

    async def _post(self, item: Mapping[str, Any]) -> str:
        ref_doc = item.get("conversation_ref")
        views = drift_views([item], _zone(item.get("time_zone")))
        if not isinstance(ref_doc, dict) or not views:
            return "skipped"  # booked outside Teams (no chat to post to) or unreadable: never retried
        reference = ConversationReference().deserialize(ref_doc)
        if reference.conversation is not None:  # the SDK drops Teams' "tenantId"; the feed knows it
            reference.conversation.tenant_id = str(item.get("tenant_id", ""))
        try:  # the outbound-URL validator, again at send time (the allow-list may have changed)
            check_outbound_url(reference.service_url, self._policy)
        except OutboundUrlError as err:
            LOG.warning("drift card skipped: serviceUrl refused (%s)", err.reason)
            return "skipped"
        view = views[0]
        card = build_drift_repair(view)

        async def send(context: TurnContext) -> None:
            await context.send_activity(
                MessageFactory.attachment(CardFactory.adaptive_card(card), text=headline(view))
            )

        try:
            await self._adapter.continue_conversation(reference, send, self._bot_id)
        except Exception as exc:
            LOG.warning("drift card not posted: %s", type(exc).__name__)
            return "retry"
        return "posted"
