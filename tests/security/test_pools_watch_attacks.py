"""The attacker's pass over issue 18/19's new surfaces (pools from groups, skipped members, outside
load, the training sweep, cap overrides, the watcher's repairs, the drift feed's lease).

Each test is one attack. Those that found a defect were seen failing before the fix (named in
the test's docstring); the others are regression tests of a defence that held."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from calendar_backend import storage
from calendar_backend.contract import format_time
from calendar_backend.errors import ValidationError
from calendar_backend.pool_groups import PoolGroups, parse_group_id
from calendar_backend.pools import Member, Pool
from calendar_backend.pools_booking import reserve_from_pool
from calendar_backend.pools_completion import TrainingSweep
from calendar_backend.pools_training import Trainee, TrainingStage
from calendar_backend.settings import _feed_key
from calendar_backend.storage import watch as store_watch
from calendar_backend.tenancy import TenantContext
from calendar_backend.tokens import AppCredential
from tests.backend.conftest import engine, pg_databases, pg_url, sqlite_template, store  # noqa: F401
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.security.gate_env import allow, audit_rows
from tests.service.conftest import Stack, next_week, service_for
from tests.service.test_loop_pool_cap_search import TEMPLATE as CAP_TEMPLATE
from tests.service.test_loop_pool_cap_search import _everyone_at_cap as cap_everyone
from tests.service.test_loop_pools import MEGAN, POOL, book_body, make_pool, search
from tests.service.test_pool_groups import GROUP, SIX, drawn, group_pool, pooled_template, seats, set_group
from tests.service.test_watch import acontrol, copy_of, watcher_of
from tests.service.test_watch_feed import KEY as FEED_KEY
from tests.service.test_watch_feed import declined_in_feed, feed
from tests.service.test_watch_pool_repairs import book_drawn
from tests.service.test_watch_pool_repairs import make_pool as repairs_pool

TENANT = "11111111-2222-3333-4444-555555555555"
MON = datetime(2026, 12, 7, tzinfo=UTC)
A, T = "a@contoso.example", "t@contoso.example"


async def _pool_with_trainee(store: storage.Store) -> str:
    async with store.transaction() as tx:
        pool_id = await storage.create_pool(tx, TENANT, Pool("Backend", "backend", 9, 9, (Member(A),)))
        assert pool_id is not None
        await storage.add_trainee(
            tx, pool_id, Trainee(T, shadow_required=5, reverse_shadow_required=0, weekly_cap=9, daily_cap=9)
        )
    return pool_id


async def _session(store: storage.Store, pool_id: str, n: int, start: datetime) -> storage.InterviewRow:
    async with store.transaction() as tx:
        row = await storage.insert_pending(
            tx,
            tenant_id=TENANT,
            organizer_oid="org",
            organizer_upn="hm@contoso.example",
            transaction_id=f"booking-{n}",
            start=start,
            end=start + timedelta(hours=1),
            attendees=[A, T],
            candidate_name="Candidate",
            subject="Interview",
            source=storage.InterviewSource.BOT,
        )
        await reserve_from_pool(
            tx, tenant_id=TENANT, pool_id=pool_id, interview_id=row.id, start=row.start, members=[A],
            trainees=[(T, TrainingStage.SHADOW)], request_id=f"r{n}",
        )  # fmt: skip
        assert await storage.confirm_interview(tx, row.id, f"event-{n}", None)
    return row


# ---- the training sweep (pools_completion.py) ------------------------------------------------------
@pytest.mark.parametrize("kind", ["deleted", "moved"])
async def test_sweep_does_not_credit_a_session_deleted_or_moved_in_outlook(
    store: storage.Store,
    kind: str,
) -> None:
    """ATTACK: the organizer deletes the meeting in Outlook (or moves it to next month); OpenSlot's row
    is still ``confirmed`` at the old time until the manager repairs the drift. BROKEN before the fix
    (seen failing: the trainee was credited a shadow session that never happened); now a seat whose
    interview has an unrepaired ``deleted``/``moved`` drift is not due."""
    pool_id = await _pool_with_trainee(store)
    row = await _session(store, pool_id, 1, MON + timedelta(hours=9))
    async with store.transaction() as tx:
        assert await store_watch.record_drift(tx, row, kind, "hm@contoso.example", "sweep", f"fp-{kind}", MON)
    report = await TrainingSweep(store, lambda: MON + timedelta(days=1)).run_once()
    assert report.credited == 0
    async with store.transaction() as tx:
        record = await storage.get_pool_by_id(tx, pool_id)
    assert record is not None
    assert next(t for t in record.trainees if t.address == T).shadow_done == 0


async def test_sweep_credits_once_the_move_drift_is_repaired(store: storage.Store) -> None:
    """HELD (regression): a ``moved`` drift the manager repaired (``restore``: back to the booked
    time) no longer holds the credit back."""
    pool_id = await _pool_with_trainee(store)
    row = await _session(store, pool_id, 1, MON + timedelta(hours=9))
    async with store.transaction() as tx:
        drift = await store_watch.record_drift(tx, row, "moved", "hm@contoso.example", "sweep", "fp-m", MON)
        assert drift is not None
        assert await store_watch.claim_drift(tx, drift.id)
        await store_watch.settle_drift(tx, drift.id, "applied", "restore")
    assert (await TrainingSweep(store, lambda: MON + timedelta(days=1)).run_once()).credited == 1


# ---- pools from an Entra group (pool_groups.py) ----------------------------------------------------
@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path) as running:
        yield running


ROOM = "boardroom@contoso.example"


def _z(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def test_a_room_in_the_pool_group_is_never_drawn_and_does_not_refuse_the_search(stack: Stack) -> None:
    """ATTACK: someone who may edit the Entra group (a group owner, a self-service group) adds a room's
    resource account to it. In Entra a room mailbox is a user object, so ``transitiveMembers`` lists
    it. BROKEN before the fix (seen failing: the gate's ``not_a_person`` refusal is not one a pool
    member is skipped for, so every search of the pool was refused: one group edit turned the pool
    off). Now the group's rooms are left out of its members (and never read)."""
    set_group(stack, SIX[:4])
    tenant = stack.devtenant.tenant
    room = tenant.find_room(ROOM)
    assert room is not None
    next(g for g in tenant.data["groups"] if g["id"] == GROUP)["members"].append(room["id"])
    await group_pool(stack)
    status, doc = await search(stack, pooled_template(), limit=5)
    assert status == 200, doc
    assert doc["options"], doc["explanations"]
    assert ROOM not in drawn(doc)
    assert ROOM not in str(doc)
    option = doc["options"][0]
    forged = book_body(pooled_template(), option, "room-1")  # a forged booking naming the room
    forged["sessions"][1]["pool_members"] = [ROOM, forged["sessions"][1]["pool_members"][0]]
    status, answer = await stack.post("/v1/loops", forged, stack.token())
    assert status in (400, 403), answer
    assert await seats(stack) == set()


