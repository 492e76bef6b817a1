"""The issue 12 review, re-run with our own variants of each attack (the attacker's view).

Each test is an attack against the real Calendar Service and devtenant. A test that guards a
variant the code already refused is kept, so the variant stays refused.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from calendar_backend import storage
from calendar_backend.app import SERVICE_KEY
from calendar_backend.audit import audit_log
from calendar_backend.contract import (
    OutboundPolicy,
    check_outbound_url,
    format_time,
    outbound_url_allowed,
    parse_time,
)
from calendar_backend.errors import GraphUnavailableError
from tests.candidate.conftest import candidate_env, teams  # noqa: F401
from tests.candidate.test_offers_api import capability, make_offer
from tests.reliability.test_reserve_before_write import assert_outlook_agrees
from tests.security.test_outbound_url import assert_clients_connect_to
from tests.service.conftest import Stack, booking_body, calendar_stack, events_at, user  # noqa: F401


def _graph(stack: Stack) -> Any:
    return stack.client.app[SERVICE_KEY]._graph


async def _slots(stack: Stack, people: list[str], rooms: list[str] | None = None) -> list[dict[str, str]]:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    body: dict[str, object] = {
        "interviewers": people,
        "duration_min": 30,
        "all": True,
        "start": format_time(now + timedelta(days=1)),
        "end": format_time(now + timedelta(days=8)),
    }
    if rooms:
        body["rooms"] = rooms
    status, doc = await stack.post("/v1/slots/find", body, stack.token())
    assert status == 200, doc
    return list(doc["slots"])


async def _rows(stack: Stack) -> list[storage.InterviewRow]:
    async with stack.runtime.store.transaction() as tx:
        return [storage.interview_row(r) for r in await tx.execute(sa.select(storage.interviews))]


# ---- replay: one idempotency key, two different bodies ---------------------------------------


async def test_idempotency_key_reused_with_another_time_books_nothing_unoffered(
    calendar_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first booking's Graph write times out (its reservation stays pending, as designed for a
    retry). The same key is then sent with another, never offered time (the middle of the
    night): a retry must be the same request, else it is refused; nothing is written at the new
    time and the database never disagrees with Outlook."""
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    slot = (await _slots(stack, [megan]))[0]
    graph = _graph(stack)
    real = graph.create_event

    async def lost(*args: Any, **kwargs: Any) -> Any:
        raise GraphUnavailableError()

    monkeypatch.setattr(graph, "create_event", lost)
    status, doc = await stack.post("/v1/interviews", booking_body([megan], slot, "key-1"), stack.token())
    assert status == 504, doc
    monkeypatch.setattr(graph, "create_event", real)
    night_start = parse_time(slot["start"]) + timedelta(hours=13)
    night = {"start": format_time(night_start), "end": format_time(night_start + timedelta(minutes=30))}
    status, doc = await stack.post("/v1/interviews", booking_body([megan], night, "key-1"), stack.token())
    assert status == 409 or doc.get("start") == slot["start"], (status, doc)
    assert events_at(stack, megan, night["start"]) == [], "an unoffered time was booked"
    for row in await _rows(stack):
        assert (row.start, row.end) == (parse_time(slot["start"]), parse_time(slot["end"]))


