"""Attacks on the restructured Calendar Service and bot (the ROUTES table, typed requests, the use-case
modules, the bot-owned ``bot_state`` table, the bot's own refusal log, interviewer pools, loop cards).

Each test is an attack from outside (HTTP against the real stack, the bot in its prod profile, the
admin CLI, a real PostgreSQL) that fails while the defect it names exists.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from botbuilder.core import TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ConversationAccount
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from calendar_backend import admin, contract, storage
from calendar_backend import app as service_app
from calendar_backend.cli import EXIT_USAGE
from calendar_backend.pools import Member, zone_of
from calendar_backend.sealing import tenant_credential_aad
from dialogs.sql_storage import BOT_STATE, SqlStorage, create_bot_state
from dialogs.turn_log import log_turn_failure
from dialogs.views import zone_or_utc
from tests.admin.test_cli_contract import MEGAN, Cli, cli
from tests.security.conftest import ProdBot, connector, prod_bot
from tests.service.conftest import Stack, calendar_stack

__all__ = ["calendar_stack", "cli", "connector", "prod_bot"]

ALEX_TENANT_ROUTES_PUBLIC = {("GET", "/v1/health"), ("GET", "/v1/openapi.json")}
OLD_SCHEMAS = {  # `git show 67ecede:calendar_backend/app.py`: the schema each route validated
    ("POST", "/v1/slots/find"): "find_slots",
    ("POST", "/v1/interviews"): "create_interview",
    ("GET", "/v1/interviews"): None,
    ("POST", "/v1/interviews/{id}/cancel"): "cancel_interview",
    ("POST", "/v1/interviews/{id}/reschedule"): "reschedule_interview",
    ("POST", "/v1/directory/resolve"): "resolve_people",
    ("POST", "/v1/directory/check"): "check_people",
    ("POST", "/v1/me/disconnect"): "empty",
    ("GET", "/v1/me/settings"): None,
    ("POST", "/v1/offers"): "create_offer",
    ("GET", "/v1/offers"): None,
    ("POST", "/v1/offers/{id}/revoke"): "empty",
    ("POST", "/v1/candidate/slots"): "candidate_slots",
    ("POST", "/v1/candidate/book"): "candidate_book",
    ("POST", "/v1/candidate/cancel"): "candidate_change",
    ("POST", "/v1/candidate/reschedule"): "candidate_change",
    ("GET", "/v1/health"): None,
    ("GET", "/v1/openapi.json"): None,
}
OLD_STATUS = {
    ("POST", "/v1/interviews"): 201,
    ("POST", "/v1/offers"): 201,
    ("POST", "/v1/candidate/book"): 201,
}


# ---- 1. the route table: nothing lost or loosened against the old handlers ------------------------
def test_route_table_keeps_every_old_route_its_auth_schema_and_status() -> None:
    table = {(r.method, r.path): r for r in service_app.ROUTES}
    assert set(OLD_SCHEMAS) <= set(table), "a route of the old app is gone"
    for key, route in table.items():
        if key not in OLD_SCHEMAS:  # a newer route: user-token only, a pinned strict schema for bodies
            assert (
                route.auth is service_app.Auth.USER
                or key[1].startswith("/v1/watch/notifications")
                or (route.auth is service_app.Auth.FEED and key[1].startswith("/v1/watch/feed"))
            ), key
            if route.method in {"POST", "PUT"} and route.schema:
                assert contract.SCHEMAS[route.schema]["additionalProperties"] is False, key
            continue
        assert route.schema == OLD_SCHEMAS[key], key
        expected_auth = (
            service_app.Auth.NONE
            if key in ALEX_TENANT_ROUTES_PUBLIC
            else service_app.Auth.CAPABILITY
            if key[1].startswith("/v1/candidate/")
            else service_app.Auth.USER
        )
        assert route.auth is expected_auth, key
        assert route.status == OLD_STATUS.get(key, 200), key
        if route.method == "POST":  # every POST reads its body through a pinned schema (lock 3)
            schema = contract.SCHEMAS[route.schema or ""]
            assert schema["additionalProperties"] is False


async def test_every_user_route_refuses_no_token_and_every_body_route_refuses_unknown_fields(
    calendar_stack: Stack,
) -> None:
    """From outside: lock 1 on every user route (401 before the body is read); lock 3 on every
    route with a body (an unknown field is a 400 naming no more than the field)."""
    token = calendar_stack.token()
    for route in service_app.ROUTES:
        path = route.path.replace("{id}", "abc-123").replace("{name}", "Onsite")
        method = route.method.lower()
        if route.auth is service_app.Auth.USER:
            resp = await calendar_stack.client.request(method, path, json={"evil": 1})
            assert resp.status == 401, path
        if route.auth is service_app.Auth.FEED:  # lock 1 is the shared feed key (none here): 401 first;
            resp = await calendar_stack.client.request(method, path, json={"evil": 1})  # its lock 3:
            assert resp.status == 401, path  # tests/service/test_watch_feed.py::…unknown_fields
            continue
        if route.schema is not None:
            headers = {"Authorization": f"Bearer {token}"} if route.auth is service_app.Auth.USER else {}
            resp = await calendar_stack.client.request(
                method, path, json={"evil": 1, "token": "A" * 43}, headers=headers
            )
            assert resp.status == 400, (path, resp.status)
            body = await resp.json()
            assert body["error"] == "invalid_request", path


# ---- 2. typed requests parse exactly what the schema admits ---------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "2026-12-08T23:59:60Z",  # leap second
        "2026-02-30T09:00Z",  # no such day
        "2026-12-08T24:00Z",
        "1999-12-31T23:59Z",  # out of range
        "2200-01-01T00:00Z",
        "0000-01-01T00:00Z",
    ],
)
def test_wire_times_that_are_not_instants_are_400_not_500(value: str) -> None:
    with pytest.raises(contract.ValidationError):
        contract.parse_wire_time("start", value)


@pytest.mark.parametrize("zone", ["Europe", "../../etc/passwd", "/etc/passwd", "Etc/GMT+15", "UTC\\x", ""])
def test_offer_zones_outside_iana_are_validation_errors(zone: str) -> None:
    with pytest.raises(contract.ValidationError):
        contract.parse_zone("candidate_time_zone", zone)


async def test_typed_request_refusals_leak_no_exception_text(calendar_stack: Stack) -> None:
    """A body the schema admits but the typed request refuses: a 400 with the field, never the
    parser's exception text (zone paths, Python reprs)."""
    token = calendar_stack.token()
    now = datetime.now(UTC)
    body = {
        "interviewers": ["nobody@example.com"],
        "duration_min": 30,
        "window_start": contract.format_time(now + timedelta(days=1)),
        "window_end": contract.format_time(now + timedelta(days=2)),
        "candidate_name": "Cand",
        "candidate_time_zone": "Europe",
    }
    status, doc = await calendar_stack.post("/v1/offers", body, token)
    assert status == 400
    assert doc["field"] == "candidate_time_zone"
    assert "zoneinfo" not in json.dumps(doc)
    assert "Errno" not in json.dumps(doc)
    status, doc = await calendar_stack.post(
        "/v1/slots/find",
        {
            "interviewers": ["nobody@example.com"],
            "duration_min": 30,
            "start": "2026-12-08T23:59:60Z",
            "end": "2026-12-09T09:00Z",
        },
        token,
    )
    assert status == 400
    assert doc["field"] == "start"
    assert "second" not in doc["message"]


