"""Graph change notifications for events (webhooks) in devtenant: subscriptions, delivery, lifecycle.

Graph surface (platform.md C14):
  POST   /v1.0/subscriptions        changeType created|updated|deleted (comma-separated), resource
                                    `/users/{id}/events` or `/me/events` (also `.../calendar/events`),
                                    notificationUrl (https), lifecycleNotificationUrl?, clientState?
                                    (≤128 chars), expirationDateTime (≤ 10,080 min ahead). Both URLs
                                    get the validation handshake (POST `?validationToken=…`, answer
                                    200 text/plain with the token within 10 s) before the 201.
  GET    /v1.0/subscriptions        the caller's subscriptions (same app; delegated: same user)
  GET | PATCH | DELETE /v1.0/subscriptions/{id}   PATCH renews (expirationDateTime only)

Delivery: after every change to a watched mailbox (Graph writes, test controls, or any edit that
changes an event's changeKey) the hub diffs that mailbox's events against its last snapshot and
queues one basic notification (ids only, never content) per matching subscription. A receiver that
fails (non-2xx, connection error, or no answer within `response_timeout_s`) is retried with
exponential backoff (`retry_first_s` doubling up to `retry_max_s`) for `retry_window_s` (Graph: 4 h),
all measured on the tenant clock, so advancing the clock fires retries at once; after the window the
notification is dropped and a `missed` lifecycle notification is sent. Receivers that answer slowly
(> `slow_after_s`) in > 10 % of their last 100 answers get their notifications 10 min later, at
≥ 15 % they are dropped (Graph's throttling). Expired subscriptions are deleted silently; one
`reauthorizationRequired` is sent when a subscription has less than `reauthorize_before_s` left.

Test controls (see `add_subscription_controls`) change events as a given user, drop or delay
notifications, expire subscriptions and send lifecycle events. Everything runs on the devtenant
server's event loop: the Python API (`hub_for(tenant)`, `respond`, `move`, ...) must be called
there (tests from another thread use the HTTP controls).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import re
import secrets
import ssl
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from devtenant import zones
from devtenant.graph_access import CAL_READ, etag_of, open_calendar
from devtenant.graph_events import (
    answer_meeting,
    cancel_meeting,
    check_answer,
    is_organizer,
    new_event,
    sync_copies,
    touch,
    validated_writes,
)
from devtenant.graph_http import GRAPH_METADATA, GraphError, GraphRequest, GraphResponse, json_answer, route
from devtenant.tenant import DevTenant, JsonDict

_log = logging.getLogger(__name__)

MAX_LIFETIME = timedelta(minutes=10080)  # events, basic notifications (platform.md C14)
MAX_PER_MAILBOX = 1000
CHANGE_TYPES = ("created", "updated", "deleted")
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
_RESOURCE = re.compile(r"^/?(?:me|users/(?P<user>[^/?]+))/(?:calendar/)?events/?$", re.IGNORECASE)
_TICK_S = 0.05
# Graph writes and the controls scan at once (DevTenant.changed); the loop rescans this often to
# catch direct edits of the event store (real seconds)
_RESCAN_S = 0.5


@dataclass
class DeliveryPlan:
    """How the hub delivers (PUT /_devtenant/subscriptions/delivery replaces it field by field)."""

    drop_rate: float = 0.0  # share of change notifications silently lost (seeded)
    drop_next: int = 0  # the next N change notifications are lost
    delay_s: float = 0.0  # change notifications leave this much later (tenant clock)...
    delay_rate: float = 1.0  # ...this share of them (seeded; drawn only when below 1)
    delay_next: int = 0  # the next N change notifications leave `delay_next_s` later
    delay_next_s: float = 0.0
    seed: int = 0
    retry_first_s: float = 1.0  # first retry after a failed delivery (tenant clock), doubling
    retry_max_s: float = 300.0
    retry_window_s: float = 4 * 3600.0  # Graph retries for up to 4 hours
    response_timeout_s: float = 3.0  # a receiver must answer within this (real seconds)
    slow_after_s: float = 2.9  # an answer slower than this counts as slow
    validation_timeout_s: float = 10.0
    reauthorize_before_s: float = 3600.0
    allow_http: bool = False  # accept http:// notification URLs (never in Graph)


@dataclass
class Subscription:
    id: str
    resource: str
    change_types: tuple[str, ...]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expiration: datetime
    app_id: str
    creator_id: str | None  # the delegated user; None for app-only
    mailbox_id: str
    reauthorize_sent_for: datetime | None = None

    def to_graph(self) -> JsonDict:
        return {
            "@odata.context": f"{GRAPH_METADATA}#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.app_id,
            "changeType": ",".join(self.change_types),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": _iso(self.expiration),
            "creatorId": self.creator_id or self.app_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationQueryOptions": None,
            "notificationUrlAppId": None,
        }


@dataclass
class _Pending:
    subscription_id: str
    url: str
    item: JsonDict  # one entry of the notification's "value"
    kind: str  # "change" | "lifecycle"
    first_due: datetime
    due: datetime
    attempts: int = 0
    in_flight: bool = False


def _iso(dt: datetime) -> str:
    return zones.format_utc_z(dt)


def _parse_instant(raw: Any) -> datetime:
    if not isinstance(raw, str) or not raw.strip():
        raise GraphError(400, "InvalidRequest", "expirationDateTime is required.")
    text = re.sub(r"(\.\d{6})\d+", r"\1", raw.strip().replace("Z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise GraphError(400, "InvalidRequest", "expirationDateTime is not a valid DateTimeOffset.") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _extension_error(status: int, operation: str, reason: str) -> GraphError:
    word = {400: "BadRequest", 403: "Forbidden", 404: "NotFound"}.get(status, "BadRequest")
    return GraphError(
        status,
        "ExtensionError",
        f"Operation: {operation}; Exception: [Status Code: {word}; Reason: {reason}]",
    )


class SubscriptionHub:
    """Subscriptions of one tenant, the snapshots of watched mailboxes and the delivery queue."""

    def __init__(self, tenant: DevTenant) -> None:
        self.tenant = tenant
        self.plan = DeliveryPlan()
        self.subscriptions: dict[str, Subscription] = {}
        self.deliveries: deque[JsonDict] = deque(maxlen=10_000)  # attempts, drops (no secrets)
        self._snapshots: dict[str, dict[str, str]] = {}
        self._queue: list[_Pending] = []
        self._slow: dict[str, deque[bool]] = {}
        self._rng = random.Random(0)
        self._ca_files: list[Path] = []
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_scan = 0.0
        self.insecure_http = False  # `--allow-http-notifications`: survives resets
        self._generation = 0
        tenant.change_listeners.append(self.scan)

    # ---- configuration ---------------------------------------------------------------------
    def trust(self, ca_path: Path) -> None:
        """Also trust `ca_path` (PEM) when calling receivers (devtenant's own CA by default)."""
        if ca_path not in self._ca_files:
            self._ca_files.append(ca_path)
            self._session = None  # rebuilt with the new trust on next use (old one closed)

    def set_plan(self, **fields: Any) -> DeliveryPlan:
        names = {f.name for f in dataclasses.fields(DeliveryPlan)}
        unknown = set(fields) - names
        if unknown:
            raise ValueError(f"unknown delivery fields: {sorted(unknown)}")
        self.plan = dataclasses.replace(self.plan, **fields)
        if "seed" in fields:
            self._rng = random.Random(self.plan.seed)
        return self.plan

    def reset(self) -> None:
        """Forget every subscription, queued notification and record (POST /_devtenant/reset)."""
        self.subscriptions.clear()
        self._snapshots.clear()
        self._queue.clear()
        self._slow.clear()
        self.deliveries.clear()
        self.plan = DeliveryPlan()
        self._rng = random.Random(0)
        self._generation += 1  # deliveries still in flight no longer record or reschedule

    # ---- subscriptions ---------------------------------------------------------------------
    async def create(self, req: GraphRequest) -> Subscription:
        body = req.body if isinstance(req.body, dict) else {}
        change_types = self._change_types(body.get("changeType"))
        resource = str(body.get("resource") or "")
        mailbox = self._authorize(req, resource, "Create")
        url = self._url(body.get("notificationUrl"), "notificationUrl")
        lifecycle = body.get("lifecycleNotificationUrl")
        lifecycle_url = self._url(lifecycle, "lifecycleNotificationUrl") if lifecycle else None
        client_state = body.get("clientState")
        if client_state is not None and (not isinstance(client_state, str) or len(client_state) > 128):
            raise GraphError(400, "InvalidRequest", "clientState must be a string of at most 128 characters.")
        if body.get("includeResourceData"):
            raise GraphError(
                400,
                "InvalidRequest",
                "devtenant supports basic notifications only (includeResourceData false).",
            )
        expiration = self._expiration(body.get("expirationDateTime"), "Create")
        mailbox_id = str(mailbox["id"])
        if sum(s.mailbox_id == mailbox_id for s in self.subscriptions.values()) >= MAX_PER_MAILBOX:
            raise _extension_error(
                403, "Create", "Maximum number of subscriptions for this mailbox has been reached."
            )
        await self._validate(url)
        if lifecycle_url:
            await self._validate(lifecycle_url)
        self.scan()  # changes before this instant belong to older subscriptions
        sub = Subscription(
            str(uuid.uuid4()),
            resource,
            change_types,
            url,
            lifecycle_url,
            client_state,
            expiration,
            req.caller.app_id,
            str(req.caller.user["id"]) if req.caller.user else None,
            mailbox_id,
        )
        self.subscriptions[sub.id] = sub
        self._snapshots.setdefault(mailbox_id, self._snapshot(mailbox))
        self._ensure_running()
        return sub

    def visible(self, req: GraphRequest) -> list[Subscription]:
        """The subscriptions the caller may see: same app, and same user when delegated."""
        user_id = str(req.caller.user["id"]) if req.caller.user else None
        return [
            s
            for s in self.subscriptions.values()
            if s.app_id.lower() == req.caller.app_id.lower() and (user_id is None or s.creator_id == user_id)
        ]

    def find(self, req: GraphRequest, sub_id: str) -> Subscription:
        """A visible, unexpired subscription, else 404 (expiry removes it at the next tick)."""
        now = self.tenant.clock()
        for sub in self.visible(req):
            if sub.id == sub_id and sub.expiration > now:
                return sub
        raise GraphError(404, "ResourceNotFound", "The object was not found.")

    def renew(self, req: GraphRequest, sub: Subscription) -> Subscription:
        body = req.body if isinstance(req.body, dict) else {}
        extra = set(body) - {"expirationDateTime"}
        if extra:
            raise GraphError(
                400, "InvalidRequest", f"Only expirationDateTime can be updated, not {sorted(extra)}."
            )
        self._authorize(req, sub.resource, "Update")  # reauthorizes with the caller's token
        sub.expiration = self._expiration(body.get("expirationDateTime"), "Update")
        sub.reauthorize_sent_for = None
        return sub

    def delete(self, sub_id: str) -> Subscription | None:
        sub = self.subscriptions.pop(sub_id, None)
        self._queue = [p for p in self._queue if p.subscription_id != sub_id or p.in_flight]
        return sub

    def _change_types(self, raw: Any) -> tuple[str, ...]:
        kinds = tuple(k.strip() for k in str(raw or "").split(",") if k.strip())
        if not kinds or any(k not in CHANGE_TYPES for k in kinds):
            raise GraphError(
                400,
                "InvalidRequest",
                "changeType must be a comma-separated list of created, updated and deleted.",
            )
        return tuple(k for k in CHANGE_TYPES if k in kinds)

    def _authorize(self, req: GraphRequest, resource: str, operation: str) -> JsonDict:
        match = _RESOURCE.match(resource)
        if match is None:
            raise GraphError(
                400,
                "InvalidRequest",
                f"The resource '{resource}' is not supported "
                "(devtenant: /users/{id}/events or /me/events).",
            )
        try:
            req.caller.require(CAL_READ)
            probe = dataclasses.replace(req, args={"user": match.group("user")})
            mailbox, _ = open_calendar(probe, match.group("user"))
        except GraphError as exc:
            if exc.status == 400:
                raise
            raise _extension_error(exc.status, operation, exc.message) from exc
        return mailbox

    def _url(self, raw: Any, name: str) -> str:
        url = str(raw or "")
        scheme = url.split(":", 1)[0].lower()
        allow_http = self.plan.allow_http or self.insecure_http
        if scheme != "https" and not (scheme == "http" and allow_http):
            raise GraphError(400, "InvalidRequest", f"The {name} must use https.")
        return url

    def _expiration(self, raw: Any, operation: str) -> datetime:
        expiration = _parse_instant(raw)
        now = self.tenant.clock()
        if expiration <= now:
            raise _extension_error(400, operation, "Subscription expiration must be in the future.")
        if expiration - now > MAX_LIFETIME:
            minutes = int(MAX_LIFETIME.total_seconds() // 60)
            raise GraphError(
                400, "ExtensionError", f"Subscription expiration can only be {minutes} minutes in the future."
            )
        return expiration

    async def _validate(self, url: str) -> None:
        """Graph's validation handshake: 200 text/plain echoing the token within 10 s, else 400."""
        token = "Validation: Testing client application reachability for subscription Request-Id: " + str(
            uuid.uuid4()
        )
        try:
            async with self._client().post(
                url,
                params={"validationToken": token},
                data=b"",
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=aiohttp.ClientTimeout(total=self.plan.validation_timeout_s),
            ) as response:
                text = await response.text()
                kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                ok = response.status == 200 and kind == "text/plain" and text == token
        except TimeoutError:
            raise GraphError(400, "ValidationError", "Subscription validation request timed out.") from None
        except (aiohttp.ClientError, ssl.SSLError, OSError):
            ok = False
        if not ok:
            raise GraphError(
                400,
                "ValidationError",
                "Subscription validation request failed. "
                "Notification endpoint must respond with 200 OK to validation "
                "request.",
            )

    # ---- change detection ------------------------------------------------------------------
    def _snapshot(self, mailbox: JsonDict | None) -> dict[str, str]:
        if mailbox is None:
            return {}
        return {str(e["id"]): etag_of(e) for e in self.tenant.events_of(mailbox) if e.get("id")}

    def scan(self) -> None:
        """Diff every watched mailbox against its snapshot and queue the notifications."""
        self._last_scan = time.monotonic()
        watched: dict[str, list[Subscription]] = {}
        for sub in self.subscriptions.values():
            watched.setdefault(sub.mailbox_id, []).append(sub)
        for mailbox_id in list(self._snapshots):
            if mailbox_id not in watched:
                del self._snapshots[mailbox_id]
        for mailbox_id, subs in watched.items():
            current = self._snapshot(self.tenant.find_mailbox(mailbox_id))
            before = self._snapshots.get(mailbox_id, current)
            self._snapshots[mailbox_id] = current
            changes: list[tuple[str, str, str | None]] = [
                ("created" if eid not in before else "updated", eid, tag)
                for eid, tag in current.items()
                if before.get(eid) != tag
            ]
            changes += [("deleted", eid, None) for eid in before if eid not in current]
            for kind, event_id, tag in changes:
                for sub in subs:
                    if kind in sub.change_types:
                        self._enqueue_change(sub, kind, event_id, tag)

    def _enqueue_change(self, sub: Subscription, kind: str, event_id: str, tag: str | None) -> None:
        path = f"Users/{sub.mailbox_id}/Events/{event_id}"
        data: JsonDict = {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": path, "id": event_id}
        if tag:
            data["@odata.etag"] = tag
        item = {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": _iso(sub.expiration),
            "changeType": kind,
            "resource": path,
            "resourceData": data,
            "clientState": sub.client_state,
            "tenantId": self.tenant.tenant_id,
        }
        plan, now = self.plan, self.tenant.clock()
        if plan.drop_next > 0 or (plan.drop_rate > 0 and self._rng.random() < plan.drop_rate):
            plan.drop_next = max(plan.drop_next - 1, 0)
            self._record(sub.id, "change", kind, path, 0, "dropped")
            return
        delayed = plan.delay_s > 0 and (plan.delay_rate >= 1 or self._rng.random() < plan.delay_rate)
        due = now + timedelta(seconds=plan.delay_s if delayed else 0.0)
        if plan.delay_next > 0:
            plan.delay_next -= 1
            due = now + timedelta(seconds=plan.delay_next_s)
        self._queue.append(_Pending(sub.id, sub.notification_url, item, "change", due, due))

    def lifecycle(self, sub: Subscription, event: str) -> bool:
        """Queue a lifecycle notification; False when the subscription has no lifecycle URL.

        `subscriptionRemoved` also removes the subscription, as Graph does.
        """
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"unknown lifecycle event {event!r}")
        if event == "subscriptionRemoved":
            self.delete(sub.id)
        if not sub.lifecycle_url:
            self._record(sub.id, "lifecycle", event, None, 0, "no-lifecycle-url")
            return False
        item = {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": _iso(sub.expiration),
            "lifecycleEvent": event,
            "clientState": sub.client_state,
            "tenantId": self.tenant.tenant_id,
        }
        now = self.tenant.clock()
        self._queue.append(_Pending(sub.id, sub.lifecycle_url, item, "lifecycle", now, now))
        return True

    # ---- delivery loop ---------------------------------------------------------------------
    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            context = ssl.create_default_context()
            for ca in self._ca_files:
                context.load_verify_locations(cafile=str(ca))
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context), trust_env=False
            )
        return self._session

    async def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                _log.exception("subscription hub tick failed")
            await asyncio.sleep(_TICK_S)

    def tick(self) -> None:
        """One round: scan, expire, reauthorize, and send what is due (tenant clock)."""
        if time.monotonic() - self._last_scan >= _RESCAN_S:
            self.scan()
        now = self.tenant.clock()
        urls = {p.url for p in self._queue}
        for gone in set(self._slow) - urls - {s.notification_url for s in self.subscriptions.values()}:
            del self._slow[gone]  # bounded by live subscriptions, not by URLs ever seen
        for sub in list(self.subscriptions.values()):
            if sub.expiration <= now:
                self.delete(sub.id)
                self._record(sub.id, "expired", None, None, 0, "removed")
            elif (
                sub.expiration - now <= timedelta(seconds=self.plan.reauthorize_before_s)
                and sub.reauthorize_sent_for != sub.expiration
            ):
                sub.reauthorize_sent_for = sub.expiration
                self.lifecycle(sub, "reauthorizationRequired")
        for pending in list(self._queue):
            if pending.in_flight or pending.due > now:
                continue
            pending.in_flight = True
            task = asyncio.get_running_loop().create_task(self._deliver(pending))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, pending: _Pending) -> None:
        pending.attempts += 1
        generation = self._generation
        name = pending.item.get("changeType") or pending.item.get("lifecycleEvent")
        resource = pending.item.get("resource")
        slow = self._slow.setdefault(pending.url, deque(maxlen=100))
        share = sum(slow) / len(slow) if len(slow) >= 10 else 0.0
        if share >= 0.15:
            self._finish(pending)
            self._record(
                pending.subscription_id, pending.kind, name, resource, pending.attempts, "dropped-slow"
            )
            return
        started, status = time.monotonic(), "failed"
        try:
            async with self._client().post(
                pending.url,
                json={"value": [pending.item]},
                timeout=aiohttp.ClientTimeout(total=self.plan.response_timeout_s),
            ) as response:
                await response.read()
                status = str(response.status)
                ok = 200 <= response.status < 300
        except TimeoutError:
            ok, status = False, "timeout"
        except (aiohttp.ClientError, ssl.SSLError, OSError) as exc:
            ok, status = False, type(exc).__name__
        if generation != self._generation:
            return
        slow.append(time.monotonic() - started > self.plan.slow_after_s)
        self._record(
            pending.subscription_id,
            pending.kind,
            name,
            resource,
            pending.attempts,
            status if ok else f"failed:{status}",
        )
        if ok:
            self._finish(pending)
            return
        now = self.tenant.clock()
        backoff = min(self.plan.retry_first_s * 2 ** (pending.attempts - 1), self.plan.retry_max_s)
        if share > 0.10:
            backoff = max(backoff, 600.0)
        pending.due = now + timedelta(seconds=backoff)
        pending.in_flight = False
        if pending.due - pending.first_due > timedelta(seconds=self.plan.retry_window_s):
            self._finish(pending)
            self._record(pending.subscription_id, pending.kind, name, resource, pending.attempts, "given-up")
            sub = self.subscriptions.get(pending.subscription_id)
            if sub is not None and pending.kind == "change":
                self.lifecycle(sub, "missed")

    def _finish(self, pending: _Pending) -> None:
        with contextlib.suppress(ValueError):
            self._queue.remove(pending)

    def _record(
        self, sub_id: str, kind: str, name: str | None, resource: str | None, attempt: int, status: str
    ) -> None:
        self.deliveries.append(
            {
                "at": self.tenant.clock().isoformat(),
                "subscriptionId": sub_id,
                "kind": kind,
                "name": name,
                "resource": resource,
                "attempt": attempt,
                "status": status,
            }
        )

    def pending(self) -> int:
        return len(self._queue)

    def waiting(self) -> int:
        """Queued notifications not due yet on the tenant clock (delayed or awaiting a retry)."""
        now = self.tenant.clock()
        return sum(p.due > now and not p.in_flight for p in self._queue)