async def test_idempotency_key_reused_with_another_panel_is_refused(
    calendar_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same key, same time, another interviewer: the reservation names Megan, so an event for
    Christie would be a write no reservation covers."""
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    christie = str(user(stack, "Christie Cline")["mail"]).lower()
    slot = next(s for s in await _slots(stack, [megan, christie]))
    graph = _graph(stack)
    real = graph.create_event

    async def lost(*args: Any, **kwargs: Any) -> Any:
        raise GraphUnavailableError()

    monkeypatch.setattr(graph, "create_event", lost)
    status, doc = await stack.post("/v1/interviews", booking_body([megan], slot, "key-2"), stack.token())
    assert status == 504, doc
    monkeypatch.setattr(graph, "create_event", real)
    calls: list[str] = []
    real_request = graph.request

    async def counted(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(path)
        return await real_request(method, path, *args, **kwargs)

    monkeypatch.setattr(graph, "request", counted)
    monkeypatch.setattr(graph, "get_schedules", None)  # any free/busy read would fail loudly
    async with stack.runtime.store.transaction() as tx:
        before = (await tx.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar()
    status, doc = await stack.post("/v1/interviews", booking_body([christie], slot, "key-2"), stack.token())
    assert status == 409, (status, doc)
    assert calls == [], "no Graph call before the refusal"
    async with stack.runtime.store.transaction() as tx:
        rows = (
            (await tx.execute(sa.select(audit_log.c.result).where(audit_log.c.seq > before))).scalars().all()
        )
    assert rows == ["denied:idempotency_key"], rows
    assert events_at(stack, christie, slot["start"]) == []


# ---- the candidate form nonce: one spelling only ----------------------------------------------


def test_form_nonce_with_non_ascii_digits_is_refused_not_a_crash() -> None:
    """``str.isdigit`` and ``int`` take any Unicode digit (Arabic-Indic, superscripts):
    a nonce whose time is spelled so must be refused as any bad nonce (403), not crash the
    comparison (``hmac.compare_digest`` raises TypeError on non-ASCII str: a 500)."""
    import hashlib
    import time

    from dialogs.candidate_page import check_form_nonce, make_form_nonce

    key, link = b"k" * 32, hashlib.sha256(b"link").digest()
    now = int(time.time())
    good = make_form_nonce(key, link, now, "0123456789abcdef")
    assert check_form_nonce(key, link, good, now, 3600)
    arabic = "".join(chr(0x0660 + int(c)) for c in str(now))
    for issued in (arabic, "0" + str(now), f"+{now}", f" {now}"):
        forged = good.replace(str(now), issued, 1)
        assert check_form_nonce(key, link, forged, now, 3600) is False, issued
    assert check_form_nonce(key, link, good[:-1] + "\u00e9", now, 3600) is False  # in the MAC


# ---- the manager's reschedule: the same rules as booking ---------------------------------------


async def test_manager_reschedule_into_the_past_is_refused(calendar_stack: Stack) -> None:
    """Booking refuses a start in the past; moving an interview there must be refused too (no
    Graph write): yesterday at the same working-hours time."""
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    slot = (await _slots(stack, [megan]))[0]
    status, booked = await stack.post("/v1/interviews", booking_body([megan], slot, "past-1"), stack.token())
    assert status == 201, booked
    for days in (2, 3, 4, 7):
        back = parse_time(slot["start"]) - timedelta(days=days)
        assert back < datetime.now(UTC)
        past = {"start": format_time(back), "end": format_time(back + timedelta(minutes=30))}
        status, doc = await stack.post(f"/v1/interviews/{booked['id']}/reschedule", past, stack.token())
        assert status == 400, (days, status, doc)
        assert events_at(stack, megan, past["start"]) == []


# ---- cancel racing a create whose answer was lost ------------------------------------------------


async def test_cancelling_a_pending_booking_never_leaves_an_event_without_a_reservation(
    calendar_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create reached Outlook but its answer was lost (504; the row stays pending, listed in
    My interviews). Cancelling that row must not just drop the reservation while Outlook keeps
    the event: either the cancel is refused (the booking is still being settled) or the event
    is cancelled in Outlook too."""
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    slot = (await _slots(stack, [megan]))[0]
    graph = _graph(stack)
    real = graph.create_event

    async def answer_lost(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)
        raise GraphUnavailableError()

    monkeypatch.setattr(graph, "create_event", answer_lost)
    status, doc = await stack.post("/v1/interviews", booking_body([megan], slot, "lost-1"), stack.token())
    assert status == 504, doc
    monkeypatch.setattr(graph, "create_event", real)
    assert len(events_at(stack, megan, slot["start"])) == 1
    (pending,) = [r for r in await _rows(stack) if r.status is storage.InterviewStatus.PENDING]
    status, doc = await stack.post(f"/v1/interviews/{pending.id}/cancel", {}, stack.token())
    (row,) = await _rows(stack)
    live = events_at(stack, megan, slot["start"])
    if row.status is storage.InterviewStatus.CANCELLED:
        assert live == [], "the reservation was released while Outlook keeps the event"
    else:
        assert status == 409, (status, doc)
        assert len(live) == 1


# ---- the outbound-URL validator: our own spellings -------------------------------------------

_POLICY_URLS = ("smba.trafficmanager.net", "127.0.0.1")


@pytest.mark.parametrize(
    "url",
    [
        "https://smba.trafficmanager.net\n/",  # newline / tab / CR inside or at the end
        "https://smba.trafficmanager.net/\n",
        "https://smba.trafficmanager.net/amer/\r",
        "https://smba.trafficmanager.net\t.evil.example/",
        "https://evil.example\t@smba.trafficmanager.net/",
        "https://smba.trafficmanager.net%2eevil.example/",  # escapes in the host
        "https://smba%2etrafficmanager.net/",
        "https://evil.example%2f@smba.trafficmanager.net/",
        "https:\\\\smba.trafficmanager.net/",  # backslashes instead of slashes
        "https:/\\smba.trafficmanager.net/",
        "https:///smba.trafficmanager.net/",
        "https:smba.trafficmanager.net",
        "//smba.trafficmanager.net/",
        "wss://smba.trafficmanager.net/",
        "https+unix://smba.trafficmanager.net/",
        " https://smba.trafficmanager.net/",
        "https://smba.trafficmanager.net:443:80/",
        "https://smba.trafficmanager.net:0/",
        "https://smba.trafficmanager.net:65979/",  # 443 + 65536
        "https://smba.trafficmanager.net:+443/",
        "https://smba.trafficmanager.net:\u0664\u0664\u0663/",  # Arabic-Indic digits
        "https://[::ffff:7f00:1]/",  # IPv4-mapped 127.0.0.1, in canonical IPv6 form
        "https://[::ffff:127.0.0.1]/",
        "https://[::127.0.0.1]/",
        "https://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
        "https://0.0.0.0/",
        "https://smba.trafficmanager.net..evil.example/",
        "https://SMBA.TRAFFICMANAGER.NET.evil.example/",
        "https://trafficmanager.net/",  # a parent of the allowed host
        "https://xn--smba.trafficmanager.net/",
        "https://smba.trafficmanager.net#@evil.example/x",  # fragment: must stay the same host
    ],
)
def test_outbound_spellings_refused(url: str) -> None:
    for policy in (OutboundPolicy(_POLICY_URLS), OutboundPolicy(_POLICY_URLS, dev=True)):
        if outbound_url_allowed(url, policy):  # only if what is checked is what is connected to
            target = check_outbound_url(url, policy)
            assert_clients_connect_to(url, target)
            assert target.host in _POLICY_URLS or target.host.endswith(".smba.trafficmanager.net")
            assert url.endswith("#@evil.example/x"), url


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("HTTPS://smba.trafficmanager.net/amer/", 443),
        ("https://smba.trafficmanager.net:443/amer/", 443),
        ("https://smba.trafficmanager.net:0443/amer/", 443),
    ],
)
def test_outbound_spellings_accepted_connect_where_checked(url: str, port: int) -> None:
    target = check_outbound_url(url, OutboundPolicy(_POLICY_URLS))
    assert target.port == port
    assert_clients_connect_to(url, target)


