"""A real devtenant server for tests: HTTPS on 127.0.0.1, random port, own event loop in a thread.

Reuse from any test package:

    from tests.devtenant.fixtures import devtenant_server  # noqa: F401  (session-scoped fixture)

`DevTenantHandle` gives `base_url`, `ca_path`, `tenant` (the live `DevTenant`), `issuer`,
`mint_user_token(upn, ...)`, `session()` (a `requests.Session` trusting the CA) and `reset()`.
Tests that change tenant state use the `devtenant` fixture, which resets the tenant afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from devtenant.app import serve_in_thread
from devtenant.control import mint_user_token
from devtenant.entra import TokenIssuer
from devtenant.tenant import DevTenant, load_tenant

SAMPLE_TENANT = Path(__file__).resolve().parents[2] / "devtenant" / "tenants" / "sample.json"


@dataclass
class DevTenantHandle:
    """A running devtenant server."""

    base_url: str
    ca_path: Path
    tenant: DevTenant
    issuer: TokenIssuer
    _loop: asyncio.AbstractEventLoop = field(repr=False)

    @property
    def tenant_id(self) -> str:
        return self.tenant.tenant_id

    def mint_user_token(
        self,
        upn: str,
        *,
        audience: str | None = None,
        scp: str | None = None,
        expires_in: int | None = None,
    ) -> str:
        """A Teams-SSO-like user token (default aud = the OpenSlot app, scp access_as_user)."""
        return mint_user_token(self.issuer, upn, audience=audience, scp=scp, expires_in=expires_in)

    def session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides `verify`
        s.verify = str(self.ca_path)
        return s

    def reset(self) -> None:
        """Restore the tenant as loaded (POST /_devtenant/reset)."""
        self.session().post(f"{self.base_url}/_devtenant/reset", timeout=10).raise_for_status()


def start_devtenant(tenant: DevTenant, data_dir: Path) -> tuple[DevTenantHandle, Any]:
    """Start a server in a daemon thread; returns the handle and a `stop()` callable."""
    server = serve_in_thread(tenant, data_dir)
    handle = DevTenantHandle(server.base_url, server.ca_path, tenant, server.issuer, server.loop)
    return handle, server.stop


@pytest.fixture(scope="session")
def devtenant_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTenantHandle]:
    """devtenant serving the sample tenant over HTTPS on a random loopback port (session-wide)."""
    data_dir = tmp_path_factory.mktemp("devtenant")
    handle, stop = start_devtenant(load_tenant(SAMPLE_TENANT), data_dir)
    try:
        yield handle
    finally:
        stop()


@pytest.fixture
def devtenant(devtenant_server: DevTenantHandle) -> Iterator[DevTenantHandle]:
    """The session server, reset to the loaded tenant after the test."""
    yield devtenant_server
    devtenant_server.reset()