def hub_for(tenant: DevTenant) -> SubscriptionHub:
    """The tenant's hub, created on first use."""
    for listener in tenant.change_listeners:
        owner = getattr(listener, "__self__", None)
        if isinstance(owner, SubscriptionHub):
            return owner
    return SubscriptionHub(tenant)


async def close_hub(tenant: DevTenant) -> None:
    for listener in list(tenant.change_listeners):
        owner = getattr(listener, "__self__", None)
        if isinstance(owner, SubscriptionHub):
            await owner.close()


# ---- Graph routes --------------------------------------------------------------------------------


async def create_subscription(req: GraphRequest) -> GraphResponse:
    sub = await hub_for(req.tenant).create(req)
    return json_answer(sub.to_graph(), 201)


async def list_subscriptions(req: GraphRequest) -> GraphResponse:
    subs = hub_for(req.tenant).visible(req)
    value = [{k: v for k, v in s.to_graph().items() if k != "@odata.context"} for s in subs]
    return json_answer({"@odata.context": f"{GRAPH_METADATA}#subscriptions", "value": value})


async def get_subscription(req: GraphRequest) -> GraphResponse:
    sub = hub_for(req.tenant).find(req, str(req.args["sub"]))
    return json_answer(sub.to_graph())


async def update_subscription(req: GraphRequest) -> GraphResponse:
    hub = hub_for(req.tenant)
    sub = hub.renew(req, hub.find(req, str(req.args["sub"])))
    return json_answer(sub.to_graph())


