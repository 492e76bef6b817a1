"""The push of new drift to the manager's Teams chat (issue 19, docs/watcher.md "Push").

The bot holds no manager token between turns, so it cannot ask ``GET /v1/watch/drift`` on its
own. Instead the Calendar Service keeps, sealed with the interview, the conversation reference of
the chat it was booked from, and serves a service-to-service feed (``POST /v1/watch/feed``,
authenticated by the shared ``OPENSLOT_WATCH_FEED_KEY``) of undelivered drift items: drift id,
kind, who (a display name), the interview's title and time, the repairs and that reference.
`DriftPoller` asks it every few seconds (and at once after the public receiver forwarded a
notification), checks each ``serviceUrl`` again with the outbound-URL validator, posts the repair
card proactively and acknowledges (``POST /v1/watch/feed/ack``) what was posted or can never be.

Each card is shown ONCE:

- two bot replicas: the feed LEASES what it hands out to the asking poller (``{"poller": id}``, one
  random id per process), so the other replica does not get it until the lease runs out;
- a crash (or a lost ack) between the post and the ack: the poller records the posted drift id and
  the card's activity id in the bot's own durable storage (`StorageLedger`, ``bot_state`` rows
  ``drift-posted/<id>``) right after the post and BEFORE it acks; an item the ledger knows is acked
  again, never posted again; once acked the row is forgotten.

What no design can close without an idempotency key the Bot Connector does not offer
(docs/reference platform.md G3): the process dying, or the connection dropping, during the one
``POST /v3/conversations/{id}/activities`` itself, after Teams kept the message but before the bot
heard its id. Such a post is retried (at-least-once there): a missing repair card is worse than a
second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botbuilder.core import CardFactory, MessageFactory, Storage, TurnContext
from botbuilder.schema import ConversationReference

from calendar_backend import errors
from calendar_backend.contract import OutboundPolicy, OutboundUrlError, check_outbound_url
from cards.drift_repair import build_drift_repair, drift_views, headline

LOG = logging.getLogger("openslot.watch")


class FeedApi(Protocol):
    async def watch_feed(self, feed_key: str, poller: str | None = None) -> list[dict[str, Any]]: ...
    async def watch_feed_ack(self, feed_key: str, ids: list[str]) -> int: ...


class Sender(Protocol):
    async def continue_conversation(self, reference: Any, callback: Any, bot_id: str) -> Any: ...


class PostedLedger(Protocol):
    """Which drift ids this bot has already posted (and the card's activity id)."""

    async def posted(self, drift_id: str) -> str | None: ...
    async def remember(self, drift_id: str, activity_id: str) -> None: ...
    async def forget(self, drift_ids: list[str]) -> None: ...


class MemoryLedger:
    """A process-local ledger (tests, a bot without storage): survives lost acks, not restarts."""

    def __init__(self) -> None:
        self._posted: dict[str, str] = {}

    async def posted(self, drift_id: str) -> str | None:
        """The card's activity id if ``drift_id`` was posted, else None."""
        return self._posted.get(drift_id)

    async def remember(self, drift_id: str, activity_id: str) -> None:
        """Record a posted card."""
        self._posted[drift_id] = activity_id

    async def forget(self, drift_ids: list[str]) -> None:
        """Drop acknowledged ids."""
        for drift_id in drift_ids:
            self._posted.pop(drift_id, None)


class StorageLedger:
    """The ledger in the bot's own durable storage (``bot_state`` via `dialogs.sql_storage`), shared
    by every replica on the same database: keys ``drift-posted/<drift id>``, values the card's
    activity id and when it was posted (no content, no address)."""

    PREFIX = "drift-posted/"

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def posted(self, drift_id: str) -> str | None:
        """The card's activity id if ``drift_id`` was posted, else None."""
        key = self.PREFIX + drift_id
        found = (await self._storage.read([key])).get(key)
        if not isinstance(found, dict):
            return None
        return str(found.get("activity_id") or "-")

    async def remember(self, drift_id: str, activity_id: str) -> None:
        """Record a posted card (create-only: a row already there records the same card)."""
        doc = {"activity_id": activity_id, "posted_at": datetime.now(UTC).isoformat()}
        with contextlib.suppress(KeyError):  # the storage's eTag conflict: already recorded
            await self._storage.write({self.PREFIX + drift_id: doc})

    async def forget(self, drift_ids: list[str]) -> None:
        """Drop acknowledged ids (the feed never hands them out again)."""
        if drift_ids:
            await self._storage.delete([self.PREFIX + d for d in drift_ids])


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
        *,
        ledger: PostedLedger | None = None,
        poller_id: str | None = None,
    ) -> None:
        self._ledger: PostedLedger = ledger or MemoryLedger()
        self.poller_id = poller_id or uuid.uuid4().hex  # the feed's lease holder
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
        """One round: post every undelivered item the ledger does not know, record each post, then
        acknowledge the posted, the already posted and the undeliverable. Returns the cards posted.
        Raises: CalendarError (the feed or the ack unreachable: the next round resumes)."""
        items = await self._feed.watch_feed(self._key, self.poller_id)
        done: list[str] = []
        posted = 0
        for item in items:
            drift_id = str(item.get("id", ""))
            if not drift_id:
                continue
            if await self._ledger.posted(drift_id) is not None:
                done.append(drift_id)  # posted before a crash or a lost ack: only ack it now
                continue
            outcome, activity_id = await self._post(item)
            if outcome == "retry":
                continue
            if outcome == "posted":  # record it before the ack
                posted += 1
                await self._record(drift_id, activity_id)
            done.append(drift_id)
        self.posted += posted
        if done:
            await self._feed.watch_feed_ack(self._key, done)
            await self._forget(done)
        return posted

    async def _record(self, drift_id: str, activity_id: str) -> None:
        try:
            await self._ledger.remember(drift_id, activity_id)
        except Exception as exc:  # the ack below still records it, in the service
            LOG.warning("drift ledger write failed: %s", type(exc).__name__)

    async def _forget(self, drift_ids: list[str]) -> None:
        try:
            await self._ledger.forget(drift_ids)
        except Exception as exc:  # a leftover row only makes a later repeat skip: harmless
            LOG.warning("drift ledger cleanup failed: %s", type(exc).__name__)

    async def _post(self, item: Mapping[str, Any]) -> tuple[str, str]:
        """Post the card: ("posted", its activity id or "-"), ("skipped", "") when it can never be
        delivered, ("retry", "") when it was not posted."""
        ref_doc = item.get("conversation_ref")
        views = drift_views([item], _zone(item.get("time_zone")))
        if not isinstance(ref_doc, dict) or not views:
            return "skipped", ""  # booked outside Teams (no chat to post to) or unreadable: never retried
        reference = ConversationReference().deserialize(ref_doc)
        if reference.conversation is not None:  # the SDK drops Teams' "tenantId"; the feed knows it
            reference.conversation.tenant_id = str(item.get("tenant_id", ""))
        try:  # the outbound-URL validator, again at send time (the allow-list may have changed)
            check_outbound_url(reference.service_url, self._policy)
        except OutboundUrlError as err:
            LOG.warning("drift card skipped: serviceUrl refused (%s)", err.reason)
            return "skipped", ""
        view = views[0]
        card = build_drift_repair(view)

        sent: list[str] = []

        async def send(context: TurnContext) -> None:
            message = MessageFactory.attachment(CardFactory.adaptive_card(card))
            message.summary = headline(view)  # the notification's preview; the card says it once
            response = await context.send_activity(message)
            sent.append(str(getattr(response, "id", None) or "-"))

        try:
            await self._adapter.continue_conversation(reference, send, self._bot_id)
        except Exception as exc:
            LOG.warning("drift card not posted: %s", type(exc).__name__)
            return "retry", ""
        return "posted", sent[0] if sent else "-"
