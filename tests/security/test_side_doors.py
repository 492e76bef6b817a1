"""Issue 12, the side-door matrix: every Calendar Service operation that touches a mailbox x every lock
and rule (token, tenant credential, payload, allow-list, delegated rights, room-is-a-room, archived user:
the acting user, and a person being scheduled).

For each cell the refusal is asserted (status and error code), no calendar request reaches Graph
(getSchedule, calendarView, events; the one exception is the delegated-rights probe, which *is* a
read with the acting user's own token), and exactly one audit row is written. A cell that cannot
apply names why (``NotApplicable``). The matrix is checked against the service's route table
(`calendar_backend.app.ROUTES`): a new route fails `test_every_route_is_in_the_matrix` until it is
placed in the matrix or, with a reason, among the routes that touch no mailbox. Operations that are
not routes (recovery) are listed in `EXTRA_OPERATIONS` and tested below.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from calendar_backend import storage
from calendar_backend.app import ROUTES
from calendar_backend.pools import Member, Pool
from calendar_backend.recovery import Reconciler
from calendar_backend.runtime import build_clients
from calendar_backend.sealing import tenant_credential_aad
from calendar_backend.storage import watch as store_watch
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.security.gate_env import (
    ADELE,
    CALENDAR_OPS,
    CHRISTIE,
    MEGAN,
    ROOM,
    allow,
    archive,
    audit_rows,
    find_body,
    interview_body,
    make_offer,
    offer_body,
)
from tests.service.conftest import ALEX, Stack, service_for

RULES = ("token", "credential", "payload", "allow_list", "delegated", "room", "archived", "archived_person")


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


# ---- requests -----------------------------------------------------------------------------------------
@dataclass
class Call:
    """One request: path, JSON body, and the user token (None for candidate routes)."""

    path: str
    body: dict[str, Any]
    token: str | None
    method: str = "POST"

    async def send(self, stack: Stack) -> tuple[int, Any]:
        if self.method == "GET":
            return await stack.get(self.path, self.token)
        if self.method != "POST":
            return await stack.send(self.method, self.path, self.body, self.token)
        return await stack.post(self.path, self.body, self.token)


async def _slots(stack: Stack, n: int = 2) -> list[dict[str, str]]:
    status, doc = await stack.post("/v1/slots/find", find_body([MEGAN]), stack.token())
    assert status == 200, doc
    assert len(doc["slots"]) >= n, doc
    return sorted(doc["slots"], key=lambda s: s["start"])[:n]


async def _booked(stack: Stack) -> tuple[str, dict[str, str]]:
    first, second = await _slots(stack)
    status, doc = await stack.post(
        "/v1/interviews",
        interview_body([MEGAN], f"matrix-{uuid.uuid4().hex[:12]}", first["start"], first["end"]),
        stack.token(),
    )
    assert status == 201, doc
    return str(doc["id"]), second


async def _offer_slots(stack: Stack, cap: str) -> list[str]:
    status, doc = await stack.post("/v1/candidate/slots", {"token": cap})
    assert status == 200, doc
    assert doc["slots"], doc
    return [s["start"] for s in doc["slots"]]


async def _booked_offer(stack: Stack) -> tuple[str, str]:
    cap = await make_offer(stack, [MEGAN])
    starts = await _offer_slots(stack, cap)
    status, doc = await stack.post("/v1/candidate/book", {"token": cap, "start": starts[0]})
    assert status == 201, doc
    return cap, starts[-1]


async def setup_find(stack: Stack) -> Call:
    return Call("/v1/slots/find", find_body([MEGAN]), stack.token())


async def setup_create(stack: Stack) -> Call:
    (slot,) = await _slots(stack, 1)
    return Call(
        "/v1/interviews",
        interview_body([MEGAN], f"matrix-{uuid.uuid4().hex[:12]}", slot["start"], slot["end"]),
        stack.token(),
    )


async def setup_reschedule(stack: Stack) -> Call:
    interview, slot = await _booked(stack)
    return Call(
        f"/v1/interviews/{interview}/reschedule", {"start": slot["start"], "end": slot["end"]}, stack.token()
    )


async def setup_cancel(stack: Stack) -> Call:
    interview, _ = await _booked(stack)
    return Call(f"/v1/interviews/{interview}/cancel", {}, stack.token())


async def setup_resolve(stack: Stack) -> Call:
    return Call("/v1/directory/resolve", {"queries": ["Megan"]}, stack.token())


async def setup_check(stack: Stack) -> Call:
    return Call("/v1/directory/check", {"queries": ["Megan"]}, stack.token())


async def setup_my_settings(stack: Stack) -> Call:
    return Call("/v1/me/settings", {}, stack.token(), method="GET")


async def setup_my_interviews(stack: Stack) -> Call:
    await _booked(stack)
    return Call("/v1/interviews", {}, stack.token(), method="GET")


async def setup_offer(stack: Stack) -> Call:
    return Call("/v1/offers", offer_body([MEGAN]), stack.token())


async def setup_candidate_slots(stack: Stack) -> Call:
    return Call("/v1/candidate/slots", {"token": await make_offer(stack, [MEGAN])}, None)


async def setup_candidate_book(stack: Stack) -> Call:
    cap = await make_offer(stack, [MEGAN])
    starts = await _offer_slots(stack, cap)
    return Call("/v1/candidate/book", {"token": cap, "start": starts[0]}, None)


async def setup_candidate_reschedule(stack: Stack) -> Call:
    cap, start = await _booked_offer(stack)
    return Call("/v1/candidate/reschedule", {"token": cap, "start": start}, None)


async def setup_candidate_cancel(stack: Stack) -> Call:
    cap, _ = await _booked_offer(stack)
    return Call("/v1/candidate/cancel", {"token": cap}, None)


async def setup_loop_search(stack: Stack) -> Call:
    body = find_body([MEGAN])
    template = {
        "name": "Matrix loop",
        "sessions": [
            {"title": "Chat", "minutes": 30, "interviewers": [MEGAN]},
            {"title": "Values", "minutes": 30, "interviewers": [ADELE], "room": {"any_of": [ROOM]}},
        ],
    }
    return Call(
        "/v1/loops/search", {"template": template, "start": body["start"], "end": body["end"]}, stack.token()
    )


def _loop_body(slot: dict[str, str], key: str) -> dict[str, Any]:
    """A one-session loop with Megan at ``slot`` (issue 17)."""
    return {
        "template": {
            "name": "Onsite",
            "sessions": [{"title": "Intro", "minutes": 30, "interviewers": [MEGAN]}],
        },
        "sessions": [{"index": 0, "start": slot["start"], "end": slot["end"], "room": None}],
        "candidate": {"name": "Dana Smith", "email": "dana@example.com"},
        "transaction_id": key,
    }


async def setup_book_loop(stack: Stack) -> Call:
    (slot,) = await _slots(stack, 1)
    return Call("/v1/loops", _loop_body(slot, f"matrix-{uuid.uuid4().hex[:12]}"), stack.token())


async def _booked_loop(stack: Stack) -> tuple[str, dict[str, str]]:
    first, second = await _slots(stack)
    status, doc = await stack.post(
        "/v1/loops", _loop_body(first, f"matrix-{uuid.uuid4().hex[:12]}"), stack.token()
    )
    assert status == 201, doc
    return str(doc["id"]), second


async def setup_cancel_loop(stack: Stack) -> Call:
    loop, _ = await _booked_loop(stack)
    return Call(f"/v1/loops/{loop}/cancel", {}, stack.token())


async def setup_reschedule_loop(stack: Stack) -> Call:
    loop, slot = await _booked_loop(stack)
    moved = {"index": 0, "start": slot["start"], "end": slot["end"], "room": None}
    return Call(f"/v1/loops/{loop}/reschedule", {"sessions": [moved]}, stack.token())


async def _drift_item(stack: Stack) -> str:
    """A booked interview with an open drift item (Megan declined) whose repair ``time-1`` moves
    it to another open time; returns the drift id."""
    interview, slot = await _booked(stack)
    async with stack.runtime.store.transaction() as tx:
        row = await storage.get_interview(tx, interview)
        assert row is not None
        drift = await store_watch.record_drift(
            tx, row, "declined", MEGAN, "notification", f"{interview}:declined:{MEGAN}", datetime.now(UTC)
        )
        assert drift is not None
        repair = {"id": "time-1", "kind": "move", "start": slot["start"], "end": slot["end"]}
        await store_watch.set_repairs(tx, drift.id, [repair])
    return drift.id


async def setup_drift_list(stack: Stack) -> Call:
    await _drift_item(stack)
    return Call("/v1/watch/drift", {}, stack.token(), method="GET")


async def setup_drift_apply(stack: Stack) -> Call:
    return Call(f"/v1/watch/drift/{await _drift_item(stack)}/apply", {"repair": "time-1"}, stack.token())


async def _alex_pool(stack: Stack, *members: str) -> str:
    """A pool owned by Alex (issue 18), with ``members``."""
    async with stack.runtime.store.transaction() as tx:
        pool_id = await storage.create_pool(
            tx,
            stack.devtenant.tenant_id,
            Pool(f"Backend {uuid.uuid4().hex[:6]}", members=tuple(Member(m) for m in members)),
            owner=ALEX,
        )
    assert pool_id is not None
    return pool_id


async def setup_my_load(stack: Stack) -> Call:
    return Call("/v1/me/load", {}, stack.token(), method="GET")


async def setup_pools(stack: Stack) -> Call:
    await _alex_pool(stack, MEGAN)
    return Call("/v1/pools", {}, stack.token(), method="GET")


async def setup_pool_card(stack: Stack) -> Call:
    return Call(f"/v1/pools/{await _alex_pool(stack, MEGAN)}", {}, stack.token(), method="GET")


async def setup_pool_member(stack: Stack) -> Call:
    pool_id = await _alex_pool(stack)
    return Call(f"/v1/pools/{pool_id}/members", {"action": "add", "member": MEGAN}, stack.token())


# ---- rules --------------------------------------------------------------------------------------------
Mutate = Callable[[Stack, Call], Awaitable[None]]


async def bad_token(stack: Stack, call: Call) -> None:
    if call.token is None:  # a candidate route: a well-formed capability nobody minted
        call.body["token"] = "A" * 43
    else:
        call.token = stack.token(audience=str(uuid.uuid4()))


async def bad_credential(stack: Stack, call: Call) -> None:
    """Seal a credential for another tenant and store it in this tenant's row (lock 2 fails)."""
    cipher = stack.runtime.cipher
    foreign = cipher.encrypt(
        b'{"client_id":"x","client_secret":"y"}', aad=tenant_credential_aad(str(uuid.uuid4()))
    )
    async with stack.runtime.store.transaction() as tx:
        await storage.put_tenant(tx, stack.devtenant.tenant_id, foreign, cipher.key_id_of(foreign), [])


