"""Issue 18 (a): a tenant's opt-in to count Outlook "Interview"-category events as pool load.

Against the devtenant: the pool card and "my load" count a member's "Interview" events (any case;
not cancelled; not free; not an OpenSlot interview again) only when the tenant opted in; the read
asks Graph for times, categories and flags only (never subject or body: the devtenant's read log);
a member the mailbox gate refuses is not read at all.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from calendar_backend import storage
from calendar_backend.app import SERVICE_KEY
from calendar_backend.pools import Member, Pool
from calendar_backend.pools_outside import FIELDS
from calendar_backend.storage.tenant_settings import TenantSettings, set_tenant_settings
from devtenant.graph_events import new_event
from tests.security.gate_env import ADELE, MEGAN, allow, audit_rows
from tests.service.conftest import ALEX, Stack, next_week
from tests.service.test_loop_pools import POOL, _coding, book_body, make_pool, pooled_template, search

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # a Monday


def _freeze(stack: Stack) -> None:
    app: Any = stack.client.server.app
    app[SERVICE_KEY].pools._clock = lambda: NOW


async def _opt_in(stack: Stack, on: bool = True) -> None:
    async with stack.runtime.store.transaction() as tx:
        await set_tenant_settings(
            tx, stack.devtenant.tenant_id, TenantSettings(count_interview_category=on), actor="test"
        )


def _event(stack: Stack, who: str, start: datetime, categories: list[str], **extra: Any) -> None:
    tenant = stack.devtenant.tenant
    mailbox = tenant.find_mailbox(who)
    assert mailbox is not None

    def when(t: datetime) -> dict[str, str]:
        return {"dateTime": t.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}

    writes = {
        "subject": "Secret panel with a candidate",
        "body": {"contentType": "text", "content": "confidential notes"},
        "start": when(start),
        "end": when(start + timedelta(minutes=45)),
        "categories": categories,
        **extra,
    }
    tenant.events_of(mailbox).append(new_event(tenant, mailbox, writes, None))


async def _setup(stack: Stack) -> str:
    async with stack.runtime.store.transaction() as tx:
        pool_id = await storage.create_pool(
            tx,
            stack.devtenant.tenant_id,
            Pool(f"Backend {uuid.uuid4().hex[:6]}", "backend", 5, 2, (Member(MEGAN), Member(ADELE))),
            owner=ALEX,
        )
        assert pool_id is not None
        booked = NOW + timedelta(days=1)  # an OpenSlot interview of Megan's, this week
        await storage.insert_pending(
            tx,
            tenant_id=stack.devtenant.tenant_id,
            organizer_oid=str(uuid.uuid4()),
            organizer_upn=ALEX,
            transaction_id=str(uuid.uuid4()),
            start=booked,
            end=booked + timedelta(minutes=45),
            attendees=[MEGAN, "dana@example.com"],
            candidate_name="Dana Smith",
            subject="Interview: Dana Smith",
            source="bot",
        )
    _event(stack, MEGAN, booked, ["Interview"])  # her copy, tagged by hand: counted once only
    _event(stack, MEGAN, NOW + timedelta(days=2), ["Interview"])  # counts
    _event(stack, MEGAN, NOW + timedelta(days=3), ["Blue", "INTERVIEW"])  # counts (any case)
    _event(stack, MEGAN, NOW + timedelta(days=8), ["interview"])  # counts, next week
    _event(stack, MEGAN, NOW + timedelta(days=2, hours=2), ["Interviews"])  # another category
    _event(stack, MEGAN, NOW + timedelta(days=2, hours=4), ["Interview"], isCancelled=True)
    _event(stack, MEGAN, NOW + timedelta(days=2, hours=6), ["Interview"], showAs="free")
    _event(stack, ADELE, NOW + timedelta(days=2), ["Interview"])
    return pool_id


async def _card(stack: Stack, pool_id: str) -> dict[str, Any]:
    status, doc = await stack.get(f"/v1/pools/{pool_id}", stack.token())
    assert status == 200, doc
    return {m["address"]: (m["this_week"]["booked"], m["next_week"]["booked"]) for m in doc["members"]}


async def test_outside_interview_events_count_only_when_the_tenant_opted_in(calendar_stack: Stack) -> None:
    stack = calendar_stack
    _freeze(stack)
    pool_id = await _setup(stack)
    assert await _card(stack, pool_id) == {MEGAN: (1, 0), ADELE: (0, 0)}  # not opted in
    assert not [r for r in stack.devtenant.tenant.read_log if r["op"] == "calendarView"]

    await _opt_in(stack)
    assert await _card(stack, pool_id) == {MEGAN: (3, 1), ADELE: (1, 0)}
    reads = [r for r in stack.devtenant.tenant.read_log if r["op"] == "calendarView"]
    assert len(reads) == 2
    assert all(r["select"] == sorted(FIELDS) for r in reads)  # never subject, body, attendees
    assert ("pool.outside_load", sorted([MEGAN, ADELE]), "ok") in await audit_rows(stack)

    status, doc = await stack.get("/v1/me/load", stack.token(MEGAN))
    assert status == 200, doc
    (mine,) = doc["pools"]
    assert (mine["this_week"]["booked"], mine["next_week"]["booked"]) == (3, 1)


async def test_a_member_the_gate_refuses_is_not_read(calendar_stack: Stack) -> None:
    stack = calendar_stack
    _freeze(stack)
    pool_id = await _setup(stack)
    await _opt_in(stack)
    await allow(stack, MEGAN, ALEX)  # Adele is not on the allow-list
    stack.devtenant.tenant.read_log.clear()

    assert await _card(stack, pool_id) == {MEGAN: (3, 1), ADELE: (0, 0)}
    reads = [r for r in stack.devtenant.tenant.read_log if r["op"] == "calendarView"]
    adele = stack.devtenant.tenant.find_mailbox(ADELE)
    assert adele is not None
    assert len(reads) == 1
    assert all(r["mailbox"] != adele["id"] for r in reads)
    rows = await audit_rows(stack)
    assert ("pool.outside_load", [ADELE], "denied:not_allowed") in rows
    assert ("pool.outside_load", [MEGAN], "ok") in rows


async def test_loop_search_and_booking_count_outside_events(calendar_stack: Stack) -> None:
    stack = calendar_stack
    await make_pool(stack, weekly=1, daily=1)
    template = pooled_template()
    status, before = await search(stack, template, limit=10)
    assert status == 200, before
    busy = set(POOL[:2])
    option = next(o for o in before["options"] if set(_coding(o)) & busy)  # offered before opting in
    monday, _ = next_week(datetime.now(UTC))
    for who in busy:  # each reaches their weekly cap of 1 with an outside "Interview" event
        _event(stack, who, monday + timedelta(hours=5), ["Interview"])
    await _opt_in(stack)

    status, after = await search(stack, template, limit=10)
    assert status == 200, after
    assert after["options"], after["explanations"]
    assert all(not set(_coding(o)) & busy for o in after["options"])
    status, refused = await stack.post("/v1/loops", book_body(template, option, "outside-1"), stack.token())
    assert status == 409, refused
    assert refused["error"] == "cap_reached"
