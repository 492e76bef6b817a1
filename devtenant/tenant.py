"""The tenant model: a tenant file (Graph resource shapes, see README.md) loaded into indexed, mutable state.

Everything the Entra, Graph and Bot Framework surfaces of devtenant serve comes from one `DevTenant`.
Resources stay plain Graph-shaped dicts; this module only indexes them and shifts dates.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

JsonDict = dict[str, Any]

_DATE_KEYS = ("dateTime", "startDate", "endDate", "originalStart")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
# How many issued refresh tokens devtenant remembers: the newest ones (~0.6 KiB each, so ~2.3 MiB
# at most). MSAL asks for offline_access on every on-behalf-of call, so every OBO issues one; kept
# for ever they grew ~0.4 KiB per bench turn without end. A forgotten token is answered like one
# devtenant never issued (invalid_grant, 9002313).
REFRESH_TOKEN_LIMIT = 4096
READ_LOG_LIMIT = 20_000


@dataclass
class FaultPlan:
    """Faults injected into Graph answers on demand (tests and benchmarks)."""

    throttle_rate: float = 0.0  # share of Graph requests answered 429
    retry_after_s: float = 1.0
    unavailable_rate: float = 0.0  # share answered 503
    latency_ms: int = 0  # added to every Graph request
    drop_create_response: int = 0  # next N event creations succeed but the response is lost (504)
    seed: int = 0


@dataclass
class DevTenant:
    """A loaded tenant plus the runtime state devtenant keeps while it serves it."""

    data: JsonDict
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    counters: Counter[str] = field(default_factory=Counter)
    faults: FaultPlan = field(default_factory=FaultPlan)
    # Bot Framework token store: (user id, connection name) -> issued token response
    bot_tokens: dict[tuple[str, str], JsonDict] = field(default_factory=dict)
    # refresh tokens issued: token -> claims it was issued with, oldest first; at most
    # REFRESH_TOKEN_LIMIT (add them with `remember_refresh_token`)
    refresh_tokens: dict[str, JsonDict] = field(default_factory=dict)
    # authorization codes issued: code -> claims
    auth_codes: dict[str, JsonDict] = field(default_factory=dict)
    # transactionId -> (mailbox id, event id), for idempotent event creation
    transactions: dict[str, tuple[str, str]] = field(default_factory=dict)
    # directory changes for users/delta: list of (sequence, user id, removed?)
    directory_log: list[tuple[int, str, bool]] = field(default_factory=list)
    # called after every change to calendar data (Graph writes, test controls): the change
    # notification hub (devtenant.subscriptions) diffs the watched mailboxes then
    change_listeners: list[Callable[[], None]] = field(default_factory=list)
    # the `$select` of every event read (newest READ_LOG_LIMIT): {at, op, app, mailbox, select}
    read_log: deque[JsonDict] = field(default_factory=lambda: deque(maxlen=READ_LOG_LIMIT))

    @property
    def tenant_id(self) -> str:
        return str(self.data["tenant"]["id"])

    @property
    def domain(self) -> str:
        return str(self.data["tenant"].get("defaultDomain", "contoso.example"))

    def remember_refresh_token(self, token: str, record: JsonDict) -> None:
        """Record an issued refresh token, forgetting the oldest beyond `REFRESH_TOKEN_LIMIT`.

        Issue order is the dict's order, so the oldest record is the first key (dropping it costs
        ~1 µs at the limit). Revoked (rotated) records are kept like live ones until they are the
        oldest, so reusing a recently rotated token still gets "revoked" (50173), not "invalid".
        """
        self.refresh_tokens[token] = record
        while len(self.refresh_tokens) > REFRESH_TOKEN_LIMIT:
            del self.refresh_tokens[next(iter(self.refresh_tokens))]

    def changed(self) -> None:
        """Tell the change listeners that calendar data may have changed (cheap when none)."""
        for listener in list(self.change_listeners):
            listener()

    # ---- directory -------------------------------------------------------------------------
    def users(self) -> list[JsonDict]:
        return list(self.data.get("users", []))

    def rooms(self) -> list[JsonDict]:
        return list(self.data.get("rooms", []))

    def groups(self) -> list[JsonDict]:
        return list(self.data.get("groups", []))

    def applications(self) -> list[JsonDict]:
        return list(self.data.get("applications", []))

    def find_user(self, key: str) -> JsonDict | None:
        """A user by object id, UPN or mail (case-insensitive), else None."""
        k = key.lower()
        for u in self.data.get("users", []):
            if k in (
                str(u["id"]).lower(),
                str(u.get("userPrincipalName", "")).lower(),
                str(u.get("mail", "")).lower(),
            ):
                return u  # type: ignore[no-any-return]
        return None

    def find_room(self, key: str) -> JsonDict | None:
        k = key.lower()
        for r in self.data.get("rooms", []):
            if k in (str(r["id"]).lower(), str(r.get("emailAddress", "")).lower()):
                return r  # type: ignore[no-any-return]
        return None

    def find_mailbox(self, key: str) -> JsonDict | None:
        """A user or a room (anything with a calendar) by id or address."""
        return self.find_user(key) or self.find_room(key)

    def mailbox_address(self, mailbox: JsonDict) -> str:
        return str(mailbox.get("mail") or mailbox.get("emailAddress") or mailbox.get("userPrincipalName", ""))

    def find_group(self, key: str) -> JsonDict | None:
        k = key.lower()
        for g in self.data.get("groups", []):
            if k in (str(g["id"]).lower(), str(g.get("mail", "")).lower()):
                return g  # type: ignore[no-any-return]
        return None

    def find_application(self, app_id: str) -> JsonDict | None:
        for a in self.data.get("applications", []):
            if str(a["appId"]).lower() == app_id.lower():
                return a  # type: ignore[no-any-return]
        return None

    def events_of(self, mailbox: JsonDict) -> list[JsonDict]:
        """The mutable event list of a user or room."""
        return mailbox.setdefault("events", [])  # type: ignore[no-any-return]

    def set_account_enabled(self, user_id: str, enabled: bool) -> None:
        user = self.find_user(user_id)
        if user is None:
            raise KeyError(user_id)
        user["accountEnabled"] = enabled
        self.directory_log.append((len(self.directory_log) + 1, str(user["id"]), False))

    def remove_user(self, user_id: str) -> None:
        user = self.find_user(user_id)
        if user is None:
            raise KeyError(user_id)
        self.data["users"].remove(user)
        self.directory_log.append((len(self.directory_log) + 1, str(user["id"]), True))


def load_tenant(path: str | Path, *, today: date | None = None) -> DevTenant:
    """Load a tenant file; if it has `relativeDates.anchor`, shift all dates into the current week."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return tenant_from_dict(raw, today=today)