async def bad_payload(_stack: Stack, call: Call) -> None:
    call.body["unexpected"] = True


async def not_allowed(stack: Stack, _call: Call) -> None:
    await allow(stack, ADELE)  # a non-empty allow-list without Megan


async def hidden_calendar(stack: Stack, _call: Call) -> None:
    """Megan stops sharing anything with Alex in Outlook (after the booking/link was made)."""
    megan = stack.devtenant.tenant.find_user(MEGAN)
    assert megan is not None
    megan["calendarPermissions"] = [{"emailAddress": {"name": "My Organization"}, "role": "none"}]


async def person_as_room(_stack: Stack, call: Call) -> None:
    if "template" in call.body:  # a loop: the session asks for a "room" that is a person
        call.body["template"]["sessions"][0]["room"] = {"any_of": [CHRISTIE]}
        if "sessions" in call.body:  # a booking names the room it chose, too
            call.body["sessions"][0]["room"] = CHRISTIE
        return
    call.body["rooms"] = [CHRISTIE]


async def archived(stack: Stack, _call: Call) -> None:
    await archive(stack, ALEX)


async def archived_person(stack: Stack, _call: Call) -> None:
    await archive(stack, MEGAN)  # the interviewer left after the booking/link was made


MUTATIONS: dict[str, Mutate] = {
    "token": bad_token,
    "credential": bad_credential,
    "payload": bad_payload,
    "allow_list": not_allowed,
    "delegated": hidden_calendar,
    "room": person_as_room,
    "archived": archived,
    "archived_person": archived_person,
}


