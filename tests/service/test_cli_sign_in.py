"""`slots` sign-in with no terminal (issue 15): a clear message, never EOFError from `input()`."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from calendar_backend.cli_slots import CLI_REDIRECT_URI, _user_token
from calendar_backend.tokens import AppCredential
from tests.devtenant.fixtures import SAMPLE_TENANT
from tests.service.conftest import _tenant_server, make_settings

ALEX = "alexw@contoso.example"


def test_sign_in_that_needs_a_browser_fails_clearly_without_a_terminal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tenant file whose app lacks the CLI redirect URI (the old devtenant README example):
    devtenant cannot redirect back silently, and stdin is no terminal."""
    doc = json.loads(Path(SAMPLE_TENANT).read_text(encoding="utf-8"))
    app = doc["applications"][0]
    app["redirectUris"] = [u for u in app["redirectUris"] if u != CLI_REDIRECT_URI]
    server = _tenant_server(doc, tmp_path)
    handle = next(server)
    try:
        settings = make_settings(handle, tmp_path)
        credential = AppCredential(app["appId"], app["passwordCredentials"][0]["secretText"])
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        with pytest.raises(SystemExit) as raised:
            _user_token(settings, handle.tenant_id, credential, ALEX)
    finally:
        server.close()
    message = str(raised.value.code)
    assert CLI_REDIRECT_URI in message
    assert f"api://botid-{app['appId']}" in message
    assert "no terminal" in message
