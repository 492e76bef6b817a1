"""Entra ID (v2) for devtenant: OIDC discovery, JWKS, token endpoint, authorize, admin consent.

`{tenant}` in every path is the tenant id, its default domain, `common` or `organizations`. All
tokens are v2 (`ver` "2.0"), RS256, signed by `TokenIssuer.keys`, with `iat`/`nbf`/`exp` from the
tenant clock and a 1-hour lifetime. Errors have Entra's shape (`EntraError.body`). Grants:
client_credentials, on-behalf-of (jwt-bearer), refresh_token (rotating), authorization_code (PKCE
when a challenge was given).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import jwt
from aiohttp import web

from devtenant.keys import SigningKeys
from devtenant.tenant import DevTenant

JsonDict = dict[str, Any]
GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
BOTFRAMEWORK_RESOURCE = "https://api.botframework.com"
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
TOKEN_LIFETIME = timedelta(hours=1)
CODE_LIFETIME = timedelta(minutes=10)
GRANT_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TENANT_ALIASES = frozenset({"common", "organizations", "botframework.com"})


class EntraError(Exception):
    """An OAuth error answered in Entra's JSON shape (400, or 401 for invalid_client)."""

    def __init__(self, error: str, code: int, message: str, *, suberror: str | None = None) -> None:
        super().__init__(f"{error}: AADSTS{code}")
        self.error, self.code, self.message, self.suberror = error, code, message, suberror

    @property
    def status(self) -> int:
        return 401 if self.error == "invalid_client" else 400

    def body(self, now_text: str, correlation_id: str | None = None) -> JsonDict:
        trace_id, corr = str(uuid.uuid4()), correlation_id or str(uuid.uuid4())
        body: JsonDict = {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.message} Trace ID: {trace_id} "
            f"Correlation ID: {corr} Timestamp: {now_text}",
            "error_codes": [self.code],
            "timestamp": now_text,
            "trace_id": trace_id,
            "correlation_id": corr,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }
        if self.suberror:
            body["suberror"] = self.suberror
        return body


@dataclass(frozen=True, slots=True)
class ScopeRequest:
    """A parsed `scope` parameter: one resource (audience) plus scope names on it."""

    audience: str
    names: tuple[str, ...]  # without resource prefix; may be (".default",)
    reserved: frozenset[str]
    prefix: str  # how the caller spelled the resource ("" for bare Graph names)