@dataclass(frozen=True)
class Refused:
    """What a refusal looks like: status, error code, the audit result and any probe reads."""

    status: int
    error: str | None
    result: str = "denied:"  # prefix of the one new audit row's result
    probe_reads: int = 0  # getSchedule requests allowed (the delegated probe, with the user's token)
    check: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class NotApplicable:
    reason: str


USER_LOCKS = {
    "token": Refused(401, "unauthorized"),
    "credential": Refused(503, "unavailable"),
    "payload": Refused(400, "invalid_request"),
    "archived": Refused(403, "forbidden", "denied:lock2_forbidden"),
}
CANDIDATE_LOCKS = {
    "token": Refused(404, "not_found", "denied:capability"),
    "credential": Refused(503, "unavailable", "denied:lock2_unavailable"),
    "payload": Refused(400, "invalid_request", "denied:payload"),
    "archived": Refused(410, "gone", "denied:lock2_organizer"),
}
NO_ROOMS = NotApplicable("the operation takes no rooms (no `rooms` in its schema)")
CHECKED_AT_CREATION = NotApplicable(
    "a link never shows more than its creator could read when it was made (probed by "
    "offer.create); candidate views read with the app-only token under the access policy"
)
LEFT = Refused(403, "forbidden", "denied:archived")
LEFT_LINK = Refused(410, "gone", "denied:archived")
OWN_MAILBOX = NotApplicable(
    "reads only the caller's own mailbox with their own delegated token (mailbox settings, or "
    "the events OpenSlot created there, by id, $select=id,start,end,isCancelled)"
)
OWN_ROWS = NotApplicable("lists OpenSlot's own drift rows of the caller, never Graph")
REMOVES_ONLY = NotApplicable(
    "cancelling only withdraws an invite OpenSlot made; it reads no calendar, and refusing it "
    "would strand an event in Outlook"
)


