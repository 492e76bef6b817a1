"""Pools drawn from an Entra group (read live), and pool members the gate refuses skipped (issue 18).

Against devtenant: the group is a devtenant group (changed in place, as an admin would in Entra),
read by the service with the tenant's app-only token; the allow-list is the tenant's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from calendar_backend import storage
from calendar_backend.app import SERVICE_KEY
from calendar_backend.pools import Member, Pool
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.security.gate_env import allow, archive, audit_rows
from tests.service.conftest import ALEX, Stack, service_for
from tests.service.test_loop_pools import MEGAN, book_body, pooled_template, search

GROUP = "7d1e7c1a-5b2f-4c3d-8e9f-0a1b2c3d4e5f"
MISSING = "00000000-1111-4222-8333-444444444444"
SIX = [
    "diegos@contoso.example",
    "leeg@contoso.example",
    "pattif@contoso.example",
    "adelev@contoso.example",
    "gradya@contoso.example",
    "debrab@contoso.example",
]


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


def set_group(stack: Stack, members: list[str], group_id: str = GROUP) -> None:
    """The devtenant group ``group_id`` with exactly ``members`` (created if needed), the app granted
    GroupMember.Read.All (reset undoes both); the service's short membership cache is dropped, as if
    its time had passed."""
    tenant = stack.devtenant.tenant
    granted = tenant.applications()[0]["requiredResourceAccess"]["application"]
    if "GroupMember.Read.All" not in granted:
        granted.append("GroupMember.Read.All")
    ids = [str(u["id"]) for u in (tenant.find_user(a) for a in members) if u is not None]
    groups = tenant.data.setdefault("groups", [])
    found = next((g for g in groups if g["id"] == group_id), None)
    if found is None:
        groups.append({"id": group_id, "displayName": "Backend interviewers", "members": ids})
    else:
        found["members"] = ids
    stack.client.app[SERVICE_KEY].pool_groups.forget()


async def group_pool(stack: Stack, group_id: str = GROUP, listed: tuple[Member, ...] = ()) -> str:
    async with stack.runtime.store.transaction() as tx:
        pool_id = await storage.create_pool(
            tx, stack.devtenant.tenant_id, Pool("Backend", "backend", 5, 2, listed), group_id=group_id
        )
    assert pool_id is not None
    return pool_id


async def listed_pool(stack: Stack, members: list[str]) -> None:
    async with stack.runtime.store.transaction() as tx:
        await storage.create_pool(
            tx, stack.devtenant.tenant_id, Pool("Backend", "backend", 5, 2, tuple(Member(a) for a in members))
        )


def drawn(doc: dict[str, Any]) -> set[str]:
    return {m for o in doc["options"] for s in o["sessions"] if "pool" in s for m in s["pool"]["members"]}


async def seats(stack: Stack) -> set[str]:
    async with stack.runtime.store.transaction() as tx:
        rows = (await tx.execute(text("SELECT mailbox FROM pool_assignments"))).all()
    return {str(r[0]) for r in rows}


async def test_a_group_backed_pool_is_searched_and_booked(stack: Stack) -> None:
    set_group(stack, SIX[:4])
    await group_pool(stack)
    template = pooled_template()
    status, doc = await search(stack, template)
    assert status == 200, doc
    assert doc["options"], doc["explanations"]
    assert drawn(doc)
    assert drawn(doc) <= set(SIX[:4])
    option = doc["options"][0]
    status, booked = await stack.post("/v1/loops", book_body(template, option, "grp-1"), stack.token())
    assert status == 201, booked
    coding = next(s for s in option["sessions"] if s["index"] == 1)
    assert await seats(stack) == set(coding["pool"]["members"])


async def test_a_member_who_leaves_the_group_is_no_longer_drawn(stack: Stack) -> None:
    set_group(stack, SIX[:3])
    await group_pool(stack)
    status, doc = await search(stack, pooled_template(count=3), limit=3)
    assert status == 200, doc
    assert drawn(doc) == set(SIX[:3]), doc["explanations"]
    set_group(stack, SIX[1:3])
    status, doc = await search(stack, pooled_template(count=2), limit=5)
    assert status == 200, doc
    assert doc["options"], doc["explanations"]
    assert SIX[0] not in drawn(doc)
    status, doc = await search(stack, pooled_template(count=3))
    assert status == 200, doc
    assert doc["options"] == []
    texts = [e["text"] for e in doc["explanations"] if e["reason"] == "pool_short"]
    assert texts == ["Backend: only 2 of the pool's members can be used now (3 needed)"], doc


async def test_a_listed_row_overrides_the_group_defaults(stack: Stack) -> None:
    set_group(stack, SIX[:2])
    pool_id = await group_pool(stack, listed=(Member(SIX[0], "Asia/Tokyo", 6, weekly_cap=1),))
    service = stack.client.app[SERVICE_KEY]
    async with stack.runtime.store.transaction() as tx:
        record = await storage.get_pool_by_id(tx, pool_id)
    assert record is not None
    assert record.group_id == GROUP
    ctx = await service.tenancy.context(_principal(stack))
    live = await service.pool_groups.live(ctx, [record])
    pool = live["Backend"]
    assert pool is not None
    first, second = pool.pool.member(SIX[0]), pool.pool.member(SIX[1])
    assert first is not None
    assert (first.zone, first.week_start, first.weekly_cap) == ("Asia/Tokyo", 6, 1)
    assert second is not None
    assert (second.zone, second.week_start, second.weekly_cap) == (
        "America/Los_Angeles",
        0,
        None,
    )


def _principal(stack: Stack) -> Any:
    from calendar_backend.auth import Principal

    return Principal(stack.devtenant.tenant_id, "00000000-0000-4000-8000-000000000001", frozenset())


async def test_a_group_that_cannot_be_read_explains_the_session(stack: Stack) -> None:
    set_group(stack, SIX[:4])
    await group_pool(stack)
    template = pooled_template()
    status, doc = await search(stack, template)
    assert status == 200, doc
    option = doc["options"][0]
    stack.devtenant.tenant.data["groups"] = [g for g in stack.devtenant.tenant.groups() if g["id"] != GROUP]
    stack.client.app[SERVICE_KEY].pool_groups.forget()
    status, doc = await search(stack, template)
    assert status == 200, doc
    assert doc["options"] == []
    short = [e for e in doc["explanations"] if e["reason"] == "pool_short"]
    assert len(short) == 1, doc
    assert short[0]["session"] == 1
    assert "could not read the pool's Entra group" in short[0]["text"]
    status, booked = await stack.post("/v1/loops", book_body(template, option, "grp-2"), stack.token())
    assert status == 400, booked
    assert "Entra group" in str(booked)
    assert await seats(stack) == set()


async def test_without_group_member_read_all_the_pool_is_explained(stack: Stack) -> None:
    await group_pool(stack)  # the app was never granted GroupMember.Read.All
    status, doc = await search(stack, pooled_template())
    assert status == 200, doc
    assert doc["options"] == []
    assert [e["reason"] for e in doc["explanations"]] == ["pool_short"]
    assert "GroupMember.Read.All" in doc["explanations"][0]["text"]


async def test_refused_pool_members_are_skipped_and_never_booked(stack: Stack) -> None:
    await listed_pool(stack, SIX)
    usable, refused = SIX[:4], SIX[4:]
    await allow(stack, MEGAN, *usable)
    template = pooled_template()
    status, doc = await search(stack, template, limit=5)
    assert status == 200, doc
    assert doc["options"], doc["explanations"]
    assert drawn(doc)
    assert drawn(doc) <= set(usable)
    assert not any(r in str(doc) for r in refused)
    denied = [r for r in await audit_rows(stack) if r[2] == "denied:not_allowed"]
    assert [(op, sorted(targets), result) for op, targets, result in denied] == [
        ("loops.search", sorted(refused), "denied:not_allowed")
    ]
    option = doc["options"][0]
    forged = book_body(template, option, "skip-1")
    forged["sessions"][1]["pool_members"] = [refused[0], forged["sessions"][1]["pool_members"][0]]
    status, answer = await stack.post("/v1/loops", forged, stack.token())
    assert status == 403, answer
    assert await seats(stack) == set()
    status, booked = await stack.post("/v1/loops", book_body(template, option, "skip-2"), stack.token())
    assert status == 201, booked
    assert await seats(stack)
    assert not await seats(stack) & set(refused)


async def test_too_few_usable_members_is_a_shortfall_without_their_names(stack: Stack) -> None:
    await listed_pool(stack, SIX)
    await allow(stack, MEGAN, SIX[0])
    status, doc = await search(stack, pooled_template())
    assert status == 200, doc
    assert doc["options"] == []
    texts = [e["text"] for e in doc["explanations"] if e["reason"] == "pool_short"]
    assert texts == ["Backend: only 1 of the pool's members can be used now (2 needed)"], doc
    assert not any(a in str(doc) for a in SIX[1:])


async def test_a_refused_fixed_interviewer_still_refuses_the_search(stack: Stack) -> None:
    await listed_pool(stack, SIX)
    await allow(stack, *SIX)
    status, doc = await search(stack, pooled_template())
    assert status == 200, doc
    assert doc["options"] == []
    assert [e["reason"] for e in doc["explanations"]] == ["not_allowed"]
    assert doc["explanations"][0]["mailboxes"] == [MEGAN]


async def test_views_count_the_groups_members(stack: Stack) -> None:
    set_group(stack, SIX[:2])
    pool_id = await group_pool(stack)
    async with stack.runtime.store.transaction() as tx:
        await storage.create_pool(tx, stack.devtenant.tenant_id, Pool("Other", "x", 5, 2, ()), owner=ALEX)
        await tx.execute(text("UPDATE pools SET owner = :o WHERE id = :i"), {"o": ALEX, "i": pool_id})
    status, doc = await stack.get("/v1/me/load", stack.token(SIX[1]))
    assert status == 200, doc
    assert [p["pool_id"] for p in doc["pools"]] == [pool_id]
    assert doc["pools"][0]["zone"] == "America/Los_Angeles"
    status, doc = await stack.get(f"/v1/pools/{pool_id}", stack.token())
    assert status == 200, doc
    assert [m["address"] for m in doc["members"]] == sorted(SIX[:2])
    set_group(stack, SIX[:1])
    status, doc = await stack.get("/v1/me/load", stack.token(SIX[1]))
    assert status == 200, doc
    assert doc["pools"] == []


async def test_a_pool_member_who_left_is_skipped(stack: Stack) -> None:
    await listed_pool(stack, SIX[:3])
    await archive(stack, SIX[0])
    status, doc = await search(stack, pooled_template(), limit=5)
    assert status == 200, doc
    assert doc["options"], doc["explanations"]
    assert drawn(doc) == set(SIX[1:3])
    assert ("loops.search", [SIX[0]], "denied:archived") in await audit_rows(stack)


async def test_group_members_the_allowlist_refuses_are_skipped(stack: Stack) -> None:
    set_group(stack, SIX)
    await group_pool(stack)
    await allow(stack, MEGAN, *SIX[:4])
    status, doc = await search(stack, pooled_template(), limit=5)
    assert status == 200, doc
    assert doc["options"], doc["explanations"]
    assert drawn(doc) <= set(SIX[:4])
    assert not any(r in str(doc) for r in SIX[4:])
