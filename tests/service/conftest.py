"""The Calendar Service running for real against devtenant: keyring, SQLite, migrations, HTTP API.

`calendar_stack` gives a `Stack` with an aiohttp test client bound to the real app (all three locks on), the
devtenant handle, the store, and helpers to mint tokens and count Graph requests.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from calendar_backend import storage
from calendar_backend.__main__ import Runtime, build_web_app, open_runtime
from calendar_backend.keyring import create_keyring
from calendar_backend.service import tenant_credential_aad
from calendar_backend.settings import BackendSettings
from calendar_backend.tokens import AppCredential
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401

ALEX = "alexw@contoso.example"


@dataclass
class Stack:
    """A running Calendar Service wired to a running devtenant."""

    client: TestClient[Any, Any]
    devtenant: DevTenantHandle
    runtime: Runtime
    settings: BackendSettings
    log: io.StringIO
    db_path: Path

    @property
    def app_id(self) -> str:
        return str(self.devtenant.tenant.applications()[0]["appId"])

    def token(self, upn: str = ALEX, **kw: Any) -> str:
        return self.devtenant.mint_user_token(upn, **kw)

    def graph_requests(self) -> int:
        return int(self.devtenant.tenant.counters["graph"])

    async def post(self, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.post(path, json=body, headers=headers)
        return resp.status, await resp.json()

    async def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.get(path, headers=headers)
        return resp.status, await resp.json()


def make_settings(dt: DevTenantHandle, tmp: Path) -> BackendSettings:
    app = dt.tenant.applications()[0]
    return BackendSettings(
        env="dev", host="127.0.0.1", port=0,
        database_url=f"sqlite+aiosqlite:///{tmp / 'openslot.db'}",
        key_file=tmp / "keys" / "kek.json", authority_host=dt.base_url,
        graph_base_url=f"{dt.base_url}/v1.0", ca_bundle=dt.ca_path, client_id=str(app["appId"]),
        default_notice_min=0, graph_max_backoff_s=0.05)


async def onboard(rt: Runtime, dt: DevTenantHandle) -> None:
    """What admin consent leaves behind: the tenant's credential, sealed."""
    app = dt.tenant.applications()[0]
    cred = AppCredential(str(app["appId"]), str(app["passwordCredentials"][0]["secretText"]))
    blob = rt.cipher.encrypt(cred.to_bytes(), aad=tenant_credential_aad(dt.tenant_id))
    async with rt.store.transaction() as tx:
        await storage.put_tenant(tx, dt.tenant_id, blob, rt.cipher.key_id_of(blob), [])


@pytest.fixture
async def calendar_stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:  # noqa: F811
    settings = make_settings(devtenant, tmp_path)
    create_keyring(settings.key_file)
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        async with open_runtime(settings) as rt:
            await onboard(rt, devtenant)
            app = build_web_app(rt)
            assert isinstance(app, web.Application)
            async with TestClient(TestServer(app)) as client:
                yield Stack(client, devtenant, rt, settings, captured, tmp_path / "openslot.db")
    finally:
        root.removeHandler(handler)
