"""`python -m devtenant` end to end: TLS files, ready line, restart persistence, controls."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import jwt
import pytest

from devtenant.tls import ensure_tls_files
from tests.devtenant.fixtures import SAMPLE_TENANT, DevTenantHandle

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def _run(data_dir: Path, *extra: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtenant",
            "--tenant",
            str(SAMPLE_TENANT),
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = ""
        for line in proc.stdout:
            if line.startswith("devtenant ready at "):
                break
        assert line.startswith("devtenant ready at "), proc.stderr.read() if proc.stderr else ""
        yield line.removeprefix("devtenant ready at ").strip()
    finally:
        proc.terminate()
        proc.wait(10)


def _get(url: str, ca: Path, data: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    ctx = ssl.create_default_context(cafile=str(ca))
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(
        url,
        data=body,
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, {}


def test_tls_files_are_generated_once_with_private_keys_0600(tmp_path: Path) -> None:
    first = ensure_tls_files(tmp_path)
    ca_bytes = first.ca_path.read_bytes()
    assert (first.key_path.stat().st_mode & 0o777) == 0o600
    assert ensure_tls_files(tmp_path).ca_path.read_bytes() == ca_bytes


def test_cli_serves_https_and_tokens_survive_restart(tmp_path: Path) -> None:
    tid = json.loads(SAMPLE_TENANT.read_text())["tenant"]["id"]
    with _run(tmp_path) as base:
        assert base.startswith("https://127.0.0.1:")
        ca = tmp_path / "ca.pem"
        status, meta = _get(f"{base}/{tid}/v2.0/.well-known/openid-configuration", ca)
        assert status == 200
        assert meta["issuer"] == f"{base}/{tid}/v2.0"
        _, minted = _get(f"{base}/_devtenant/tokens/user", ca, {"upn": "alexw@contoso.example"})
        token = str(minted["access_token"])
    assert (tmp_path / "signing-keys.json").stat().st_mode & 0o777 == 0o600
    with _run(tmp_path) as base2:
        _, jwks = _get(f"{base2}/{tid}/discovery/v2.0/keys", ca)
        kids = [k["kid"] for k in jwks["keys"]]  # type: ignore[attr-defined]
        assert jwt.get_unverified_header(token)["kid"] in kids


def test_cli_without_controls_hides_them(tmp_path: Path) -> None:
    with _run(tmp_path, "--no-controls") as base:
        status, _ = _get(f"{base}/_devtenant/requests", tmp_path / "ca.pem")
        assert status == 404


def test_untrusted_client_is_refused(devtenant_server: DevTenantHandle) -> None:
    ctx = ssl.create_default_context(cafile=None, capath=None, cadata=None)
    ctx.load_default_certs()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(
            f"{devtenant_server.base_url}/common/discovery/v2.0/keys", context=ctx, timeout=10
        )


def test_control_clock_and_faults(devtenant: DevTenantHandle) -> None:
    s = devtenant.session()
    r = s.put(
        f"{devtenant.base_url}/_devtenant/clock",
        json={"now": "2030-01-01T00:00:00+00:00", "freeze": True},
        timeout=10,
    )
    assert r.json()["now"] == "2030-01-01T00:00:00Z"
    token = devtenant.mint_user_token("alexw@contoso.example")
    assert jwt.decode(token, options={"verify_signature": False})["iat"] == 1893456000
    faults = s.put(
        f"{devtenant.base_url}/_devtenant/faults",
        json={"throttle_rate": 0.5, "retry_after_s": 2},
        timeout=10,
    ).json()
    assert devtenant.tenant.faults.throttle_rate == 0.5
    assert faults["retry_after_s"] == 2
    assert s.put(f"{devtenant.base_url}/_devtenant/faults", json={"bogus": 1}, timeout=10).status_code == 400
    events = s.get(f"{devtenant.base_url}/_devtenant/mailboxes/alexw@contoso.example/events", timeout=10)
    assert events.status_code == 200
    assert isinstance(events.json()["value"], list)