# ---- the cap override through the API (POST /v1/loops, /v1/loops/{id}/reschedule) -------------------
async def _overrides(stack: Stack) -> int:
    async with stack.runtime.store.transaction() as tx:
        return len(await storage.list_cap_overrides(tx, stack.devtenant.tenant_id))


@pytest.mark.parametrize(
    ("address", "reason", "field"),
    [
        ("irvins@contoso.example", "needed for this role", "cap_override"),  # not drawn from the pool
        (None, "   \t  ", "cap_override"),  # only blanks
        (None, "x" * 10_000, None),  # far past the schema's limit
        (None, "ok\u202egnp.exe", None),  # a bidi override
        (None, "line\r\nInjected: yes", None),  # CR/LF
        (None, "esc\x1b[31mred", None),  # a terminal escape
        (None, "nul\x00byte", None),
    ],
)
async def test_a_forged_cap_override_on_a_booking_is_refused_and_stores_nothing(
    stack: Stack, address: str | None, reason: str, field: str | None
) -> None:
    """HELD (regression): a hand-made POST /v1/loops whose ``cap_override`` names someone the pool
    did not supply, or whose reason is blank, 10k characters, or carries control/bidi characters,
    is refused (400) before anything is reserved: no seat, no override row, no loop."""
    await make_pool(stack)
    template = pooled_template()
    status, doc = await search(stack, template)
    assert status == 200, doc
    option = doc["options"][0]
    picked = next(s for s in option["sessions"] if s["index"] == 1)["pool"]["members"][0]
    body = book_body(
        template, option, "forged-1", cap_override={"address": address or picked, "reason": reason}
    )
    status, answer = await stack.post("/v1/loops", body, stack.token())
    assert status == 400, answer
    if field is not None:
        assert field in str(answer)
    assert await seats(stack) == set()
    assert await _overrides(stack) == 0
    status, loops = await stack.get("/v1/loops", stack.token())
    assert status == 200, loops
    assert loops["loops"] == []


