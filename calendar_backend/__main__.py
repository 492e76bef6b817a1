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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from calendar_backend import storage
from calendar_backend.crypto import CredentialCipher
from calendar_backend.settings import BackendSettings, load_settings

if TYPE_CHECKING:
    from calendar_backend.graph import GraphClient
    from calendar_backend.recovery import Reconciler
    from calendar_backend.tokens import TokenBroker

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
    """Run the API until interrupted. A keyring that cannot be used ends start-up with one line on
    stderr and exit status 2 (no traceback).

    Raises:
        SystemExit: the keyring file is missing, unreadable, too open or malformed.
    """
    from calendar_backend.keyring import KeyringError

    try:
        await _serve(settings)
    except KeyringError as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None


async def _serve(settings: BackendSettings) -> None:
    from aiohttp import web

    async with open_runtime(settings) as rt:
        app = build_web_app(rt)
        assert isinstance(app, web.Application)  # noqa: S101
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else settings.port  # port 0 = any
        print(f"Calendar Service listening on http://{settings.host}:{port}",  # noqa: T201
              flush=True)
        background = start_admin_tasks(rt)
        background.append(start_recovery(rt))
        try:
            await asyncio.Event().wait()
        finally:
            for task in background:
                task.cancel()
            await runner.cleanup()


def build_clients(rt: Runtime) -> tuple[TokenBroker, GraphClient]:
    """The token broker and Graph client the admin jobs use (same settings as the API)."""
    from calendar_backend.graph import GraphClient
    from calendar_backend.tokens import TokenBroker

    s = rt.settings
    graph = GraphClient(rt.session, s.graph_base_url, timeout_s=s.graph_timeout_s,
                        max_attempts=s.graph_max_attempts, max_backoff_s=s.graph_max_backoff_s,
                        concurrency=s.graph_concurrency)
    tokens = TokenBroker(s.authority_host, str(s.ca_bundle) if s.ca_bundle else None,
                         s.graph_scopes)
    return tokens, graph


def start_admin_tasks(rt: Runtime, interval: timedelta = timedelta(hours=1)) -> list[asyncio.Task[None]]:
    """Hourly background work in `serve`: the leaver job and a signed audit checkpoint."""
    from calendar_backend.lifecycle import LeaverJob, run_every

    tokens, graph = build_clients(rt)
    job = LeaverJob(rt.store, rt.cipher, tokens, graph)
    return [asyncio.create_task(run_every(interval, job.run_all)),
            asyncio.create_task(run_every(interval, lambda: audit_checkpoint(rt)))]


def start_recovery(rt: Runtime) -> asyncio.Task[None]:
    """Reconcile stale pending bookings now (start-up) and every `recovery_interval_s`."""
    reconciler = build_reconciler(rt)
    interval = rt.settings.recovery_interval_s
    if interval <= 0:
        return asyncio.create_task(_run_recovery_once(reconciler))
    return asyncio.create_task(reconciler.run_forever(timedelta(seconds=interval)))


async def _run_recovery_once(reconciler: Reconciler) -> None:
    await reconciler.run_once()


def build_reconciler(rt: Runtime, stale_min: int | None = None) -> Reconciler:
    """The crash-recovery reconciler (calendar_backend/recovery.py) wired like the API."""
    from calendar_backend.recovery import Reconciler

    tokens, graph = build_clients(rt)
    minutes = rt.settings.recovery_stale_min if stale_min is None else stale_min
    return Reconciler(rt.store, rt.cipher, tokens, graph, stale_after=timedelta(minutes=minutes))


async def recovery_run(settings: BackendSettings, stale_min: int | None) -> int:
    """`recovery run`: one reconciliation pass; prints the report. Exit 0 when none is left."""
    async with open_runtime(settings) as rt:
        report = await build_reconciler(rt, stale_min).run_once()
    print(json.dumps(report.to_json()))  # noqa: T201
    return 0 if report.left_pending == 0 else 1