# ---- finding 9: the invitee a candidate types is never inside the tenant ---------------------


@pytest.mark.parametrize(
    "email",
    [
        "CHRISTIEC@CONTOSO.EXAMPLE",  # case
        "christiec+interview@contoso.example",  # plus addressing delivers to christiec
        "christiec@mail.contoso.example",  # a subdomain
        "schedulable@contoso.example",  # a group
        "rainier@contoso.example",  # a room
    ],
)
async def test_candidate_typed_invitee_inside_the_tenant_is_refused(
    calendar_stack: Stack, email: str
) -> None:
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    body = {
        "interviewers": [megan],
        "duration_min": 30,
        "candidate_name": "Dana Smith",
        "window_start": format_time(now + timedelta(days=1)),
        "window_end": format_time(now + timedelta(days=8)),
    }
    status, offer = await stack.post("/v1/offers", body, stack.token())
    assert status == 201, offer
    token = str(offer["url"]).rsplit("/c/", 1)[1]
    status, view = await stack.post("/v1/candidate/slots", {"token": token})
    assert status == 200, view
    assert view["needs_email"], view
    slot = view["slots"][0]
    status, doc = await stack.post(
        "/v1/candidate/book", {"token": token, "start": slot["start"], "email": email}
    )
    assert status == 400, (status, doc)
    assert events_at(stack, megan, slot["start"]) == []


# ---- path ids: the pinned pattern, ASCII only ------------------------------------------------


