"""Issue 12, findings 2 and 14 on the candidate path, against the real Calendar Service, bot app and
devtenant: conversation references are checked by the outbound-URL validator when stored (Calendar
Service) and again when used (bot); the form nonce is single-use; every route carries the security
headers, /robots.txt included."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse

from devtenant.bot_connector import FakeBotConnector
from tests.candidate.conftest import Env, bot_instance

BAD_SERVICE_URLS = [
    "http://127.0.0.2:19999\\@127.0.0.1/",
    "http://127.0.0.2:19999%5C@127.0.0.1/",
    "http://127.0.0.1@127.0.0.2:19999/",
    "http://127.0.0.2:19999/",
    "https://127.0.0.1.evil.example/",
    "https://evil.example/",
    "javascript://127.0.0.1/%0aalert(1)",
]


def form(html: str) -> tuple[str, dict[str, str], list[str]]:
    """(action, hidden fields, slot ids) of the page's booking form."""
    action = re.search(r'<form[^>]*method="post"[^>]*action="([^"]+/book)"', html)
    assert action, html[:500]
    hidden = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html))
    slots = re.findall(r'<input[^>]*type="radio"[^>]*value="([^"]+)"', html)
    return action.group(1), hidden, slots


@pytest.mark.parametrize("service_url", BAD_SERVICE_URLS)
async def test_offer_with_a_refused_service_url_is_not_stored(candidate_env: Env, service_url: str) -> None:
    env = candidate_env
    ref = {**env.reference(), "serviceUrl": service_url}
    with pytest.raises(AssertionError) as refused:
        await env.make_offer([env.person("Megan Bowen")], conversation_ref=ref)
    assert "serviceUrl is not allowed" in str(refused.value)
    _, listed = await env.stack.get("/v1/offers", env.stack.token())
    assert listed["offers"] == []


async def test_notice_is_checked_again_when_sent(candidate_env: Env, tmp_path: Path) -> None:
    """The service stored a reference its allow-list took; the bot's allow-list (now) refuses it:
    the booking stands, and nothing is sent."""
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")])
    teams: FakeBotConnector = env.teams
    async with bot_instance(
        env.stack, teams, tmp_path / "strict.db", OPENSLOT_ALLOWED_SERVICE_URL_HOSTS="smba.trafficmanager.net"
    ) as bot:
        html = await (await bot.get(f"/c/{token}")).text()
        action, hidden, slots = form(html)
        resp = await bot.post(action, data={**hidden, "slot": slots[0]}, allow_redirects=False)
        assert resp.status == 303
    assert teams.posted == []


async def test_form_nonce_is_single_use(candidate_env: Env) -> None:
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")])
    html = await (await env.bot.get(f"/c/{token}")).text()
    action, hidden, slots = form(html)
    first = await env.bot.post(action, data={**hidden, "slot": slots[0]}, allow_redirects=False)
    assert first.status == 303
    replay = await env.bot.post(action.replace("/book", "/cancel"), data=hidden, allow_redirects=False)
    assert replay.status == 403  # the nonce was spent by the booking
    page = await (await env.bot.get(f"/c/{token}")).text()
    assert "Your interview is booked" in page


def assert_headers(resp: ClientResponse) -> None:
    for name in (
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "X-Frame-Options",
        "Strict-Transport-Security",
        "Cache-Control",
    ):
        assert name in resp.headers, (resp.url.path, name)
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/robots.txt", None),
        ("GET", "/healthz", None),
        ("GET", "/nope", None),
        ("GET", "/c/short", None),
        ("POST", "/api/messages", b"{"),
        ("GET", "/api/messages", None),
        ("POST", "/c/short/book", b""),
        ("HEAD", "/robots.txt", None),
    ],
)
async def test_security_headers_on_every_bot_route(
    candidate_env: Env, method: str, path: str, body: Any
) -> None:
    resp = await candidate_env.bot.request(method, path, data=body)
    await resp.read()
    assert_headers(resp)