def tenant_from_dict(raw: JsonDict, *, today: date | None = None) -> DevTenant:
    """Build a `DevTenant` from an already-parsed tenant document (deep-copied)."""
    data = copy.deepcopy(raw)
    if data.get("schemaVersion", 1) != 1:
        raise ValueError("unsupported tenant schemaVersion")
    anchor = (data.get("relativeDates") or {}).get("anchor")
    if anchor:
        today = today or datetime.now(UTC).date()
        shift = week_shift(date.fromisoformat(anchor), today)
        if shift:
            _shift_dates(data, shift)
    return DevTenant(data=data)


def week_shift(anchor: date, today: date) -> timedelta:
    """The whole-week shift that moves the anchor's week onto today's week (Monday-based)."""
    anchor_monday = anchor - timedelta(days=anchor.weekday())
    today_monday = today - timedelta(days=today.weekday())
    return timedelta(days=(today_monday - anchor_monday).days)


def _shift_dates(node: Any, shift: timedelta) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if (
                key in _DATE_KEYS
                and isinstance(value, str)
                and _ISO_DATE.match(value)
                and not value.startswith("0001")
            ):  # Graph's "no end date" sentinel
                node[key] = _shift_iso(value, shift)
            else:
                _shift_dates(value, shift)
    elif isinstance(node, list):
        for item in node:
            _shift_dates(item, shift)


def _shift_iso(value: str, shift: timedelta) -> str:
    day = date.fromisoformat(value[:10]) + shift
    return day.isoformat() + value[10:]
