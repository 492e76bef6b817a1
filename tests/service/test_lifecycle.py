"""The per-user token cache and what happens when a user or the tenant's consent goes away.

Runs the real service (`calendar_stack`) against devtenant: the MSAL cache is sealed per user and
deleted on disconnect (with an audit row); a disabled user and a revoked admin consent both end in
an error answer, never in calendar data or an empty slot list presented as success.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from calendar_backend import storage
from calendar_backend.errors import DecryptionError
from calendar_backend.sealing import tenant_credential_aad, token_cache_aad
from tests.devtenant.fixtures import DevTenantHandle
from tests.service.conftest import ALEX, Stack, user, week_query


def _alex_oid(stack: Stack) -> str:
    found = stack.devtenant.tenant.find_user(ALEX)
    assert found is not None
    return str(found["id"])


async def _cache_row(stack: Stack, oid: str) -> tuple[bytes, int] | None:
    async with stack.runtime.store.transaction() as tx:
        return await storage.get_token_cache(tx, stack.devtenant.tenant_id, oid)


def _control(dt: DevTenantHandle, path: str) -> None:
    dt.session().post(f"{dt.base_url}/_devtenant/{path}", timeout=10).raise_for_status()


def _audit_rows(stack: Stack, operation: str) -> list[tuple[str, str]]:
    with sqlite3.connect(stack.db_path) as db:
        return list(
            db.execute(
                "SELECT actor_oid, result FROM audit_log WHERE operation = ? ORDER BY seq", (operation,)
            )
        )


def _assert_error_without_data(status: int, doc: Any) -> None:
    assert status >= 400, doc
    assert set(doc) <= {"error", "message", "retry_after_s", "field"}, doc
    assert "slots" not in doc
    assert "people" not in doc


async def test_the_token_cache_is_sealed_to_its_user(calendar_stack: Stack) -> None:
    stack = calendar_stack
    oid = _alex_oid(stack)
    assert await _cache_row(stack, oid) is None
    status, doc = await stack.post(
        "/v1/slots/find", week_query([user(stack, "Megan Bowen")["mail"]]), stack.token()
    )
    assert status == 200, doc
    found = await _cache_row(stack, oid)
    assert found is not None
    blob, _key_id = found
    for plaintext in (b"refresh_token", b"RefreshToken", b"secret", b"access_token", b"AccessToken"):
        assert plaintext not in blob, plaintext
    cipher: Any = stack.runtime.cipher
    opened = cipher.decrypt(blob, aad=token_cache_aad(stack.devtenant.tenant_id, oid))
    assert b"RefreshToken" in opened  # it really is the MSAL cache, holding the OBO refresh token
    wrong = [
        token_cache_aad(stack.devtenant.tenant_id, "00000000-0000-0000-0000-000000000000"),
        token_cache_aad("11111111-1111-1111-1111-111111111111", oid),
        tenant_credential_aad(stack.devtenant.tenant_id),
    ]
    for aad in wrong:
        with pytest.raises(DecryptionError):
            cipher.decrypt(blob, aad=aad)


async def test_disconnect_deletes_the_cache_and_is_audited(calendar_stack: Stack) -> None:
    stack = calendar_stack
    oid = _alex_oid(stack)
    status, _ = await stack.post(
        "/v1/slots/find", week_query([user(stack, "Megan Bowen")["mail"]]), stack.token()
    )
    assert status == 200
    assert await _cache_row(stack, oid) is not None
    status, doc = await stack.post("/v1/me/disconnect", {}, stack.token())
    assert status == 200, doc
    assert await _cache_row(stack, oid) is None
    assert _audit_rows(stack, "token.delete") == [(oid, "ok")]
    # Disconnecting again is harmless and still audited (nothing was there to delete).
    status, _ = await stack.post("/v1/me/disconnect", {}, stack.token())
    assert status == 200
    assert _audit_rows(stack, "token.delete") == [(oid, "ok"), (oid, "none")]


async def test_a_disabled_user_is_refused_without_calendar_data(calendar_stack: Stack) -> None:
    stack = calendar_stack
    body = week_query([user(stack, "Megan Bowen")["mail"]])
    status, _ = await stack.post("/v1/slots/find", body, stack.token())
    assert status == 200  # the user had a working, cached sign-in
    _control(stack.devtenant, f"users/{_alex_oid(stack)}/disable")
    before = stack.devtenant.tenant.counters["graph.getSchedule"]
    status, doc = await stack.post("/v1/slots/find", body, stack.token())  # a fresh Teams token
    assert status == 403, doc
    _assert_error_without_data(status, doc)
    assert stack.devtenant.tenant.counters["graph.getSchedule"] == before


async def test_a_disabled_user_without_a_cache_is_refused(calendar_stack: Stack) -> None:
    stack = calendar_stack
    _control(stack.devtenant, f"users/{_alex_oid(stack)}/disable")
    before = stack.devtenant.tenant.counters["graph.getSchedule"]
    status, doc = await stack.post(
        "/v1/slots/find", week_query([user(stack, "Megan Bowen")["mail"]]), stack.token()
    )
    assert status == 403, doc
    _assert_error_without_data(status, doc)
    assert stack.devtenant.tenant.counters["graph.getSchedule"] == before


async def test_revoked_admin_consent_is_an_error_not_an_empty_answer(calendar_stack: Stack) -> None:
    stack = calendar_stack
    body = week_query([user(stack, "Megan Bowen")["mail"], user(stack, "Adele Vance")["mail"]])
    status, doc = await stack.post("/v1/slots/find", body, stack.token())
    assert status == 200
    assert doc["slots"]
    _control(stack.devtenant, f"apps/{stack.app_id}/consent/revoke")
    status, doc = await stack.post("/v1/slots/find", body, stack.token())
    _assert_error_without_data(status, doc)
    assert status in {401, 403}, doc