def _no_megan(doc: Any) -> None:
    assert all(p["address"] != MEGAN for r in doc["results"] for p in r), doc


def _checked(status: str) -> Callable[[Any], None]:
    def check(doc: Any) -> None:
        text = json.dumps(doc)
        assert MEGAN in text, doc
        assert f'"{status}"' in text, doc

    return check


def _explained(reason: str) -> Callable[[Any], None]:
    def check(doc: Any) -> None:
        assert doc["options"] == [], doc
        assert [(e["reason"], e["mailboxes"]) for e in doc["explanations"]] == [(reason, [MEGAN])], doc

    return check


def _blocked(reason: str) -> Callable[[Any], None]:
    def check(doc: Any) -> None:
        assert doc["slots"] == [], doc
        assert doc["blockers"] == [{"address": MEGAN, "reason": reason}], doc

    return check


@dataclass
class Operation:
    setup: Callable[[Stack], Awaitable[Call]]
    cells: dict[str, Refused | NotApplicable] = field(default_factory=dict)


MATRIX: dict[tuple[str, str], Operation] = {
    ("POST", "/v1/slots/find"): Operation(
        setup_find,
        {
            **USER_LOCKS,
            "allow_list": Refused(200, None, "denied:not_allowed", check=_blocked("not_allowed")),
            # find reads free/busy with the user's own token: Graph itself applies Outlook's sharing.
            "delegated": Refused(200, None, "partial", probe_reads=1, check=_blocked("unreadable")),
            "room": Refused(403, "forbidden", "denied:not_a_room"),
            "archived_person": LEFT,
        },
    ),
    ("POST", "/v1/interviews"): Operation(
        setup_create,
        {
            **USER_LOCKS,
            "allow_list": Refused(403, "forbidden", "denied:not_allowed"),
            "delegated": Refused(403, "forbidden", "denied:unreadable", probe_reads=1),
            "room": Refused(403, "forbidden", "denied:not_a_room"),
            "archived_person": LEFT,
        },
    ),
    ("POST", "/v1/interviews/{id}/reschedule"): Operation(
        setup_reschedule,
        {
            **USER_LOCKS,
            "allow_list": Refused(403, "forbidden", "denied:not_allowed"),
            "delegated": Refused(403, "forbidden", "denied:unreadable", probe_reads=1),
            "room": NotApplicable(
                "rooms of a booked interview are told apart by the room list "
                "itself (MailboxGate.rooms_among), never by the caller"
            ),
            "archived_person": LEFT,
        },
    ),
    ("POST", "/v1/interviews/{id}/cancel"): Operation(
        setup_cancel,
        {
            **USER_LOCKS,
            "allow_list": REMOVES_ONLY,
            "delegated": REMOVES_ONLY,
            "room": NO_ROOMS,
            "archived_person": REMOVES_ONLY,
        },
    ),
    ("POST", "/v1/directory/resolve"): Operation(
        setup_resolve,
        {
            **USER_LOCKS,
            # A lookup reads no calendar: a person the allow-list refuses is left out of the answer.
            "allow_list": Refused(200, None, "ok", check=_no_megan),
            "delegated": NotApplicable("a directory lookup reads no calendar"),
            "room": NotApplicable("is_room comes from the tenant's room list, not the caller"),
            "archived_person": Refused(200, None, "ok", check=_no_megan),
        },
    ),
    ("POST", "/v1/directory/check"): Operation(
        setup_check,
        {
            **USER_LOCKS,
            # Checking a panel names each refused person back and reads none of their calendars.
            "allow_list": Refused(200, None, "denied:not_allowed", check=_checked("not_allowed")),
            "delegated": NotApplicable(
                "reports 'unreadable' from the caller's own getSchedule: "
                "Graph applies Outlook's sharing (tests/service)"
            ),
            "room": NotApplicable("is_room comes from the tenant's room list, not the caller"),
            "archived_person": Refused(200, None, "denied:not_allowed", check=_checked("not_allowed")),
        },
    ),
    ("GET", "/v1/me/settings"): Operation(
        setup_my_settings,
        {
            **USER_LOCKS,
            "payload": NotApplicable("a GET has no body"),
            "allow_list": OWN_MAILBOX,
            "delegated": OWN_MAILBOX,
            "room": NO_ROOMS,
            "archived_person": OWN_MAILBOX,
        },
    ),
    ("GET", "/v1/interviews"): Operation(
        setup_my_interviews,
        {
            **USER_LOCKS,
            "payload": NotApplicable("a GET has no body"),
            "allow_list": OWN_MAILBOX,
            "delegated": OWN_MAILBOX,
            "room": NO_ROOMS,
            "archived_person": OWN_MAILBOX,
        },
    ),
    ("POST", "/v1/offers"): Operation(
        setup_offer,
        {
            **USER_LOCKS,
            "allow_list": Refused(403, "forbidden", "denied:not_allowed"),
            "delegated": Refused(403, "forbidden", "denied:unreadable", probe_reads=1),
            "room": NO_ROOMS,
            "archived_person": LEFT,
        },
    ),
    ("POST", "/v1/candidate/slots"): Operation(
        setup_candidate_slots,
        {
            **CANDIDATE_LOCKS,
            "allow_list": Refused(410, "gone", "denied:not_allowed"),
            "delegated": CHECKED_AT_CREATION,
            "room": NO_ROOMS,
            "archived_person": LEFT_LINK,
        },
    ),
    ("POST", "/v1/candidate/book"): Operation(
        setup_candidate_book,
        {
            **CANDIDATE_LOCKS,
            "allow_list": Refused(410, "gone", "denied:not_allowed"),
            "delegated": CHECKED_AT_CREATION,
            "room": NO_ROOMS,
            "archived_person": LEFT_LINK,
        },
    ),
    ("POST", "/v1/candidate/reschedule"): Operation(
        setup_candidate_reschedule,
        {
            **CANDIDATE_LOCKS,
            "allow_list": Refused(410, "gone", "denied:not_allowed"),
            "delegated": CHECKED_AT_CREATION,
            "room": NO_ROOMS,
            "archived_person": LEFT_LINK,
        },
    ),
    ("GET", "/v1/watch/drift"): Operation(
        setup_drift_list,
        {
            **USER_LOCKS,
            "payload": NotApplicable("a GET has no body"),
            "allow_list": OWN_ROWS,
            "delegated": OWN_ROWS,
            "room": NO_ROOMS,
            "archived_person": OWN_ROWS,
        },
    ),
    ("POST", "/v1/watch/drift/{id}/apply"): Operation(
        setup_drift_apply,
        {
            **USER_LOCKS,
            "allow_list": Refused(403, "forbidden", "denied:not_allowed"),
            "delegated": Refused(403, "forbidden", "denied:unreadable", probe_reads=1),
            "room": NotApplicable(
                "a repair takes no rooms from the caller: the booked interview's rooms are told "
                "apart by the room list (MailboxGate.rooms_among)"
            ),
            "archived_person": LEFT,
        },
    ),
    ("POST", "/v1/candidate/cancel"): Operation(
        setup_candidate_cancel,
        {
            **CANDIDATE_LOCKS,
            "allow_list": REMOVES_ONLY,
            "delegated": REMOVES_ONLY,
            "room": NO_ROOMS,
            "archived_person": REMOVES_ONLY,
        },
    ),
    ("POST", "/v1/loops/search"): Operation(
        setup_loop_search,
        {
            **USER_LOCKS,
            "allow_list": Refused(200, None, "denied:not_allowed", check=_explained("not_allowed")),
            # as find: one read with the user's own token; Graph applies Outlook's sharing.
            "delegated": Refused(200, None, "partial", probe_reads=1, check=_explained("unreadable")),
            "room": Refused(403, "forbidden", "denied:not_a_room"),
            "archived_person": LEFT,
        },
    ),
    ("POST", "/v1/loops"): Operation(
        setup_book_loop,
        {
            **USER_LOCKS,
            "allow_list": Refused(403, "forbidden", "denied:not_allowed"),
            "delegated": Refused(403, "forbidden", "denied:unreadable", probe_reads=1),
            "room": Refused(403, "forbidden", "denied:not_a_room"),
            "archived_person": LEFT,
        },
    ),
    ("POST", "/v1/loops/{id}/reschedule"): Operation(
        setup_reschedule_loop,
        {
            **USER_LOCKS,
            "allow_list": Refused(403, "forbidden", "denied:not_allowed"),
            "delegated": Refused(403, "forbidden", "denied:unreadable", probe_reads=1),
            "room": NotApplicable(
                "rooms of a booked loop are told apart by the room list (rooms_among), never by the caller"
            ),
            "archived_person": LEFT,
        },
    ),
    ("POST", "/v1/loops/{id}/cancel"): Operation(
        setup_cancel_loop,
        {
            **USER_LOCKS,
            "allow_list": REMOVES_ONLY,
            "delegated": REMOVES_ONLY,
            "room": NO_ROOMS,
            "archived_person": REMOVES_ONLY,
        },
    ),
}