async def audit_checkpoint(rt: Runtime, at: datetime | None = None) -> dict[str, object]:
    """Sign the audit head with the keyring's signing key (outside the DB), store it and append
    it to `OPENSLOT_AUDIT_CHECKPOINT_FILE` (a 0600 JSON-lines file). Returns the checkpoint."""
    from calendar_backend.audit import write_checkpoint
    from calendar_backend.keyring import load_keyring

    key_id, key = load_keyring(rt.settings.key_file).signing_key()
    async with rt.store.transaction() as tx:
        checkpoint = (await write_checkpoint(tx, key_id, key, at=at)).to_dict()
    path = rt.settings.audit_checkpoint_file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(checkpoint, sort_keys=True) + "\n")
    return checkpoint


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
    engine = storage.create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            report = await verify_audit(conn, signing_key=dict(ring.signing))
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
    _admin_parsers(sub, tsub, asub, ksub)
    recovery = sub.add_parser("recovery", help="crash recovery of pending bookings")
    rsub = recovery.add_subparsers(dest="recovery_command")
    rrun = rsub.add_parser("run", help="reconcile stale pending bookings once")
    rrun.add_argument("--stale-min", type=int, default=None,
                      help="minutes a pending booking must be old (default OPENSLOT_RECOVERY_STALE_MIN)")
    return p


def _admin_parsers(sub: Any, tsub: Any, asub: Any, ksub: Any) -> None:
    """Onboarding, allow-list, leavers, audit checkpoints and key rotation (README: admins)."""
    onboard = tsub.add_parser("onboard", help="admin consent, sealed credential, self-test")
    selftest = tsub.add_parser("selftest", help="re-run the onboarding self-test")
    for cmd in (onboard, selftest):
        cmd.add_argument("--tenant-id", required=True)
        cmd.add_argument("--test-mailbox", required=True, help="a mailbox OpenSlot may read")
        cmd.add_argument("--outside-mailbox", required=True,
                         help="a mailbox outside the access policy / allow-list")
        cmd.add_argument("--client-id", default=None)
        cmd.add_argument("--secret-env", default="OPENSLOT_TENANT_CLIENT_SECRET")
    onboard.add_argument("--paste", action="store_true",
                         help="paste the redirected URL instead of listening on localhost")
    onboard.add_argument("--listen-port", type=int, default=0)
    onboard.add_argument("--timeout", type=float, default=600.0, help="seconds")
    allow = sub.add_parser("allowlist", help="OpenSlot's allow-list of schedulable mailboxes")
    alsub = allow.add_subparsers(dest="allowlist_command")
    for name in ("add", "remove", "list"):
        cmd = alsub.add_parser(name)
        cmd.add_argument("--tenant", required=True)
        if name != "list":
            who = cmd.add_mutually_exclusive_group(required=True)
            who.add_argument("--user", help="mailbox address")
            who.add_argument("--group", help="group object id (members are resolved live)")
    life = sub.add_parser("lifecycle", help="archive users who left the tenant")
    lsub = life.add_subparsers(dest="lifecycle_command")
    run = lsub.add_parser("run", help="one directory delta round")
    run.add_argument("--tenant", default=None)
    asub.add_parser("checkpoint", help="sign the audit head (key outside the DB)")
    ksub.add_parser("add")
    ksub.add_parser("promote").add_argument("key_id", type=int)
    ksub.add_parser("reencrypt")
    ksub.add_parser("retire").add_argument("key_id", type=int)
    ksub.add_parser("status")


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
    if _is_admin_command(args):
        return asyncio.run(_run_admin(settings, args))
    if command == "keys" and args.keys_command == "init":
        from calendar_backend.keyring import create_keyring

        if settings.key_file.exists():
            print(f"{settings.key_file} exists; leaving it alone")  # noqa: T201
            return 0
        create_keyring(Path(settings.key_file))
        return 0
    _parser().print_help()
    return 2


_ADMIN_COMMANDS = {("tenant", "onboard"), ("tenant", "selftest"), ("allowlist", "add"),
                   ("allowlist", "remove"), ("allowlist", "list"), ("lifecycle", "run"),
                   ("audit", "checkpoint"), ("keys", "add"), ("keys", "promote"),
                   ("keys", "reencrypt"), ("keys", "retire"), ("keys", "status"),
                   ("recovery", "run")}


def _is_admin_command(args: argparse.Namespace) -> bool:
    sub = getattr(args, f"{args.command}_command", None) if args.command else None
    return (args.command, sub) in _ADMIN_COMMANDS


def _emit(doc: object) -> None:
    print(json.dumps(doc, sort_keys=True), flush=True)  # noqa: T201