async def delete_subscription(req: GraphRequest) -> GraphResponse:
    hub = hub_for(req.tenant)
    hub.delete(hub.find(req, str(req.args["sub"])).id)
    return GraphResponse(204)


ROUTES = (
    route("POST", r"subscriptions", "graph.subscriptions.create", create_subscription),
    route("GET", r"subscriptions", "graph.subscriptions.list", list_subscriptions),
    route("GET", r"subscriptions/(?P<sub>[^/]+)", "graph.subscriptions.get", get_subscription),
    route("PATCH", r"subscriptions/(?P<sub>[^/]+)", "graph.subscriptions.update", update_subscription),
    route("DELETE", r"subscriptions/(?P<sub>[^/]+)", "graph.subscriptions.delete", delete_subscription),
)


# ---- calendar changes as a given user (test controls, Python API) ------------------------------


def _mailbox(tenant: DevTenant, addr: str) -> JsonDict:
    mailbox = tenant.find_mailbox(addr)
    if mailbox is None:
        raise KeyError(f"unknown mailbox {addr}")
    return mailbox


def _event(tenant: DevTenant, mailbox: JsonDict, key: str) -> JsonDict:
    """An event of `mailbox` by id, else by iCalUId (its live copy)."""
    events = tenant.events_of(mailbox)
    for event in events:
        if str(event.get("id")) == key:
            return event
    for event in events:
        if event.get("iCalUId") == key and not event.get("isCancelled"):
            return event
    raise KeyError(f"unknown event {key}")


