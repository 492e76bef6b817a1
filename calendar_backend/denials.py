"""The audit budget for refusals of unauthenticated requests (the Calendar Service's edge, `app`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("calendar_backend.app")


class DenialBudget:
    """How many refusals of *unauthenticated* requests (no valid token: nobody to hold to
    account) may become audit rows: a token bucket of ``per_minute`` rows, as the bot's
    `dialogs.drop_audit`. A refusal over budget writes no row and is counted; the next row written
    carries the count (``denied:<reason>:skipped:<n>``), so the log still says how many there were.
    """

    def __init__(self, per_minute: int = 60, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(per_minute)
        self._tokens = float(per_minute)
        self._clock = clock
        self._last = clock()
        self.skipped = 0  # refusals not written since the last row
        self.skipped_total = 0

    def take(self) -> int | None:
        """``None`` when over budget (counted), else how many were skipped before this row."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            self.skipped += 1
            self.skipped_total += 1
            if self.skipped_total in (1, 10, 100) or self.skipped_total % 1000 == 0:
                log.warning(
                    "unauthenticated refusals over the audit budget: %d not audited", self.skipped_total
                )
            return None
        self._tokens -= 1.0
        skipped, self.skipped = self.skipped, 0
        return skipped