POOL_READ = {
    **USER_LOCKS,
    "payload": NotApplicable("a GET has no body"),
    "allow_list": NotApplicable("reads OpenSlot's own pool rows and the caller's own /me, no calendar"),
    "delegated": OWN_MAILBOX,
    "room": NO_ROOMS,
    "archived_person": NotApplicable("reads OpenSlot's own pool rows, no member's mailbox"),
}
MATRIX.update(
    {
        ("GET", "/v1/me/load"): Operation(setup_my_load, POOL_READ),
        ("GET", "/v1/pools"): Operation(setup_pools, POOL_READ),
        ("GET", "/v1/pools/{id}"): Operation(setup_pool_card, POOL_READ),
        ("POST", "/v1/pools/{id}/members"): Operation(
            setup_pool_member,
            {
                **USER_LOCKS,
                "allow_list": Refused(403, "forbidden", "denied:not_allowed"),
                "delegated": NotApplicable(
                    "adding a member reads no calendar (only their mailbox zone, app-only, after the gate)"
                ),
                "room": NO_ROOMS,
                "archived_person": LEFT,
            },
        ),
    }
)

TOUCHES_NO_MAILBOX = {
    ("GET", "/v1/health"): "liveness only",
    ("GET", "/v1/openapi.json"): "a static document",
    ("POST", "/v1/me/disconnect"): "deletes the caller's token cache, never Graph",
    ("GET", "/v1/offers"): "reads OpenSlot's own rows, never Graph",
    ("POST", "/v1/offers/{id}/revoke"): "a database change, never Graph",
    ("GET", "/v1/loop-templates"): "reads OpenSlot's own rows (saved loop templates), never Graph",
    ("PUT", "/v1/loop-templates/{name}"): "a database change (a template's JSON), never Graph",
    ("DELETE", "/v1/loop-templates/{name}"): "a database change, never Graph",
    ("GET", "/v1/loops"): "reads OpenSlot's own rows, never Graph",
    ("POST", "/v1/watch/notifications"): "Graph's notifications (no user; clientState checked): ids are "
    "queued in the database, no Graph read in the request; the worker asks the gate (watch.py)",
    ("POST", "/v1/watch/feed"): "the bot's drift feed (shared key, no user): reads OpenSlot's own rows, "
    "never Graph (tests/service/test_watch_feed.py::test_the_feed_refuses_a_wrong_or_missing_key_and_audits)",
    ("POST", "/v1/watch/feed/ack"): "marks OpenSlot's own drift rows delivered (shared key), never Graph",
}
EXTRA_OPERATIONS = {"recovery": "test_recovery_asks_the_gate_for_an_archived_organizer"}

