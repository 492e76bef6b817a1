"""A live booking racing the recovery reconciler (calendar_backend/recovery.py), made
deterministic: the reconciler runs exactly between the live request's Graph create and its
confirm step. Real Calendar Service use case, real reconciler, real devtenant Graph.

- The reconciler failed the row first (its Graph lookup ran before the event existed): the live
  request must cancel the event it just created and answer slot-taken (409), so no Outlook
  event lives without a booking.
- The reconciler confirmed the row with this very event: the live request keeps it and succeeds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.contract import CreateInterviewRequest, format_time
from calendar_backend.errors import SlotTakenError
from calendar_backend.graph import CallStats, GraphClient
from calendar_backend.runtime import Runtime, build_clients, build_reconciler
from calendar_backend.service import CalendarService
from tests.devtenant.fixtures import DevTenantHandle
from tests.reliability.conftest import organizer_events, running_stack
from tests.service.conftest import ALEX, Stack, next_week

MEGAN = "meganb@contoso.example"
Hook = Callable[[], Awaitable[None]]


class InterleavedGraph(GraphClient):
    """The real Graph client, running ``before``/``after`` around the one ``create_event``."""

    def __init__(self, rt: Runtime, *, before: Hook | None = None, after: Hook | None = None) -> None:
        s = rt.settings
        super().__init__(
            rt.session,
            s.graph_base_url,
            timeout_s=s.graph_timeout_s,
            max_attempts=s.graph_max_attempts,
            max_backoff_s=s.graph_max_backoff_s,
            concurrency=s.graph_concurrency,
        )
        self._before, self._after = before, after

    async def create_event(
        self, token: str, organizer: str, event: dict[str, Any], *, stats: CallStats | None = None
    ) -> dict[str, Any]:
        panel = event.get("isOnlineMeeting") is True  # not the candidate's own invite
        if self._before is not None and panel:
            await self._before()
        created = await super().create_event(token, organizer, event, stats=stats)
        if self._after is not None and panel:
            await self._after()
        return created


def _service(stack: Stack, graph: GraphClient) -> CalendarService:
    rt = stack.runtime
    tokens, _ = build_clients(rt)
    return CalendarService(rt.settings, rt.store, rt.cipher, tokens, graph)


def _principal(assertion: str) -> Principal:
    claims = jwt.decode(assertion, options={"verify_signature": False})
    return Principal(str(claims["tid"]), str(claims["oid"]), frozenset({"access_as_user"}))


async def _request(stack: Stack, key: str) -> CreateInterviewRequest:
    start, end = next_week(datetime.now(UTC))
    status, doc = await stack.post(
        "/v1/slots/find",
        {"interviewers": [MEGAN], "duration_min": 30, "start": format_time(start), "end": format_time(end)},
        stack.token(),
    )
    assert status == 200, doc
    slot = doc["slots"][2]
    return CreateInterviewRequest.from_json(
        {
            "candidate": {"name": "Dana Smith", "email": "dana.smith@example.com"},
            "interviewers": [MEGAN],
            "start": slot["start"],
            "end": slot["end"],
            "idempotency_key": key,
        }
    )


async def _rows(stack: Stack) -> list[storage.InterviewRow]:
    async with stack.runtime.store.transaction() as tx:
        rows = await tx.execute(storage.interviews.select().order_by(storage.interviews.c.created_at))
        return [storage.interview_row(r) for r in rows]


def _live(stack: Stack) -> list[dict[str, Any]]:
    """The organizer's live panel events of the booking (not the candidate's own invite)."""
    return [
        e
        for e in organizer_events(stack.devtenant, ALEX)
        if e.get("subject") == "Interview: Dana Smith"
        and "dana.smith@example.com" not in str(e.get("attendees"))
    ]


async def test_reconciler_failing_the_row_mid_create_cancels_the_new_event(
    devtenant: DevTenantHandle, tmp_path: Path
) -> None:
    async with running_stack(devtenant, tmp_path) as stack:
        reconciler = build_reconciler(stack.runtime, stale_min=0)

        async def reconcile_first() -> None:  # its lookup runs before the event exists
            report = await reconciler.run_once()
            assert report.failed == 1

        service = _service(stack, InterleavedGraph(stack.runtime, before=reconcile_first))
        req = await _request(stack, "race-1")
        assertion = stack.token()
        with pytest.raises(SlotTakenError) as caught:
            await service.interviews.create(_principal(assertion), assertion, req, "rq-1")
        assert caught.value.status == 409
        assert [
            e
            for e in organizer_events(stack.devtenant, ALEX)  # neither event outlives it
            if e.get("subject") == "Interview: Dana Smith"
        ] == []
        raw = (
            devtenant.session()
            .get(f"{devtenant.base_url}/_devtenant/mailboxes/{MEGAN}/events", timeout=10)
            .json()
        )
        copies = [e for e in raw.get("value", raw) if "Dana Smith" in str(e.get("subject"))]
        # created (Megan got the invite), then withdrawn (her copy is cancelled)
        assert [(bool(e.get("isCancelled")), e["subject"]) for e in copies] == [
            (True, "Canceled: Interview: Dana Smith")
        ]
        assert [r.status for r in await _rows(stack)] == [storage.InterviewStatus.FAILED]
        # The manager's retry (same key) books cleanly with a new transactionId.
        plain = _service(stack, InterleavedGraph(stack.runtime))
        booked = await plain.interviews.create(_principal(assertion), assertion, req, "rq-2")
        assert booked.status == "confirmed"
        assert [e["id"] for e in _live(stack)] == [booked.event_id]


async def test_reconciler_confirming_the_same_event_mid_create_keeps_it(
    devtenant: DevTenantHandle, tmp_path: Path
) -> None:
    async with running_stack(devtenant, tmp_path) as stack:
        reconciler = build_reconciler(stack.runtime, stale_min=0)

        async def reconcile_after() -> None:  # finds the event by transactionId
            report = await reconciler.run_once()
            assert report.confirmed == 1

        service = _service(stack, InterleavedGraph(stack.runtime, after=reconcile_after))
        req = await _request(stack, "race-2")
        assertion = stack.token()
        booked = await service.interviews.create(_principal(assertion), assertion, req, "rq-3")
        assert booked.status == "confirmed"
        assert [e["id"] for e in _live(stack)] == [booked.event_id]
        assert [r.status for r in await _rows(stack)] == [storage.InterviewStatus.CONFIRMED]
        # the candidate's own invite: written once (by whichever came first), recorded once
        theirs = [
            e
            for e in organizer_events(stack.devtenant, ALEX)
            if "dana.smith@example.com" in str(e.get("attendees"))
        ]
        assert [e["id"] for e in theirs] == [r.candidate_event_id for r in await _rows(stack)]
