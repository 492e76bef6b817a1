"""Reliability fixtures: the real Calendar Service on SQLite or PostgreSQL, against devtenant.

PostgreSQL: a fresh database ``openslot_rel_<random>`` per test on ``OPENSLOT_TEST_POSTGRES_URL``
(default ``postgresql+asyncpg://postgres@127.0.0.1:5432/``, trust auth), dropped afterwards. Tests
using it are marked ``postgres`` and skipped, with the reason, when the server is unreachable.
"""

from __future__ import annotations

import dataclasses
import io
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url

from bench.stack import onboard
from calendar_backend.keyring import create_keyring
from calendar_backend.runtime import build_web_app, open_runtime
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.service.conftest import Stack, make_settings

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"


def _admin_dsn(url: str) -> str:
    return (
        make_url(url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    )


async def _pg_admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(_admin_dsn(url), timeout=3)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
async def fresh_pg_url() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for this test; dropped at the end."""
    base = os.environ.get("OPENSLOT_TEST_POSTGRES_URL", DEFAULT_PG)
    name = f"openslot_rel_{secrets.token_hex(6)}"
    try:
        await _pg_admin(base, f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.skip(f"PostgreSQL not reachable at {make_url(base).host}:5432: {exc!r}")
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        await _pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def running_stack(
    dt: DevTenantHandle, tmp: Path, database_url: str | None = None, **overrides: Any
) -> AsyncIterator[Stack]:
    """The Calendar Service app (all three locks) on `database_url` (default SQLite in `tmp`)."""
    settings = make_settings(dt, tmp)
    if database_url:
        overrides["database_url"] = database_url
    settings = dataclasses.replace(settings, **overrides)
    create_keyring(settings.key_file)
    async with open_runtime(settings) as rt:
        await onboard(rt, dt)
        app = build_web_app(rt)
        assert isinstance(app, web.Application)
        async with TestClient(TestServer(app)) as client:
            yield Stack(client, dt, rt, settings, io.StringIO(), tmp / "openslot.db")


def faults(dt: DevTenantHandle, **plan: Any) -> None:
    """Set devtenant's Graph fault plan (PUT /_devtenant/faults)."""
    resp = dt.session().put(f"{dt.base_url}/_devtenant/faults", json=plan, timeout=10)
    resp.raise_for_status()


def organizer_events(dt: DevTenantHandle, address: str) -> list[dict[str, Any]]:
    """The raw, not cancelled events in a mailbox (devtenant's store)."""
    found = dt.session().get(f"{dt.base_url}/_devtenant/mailboxes/{address}/events", timeout=10).json()
    events = found.get("value", found) if isinstance(found, dict) else found
    return [e for e in events if not e.get("isCancelled")]