async def test_a_cap_override_on_another_managers_loop_is_not_found(stack: Stack) -> None:
    """HELD (regression): another manager of the same tenant moving someone else's loop with a cap
    override gets 404 (the loop is not theirs) and nothing is stored."""
    await make_pool(stack)
    template = pooled_template()
    status, doc = await search(stack, template)
    assert status == 200, doc
    option = doc["options"][0]
    status, booked = await stack.post("/v1/loops", book_body(template, option, "own-1"), stack.token())
    assert status == 201, booked
    picked = next(s for s in option["sessions"] if s["index"] == 1)["pool"]["members"][0]
    moved = [
        {"index": s["index"], "start": s["start"], "end": s["end"], "room": s["room"]}
        for s in option["sessions"]
    ]
    body = {"sessions": moved, "cap_override": {"address": picked, "reason": "mine now"}}
    status, answer = await stack.post(f"/v1/loops/{booked['id']}/reschedule", body, stack.token(MEGAN))
    assert status == 404, answer
    assert await _overrides(stack) == 0


# ---- the watcher's repairs (watch_repairs.py, watch_rebook.py) --------------------------------------
async def _deleted_drift(stack: Stack) -> tuple[dict[str, Any], dict[str, Any]]:
    """Alex's interview with Megan (a pool seat), its Outlook event deleted, the drift recorded."""
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    pool_id = await repairs_pool(stack, [MEGAN, "leeg@contoso.example"])
    made = await book_drawn(stack, pool_id)
    await watcher.ensure()
    event_id = await copy_of(stack, made["id"], "alexw@contoso.example")
    await acontrol(dt, "POST", f"mailboxes/alexw@contoso.example/events/{event_id}/delete", {})
    await watcher.drain()
    await watcher.sweep()
    status, doc = await stack.get("/v1/watch/drift", stack.token())
    assert status == 200, doc
    (item,) = [d for d in doc["drift"] if d["kind"] == "deleted"]
    return made, item


@pytest.mark.parametrize("repair", ["rebook", "time-1"])
async def test_a_stale_tap_never_books_or_moves_into_the_past(stack: Stack, repair: str) -> None:
    """ATTACK: the drift card stays in the chat; the manager (or a replayed press) taps ``rebook`` or
    a new time after that time has passed. BROKEN before the fix (seen failing: 200, an Outlook event
    created in the past, the pool seats handed to the new row, which the training sweep then
    credits). Now the apply answers 409 and writes nothing; the item stays open."""
    made, item = await _deleted_drift(stack)
    assert repair in [r["id"] for r in item["repairs"]]
    past = datetime.now(UTC) - timedelta(hours=3)
    async with stack.runtime.store.transaction() as tx:
        if repair == "rebook":  # the interview's own time has passed since the card was shown
            await tx.execute(
                sa.text("UPDATE interviews SET start_utc = :s, end_utc = :e WHERE id = :i"),
                {"s": past, "e": past + timedelta(hours=1), "i": made["id"]},
            )
        else:  # the offered new time has passed
            drift = await store_watch.get_drift(tx, item["id"])
            assert drift is not None
            stale = [
                {**r, "start": _z(past), "end": _z(past + timedelta(hours=1))} if r["id"] == repair else r
                for r in drift.repairs
            ]
            await store_watch.set_repairs(tx, item["id"], stale)
    creates = int(stack.devtenant.tenant.counters["graph.events.create"])
    updates = int(stack.devtenant.tenant.counters.get("graph.events.update", 0))
    status, answer = await stack.post(
        f"/v1/watch/drift/{item['id']}/apply", {"repair": repair}, stack.token()
    )
    assert status == 409, answer
    assert int(stack.devtenant.tenant.counters["graph.events.create"]) == creates
    assert int(stack.devtenant.tenant.counters.get("graph.events.update", 0)) == updates
    async with stack.runtime.store.transaction() as tx:
        drift = await store_watch.get_drift(tx, item["id"])
        row = await storage.get_interview(tx, made["id"])
    assert drift is not None
    assert drift.status == "open"
    assert row is not None
    assert row.status is storage.InterviewStatus.CONFIRMED