# ---- 3. the bot's own refusal log carries no PII or token-shaped text ------------------------------
@pytest.mark.parametrize(
    "aid",
    [
        "mallory.victim@contoso.com",  # an address in the bot's log
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",  # a JWT shape: the secret scanner's first pattern
    ],
    ids=["address", "jwt"],
)
async def test_refused_activity_id_shaped_like_pii_or_a_token_is_not_logged(
    prod_bot: ProdBot, aid: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The activity id is chosen by whoever sends the activity; the refusal record copied any id made
    of ``[A-Za-z0-9:._|@-]`` into the log verbatim, so an e-mail address or a JWT-shaped string went
    into the bot's log (dialogs/drop_audit.py, moved there from the audit chain)."""
    foreign = "0f0f0f0f-0000-4000-8000-000000000bad"
    doc = prod_bot.activity(aid=aid, tenant=foreign)
    with caplog.at_level(logging.WARNING, logger="openslot.bot.audit"):
        assert await prod_bot.post(doc, prod_bot.channel_token()) in (200, 201, 202)
    records = [r for r in caplog.records if r.name == "openslot.bot.audit"]
    assert len(records) == 1
    assert records[0].audit["request_id"] == "none"  # type: ignore[attr-defined]
    assert aid not in caplog.text
    assert prod_bot.connector.posted == []


# ---- 4. pools from the admin CLI ---------------------------------------------------------------
@pytest.mark.parametrize("zone", ["Europe", "America", "Etc"])
def test_pool_member_zone_that_is_a_tzdata_directory_is_a_usage_error(zone: str) -> None:
    """``pool add-member --zone Europe``: ``ZoneInfo("Europe")`` raises IsADirectoryError (an OSError),
    which `pools.zone_of` did not catch: the CLI answered exit 4 "file or network error" instead of
    exit 2 naming the zone (and any other caller of `Member` got an unexpected OSError)."""
    with pytest.raises(ValueError, match="unknown time zone"):
        zone_of(zone)
    with pytest.raises(ValueError, match="unknown time zone"):
        Member("a@example.com", zone)


@pytest.mark.parametrize(
    "address", ["a@example.com\x1b[2J", "a\x00b@example.com", "a@exa\u202emple.com", "a@b\x7fc.com"]
)
def test_pool_member_address_with_control_or_bidi_characters_is_refused(address: str) -> None:
    """Members' addresses are printed by `pool show`, put on cards and sent to Graph: a terminal
    escape, NUL or bidi override must not be stored as an address."""
    with pytest.raises(ValueError, match="not a mailbox address"):
        Member(address)


@pytest.mark.parametrize("cap", ["-1", "101", "99999999999999999999"])
def test_pool_cli_refuses_caps_out_of_range(cap: str) -> None:
    args = admin.build_parser().parse_args(
        [
            "pool",
            "add-member",
            "--tenant",
            "t",
            "--name",
            "p",
            "--member",
            "a@example.com",
            "--weekly-cap",
            cap,
        ]
    )
    with pytest.raises(ValueError, match="weekly cap must be between"):
        Member(args.member, weekly_cap=args.weekly_cap)


# ---- 5. two bot replicas racing create_bot_state on PostgreSQL -----------------------------------
PG = os.environ.get("OPENSLOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/")


async def _pg_admin(statement: str) -> None:
    dsn = make_url(PG).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_bot_replicas_racing_create_bot_state_on_postgresql_all_start() -> None:
    try:
        await _pg_admin("SELECT 1")
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc!r}")
    for _round in range(5):
        name = f"openslot_race_{secrets.token_hex(6)}"
        await _pg_admin(f'CREATE DATABASE "{name}"')
        url = make_url(PG).set(database=name).render_as_string(hide_password=False)
        engines = [create_async_engine(url) for _ in range(8)]
        try:
            results = await asyncio.gather(*(create_bot_state(e) for e in engines), return_exceptions=True)
            assert [r for r in results if isinstance(r, BaseException)] == []
            async with engines[0].begin() as conn:
                await conn.execute(
                    BOT_STATE.insert().values(key="k", etag="e", data="{}", updated_at=datetime.now(UTC))
                )
        finally:
            for engine in engines:
                await engine.dispose()
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- 6. lock 2 on every route of the table: refused before Graph, and audited once ------------------
def _valid_body(schema: str | None) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=7)
    window = {"start": contract.format_time(start), "end": contract.format_time(start + timedelta(hours=1))}
    return {
        None: {},
        "empty": {},
        "find_slots": {"interviewers": ["meganb@contoso.example"], "duration_min": 30, **window},
        "create_interview": {
            "candidate": {"name": "Cand", "email": "cand@example.org"},
            "interviewers": ["meganb@contoso.example"],
            "idempotency_key": "k-1",
            **window,
        },
        "reschedule_interview": window,
        "cancel_interview": {},
        "resolve_people": {"queries": ["megan"]},
        "check_people": {"queries": ["megan"]},
        "create_offer": {
            "interviewers": ["meganb@contoso.example"],
            "duration_min": 30,
            "window_start": window["start"],
            "window_end": contract.format_time(start + timedelta(days=2)),
            "candidate_name": "Cand",
        },
        "candidate_slots": {"token": "A" * 43},
        "candidate_book": {"token": "A" * 43, "start": window["start"]},
        "candidate_change": {"token": "A" * 43, "start": window["start"]},
    }[schema]


