"""The three locks: every failing combination is refused uniformly, with no Graph call at all.

security.md requirements 1-5: forged and wrong tokens (alg none, HS256 with the public key, wrong audience,
a Graph-audience token, v1 tokens, other tenant, unconsented tenant, expired, future nbf, missing scope,
unknown kid), missing or undecryptable credentials, malformed payloads.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from calendar_backend import storage
from calendar_backend.contract import format_time
from tests.service.conftest import ALEX, Stack


def _claims(stack: Stack) -> dict[str, Any]:
    return jwt.decode(stack.token(), options={"verify_signature": False})


def _signed(stack: Stack, claims: dict[str, Any]) -> str:
    return stack.devtenant.issuer.keys.mint(claims)


def _body(stack: Stack) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=7)
    return {
        "interviewers": ["meganb@contoso.example"],
        "duration_min": 30,
        "start": format_time(start),
        "end": format_time(start + timedelta(days=2)),
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_tokens(stack: Stack) -> dict[str, str]:
    base = _claims(stack)
    now = int(datetime.now(UTC).timestamp())
    later = now + 2  # whole seconds: round up so "+301 s" is never 300.x s at check time
    other_tid = str(uuid.uuid4())
    public_pem = stack.devtenant.issuer.keys.current.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "none", "typ": "JWT", "kid": stack.devtenant.issuer.keys.current.kid}
    unsigned = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(base).encode())}."
    hs_header = {"alg": "HS256", "typ": "JWT", "kid": stack.devtenant.issuer.keys.current.kid}
    hs_signing = f"{_b64(json.dumps(hs_header).encode())}.{_b64(json.dumps(base).encode())}"
    import hashlib
    import hmac

    hs = hmac.new(public_pem, hs_signing.encode(), hashlib.sha256).digest()
    return {
        "alg_none": unsigned,
        "hs256_with_public_key": f"{hs_signing}.{_b64(hs)}",
        "wrong_audience": _signed(stack, {**base, "aud": str(uuid.uuid4())}),
        "graph_audience": _signed(stack, {**base, "aud": "https://graph.microsoft.com"}),
        "version_1": _signed(stack, {**base, "ver": "1.0"}),
        "expired_301s": _signed(stack, {**base, "exp": now - 301, "iat": now - 4000, "nbf": now - 4000}),
        "nbf_future_301s": _signed(stack, {**base, "nbf": later + 301}),
        "iss_tid_mismatch": _signed(stack, {**base, "tid": other_tid}),
        "missing_scope": _signed(stack, {**base, "scp": "User.Read"}),
        "bad_signature": stack.token()[:-6]
        + ("AAAAAA" if not stack.token().endswith("AAAAAA") else "BBBBBB"),
        "unknown_kid": jwt.encode(
            base,
            stack.devtenant.issuer.keys.current.private_key,
            algorithm="RS256",
            headers={"kid": "not-a-known-kid"},
        ),
        "garbage": "not.a.jwt",
    }


@pytest.mark.parametrize(
    "case",
    [
        "alg_none",
        "hs256_with_public_key",
        "wrong_audience",
        "graph_audience",
        "version_1",
        "expired_301s",
        "nbf_future_301s",
        "iss_tid_mismatch",
        "missing_scope",
        "bad_signature",
        "unknown_kid",
        "garbage",
    ],
)
async def test_forged_or_wrong_tokens_are_refused_without_touching_graph(
    calendar_stack: Stack, case: str
) -> None:
    stack = calendar_stack
    token = forged_tokens(stack)[case]
    before = stack.graph_requests()
    status, doc = await stack.post("/v1/slots/find", _body(stack), token)
    assert status == 401, (case, doc)
    assert doc == {"error": "unauthorized", "message": "Not authorised."}
    assert stack.graph_requests() == before


async def test_no_token_is_refused(calendar_stack: Stack) -> None:
    status, doc = await calendar_stack.post("/v1/slots/find", _body(calendar_stack))
    assert status == 401
    assert doc["error"] == "unauthorized"


async def test_valid_token_from_an_unconsented_tenant_is_forbidden(calendar_stack: Stack) -> None:
    stack = calendar_stack
    async with stack.runtime.store.transaction() as tx:
        assert await storage.delete_tenant(tx, stack.devtenant.tenant_id)
    before = stack.graph_requests()
    status, doc = await stack.post("/v1/slots/find", _body(stack), stack.token())
    assert status == 403, doc
    assert stack.graph_requests() == before


async def test_an_undecryptable_credential_fails_closed(calendar_stack: Stack) -> None:
    stack = calendar_stack
    cipher = stack.runtime.cipher
    from calendar_backend.sealing import tenant_credential_aad

    # A credential sealed for another tenant, copied into this tenant's row, must not open.
    foreign = cipher.encrypt(
        b'{"client_id":"x","client_secret":"y"}', aad=tenant_credential_aad(str(uuid.uuid4()))
    )
    async with stack.runtime.store.transaction() as tx:
        await storage.put_tenant(tx, stack.devtenant.tenant_id, foreign, cipher.key_id_of(foreign), [])
    before = stack.graph_requests()
    status, doc = await stack.post("/v1/slots/find", _body(stack), stack.token())
    assert status == 503  # uniform lock-2 answer, never a 500
    assert doc["error"] == "unavailable"
    assert set(doc) == {"error", "message"}
    assert stack.graph_requests() == before


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: {**b, "extra": 1},
        lambda b: {k: v for k, v in b.items() if k != "duration_min"},
        lambda b: {**b, "duration_min": 100000},
        lambda b: {**b, "duration_min": "30"},
        lambda b: {**b, "interviewers": []},
        lambda b: {**b, "interviewers": ["not-an-email"]},
        lambda b: {**b, "interviewers": ["a@contoso.example"] * 2},
        lambda b: {**b, "start": "2026-12-01 09:00"},
        lambda b: {**b, "interviewers": [f"u{i}@contoso.example" for i in range(61)]},
    ],
    ids=[
        "extra_field",
        "missing_field",
        "too_long",
        "wrong_type",
        "no_interviewers",
        "bad_email",
        "duplicates",
        "naive_time",
        "too_many",
    ],
)
async def test_malformed_payloads_are_refused_without_touching_graph(
    calendar_stack: Stack, mutate: Any
) -> None:
    stack = calendar_stack
    before = stack.graph_requests()
    status, doc = await stack.post("/v1/slots/find", mutate(_body(stack)), stack.token())
    assert status == 400, doc
    assert doc["error"] == "invalid_request"
    assert stack.graph_requests() == before


async def test_non_json_and_oversized_bodies_are_400(calendar_stack: Stack) -> None:
    stack = calendar_stack
    headers = {"Authorization": f"Bearer {stack.token()}"}
    resp = await stack.client.post("/v1/slots/find", data=b"{not json", headers=headers)
    assert resp.status == 400
    resp = await stack.client.post("/v1/slots/find", data=b"[" + b"1," * 70000 + b"1]", headers=headers)
    assert resp.status in (400, 413)


async def test_archived_user_is_refused_even_with_a_valid_token(calendar_stack: Stack) -> None:
    stack = calendar_stack
    claims = _claims(stack)
    async with stack.runtime.store.transaction() as tx:
        await storage.archive_user(tx, stack.devtenant.tenant_id, claims["oid"], datetime.now(UTC))
    before = stack.graph_requests()
    status, _ = await stack.post("/v1/slots/find", _body(stack), stack.token(ALEX))
    assert status == 403
    assert stack.graph_requests() == before


async def test_openapi_document_lists_every_operation(calendar_stack: Stack) -> None:
    status, doc = await calendar_stack.get("/v1/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.")
    assert "/v1/slots/find" in doc["paths"]
    body = doc["paths"]["/v1/slots/find"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["additionalProperties"] is False
