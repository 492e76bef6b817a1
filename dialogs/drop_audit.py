"""Audit rows for activities the bot refuses before any handler runs (security.md §7 #8).

An activity that passed Bot Framework authentication but names a tenant that never consented (or another
channel, or a serviceUrl outside the allow-list) is dropped by `bot.ActivityGate`; this module appends one
row to the same hash-chained audit log the Calendar Service writes (`calendar_backend.audit`), in the
shared database (`OPENSLOT_DATABASE_URL`), so an admin sees it with `python -m calendar_backend audit
export`. Duplicate deliveries are retries, not refusals, and are not audited.

A row holds identifiers and codes only: the claimed tenant id (or ``invalid`` when it is not an id), the
sender's Entra object id when Teams sent one (else ``unknown``), ``operation`` ``bot.activity``,
``result`` ``dropped:<reason>``, and the activity id as the request id. Nothing from the message text.

Writes are budgeted (``per_minute`` rows, a token bucket in this process) so that a flood of refused
activities cannot turn into a flood of database writes; refusals over budget are counted and the count
is logged. A database without the audit table, or any write error, is logged and never breaks the turn:
dropping the activity is what protects the tenant; the row is the record of it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from calendar_backend.audit import AuditEvent, append_audit

LOG = logging.getLogger("openslot.bot.audit")
OPERATION: Final = "bot.activity"
_GUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ACTIVITY_ID: Final = re.compile(r"[A-Za-z0-9:._|@-]{1,128}")
_APPEND_ATTEMPTS: Final = 3  # belt and braces: a same-seq race fails on the primary key; retry it


def _guid_or(value: str | None, fallback: str) -> str:
    text = (value or "").strip().lower()
    return text if _GUID.fullmatch(text) else fallback


class DropAudit:
    """Appends one audit row per refused activity, at most ``per_minute`` rows a minute."""

    def __init__(
        self, engine: AsyncEngine, *, per_minute: int = 60, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._engine = engine
        self._rate = per_minute / 60.0
        self._burst = float(per_minute)
        self._tokens = float(per_minute)
        self._clock = clock
        self._last = clock()
        self.suppressed = 0  # refusals not written because the budget was spent

    def _take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    async def record(
        self, reason: str, *, tenant_id: str | None, actor_oid: str | None, activity_id: str | None
    ) -> bool:
        """Write the row for one refusal; True when it was written."""
        if not self._take():
            self.suppressed += 1
            if self.suppressed in (1, 10, 100) or self.suppressed % 1000 == 0:
                LOG.warning("refused activities over the audit budget: %d not audited", self.suppressed)
            return False
        request_id = activity_id if activity_id and _ACTIVITY_ID.fullmatch(activity_id) else "none"
        event = AuditEvent(
            tenant_id=_guid_or(tenant_id, "invalid"),
            actor_oid=_guid_or(actor_oid, "unknown"),
            operation=OPERATION,
            targets=(),
            result=f"dropped:{reason}",
            at=datetime.now(UTC),
            request_id=request_id,
        )
        for attempt in range(_APPEND_ATTEMPTS):
            try:
                async with self._engine.connect() as tx:
                    if tx.dialect.name == "sqlite":  # take the write lock before reading the head
                        await tx.exec_driver_sql("BEGIN IMMEDIATE")
                    await append_audit(tx, event)  # PostgreSQL: append_audit's advisory lock
                    await tx.commit()
                return True
            except IntegrityError:
                if attempt == _APPEND_ATTEMPTS - 1:
                    LOG.error("could not audit a refused activity: the chain head kept moving")  # noqa: TRY400
            except SQLAlchemyError as err:
                # The type only: a traceback would carry the statement and its parameters.
                LOG.error("could not audit a refused activity: %s", type(err).__name__)  # noqa: TRY400
                break
        return False