# ---- the drift feed's lease (watch_feed.py, storage/watch_feed.py) ----------------------------------
@pytest.fixture
async def feed_stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path, watch_feed_key=FEED_KEY) as running:
        yield running


@pytest.mark.parametrize(
    "poller",
    [
        "a" * 65,  # past the column (claimed_by is 64)
        "",
        "bot a",
        "bot-a\n",
        "bot-a\r\nX-Injected: 1",
        "bot-a' OR '1'='1",
        "bot-a%",
        "bot-\u0661",  # an Arabic-Indic digit: \d would take it
        "bot-\u202ea",
        12,
        None,
        ["bot-a"],
    ],
)
async def test_a_poller_id_outside_the_charset_is_refused_before_anything_is_leased(
    feed_stack: Stack, poller: Any
) -> None:
    """HELD (regression): with the right key, a poller id that is too long, empty, not a string or
    carries spaces, control, bidi, quote or non-ASCII digit characters is refused (400); no drift
    row is leased to it (``claimed_by`` stays empty)."""
    drift_id = await declined_in_feed(feed_stack)
    status, doc = await feed(feed_stack, FEED_KEY, body={"poller": poller})
    assert status == 400, doc
    async with feed_stack.runtime.store.transaction() as tx:
        held = (
            await tx.execute(sa.text("SELECT claimed_by FROM watch_drift WHERE id = :i"), {"i": drift_id})
        ).scalar_one()
    assert held is None


GUEST = "guest@fabrikam.example"


async def test_a_guest_in_the_pool_group_is_never_drawn(stack: Stack) -> None:
    """ATTACK: a B2B guest (another company's person) is added to the pool's group, and their
    calendar is readable (federated free/busy, here a devtenant mailbox). BROKEN before the fix (seen
    failing: the guest was drawn as an interviewer, so the candidate's interview would be sent to
    another company). Now a group's guests (``userType`` Guest, or an ``#EXT#`` UPN) are never members:
    not drawn, not named, not bookable by a forged request."""
    set_group(stack, SIX[:4])
    tenant = stack.devtenant.tenant
    guest_id = "0b7c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3"
    tenant.data["users"].append(
        {
            "id": guest_id,
            "displayName": "Gus Guest",
            "userPrincipalName": "guest_fabrikam.example#EXT#@contoso.example",
            "mail": GUEST,
            "userType": "Guest",
            "accountEnabled": True,
            "hasMailbox": True,
            "mailboxSettings": {"timeZone": "Pacific Standard Time"},
        }
    )
    next(g for g in tenant.data["groups"] if g["id"] == GROUP)["members"].append(guest_id)
    await group_pool(stack)
    status, doc = await search(stack, pooled_template(), limit=5)
    assert status == 200, doc
    assert doc["options"], doc["explanations"]
    assert GUEST not in drawn(doc)
    assert GUEST not in str(doc)
    option = doc["options"][0]
    forged = book_body(pooled_template(), option, "guest-1")
    forged["sessions"][1]["pool_members"] = [GUEST, forged["sessions"][1]["pool_members"][0]]
    status, answer = await stack.post("/v1/loops", forged, stack.token())
    assert status in (400, 403), answer
    assert await seats(stack) == set()


