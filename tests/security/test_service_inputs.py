"""Calendar Service bad input beyond schemathesis (security.md §7 #17, #29): nesting bombs, wrong content
types, huge headers and CR/LF injection give a 4xx and never reach a log line unescaped."""

from __future__ import annotations

import pytest

from tests.service.conftest import Stack, calendar_stack

__all__ = ["calendar_stack"]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"interviewers":' + b"[" * 20_000 + b"]" * 20_000 + b"}",
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    ],
    ids=["array_bomb", "nested_field", "object_bomb"],
)
async def test_nesting_bombs_are_4xx(calendar_stack: Stack, body: bytes) -> None:
    headers = {"Authorization": f"Bearer {calendar_stack.token()}", "Content-Type": "application/json"}
    resp = await calendar_stack.client.post("/v1/slots/find", data=body, headers=headers)
    assert 400 <= resp.status < 500
    assert (await resp.json())["error"] in ("invalid_request", "payload_too_large")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
async def test_wrong_content_types_are_4xx(calendar_stack: Stack, content_type: str) -> None:
    headers = {"Authorization": f"Bearer {calendar_stack.token()}", "Content-Type": content_type}
    resp = await calendar_stack.client.post("/v1/slots/find", data=b"interviewers=a", headers=headers)
    assert 400 <= resp.status < 500


async def test_oversized_bearer_and_garbage_request_id_are_4xx(calendar_stack: Stack) -> None:
    resp = await calendar_stack.client.post(
        "/v1/slots/find", json={}, headers={"Authorization": "Bearer " + "A" * 20_000}
    )
    assert 400 <= resp.status < 500  # aiohttp's header limit (400) or lock 1 (401)
    resp = await calendar_stack.client.post(
        "/v1/slots/find",
        json={},
        headers={"Authorization": "Bearer " + "A" * 8000, "x-request-id": "x" * 500},
    )
    assert resp.status == 401
    assert len(resp.headers["x-request-id"]) <= 64


async def test_crlf_in_path_and_ids_never_forges_a_log_line(calendar_stack: Stack) -> None:
    token = calendar_stack.token()
    resp = await calendar_stack.client.post(
        "/v1/interviews/abc%0D%0AFORGED-LINE%20ok/cancel",
        json={},
        headers={"Authorization": f"Bearer {token}", "x-request-id": "a%0d%0aFORGED-LINE"},
    )
    assert 400 <= resp.status < 500
    resp = await calendar_stack.client.post(
        "/v1/slots/find%0AFORGED-LINE", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status in (404, 405)
    lines = calendar_stack.log.getvalue().splitlines()
    assert not any(line.startswith("FORGED-LINE") for line in lines)