class TokenIssuer:
    """Mints and checks devtenant's Entra tokens (used by Entra, Bot Framework, controls)."""

    def __init__(self, tenant: DevTenant, base_url: str, keys: SigningKeys) -> None:
        self.tenant, self.base_url, self.keys = tenant, base_url.rstrip("/"), keys

    def issuer(self, tid: str | None = None) -> str:
        """`https://<host>/<tid>/v2.0`; with tid None the multi-tenant `{tenantid}` template."""
        return f"{self.base_url}/{tid or '{tenantid}'}/v2.0"

    def resolve_tenant(self, segment: str) -> str:
        """The tenant id a path segment names; raises `EntraError` (AADSTS90002) if unknown."""
        seg = segment.lower()
        if seg in TENANT_ALIASES or seg in (
            self.tenant.tenant_id.lower(),
            self.tenant.domain.lower(),
        ):
            return self.tenant.tenant_id
        raise EntraError(
            "invalid_tenant",
            90002,
            f"Tenant '{segment}' not found. Check to make "
            "sure you have the correct tenant ID and are signing into the correct cloud.",
        )

    def now_ts(self) -> int:
        return int(self.tenant.clock().timestamp())

    def access_token(
        self,
        *,
        client_id: str,
        audience: str,
        user: JsonDict | None,
        scp: list[str] | None = None,
        roles: list[str] | None = None,
        lifetime: timedelta = TOKEN_LIFETIME,
    ) -> str:
        """A v2 access token. Delegated when `user` is given (scp), app-only otherwise (roles)."""
        now, tid = self.now_ts(), self.tenant.tenant_id
        claims: JsonDict = {
            "aud": audience,
            "iss": self.issuer(tid),
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime.total_seconds()),
            "azp": client_id,
            "azpacr": "1",
            "tid": tid,
            "ver": "2.0",
            "uti": secrets.token_urlsafe(16),
            "rh": "0.devtenant.",
        }
        if user is not None:
            claims.update(self._user_claims(user, client_id))
            claims["scp"] = " ".join(scp or [])
        else:
            oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{tid}:{client_id}"))
            claims.update({"oid": oid, "sub": oid, "idtyp": "app", "roles": list(roles or [])})
        return self.keys.mint(claims)

    def id_token(self, user: JsonDict, client_id: str, nonce: str | None) -> str:
        now, tid = self.now_ts(), self.tenant.tenant_id
        claims: JsonDict = {
            "aud": client_id,
            "iss": self.issuer(tid),
            "iat": now,
            "nbf": now,
            "exp": now + int(TOKEN_LIFETIME.total_seconds()),
            "tid": tid,
            "ver": "2.0",
            **self._user_claims(user, client_id),
        }
        if nonce:
            claims["nonce"] = nonce
        return self.keys.mint(claims)

    def _user_claims(self, user: JsonDict, client_id: str) -> JsonDict:
        oid = str(user["id"])
        sub = base64.urlsafe_b64encode(hashlib.sha256(f"{oid}:{client_id}".encode()).digest())
        upn = str(user.get("userPrincipalName") or user.get("mail") or "")
        return {
            "oid": oid,
            "sub": sub.rstrip(b"=").decode("ascii"),
            "name": user.get("displayName", ""),
            "preferred_username": upn,
            "upn": upn,
        }

    def verify(self, token: str, *, audience: str | list[str]) -> JsonDict:
        """Verify a token this tenant issued for `audience`; raises `jwt.InvalidTokenError`."""
        return self.keys.verify(token, audience=audience, issuer=self.issuer(self.tenant.tenant_id))

    def verify_graph_token(self, token: str) -> JsonDict:
        """Verify a Graph access token minted here (aud Graph URL or Graph app id)."""
        return self.verify(token, audience=[GRAPH_RESOURCE, GRAPH_APP_ID])

    def client_info(self, user: JsonDict) -> str:
        raw = json.dumps({"uid": str(user["id"]), "utid": self.tenant.tenant_id}).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


ISSUER_KEY = web.AppKey("devtenant.issuer", TokenIssuer)


# ---- scopes and consent -------------------------------------------------------------------------
def parse_scope(tenant: DevTenant, raw: str) -> ScopeRequest:
    """Split a scope string into one resource + names; raises `EntraError` (28000/500011)."""
    items = [s for s in raw.split() if s]
    reserved = frozenset(s for s in items if s.lower() in RESERVED_SCOPES)
    resources: dict[str, tuple[str, list[str]]] = {}
    for item in items:
        if item.lower() in RESERVED_SCOPES:
            continue
        audience, prefix, name = _scope_resource(tenant, item)
        resources.setdefault(audience, (prefix, []))[1].append(name)
    if len(resources) > 1:
        raise EntraError(
            "invalid_scope",
            28000,
            "Provided value for the input parameter scope is "
            "not valid because it contains more than one resource.",
        )
    if not resources:
        return ScopeRequest(GRAPH_RESOURCE, (), reserved, "")
    audience, (prefix, names) = next(iter(resources.items()))
    return ScopeRequest(audience, tuple(names), reserved, prefix)


def _scope_resource(tenant: DevTenant, item: str) -> tuple[str, str, str]:
    lowered = item.lower()
    for res in (GRAPH_RESOURCE, BOTFRAMEWORK_RESOURCE):
        if lowered.startswith(res + "/"):
            return res, item[: len(res) + 1], item[len(res) + 1 :]
    if "/" not in item:
        return GRAPH_RESOURCE, "", item
    prefix, name = item.rsplit("/", 1)
    for app in tenant.applications():
        uris = [str(u).lower() for u in app.get("identifierUris", [])]
        if prefix.lower() == str(app["appId"]).lower() or prefix.lower() in uris:
            return str(app["appId"]), prefix + "/", name
    raise EntraError(
        "invalid_resource",
        500011,
        f"The resource principal named {prefix} was not found in the tenant named " + tenant.tenant_id + ".",
    )


def consent_required(app: JsonDict) -> EntraError:
    return EntraError(
        "invalid_grant",
        65001,
        "The user or administrator has not consented to use "
        f"the application with ID '{app['appId']}' named '{app.get('displayName', '')}'."
        " Send an interactive authorization request for this user and resource.",
        suberror="consent_required",
    )