async def _audit_results(stack: Stack) -> list[tuple[str, str]]:
    async with stack.runtime.store.transaction() as tx:
        rows = (await tx.execute(sa.text("SELECT operation, result FROM audit_log ORDER BY seq"))).all()
    return [(str(r[0]), str(r[1])) for r in rows]


async def test_every_route_with_a_broken_tenant_credential_touches_no_graph_and_audits_its_refusal(
    calendar_stack: Stack,
) -> None:
    stack = calendar_stack
    cipher = stack.runtime.cipher
    foreign = cipher.encrypt(
        b'{"client_id":"x","client_secret":"y"}', aad=tenant_credential_aad(str(uuid.uuid4()))
    )
    async with stack.runtime.store.transaction() as tx:
        await storage.put_tenant(tx, stack.devtenant.tenant_id, foreign, cipher.key_id_of(foreign), [])
    token = stack.token()
    for route in service_app.ROUTES:
        if route.auth is service_app.Auth.NONE or (route.method, route.path) not in OLD_SCHEMAS:
            continue  # newer routes: tests/security/test_side_doors.py's matrix covers lock 2 for them
        path = route.path.replace("{id}", "abc-123")
        headers = {"Authorization": f"Bearer {token}"} if route.auth is service_app.Auth.USER else {}
        before_rows, before_graph = await _audit_results(stack), stack.graph_requests()
        kwargs: dict[str, Any] = {"headers": headers}
        if route.schema is not None:
            kwargs["json"] = _valid_body(route.schema)
        resp = await stack.client.request(route.method, path, **kwargs)
        doc = await resp.json()
        assert stack.graph_requests() == before_graph, path
        new_rows = (await _audit_results(stack))[len(before_rows) :]
        if resp.status == 200 and route.path in ("/v1/me/disconnect",):
            continue  # no tenant credential needed: deleting one's own tokens
        assert resp.status >= 400, (path, resp.status)
        assert set(doc) <= {"error", "message", "field"}, (path, doc)
        if resp.status in (503, 403):  # a lock-2 refusal is audited once
            assert [r for r in new_rows if r[1].startswith("denied:")], (path, new_rows)
        if route.auth is service_app.Auth.CAPABILITY:  # an unknown link is refused and audited
            assert resp.status == 404, (path, resp.status)
            assert [r for r in new_rows if r[1] == "denied:capability"], (path, new_rows)