class _TwoTenantsGraph:
    """Graph as two tenants see it: the SAME group id holds different people in each."""

    def __init__(self) -> None:
        self.paths: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, token: str, **_: Any) -> tuple[int, dict[str, Any]]:
        self.paths.append((token, path))
        if "/transitiveMembers" in path:
            who = "alice@tenant-a.example" if token == "token-a" else "bob@tenant-b.example"
            return 200, {"value": [{"id": "1", "mail": who}]}
        return 200, {"value": "UTC"}


class _Tenancy:
    async def app_token(self, ctx: Any) -> str:
        return f"token-{ctx.tenant_id}"

    async def not_allowed(self, ctx: Any, people: Any) -> set[str]:
        return set()

    async def rooms_among(self, ctx: Any, people: Any) -> set[str]:
        return set()


@pytest.mark.parametrize(
    "group_id",
    [
        "../../users/alexw@contoso.example",
        "7d1e7c1a-5b2f-4c3d-8e9f-0a1b2c3d4e5f/../../users",
        "7d1e7c1a-5b2f-4c3d-8e9f-0a1b2c3d4e5f?$select=*",
        "7d1e7c1a-5b2f-4c3d-8e9f-0a1b2c3d4e5\u0661",
        "7d1e7c1a5b2f4c3d8e9f0a1b2c3d4e5f",
    ],
)
def test_a_group_id_that_is_not_a_guid_never_reaches_a_graph_path(group_id: str) -> None:
    """HELD (regression): ``pool set-group`` and every Graph path take only a GUID."""
    with pytest.raises(ValueError, match="GUID"):
        parse_group_id(group_id)


async def test_the_group_cache_is_per_tenant() -> None:
    """HELD (regression): two tenants naming the same group id never share a membership read
    (cache poisoning across tenants): each is read with its own tenant's token."""
    graph = _TwoTenantsGraph()
    groups = PoolGroups(graph, _Tenancy())  # type: ignore[arg-type]
    cred = AppCredential(client_id="x", client_secret="unused")
    a = await groups.members(TenantContext("a", cred), GROUP)
    b = await groups.members(TenantContext("b", cred), GROUP.upper())
    assert a is not None
    assert b is not None
    assert [m.address for m in a] == ["alice@tenant-a.example"]
    assert [m.address for m in b] == ["bob@tenant-b.example"]


async def test_another_managers_drift_id_is_not_found_and_writes_nothing(stack: Stack) -> None:
    """HELD (regression): IDOR on POST /v1/watch/drift/{id}/apply: Megan (same tenant, not the
    organizer) applying Alex's drift item, or anyone applying an unknown id, gets 404; nothing is
    written and the item stays open for Alex."""
    _made, item = await _deleted_drift(stack)
    creates = int(stack.devtenant.tenant.counters["graph.events.create"])
    for drift_id, who in ((item["id"], MEGAN), (str(uuid.uuid4()), "alexw@contoso.example")):
        status, answer = await stack.post(
            f"/v1/watch/drift/{drift_id}/apply", {"repair": "release"}, stack.token(who)
        )
        assert status == 404, answer
    status, doc = await stack.get("/v1/watch/drift", stack.token(MEGAN))
    assert status == 200, doc
    assert doc["drift"] == []
    assert int(stack.devtenant.tenant.counters["graph.events.create"]) == creates
    async with stack.runtime.store.transaction() as tx:
        drift = await store_watch.get_drift(tx, item["id"])
    assert drift is not None
    assert drift.status == "open"


