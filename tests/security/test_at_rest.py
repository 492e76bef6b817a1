"""Secrets at rest (security.md §7 #11, #17): after onboarding, slot searches and a booking, the database
files hold no key material (KEK or signing key, raw, hex or base64), no client secret, no user token and no
calendar canary; the key file lives outside the database directory."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from calendar_backend.contract import format_time
from calendar_backend.keyring import load_keyring
from tests.security.secret_scan import scan_bytes
from tests.service.conftest import Stack, calendar_stack

__all__ = ["calendar_stack"]


def _encodings(key: bytes) -> list[bytes]:
    return [key, key.hex().encode(), base64.b64encode(key), base64.urlsafe_b64encode(key).rstrip(b"=")]


async def test_database_holds_no_key_material_tokens_or_calendar_content(calendar_stack: Stack) -> None:
    stack = calendar_stack
    token = stack.token()
    start = (datetime.now(UTC) + timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    body = {
        "interviewers": ["meganb@contoso.example", "adelev@contoso.example"],
        "duration_min": 30,
        "start": format_time(start),
        "end": format_time(start + timedelta(days=5)),
    }
    status, found = await stack.post("/v1/slots/find", body, token)
    assert status == 200
    assert found["slots"], found
    slot = found["slots"][0]
    status, _ = await stack.post(
        "/v1/interviews",
        {
            "candidate": {"name": "Dana Smith", "email": "dana@example.com"},
            "interviewers": body["interviewers"],
            "start": slot["start"],
            "end": slot["end"],
            "idempotency_key": "sec-at-rest-0001-key",
        },
        token,
    )
    assert status == 201
    ring = load_keyring(stack.settings.key_file)
    keys = [e.key for e in ring.entries.values()] + list(ring.signing.values())
    files = [p for p in stack.db_path.parent.iterdir() if p.name.startswith(stack.db_path.name)]
    assert files
    for path in files:
        data = path.read_bytes()
        assert scan_bytes(data, str(path)) == []
        assert token.encode() not in data
        for key in keys:
            assert not any(enc in data for enc in _encodings(key)), path.name
    assert stack.settings.key_file.parent != stack.db_path.parent
