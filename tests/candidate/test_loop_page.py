"""The candidate page of a loop link (issue 17) on the real bot app, backed by the real Calendar
Service + devtenant: options by day, one post books the whole loop, the confirmation lists every
session, the loop moves whole and is cancelled whole; the manager hears of each in Teams; no panel
or room address ever reaches the page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from calendar_backend.contract import format_time
from tests.candidate.conftest import Env
from tests.candidate.test_candidate_page import assert_security_headers, book_form, parse
from tests.candidate.test_loop_links import DIEGO, MEGAN, ROOM, template
from tests.service.conftest import next_week


async def make_loop_link(env: Env, **extra: Any) -> str:
    start, end = next_week(datetime.now(UTC))
    body = {
        "loop_template": template(),
        "window_start": format_time(start),
        "window_end": format_time(end),
        "candidate_name": "Dana Smith",
        "candidate_email": "dana.smith@example.com",
        "candidate_time_zone": "Europe/Berlin",
        "conversation_ref": env.reference(),
        **extra,
    }
    status, doc = await env.stack.post("/v1/offers", body, env.stack.token())
    assert status == 201, doc
    return str(doc["url"]).rsplit("/c/", 1)[1]


def no_address(html: str) -> None:
    lowered = html.lower()
    for address in (MEGAN, DIEGO, ROOM, "meganb", "diegos", "rainier", "megan", "diego"):
        assert address not in lowered, address


async def test_a_loop_page_books_moves_and_cancels_the_whole_loop(candidate_env: Env) -> None:
    env = candidate_env
    token = await make_loop_link(env)
    page = await env.bot.get(f"/c/{token}")
    assert page.status == 200
    assert_security_headers(page)
    html = await page.text()
    no_address(html)
    assert "Choose a time for your interviews" in html
    assert "Coding" in html
    assert "System design" in html
    assert "<fieldset" in html
    assert "<legend>" in html
    action, hidden, options = book_form(html)
    assert action == f"/c/{token}/book"
    assert len(options) >= 2
    assert all("." in o for o in options)

    resp = await env.bot.post(action, data={**hidden, "loop": options[0]}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    confirmation = await (await env.bot.get(resp.headers["Location"])).text()
    no_address(confirmation)
    assert "Your interviews are booked" in confirmation
    assert "Coding" in confirmation
    assert "System design" in confirmation
    assert len(env.teams.posted) == 1  # the manager hears of it in Teams

    action, hidden, moves = book_form(confirmation)
    assert action == f"/c/{token}/reschedule"
    target = next(o for o in moves if o.split(".")[0] != options[0].split(".")[0])
    resp = await env.bot.post(action, data={**hidden, "loop": target}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    moved = await (await env.bot.get(resp.headers["Location"])).text()
    assert "moved" in moved
    assert len(env.teams.posted) == 2

    cancel = next(f for f in parse(moved).forms if f["action"].endswith("/cancel"))
    fields = {i["name"]: i["value"] for i in cancel["inputs"]}
    resp = await env.bot.post(cancel["action"], data=fields, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    after = await (await env.bot.get(resp.headers["Location"])).text()
    no_address(after)
    assert len(env.teams.posted) == 3
    status, doc = await env.stack.post("/v1/candidate/slots", {"token": token})
    assert status == 200, doc
    # The cancel counted a change; with changes left the link opens again for a new loop.
    assert doc["booking"] is None or doc["booking"]["status"] == "cancelled"
