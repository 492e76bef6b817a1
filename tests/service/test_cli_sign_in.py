"""`slots` sign-in with no terminal (issue 15): a clear message, never EOFError from `input()`."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from calendar_backend.cli import CliError
from calendar_backend.cli_slots import CLI_REDIRECT_URI, _user_token
from calendar_backend.tokens import AppCredential
from tests.devtenant.fixtures import SAMPLE_TENANT, DevTenantHandle
from tests.service.conftest import _tenant_server, make_settings

ALEX = "alexw@contoso.example"


def _doc_without_cli_redirect() -> dict[str, object]:
    doc = json.loads(Path(SAMPLE_TENANT).read_text(encoding="utf-8"))
    app = doc["applications"][0]
    app["redirectUris"] = [u for u in app["redirectUris"] if u != CLI_REDIRECT_URI]
    return dict(doc)


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[DevTenantHandle]:
    """The sample tenant whose app lacks the CLI redirect URI (the old devtenant README example)."""
    yield from _tenant_server(_doc_without_cli_redirect(), tmp_path)


def test_sign_in_that_needs_a_browser_fails_clearly_without_a_terminal(
    tenant: DevTenantHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """devtenant cannot redirect back silently, and stdin is no terminal."""
    app = tenant.tenant.applications()[0]
    settings = make_settings(tenant, tmp_path)
    credential = AppCredential(str(app["appId"]), str(app["passwordCredentials"][0]["secretText"]))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(CliError) as raised:
        _user_token(settings, tenant.tenant_id, credential, ALEX)
    message = f"{raised.value.error} {raised.value.hint}"
    assert CLI_REDIRECT_URI in message
    assert f"api://botid-{app['appId']}" in message
    assert "no terminal" in message