def delegated_scopes(tenant: DevTenant, client: JsonDict, req: ScopeRequest) -> list[str]:
    """Granted delegated scopes = requested ∩ consented; raises consent_required when none are."""
    if req.audience == GRAPH_RESOURCE:
        granted_all = list((client.get("requiredResourceAccess") or {}).get("delegated", []))
        owner = client
    elif req.audience == BOTFRAMEWORK_RESOURCE:
        raise EntraError(
            "invalid_scope",
            70011,
            "The provided request must include a 'scope' input"
            " parameter. The provided value for the input parameter 'scope' is not valid.",
        )
    else:
        owner = tenant.find_application(req.audience) or client
        granted_all = list(owner.get("oauth2PermissionScopes", []))
    if not (owner.get("adminConsent") or {}).get("granted"):
        raise consent_required(owner)
    granted_all = [s for s in granted_all if s.lower() not in RESERVED_SCOPES]
    if req.names and req.names != (".default",):
        wanted = {n.lower() for n in req.names}
        granted = [s for s in granted_all if s.lower() in wanted]
    else:
        granted = granted_all
    if req.names and not granted:
        raise consent_required(owner)
    return granted


def application_roles(client: JsonDict, req: ScopeRequest) -> list[str]:
    """Roles for an app-only token; the scope must be `<resource>/.default` (AADSTS1002012)."""
    if req.names != (".default",):
        raise EntraError(
            "invalid_scope",
            1002012,
            "The provided value for scope "
            f"{' '.join(req.names)} is not valid. Client credential flows must have a "
            "scope value with /.default suffixed to the resource identifier "
            "(application ID URI).",
        )
    if req.audience == BOTFRAMEWORK_RESOURCE:
        return []
    if not (client.get("adminConsent") or {}).get("granted"):
        raise consent_required(client)
    if req.audience == GRAPH_RESOURCE:
        return list((client.get("requiredResourceAccess") or {}).get("application", []))
    return []


# ---- client authentication ----------------------------------------------------------------------
def authenticate_client(
    tenant: DevTenant,
    form: dict[str, str],
    authorization: str | None,
    *,
    secret_required: bool = True,
) -> JsonDict:
    """The calling application; secret from the body or HTTP Basic. Raises `EntraError`."""
    client_id, secret = form.get("client_id", ""), form.get("client_secret")
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:]).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise EntraError("invalid_client", 7000215, "Invalid client secret provided.") from exc
        basic_id, _, basic_secret = decoded.partition(":")
        client_id, secret = client_id or basic_id, basic_secret
    if not client_id:
        raise EntraError(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )
    app = tenant.find_application(client_id)
    if app is None:
        raise EntraError(
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}'"
            f" was not found in the directory '{tenant.tenant_id}'. This can happen if "
            "the application has not been installed by the administrator of the tenant "
            "or consented to by any user in the tenant.",
        )
    if secret is None:
        if secret_required:
            raise EntraError(
                "invalid_client",
                7000218,
                "The request body must contain the "
                "following parameter: 'client_assertion' or 'client_secret'.",
            )
        return app
    known = [str(c.get("secretText", "")) for c in app.get("passwordCredentials", [])]
    if not any(secrets.compare_digest(secret.encode(), k.encode()) for k in known if k):
        raise EntraError(
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the "
            "secret being sent in the request is the client secret value, not the "
            f"client secret ID, for a secret added to app '{client_id}'.",
        )
    return app


def active_user(tenant: DevTenant, oid: str) -> JsonDict:
    """The enabled user with this object id; raises invalid_grant 50034 / 50057."""
    user = tenant.find_user(oid)
    if user is None:
        raise EntraError(
            "invalid_grant",
            50034,
            f"The user account {oid} does not exist in the "
            f"{tenant.tenant_id} directory. To sign into this application, the account"
            " must be added to the directory.",
        )
    if not user.get("accountEnabled", True):
        raise EntraError("invalid_grant", 50057, "The user account is disabled.")
    return user


def html_page(title: str, body: str, status: int = 200) -> web.Response:
    """A minimal HTML page (`body` must already be escaped)."""
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=doc, status=status, content_type="text/html")


