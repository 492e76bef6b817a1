"""A loop session's panel drawn from an interviewer pool (issue 18 on issue 17), end to end.

Search names who was picked (free, under caps, least loaded first) and which pool they came from;
booking draws them in the loop's own transaction: a cap reached meanwhile refuses the whole loop
(409 ``cap_reached``, nothing kept), unless the manager overrides it with a reason (audited).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from calendar_backend import storage
from calendar_backend.client import CalendarServiceClient
from calendar_backend.contract import LoopSearchOut, format_time
from calendar_backend.pools import Member, Pool
from calendar_backend.pools_training import Trainee
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.security.gate_env import audit_rows
from tests.service.conftest import Stack, next_week, service_for

MEGAN = "meganb@contoso.example"
POOL = ["diegos@contoso.example", "leeg@contoso.example", "pattif@contoso.example", "adelev@contoso.example"]
TRAINEE = "christiec@contoso.example"


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


async def make_pool(stack: Stack, weekly: int = 5, daily: int = 2, trainee: bool = False) -> str:
    async with stack.runtime.store.transaction() as tx:
        pool_id = await storage.create_pool(
            tx,
            stack.devtenant.tenant_id,
            Pool("Backend", "backend", weekly, daily, tuple(Member(a) for a in POOL)),
        )
        if trainee:
            await storage.add_trainee(
                tx, pool_id, Trainee(TRAINEE, shadow_required=1, reverse_shadow_required=1)
            )
    return pool_id


def pooled_template(count: int = 2, pool: str = "Backend") -> dict[str, Any]:
    return {
        "name": "Pooled onsite",
        "sessions": [
            {"title": "Intro", "minutes": 30, "interviewers": [MEGAN]},
            {"title": "Coding", "minutes": 60, "pool": {"name": pool, "count": count}},
        ],
    }


async def search(stack: Stack, template: dict[str, Any], limit: int = 3) -> tuple[int, Any]:
    start, end = next_week(datetime.now(UTC))
    body = {"template": template, "start": format_time(start), "end": format_time(end), "limit": limit}
    return await stack.post("/v1/loops/search", body, stack.token())


def book_body(template: dict[str, Any], option: dict[str, Any], txn: str, **kw: Any) -> dict[str, Any]:
    sessions = []
    for s in option["sessions"]:
        item = {"index": s["index"], "start": s["start"], "end": s["end"], "room": s["room"]}
        if "pool" in s:
            item["pool_members"] = s["pool"]["members"]
            item["trainees"] = s["pool"]["trainees"]
        sessions.append(item)
    return {
        "template": template,
        "sessions": sessions,
        "candidate": {"name": "Dana Smith", "email": "dana.smith@example.com"},
        "transaction_id": txn,
        **kw,
    }


async def test_an_unknown_pool_is_named(stack: Stack) -> None:
    status, doc = await search(stack, pooled_template(pool="Nope"))
    assert status == 400, doc
    assert doc["error"] == "invalid_template"
    assert 'no interviewer pool named "Nope"' in str(doc)


async def test_a_pool_too_small_or_too_busy_is_explained(stack: Stack) -> None:
    await make_pool(stack)
    status, doc = await search(stack, pooled_template(count=5))
    assert status == 400, doc
    assert 'the pool "Backend" has only 4 members to draw 5 from' in str(doc)
    status, doc = await search(stack, pooled_template(count=4))
    assert status == 200, doc
    texts = " ".join(e["text"] for e in doc["explanations"])
    if not doc["options"]:
        assert "Backend" in texts, doc
        assert "pool.invalid" not in str(doc)


async def test_search_names_who_was_picked_and_booking_draws_them(stack: Stack) -> None:
    await make_pool(stack, trainee=True)
    template = pooled_template()
    status, doc = await search(stack, template)
    assert status == 200, doc
    result = LoopSearchOut.from_json(doc)
    assert result.options, doc["explanations"]
    assert LoopSearchOut.from_json(result.to_json()) == result
    for option in doc["options"]:
        intro, coding = sorted(option["sessions"], key=lambda s: s["index"])
        assert "pool" not in intro
        assert intro["interviewers"] == [MEGAN]
        members = coding["pool"]["members"]
        assert coding["pool"]["name"] == "Backend"
        assert len(members) == 2
        assert set(members) <= set(POOL)
        assert coding["interviewers"] == [*members, *coding["pool"]["trainees"]]
        assert set(coding["pool"]["trainees"]) <= {TRAINEE}
    option = doc["options"][0]
    status, booked = await stack.post("/v1/loops", book_body(template, option, "pool-1"), stack.token())
    assert status == 201, booked
    coding = next(s for s in option["sessions"] if s["index"] == 1)
    assert booked["sessions"][1]["interviewers"] == coding["interviewers"]
    async with stack.runtime.store.transaction() as tx:
        seats = (await tx.execute(text("SELECT mailbox, role FROM pool_assignments ORDER BY mailbox"))).all()
    expected = {(m, "member") for m in coding["pool"]["members"]}
    expected |= {(t, "shadow") for t in coding["pool"]["trainees"]}
    assert {(str(a), str(b)) for a, b in seats} == expected
    # the next search still offers loops (the booked members now carry load)
    status, again = await search(stack, template)
    assert status == 200, again
    assert again["options"], again["explanations"]


def _spans(option: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["start"], s["end"]) for s in option["sessions"]]


def _coding(option: dict[str, Any]) -> list[str]:
    return list(next(s for s in option["sessions"] if s["index"] == 1)["pool"]["members"])


async def test_a_cap_reached_refuses_the_whole_loop_unless_overridden(stack: Stack) -> None:
    await make_pool(stack, weekly=1, daily=1)
    template = pooled_template()
    status, doc = await search(stack, template, limit=10)
    assert status == 200, doc
    first = doc["options"][0]
    picked = _coding(first)
    # an option found before the booking, at other times, sharing exactly one member with it
    other = next(
        o
        for o in doc["options"][1:]
        if max(_spans(first))[1] <= min(_spans(o))[0] and len(set(_coding(o)) & set(picked)) == 1
    )
    status, booked = await stack.post("/v1/loops", book_body(template, first, "cap-1"), stack.token())
    assert status == 201, booked
    status, refused = await stack.post("/v1/loops", book_body(template, other, "cap-2"), stack.token())
    assert status == 409, refused
    assert refused["error"] == "cap_reached"
    assert "cap" in refused["message"]
    assert "Coding" in refused["message"]
    async with stack.runtime.store.transaction() as tx:
        loops = (await tx.execute(text("SELECT status FROM loops ORDER BY created_at"))).all()
        seats = (await tx.execute(text("SELECT count(*) FROM pool_assignments"))).scalar_one()
    assert [str(r[0]) for r in loops] == ["confirmed"]  # nothing of the refused loop was kept
    assert seats == 2
    shared = next(a for a in _coding(other) if a in picked)
    override = {"address": shared, "reason": "hiring freeze ends Friday"}
    status, done = await stack.post(
        "/v1/loops", book_body(template, other, "cap-3", cap_override=override), stack.token()
    )
    assert status == 201, done
    assert any(op == "pool.cap_override" for op, _targets, _result in await audit_rows(stack))
    async with stack.runtime.store.transaction() as tx:
        overrides = await storage.list_cap_overrides(tx, stack.devtenant.tenant_id)
    assert [(o["address"], o["reason"]) for o in overrides] == [(shared, "hiring freeze ends Friday")]


async def test_an_override_needs_a_reason(stack: Stack) -> None:
    await make_pool(stack)
    template = pooled_template()
    status, doc = await search(stack, template)
    assert status == 200, doc
    body = book_body(template, doc["options"][0], "r-1", cap_override={"address": POOL[0], "reason": "  "})
    status, refused = await stack.post("/v1/loops", body, stack.token())
    assert status == 400, refused


async def test_a_pooled_session_needs_its_count_of_members(stack: Stack) -> None:
    await make_pool(stack)
    template = pooled_template()
    status, doc = await search(stack, template)
    assert status == 200, doc
    option = doc["options"][0]
    short = {**option, "sessions": [
        {**s, "pool": {**s["pool"], "members": s["pool"]["members"][:1]}} if "pool" in s else s
        for s in option["sessions"]
    ]}  # fmt: skip
    status, refused = await stack.post("/v1/loops", book_body(template, short, "n-1"), stack.token())
    assert status == 400, refused
    assert "pool members" in refused["message"]


async def test_the_bots_client_books_the_option_it_was_offered(stack: Stack) -> None:
    await make_pool(stack)
    template = pooled_template()
    start, end = next_week(datetime.now(UTC))
    base = str(stack.client.make_url("/")).rstrip("/")
    async with aiohttp.ClientSession() as session:
        client = CalendarServiceClient(base, session)
        found = await client.search_loops(stack.token(), template=template, start=start, end=end, limit=2)
        option = found.options[0]
        pooled = next(s for s in option.sessions if s.pool is not None)
        assert pooled.pool == "Backend"
        assert len(pooled.pool_members) == 2
        loop = await client.book_loop(
            stack.token(),
            template=template,
            sessions=list(option.sessions),
            candidate_name="Dana Smith",
            candidate_email="dana.smith@example.com",
            candidate_time_zone=None,
            transaction_id="client-pool-1",
        )
    assert loop.status == "confirmed"
    assert next(s for s in loop.sessions if s.index == pooled.index).interviewers == pooled.interviewers