CELLS = [(op, rule) for op, o in MATRIX.items() for rule in RULES if isinstance(o.cells.get(rule), Refused)]


def _calendar_counts(stack: Stack) -> dict[str, int]:
    counters = stack.devtenant.tenant.counters
    return {name: int(counters[name]) for name in CALENDAR_OPS}


# ---- the tests ------------------------------------------------------------------------------------------
def _gaps(routes: list[tuple[Any, ...]]) -> list[tuple[str, str]]:
    """Routes the matrix does not place (or places but no longer exist)."""
    served = {(str(r[0]), str(r[1])) for r in routes}
    return sorted(served ^ (set(MATRIX) | set(TOUCHES_NO_MAILBOX)))


def test_every_route_is_in_the_matrix() -> None:
    assert _gaps(list(ROUTES)) == [], (
        "place every new route in MATRIX (or, with a reason, in TOUCHES_NO_MAILBOX)"
    )
    assert not set(MATRIX) & set(TOUCHES_NO_MAILBOX)
    for op, operation in MATRIX.items():
        assert set(operation.cells) == set(RULES), (op, set(RULES) ^ set(operation.cells))
        for cell in operation.cells.values():
            assert isinstance(cell, Refused) or cell.reason


def test_a_new_operation_missing_from_the_matrix_is_caught() -> None:
    """The guard itself: a route added to the service (say, pools) without a matrix row fails."""
    added = [*ROUTES, ("POST", "/v1/pools", None, "create_pool", "Make a pool")]
    assert _gaps(added) == [("POST", "/v1/pools")]


