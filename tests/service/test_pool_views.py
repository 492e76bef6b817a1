"""Issue 18, visibility: "my load" and the owner's pool card over HTTP against the devtenant.

Load is counted in each member's own zone and week (UTC-8 with Monday weeks, UTC+05:45 with
Sunday weeks, around their week boundaries); only the owner sees or changes a pool (anybody else,
and an unknown id, get the same 404); every read and change writes one audit row.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from calendar_backend import storage
from calendar_backend.app import SERVICE_KEY
from calendar_backend.pools import Member, Pool
from calendar_backend.pools_training import Trainee
from tests.security.gate_env import ADELE, MEGAN, MIRIAM, allow, audit_rows
from tests.service.conftest import ALEX, Stack

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # a Monday: 04:00 in Los Angeles, 17:45 in Kathmandu
LA, KTM = "America/Los_Angeles", "Asia/Kathmandu"


def _freeze(stack: Stack, now: datetime = NOW) -> None:
    app: Any = stack.client.server.app
    app[SERVICE_KEY].pools._clock = lambda: now


async def _pool(stack: Stack, *members: Member, owner: str = ALEX, trainees: tuple[Trainee, ...] = ()) -> str:
    async with stack.runtime.store.transaction() as tx:
        pool_id = await storage.create_pool(
            tx,
            stack.devtenant.tenant_id,
            Pool(f"Backend {uuid.uuid4().hex[:6]}", "backend", 5, 2, members),
            owner=owner,
        )
        assert pool_id is not None
        for t in trainees:
            await storage.add_trainee(tx, pool_id, t)
    return pool_id


async def _interview(stack: Stack, start: datetime, *people: str) -> None:
    async with stack.runtime.store.transaction() as tx:
        await storage.insert_pending(
            tx,
            tenant_id=stack.devtenant.tenant_id,
            organizer_oid=str(uuid.uuid4()),
            organizer_upn=ALEX,
            transaction_id=str(uuid.uuid4()),
            start=start,
            end=start + timedelta(minutes=45),
            attendees=[*people, "dana@example.com"],
            candidate_name="Dana Smith",
            subject="Interview: Dana Smith",
            source="bot",
        )


async def _boundary_pool(stack: Stack) -> str:
    """Megan in UTC-8 (Monday weeks), Adele in UTC+05:45 (Sunday weeks), three interviews each."""
    pool_id = await _pool(stack, Member(MEGAN, LA, 0), Member(ADELE, KTM, 6, weekly_cap=4))
    # Mon 05:00 UTC: Sunday evening in LA (last week), Monday in Kathmandu (this week).
    await _interview(stack, datetime(2026, 12, 7, 5, 0, tzinfo=UTC), MEGAN, ADELE)
    # Sat 18:00 UTC: Saturday in both (this week for both).
    await _interview(stack, datetime(2026, 12, 12, 18, 0, tzinfo=UTC), MEGAN, ADELE)
    # Sun 18:30 UTC: Sunday in LA (this week), Monday 00:15 in Kathmandu (her next week).
    await _interview(stack, datetime(2026, 12, 13, 18, 30, tzinfo=UTC), MEGAN, ADELE)
    return pool_id


async def test_pool_card_counts_each_member_in_their_own_zone_and_week(calendar_stack: Stack) -> None:
    stack = calendar_stack
    _freeze(stack)
    pool_id = await _boundary_pool(stack)

    status, doc = await stack.get(f"/v1/pools/{pool_id}", stack.token())

    assert status == 200, doc
    members = {m["address"]: m for m in doc["members"]}
    assert members[MEGAN]["this_week"] == {"week": "2026-12-07", "booked": 2}
    assert members[MEGAN]["next_week"] == {"week": "2026-12-14", "booked": 0}
    assert (members[MEGAN]["weekly_cap"], members[MEGAN]["daily_cap"]) == (5, 2)
    assert members[ADELE]["this_week"] == {"week": "2026-12-06", "booked": 2}
    assert members[ADELE]["next_week"] == {"week": "2026-12-13", "booked": 1}
    assert (members[ADELE]["weekly_cap"], members[ADELE]["own_caps"]) == (4, True)
    assert (await audit_rows(stack))[-1] == ("pool.show", [pool_id], "ok")


async def test_my_load_is_counted_in_my_zone_and_shows_my_training(calendar_stack: Stack) -> None:
    stack = calendar_stack
    _freeze(stack)
    pool_id = await _boundary_pool(stack)
    other = await _pool(stack, Member(MIRIAM), trainees=(Trainee(ADELE, KTM, 6, 2, 1, 1, 0),))

    status, doc = await stack.get("/v1/me/load", stack.token(ADELE))

    assert status == 200, doc
    assert doc["address"] == ADELE
    assert [p["pool_id"] for p in doc["pools"]] == [pool_id]
    (mine,) = doc["pools"]
    assert (mine["zone"], mine["this_week"]["booked"], mine["next_week"]["booked"]) == (KTM, 2, 1)
    assert (mine["weekly_cap"], mine["daily_cap"]) == (4, 2)
    (training,) = doc["training"]
    assert training["stage"] == "shadow"
    assert (training["shadow_done"], training["shadow_required"]) == (1, 2)
    assert training["pool"].startswith("Backend")
    assert (await audit_rows(stack))[-1] == ("pool.me_load", [pool_id], "ok")
    assert other != pool_id


async def test_my_load_outside_any_pool_is_empty(calendar_stack: Stack) -> None:
    status, doc = await calendar_stack.get("/v1/me/load", calendar_stack.token(MIRIAM))
    assert status == 200, doc
    assert (doc["pools"], doc["training"]) == ([], [])


async def test_only_the_owner_sees_a_pool_others_get_404(calendar_stack: Stack) -> None:
    stack = calendar_stack
    pool_id = await _pool(stack, Member(MEGAN))
    status, mine = await stack.get("/v1/pools", stack.token())
    assert status == 200
    assert [p["id"] for p in mine["pools"]] == [pool_id]

    status, theirs = await stack.get(f"/v1/pools/{pool_id}", stack.token(MEGAN))
    unknown_status, unknown = await stack.get(f"/v1/pools/{uuid.uuid4()}", stack.token(MEGAN))
    post_status, posted = await stack.post(
        f"/v1/pools/{pool_id}/members", {"action": "remove", "member": MEGAN}, stack.token(MEGAN)
    )

    assert (status, unknown_status, post_status) == (404, 404, 404)
    assert theirs == unknown  # a stranger cannot tell a pool exists
    assert posted["error"] == "not_found"
    assert (await stack.get("/v1/pools", stack.token(MEGAN)))[1] == {"pools": []}
    rows = await audit_rows(stack)
    assert ("pool.show", [pool_id], "denied:not_owner") in rows
    assert ("pool.remove_member", [pool_id], "denied:not_owner") in rows
    async with stack.runtime.store.transaction() as tx:
        record = await storage.get_pool_by_id(tx, pool_id)
    assert record is not None
    assert record.pool.member(MEGAN) is not None


async def test_the_owner_adds_caps_and_removes_members_audited(calendar_stack: Stack) -> None:
    stack = calendar_stack
    pool_id = await _pool(stack, Member(MEGAN))
    path = f"/v1/pools/{pool_id}/members"

    status, added = await stack.post(path, {"action": "add", "member": ADELE.upper()}, stack.token())
    assert status == 200, added
    adele = next(m for m in added["members"] if m["address"] == ADELE)
    assert (adele["weekly_cap"], adele["own_caps"]) == (5, False)
    assert adele["zone"]  # her mailbox zone (or UTC)

    again, doc = await stack.post(path, {"action": "add", "member": ADELE}, stack.token())
    assert (again, doc["error"]) == (409, "conflict")

    body = {"action": "set_caps", "member": ADELE, "weekly_cap": 3, "daily_cap": 1}
    status, capped = await stack.post(path, body, stack.token())
    assert status == 200, capped
    adele = next(m for m in capped["members"] if m["address"] == ADELE)
    assert (adele["weekly_cap"], adele["daily_cap"], adele["own_caps"]) == (3, 1, True)

    bad, doc = await stack.post(path, {**body, "weekly_cap": 101}, stack.token())
    assert (bad, doc["error"]) == (400, "invalid_request")

    status, removed = await stack.post(path, {"action": "remove", "member": ADELE}, stack.token())
    assert status == 200
    assert [m["address"] for m in removed["members"]] == [MEGAN]

    rows = [r for r in await audit_rows(stack) if r[0].startswith("pool.") and r[2] == "ok"]
    assert rows == [
        ("pool.add_member", [pool_id, ADELE], "ok"),
        ("pool.set_caps", [pool_id, ADELE], "ok"),
        ("pool.remove_member", [pool_id, ADELE], "ok"),
    ]


async def test_pool_card_names_members_and_trainees_by_display_name(calendar_stack: Stack) -> None:
    """Display names, read app-only after the allow-list; the local part when it cannot be read
    (not in the directory, or refused by the allow-list: nothing is read for them)."""
    stack = calendar_stack
    _freeze(stack)
    ghost = "ghost.person@contoso.example"
    pool_id = await _pool(stack, Member(MEGAN), Member(ghost), trainees=(Trainee(MIRIAM, "UTC", 0, 2, 1),))

    status, doc = await stack.get(f"/v1/pools/{pool_id}", stack.token())

    assert status == 200, doc
    names = {m["address"]: m["display_name"] for m in doc["members"]}
    assert names == {MEGAN: "Megan Bowen", ghost: "ghost.person"}
    assert [(t["address"], t["display_name"]) for t in doc["trainees"]] == [(MIRIAM, "Miriam Graham")]

    await allow(stack, ALEX, MEGAN)  # Miriam is no longer allowed: her name is not read
    pool2 = await _pool(stack, Member(MEGAN), trainees=(Trainee(MIRIAM, "UTC", 0, 2, 1),))
    status, doc = await stack.get(f"/v1/pools/{pool2}", stack.token())
    assert status == 200, doc
    assert [t["display_name"] for t in doc["trainees"]] == ["miriamg"]
