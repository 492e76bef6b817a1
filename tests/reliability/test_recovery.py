"""The reconciler of stale pending bookings (calendar_backend/recovery.py), in process, on devtenant.

Only rows older than the threshold are touched; a row whose event Outlook holds (found by
transactionId, with the app-only token) is confirmed with that event, one without is failed; a Graph
outage leaves rows pending for the next run; every decision is one audit row. Plus the crash hook's
settings guard: it is refused outside the dev profile.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calendar_backend import storage
from calendar_backend.audit import audit_log
from calendar_backend.contract import format_time
from calendar_backend.errors import ValidationError
from calendar_backend.runtime import build_reconciler
from calendar_backend.settings import load_settings
from tests.devtenant.fixtures import DevTenantHandle
from tests.reliability.conftest import faults, organizer_events, running_stack
from tests.service.conftest import ALEX, Stack, next_week

CANDIDATE = "dana.smith@example.com"

MEGAN = "meganb@contoso.example"


async def _lost_create(stack: Stack) -> None:
    """A booking whose create answer was lost and given up on: pending row, event in Outlook."""
    start, end = next_week(datetime.now(UTC))
    status, doc = await stack.post(
        "/v1/slots/find",
        {"interviewers": [MEGAN], "duration_min": 30, "start": format_time(start), "end": format_time(end)},
        stack.token(),
    )
    assert status == 200, doc
    slot = doc["slots"][1]
    faults(stack.devtenant, drop_create_response=1)
    status, doc = await stack.post(
        "/v1/interviews",
        {
            "candidate": {"name": "Dana Smith", "email": "dana.smith@example.com"},
            "interviewers": [MEGAN],
            "start": slot["start"],
            "end": slot["end"],
            "idempotency_key": "lost",
        },
        stack.token(),
    )
    assert status == 504, doc


async def _orphan_pending(stack: Stack) -> None:
    """A pending row whose process died before the Graph call (no event anywhere)."""
    start = next_week(datetime.now(UTC))[0] + timedelta(days=2, hours=15)
    async with stack.runtime.store.transaction() as tx:
        await storage.insert_pending(
            tx,
            tenant_id=stack.devtenant.tenant_id,
            organizer_oid="oid",
            organizer_upn=ALEX,
            transaction_id=str(uuid.uuid4()),
            start=start,
            end=start + timedelta(minutes=30),
            attendees=[MEGAN, "x@example.com"],
            candidate_name="X",
            subject="Interview: X",
            source="bot",
        )


async def _statuses(stack: Stack) -> list[tuple[str, str | None]]:
    async with stack.runtime.store.transaction() as tx:
        rows = await tx.execute(storage.interviews.select().order_by(storage.interviews.c.start_utc))
        return [(r.status, r.event_id) for r in rows]


async def _recover_audit(stack: Stack) -> list[str]:
    async with stack.runtime.store.transaction() as tx:
        rows = await tx.execute(
            audit_log.select().where(audit_log.c.operation == "interview.recover").order_by(audit_log.c.seq)
        )
        return [r.result for r in rows]


async def test_stale_pending_rows_are_confirmed_or_failed_once(
    devtenant: DevTenantHandle, tmp_path: Path
) -> None:
    async with running_stack(devtenant, tmp_path, graph_max_attempts=1) as stack:
        await _lost_create(stack)
        await _orphan_pending(stack)
        young = await build_reconciler(stack.runtime, stale_min=10).run_once()
        assert (young.confirmed, young.failed, young.left_pending) == (0, 0, 0)
        assert [s for s, _ in await _statuses(stack)] == ["pending", "pending"]
        reconciler = build_reconciler(stack.runtime, stale_min=0)
        report = await reconciler.run_once()
        assert (report.confirmed, report.failed, report.left_pending) == (1, 1, 0)
        statuses = await _statuses(stack)
        again = await reconciler.run_once()
        audit = await _recover_audit(stack)
    assert again.to_json() == {"confirmed": 0, "failed": 0, "left_pending": 0}
    ours = [e for e in organizer_events(devtenant, ALEX) if e.get("transactionId")]
    # the lost create is completed forward: the panel's event and the candidate's own, written
    # by the reconciler (the request died before it) with its own audit row
    panel = [e for e in ours if CANDIDATE not in str(e.get("attendees"))]
    assert len(ours) == 2
    assert len(panel) == 1
    assert ("confirmed", panel[0]["id"]) in statuses
    assert ("failed", None) in statuses
    assert sorted(audit) == ["candidate_created", "confirmed", "failed"]


async def test_a_graph_outage_leaves_rows_pending_and_audited(
    devtenant: DevTenantHandle, tmp_path: Path
) -> None:
    async with running_stack(devtenant, tmp_path, graph_max_attempts=2) as stack:
        await _orphan_pending(stack)
        faults(devtenant, unavailable_rate=1.0, retry_after_s=0.01)
        report = await build_reconciler(stack.runtime, stale_min=0).run_once()
        assert report.left_pending == 1
        assert [s for s, _ in await _statuses(stack)] == ["pending"]
        assert await _recover_audit(stack) == ["error:upstream_unavailable"]
        faults(devtenant)
        report = await build_reconciler(stack.runtime, stale_min=0).run_once()
        assert report.failed == 1


def test_the_crash_hook_is_refused_outside_dev() -> None:
    base = {"OPENSLOT_CLIENT_ID": "x"}
    assert load_settings({**base, "OPENSLOT_CRASH_AT": "during_audit"}).crash_at == "during_audit"
    assert load_settings(base).crash_at == ""
    with pytest.raises(ValidationError):
        load_settings({**base, "OPENSLOT_ENV": "prod", "OPENSLOT_CRASH_AT": "after_pending"})
    with pytest.raises(ValidationError):
        load_settings({**base, "OPENSLOT_CRASH_AT": "somewhere"})