@pytest.mark.parametrize("op", list(MATRIX), ids=[f"{m} {p}" for m, p in MATRIX])
async def test_each_operation_works_when_every_rule_holds(stack: Stack, op: tuple[str, str]) -> None:
    """The control: without a broken rule the same request succeeds (so a refusal is the rule's)."""
    call = await MATRIX[op].setup(stack)
    status, doc = await call.send(stack)
    assert status in {200, 201}, (op, doc)


@pytest.mark.parametrize(("op", "rule"), CELLS, ids=[f"{p}-{r}" for (_m, p), r in CELLS])
async def test_side_door_is_refused_without_graph_and_audited_once(
    stack: Stack, op: tuple[str, str], rule: str
) -> None:
    expected = MATRIX[op].cells[rule]
    assert isinstance(expected, Refused)
    call = await MATRIX[op].setup(stack)
    await MUTATIONS[rule](stack, call)
    rows_before, calls_before = len(await audit_rows(stack)), _calendar_counts(stack)

    status, doc = await call.send(stack)

    assert status == expected.status, (status, doc)
    if expected.error is not None:
        assert doc["error"] == expected.error, doc
        assert set(doc) <= {"error", "message", "field"}
    if expected.check is not None:
        expected.check(doc)
    calls_after = _calendar_counts(stack)
    reads = {k: calls_after[k] - calls_before[k] for k in calls_after if calls_after[k] != calls_before[k]}
    allowed = {"graph.getSchedule": expected.probe_reads} if expected.probe_reads else {}
    assert reads == allowed, reads
    new = (await audit_rows(stack))[rows_before:]
    assert len(new) == 1, new
    assert new[0][2].startswith(expected.result), new


