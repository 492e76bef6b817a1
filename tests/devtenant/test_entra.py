"""Entra ID surface of devtenant, driven by MSAL and PyJWT over real HTTPS."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import msal

from tests.devtenant.fixtures import DevTenantHandle

GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
ENTRA_ERROR_FIELDS = {
    "error",
    "error_description",
    "error_codes",
    "timestamp",
    "trace_id",
    "correlation_id",
}


def _app(dt: DevTenantHandle) -> dict[str, Any]:
    return dt.tenant.applications()[0]


def _cca(
    dt: DevTenantHandle, secret: str | None = None, tenant: str | None = None
) -> msal.ConfidentialClientApplication:
    app = _app(dt)
    return msal.ConfidentialClientApplication(
        app["appId"],
        client_credential=secret or app["passwordCredentials"][0]["secretText"],
        authority=f"{dt.base_url}/{tenant or dt.tenant_id}",
        instance_discovery=False,
        http_client=dt.session(),
    )


def _enabled_user(dt: DevTenantHandle, index: int = 0) -> dict[str, Any]:
    return [u for u in dt.tenant.users() if u.get("accountEnabled", True)][index]


def _verify_via_discovery(dt: DevTenantHandle, token: str, audience: str) -> dict[str, Any]:
    s = dt.session()
    meta = s.get(f"{dt.base_url}/{dt.tenant_id}/v2.0/.well-known/openid-configuration", timeout=10).json()
    jwks = jwt.PyJWKSet.from_dict(s.get(meta["jwks_uri"], timeout=10).json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=meta["issuer"])


def test_discovery_documents_issuer_per_tenant_kind(devtenant: DevTenantHandle) -> None:
    s = dt_session = devtenant.session()
    tid = devtenant.tenant_id
    specific = s.get(f"{devtenant.base_url}/{tid}/v2.0/.well-known/openid-configuration", timeout=10).json()
    common = dt_session.get(
        f"{devtenant.base_url}/common/v2.0/.well-known/openid-configuration", timeout=10
    ).json()
    assert specific["issuer"] == f"{devtenant.base_url}/{tid}/v2.0"
    assert common["issuer"] == f"{devtenant.base_url}/{{tenantid}}/v2.0"
    assert specific["token_endpoint"] == f"{devtenant.base_url}/{tid}/oauth2/v2.0/token"
    assert specific["id_token_signing_alg_values_supported"] == ["RS256"]
    for field in (
        "authorization_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "tenant_region_scope",
    ):
        assert field in specific
    keys = s.get(common["jwks_uri"], timeout=10).json()["keys"]
    assert {"kty", "use", "kid", "x5t", "n", "e", "issuer"} <= set(keys[0])
    assert keys[0]["issuer"] == common["issuer"]


def test_discovery_unknown_tenant_is_entra_error(devtenant: DevTenantHandle) -> None:
    r = devtenant.session().get(
        f"{devtenant.base_url}/not-a-tenant/v2.0/.well-known/openid-configuration", timeout=10
    )
    assert r.status_code == 400
    body = r.json()
    assert set(body) >= ENTRA_ERROR_FIELDS
    assert body["error_codes"] == [90002]


def test_client_credentials_yields_consented_roles(devtenant: DevTenantHandle) -> None:
    result = _cca(devtenant).acquire_token_for_client([GRAPH_DEFAULT])
    assert "access_token" in result, result
    claims = _verify_via_discovery(devtenant, result["access_token"], "https://graph.microsoft.com")
    assert sorted(claims["roles"]) == sorted(_app(devtenant)["requiredResourceAccess"]["application"])
    assert "scp" not in claims
    assert claims["ver"] == "2.0"
    assert claims["tid"] == devtenant.tenant_id
    assert claims["azp"] == _app(devtenant)["appId"]
    assert claims["exp"] - claims["iat"] == 3600


def test_client_credentials_wrong_secret_is_invalid_client(devtenant: DevTenantHandle) -> None:
    result = _cca(devtenant, secret="wrong").acquire_token_for_client([GRAPH_DEFAULT])
    assert result["error"] == "invalid_client"
    assert 7000215 in result["error_codes"]


def test_client_credentials_unknown_app_status_and_shape(devtenant: DevTenantHandle) -> None:
    r = devtenant.session().post(
        f"{devtenant.base_url}/{devtenant.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "00000000-0000-0000-0000-000000000001",
            "client_secret": "x",
            "scope": GRAPH_DEFAULT,
        },
        timeout=10,
    )
    assert r.status_code == 400
    body = r.json()
    assert set(body) >= ENTRA_ERROR_FIELDS
    assert body["error"] == "unauthorized_client"
    assert body["error_description"].startswith("AADSTS700016:")


def test_client_secret_via_basic_auth(devtenant: DevTenantHandle) -> None:
    app = _app(devtenant)
    r = devtenant.session().post(
        f"{devtenant.base_url}/{devtenant.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": GRAPH_DEFAULT},
        auth=(app["appId"], app["passwordCredentials"][0]["secretText"]),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"


def test_client_credentials_without_admin_consent(devtenant: DevTenantHandle) -> None:
    s = devtenant.session()
    app_id = _app(devtenant)["appId"]
    s.post(f"{devtenant.base_url}/_devtenant/apps/{app_id}/consent/revoke", timeout=10)
    result = _cca(devtenant).acquire_token_for_client([GRAPH_DEFAULT])
    assert result["error"] == "invalid_grant"
    assert result["suberror"] == "consent_required"
    assert 65001 in result["error_codes"]


def test_obo_yields_scp_and_refresh_token(devtenant: DevTenantHandle) -> None:
    user = _enabled_user(devtenant)
    assertion = devtenant.mint_user_token(user["userPrincipalName"])
    result = _cca(devtenant).acquire_token_on_behalf_of(
        assertion, ["https://graph.microsoft.com/Calendars.ReadWrite"]
    )
    assert "access_token" in result, result
    assert result.get("refresh_token")
    claims = _verify_via_discovery(devtenant, result["access_token"], "https://graph.microsoft.com")
    assert claims["scp"] == "Calendars.ReadWrite"
    assert claims["oid"] == user["id"]
    assert claims["tid"] == devtenant.tenant_id
    assert claims["preferred_username"] == user["userPrincipalName"]
    assert result["id_token_claims"]["oid"] == user["id"]


def test_obo_scopes_are_requested_intersect_consented(devtenant: DevTenantHandle) -> None:
    assertion = devtenant.mint_user_token(_enabled_user(devtenant)["userPrincipalName"])
    result = _cca(devtenant).acquire_token_on_behalf_of(
        assertion,
        [
            "https://graph.microsoft.com/Calendars.ReadWrite",
            "https://graph.microsoft.com/Mail.Send",
        ],
    )
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["scp"].split() == ["Calendars.ReadWrite"]


def test_obo_disabled_user_is_invalid_grant(devtenant: DevTenantHandle) -> None:
    user = _enabled_user(devtenant, 1)
    assertion = devtenant.mint_user_token(user["userPrincipalName"])
    devtenant.session().post(
        f"{devtenant.base_url}/_devtenant/users/{user['id']}/disable", timeout=10
    ).raise_for_status()
    result = _cca(devtenant).acquire_token_on_behalf_of(
        assertion, ["https://graph.microsoft.com/Calendars.ReadWrite"]
    )
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [50057]


def test_obo_removed_user_is_invalid_grant(devtenant: DevTenantHandle) -> None:
    user = _enabled_user(devtenant, 2)
    assertion = devtenant.mint_user_token(user["userPrincipalName"])
    devtenant.session().post(
        f"{devtenant.base_url}/_devtenant/users/{user['id']}/remove", timeout=10
    ).raise_for_status()
    result = _cca(devtenant).acquire_token_on_behalf_of(
        assertion, ["https://graph.microsoft.com/Calendars.ReadWrite"]
    )
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [50034]


def test_obo_consent_revoked_is_consent_required(devtenant: DevTenantHandle) -> None:
    assertion = devtenant.mint_user_token(_enabled_user(devtenant)["userPrincipalName"])
    app_id = _app(devtenant)["appId"]
    devtenant.session().post(
        f"{devtenant.base_url}/_devtenant/apps/{app_id}/consent/revoke", timeout=10
    ).raise_for_status()
    result = _cca(devtenant).acquire_token_on_behalf_of(
        assertion, ["https://graph.microsoft.com/Calendars.ReadWrite"]
    )
    assert result["error"] == "invalid_grant"
    assert result["suberror"] == "consent_required"
    assert result["error_description"].startswith("AADSTS65001:")


def test_obo_rejects_assertion_for_another_audience(devtenant: DevTenantHandle) -> None:
    assertion = devtenant.mint_user_token(
        _enabled_user(devtenant)["userPrincipalName"], audience="https://graph.microsoft.com"
    )
    result = _cca(devtenant).acquire_token_on_behalf_of(
        assertion, ["https://graph.microsoft.com/Calendars.ReadWrite"]
    )
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [50013]


def test_obo_rejects_expired_assertion(devtenant: DevTenantHandle) -> None:
    assertion = devtenant.mint_user_token(_enabled_user(devtenant)["userPrincipalName"])
    devtenant.session().put(
        f"{devtenant.base_url}/_devtenant/clock", json={"advance_s": 7200}, timeout=10
    ).raise_for_status()
    result = _cca(devtenant).acquire_token_on_behalf_of(
        assertion, ["https://graph.microsoft.com/Calendars.ReadWrite"]
    )
    assert result["error_codes"] == [500133]


def test_refresh_token_rotates_and_old_one_fails(devtenant: DevTenantHandle) -> None:
    assertion = devtenant.mint_user_token(_enabled_user(devtenant)["userPrincipalName"])
    cca = _cca(devtenant)
    first = cca.acquire_token_on_behalf_of(assertion, ["https://graph.microsoft.com/Calendars.ReadWrite"])
    scopes = ["https://graph.microsoft.com/Calendars.ReadWrite"]
    second = cca.acquire_token_by_refresh_token(first["refresh_token"], scopes)
    assert "access_token" in second, second
    assert second["refresh_token"] != first["refresh_token"]
    again = cca.acquire_token_by_refresh_token(first["refresh_token"], scopes)
    assert again["error"] == "invalid_grant"


def test_refresh_fails_for_disabled_user_and_revoked_sessions(devtenant: DevTenantHandle) -> None:
    a, b = _enabled_user(devtenant, 3), _enabled_user(devtenant, 4)
    cca = _cca(devtenant)
    scopes = ["https://graph.microsoft.com/Calendars.ReadWrite"]
    rt_a = cca.acquire_token_on_behalf_of(devtenant.mint_user_token(a["userPrincipalName"]), scopes)[
        "refresh_token"
    ]
    rt_b = cca.acquire_token_on_behalf_of(devtenant.mint_user_token(b["userPrincipalName"]), scopes)[
        "refresh_token"
    ]
    s = devtenant.session()
    s.post(f"{devtenant.base_url}/_devtenant/users/{a['id']}/disable", timeout=10)
    s.post(f"{devtenant.base_url}/_devtenant/users/{b['id']}/revoke", timeout=10)
    assert cca.acquire_token_by_refresh_token(rt_a, scopes)["error_codes"] == [50057]
    assert cca.acquire_token_by_refresh_token(rt_b, scopes)["error_codes"] == [50173]


def test_own_api_token_for_access_as_user(devtenant: DevTenantHandle) -> None:
    app = _app(devtenant)
    user = _enabled_user(devtenant)
    result = _cca(devtenant).acquire_token_on_behalf_of(
        devtenant.mint_user_token(user["userPrincipalName"]),
        [f"{app['identifierUris'][0]}/access_as_user"],
    )
    claims = _verify_via_discovery(devtenant, result["access_token"], app["appId"])
    assert claims["scp"] == "access_as_user"


def _pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(b"v" * 40).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def test_authorization_code_with_pkce(devtenant: DevTenantHandle) -> None:
    app, user = _app(devtenant), _enabled_user(devtenant)
    verifier, challenge = _pkce()
    s = devtenant.session()
    redirect = app["redirectUris"][0]
    r = s.get(
        f"{devtenant.base_url}/{devtenant.tenant_id}/oauth2/v2.0/authorize",
        params={
            "client_id": app["appId"],
            "response_type": "code",
            "redirect_uri": redirect,
            "scope": "https://graph.microsoft.com/Calendars.ReadWrite openid offline_access",
            "state": "st-1",
            "login_hint": user["userPrincipalName"],
            "prompt": "none",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 302
    query = parse_qs(urlparse(r.headers["Location"]).query)
    assert query["state"] == ["st-1"]
    token_url = f"{devtenant.base_url}/{devtenant.tenant_id}/oauth2/v2.0/token"
    form = {
        "grant_type": "authorization_code",
        "client_id": app["appId"],
        "code": query["code"][0],
        "redirect_uri": redirect,
    }
    bad = s.post(token_url, data={**form, "code_verifier": "wrong"}, timeout=10)
    assert bad.json()["error_codes"] == [501481]
    # a failed redemption consumes the code, as in Entra; get a fresh one through the picker form
    r2 = s.post(
        f"{devtenant.base_url}/{devtenant.tenant_id}/oauth2/v2.0/authorize",
        data={
            "client_id": app["appId"],
            "response_type": "code",
            "redirect_uri": redirect,
            "scope": "https://graph.microsoft.com/Calendars.ReadWrite openid offline_access",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "user": user["id"],
        },
        allow_redirects=False,
        timeout=10,
    )
    code = parse_qs(urlparse(r2.headers["Location"]).query)["code"][0]
    ok = s.post(token_url, data={**form, "code": code, "code_verifier": verifier}, timeout=10)
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["refresh_token"]
    assert body["id_token"]
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["oid"] == user["id"]


def test_authorize_without_hint_lists_users(devtenant: DevTenantHandle) -> None:
    app = _app(devtenant)
    r = devtenant.session().get(
        f"{devtenant.base_url}/{devtenant.tenant_id}/oauth2/v2.0/authorize",
        params={
            "client_id": app["appId"],
            "response_type": "code",
            "redirect_uri": app["redirectUris"][0],
            "scope": "openid",
        },
        timeout=10,
    )
    assert r.status_code == 200
    assert _enabled_user(devtenant)["userPrincipalName"] in r.text


def test_admin_consent_records_grant_and_redirects(devtenant: DevTenantHandle) -> None:
    app = _app(devtenant)
    s = devtenant.session()
    s.post(f"{devtenant.base_url}/_devtenant/apps/{app['appId']}/consent/revoke", timeout=10)
    r = s.get(
        f"{devtenant.base_url}/{devtenant.tenant_id}/adminconsent",
        params={"client_id": app["appId"], "redirect_uri": app["redirectUris"][0], "state": "xyz"},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 302
    q = parse_qs(urlparse(r.headers["Location"]).query)
    assert q == {"tenant": [devtenant.tenant_id], "state": ["xyz"], "admin_consent": ["True"]}
    assert "access_token" in _cca(devtenant).acquire_token_for_client([GRAPH_DEFAULT])
    denied = s.get(
        f"{devtenant.base_url}/{devtenant.tenant_id}/adminconsent",
        params={"client_id": app["appId"], "redirect_uri": app["redirectUris"][0], "deny": "1"},
        allow_redirects=False,
        timeout=10,
    )
    assert parse_qs(urlparse(denied.headers["Location"]).query)["error"] == ["access_denied"]


def test_rollover_publishes_new_kid_and_old_tokens_verify(devtenant: DevTenantHandle) -> None:
    old = _cca(devtenant).acquire_token_for_client([GRAPH_DEFAULT])["access_token"]
    s = devtenant.session()
    new_kid = s.post(f"{devtenant.base_url}/_devtenant/keys/rollover", timeout=10).json()["kid"]
    kids = [
        k["kid"]
        for k in s.get(f"{devtenant.base_url}/{devtenant.tenant_id}/discovery/v2.0/keys", timeout=10).json()[
            "keys"
        ]
    ]
    assert kids[0] == new_kid
    assert jwt.get_unverified_header(old)["kid"] in kids[1:]
    _verify_via_discovery(devtenant, old, "https://graph.microsoft.com")
    fresh = _cca(devtenant).acquire_token_for_client([GRAPH_DEFAULT])["access_token"]
    assert jwt.get_unverified_header(fresh)["kid"] == new_kid
    _verify_via_discovery(devtenant, fresh, "https://graph.microsoft.com")


def test_token_counters(devtenant: DevTenantHandle) -> None:
    s = devtenant.session()
    s.post(f"{devtenant.base_url}/_devtenant/requests/reset", timeout=10)
    _cca(devtenant).acquire_token_for_client([GRAPH_DEFAULT])
    counts = s.get(f"{devtenant.base_url}/_devtenant/requests", timeout=10).json()
    assert counts["entra.token"] == 1
    assert json.dumps(counts)  # plain JSON object