def redirect_with(uri: str, params: dict[str, str]) -> web.HTTPFound:
    sep = "&" if "?" in uri else "?"
    return web.HTTPFound(uri + sep + urlencode(params))


# ---- routes -------------------------------------------------------------------------------------
def add_entra_routes(app: web.Application, issuer: TokenIssuer) -> None:
    """Register the Entra ID v2 routes under `/{tenant}/...` and store `issuer` as `ISSUER_KEY`."""
    app[ISSUER_KEY] = issuer
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", _discovery)
    app.router.add_get("/{tenant}/discovery/v2.0/keys", _jwks)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", _token)
    app.router.add_get("/{tenant}/oauth2/v2.0/authorize", _authorize)
    app.router.add_post("/{tenant}/oauth2/v2.0/authorize", _authorize_post)
    app.router.add_get("/{tenant}/adminconsent", _admin_consent)


def _issuer_of(request: web.Request) -> TokenIssuer:
    return request.app[ISSUER_KEY]


def _error_response(issuer: TokenIssuer, request: web.Request, err: EntraError) -> web.Response:
    now_text = issuer.tenant.clock().strftime("%Y-%m-%d %H:%M:%SZ")
    body = err.body(now_text, request.headers.get("client-request-id"))
    return web.json_response(body, status=err.status, headers={"Cache-Control": "no-store"})


def _segment_issuer(issuer: TokenIssuer, segment: str) -> str:
    """The `issuer` value discovery publishes for this path segment (template for multi-tenant)."""
    tid = issuer.resolve_tenant(segment)
    return issuer.issuer(None if segment.lower() in TENANT_ALIASES else tid)


async def _discovery(request: web.Request) -> web.Response:
    issuer, segment = _issuer_of(request), request.match_info["tenant"]
    issuer.tenant.counters["entra.discovery"] += 1
    try:
        iss = _segment_issuer(issuer, segment)
    except EntraError as err:
        return _error_response(issuer, request, err)
    base = f"{issuer.base_url}/{segment}"
    doc = {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": iss,
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{issuer.base_url}/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "cloud_instance_name",
            "cloud_instance_host_name",
            "cloud_graph_host_name",
            "msgraph_host",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
        ],
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }
    return web.json_response(doc, headers={"Cache-Control": "max-age=86400, private"})


async def _jwks(request: web.Request) -> web.Response:
    issuer = _issuer_of(request)
    issuer.tenant.counters["entra.keys"] += 1
    try:
        iss = _segment_issuer(issuer, request.match_info["tenant"])
    except EntraError as err:
        return _error_response(issuer, request, err)
    return web.json_response(issuer.keys.jwks(iss), headers={"Cache-Control": "max-age=86400, private"})


async def _token(request: web.Request) -> web.Response:
    issuer = _issuer_of(request)
    issuer.tenant.counters["entra.token"] += 1
    form = {k: str(v) for k, v in (await request.post()).items()}
    try:
        issuer.resolve_tenant(request.match_info["tenant"])
        grant = form.get("grant_type", "")
        issuer.tenant.counters[f"entra.token.{_grant_label(grant)}"] += 1
        body = _run_grant(issuer, grant, form, request.headers.get("Authorization"))
    except EntraError as err:
        return _error_response(issuer, request, err)
    return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


_GRANT_LABELS = frozenset({"client_credentials", "jwt-bearer", "refresh_token", "authorization_code"})


def _grant_label(grant: str) -> str:
    """The counter suffix for a grant type: its last `:` segment for the grants devtenant serves,
    `none` when missing, and one shared `unsupported` for anything else (the grant type is client
    input, so one counter per value would grow without bound)."""
    label = grant.rsplit(":", 1)[-1]
    return label if label in _GRANT_LABELS else "none" if not grant else "unsupported"


def _run_grant(issuer: TokenIssuer, grant: str, form: dict[str, str], authorization: str | None) -> JsonDict:
    if grant == "client_credentials":
        return _client_credentials(issuer, form, authorization)
    if grant == GRANT_JWT_BEARER:
        return _on_behalf_of(issuer, form, authorization)
    if grant == "refresh_token":
        return _refresh(issuer, form, authorization)
    if grant == "authorization_code":
        return _authorization_code(issuer, form, authorization)
    if not grant:
        raise EntraError(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        )
    raise EntraError(
        "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'."
    )


