"""Scale-out on PostgreSQL: two bot processes, two Calendar Service processes, one database.

- a conversation started on bot A continues on bot B (dialog state with eTags in PostgreSQL);
- concurrent bookings of one slot through both services and both bots book it exactly once;
- the audit chain written by both services stays one linear hash chain.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

from dialogs.state import slot_start_from
from tests.scaleout.conftest import Cluster

pytestmark = pytest.mark.postgres

ALEX = "alexw@contoso.example"
COMMAND = "schedule Dana Smith (dana@example.com) with Megan and Adele, 45 min, next week"
CARD = "application/vnd.microsoft.card.adaptive"


def alex_oid(cluster: Cluster) -> str:
    user = cluster.devtenant.tenant.find_user(ALEX)
    assert user is not None
    return str(user["id"])


def activity(cluster: Cluster, conversation: str, **fields: Any) -> dict[str, Any]:
    oid = alex_oid(cluster)
    doc: dict[str, Any] = {
        "type": "message",
        "id": secrets.token_hex(6),
        "channelId": "msteams",
        "serviceUrl": cluster.connector.url,
        "locale": "en-US",
        "localTimezone": "Europe/London",
        "from": {"id": f"29:{oid}", "aadObjectId": oid, "name": "Alex Wilber"},
        "recipient": {"id": "28:openslot", "name": "OpenSlot"},
        "conversation": {"id": conversation, "tenantId": cluster.tenant_id, "conversationType": "personal"},
        "channelData": {"tenant": {"id": cluster.tenant_id}},
    }
    doc.update(fields)
    return doc


async def say(
    http: aiohttp.ClientSession, cluster: Cluster, bot: int, conversation: str, text: str
) -> list[dict[str, Any]]:
    """Post one message to bot ``bot``; return the replies it sent to the connector."""
    before = len(cluster.connector.replies(conversation))
    async with http.post(
        f"{cluster.bot_urls[bot]}/api/messages", json=activity(cluster, conversation, text=text)
    ) as resp:
        assert resp.status in (200, 201, 202), await resp.text()
    replies = cluster.connector.replies(conversation)[before:]
    assert "went wrong" not in texts(replies), cluster.log_tail(f"bot{bot}")
    return replies


async def press(
    http: aiohttp.ClientSession, cluster: Cluster, bot: int, conversation: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Press an ``Action.Execute`` button on bot ``bot``; return the card it answers with."""
    doc = activity(
        cluster,
        conversation,
        type="invoke",
        name="adaptiveCard/action",
        value={"action": {"type": "Action.Execute", "verb": data["verb"], "data": data}, "trigger": "manual"},
    )
    async with http.post(f"{cluster.bot_urls[bot]}/api/messages", json=doc) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert body["type"] == CARD, body
    card: dict[str, Any] = body["value"]
    return card


def is_booked(card: dict[str, Any]) -> bool:
    return card.get("fallbackText") == "Interview booked."


def texts(replies: list[dict[str, Any]]) -> str:
    return " | ".join(str(r.get("text") or "") for r in replies)


def cards(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a["content"] for r in replies for a in r.get("attachments") or [] if a.get("contentType") == CARD]


