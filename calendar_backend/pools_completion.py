"""Completed training sessions credited automatically (issue 18), by a periodic task in `serve`.

:meth:`TrainingSweep.run_once` finds every trainee seat whose interview has ended, is still
``confirmed`` and is not credited yet (:func:`calendar_backend.storage.pool_completion.due_training_seats`;
at least :data:`CREDIT_GRACE` ago by the sweeper's clock;
a trainee whose decline the drift watcher recorded for that interview is not credited), and
credits each one with :func:`calendar_backend.pools_booking.complete_training` in its own
transaction: the seat is re-checked and locked in that transaction first, so a crash and restart,
or two service instances sweeping at once, credit a seat exactly once. Each credit is audited
(``pool.training_credit``, targets: interview, trainee; result: the stage attended), and each stage
change, graduation included, as ``pool.training`` (by ``complete_training``); the actor is
``openslot:training``. Graduation adds the trainee to the pool as a member.

I/O module (storage, audit); the rules are in :mod:`calendar_backend.pools_training`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from calendar_backend import storage
from calendar_backend.audit import AuditEvent, append_audit
from calendar_backend.pools_booking import complete_training
from calendar_backend.storage.pool_completion import DueSeat, due_training_seats

ACTOR: Final = "openslot:training"
# A session is credited only once it ended at least this long ago by the sweeper's clock, so a
# sweeper whose clock runs ahead does not credit a session still running.
CREDIT_GRACE: Final = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class SweepReport:
    """One sweep: seats credited and trainees graduated."""

    credited: int = 0
    graduated: int = 0


class TrainingSweep:
    """Credits trainees' completed sessions. Safe to run in several processes at once."""

    def __init__(self, store: storage.Store, clock: Callable[[], datetime], *, batch: int = 500) -> None:
        self._store = store
        self._clock = clock
        self._batch = batch

    async def run_once(self) -> SweepReport:
        """Credit every seat due (up to ``batch`` per call) whose interview ended at least
        :data:`CREDIT_GRACE` ago; returns what was done."""
        now = self._clock()
        cutoff = now - CREDIT_GRACE
        async with self._store.transaction() as tx:
            due = await due_training_seats(tx, cutoff, limit=self._batch)
        credited = graduated = 0
        for seat in due:
            done, graduations = await self._credit(seat, now, cutoff)
            credited += done
            graduated += graduations
        return SweepReport(credited, graduated)

    async def _credit(self, seat: DueSeat, now: datetime, cutoff: datetime) -> tuple[int, int]:
        request_id = str(uuid.uuid4())
        async with self._store.transaction() as tx:
            still = await due_training_seats(tx, cutoff, limit=1, seat=(seat.interview_id, seat.mailbox))
            if not still:  # credited by another sweep meanwhile, or cancelled / declined since
                return 0, 0
            role = await storage.pool_completion.seat_role(tx, seat.interview_id, seat.mailbox)
            events = await complete_training(
                tx,
                tenant_id=seat.tenant_id,
                interview_id=seat.interview_id,
                trainees=[seat.mailbox],
                actor=ACTOR,
                request_id=request_id,
                now=now,
            )
            await append_audit(
                tx,
                AuditEvent(
                    tenant_id=seat.tenant_id,
                    actor_oid=ACTOR,
                    operation="pool.training_credit",
                    targets=(seat.interview_id, seat.mailbox),
                    result=role or "credited",
                    at=now,
                    request_id=request_id,
                ),
            )
        return 1, sum(1 for e in events if e.is_graduation)
