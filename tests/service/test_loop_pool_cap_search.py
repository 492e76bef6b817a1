"""A pooled session that cannot be filled only because its members are at their caps (issue 18).

The search says so in a structured way (``pool_cap``: the session, the member, a ``cap_override``
suggestion); searching again with that member overridden for that session computes options as if
they were under cap there (and only there); booking one needs the manager's ``cap_override``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from calendar_backend import storage
from calendar_backend.contract import format_time
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.service.conftest import Stack, next_week, service_for
from tests.service.test_loop_pools import POOL, book_body, make_pool

TEMPLATE: dict[str, Any] = {
    "name": "Capped",
    "sessions": [{"title": "Coding", "minutes": 60, "pool": {"name": "Backend", "count": 1}}],
}


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


async def _search(stack: Stack, **extra: Any) -> dict[str, Any]:
    start, end = next_week(datetime.now(UTC))
    body = {"template": TEMPLATE, "start": format_time(start), "end": format_time(end), "limit": 3, **extra}
    status, doc = await stack.post("/v1/loops/search", body, stack.token())
    assert status == 200, doc
    return dict(doc)


async def _everyone_at_cap(stack: Stack) -> None:
    """Each member already has their one interview of next week (on its Saturday, out of the window)."""
    saturday = next_week(datetime.now(UTC))[1] + timedelta(hours=10)
    async with stack.runtime.store.transaction() as tx:
        for n, member in enumerate(POOL):
            row = await storage.insert_pending(
                tx, tenant_id=stack.devtenant.tenant_id, organizer_oid="other",
                organizer_upn="hm@contoso.example",
                transaction_id=f"load-{n}", start=saturday, end=saturday + timedelta(minutes=30),
                attendees=[member, f"cand{n}@example.com"], candidate_name="C", subject="Interview",
                source=storage.InterviewSource.BOT,
            )  # fmt: skip
            await storage.confirm_interview(tx, row.id, f"ev-{n}", None)


async def test_a_session_short_only_by_caps_is_explained_with_an_override_to_offer(stack: Stack) -> None:
    await make_pool(stack, weekly=1, daily=1)
    await _everyone_at_cap(stack)
    doc = await _search(stack)
    assert doc["options"] == []
    capped = [e for e in doc["explanations"] if e["reason"] == "pool_cap"]
    assert capped, doc["explanations"]
    assert {e["session"] for e in capped} == {0}
    members = [m for e in capped for m in e["mailboxes"]]
    assert set(members) <= set(POOL)
    assert all(s["kind"] == "cap_override" for e in capped for s in e["suggestions"])
    assert [s["value"] for e in capped for s in e["suggestions"]] == members
    assert not any(m in e["text"] for e in capped for m in POOL)  # names are the bot's business

    member = members[0]
    again = await _search(stack, cap_overrides=[{"session": 0, "address": member}])
    assert again["options"], again["explanations"]
    assert {tuple(o["sessions"][0]["pool"]["members"]) for o in again["options"]} == {(member,)}

    option = again["options"][0]
    status, refused = await stack.post("/v1/loops", book_body(TEMPLATE, option, "cap-a"), stack.token())
    assert status == 409, refused
    assert refused["error"] == "cap_reached"
    override = {"address": member, "reason": "only Java expert this week"}
    body = book_body(TEMPLATE, option, "cap-b", cap_override=override)
    status, booked = await stack.post("/v1/loops", body, stack.token())
    assert status == 201, booked


async def test_an_override_is_for_its_session_only(stack: Stack) -> None:
    await make_pool(stack, weekly=1, daily=1)
    await _everyone_at_cap(stack)
    doc = await _search(stack, cap_overrides=[{"session": 1, "address": POOL[0]}])  # no session 1 draws
    assert doc["options"] == []