def _client_credentials(issuer: TokenIssuer, form: dict[str, str], authorization: str | None) -> JsonDict:
    client = authenticate_client(issuer.tenant, form, authorization)
    req = parse_scope(issuer.tenant, form.get("scope", ""))
    roles = application_roles(client, req)
    token = issuer.access_token(client_id=str(client["appId"]), audience=req.audience, user=None, roles=roles)
    seconds = int(TOKEN_LIFETIME.total_seconds()) - 1
    return {
        "token_type": "Bearer",
        "expires_in": seconds,
        "ext_expires_in": seconds,
        "access_token": token,
    }


def _on_behalf_of(issuer: TokenIssuer, form: dict[str, str], authorization: str | None) -> JsonDict:
    client = authenticate_client(issuer.tenant, form, authorization)
    if form.get("requested_token_use") != "on_behalf_of":
        raise EntraError(
            "invalid_request",
            90009,
            "The request body must contain 'requested_token_use' with the value 'on_behalf_of'.",
        )
    claims = _verify_assertion(issuer, form.get("assertion", ""), str(client["appId"]))
    user = active_user(issuer.tenant, str(claims.get("oid", "")))
    return _delegated_response(issuer, client, user, form)


def _verify_assertion(issuer: TokenIssuer, assertion: str, audience: str) -> JsonDict:
    if not assertion:
        raise EntraError(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'assertion'.",
        )
    try:
        return issuer.verify(assertion, audience=audience)
    except jwt.ExpiredSignatureError as exc:
        raise EntraError("invalid_grant", 500133, "Assertion is not within its valid time range.") from exc
    except jwt.InvalidAudienceError as exc:
        raise EntraError(
            "invalid_grant",
            50013,
            "Assertion failed signature validation. [Reason - "
            "The provided audience does not match the client app.]",
        ) from exc
    except jwt.DecodeError as exc:
        raise EntraError("invalid_request", 50027, "JWT token is invalid or malformed.") from exc
    except jwt.InvalidTokenError as exc:
        raise EntraError("invalid_grant", 50013, "Assertion failed signature validation.") from exc


def _delegated_response(
    issuer: TokenIssuer,
    client: JsonDict,
    user: JsonDict,
    form: dict[str, str],
    *,
    nonce: str | None = None,
) -> JsonDict:
    """Access token (+ refresh token with offline_access, id_token with openid, client_info)."""
    req = parse_scope(issuer.tenant, form.get("scope", ""))
    granted = delegated_scopes(issuer.tenant, client, req)
    client_id = str(client["appId"])
    token = issuer.access_token(client_id=client_id, audience=req.audience, user=user, scp=granted)
    seconds = int(TOKEN_LIFETIME.total_seconds()) - 1
    body: JsonDict = {
        "token_type": "Bearer",
        "expires_in": seconds,
        "ext_expires_in": seconds,
        "scope": " ".join([req.prefix + s for s in granted] + sorted(req.reserved)),
        "access_token": token,
    }
    if "offline_access" in req.reserved:
        body["refresh_token"] = _new_refresh_token(issuer, client_id, user, form.get("scope", ""))
    if "openid" in req.reserved:
        body["id_token"] = issuer.id_token(user, client_id, nonce)
    if form.get("client_info") == "1":
        body["client_info"] = issuer.client_info(user)
    return body


def _new_refresh_token(issuer: TokenIssuer, client_id: str, user: JsonDict, scope: str) -> str:
    token = "0.devtenant." + secrets.token_urlsafe(48)
    issuer.tenant.remember_refresh_token(
        token,
        {
            "client_id": client_id,
            "oid": str(user["id"]),
            "scope": scope,
            "revoked": False,
            "iat": issuer.now_ts(),
        },
    )
    return token


