"""Helpers for the mailbox-gate tests: the allow-list, archived users, audit rows, Graph counters.

"Calendar Graph calls" are the requests that read or write a mailbox's calendar (getSchedule,
calendarView, events); the directory reads the gate itself makes (group members, room list) are not
among them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from calendar_backend import allowlist, storage
from calendar_backend.contract import format_time
from tests.service.conftest import Stack, next_week

MEGAN, ADELE, MIRIAM, CHRISTIE = (
    "meganb@contoso.example",
    "adelev@contoso.example",
    "miriamg@contoso.example",
    "christiec@contoso.example",
)
ROOM = "rainier@contoso.example"
CALENDAR_OPS = (
    "graph.getSchedule",
    "graph.calendarView",
    "graph.events.create",
    "graph.events.list",
    "graph.events.get",
    "graph.events.update",
    "graph.events.delete",
    "graph.events.cancel",
    "graph.batch",
)


async def allow(stack: Stack, *users: str) -> None:
    """Put ``users`` on the tenant's allow-list (making it non-empty)."""
    async with stack.runtime.store.transaction() as tx:
        for address in users:
            await allowlist.add_entry(tx, stack.devtenant.tenant_id, allowlist.parse_entry("user", address))


async def disallow(stack: Stack, *users: str) -> None:
    async with stack.runtime.store.transaction() as tx:
        for address in users:
            await allowlist.remove_entry(
                tx, stack.devtenant.tenant_id, allowlist.parse_entry("user", address)
            )


async def archive(stack: Stack, upn: str) -> None:
    found = stack.devtenant.tenant.find_user(upn)
    assert found is not None
    async with stack.runtime.store.transaction() as tx:
        await storage.archive_user(tx, stack.devtenant.tenant_id, str(found["id"]), datetime.now(UTC))


async def audit_rows(stack: Stack) -> list[tuple[str, list[str], str]]:
    async with stack.runtime.store.transaction() as tx:
        rows = (await tx.execute(text("SELECT operation, targets, result FROM audit_log ORDER BY seq"))).all()
    return [(str(r[0]), list(json.loads(r[1])), str(r[2])) for r in rows]


def calendar_calls(stack: Stack) -> int:
    counters = stack.devtenant.tenant.counters
    return sum(int(counters[name]) for name in CALENDAR_OPS)


def offer_body(people: list[str], **extra: Any) -> dict[str, Any]:
    start, end = next_week(datetime.now(UTC))
    return {
        "interviewers": people,
        "duration_min": 30,
        "window_start": format_time(start),
        "window_end": format_time(end),
        "candidate_name": "Dana Smith",
        "candidate_email": "dana.smith@example.com",
        **extra,
    }


def find_body(people: list[str], **extra: Any) -> dict[str, Any]:
    start, end = next_week(datetime.now(UTC))
    return {
        "interviewers": people,
        "duration_min": 30,
        "start": format_time(start),
        "end": format_time(end),
        **extra,
    }


def working_slot(minutes: int = 30) -> tuple[str, str]:
    """Next week's Tuesday 18:00-18:30 UTC: 10:00 Pacific, inside Megan's and Alex's hours."""
    monday, _ = next_week(datetime.now(UTC))
    start = monday + timedelta(days=1, hours=18)
    return format_time(start), format_time(start + timedelta(minutes=minutes))


def interview_body(
    people: list[str], key: str, start: str | None = None, end: str | None = None, **extra: Any
) -> dict[str, Any]:
    s, e = working_slot()
    return {
        "interviewers": people,
        "start": start or s,
        "end": end or e,
        "candidate": {"name": "Dana Smith", "email": "dana@example.com"},
        "idempotency_key": key,
        **extra,
    }


async def make_offer(stack: Stack, people: list[str], **extra: Any) -> str:
    """Create a link as Alex; returns the capability token."""
    status, doc = await stack.post("/v1/offers", offer_body(people, **extra), stack.token())
    assert status == 201, doc
    return str(doc["url"]).rsplit("/c/", 1)[1]