async def _run_admin(settings: BackendSettings, args: argparse.Namespace) -> int:
    """Dispatch the admin commands; every one prints JSON and returns an exit code."""
    from calendar_backend import rotation

    if args.command == "keys" and args.keys_command in {"add", "promote"}:
        if args.keys_command == "add":
            _emit({"added": rotation.add(settings.key_file)})
        else:
            rotation.promote(settings.key_file, args.key_id)
            _emit({"primary": args.key_id})
        return 0
    if args.command == "recovery":
        return await recovery_run(settings, args.stale_min)
    async with open_runtime(settings) as rt:
        if args.command == "keys":
            return await _keys(rt, args)
        if args.command == "audit":
            _emit(await audit_checkpoint(rt))
            return 0
        if args.command == "allowlist":
            return await _allowlist(rt, args)
        if args.command == "lifecycle":
            return await _lifecycle(rt, args)
        return await _onboard(rt, args)


async def _keys(rt: Runtime, args: argparse.Namespace) -> int:
    from calendar_backend import rotation

    key_file = rt.settings.key_file
    if args.keys_command == "reencrypt":
        done = await rotation.reencrypt(rt.store, key_file)
        _emit({"rewritten": done.rewritten, "raced": done.raced, "unknown": done.unknown})
    elif args.keys_command == "retire":
        try:
            await rotation.retire(rt.store, key_file, args.key_id)
        except rotation.RotationError as exc:
            print(str(exc), file=sys.stderr)  # noqa: T201
            return 1
        _emit({"retired": args.key_id})
    _emit((await rotation.status(rt.store, key_file)).to_json())
    return 0


async def _allowlist(rt: Runtime, args: argparse.Namespace) -> int:
    from calendar_backend import allowlist

    async with rt.store.transaction() as tx:
        if args.allowlist_command != "list":
            entry = allowlist.parse_entry("user" if args.user else "group",
                                          args.user or args.group)
            change = allowlist.add_entry if args.allowlist_command == "add" else \
                allowlist.remove_entry
            await change(tx, args.tenant, entry)
        entries = await allowlist.list_entries(tx, args.tenant)
    _emit({"tenant": args.tenant, "allow_all": not entries,
           "entries": [{"kind": e.kind.value, "value": e.value} for e in entries]})
    return 0


async def _lifecycle(rt: Runtime, args: argparse.Namespace) -> int:
    from calendar_backend.lifecycle import LeaverJob

    tokens, graph = build_clients(rt)
    job = LeaverJob(rt.store, rt.cipher, tokens, graph)
    reports = [await job.run_tenant(args.tenant)] if args.tenant else await job.run_all()
    _emit([{"tenant": r.tenant_id, "full_round": r.full_round, "archived": list(r.archived),
            "revoked_offers": r.revoked_offers, "deleted_token_caches": r.deleted_caches}
           for r in reports])
    return 0


async def _onboard(rt: Runtime, args: argparse.Namespace) -> int:
    from calendar_backend.onboarding import LoopbackReceiver, Onboarding, PastedUrl
    from calendar_backend.tokens import AppCredential

    secret = os.environ.get(args.secret_env, "")
    if not secret:
        print(f"{args.secret_env} is empty", file=sys.stderr)  # noqa: T201
        return 2
    credential = AppCredential(args.client_id or rt.settings.client_id, secret)
    tokens, graph = build_clients(rt)
    flow = Onboarding(rt.store, rt.cipher, tokens, graph)
    tenant_id = args.tenant_id
    if args.tenant_command == "onboard":
        def show(url: str) -> None:
            print(f"Open this URL as a global admin of the tenant:\n{url}", flush=True)  # noqa: T201

        if args.paste:
            source = PastedUrl("http://localhost/openslot-cli",
                               lambda: asyncio.to_thread(input, "Redirected URL: "))
            tenant_id = await flow.receive_consent(
                source, authority_host=rt.settings.authority_host, tenant=tenant_id,
                client_id=credential.client_id, show=show, timeout_s=args.timeout)
        else:
            async with LoopbackReceiver(args.listen_port) as receiver:
                tenant_id = await flow.receive_consent(
                    receiver, authority_host=rt.settings.authority_host, tenant=tenant_id,
                    client_id=credential.client_id, show=show, timeout_s=args.timeout)
        await flow.store_credential(tenant_id, credential)
    report = await flow.self_test(tenant_id, credential, test_mailbox=args.test_mailbox,
                                  outside_mailbox=args.outside_mailbox)
    _emit(report.to_json())
    return 0 if report.ok else 1


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