def _refresh(issuer: TokenIssuer, form: dict[str, str], authorization: str | None) -> JsonDict:
    client = authenticate_client(issuer.tenant, form, authorization, secret_required=False)
    record = issuer.tenant.refresh_tokens.get(form.get("refresh_token", ""))
    if record is None or record["client_id"].lower() != str(client["appId"]).lower():
        raise EntraError(
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid. - The provided refresh token is not valid.",
        )
    if record["revoked"]:
        raise EntraError(
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being "
            "revoked, a fresh auth token is needed. The user might have changed or "
            "reset their password.",
        )
    user = active_user(issuer.tenant, record["oid"])
    form = {**form, "scope": form.get("scope") or record["scope"]}
    body = _delegated_response(issuer, client, user, form)
    record["revoked"] = True  # rotation: a redeemed refresh token cannot be used again
    if "refresh_token" not in body:
        body["refresh_token"] = _new_refresh_token(issuer, str(client["appId"]), user, form["scope"])
    return body


def _authorization_code(issuer: TokenIssuer, form: dict[str, str], authorization: str | None) -> JsonDict:
    record = issuer.tenant.auth_codes.pop(form.get("code", ""), None)
    pkce = bool(record and record.get("code_challenge"))
    client = authenticate_client(issuer.tenant, form, authorization, secret_required=not pkce)
    if record is None or record.get("redeemed"):
        raise EntraError(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, "
            "please retry with a new valid code or use an existing refresh token.",
        )
    if record["client_id"].lower() != str(client["appId"]).lower():
        raise EntraError("invalid_grant", 70000, "Provided grant is invalid or malformed.")
    if record["expires_at"] <= issuer.now_ts():
        raise EntraError(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity.",
        )
    if form.get("redirect_uri", "") != record["redirect_uri"]:
        raise EntraError(
            "invalid_grant",
            500112,
            "The reply address does not match the reply "
            "address provided when requesting the Authorization code.",
        )
    if pkce and not _pkce_ok(record, form.get("code_verifier", "")):
        raise EntraError(
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        )
    user = active_user(issuer.tenant, record["oid"])
    form = {**form, "scope": form.get("scope") or record["scope"]}
    return _delegated_response(issuer, client, user, form, nonce=record.get("nonce"))


def _pkce_ok(record: JsonDict, verifier: str) -> bool:
    challenge = str(record["code_challenge"])
    if record.get("code_challenge_method", "plain") == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        return secrets.compare_digest(computed, challenge)
    return secrets.compare_digest(verifier, challenge)


# ---- authorize and admin consent (browser pages) ------------------------------------------------
AUTHORIZE_PARAMS = (
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
)
_extra_redirect_uris: list[str] = []


def allowed_redirect(issuer: TokenIssuer, app: JsonDict, uri: str) -> bool:
    """A registered redirect URI of the app, or devtenant's own Bot Framework sign-in callback."""
    if uri == f"{issuer.base_url}/.auth/web/redirect":
        return True
    registered = [str(u) for u in app.get("redirectUris", [])]
    return uri in registered or _loopback_without_port(uri) in registered


def _loopback_without_port(uri: str) -> str:
    """Entra ignores the port of an `http://localhost` / `http://127.0.0.1` redirect URI."""
    parts = urlsplit(uri)
    if parts.scheme != "http" or parts.hostname not in ("localhost", "127.0.0.1"):
        return uri
    return urlunsplit((parts.scheme, parts.hostname, parts.path, parts.query, ""))


def issue_code(issuer: TokenIssuer, params: dict[str, str], user: JsonDict) -> str:
    """Record an authorization code for `user` (valid 10 minutes, single use)."""
    code = "0.devtenant.code." + secrets.token_urlsafe(32)
    issuer.tenant.auth_codes[code] = {
        "client_id": params["client_id"],
        "redirect_uri": params["redirect_uri"],
        "oid": str(user["id"]),
        "scope": params.get("scope", ""),
        "nonce": params.get("nonce"),
        "code_challenge": params.get("code_challenge"),
        "code_challenge_method": params.get("code_challenge_method", "plain"),
        "expires_at": issuer.now_ts() + int(CODE_LIFETIME.total_seconds()),
    }
    return code


def _check_authorize(issuer: TokenIssuer, params: dict[str, str]) -> JsonDict:
    app = issuer.tenant.find_application(params.get("client_id", ""))
    if app is None:
        raise EntraError(
            "unauthorized_client",
            700016,
            f"Application with identifier '{params.get('client_id', '')}' was not found in the directory.",
        )
    if not allowed_redirect(issuer, app, params.get("redirect_uri", "")):
        raise EntraError(
            "invalid_request",
            50011,
            "The redirect URI specified in the request does "
            "not match the redirect URIs configured for the application.",
        )
    return app


