"""Key rotation without downtime: add → promote → re-encrypt → retire, with requests served by
"processes" (runtimes) started at each step against the same database and keyring file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from calendar_backend import rotation, storage
from calendar_backend.crypto import CredentialCipher
from calendar_backend.errors import DecryptionError
from calendar_backend.keyring import KeyringError, load_keyring
from calendar_backend.runtime import build_web_app, open_runtime
from calendar_backend.settings import BackendSettings
from tests.admin.conftest import Admin

MEGAN = "meganb@contoso.example"
ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def _process(settings: BackendSettings) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A Calendar Service process started now (it loads the keyring file as it is now)."""
    async with open_runtime(settings) as rt:
        app = build_web_app(rt)
        assert isinstance(app, web.Application)
        async with TestClient(TestServer(app)) as client:
            yield client


async def _find_ok(admin: Admin, client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.post(
        "/v1/slots/find",
        json=admin.query([MEGAN]),
        headers={"Authorization": f"Bearer {admin.stack.token()}"},
    )
    assert resp.status == 200, await resp.text()


async def _blobs(admin: Admin) -> list[storage.EncryptedBlob]:
    async with admin.stack.runtime.store.transaction() as tx:
        return [b async for b in storage.iter_encrypted(tx)]


async def test_rotation_runbook_without_downtime(admin: Admin) -> None:
    settings, store = admin.stack.settings, admin.stack.runtime.store
    key_file = settings.key_file
    old = load_keyring(key_file).primary_id
    await _find_ok(admin, admin.stack.client)  # a token cache now exists, sealed under `old`
    before = await _blobs(admin)
    assert {b.kind for b in before} == {storage.BlobKind.TENANT_CREDENTIAL, storage.BlobKind.TOKEN_CACHE}
    assert (await rotation.status(store, key_file)).envelopes_by_key == {old: len(before)}

    new = rotation.add(key_file)  # step 1; the running process keeps serving
    await _find_ok(admin, admin.stack.client)
    async with _process(settings) as second:  # rolling restart: this one knows both keys
        await _find_ok(admin, second)
    rotation.promote(key_file, new)  # step 2, then another rolling restart
    async with _process(settings) as third:
        await _find_ok(admin, third)
        report = await rotation.reencrypt(store, key_file)  # step 3, while serving
        assert report.unknown == 0
        # The tenant credential at least; the token cache may already have been re-sealed
        # under the new primary by the third process's own request.
        assert 1 <= report.rewritten + report.raced <= len(before)
        await _find_ok(admin, third)
        assert (await rotation.status(store, key_file)).envelopes_by_key == {new: len(before)}
        await rotation.retire(store, key_file, old)  # step 4
        await _find_ok(admin, third)  # never needed the old key again
        async with _process(settings) as fourth:
            await _find_ok(admin, fourth)
    status = await rotation.status(store, key_file)
    assert (status.primary_id, status.retired_ids) == (new, (old,))
    after = CredentialCipher(load_keyring(key_file))
    assert rotation.verify_all_open(after, await _blobs(admin)) == len(before)
    assert rotation.verify_all_open(after, before) == 0  # old envelopes no longer open
    with pytest.raises(DecryptionError):
        after.decrypt(before[0].blob, aad=rotation.default_aad(before[0]))  # type: ignore[arg-type]
    secret = str(admin.app_registration()["passwordCredentials"][0]["secretText"]).encode()
    for path in admin.stack.db_path.parent.glob("openslot.db*"):
        assert secret not in path.read_bytes()  # no plaintext was ever written


async def test_retiring_a_key_still_in_use_is_refused(admin: Admin) -> None:
    settings, store = admin.stack.settings, admin.stack.runtime.store
    key_file = settings.key_file
    old = load_keyring(key_file).primary_id
    new = rotation.add(key_file)
    async with _process(settings) as stale:  # started after `add`, never restarted after promote
        rotation.promote(key_file, new)
        await rotation.reencrypt(store, key_file)
        await _find_ok(admin, stale)  # it still seals the new token cache under the old primary
    with pytest.raises(rotation.RotationError, match="reencrypt"):
        await rotation.retire(store, key_file, old)
    with pytest.raises(KeyringError, match="primary"):
        await rotation.retire(store, key_file, new)
    assert load_keyring(key_file).active_ids == tuple(sorted((old, new)))
    again = await rotation.reencrypt(store, key_file)  # after the restart, re-run; now safe
    assert again == rotation.ReencryptReport(1, 0, 0), again
    await rotation.retire(store, key_file, old)
    assert load_keyring(key_file).retired_ids == (old,)


async def test_keys_cli_walks_the_runbook(admin: Admin) -> None:
    s = admin.stack.settings
    env = {
        **os.environ,
        "OPENSLOT_DATABASE_URL": s.database_url,
        "OPENSLOT_KEY_FILE": str(s.key_file),
        "OPENSLOT_CLIENT_ID": s.client_id,
    }

    def cli(*args: str) -> dict[str, object]:
        proc = subprocess.run(
            [sys.executable, "-m", "calendar_backend", "keys", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads(proc.stdout.splitlines()[-1]))

    old = load_keyring(s.key_file).primary_id
    new = cli("add")["added"]
    assert isinstance(new, int)
    cli("promote", str(new))
    status = cli("reencrypt")
    assert status["envelopes_by_key"] == {str(new): 1}  # the tenant credential
    status = cli("retire", str(old))
    assert status["retired"] == [old]
    assert status["primary"] == new