def executes(card: object, verb: str) -> list[dict[str, Any]]:
    """The ``data`` of every ``Action.Execute`` with ``verb`` in ``card``, in order."""
    found: list[dict[str, Any]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute" and node.get("verb") == verb:
                found.append(dict(node.get("data") or {}, verb=verb))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


async def slot_picker(
    http: aiohttp.ClientSession, cluster: Cluster, conversation: str, bots: tuple[int, int, int]
) -> dict[str, Any]:
    """Run the schedule conversation with each turn on the given bot; return the slot picker."""
    first, second, third = bots
    assert "time zone" in texts(await say(http, cluster, first, conversation, COMMAND))
    assert "buffer" in texts(await say(http, cluster, second, conversation, "India"))
    [card] = cards(await say(http, cluster, third, conversation, "none"))
    assert executes(card, "choose_slot"), card
    return card


async def test_conversation_moves_between_bot_processes(cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as http:
        conversation = f"a:scaleout-{secrets.token_hex(4)}"
        picker = await slot_picker(http, cluster, conversation, (0, 1, 0))
        choose = executes(picker, "choose_slot")[0]
        confirmation = await press(http, cluster, 1, conversation, choose)
        [confirm] = executes(confirmation, "confirm")
        booked = await press(http, cluster, 0, conversation, confirm)
        again = await press(http, cluster, 1, conversation, confirm)  # retried on the other bot
    assert is_booked(booked), booked
    assert is_booked(again)
    assert again["body"] == booked["body"]


async def test_concurrent_bot_confirms_book_once(cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as http:
        convs = [f"a:race-{i}-{secrets.token_hex(4)}" for i in range(2)]
        pickers = await asyncio.gather(
            *(slot_picker(http, cluster, c, (i, i, i)) for i, c in enumerate(convs))
        )
        confirms = []
        for i, (conv, picker) in enumerate(zip(convs, pickers, strict=True)):
            chosen = await press(http, cluster, i, conv, executes(picker, "choose_slot")[0])
            confirms.append(executes(chosen, "confirm")[0])
        assert confirms[0]["slot_id"] == confirms[1]["slot_id"]
        results = await asyncio.gather(
            *(press(http, cluster, i, conv, confirms[i]) for i, conv in enumerate(convs))
        )
    assert [is_booked(card) for card in results].count(True) == 1, results
    start = slot_start_from(str(confirms[0]["slot_id"]))
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{cluster.calendar_urls[0]}/v1/interviews",
            headers={"Authorization": f"Bearer {cluster.devtenant.mint_user_token(ALEX)}"},
        ) as resp,
    ):
        interviews = (await resp.json())["interviews"]
    at_slot = [
        i
        for i in interviews
        if i["status"] != "cancelled" and datetime.fromisoformat(i["start"].replace("Z", "+00:00")) == start
    ]
    assert len(at_slot) == 1, interviews


async def _api(
    http: aiohttp.ClientSession, url: str, token: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with http.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


async def test_concurrent_api_bookings_across_services_never_double_book(cluster: Cluster) -> None:
    token = cluster.devtenant.mint_user_token(ALEX)
    panel = ["meganb@contoso.example", "adelev@contoso.example"]
    async with aiohttp.ClientSession() as http:
        status, found = await _api(
            http,
            f"{cluster.calendar_urls[0]}/v1/slots/find",
            token,
            {
                "interviewers": panel,
                "duration_min": 30,
                "start": _days_ahead(8),
                "end": _days_ahead(15),
                "limit": 3,
            },
        )
        assert status == 200, found
        slot = found["slots"][-1]
        attempts = [
            _api(
                http,
                f"{cluster.calendar_urls[i % 2]}/v1/interviews",
                token,
                {
                    "candidate": {"name": f"Racer {i}", "email": f"racer{i}@example.com"},
                    "interviewers": panel,
                    "start": slot["start"],
                    "end": slot["end"],
                    "idempotency_key": f"race-{i}-{secrets.token_hex(4)}",
                },
            )
            for i in range(8)
        ]
        outcomes = await asyncio.gather(*attempts)
    statuses = sorted(s for s, _ in outcomes)
    assert sum(200 <= s < 300 for s in statuses) == 1, outcomes
    assert all(s == 409 for s in statuses if not 200 <= s < 300), outcomes


def _days_ahead(days: int) -> str:
    day = (datetime.now(UTC) + timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.isoformat().replace("+00:00", "Z")


async def test_audit_chain_stays_linear(cluster: Cluster) -> None:
    token = cluster.devtenant.mint_user_token(ALEX)
    async with aiohttp.ClientSession() as http:
        calls = [
            _api(
                http,
                f"{cluster.calendar_urls[i % 2]}/v1/slots/find",
                token,
                {
                    "interviewers": ["meganb@contoso.example"],
                    "duration_min": 30,
                    "start": _days_ahead(2),
                    "end": _days_ahead(4),
                    "limit": 1,
                },
            )
            for i in range(10)
        ]
        assert all(s == 200 for s, _ in await asyncio.gather(*calls))
    dsn = make_url(cluster.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT seq, prev_hash, row_hash FROM audit_log ORDER BY seq")
    finally:
        await conn.close()
    assert len(rows) >= 10
    assert [r["seq"] for r in rows] == list(range(rows[0]["seq"], rows[0]["seq"] + len(rows)))
    for earlier, later in itertools.pairwise(rows):
        assert later["prev_hash"] == earlier["row_hash"]
    verify = cluster.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_largest_key_id_fits_on_postgresql(cluster: Cluster) -> None:
    """Key ids are uint32 (keyring.MAX_KEY_ID); int32 columns rejected half of all keyrings."""
    from calendar_backend import storage
    from calendar_backend.keyring import MAX_KEY_ID

    engine = storage.create_engine(cluster.database_url)
    try:
        async with storage.Store(engine).transaction() as tx:
            await storage.put_tenant(tx, "big-key-tenant", b"sealed", MAX_KEY_ID, [])
            await storage.put_token_cache(tx, "big-key-tenant", "oid-1", b"sealed", MAX_KEY_ID)
            row = await storage.get_tenant(tx, "big-key-tenant")
            assert row is not None
            assert row.key_id == MAX_KEY_ID
            await storage.delete_tenant(tx, "big-key-tenant")
    finally:
        await engine.dispose()