@pytest.mark.parametrize("raw", ["%C3%A4bc", "%D9%A1%D9%A2", "%EF%BC%91", "a%C2%B2"])
async def test_path_id_outside_the_pinned_pattern_is_a_400(calendar_stack: Stack, raw: str) -> None:
    """The OpenAPI document pins ``^[A-Za-z0-9-]{1,64}\\Z``; ``str.isalnum`` also takes
    letters and digits of every script (a second spelling the schema does not allow)."""
    status, doc = await calendar_stack.post(f"/v1/interviews/{raw}/cancel", {}, calendar_stack.token())
    assert status == 400, (status, doc)


# ---- rooms vs people: a room cannot ride in as an optional attendee -----------------------------


async def test_a_room_as_optional_attendee_is_refused(calendar_stack: Stack) -> None:
    """Optional attendees are invited, never searched or reserved. A room invited so would be
    booked (rooms auto-accept) with no free/busy check and no reservation: a room taken twice.
    A room goes in ``rooms`` (checked and reserved) or nowhere."""
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    room = "rainier@contoso.example"
    christie = str(user(stack, "Christie Cline")["mail"]).lower()
    slot = (await _slots(stack, [megan, christie], [room]))[0]  # a time the room is free too
    status, first = await stack.post(
        "/v1/interviews", {**booking_body([megan], slot, "room-1"), "rooms": [room]}, stack.token()
    )
    assert status == 201, first
    for n, optional in enumerate(([room], ["RAINIER@contoso.example"])):
        status, doc = await stack.post(
            "/v1/interviews",
            {
                **booking_body([christie], slot, f"room-2-{n}"),
                "candidate": {"name": "Lee Park", "email": "lee@example.org"},
                "optional": optional,
            },
            stack.token(),
        )
        assert status in {400, 403}, (status, doc)
    assert len(events_at(stack, room, slot["start"])) <= 1


# ---- a stored conversation reference belongs to the manager who makes the link ------------------


@pytest.mark.parametrize(
    "change",
    [
        {"conversation": {"id": "a:someone-else", "tenantId": "0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b"}},
        {"user": {"id": "29:christie", "aadObjectId": "0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b"}},
    ],
)
async def test_offer_refuses_a_conversation_reference_that_is_not_the_callers(
    calendar_stack: Stack, change: dict[str, Any]
) -> None:
    """The notice of a booking goes, with the bot's token, to the stored reference: a caller
    of the private API must not aim it at another tenant's or another user's conversation."""
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    ref = {
        "activityId": "m1",
        "user": {"id": "29:alex", "name": "Alex Wilber"},
        "bot": {"id": "28:openslot", "name": "OpenSlot"},
        "conversation": {"id": "a:conv-alex", "tenantId": stack.devtenant.tenant_id},
        "channelId": "msteams",
        "serviceUrl": "https://smba.trafficmanager.net/amer/",
    }
    body = {
        "interviewers": [megan],
        "duration_min": 30,
        "candidate_name": "Dana Smith",
        "window_start": format_time(now + timedelta(days=1)),
        "window_end": format_time(now + timedelta(days=8)),
    }
    status, doc = await stack.post("/v1/offers", {**body, "conversation_ref": ref}, stack.token())
    assert status == 201, doc  # the caller's own reference is fine
    status, doc = await stack.post(
        "/v1/offers", {**body, "conversation_ref": {**ref, **change}}, stack.token()
    )
    assert status == 400, (status, doc)


# ---- candidate and manager racing on one interview ------------------------------------------------


@pytest.mark.parametrize("candidate_action", ["cancel", "reschedule"])
async def test_candidate_and_manager_changing_one_interview_at_once_agree_with_outlook(
    calendar_stack: Stack, candidate_action: str
) -> None:
    """The manager moves the interview the candidate booked while the candidate cancels or
    moves it elsewhere: whatever wins, every live row is in Outlook at its own time and a
    cancelled interview leaves no live event."""
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    offer = await make_offer(stack, [megan])
    token = capability(offer)
    status, view = await stack.post("/v1/candidate/slots", {"token": token})
    assert status == 200, view
    first = view["slots"][0]
    status, booked = await stack.post("/v1/candidate/book", {"token": token, "start": first["start"]})
    assert status == 201, booked
    later = [
        s for s in view["slots"] if parse_time(s["start"]) >= parse_time(first["end"]) + timedelta(hours=2)
    ]
    mine, theirs = later[0], later[-1]
    (row,) = await _rows(stack)
    manager = stack.post(
        f"/v1/interviews/{row.id}/reschedule", {"start": mine["start"], "end": mine["end"]}, stack.token()
    )
    body: dict[str, str] = {"token": token}
    if candidate_action == "reschedule":
        body["start"] = theirs["start"]
    candidate = stack.post(f"/v1/candidate/{candidate_action}", body)
    results = await asyncio.gather(manager, candidate)
    assert {s for s, _ in results} <= {200, 409}, results
    await assert_outlook_agrees(stack, [megan])
    (row,) = [r for r in await _rows(stack) if r.id == row.id]
    if row.status is storage.InterviewStatus.CANCELLED:
        for slot in (first, mine, theirs):
            assert events_at(stack, megan, slot["start"]) == [], slot