async def _authorize(request: web.Request) -> web.StreamResponse:
    issuer = _issuer_of(request)
    issuer.tenant.counters["entra.authorize"] += 1
    params = {k: v for k, v in request.query.items() if k in (*AUTHORIZE_PARAMS, "login_hint", "prompt")}
    try:
        issuer.resolve_tenant(request.match_info["tenant"])
        _check_authorize(issuer, params)
    except EntraError as err:
        return html_page("Sign in error", f"<p>AADSTS{err.code}: {html.escape(err.message)}</p>", 400)
    if params.get("response_type", "code") != "code":
        raise redirect_with(
            params["redirect_uri"],
            {"error": "unsupported_response_type", "state": params.get("state", "")},
        )
    hint = params.get("login_hint")
    user = issuer.tenant.find_user(hint) if hint else None
    if (
        user is not None
        and user.get("accountEnabled", True)
        and params.get("prompt") in ("none", None)
        and hint
    ):
        raise redirect_with(params["redirect_uri"], _code_params(issuer, params, user))
    if params.get("prompt") == "none":
        raise redirect_with(
            params["redirect_uri"],
            {
                "error": "login_required",
                "state": params.get("state", ""),
                "error_description": "AADSTS50058: A silent sign-in request was sent but "
                "no user is "
                "signed in.",
            },
        )
    return _picker_page(issuer, request.match_info["tenant"], params)


def _code_params(issuer: TokenIssuer, params: dict[str, str], user: JsonDict) -> dict[str, str]:
    out = {"code": issue_code(issuer, params, user)}
    if "state" in params:
        out["state"] = params["state"]
    return out


def _picker_page(issuer: TokenIssuer, segment: str, params: dict[str, str]) -> web.Response:
    hidden = "".join(
        f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
        for k, v in params.items()
        if k in AUTHORIZE_PARAMS
    )
    rows = "".join(
        f"<li><button name='user' value='{html.escape(str(u['id']))}'>"
        f"{html.escape(str(u.get('displayName', '')))} "
        f"({html.escape(str(u.get('userPrincipalName', '')))})</button></li>"
        for u in issuer.tenant.users()
        if u.get("accountEnabled", True)
    )
    action = f"/{html.escape(segment)}/oauth2/v2.0/authorize"
    return html_page(
        "Pick an account", f"<form method='post' action='{action}'>{hidden}<ul>{rows}</ul></form>"
    )


async def _authorize_post(request: web.Request) -> web.StreamResponse:
    issuer = _issuer_of(request)
    form = {k: str(v) for k, v in (await request.post()).items()}
    params = {k: v for k, v in form.items() if k in AUTHORIZE_PARAMS}
    try:
        issuer.resolve_tenant(request.match_info["tenant"])
        _check_authorize(issuer, params)
        user = active_user(issuer.tenant, form.get("user", ""))
    except EntraError as err:
        return html_page("Sign in error", f"<p>AADSTS{err.code}: {html.escape(err.message)}</p>", 400)
    raise redirect_with(params["redirect_uri"], _code_params(issuer, params, user))


async def _admin_consent(request: web.Request) -> web.StreamResponse:
    issuer = _issuer_of(request)
    issuer.tenant.counters["entra.adminconsent"] += 1
    q = request.query
    app = issuer.tenant.find_application(q.get("client_id", ""))
    redirect = q.get("redirect_uri") or (app or {}).get("redirectUris", [None])[0]
    if app is None or not redirect or not allowed_redirect(issuer, app, redirect):
        return html_page(
            "Admin consent error",
            "<p>AADSTS700016 / AADSTS50011: unknown application or redirect URI.</p>",
            400,
        )
    if q.get("deny") == "1":
        raise redirect_with(
            redirect,
            {
                "error": "access_denied",
                "state": q.get("state", ""),
                "error_description": "AADSTS65004: User declined to consent to access the app.",
            },
        )
    app.setdefault("adminConsent", {})["granted"] = True
    raise redirect_with(
        redirect,
        {"tenant": issuer.tenant.tenant_id, "state": q.get("state", ""), "admin_consent": "True"},
    )
