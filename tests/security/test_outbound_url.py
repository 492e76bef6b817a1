"""Issue 12 finding 2: the outbound-URL validator (calendar_backend/outbound.py) and every path that
sends to a serviceUrl (bot replies, the connector factory, proactive notices).

The attack tests run a real listener on 127.0.0.2 and post activities whose serviceUrl tries to reach
it past the allow-list; nothing may connect to it, least of all with the bot's token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
import urllib3.util
import yarl
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

import bot as bot_module
from calendar_backend.audit import audit_log
from calendar_backend.contract import (
    OutboundPolicy,
    OutboundTarget,
    OutboundUrlError,
    check_outbound_url,
    outbound_url_allowed,
)
from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import FakeCalendarService
from tests.security.conftest import ProdBot

TENANT = "6f2d5c1e-8d3b-4a7e-9f41-2b7c9e0d1a55"
PROD = OutboundPolicy(("smba.trafficmanager.net", "127.0.0.1"))
DEV = OutboundPolicy(("smba.trafficmanager.net", "127.0.0.1", "localhost", "::1"), dev=True)

REFUSED = [
    "http://127.0.0.2:19999\\@smba.trafficmanager.net/",  # urllib3 ends the host at "\"
    "https://127.0.0.2:19999\\@smba.trafficmanager.net/",
    "https://127.0.0.2%5C@smba.trafficmanager.net/",
    "https://127.0.0.2%5c@smba.trafficmanager.net/",
    "https://smba.trafficmanager.net/amer/%5C..%5C",
    "https://evil.example@smba.trafficmanager.net/",  # userinfo
    "https://smba.trafficmanager.net@evil.example/",
    "https://evil.example%40smba.trafficmanager.net/",
    "https://smba.trafficmanager.net%40evil.example/",
    "https://user:pw@smba.trafficmanager.net/",
    "http://smba.trafficmanager.net/amer/",  # http outside dev / loopback
    "https://smba.trafficmanager.net:8443/amer/",  # port not allow-listed
    "https://smba.trafficmanager.net:443x/",
    "https://smba.trafficmanager.net:/",
    "https://smba.trafficmanager.net./amer/",  # trailing dot
    "https://smba..trafficmanager.net/",
    "https://smba.trafficmanager.net.evil.example/",
    "https://evil-smba.trafficmanager.net/",
    "https://evilsmba.trafficmanager.net/",
    "https://localhost.evil.example/",
    "https://smba.trafficm\u0430nager.net/",  # Cyrillic a: an IDN must come as punycode
    "https://\uff53\uff4d\uff42\uff41.trafficmanager.net/",  # fullwidth: NFKC gives the allowed host
    "https://xn--smba-9na.trafficmanager.net/",  # punycode, but not the allowed name
    "https://smba.trafficmanager.net\t/",
    "https://smba.trafficmanager.net /",
    "https://smba.trafficmanager.net/%0d%0aX-Injected:1",
    "https://smba.trafficmanager.net/\x00",
    "https://[::ffff:127.0.0.2]/",  # IPv6 literals
    "https://[::1]/",
    "https://[0:0:0:0:0:0:0:1]/",
    "https://[::1%25lo]/",
    "https://127.1/",  # resolvers read these as 127.0.0.1 or other addresses
    "https://2130706433/",
    "https://0x7f.0.0.1/",
    "https://0177.0.0.1/",
    "https://127.0.0.01/",
    "https://127.0.0.2/",
    "https:/smba.trafficmanager.net/",
    "https:smba.trafficmanager.net/",
    "//smba.trafficmanager.net/",
    "ftp://smba.trafficmanager.net/",
    "javascript://smba.trafficmanager.net/%0aalert(1)",
    "https://smba_x.trafficmanager.net/",
    "",
    None,
    42,
    "https://smba.trafficmanager.net/" + "a" * 3000,
]
ACCEPTED = [
    ("https://smba.trafficmanager.net/amer/", OutboundTarget("https", "smba.trafficmanager.net", 443)),
    ("https://SMBA.TrafficManager.net/emea/", OutboundTarget("https", "smba.trafficmanager.net", 443)),
    ("https://x.smba.trafficmanager.net", OutboundTarget("https", "x.smba.trafficmanager.net", 443)),
    ("https://smba.trafficmanager.net:443/a?b=1#c", OutboundTarget("https", "smba.trafficmanager.net", 443)),
    ("https://127.0.0.1/", OutboundTarget("https", "127.0.0.1", 443)),
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_in_prod_and_dev(url: object) -> None:
    with pytest.raises(OutboundUrlError):
        check_outbound_url(url, PROD)
    assert not outbound_url_allowed(url, DEV) or url == "https://[::1]/"


@pytest.mark.parametrize(("url", "target"), ACCEPTED)
def test_accepted_and_clients_agree(url: str, target: OutboundTarget) -> None:
    assert check_outbound_url(url, PROD) == target
    assert_clients_connect_to(url, target)


def test_dev_profile_allows_http_and_ports_on_loopback_only() -> None:
    assert check_outbound_url("http://127.0.0.1:3978/", DEV) == OutboundTarget("http", "127.0.0.1", 3978)
    assert check_outbound_url("http://localhost:56150/", DEV).host == "localhost"
    assert check_outbound_url("http://[::1]:9/", DEV) == OutboundTarget("http", "::1", 9)
    for url in ("http://127.0.0.1:3978/", "http://localhost/"):
        with pytest.raises(OutboundUrlError):
            check_outbound_url(url, PROD)
    for url in (
        "http://smba.trafficmanager.net/",
        "https://smba.trafficmanager.net:8443/",
        "http://127.0.0.2:3978/",
        "http://localhost.evil.example:80/",
    ):
        with pytest.raises(OutboundUrlError):
            check_outbound_url(url, DEV)


def test_allow_listed_port() -> None:
    policy = OutboundPolicy.from_csv("smba.trafficmanager.net", ports="8443")
    assert check_outbound_url("https://smba.trafficmanager.net:8443/", policy).port == 8443
    with pytest.raises(OutboundUrlError):
        check_outbound_url("https://smba.trafficmanager.net:8444/", policy)
    with pytest.raises(ValueError, match="ports"):
        OutboundPolicy.from_csv("x", ports="80a")


def assert_clients_connect_to(url: str, target: OutboundTarget) -> None:
    """urllib3 (requests, msrest) and yarl (aiohttp) find the host and port the validator checked."""
    parsed = urllib3.util.parse_url(url)
    assert (parsed.host or "").strip("[]").lower() == target.host
    assert (parsed.port or (443 if parsed.scheme == "https" else 80)) == target.port
    y = yarl.URL(url)
    assert (y.host or "").lower() == target.host
    assert y.port == target.port


_PIECES = st.sampled_from(
    [
        "https://",
        "http://",
        "smba.trafficmanager.net",
        "127.0.0.1",
        "127.0.0.2",
        "evil.example",
        "@",
        "\\",
        "%5C",
        "%40",
        ":",
        ":443",
        ":19999",
        "/",
        ".",
        "?",
        "#",
        "[",
        "]",
        "::1",
        "%",
        "xn--",
        "-",
        "a",
        "localhost",
        "\t",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=8).map("".join))
def test_whatever_is_accepted_is_where_the_clients_connect(url: str) -> None:
    for policy in (PROD, DEV):
        try:
            target = check_outbound_url(url, policy)
        except OutboundUrlError:
            continue
        assert target.host in {
            "smba.trafficmanager.net",
            "127.0.0.1",
            "localhost",
            "::1",
        } or target.host.endswith(".smba.trafficmanager.net")
        assert_clients_connect_to(url, target)


# ---- the attack: a listener on 127.0.0.2 the allow-list does not name ---------------------------
@dataclass
class Listener:
    """A TCP listener on 127.0.0.2 recording every connection and the bytes it received."""

    port: int = 0
    received: list[bytes] = field(default_factory=list)


@asynccontextmanager
async def listener() -> AsyncIterator[Listener]:
    seen = Listener()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(65536)
        seen.received.append(data)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.2", 0)
    seen.port = server.sockets[0].getsockname()[1]
    try:
        yield seen
    finally:
        server.close()
        await server.wait_closed()


def attack_urls(port: int, allowed: str) -> list[str]:
    return [
        f"http://127.0.0.2:{port}\\@{allowed}/",
        f"http://127.0.0.2:{port}\\\\@{allowed}/",
        f"http://127.0.0.2:{port}%5C@{allowed}/",
        f"http://127.0.0.2:{port}@{allowed}/",
        f"http://{allowed}@127.0.0.2:{port}/",
        f"http://127.0.0.2:{port}/",
    ]


def activity(aid: str, service_url: str, *, tenant: str = TENANT) -> dict[str, object]:
    return {
        "type": "message",
        "id": aid,
        "text": "hello",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": "29:alex", "name": "Alex"},
        "recipient": {"id": "28:bot"},
        "conversation": {"id": f"a:conv-{aid}", "tenantId": tenant},
        "channelData": {"tenant": {"id": tenant}},
    }


async def test_dev_bot_never_connects_past_the_allow_list(bot_storage: SqlStorage) -> None:
    settings_ = bot_module.load_bot_settings(
        {
            "OPENSLOT_ENV": "dev",
            "OPENSLOT_DEV_TENANT_ID": TENANT,
            "OPENSLOT_TOKEN_SERVICE_URL": "http://127.0.0.1:9",
            "OPENSLOT_ALLOWED_SERVICE_URL_HOSTS": "smba.trafficmanager.net,127.0.0.1",
            "OPENSLOT_BOT_CONNECTOR_TIMEOUT_S": "2",
        }
    )
    app = bot_module.build_app(settings_, calendar=FakeCalendarService(), storage=bot_storage)
    async with listener() as target, TestClient(TestServer(app, host="127.0.0.1")) as client:
        urls = attack_urls(target.port, "smba.trafficmanager.net") + attack_urls(target.port, "127.0.0.1")
        for n, url in enumerate(urls):
            resp = await client.post("/api/messages", json=activity(f"x{n}", url))
            assert resp.status < 500
        await asyncio.sleep(0.1)
    assert target.received == []


async def test_prod_bot_sends_no_token_past_the_allow_list(
    prod_bot: ProdBot, bot_storage: SqlStorage, caplog: pytest.LogCaptureFixture
) -> None:
    """A genuinely signed channel token naming the attacker's serviceUrl (as a compromised or
    confused channel would send): the validator, not the claim, decides where the token goes, and
    each refusal is one `dropped:service_url` record of the bot's own log."""
    async with listener() as target:
        urls = attack_urls(target.port, "127.0.0.1")
        with caplog.at_level(logging.WARNING, logger="openslot.bot.audit"):
            for n, url in enumerate(urls):
                doc = prod_bot.activity(aid=f"p{n}", serviceUrl=url)
                assert await prod_bot.post(doc, prod_bot.channel_token(service_url=url)) < 500
            await asyncio.sleep(0.1)
    assert target.received == []
    records = [r.audit for r in caplog.records if r.name == "openslot.bot.audit"]  # type: ignore[attr-defined]
    dropped = [("bot.activity", "dropped:service_url")] * len(urls)
    assert [(r["operation"], r["result"]) for r in records] == dropped
    audit_text = "\n".join(r.getMessage() for r in caplog.records if r.name == "openslot.bot.audit")
    assert "127.0.0.2" not in audit_text  # no URL in the record
    async with bot_storage.engine.connect() as conn:  # nothing from the bot in the service's chain
        assert (await conn.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar() == 0
    # and the same bot still answers its real connector
    assert await prod_bot.post(prod_bot.activity(aid="ok"), prod_bot.channel_token()) < 300
    assert prod_bot.connector.posted


async def test_connector_factory_refuses_at_send_time(tmp_path: Path) -> None:
    """Proactive sends (continue_conversation) and replies both get their client here."""
    settings_ = bot_module.load_bot_settings(
        {
            "OPENSLOT_ENV": "dev",
            "OPENSLOT_DEV_TENANT_ID": TENANT,
            "OPENSLOT_ALLOWED_SERVICE_URL_HOSTS": "smba.trafficmanager.net",
        }
    )
    auth = bot_module.OpenSlotAuthentication(settings_)
    identity = bot_module.ClaimsIdentity({}, True)
    factory = auth.create_connector_factory(identity)
    with pytest.raises(OutboundUrlError):
        await factory.create("http://127.0.0.2:19999\\@smba.trafficmanager.net/", None)
    client = await factory.create("https://smba.trafficmanager.net/amer/", None)
    assert client.config.base_url == "https://smba.trafficmanager.net/amer/"
    await auth.close()
