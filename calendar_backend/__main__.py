"""`python -m calendar_backend [serve|migrate|slots|tenant|audit|keys] ...`: the composition root.

This is the only place that reads the environment (through `load_settings`) and wires the service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from calendar_backend import storage
from calendar_backend.crypto import CredentialCipher
from calendar_backend.settings import BackendSettings, load_settings

log = logging.getLogger("calendar_backend")


@dataclass
class Runtime:
    """Everything `serve` and the admin commands share, built once."""

    settings: BackendSettings
    store: storage.Store
    cipher: CredentialCipher
    session: aiohttp.ClientSession


@asynccontextmanager
async def open_runtime(settings: BackendSettings) -> AsyncIterator[Runtime]:
    """Keyring, database (migrated) and one HTTP session; closed on exit."""
    import ssl

    from calendar_backend.keyring import load_keyring

    cipher = CredentialCipher(load_keyring(settings.key_file))
    engine = storage.create_engine(settings.database_url)
    await storage.migrate(engine)
    ssl_ctx = ssl.create_default_context(
        cafile=str(settings.ca_bundle) if settings.ca_bundle else None)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_ctx, limit=100))
    try:
        yield Runtime(settings, storage.Store(engine), cipher, session)
    finally:
        await session.close()
        await engine.dispose()


def build_web_app(rt: Runtime) -> object:
    """The aiohttp application with every collaborator wired from settings."""
    from calendar_backend.app import build_app
    from calendar_backend.auth import JwksCache, TokenValidator
    from calendar_backend.graph import GraphClient
    from calendar_backend.service import CalendarService
    from calendar_backend.tokens import TokenBroker

    s = rt.settings
    jwks = JwksCache(rt.session, s.authority_host)
    validator = TokenValidator(jwks, authority_host=s.authority_host, client_id=s.client_id,
                               required_scope=s.required_scope, leeway_s=s.clock_skew_s)
    graph = GraphClient(rt.session, s.graph_base_url, timeout_s=s.graph_timeout_s,
                        max_attempts=s.graph_max_attempts, max_backoff_s=s.graph_max_backoff_s,
                        concurrency=s.graph_concurrency)
    tokens = TokenBroker(s.authority_host, str(s.ca_bundle) if s.ca_bundle else None,
                         s.graph_scopes)
    service = CalendarService(s, rt.store, rt.cipher, tokens, graph)
    return build_app(service, validator)


async def serve(settings: BackendSettings) -> None:
    """Run the API until interrupted."""
    from aiohttp import web

    async with open_runtime(settings) as rt:
        app = build_web_app(rt)
        assert isinstance(app, web.Application)  # noqa: S101
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        print(f"Calendar Service listening on http://{settings.host}:{settings.port}",  # noqa: T201
              flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


async def add_tenant(settings: BackendSettings, tenant_id: str, client_id: str,
                     secret: str, scopes: list[str]) -> None:
    """Store a tenant's admin-consent credential, sealed (onboarding's last step)."""
    from calendar_backend.service import tenant_credential_aad
    from calendar_backend.tokens import AppCredential

    async with open_runtime(settings) as rt:
        cipher = rt.cipher
        blob = cipher.encrypt(AppCredential(client_id, secret).to_bytes(),
                              aad=tenant_credential_aad(tenant_id))
        async with rt.store.transaction() as tx:
            await storage.put_tenant(tx, tenant_id, blob, cipher.key_id_of(blob),
                                     scopes)


async def audit_verify(settings: BackendSettings) -> int:
    """Check the audit chain; print the first broken row. Exit code 0 only when intact."""
    from calendar_backend.audit import verify_audit
    from calendar_backend.keyring import load_keyring

    ring = load_keyring(settings.key_file)
    _, signing_key = ring.signing_key()
    engine = storage.create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            report = await verify_audit(conn, signing_key=signing_key)
    finally:
        await engine.dispose()
    print(json.dumps({"ok": report.ok, "rows": report.rows,  # noqa: T201
                      "first_broken_seq": report.first_broken_seq, "reason": report.reason}))
    return 0 if report.ok else 1


async def audit_export(settings: BackendSettings, tenant_id: str, since: datetime) -> int:
    """Print the tenant's audit rows since a time as JSON lines."""
    from calendar_backend.audit import export_audit

    engine = storage.create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            async for row in export_audit(conn, tenant_id, since):
                print(json.dumps(row, sort_keys=True))  # noqa: T201
    finally:
        await engine.dispose()
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m calendar_backend")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the Calendar Service API")
    sub.add_parser("migrate", help="create or upgrade the database schema")
    slots = sub.add_parser("slots", help="find open slots through the real HTTP API")
    slots.add_argument("--as", dest="as_user", required=True, help="UPN of the hiring manager")
    slots.add_argument("--interviewer", action="append", required=True)
    slots.add_argument("--room", action="append", default=[])
    slots.add_argument("--duration", type=int, required=True, help="minutes")
    slots.add_argument("--start", required=True, help="ISO 8601, e.g. 2026-12-01T00:00:00Z")
    slots.add_argument("--end", required=True)
    slots.add_argument("--step", type=int, default=15)
    slots.add_argument("--buffer", type=int, default=0)
    slots.add_argument("--notice", type=int, default=None)
    slots.add_argument("--all", action="store_true")
    slots.add_argument("--json", action="store_true")
    slots.add_argument("--service-url", default=None)
    tenant = sub.add_parser("tenant", help="tenant onboarding")
    tsub = tenant.add_subparsers(dest="tenant_command")
    add = tsub.add_parser("add", help="store a tenant's app credential (encrypted)")
    add.add_argument("--tenant-id", required=True)
    add.add_argument("--client-id", default=None)
    add.add_argument("--secret-env", default="OPENSLOT_TENANT_CLIENT_SECRET",
                     help="environment variable holding the client secret")
    audit = sub.add_parser("audit", help="audit log")
    asub = audit.add_subparsers(dest="audit_command")
    asub.add_parser("verify")
    exp = asub.add_parser("export")
    exp.add_argument("--tenant", required=True)
    exp.add_argument("--since", required=True)
    keys = sub.add_parser("keys", help="key-encryption keys")
    ksub = keys.add_subparsers(dest="keys_command")
    ksub.add_parser("init")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings(os.environ)
    command = args.command or "serve"
    if command == "serve":
        asyncio.run(serve(settings))
        return 0
    if command == "migrate":
        return _migrate(settings)
    if command == "slots":
        from calendar_backend.cli_slots import run_slots

        return asyncio.run(run_slots(settings, args))
    if command == "tenant" and args.tenant_command == "add":
        secret = os.environ.get(args.secret_env, "")
        if not secret:
            print(f"{args.secret_env} is empty", file=sys.stderr)  # noqa: T201
            return 2
        asyncio.run(add_tenant(settings, args.tenant_id, args.client_id or settings.client_id,
                               secret, []))
        return 0
    if command == "audit" and args.audit_command == "verify":
        return asyncio.run(audit_verify(settings))
    if command == "audit" and args.audit_command == "export":
        since = datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return asyncio.run(audit_export(settings, args.tenant, since))
    if command == "keys" and args.keys_command == "init":
        from calendar_backend.keyring import create_keyring

        if settings.key_file.exists():
            print(f"{settings.key_file} exists; leaving it alone")  # noqa: T201
            return 0
        create_keyring(Path(settings.key_file))
        return 0
    _parser().print_help()
    return 2


def _migrate(settings: BackendSettings) -> int:
    async def go() -> None:
        engine = storage.create_engine(settings.database_url)
        try:
            await storage.migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(go())
    return 0


if __name__ == "__main__":
    sys.exit(main())