# ---- zone names: never a path, never a 500 -------------------------------------------------------

_BAD_ZONES = [
    "../../../../etc/passwd",
    "/etc/localtime",
    "Europe/../../etc/hosts",
    "Nowhere/Zone",
    "UTC ",
    ".",
    "Europe/Paris/",
    "(UTC+01:00) Amsterdam, Berlin",
    "Europe",
    "America",
]


@pytest.mark.parametrize("zone", _BAD_ZONES)
async def test_zone_names_that_are_paths_or_unknown_are_400(
    calendar_stack: Stack,
    zone: str,
) -> None:
    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    window = {"start": format_time(now + timedelta(days=1)), "end": format_time(now + timedelta(days=3))}
    status, doc = await stack.post(
        "/v1/slots/find",
        {
            "interviewers": [megan],
            "duration_min": 30,
            **window,
            "candidate_time_zone": zone,
            "candidate_day_start": "09:00",
            "candidate_day_end": "17:00",
        },
        stack.token(),
    )
    assert status == 400, (status, doc)
    offer = {
        "interviewers": [megan],
        "duration_min": 30,
        "candidate_name": "Dana Smith",
        "window_start": window["start"],
        "window_end": window["end"],
    }
    for field in ("candidate_time_zone", "manager_time_zone"):
        status, doc = await stack.post("/v1/offers", {**offer, field: zone}, stack.token())
        assert status == 400, (field, status, doc)
    ok, made = await stack.post("/v1/offers", offer, stack.token())
    assert ok == 201, made
    status, doc = await stack.post("/v1/candidate/slots", {"token": capability(made), "time_zone": zone})
    assert status == 400, (status, doc)


# ---- strings that display as something else, or cannot be encoded -----------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Dana \u202egnp.exe",  # right-to-left override: the subject reads "Dana exe.png"
        "Dana \u2066Smith\u2069",  # isolates
        "Dana \ud800Smith",  # a lone surrogate: valid JSON, not encodable as UTF-8
    ],
)
async def test_names_with_bidi_overrides_or_lone_surrogates_are_400(calendar_stack: Stack, name: str) -> None:
    import json as _json

    stack = calendar_stack
    megan = str(user(stack, "Megan Bowen")["mail"]).lower()
    slot = (await _slots(stack, [megan]))[0]
    body = booking_body([megan], slot, "bidi-1")
    body["candidate"]["name"] = name
    raw = _json.dumps(body)  # ensure_ascii: the surrogate travels as a \\ud800 escape
    response = await stack.client.post(
        "/v1/interviews",
        data=raw,
        headers={"Authorization": f"Bearer {stack.token()}", "Content-Type": "application/json"},
    )
    assert response.status == 400, (response.status, await response.text())
    assert events_at(stack, megan, slot["start"]) == []


# ---- the public candidate form: bytes that are not the form's charset ----------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"nonce=\xff\xfe&slot=x", "application/x-www-form-urlencoded"),
        (b"nonce=%ED%A0%80&slot=x", "application/x-www-form-urlencoded"),
        (b"nonce=x&slot=x", "application/x-www-form-urlencoded; charset=no-such-charset"),
        (b"nonce=\xa4&slot=x", "application/x-www-form-urlencoded; charset=utf-16"),
    ],
)
async def test_candidate_form_with_undecodable_bytes_is_refused_not_a_500(
    candidate_env: Any, body: bytes, content_type: str
) -> None:
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")])
    for action in ("book", "cancel", "reschedule"):
        resp = await env.bot.post(
            f"/c/{token}/{action}", data=body, headers={"Content-Type": content_type}, allow_redirects=False
        )
        await resp.read()
        assert 400 <= resp.status < 500, (action, resp.status)
