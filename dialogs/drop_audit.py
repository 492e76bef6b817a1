"""Records of activities the bot refuses before any handler runs (security.md §7 #8).

An activity that passed Bot Framework authentication but names a tenant that never consented (or another
channel, or a serviceUrl outside the allow-list) is dropped by `bot.ActivityGate`; this module writes one
structured record of it to the bot's own log (logger ``openslot.bot.audit``, level WARNING). The bot
never writes into the Calendar Service's hash-chained audit log: that chain is the Calendar Service's
record of calendar access, and the bot process holds no key of it. Duplicate deliveries are retries,
not refusals, and are not recorded.

A record holds identifiers and codes only, as the line's text and as ``record.audit`` (a dict, for a
structured log handler): ``operation`` ``bot.activity``, ``result`` ``dropped:<reason>``, ``tenant`` the
claimed tenant id (or ``invalid`` when it is not an id: an organisation, not a person), ``actor`` a short
SHA-256 of the sender's Entra object id (as ``dialogs.turn_log`` hashes conversation ids; ``unknown``
when Teams sent none) and ``request_id`` the activity id (``none`` when it is not a plain id: letters,
digits and ``:_|-`` only, so never an address or a token). No name,
address, token, URL or message text.

Records are budgeted (``per_minute``, a token bucket in this process) so that a flood of refused
activities cannot turn into a flood of log lines; refusals over budget are counted and the count is
logged at 1, 10, 100 and every 1000.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from typing import Final

LOG = logging.getLogger("openslot.bot.audit")
OPERATION: Final = "bot.activity"
_GUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# No "@" and no ".": the id is the sender's choice, and an address or a JWT (``eyJ….eyJ…``) must
# never reach the log through it. Teams ids (``1:1Ab…``, ``f:…``, ``<conv>|0000001``) need neither.
_ACTIVITY_ID: Final = re.compile(r"[A-Za-z0-9:_|-]{1,128}")


def _guid_or(value: str | None, fallback: str) -> str:
    text = (value or "").strip().lower()
    return text if _GUID.fullmatch(text) else fallback


def actor_hash(oid: str | None) -> str:
    """The record's ``actor``: 12 hex digits of SHA-256 of the lower-case object id, or ``unknown``."""
    guid = _guid_or(oid, "")
    return hashlib.sha256(guid.encode()).hexdigest()[:12] if guid else "unknown"


class DropAudit:
    """Logs one record per refused activity, at most ``per_minute`` records a minute."""

    def __init__(
        self,
        *,
        per_minute: int = 60,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = LOG,
    ) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(per_minute)
        self._tokens = float(per_minute)
        self._clock = clock
        self._last = clock()
        self._log = logger
        self.suppressed = 0  # refusals not recorded because the budget was spent

    def _take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def record(
        self, reason: str, *, tenant_id: str | None, actor_oid: str | None, activity_id: str | None
    ) -> bool:
        """Log the record of one refusal; True when it was logged (False: over budget)."""
        if not self._take():
            self.suppressed += 1
            if self.suppressed in (1, 10, 100) or self.suppressed % 1000 == 0:
                self._log.warning(
                    "refused activities over the audit budget: %d not recorded", self.suppressed
                )
            return False
        fields = {
            "operation": OPERATION,
            "result": f"dropped:{reason}",
            "tenant": _guid_or(tenant_id, "invalid"),
            "actor": actor_hash(actor_oid),
            "request_id": activity_id if activity_id and _ACTIVITY_ID.fullmatch(activity_id) else "none",
        }
        self._log.warning(
            "refused activity: %s", " ".join(f"{k}={v}" for k, v in fields.items()), extra={"audit": fields}
        )
        return True
