"""An in-process benchmark stack: devtenant (HTTPS, own thread) + the real Calendar Service.

This is also the tests' one harness for running the Calendar Service against devtenant
(`service_settings`, `onboard`, `calendar_app`; tests/service/conftest.py adds test defaults).

devtenant serves the sample tenant grown to ``BENCH_INTERVIEWERS`` schedulable people (clones of
the sample's staff, same calendars and working hours, new ids and addresses). The Calendar Service
runs in the caller's event loop with SQLite in a temporary directory, all three locks on, bound to
127.0.0.1 on a random port.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from calendar_backend import storage
from calendar_backend.keyring import create_keyring
from calendar_backend.runtime import Runtime, build_web_app, open_runtime
from calendar_backend.sealing import tenant_credential_aad
from calendar_backend.settings import BackendSettings
from calendar_backend.tokens import AppCredential
from devtenant.app import bind_socket, serve_in_thread
from devtenant.control import mint_user_token
from devtenant.entra import TokenIssuer
from devtenant.tenant import DevTenant, tenant_from_dict

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "devtenant" / "tenants" / "sample.json"
BENCH_INTERVIEWERS = 60
ORGANIZER = "alexw@contoso.example"
GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_SCOPES = "Calendars.ReadWrite MailboxSettings.Read User.ReadBasic.All"


def grown_tenant(people: int = BENCH_INTERVIEWERS) -> tuple[DevTenant, list[str]]:
    """The sample tenant plus clones so that ``people`` interviewers exist; returns their UPNs."""
    raw: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    staff = [
        u
        for u in raw["users"]
        if u.get("hasMailbox", True) and u.get("accountEnabled", True) and u["userPrincipalName"] != ORGANIZER
    ]
    group = next(g for g in raw["groups"] if g["mail"].startswith("schedulable@"))
    upns = [u["userPrincipalName"] for u in staff][:people]
    for i in range(people - len(upns)):
        clone = copy.deepcopy(staff[i % len(staff)])
        clone["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"openslot-bench-{i}"))
        clone["userPrincipalName"] = clone["mail"] = f"bench{i}@contoso.example"
        clone["displayName"] = f"Bench Person {i}"
        for event in clone.get("events", []):
            event["id"] = f"{event['id']}-b{i}"
            if event.get("seriesMasterId"):
                event["seriesMasterId"] = f"{event['seriesMasterId']}-b{i}"
        raw["users"].append(clone)
        group["members"].append(clone["id"])
        upns.append(clone["userPrincipalName"])
    return tenant_from_dict(raw), upns


class DevTenantLike(Protocol):
    """What the Calendar Service needs from a running devtenant (thread or child process)."""

    @property
    def base_url(self) -> str: ...
    @property
    def ca_path(self) -> Path: ...
    @property
    def tenant(self) -> DevTenant: ...


@dataclass
class DevTenantThread:
    """devtenant running on its own loop in a daemon thread."""

    base_url: str
    ca_path: Path
    tenant: DevTenant
    issuer: TokenIssuer
    stop: Callable[[], None]

    def user_token(self, upn: str = ORGANIZER) -> str:
        """A Teams-SSO-like token for OpenSlot's own API."""
        return mint_user_token(self.issuer, upn)

    def graph_token(self, upn: str = ORGANIZER) -> str:
        """A delegated Graph token (what OBO would give the Calendar Service)."""
        app_id = str(self.tenant.applications()[0]["appId"])
        return mint_user_token(self.issuer, upn, audience=GRAPH_AUDIENCE, scp=GRAPH_SCOPES, client_id=app_id)


def start_devtenant(tenant: DevTenant, data_dir: Path) -> DevTenantThread:
    """Serve ``tenant`` over HTTPS on a random loopback port until ``stop()``."""
    server = serve_in_thread(tenant, data_dir)
    return DevTenantThread(server.base_url, server.ca_path, tenant, server.issuer, server.stop)


def service_settings(dt: DevTenantLike, tmp: Path, **overrides: Any) -> BackendSettings:
    """Calendar Service settings against ``dt`` with SQLite in ``tmp`` (no minimum notice);
    ``overrides`` replace `BackendSettings` fields."""
    app = dt.tenant.applications()[0]
    fields: dict[str, Any] = {
        "env": "dev",
        "host": "127.0.0.1",
        "port": 0,
        "database_url": f"sqlite+aiosqlite:///{tmp / 'openslot.db'}",
        "key_file": tmp / "keys" / "kek.json",
        "audit_checkpoint_file": tmp / "audit" / "checkpoints.jsonl",
        "authority_host": dt.base_url,
        "graph_base_url": f"{dt.base_url}/v1.0",
        "ca_bundle": dt.ca_path,
        "client_id": str(app["appId"]),
        "default_notice_min": 0,
    }
    return BackendSettings(**{**fields, **overrides})


async def onboard(rt: Runtime, dt: DevTenantLike) -> None:
    """What admin consent leaves behind: the tenant's app credential, sealed, in the store."""
    app = dt.tenant.applications()[0]
    cred = AppCredential(str(app["appId"]), str(app["passwordCredentials"][0]["secretText"]))
    blob = rt.cipher.encrypt(cred.to_bytes(), aad=tenant_credential_aad(dt.tenant.tenant_id))
    async with rt.store.transaction() as tx:
        await storage.put_tenant(tx, dt.tenant.tenant_id, blob, rt.cipher.key_id_of(blob), [])


@asynccontextmanager
async def calendar_app(
    dt: DevTenantLike, settings: BackendSettings
) -> AsyncIterator[tuple[Runtime, web.Application]]:
    """The real Calendar Service (a fresh keyring at ``settings.key_file``, its database migrated)
    onboarded to ``dt``: its runtime and its web app, not yet served."""
    create_keyring(settings.key_file)
    async with open_runtime(settings) as rt:
        await onboard(rt, dt)
        app = build_web_app(rt)
        assert isinstance(app, web.Application)
        yield rt, app


@asynccontextmanager
async def calendar_runtime(
    dt: DevTenantLike, tmp: Path, **overrides: Any
) -> AsyncIterator[tuple[str, Runtime]]:
    """Run the real Calendar Service against ``dt``; yields its base URL and its runtime
    (``overrides``: `BackendSettings` fields, as `service_settings`)."""
    async with calendar_app(dt, service_settings(dt, tmp, **overrides)) as (rt, app):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = bind_socket("127.0.0.1", 0)
        await web.SockSite(runner, sock).start()
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}", rt
        finally:
            await runner.cleanup()


@asynccontextmanager
async def calendar_service(dt: DevTenantLike, tmp: Path, **overrides: Any) -> AsyncIterator[str]:
    """Run the real Calendar Service against ``dt``; yields its base URL (``http://...``)."""
    async with calendar_runtime(dt, tmp, **overrides) as (url, _rt):
        yield url
