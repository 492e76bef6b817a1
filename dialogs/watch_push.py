"""The bot side of the drift watcher wired onto the bot's public app (issue 19): the Graph
notification receiver (`watch_receiver`) and the drift feed poller (`watch_feed`), which the
receiver pokes after each forwarded notification."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from botbuilder.core import Storage

from calendar_backend.client import CalendarServiceClient
from calendar_backend.contract import OutboundPolicy
from dialogs.watch_feed import DriftPoller, StorageLedger
from dialogs.watch_receiver import ReceiverConfig, mount_watch_receiver

MIN_FEED_KEY = 32
POLLER_KEY = web.AppKey("drift_poller", dict[str, DriftPoller])


@dataclass(frozen=True)
class PushConfig:
    calendar_service_url: str
    feed_key: str = field(repr=False)
    bot_app_id: str
    poll_s: float = 3.0
    trust_forwarded_for: bool = False


def watch_feed_key(environ: Mapping[str, str], env: str) -> str:
    """``OPENSLOT_WATCH_FEED_KEY`` (shared with the Calendar Service).

    Raises:
        ValueError: (the bot refuses to start) shorter than 32 characters, or unset in prod while
            the watcher is on (``OPENSLOT_WATCH_NOTIFICATION_URL`` set).
    """
    key = environ.get("OPENSLOT_WATCH_FEED_KEY", "").strip()
    if key and len(key) < MIN_FEED_KEY:
        raise ValueError(f"OPENSLOT_WATCH_FEED_KEY must be at least {MIN_FEED_KEY} characters")
    if not key and env == "prod" and environ.get("OPENSLOT_WATCH_NOTIFICATION_URL", "").strip():
        raise ValueError(
            "the drift watcher is on (OPENSLOT_WATCH_NOTIFICATION_URL): set OPENSLOT_WATCH_FEED_KEY"
        )
    return key


def same_key(given: str, expected: str) -> bool:
    """Constant-time comparison; an empty expected key matches nothing."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def mount_drift_push(
    app: web.Application,
    config: PushConfig,
    *,
    adapter: Any,
    service_url_policy: OutboundPolicy,
    storage: Storage | None = None,
) -> None:
    """Mount the receiver; with a feed key, run the poller while the app runs. ``storage`` (the
    bot's own, shared by its replicas) keeps the posted-card ledger: a card is shown once."""
    app[POLLER_KEY] = {}

    def poke() -> None:
        poller = app[POLLER_KEY].get("poller")
        if poller is not None:
            poller.poke()

    mount_watch_receiver(
        app, ReceiverConfig(config.calendar_service_url, trust_forwarded_for=config.trust_forwarded_for), poke
    )
    if not config.feed_key:
        return

    async def lifecycle(app_: web.Application):  # type: ignore[no-untyped-def]
        session = aiohttp.ClientSession()
        client = CalendarServiceClient(config.calendar_service_url, session, timeout_s=10.0)
        poller = DriftPoller(
            client,
            config.feed_key,
            adapter,
            config.bot_app_id,
            service_url_policy,
            config.poll_s,
            ledger=StorageLedger(storage) if storage is not None else None,
        )
        app_[POLLER_KEY]["poller"] = poller
        task = asyncio.create_task(poller.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await session.close()

    app.cleanup_ctx.append(lifecycle)