# ---- 7. the bot's zones and failure log lines --------------------------------------------------
@pytest.mark.parametrize("zone", ["Europe", "America", "Etc", "Europe/", "../../etc/passwd"])
def test_a_manager_zone_that_names_a_tzdata_directory_falls_back_to_utc(zone: str) -> None:
    """The manager's zone can come from the activity (``localTimezone``, Teams clientInfo) and the loop
    conversation turns it into today (`schedule_loop.today_of`, `loop_search.window_of`,
    `loop_views`) through `views.zone_or_utc`, which let ``IsADirectoryError`` through: every loop turn
    of such a client failed."""
    assert zone_or_utc(zone).key == "UTC"


def _raise(message: str) -> None:
    raise ValueError(message)


def _failed(message: str) -> ValueError:
    try:
        _raise(message)
    except ValueError as err:
        return err
    raise AssertionError("unreachable")


def test_a_failed_turn_logs_no_token_or_address_from_the_activity(caplog: pytest.LogCaptureFixture) -> None:
    """`turn_log` copies the invoke ``name`` and the conversation type verbatim; both are the sender's
    text, so a JWT or an address there reaches bot.log."""
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    activity = Activity(
        type="invoke",
        name=jwt_like,
        channel_id="msteams",
        conversation=ConversationAccount(id="c1", conversation_type="mallory@contoso.com"),
        value={"action": {"data": {"verb": "loop_confirm"}}},
    )
    context = TurnContext(TestAdapter(), activity)
    with caplog.at_level(logging.ERROR, logger="tests.planted"):
        log_turn_failure(logging.getLogger("tests.planted"), context, _failed(jwt_like))
    assert "turn failed: ValueError" in caplog.text
    assert "verb=loop_confirm" in caplog.text
    assert jwt_like not in caplog.text
    assert "mallory@contoso.com" not in caplog.text


