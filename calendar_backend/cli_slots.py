"""The `slots` command: sign in as a user, then ask the running Calendar Service over HTTP.

It goes through the real API and all three locks: it obtains a user access token for OpenSlot's API with the
authorization-code flow (`login_hint` + `prompt=none`, so an already signed-in user is not asked again; if
the authority wants interaction, the URL is printed to open in a browser and the redirected URL is read back).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any
from urllib.parse import parse_qs, urlparse

import msal
import requests

from calendar_backend import storage
from calendar_backend.cli import EXIT_REFUSED, EXIT_UPSTREAM, CliError, emit
from calendar_backend.runtime import open_runtime
from calendar_backend.sealing import tenant_credential_aad
from calendar_backend.settings import BackendSettings
from calendar_backend.tokens import AppCredential

CLI_REDIRECT_URI = "http://localhost/openslot-cli"


async def run_slots(settings: BackendSettings, args: argparse.Namespace) -> int:
    """Print `{"slots": [...]}` (with --json) or a readable list; exit code 0 on success."""
    async with open_runtime(settings) as rt:
        async with rt.store.transaction() as tx:
            tenant_ids = await storage.list_tenant_ids(tx)
            if len(tenant_ids) != 1:
                raise CliError(
                    EXIT_REFUSED,
                    "exactly one onboarded tenant is needed for `slots`",
                    "onboard the tenant first (`tenant add` or `tenant onboard`)",
                )
            row = await storage.get_tenant(tx, tenant_ids[0])
        assert row is not None  # noqa: S101
        raw = rt.cipher.decrypt(row.credential_blob, aad=tenant_credential_aad(row.tenant_id))
    credential = AppCredential.from_bytes(raw)
    token = await asyncio.to_thread(_user_token, settings, row.tenant_id, credential, args.as_user)
    body: dict[str, Any] = {
        "interviewers": args.interviewer,
        "duration_min": args.duration,
        "start": _z(args.start),
        "end": _z(args.end),
        "step_min": args.step,
        "buffer_min": args.buffer,
        "all": bool(args.all),
        "limit": 500 if args.all else 20,
    }
    if args.room:
        body["rooms"] = args.room
    if args.notice is not None:
        body["notice_min"] = args.notice
    url = (args.service_url or f"http://{settings.host}:{settings.port}") + "/v1/slots/find"
    resp = await asyncio.to_thread(
        requests.post, url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    doc = resp.json()
    if resp.status_code != 200:
        raise CliError(
            EXIT_UPSTREAM if resp.status_code >= 500 else EXIT_REFUSED,
            f"the Calendar Service answered {resp.status_code} ({str(doc.get('error', ''))[:64]})",
            str(doc.get("message", "see the Calendar Service's log"))[:200],
        )
    out: dict[str, Any] = {"slots": doc["slots"]}  # always JSON (--json is kept for scripts)
    if doc.get("blockers"):
        out["blockers"] = doc["blockers"]
    emit(out)
    return 0


def _z(value: str) -> str:
    return value if value.endswith("Z") else value.replace("+00:00", "") + "Z"


def _user_token(settings: BackendSettings, tenant_id: str, credential: Any, upn: str) -> str:
    http = requests.Session()
    if settings.ca_bundle:
        http.verify = str(settings.ca_bundle)
        http.trust_env = False  # else REQUESTS_CA_BUNDLE overrides session.verify
    app = msal.ConfidentialClientApplication(
        credential.client_id,
        client_credential=credential.client_secret,
        authority=f"{settings.authority_host}/{tenant_id}",
        instance_discovery=False,
        http_client=http,
    )
    scope = f"api://botid-{settings.client_id}/{settings.required_scope}"
    flow = app.initiate_auth_code_flow([scope], redirect_uri=CLI_REDIRECT_URI, login_hint=upn, prompt="none")
    resp = http.get(flow["auth_uri"], allow_redirects=False, timeout=30)
    location = resp.headers.get("Location", "")
    if not location.startswith(CLI_REDIRECT_URI):
        if not sys.stdin.isatty():
            raise CliError(
                EXIT_REFUSED,
                f"sign-in as {upn} needs a browser and there is no terminal to paste the answer into",
                f"the app registration must list the redirect URI {CLI_REDIRECT_URI} and expose "
                f"api://botid-{settings.client_id} (OPENSLOT_CLIENT_ID must be its app id); "
                "or run `slots` in a terminal",
            )
        print(  # noqa: T201
            f"Open this URL, sign in, then paste the address you land on:\n{flow['auth_uri']}",
            file=sys.stderr,
        )
        location = input().strip()
    query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
    result = app.acquire_token_by_auth_code_flow(flow, query)
    if "access_token" not in result:
        error = str(result.get("error"))[:64]
        hint = (
            f"the app must expose api://botid-{settings.client_id}"
            if error == "invalid_resource"
            else "check the --as user and that they may sign in"
        )
        raise CliError(EXIT_UPSTREAM, f"sign-in failed: {error}", hint)
    return str(result["access_token"])