async def test_refusals_name_the_mailbox(stack: Stack) -> None:
    """Where the refusal is about a mailbox, the audit row names it (and the manager's answer)."""
    call = await setup_offer(stack)
    await hidden_calendar(stack, call)
    status, doc = await call.send(stack)
    assert status == 403
    assert MEGAN in doc["message"]
    assert (await audit_rows(stack))[-1] == ("offer.create", [MEGAN], "denied:unreadable")


async def test_recovery_asks_the_gate_for_an_archived_organizer(stack: Stack) -> None:
    rt = stack.runtime
    alex = stack.devtenant.tenant.find_user(ALEX)
    assert alex is not None
    start = datetime.now(UTC) + timedelta(days=3)
    async with rt.store.transaction() as tx:
        row = await storage.insert_pending(
            tx,
            tenant_id=stack.devtenant.tenant_id,
            organizer_oid=str(alex["id"]),
            organizer_upn=ALEX,
            transaction_id=str(uuid.uuid4()),
            start=start,
            end=start + timedelta(minutes=30),
            attendees=[MEGAN, "dana@example.com"],
            candidate_name="Dana Smith",
            subject="Interview: Dana Smith",
            source="bot",
        )
    await archive(stack, ALEX)
    tokens, graph = build_clients(rt)
    reconciler = Reconciler(rt.store, rt.cipher, tokens, graph, stale_after=timedelta(0))
    rows_before, calls_before = len(await audit_rows(stack)), _calendar_counts(stack)
    report = await reconciler.run_once()
    assert report.failed == 1
    assert _calendar_counts(stack) == calls_before
    new = (await audit_rows(stack))[rows_before:]
    assert new == [("interview.recover", [ALEX], "denied:archived")]
    async with rt.store.transaction() as tx:
        status = (
            await tx.execute(text("SELECT status FROM interviews WHERE id = :id"), {"id": row.id})
        ).scalar_one()
    assert status == "failed"