# ---- 8. parser differentials at the edge, from outside -------------------------------------------
_BAD_TIMES = [
    "2026-12-08T09:00:00+00:00",  # an offset instead of Z
    "2026-12-08T09:00:00",  # naive
    "2026-12-08T09:00:00Z\n",  # a trailing newline ($ vs \Z)
    "\uff12\uff10\uff12\uff16-12-08T09:00Z",  # fullwidth digits
    "2026-12-08T\u0660\u0669:00Z",  # Arabic-Indic digits
    "2026-12-08T09:00:00.12345678Z",  # 8 fractional digits
    "2026-12-08T23:59:60Z",  # a leap second
    "2026-12-08t09:00z",
]


@pytest.mark.parametrize("value", _BAD_TIMES)
async def test_find_slots_refuses_every_time_the_wire_format_does_not_admit(
    calendar_stack: Stack, value: str
) -> None:
    before = calendar_stack.graph_requests()
    body = {
        "interviewers": ["meganb@contoso.example"],
        "duration_min": 30,
        "start": value,
        "end": "2026-12-20T09:00Z",
    }
    status, doc = await calendar_stack.post("/v1/slots/find", body, calendar_stack.token())
    assert status == 400, doc
    assert doc["field"] in ("start", "body")
    assert calendar_stack.graph_requests() == before


@pytest.mark.parametrize("zone", ["Europe", "../../../../etc/passwd", "Etc/GMT+15", "posix/", "UTC/.."])
async def test_zones_that_name_no_zone_are_400_on_every_route_that_takes_one(
    calendar_stack: Stack, zone: str
) -> None:
    token = calendar_stack.token()
    now = datetime.now(UTC)
    status, doc = await calendar_stack.post(
        "/v1/slots/find",
        {
            "interviewers": ["meganb@contoso.example"],
            "duration_min": 30,
            "start": contract.format_time(now + timedelta(days=1)),
            "end": contract.format_time(now + timedelta(days=3)),
            "candidate_time_zone": zone,
        },
        token,
    )
    assert (status, doc.get("field")) == (400, "candidate_time_zone"), doc
    status, doc = await calendar_stack.post(
        "/v1/offers",
        {
            "interviewers": ["meganb@contoso.example"],
            "duration_min": 30,
            "window_start": contract.format_time(now + timedelta(days=1)),
            "window_end": contract.format_time(now + timedelta(days=3)),
            "candidate_name": "Cand",
            "manager_time_zone": zone,
        },
        token,
    )
    assert (status, doc.get("field")) == (400, "manager_time_zone"), doc


@pytest.mark.postgres
async def test_bot_replicas_opening_one_postgresql_database_at_once_all_write() -> None:
    """The same race through `SqlStorage`: every replica's first write (which opens the store)
    succeeds, and each sees the others' rows."""
    try:
        await _pg_admin("SELECT 1")
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc!r}")
    name = f"openslot_race_{secrets.token_hex(6)}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = make_url(PG).set(database=name).render_as_string(hide_password=False)
    stores = [SqlStorage.from_url(url) for _ in range(6)]
    try:
        await asyncio.gather(*(s.write({f"k{i}": {"n": i}}) for i, s in enumerate(stores)))
        assert len(await stores[-1].read([f"k{i}" for i in range(6)])) == 6
    finally:
        for store in stores:
            await store.close()
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- 9. the pool admin CLI end to end: every bad input is exit 2 with one JSON document ------------
@pytest.mark.parametrize(
    "extra",
    [
        ("--zone", "Europe"),  # a tzdata directory: was exit 4 "file or network error (IsADirectoryError)"
        ("--zone", "../../../../etc/passwd"),
        ("--weekly-cap", "-1"),
        ("--weekly-cap", "101"),
        ("--daily-cap", "99999999999999999999"),
        ("--hot", "25:00-26:00"),
        ("--week-start", "7"),
    ],
)
def test_pool_cli_bad_member_input_is_a_usage_error_never_a_traceback(
    cli: Cli, extra: tuple[str, ...]
) -> None:
    cli.setup()
    assert cli("pool", "create", "--tenant", cli.tenant, "--name", "Backend").code == 0
    run = cli("pool", "add-member", "--tenant", cli.tenant, "--name", "Backend", "--member", MEGAN, *extra)
    assert run.code == EXIT_USAGE, run
    assert cli.audit("pool.add_member") == []