async def test_a_refused_member_cannot_be_booked_through_a_cap_override(stack: Stack) -> None:
    """HELD (regression): the allow-list refuses a pool member, so the search skips them; a forged
    POST /v1/loops naming them in ``pool_members`` AND in ``cap_override`` (to pass any cap) is still
    refused by the mailbox gate (403): nothing reserved, no override stored."""
    await make_pool(stack)
    usable, refused = POOL[:3], POOL[3]
    await allow(stack, MEGAN, *usable)
    template = pooled_template()
    status, doc = await search(stack, template, limit=5)
    assert status == 200, doc
    assert refused not in drawn(doc)
    option = doc["options"][0]
    forged = book_body(
        template, option, "refused-1", cap_override={"address": refused, "reason": "they are the expert"}
    )
    forged["sessions"][1]["pool_members"] = [refused, forged["sessions"][1]["pool_members"][0]]
    status, answer = await stack.post("/v1/loops", forged, stack.token())
    assert status == 403, answer
    assert await seats(stack) == set()
    assert await _overrides(stack) == 0


async def _raw_post(stack: Stack, path: str, header: bytes) -> int:
    """POST ``path`` with one raw header line (bytes the HTTP client would not send); the status."""
    server = stack.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: openslot\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n" + header + b"\r\nConnection: close\r\n\r\n{}"
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


@pytest.mark.parametrize(
    ("path", "header"),
    [
        ("/v1/watch/feed", b"X-OpenSlot-Feed-Key: \xff\xfe"),
        ("/v1/watch/feed/ack", b"X-OpenSlot-Feed-Key: " + b"feed-key-\xc3"),
        ("/v1/loops/search", b"Authorization: Bearer \xff\xfe"),
        ("/v1/loops", b"Authorization: Bearer eyJ\x80.eyJ.sig"),
    ],
)
async def test_a_key_or_token_that_is_not_utf8_is_a_401_not_a_500(
    feed_stack: Stack, path: str, header: bytes
) -> None:
    """ATTACK: lock 1 fed raw bytes that are not UTF-8 (the server decodes them with surrogate
    escapes). BROKEN before the fix (seen failing: 500 from the feed key's compare and from the user
    route's token handling, an unauthenticated 5xx). Now a 401, and the refusal is audited."""
    before = len(await audit_rows(feed_stack))
    assert await _raw_post(feed_stack, path, header) == 401
    assert len(await audit_rows(feed_stack)) == before + 1


def test_a_feed_key_that_is_not_ascii_is_refused_at_start() -> None:
    """With the compare above taking ASCII keys only, a configured key must be ASCII too (an HTTP
    header cannot carry it reliably anyway): refused at start rather than never matching.
    Seen failing before the settings check."""
    with pytest.raises(ValidationError):
        _feed_key("prod", {"OPENSLOT_WATCH_FEED_KEY": "schlüssel-" + "x" * 40})


async def test_a_used_override_is_audited_with_its_reason_stored_but_never_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """HELD (regression): the manager's reason is stored once (``pool_cap_overrides``, with who
    allowed it); the audit row ``pool.cap_override`` names pool, member, override and interview but
    not the reason; no log line carries it."""
    reason = "canary-reason-7f3e only Java expert"
    await make_pool(stack, weekly=1, daily=1)
    await cap_everyone(stack)
    start, end = next_week(datetime.now(UTC))
    member = POOL[0]
    body = {
        "template": CAP_TEMPLATE,
        "start": format_time(start),
        "end": format_time(end),
        "limit": 3,
        "cap_overrides": [{"session": 0, "address": member}],
    }
    status, doc = await stack.post("/v1/loops/search", body, stack.token())
    assert status == 200, doc
    option = doc["options"][0]
    caplog.set_level(logging.INFO)  # (aiosqlite at DEBUG echoes SQL parameters: never on in serve)
    book = book_body(CAP_TEMPLATE, option, "audit-1", cap_override={"address": member, "reason": reason})
    status, booked = await stack.post("/v1/loops", book, stack.token())
    assert status == 201, booked
    async with stack.runtime.store.transaction() as tx:
        stored = await storage.list_cap_overrides(tx, stack.devtenant.tenant_id)
    assert [(o["address"], o["reason"]) for o in stored] == [(member, reason)]
    audited = [r for r in await audit_rows(stack) if r[0] == "pool.cap_override"]
    assert len(audited) == 1
    assert reason not in str(audited)
    assert reason not in caplog.text
