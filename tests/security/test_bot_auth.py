"""The bot endpoint in PROD profile: the forged channel-token matrix (security.md §7 #5, #6, #7, #8, #9).

Every forged or wrong request is refused with 401 and the fake Bot Connector records nothing; the genuine
channel token is processed (one reply reaches the connector, carrying a bot→channel bearer token minted by
devtenant). Channel auth runs the real botbuilder validator against devtenant's Bot Framework OpenID
metadata and endorsed keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

import bot as bot_module
from calendar_backend.audit import audit_log
from dialogs.sql_storage import SqlStorage
from tests.security.conftest import ProdBot


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any], kid: str) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def _hs256_with_public_key(bot: ProdBot, claims: dict[str, Any]) -> str:
    key = bot.channel_keys.current
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing}.{_b64(hmac.new(pem, signing.encode(), hashlib.sha256).digest())}"


def _foreign_signed(bot: ProdBot, claims: dict[str, Any], kid: str) -> str:
    """Channel claims signed by Entra's (not the channel's) key, under a given kid."""
    key = bot.devtenant.issuer.keys.current.private_key
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def forged(bot: ProdBot, case: str) -> tuple[dict[str, Any], str | None, str]:
    """The (activity, token, scheme) of one forged case. Each must be refused with 401."""
    now = int(datetime.now(UTC).timestamp())
    good = bot.channel_token()
    claims = jwt.decode(good, options={"verify_signature": False})
    kid = bot.channel_keys.current.kid
    act = bot.activity
    cases: dict[str, Callable[[], tuple[dict[str, Any], str | None, str]]] = {
        "no_authorization_header": lambda: (act(), None, "Bearer"),
        "empty_bearer": lambda: (act(), "", "Bearer"),
        "wrong_scheme": lambda: (act(), good, "Basic"),
        "garbage_token": lambda: (act(), "not.a.jwt", "Bearer"),
        "alg_none": lambda: (act(), _unsigned(claims, kid), "Bearer"),
        "hs256_with_public_key": lambda: (act(), _hs256_with_public_key(bot, claims), "Bearer"),
        "bad_signature": lambda: (
            act(),
            good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB"),
            "Bearer",
        ),
        "wrong_audience": lambda: (act(), bot.channel_token(aud=str(uuid.uuid4())), "Bearer"),
        "wrong_issuer": lambda: (act(), bot.channel_token(iss="https://sts.windows.net/evil/"), "Bearer"),
        "entra_key_with_channel_kid": lambda: (act(), _foreign_signed(bot, claims, kid), "Bearer"),
        "graph_audience_user_token": lambda: (
            act(),
            bot.devtenant.mint_user_token("alexw@contoso.example", audience="https://graph.microsoft.com"),
            "Bearer",
        ),
        "expired_301s": lambda: (
            act(),
            bot.channel_token(exp=now - 302, iat=now - 4000, nbf=now - 4000),
            "Bearer",
        ),
        "nbf_future_301s": lambda: (act(), bot.channel_token(nbf=now + 400, iat=now + 400), "Bearer"),
        "unknown_kid": lambda: (act(), _foreign_signed(bot, claims, "kid-" + uuid.uuid4().hex), "Bearer"),
        "empty_channel_id": lambda: (act(channelId=""), good, "Bearer"),
        "unendorsed_channel": lambda: (act(channelId="webchat"), good, "Bearer"),
        "wrong_service_url": lambda: (
            act(serviceUrl=bot.connector.url.replace("127.0.0.1", "localhost")),
            good,
            "Bearer",
        ),
        "service_url_claim_missing": lambda: (
            act(),
            bot.sign({k: v for k, v in claims.items() if k != "serviceurl"}),
            "Bearer",
        ),
    }
    return cases[case]()


CASES = [
    "no_authorization_header",
    "empty_bearer",
    "wrong_scheme",
    "garbage_token",
    "alg_none",
    "hs256_with_public_key",
    "bad_signature",
    "wrong_audience",
    "wrong_issuer",
    "entra_key_with_channel_kid",
    "graph_audience_user_token",
    "expired_301s",
    "nbf_future_301s",
    "unknown_kid",
    "empty_channel_id",
    "unendorsed_channel",
    "wrong_service_url",
    "service_url_claim_missing",
]


async def test_valid_channel_token_is_processed(prod_bot: ProdBot) -> None:
    status = await prod_bot.post(prod_bot.activity(), prod_bot.channel_token())
    assert status in (200, 201, 202)
    assert len(prod_bot.connector.posted) == 1
    reply = prod_bot.connector.posted[0]
    assert reply["auth"] == "Bearer "  # the reply carries the bot's outbound token
    assert reply["body"]["type"] == "message"


@pytest.mark.parametrize("case", CASES)
async def test_forged_channel_request_is_401_and_nothing_is_sent(prod_bot: ProdBot, case: str) -> None:
    doc, token, scheme = forged(prod_bot, case)
    status = await prod_bot.post(doc, token, scheme=scheme)
    assert status == 401, case
    assert prod_bot.connector.posted == []


@pytest.mark.parametrize(
    "tenant",
    ["", "00000000-0000-0000-0000-000000000001", "not-a-guid"],
    ids=["no_tenant", "other_tenant", "junk"],
)
async def test_valid_token_from_a_foreign_tenant_is_dropped_silently(
    prod_bot: ProdBot, tenant: str, bot_storage: SqlStorage, caplog: pytest.LogCaptureFixture
) -> None:
    """§7 #8: authenticated but not a consented tenant → no handler runs, nothing is sent, and one
    record (codes, the tenant id, a hash of the sender's id) goes to the bot's own log; the
    Calendar Service's hash chain gets nothing from the bot."""
    sender = "5f0c8f6e-1d2b-4c3a-9e8f-7a6b5c4d3e2f"
    doc = prod_bot.activity(
        aid="foreign-1", tenant=tenant, **{"from": {"id": "29:x", "name": "Mallory", "aadObjectId": sender}}
    )
    with caplog.at_level(logging.WARNING, logger="openslot.bot.audit"):
        status = await prod_bot.post(doc, prod_bot.channel_token())
    assert status in (200, 201, 202)
    assert prod_bot.connector.posted == []
    records = [r for r in caplog.records if r.name == "openslot.bot.audit"]
    assert len(records) == 1
    expected_tenant = tenant if tenant.count("-") == 4 else "invalid"
    assert (
        records[0].audit
        == {  # type: ignore[attr-defined]
            "operation": "bot.activity",
            "result": "dropped:tenant",
            "tenant": expected_tenant,
            "actor": hashlib.sha256(sender.encode()).hexdigest()[:12],
            "request_id": "foreign-1",
        }
    )
    assert "Mallory" not in caplog.text
    assert sender not in caplog.text
    async with bot_storage.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar() == 0


async def test_an_allowed_tenant_writes_no_refusal_record(
    prod_bot: ProdBot, bot_storage: SqlStorage, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="openslot.bot.audit"):
        assert await prod_bot.post(prod_bot.activity(aid="ok-1"), prod_bot.channel_token()) in (200, 201, 202)
    assert [r for r in caplog.records if r.name == "openslot.bot.audit"] == []
    async with bot_storage.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar() == 0


async def test_unknown_kid_flood_is_401_with_at_most_one_key_refresh(prod_bot: ProdBot) -> None:
    """§7 #5 at the bot: 200 random-kid tokens → all 401, the key set is fetched at most once."""
    await prod_bot.post(prod_bot.activity(aid="warm"), prod_bot.channel_token())  # warm the cache
    counters = prod_bot.devtenant.tenant.counters
    before = counters["botframework.keys"]
    claims = jwt.decode(prod_bot.channel_token(), options={"verify_signature": False})
    statuses = {
        await prod_bot.post(prod_bot.activity(aid=f"k{i}"), _foreign_signed(prod_bot, claims, f"kid-{i}"))
        for i in range(200)
    }
    assert statuses == {401}
    assert counters["botframework.keys"] - before <= 1
    assert [p for p in prod_bot.connector.posted if p["body"]["conversation"]["id"] != "a:conv-warm"] == []


def test_prod_profile_refuses_to_start_without_credentials() -> None:
    """§7 #7: empty app id or password outside dev → non-zero exit, no anonymous path."""
    base = {"OPENSLOT_ENV": "prod", "OPENSLOT_BOT_ALLOWED_TENANTS": str(uuid.uuid4())}
    assert bot_module.main(base) == 2
    assert bot_module.main({**base, "OPENSLOT_BOT_APP_ID": "x"}) == 2
    assert bot_module.main({**base, "OPENSLOT_BOT_APP_PASSWORD": "y"}) == 2


async def test_channel_token_time_claims_must_be_integers(prod_bot: ProdBot) -> None:
    """Issue 12 finding 14 at the bot: a genuinely signed channel token whose exp/nbf/iat is a string,
    a fraction or a boolean is 401 (PyJWT would read int("9999999999")), and nothing is sent."""
    now = int(datetime.now(UTC).timestamp())
    for n, (claim, bad) in enumerate(
        [
            ("exp", str(now + 3600)),
            ("exp", now + 3600.5),
            ("exp", True),
            ("nbf", str(now)),
            ("iat", float(now)),
        ]
    ):
        token = prod_bot.channel_token(**{claim: bad})
        assert await prod_bot.post(prod_bot.activity(aid=f"t{n}"), token) == 401, (claim, bad)
    assert prod_bot.connector.posted == []
    assert await prod_bot.post(prod_bot.activity(aid="ok"), prod_bot.channel_token()) < 300