def _when(value: Any) -> JsonDict:
    if isinstance(value, dict):
        return {"dateTime": str(value["dateTime"]), "timeZone": str(value.get("timeZone", "UTC"))}
    instant = _parse_instant(value)
    return {"dateTime": instant.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def respond(
    tenant: DevTenant, attendee: str, event_key: str, response: str, *, send_response: bool = True
) -> JsonDict:
    """Answer a meeting as `attendee` (accepted | tentativelyAccepted | declined).

    With `send_response` the organizer's event records the answer too; without ("Do not send a
    response") only the attendee's copy changes. Returns the attendee's copy.
    """
    check_answer(response)
    mailbox = _mailbox(tenant, attendee)
    event = _event(tenant, mailbox, event_key)
    answer_meeting(tenant, mailbox, event, response, send_response=send_response)
    return event


def move(tenant: DevTenant, user: str, event_key: str, start: Any, end: Any) -> JsonDict:
    """Move an event as `user`: the organizer's move reaches every copy (answers reset)."""
    mailbox = _mailbox(tenant, user)
    event = _event(tenant, mailbox, event_key)
    event["start"], event["end"] = _when(start), _when(end)
    touch(tenant, event)
    if is_organizer(tenant, mailbox, event) and event.get("iCalUId"):
        sync_copies(tenant, mailbox, event, retime=True)
    tenant.changed()
    return event


def delete(tenant: DevTenant, user: str, event_key: str) -> None:
    """Delete an event as `user`: the organizer's delete cancels every attendee's copy."""
    mailbox = _mailbox(tenant, user)
    event = _event(tenant, mailbox, event_key)
    if is_organizer(tenant, mailbox, event):
        cancel_meeting(tenant, mailbox, event)
    else:
        tenant.events_of(mailbox).remove(event)
    tenant.changed()


def create(tenant: DevTenant, user: str, body: JsonDict) -> JsonDict:
    """Create an event (e.g. a conflicting meeting) as `user`; attendees get their copies."""
    mailbox = _mailbox(tenant, user)
    writes = validated_writes({"subject": "Busy", **body})
    writes["start"], writes["end"] = _when(body["start"]), _when(body["end"])
    event = new_event(tenant, mailbox, writes, None)
    tenant.events_of(mailbox).append(event)
    sync_copies(tenant, mailbox, event, retime=True)
    tenant.changed()
    return event


# ---- test controls ------------------------------------------------------------------------------

TenantOf = Callable[[web.Request], DevTenant]


@dataclass(frozen=True)
class _TenantSource:
    get: TenantOf


_TENANT_OF = web.AppKey("devtenant.subscriptions.tenant_of", _TenantSource)


def add_subscription_controls(app: web.Application, tenant_of: TenantOf) -> None:
    """Register `/_devtenant/subscriptions...`, `/_devtenant/graph/event-reads`, event controls.

    `tenant_of(request)` returns the served `DevTenant`.
    """
    app[_TENANT_OF] = _TenantSource(tenant_of)
    r = app.router
    r.add_get("/_devtenant/subscriptions", _list_all)
    r.add_route("GET", "/_devtenant/subscriptions/delivery", _delivery)
    r.add_route("PUT", "/_devtenant/subscriptions/delivery", _delivery)
    r.add_get("/_devtenant/subscriptions/deliveries", _deliveries)
    r.add_post("/_devtenant/subscriptions/{id}/expire", _expire)
    r.add_post("/_devtenant/subscriptions/{id}/lifecycle", _lifecycle)
    r.add_route("GET", "/_devtenant/graph/event-reads", _reads)
    r.add_route("DELETE", "/_devtenant/graph/event-reads", _reads)
    r.add_post("/_devtenant/mailboxes/{addr}/events/{event}/{action:respond|move|delete}", _event_action)
    r.add_post("/_devtenant/mailboxes/{addr}/events", _event_action)


def _tenant(request: web.Request) -> DevTenant:
    return request.app[_TENANT_OF].get(request)


async def _body_of(request: web.Request) -> JsonDict:
    doc = await request.json() if request.can_read_body else {}
    if not isinstance(doc, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return doc


def _sub_of(request: web.Request) -> tuple[SubscriptionHub, Subscription]:
    hub = hub_for(_tenant(request))
    sub = hub.subscriptions.get(request.match_info["id"])
    if sub is None:
        raise web.HTTPNotFound(text="unknown subscription")
    return hub, sub


async def _list_all(request: web.Request) -> web.Response:
    hub = hub_for(_tenant(request))
    return web.json_response(
        {
            "value": [s.to_graph() for s in hub.subscriptions.values()],
            "pending": hub.pending(),
            "waiting": hub.waiting(),
        }
    )


async def _delivery(request: web.Request) -> web.Response:
    hub = hub_for(_tenant(request))
    if request.method == "PUT":
        try:
            hub.set_plan(**await _body_of(request))
        except (TypeError, ValueError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
    return web.json_response(dataclasses.asdict(hub.plan))


async def _deliveries(request: web.Request) -> web.Response:
    return web.json_response({"value": list(hub_for(_tenant(request)).deliveries)})


async def _expire(request: web.Request) -> web.Response:
    hub, sub = _sub_of(request)
    sub.expiration = hub.tenant.clock()
    hub.tick()
    return web.json_response({"id": sub.id, "expired": True})


async def _lifecycle(request: web.Request) -> web.Response:
    hub, sub = _sub_of(request)
    event = str((await _body_of(request)).get("lifecycleEvent", ""))
    try:
        sent = hub.lifecycle(sub, event)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    hub.tick()
    return web.json_response({"id": sub.id, "lifecycleEvent": event, "queued": sent})


async def _reads(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    if request.method == "DELETE":
        tenant.read_log.clear()
    return web.json_response({"value": list(tenant.read_log)})


async def _event_action(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    addr, key = request.match_info["addr"], request.match_info.get("event", "")
    action = request.match_info.get("action", "create")
    body = await _body_of(request)
    out: JsonDict | None = None
    try:
        if action == "respond":
            out = respond(
                tenant,
                addr,
                key,
                str(body.get("response", "")),
                send_response=bool(body.get("sendResponse", True)),
            )
        elif action == "move":
            out = move(tenant, addr, key, body["start"], body["end"])
        elif action == "delete":
            delete(tenant, addr, key)
        else:
            out = create(tenant, addr, body)
    except KeyError as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc
    except (GraphError, ValueError, TypeError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    hub_for(tenant).tick()
    return web.json_response({"id": out["id"], "iCalUId": out.get("iCalUId")} if out else {"deleted": True})


def new_client_state() -> str:
    """A random clientState (helper for tests)."""
    return secrets.token_urlsafe(32)
