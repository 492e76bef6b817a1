"""security.md requirement 4: every one of the 2^3 - 1 failing combinations of the three locks.

Locks: (1) the user token, (2) the tenant's sealed credential, (3) the payload schema. For each failing
combination the answer is a uniform error, no Graph request is made, and exactly one audit row records the
refusal with a reason code. Lock 1 is checked before the body is read and lock 3 before the credential, so
the first failing lock in that order decides the answer.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from calendar_backend import storage
from calendar_backend.contract import format_time
from calendar_backend.sealing import tenant_credential_aad
from tests.service.conftest import Stack

COMBINATIONS = [c for c in itertools.product([True, False], repeat=3) if not all(c)]


def _body(valid: bool) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=7)
    body: dict[str, Any] = {
        "interviewers": ["meganb@contoso.example"],
        "duration_min": 30,
        "start": format_time(start),
        "end": format_time(start + timedelta(days=2)),
    }
    return body if valid else {**body, "unexpected": True}


async def _break_credential(stack: Stack) -> None:
    """Seal the credential for another tenant and store it in this tenant's row."""
    cipher = stack.runtime.cipher
    foreign = cipher.encrypt(
        b'{"client_id":"x","client_secret":"y"}', aad=tenant_credential_aad(str(uuid.uuid4()))
    )
    async with stack.runtime.store.transaction() as tx:
        await storage.put_tenant(tx, stack.devtenant.tenant_id, foreign, cipher.key_id_of(foreign), [])


async def _audit_rows(stack: Stack) -> list[tuple[str, str]]:
    async with stack.runtime.store.transaction() as tx:
        rows = (await tx.execute(text("SELECT operation, result FROM audit_log ORDER BY seq"))).all()
    return [(str(r[0]), str(r[1])) for r in rows]


@pytest.mark.parametrize(
    ("token_ok", "credential_ok", "payload_ok"),
    COMBINATIONS,
    ids=[
        f"token={'ok' if t else 'bad'}-cred={'ok' if c else 'bad'}-payload={'ok' if p else 'bad'}"
        for t, c, p in COMBINATIONS
    ],
)
async def test_each_failing_combination_is_refused_uniformly_and_audited_once(
    calendar_stack: Stack, token_ok: bool, credential_ok: bool, payload_ok: bool
) -> None:
    stack = calendar_stack
    if not credential_ok:
        await _break_credential(stack)
    token = stack.token() if token_ok else stack.token(audience=str(uuid.uuid4()))
    before_rows = await _audit_rows(stack)
    before_graph = stack.graph_requests()
    status, doc = await stack.post("/v1/slots/find", _body(payload_ok), token)

    expected = (
        (401, "unauthorized")
        if not token_ok
        else ((400, "invalid_request") if not payload_ok else (503, "unavailable"))
    )
    assert (status, doc["error"]) == expected
    assert set(doc) <= {"error", "message", "field"}  # no detail beyond a stable code
    assert stack.graph_requests() == before_graph
    new_rows = (await _audit_rows(stack))[len(before_rows) :]
    assert len(new_rows) == 1, new_rows
    assert new_rows[0][1].startswith("denied:")