@pytest.mark.parametrize("member", ["megan\x1b[2J@contoso.example", "meganb@contoso\u202eexample"])
def test_pool_cli_refuses_member_addresses_with_control_or_bidi_characters(cli: Cli, member: str) -> None:
    cli.setup()
    assert cli("pool", "create", "--tenant", cli.tenant, "--name", "Backend").code == 0
    run = cli("pool", "add-member", "--tenant", cli.tenant, "--name", "Backend", "--member", member)
    assert run.code == EXIT_USAGE, run
    shown = cli("pool", "show", "--tenant", cli.tenant, "--name", "Backend").doc
    assert shown["member_load"] == []


# ---- 10. forged loop card presses at the bot (prod profile) --------------------------------------
def _loop_invoke(bot: ProdBot, aid: str, data: dict[str, Any]) -> dict[str, Any]:
    return bot.activity(
        aid=aid,
        type="invoke",
        name="adaptiveCard/action",
        text=None,
        value={
            "action": {"type": "Action.Execute", "verb": data.get("verb"), "data": data},
            "trigger": "manual",
        },
    )


async def _press(bot: ProdBot, aid: str, data: dict[str, Any]) -> tuple[int, Any]:
    resp = await bot.client.post(
        "/api/messages",
        json=_loop_invoke(bot, aid, data),
        headers={"Authorization": f"Bearer {bot.channel_token()}"},
    )
    return resp.status, await resp.json(content_type=None) if resp.content_length else None


@pytest.mark.parametrize(
    "data",
    [
        {"verb": "loop_confirm", "flow": "f1", "option_id": "o1", "extra": "x"},  # an unknown field
        {"verb": "loop_confirm", "flow": "../f1", "option_id": "o1"},  # not an opaque id
        {"verb": "loop_length", "flow": "f1", "session": -1, "duration_min": 30},  # a negative index
        {"verb": "loop_length", "flow": "f1", "session": True, "duration_min": 30},  # a bool as an int
        {"verb": "loop_drop_person", "flow": "f1", "session": 0, "person": "mallory@contoso.example"},
        {"verb": "loop_more", "flow": "f1", "page": 10**30},
        {"verb": "loop_nuke", "flow": "f1"},
    ],
    ids=[
        "unknown_field",
        "path_flow",
        "negative_session",
        "bool_session",
        "address_as_key",
        "huge_page",
        "verb",
    ],
)
async def test_forged_loop_presses_are_refused_without_a_booking(
    prod_bot: ProdBot, data: dict[str, Any]
) -> None:
    status, body = await _press(prod_bot, f"inv-{secrets.token_hex(4)}", data)
    assert status == 200, (status, body)
    assert body["statusCode"] == 400, body  # refused at parsing: no handler, no search, no booking
    assert body["type"] == "application/vnd.microsoft.error"
    assert "mallory" not in json.dumps(body)


async def test_a_loop_confirm_on_a_flow_this_conversation_never_had_books_nothing(prod_bot: ProdBot) -> None:
    """Another conversation's (or an invented) flow id: the card says it expired; nothing is booked."""
    status, body = await _press(
        prod_bot, "inv-other", {"verb": "loop_confirm", "flow": "f-elsewhere", "option_id": "o1"}
    )
    assert status == 200, body
    assert "expired" in json.dumps(body).lower()
