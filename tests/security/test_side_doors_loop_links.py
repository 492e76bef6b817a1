"""The side-door matrix (tests/security/test_side_doors.py) for the loop-link forms of its routes
(issue 17): ``POST /v1/offers`` with a loop template, and the candidate routes on a loop link.

Same rules, same mutations, same assertions (the refusal, no calendar request but the delegated
probe, exactly one audit row); a loop link has rooms, so "a room is a room" applies when it is made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from calendar_backend.contract import format_time
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.security.gate_env import ADELE, CHRISTIE, MEGAN, ROOM, audit_rows
from tests.security.test_side_doors import (
    CANDIDATE_LOCKS,
    CHECKED_AT_CREATION,
    LEFT,
    LEFT_LINK,
    MUTATIONS,
    REMOVES_ONLY,
    RULES,
    USER_LOCKS,
    Call,
    NotApplicable,
    Operation,
    Refused,
    _calendar_counts,
)
from tests.service.conftest import Stack, next_week, service_for

FROM_THE_LINK = NotApplicable(
    "a loop link's rooms come from its stored template (resolved and checked as rooms when the "
    "link was made), never from the caller; the gate checks them as rooms on every view"
)


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


def loop_offer_body() -> dict[str, Any]:
    start, end = next_week(datetime.now(UTC))
    return {
        "loop_template": {
            "name": "Matrix loop",
            "breaks": {"min_minutes": 0, "max_minutes": 60},
            "sessions": [
                {"title": "Chat", "minutes": 30, "interviewers": [MEGAN], "room": {"any_of": [ROOM]}},
                {"title": "Values", "minutes": 30, "interviewers": [ADELE]},
            ],
        },
        "window_start": format_time(start),
        "window_end": format_time(end),
        "candidate_name": "Dana Smith",
        "candidate_email": "dana.smith@example.com",
    }


async def _link(stack: Stack) -> str:
    status, doc = await stack.post("/v1/offers", loop_offer_body(), stack.token())
    assert status == 201, doc
    return str(doc["url"]).rsplit("/c/", 1)[1]


async def _options(stack: Stack, cap: str) -> list[dict[str, Any]]:
    status, doc = await stack.post("/v1/candidate/slots", {"token": cap})
    assert status == 200, doc
    found = [o for day in doc["loop"]["days"] for o in day["options"]]
    assert len(found) >= 2, doc
    return found


async def _booked(stack: Stack) -> tuple[str, dict[str, Any]]:
    cap = await _link(stack)
    first = (await _options(stack, cap))[0]
    body = {"token": cap, "start": first["start"], "option": first["option_id"]}
    status, doc = await stack.post("/v1/candidate/book", body)
    assert status == 201, doc
    return cap, next(o for o in await _options(stack, cap) if o["option_id"] != first["option_id"])


async def setup_offer(stack: Stack) -> Call:
    return Call("/v1/offers", loop_offer_body(), stack.token())


async def setup_slots(stack: Stack) -> Call:
    return Call("/v1/candidate/slots", {"token": await _link(stack)}, None)


async def setup_book(stack: Stack) -> Call:
    cap = await _link(stack)
    first = (await _options(stack, cap))[0]
    return Call(
        "/v1/candidate/book", {"token": cap, "start": first["start"], "option": first["option_id"]}, None
    )


async def setup_reschedule(stack: Stack) -> Call:
    cap, other = await _booked(stack)
    return Call("/v1/candidate/reschedule", {"token": cap, "option": other["option_id"]}, None)


async def setup_cancel(stack: Stack) -> Call:
    cap, _ = await _booked(stack)
    return Call("/v1/candidate/cancel", {"token": cap}, None)


async def person_as_room(_stack: Stack, call: Call) -> None:
    call.body["loop_template"]["sessions"][0]["room"] = {"any_of": [CHRISTIE]}


LINK_CELLS: dict[str, Refused | NotApplicable] = {
    **CANDIDATE_LOCKS,
    "allow_list": Refused(410, "gone", "denied:not_allowed"),
    "delegated": CHECKED_AT_CREATION,
    "room": FROM_THE_LINK,
    "archived_person": LEFT_LINK,
}
LOOP_LINK_MATRIX: dict[tuple[str, str], Operation] = {
    ("POST", "/v1/offers"): Operation(
        setup_offer,
        {
            **USER_LOCKS,
            "allow_list": Refused(403, "forbidden", "denied:not_allowed"),
            "delegated": Refused(403, "forbidden", "denied:unreadable", probe_reads=1),
            "room": Refused(403, "forbidden", "denied:not_a_room"),
            "archived_person": LEFT,
        },
    ),
    ("POST", "/v1/candidate/slots"): Operation(setup_slots, LINK_CELLS),
    ("POST", "/v1/candidate/book"): Operation(setup_book, LINK_CELLS),
    ("POST", "/v1/candidate/reschedule"): Operation(setup_reschedule, LINK_CELLS),
    ("POST", "/v1/candidate/cancel"): Operation(
        setup_cancel,
        {
            **CANDIDATE_LOCKS,
            "allow_list": REMOVES_ONLY,
            "delegated": REMOVES_ONLY,
            "room": FROM_THE_LINK,
            "archived_person": REMOVES_ONLY,
        },
    ),
}
MUTATE = {**MUTATIONS, "room": person_as_room}
CELLS = [
    (op, rule)
    for op, o in LOOP_LINK_MATRIX.items()
    for rule in RULES
    if isinstance(o.cells.get(rule), Refused)
]


def test_every_cell_is_placed() -> None:
    for op, operation in LOOP_LINK_MATRIX.items():
        assert set(operation.cells) == set(RULES), (op, set(RULES) ^ set(operation.cells))


@pytest.mark.parametrize("op", list(LOOP_LINK_MATRIX), ids=[f"{m} {p}" for m, p in LOOP_LINK_MATRIX])
async def test_each_loop_link_operation_works_when_every_rule_holds(
    stack: Stack, op: tuple[str, str]
) -> None:
    call = await LOOP_LINK_MATRIX[op].setup(stack)
    status, doc = await call.send(stack)
    assert status in {200, 201}, (op, doc)


@pytest.mark.parametrize(("op", "rule"), CELLS, ids=[f"{p}-{r}" for (_m, p), r in CELLS])
async def test_loop_link_side_door_is_refused_without_graph_and_audited_once(
    stack: Stack, op: tuple[str, str], rule: str
) -> None:
    expected = LOOP_LINK_MATRIX[op].cells[rule]
    assert isinstance(expected, Refused)
    call = await LOOP_LINK_MATRIX[op].setup(stack)
    await MUTATE[rule](stack, call)
    rows_before, calls_before = len(await audit_rows(stack)), _calendar_counts(stack)

    status, doc = await call.send(stack)

    assert status == expected.status, (status, doc)
    if expected.error is not None:
        assert doc["error"] == expected.error, doc
        assert set(doc) <= {"error", "message", "field"}
    calls_after = _calendar_counts(stack)
    reads = {k: calls_after[k] - calls_before[k] for k in calls_after if calls_after[k] != calls_before[k]}
    allowed = {"graph.getSchedule": expected.probe_reads} if expected.probe_reads else {}
    assert reads == allowed, reads
    new = (await audit_rows(stack))[rows_before:]
    assert len(new) == 1, new
    assert new[0][2].startswith(expected.result), new


async def test_a_pooled_loop_links_refused_pool_members_are_skipped_never_read(stack: Stack) -> None:
    """A loop link whose session draws from a pool: every pool member goes through the gate on
    each view; the members it refuses are skipped (each refusal audited once by name), never read;
    too few left means no option (the link stays, no calendar read at all), never a 410."""
    from calendar_backend import storage
    from calendar_backend.pools import Member, Pool
    from tests.security.gate_env import allow

    pool = (CHRISTIE, "leeg@contoso.example")
    async with stack.runtime.store.transaction() as tx:
        await storage.create_pool(
            tx, stack.devtenant.tenant_id, Pool("Matrix pool", "", 5, 2, tuple(Member(a) for a in pool))
        )
    body = loop_offer_body()
    body["loop_template"]["sessions"][1] = {
        "title": "Values",
        "minutes": 30,
        "pool": {"name": "Matrix pool", "count": 1},
    }
    status, doc = await stack.post("/v1/offers", body, stack.token())
    assert status == 201, doc
    cap = str(doc["url"]).rsplit("/c/", 1)[1]
    assert await _options(stack, cap)
    await allow(stack, MEGAN, ROOM)  # the pool's members are no longer allowed
    rows_before, calls_before = len(await audit_rows(stack)), _calendar_counts(stack)
    status, page = await stack.post("/v1/candidate/slots", {"token": cap})
    assert status == 200, page
    assert [o for day in page["loop"]["days"] for o in day["options"]] == []
    assert _calendar_counts(stack) == calls_before
    new = (await audit_rows(stack))[rows_before:]
    refused = [r for r in new if r[2].startswith("denied:not_allowed")]
    assert sorted(a for r in refused for a in r[1]) == sorted(pool), new
