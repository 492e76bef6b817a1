"""`python -m calendar_backend [serve|migrate|slots|tenant|audit|keys] ...`: the composition root.

This is the only place that reads the environment (through `load_settings`) and wires the service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from calendar_backend import storage
from calendar_backend.cli import (
    EXIT_CONFIG,
    EXIT_FOUND_PROBLEM,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UPSTREAM,
    EXIT_USAGE,
    CliError,
    JsonArgumentParser,
    emit,
    local_actor,
    quiet_logging,
    read_secret,
)
from calendar_backend.crypto import CredentialCipher
from calendar_backend.errors import DecryptionError
from calendar_backend.settings import BackendSettings, load_settings

if TYPE_CHECKING:
    from calendar_backend.graph import GraphClient
    from calendar_backend.recovery import Reconciler
    from calendar_backend.tokens import TokenBroker

log = logging.getLogger("calendar_backend")
_TENANT_ID: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


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
    ssl_ctx = ssl.create_default_context(cafile=str(settings.ca_bundle) if settings.ca_bundle else None)
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
    validator = TokenValidator(
        jwks,
        authority_host=s.authority_host,
        client_id=s.client_id,
        required_scope=s.required_scope,
        leeway_s=s.clock_skew_s,
    )
    graph = GraphClient(
        rt.session,
        s.graph_base_url,
        timeout_s=s.graph_timeout_s,
        max_attempts=s.graph_max_attempts,
        max_backoff_s=s.graph_max_backoff_s,
        concurrency=s.graph_concurrency,
    )
    tokens = TokenBroker(s.authority_host, str(s.ca_bundle) if s.ca_bundle else None, s.graph_scopes)
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
        await check_keyring_opens_store(rt)
        app = build_web_app(rt)
        assert isinstance(app, web.Application)  # noqa: S101
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else settings.port  # port 0 = any
        print(  # noqa: T201
            f"Calendar Service listening on http://{settings.host}:{port}",
            flush=True,
        )
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
    graph = GraphClient(
        rt.session,
        s.graph_base_url,
        timeout_s=s.graph_timeout_s,
        max_attempts=s.graph_max_attempts,
        max_backoff_s=s.graph_max_backoff_s,
        concurrency=s.graph_concurrency,
    )
    tokens = TokenBroker(s.authority_host, str(s.ca_bundle) if s.ca_bundle else None, s.graph_scopes)
    return tokens, graph


def start_admin_tasks(rt: Runtime, interval: timedelta = timedelta(hours=1)) -> list[asyncio.Task[None]]:
    """Hourly background work in `serve`: the leaver job and a signed audit checkpoint."""
    from calendar_backend.lifecycle import LeaverJob, run_every

    tokens, graph = build_clients(rt)
    job = LeaverJob(rt.store, rt.cipher, tokens, graph)
    return [
        asyncio.create_task(run_every(interval, job.run_all)),
        asyncio.create_task(run_every(interval, lambda: audit_checkpoint(rt))),
    ]


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
    emit(report.to_json())
    return 0 if report.left_pending == 0 else EXIT_FOUND_PROBLEM


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


async def add_tenant(
    settings: BackendSettings,
    tenant_id: str,
    client_id: str,
    secret: str,
    *,
    replace: bool = False,
    actor: str = "",
) -> dict[str, object]:
    """`tenant add`: prove the credential (an app-only token from Entra ID), then store it sealed.

    Refuses to overwrite a stored credential unless ``replace``; storing the same credential again
    changes nothing. Audited as ``tenant.add``.

    Raises:
        CliError: the tenant id is malformed, Entra refuses the credential, or one is stored.
    """
    from calendar_backend.audit import AuditEvent, append_audit
    from calendar_backend.cli import local_actor
    from calendar_backend.sealing import tenant_credential_aad
    from calendar_backend.tokens import AppCredential

    if not _TENANT_ID.fullmatch(tenant_id):
        raise CliError(
            EXIT_USAGE,
            "not a tenant id",
            "use the tenant's directory id (a GUID, Entra admin center > Overview)",
        )
    credential = AppCredential(client_id, secret)
    async with open_runtime(settings) as rt:
        tokens, _graph = build_clients(rt)
        await _prove_credential(tokens, tenant_id, credential)
        async with rt.store.transaction() as tx:
            row = await storage.get_tenant(tx, tenant_id)
        if row is not None and row.status is storage.TenantStatus.ACTIVE:
            try:
                stored = AppCredential.from_bytes(
                    rt.cipher.decrypt(row.credential_blob, aad=tenant_credential_aad(tenant_id))
                )
            except DecryptionError:
                stored = None
            if stored == credential:
                return {"ok": True, "tenant_id": tenant_id, "stored": False, "unchanged": True}
            if not replace:
                raise CliError(
                    EXIT_REFUSED,
                    "a credential is already stored for this tenant",
                    "pass --replace to overwrite it (the new one was checked with Entra ID first)",
                )
        blob = rt.cipher.encrypt(credential.to_bytes(), aad=tenant_credential_aad(tenant_id))
        async with rt.store.transaction() as tx:
            await storage.put_tenant(tx, tenant_id, blob, rt.cipher.key_id_of(blob), [])
            await append_audit(
                tx,
                AuditEvent(
                    tenant_id=tenant_id,
                    actor_oid=actor or local_actor(),
                    operation="tenant.add",
                    targets=(),
                    result="replaced" if row is not None else "ok",
                    at=datetime.now(UTC),
                    request_id=f"cli-{uuid.uuid4()}",
                ),
            )
    return {"ok": True, "tenant_id": tenant_id, "stored": True, "replaced": row is not None}


async def _prove_credential(tokens: TokenBroker, tenant_id: str, credential: object) -> str:
    """An app-only token for ``credential``, or a CliError saying Entra refused it."""
    from calendar_backend.errors import CalendarError, UpstreamError
    from calendar_backend.tokens import AppCredential

    assert isinstance(credential, AppCredential)  # noqa: S101
    try:
        return await tokens.for_app(tenant_id, credential)
    except UpstreamError as exc:
        raise CliError(
            EXIT_UPSTREAM,
            "Microsoft Entra ID could not be reached",
            "check OPENSLOT_AUTHORITY_HOST and the network, then retry",
        ) from exc
    except CalendarError as exc:
        raise CliError(
            EXIT_UPSTREAM,
            f"Microsoft Entra ID refused the credential ({exc.code})",
            "check the client id and secret (Entra admin center > App registrations "
            "> Certificates & secrets) and that admin consent was granted",
        ) from exc


async def stored_credential(rt: Runtime, tenant_id: str) -> object:
    """The tenant's stored app credential, or a CliError (unknown tenant, does not open)."""
    from calendar_backend.sealing import tenant_credential_aad
    from calendar_backend.tokens import AppCredential

    async with rt.store.transaction() as tx:
        row = await storage.get_tenant(tx, tenant_id)
    if row is None or row.status is not storage.TenantStatus.ACTIVE:
        raise CliError(
            EXIT_REFUSED,
            "unknown tenant: no credential is stored for it",
            "onboard it first (`tenant onboard` or `tenant add`)",
        )
    try:
        raw = rt.cipher.decrypt(row.credential_blob, aad=tenant_credential_aad(tenant_id))
    except DecryptionError:
        raise CliError(
            EXIT_CONFIG,
            "the stored credential does not open with this keyring",
            "OPENSLOT_KEY_FILE is not the keyring the credential was sealed with; "
            "restore it, or run `tenant add --replace`",
        ) from None
    return AppCredential.from_bytes(raw)


async def check_keyring_opens_store(rt: Runtime) -> None:
    """Start-up check: every stored envelope names a key of this keyring, and every tenant
    credential opens. Raises CliError (config) otherwise (e.g. `keys init` after a lost key file).
    """
    from calendar_backend.keyring import load_keyring
    from calendar_backend.sealing import tenant_credential_aad

    active = set(load_keyring(rt.settings.key_file).active_ids)
    failed = 0
    async with rt.store.transaction() as tx:
        blobs = [b async for b in storage.iter_encrypted(tx)]
    for blob in blobs:  # every envelope names an active key; tenant credentials really open
        if blob.key_id not in active:
            failed += 1
        elif blob.kind is storage.BlobKind.TENANT_CREDENTIAL:
            try:
                rt.cipher.decrypt(blob.blob, aad=tenant_credential_aad(blob.ident[0]))
            except DecryptionError:
                failed += 1
    if failed:
        raise CliError(
            EXIT_CONFIG,
            f"{failed} of {len(blobs)} stored envelopes do not open with the keyring {rt.settings.key_file}",
            "restore the key file they were sealed with (e.g. from Key Vault; a new "
            "`keys init` cannot open them); `keys status` lists the key ids in use",
        )


async def audit_verify(settings: BackendSettings, files: list[str] | None = None) -> int:
    """Check the audit chain against the database's checkpoints and every signed checkpoint in
    the off-box files (default: OPENSLOT_AUDIT_CHECKPOINT_FILE); print the first broken row.
    Exit code 0 only when intact."""
    from calendar_backend.audit import load_checkpoint_file, verify_audit
    from calendar_backend.keyring import load_keyring

    ring = load_keyring(settings.key_file)
    paths = [Path(f) for f in files] if files else [settings.audit_checkpoint_file]
    external = []
    warnings: list[str] = []
    for path in paths:
        if not path.exists():
            if files:
                raise CliError(
                    EXIT_CONFIG,
                    f"checkpoint file {path} does not exist",
                    "pass the off-box copy of OPENSLOT_AUDIT_CHECKPOINT_FILE",
                )
            warnings.append(
                f"no off-box checkpoint file at {path}: only the database's checkpoints were checked"
            )
            continue
        try:
            external.extend(load_checkpoint_file(path))
        except (OSError, ValueError):
            raise CliError(
                EXIT_CONFIG,
                f"checkpoint file {path} is unreadable or malformed",
                "each line must be one checkpoint as `audit checkpoint` writes it",
            ) from None
    engine = storage.create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            report = await verify_audit(conn, signing_key=dict(ring.signing), external=external)
    finally:
        await engine.dispose()
    emit(
        {
            "ok": report.ok,
            "rows": report.rows,
            "first_broken_seq": report.first_broken_seq,
            "reason": report.reason,
            "truncated": report.truncated,
            "checkpoints_checked": report.checkpoints_checked,
            "off_box_checkpoints": len(external),
            "warnings": warnings,
        }
    )
    return EXIT_OK if report.ok else EXIT_FOUND_PROBLEM


async def audit_export(settings: BackendSettings, tenant_id: str, since: datetime) -> int:
    """Print the tenant's audit rows since a time as one JSON document (`rows`, in seq order)."""
    from calendar_backend.audit import export_audit

    engine = storage.create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = [row async for row in export_audit(conn, tenant_id, since)]
    finally:
        await engine.dispose()
    emit({"ok": True, "tenant_id": tenant_id, "since": since.isoformat(), "rows": rows})
    return 0


def _parser() -> argparse.ArgumentParser:
    p = JsonArgumentParser(prog="python -m calendar_backend")
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
    slots.add_argument("--json", action="store_true", help="(the output is always JSON)")
    slots.add_argument("--service-url", default=None)
    tenant = sub.add_parser("tenant", help="tenant onboarding")
    tsub = tenant.add_subparsers(dest="tenant_command")
    add = tsub.add_parser("add", help="check a tenant's app credential with Entra ID, store it sealed")
    add.add_argument("--tenant-id", required=True)
    add.add_argument("--client-id", default=None)
    add.add_argument(
        "--replace", action="store_true", help="overwrite the stored credential (refused otherwise)"
    )
    _secret_options(add)
    audit = sub.add_parser("audit", help="audit log")
    asub = audit.add_subparsers(dest="audit_command")
    verify = asub.add_parser("verify", help="check the hash chain and every signed checkpoint")
    verify.add_argument(
        "--checkpoints",
        action="append",
        default=None,
        metavar="FILE",
        help="an off-box checkpoint file (repeatable; default OPENSLOT_AUDIT_CHECKPOINT_FILE)",
    )
    exp = asub.add_parser("export")
    exp.add_argument("--tenant", required=True)
    exp.add_argument("--since", required=True, help="ISO 8601 time, e.g. 2026-12-01T00:00:00Z")
    keys = sub.add_parser("keys", help="key-encryption keys")
    ksub = keys.add_subparsers(dest="keys_command")
    ksub.add_parser("init")
    _admin_parsers(sub, tsub, asub, ksub)
    recovery = sub.add_parser("recovery", help="crash recovery of pending bookings")
    rsub = recovery.add_subparsers(dest="recovery_command")
    rrun = rsub.add_parser("run", help="reconcile stale pending bookings once")
    rrun.add_argument(
        "--stale-min",
        type=int,
        default=None,
        help="minutes a pending booking must be old (default OPENSLOT_RECOVERY_STALE_MIN)",
    )
    return p


def _secret_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--secret-file", default=None, help="read the client secret from a file")
    cmd.add_argument(
        "--secret-stdin", action="store_true", help="read the client secret from the first line of stdin"
    )
    cmd.add_argument(
        "--secret-env",
        default="OPENSLOT_TENANT_CLIENT_SECRET",
        help="environment variable holding the client secret (the default source)",
    )


def _admin_parsers(sub: Any, tsub: Any, asub: Any, ksub: Any) -> None:
    """Onboarding, allow-list, leavers, audit checkpoints and key rotation (README: admins)."""
    onboard = tsub.add_parser("onboard", help="admin consent, sealed credential, self-test")
    selftest = tsub.add_parser("selftest", help="re-run the onboarding self-test with the stored credential")
    for cmd in (onboard, selftest):
        cmd.add_argument("--tenant-id", required=True)
        cmd.add_argument("--test-mailbox", required=True, help="a mailbox OpenSlot may read")
        cmd.add_argument(
            "--outside-mailbox", required=True, help="a mailbox outside the access policy / allow-list"
        )
    onboard.add_argument("--client-id", default=None)
    onboard.add_argument(
        "--replace", action="store_true", help="overwrite a stored credential (refused otherwise)"
    )
    _secret_options(onboard)
    onboard.add_argument(
        "--paste", action="store_true", help="paste the redirected URL instead of listening on localhost"
    )
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
    ksub.add_parser(
        "rotate-signing", help="new audit checkpoint signing key (old ones kept to verify old checkpoints)"
    )


# Every command and sub-command; tests/admin/test_cli_contract.py must cover each one.
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("serve",),
    ("migrate",),
    ("slots",),
    ("tenant", "add"),
    ("tenant", "onboard"),
    ("tenant", "selftest"),
    ("allowlist", "add"),
    ("allowlist", "remove"),
    ("allowlist", "list"),
    ("lifecycle", "run"),
    ("audit", "verify"),
    ("audit", "export"),
    ("audit", "checkpoint"),
    ("keys", "init"),
    ("keys", "add"),
    ("keys", "promote"),
    ("keys", "reencrypt"),
    ("keys", "retire"),
    ("keys", "status"),
    ("keys", "rotate-signing"),
    ("recovery", "run"),
)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code. Prints one JSON document on stdout."""
    quiet_logging()
    try:
        return _main(argv)
    except CliError as exc:
        emit(exc.to_json())
        return exc.exit_code
    except Exception as exc:  # the CLI answers in JSON, never with a traceback
        failure = _classify(exc)
        if os.environ.get("OPENSLOT_CLI_DEBUG"):
            log.exception("command failed")
        emit(failure.to_json())
        return failure.exit_code


def _classify(exc: BaseException) -> CliError:
    """Map an exception to the CLI's error line (no secrets: messages name paths and ids only)."""
    from sqlalchemy.exc import SQLAlchemyError

    from calendar_backend.errors import CalendarError, UpstreamError, ValidationError
    from calendar_backend.keyring import KeyringError
    from calendar_backend.onboarding import ConsentError
    from calendar_backend.rotation import RotationError

    if isinstance(exc, KeyringError):
        return CliError(
            EXIT_CONFIG,
            f"key file: {exc}",
            "check OPENSLOT_KEY_FILE (mode 0600, a keyring `keys init` wrote)",
        )
    if isinstance(exc, ValidationError):
        return CliError(
            EXIT_CONFIG,
            f"setting {exc.field} {exc.reason}",
            "fix the environment variable (see .env.example)",
        )
    if isinstance(exc, ConsentError):
        return CliError(
            EXIT_UPSTREAM,
            str(exc),
            "ask a global admin of the tenant to open the "
            "consent URL again and accept; the tenant was not stored",
        )
    if isinstance(exc, RotationError):
        return CliError(EXIT_REFUSED, str(exc), "run the runbook's previous step first")
    if isinstance(exc, TimeoutError):
        return CliError(EXIT_UPSTREAM, "timed out waiting", "retry; nothing was stored")
    if isinstance(exc, UpstreamError):
        return CliError(
            EXIT_UPSTREAM,
            f"Microsoft refused or is unreachable ({exc.code})",
            "check the tenant's consent and the network, then retry",
        )
    if isinstance(exc, CalendarError):
        return CliError(
            EXIT_UPSTREAM,
            f"refused ({exc.code}): {exc.message}",
            "check the tenant's credential with `tenant selftest`",
        )
    if isinstance(exc, SQLAlchemyError) or (isinstance(exc, ValueError) and "database backend" in str(exc)):
        return CliError(
            EXIT_CONFIG,
            f"database error ({type(exc).__name__})",
            "check OPENSLOT_DATABASE_URL and run `migrate`",
        )
    if isinstance(exc, OSError):
        return CliError(
            EXIT_CONFIG,
            f"file or network error ({type(exc).__name__})",
            "check the paths and URLs in the OPENSLOT_ settings",
        )
    return CliError(
        EXIT_INTERNAL,
        f"internal error ({type(exc).__name__})",
        "run again with OPENSLOT_CLI_DEBUG=1 to log the traceback on stderr",
    )


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    sub = getattr(args, f"{command}_command", None) if args.command else None
    if command in {"tenant", "audit", "keys", "allowlist", "lifecycle", "recovery"} and not sub:
        raise CliError(
            EXIT_USAGE,
            f"usage: `{command}` needs a sub-command",
            f"run `python -m calendar_backend {command} --help`",
        )
    settings = load_settings(os.environ)
    if command == "serve":
        quiet_logging(logging.INFO)
        asyncio.run(serve(settings))
        return 0
    if command == "migrate":
        return _migrate(settings)
    if command == "slots":
        from calendar_backend.cli_slots import run_slots

        return asyncio.run(run_slots(settings, args))
    if command == "tenant" and sub == "add":
        secret = read_secret(env_name=args.secret_env, file=args.secret_file, stdin=args.secret_stdin)
        emit(
            asyncio.run(
                add_tenant(
                    settings,
                    args.tenant_id,
                    args.client_id or settings.client_id,
                    secret,
                    replace=args.replace,
                )
            )
        )
        return 0
    if command == "audit" and sub == "verify":
        return asyncio.run(audit_verify(settings, args.checkpoints))
    if command == "audit" and sub == "export":
        return asyncio.run(audit_export(settings, args.tenant, _parse_since(args.since)))
    if command == "keys" and sub == "init":
        return _keys_init(settings)
    return asyncio.run(_run_admin(settings, args))


def _parse_since(text: str) -> datetime:
    try:
        since = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            EXIT_USAGE, "--since is not an ISO 8601 time", "e.g. --since 2026-12-01T00:00:00Z"
        ) from None
    return since if since.tzinfo is not None else since.replace(tzinfo=UTC)


def _keys_init(settings: BackendSettings) -> int:
    from calendar_backend.keyring import create_keyring, load_keyring

    path = Path(settings.key_file)
    if path.exists():
        ring = load_keyring(path)  # an unusable existing file is an error, not "left alone"
        emit({"ok": True, "created": False, "key_file": str(path), "primary": ring.primary_id})
        return 0
    ring = create_keyring(path)
    emit({"ok": True, "created": True, "key_file": str(path), "primary": ring.primary_id})
    return 0


async def _run_admin(settings: BackendSettings, args: argparse.Namespace) -> int:
    """Dispatch the admin commands; every one prints one JSON document and returns an exit code."""
    from calendar_backend import rotation
    from calendar_backend.keyring import add_signing_key

    if args.command == "keys" and args.keys_command in {"add", "promote", "rotate-signing"}:
        if args.keys_command == "add":
            emit({"ok": True, "added": rotation.add(settings.key_file)})
        elif args.keys_command == "promote":
            rotation.promote(settings.key_file, args.key_id)
            emit({"ok": True, "primary": args.key_id})
        else:
            emit(
                {
                    "ok": True,
                    "signing_key": add_signing_key(settings.key_file),
                    "note": "copy the key file to every replica; old checkpoints still verify",
                }
            )
        return 0
    if args.command == "recovery":
        return await recovery_run(settings, args.stale_min)
    async with open_runtime(settings) as rt:
        if args.command == "keys":
            return await _keys(rt, args)
        if args.command == "audit":
            emit({"ok": True, **await audit_checkpoint(rt)})
            return 0
        if args.command == "allowlist":
            return await _allowlist(rt, args)
        if args.command == "lifecycle":
            return await _lifecycle(rt, args)
        return await _onboard(rt, args)


async def _keys(rt: Runtime, args: argparse.Namespace) -> int:
    from calendar_backend import rotation

    key_file = rt.settings.key_file
    out: dict[str, object] = {"ok": True}
    if args.keys_command == "reencrypt":
        done = await rotation.reencrypt(rt.store, key_file)
        out.update({"rewritten": done.rewritten, "raced": done.raced, "unknown": done.unknown})
    elif args.keys_command == "retire":
        await rotation.retire(rt.store, key_file, args.key_id)
        out["retired_now"] = args.key_id
    out.update((await rotation.status(rt.store, key_file)).to_json())
    emit(out)
    return 0


async def _allowlist(rt: Runtime, args: argparse.Namespace) -> int:
    from calendar_backend import allowlist
    from calendar_backend.audit import AuditEvent, append_audit
    from calendar_backend.onboarding import GROUP_ROLE, granted_roles

    tenant_id = args.tenant
    async with rt.store.transaction() as tx:
        known = await storage.get_tenant(tx, tenant_id)
    if known is None:
        raise CliError(
            EXIT_REFUSED,
            "unknown tenant: it has not been onboarded",
            "check the tenant id (`tenant onboard` or `tenant add` first)",
        )
    command = args.allowlist_command
    if command != "list":
        try:
            entry = allowlist.parse_entry("user" if args.user else "group", args.user or args.group)
        except ValueError as exc:
            raise CliError(
                EXIT_USAGE,
                str(exc),
                "--user takes a mailbox address, --group a "
                "group object id (a GUID, Entra admin center > Groups)",
            ) from None
        if command == "add" and entry.kind is allowlist.EntryKind.GROUP:
            tokens, _graph = build_clients(rt)
            token = await _prove_credential(tokens, tenant_id, await stored_credential(rt, tenant_id))
            if GROUP_ROLE not in granted_roles(token):
                raise CliError(
                    EXIT_REFUSED,
                    f"{GROUP_ROLE} is not granted to OpenSlot, so "
                    "group members cannot be read (every mailbox would be refused)",
                    f"grant {GROUP_ROLE} (application) and admin consent in the "
                    "Entra admin center, or list users with --user",
                )
        async with rt.store.transaction() as tx:
            change = allowlist.add_entry if command == "add" else allowlist.remove_entry
            changed = await change(tx, tenant_id, entry)
            if command == "remove" and not changed:
                raise CliError(
                    EXIT_REFUSED,
                    f"{entry.value} is not on the allow-list",
                    "run `allowlist list` to see the entries",
                )
            if changed:
                await append_audit(
                    tx,
                    AuditEvent(
                        tenant_id=tenant_id,
                        actor_oid=local_actor(),
                        operation=f"allowlist.{command}",
                        targets=(entry.value,),
                        result=entry.kind.value,
                        at=datetime.now(UTC),
                        request_id=f"cli-{uuid.uuid4()}",
                    ),
                )
    async with rt.store.transaction() as tx:
        entries = await allowlist.list_entries(tx, tenant_id)
    emit(
        {
            "ok": True,
            "tenant": tenant_id,
            "allow_all": not entries,
            "entries": [{"kind": e.kind.value, "value": e.value} for e in entries],
        }
    )
    return 0


async def _lifecycle(rt: Runtime, args: argparse.Namespace) -> int:
    from calendar_backend.errors import CalendarError
    from calendar_backend.lifecycle import LeaverJob

    tokens, graph = build_clients(rt)
    job = LeaverJob(rt.store, rt.cipher, tokens, graph)
    if args.tenant:
        await stored_credential(rt, args.tenant)
        tenant_ids = [args.tenant]
    else:
        async with rt.store.transaction() as tx:
            tenant_ids = await storage.list_tenant_ids(tx)
    results: list[dict[str, object]] = []
    for tenant_id in tenant_ids:  # one tenant failing does not stop the others; it is reported
        try:
            r = await job.run_tenant(tenant_id)
        except CalendarError as exc:
            if args.tenant:
                raise
            results.append({"tenant": tenant_id, "ok": False, "error": exc.code})
            continue
        results.append(
            {
                "tenant": r.tenant_id,
                "ok": True,
                "full_round": r.full_round,
                "archived": list(r.archived),
                "revoked_offers": r.revoked_offers,
                "deleted_token_caches": r.deleted_caches,
            }
        )
    ok = all(r["ok"] for r in results)
    emit({"ok": ok, "tenants": results})
    return EXIT_OK if ok else EXIT_FOUND_PROBLEM


async def _onboard(rt: Runtime, args: argparse.Namespace) -> int:
    from calendar_backend.onboarding import LoopbackReceiver, Onboarding, PastedUrl
    from calendar_backend.tokens import AppCredential

    tokens, graph = build_clients(rt)
    flow = Onboarding(rt.store, rt.cipher, tokens, graph, actor=local_actor())
    tenant_id = args.tenant_id
    if args.tenant_command == "selftest":
        credential = await stored_credential(rt, tenant_id)
        assert isinstance(credential, AppCredential)  # noqa: S101
    else:
        secret = read_secret(env_name=args.secret_env, file=args.secret_file, stdin=args.secret_stdin)
        credential = AppCredential(args.client_id or rt.settings.client_id, secret)

        def show(url: str) -> None:  # stderr: stdout carries only the JSON result
            then = "\nThen paste the address the browser ends on and press Enter:" if args.paste else ""
            print(  # noqa: T201
                f"Open this URL as a global admin of the tenant:\n{url}{then}",
                file=sys.stderr,
                flush=True,
            )

        if args.paste:
            source = PastedUrl("http://localhost/openslot-cli", lambda: asyncio.to_thread(input, ""))
            tenant_id = await flow.receive_consent(
                source,
                authority_host=rt.settings.authority_host,
                tenant=tenant_id,
                client_id=credential.client_id,
                show=show,
                timeout_s=args.timeout,
            )
        else:
            async with LoopbackReceiver(args.listen_port) as receiver:
                tenant_id = await flow.receive_consent(
                    receiver,
                    authority_host=rt.settings.authority_host,
                    tenant=tenant_id,
                    client_id=credential.client_id,
                    show=show,
                    timeout_s=args.timeout,
                )
        await _prove_credential(tokens, tenant_id, credential)
        async with rt.store.transaction() as tx:
            row = await storage.get_tenant(tx, tenant_id)
        if row is not None and row.status is storage.TenantStatus.ACTIVE and not args.replace:
            raise CliError(
                EXIT_REFUSED,
                "a credential is already stored for this tenant",
                "pass --replace to overwrite it",
            )
        await flow.store_credential(tenant_id, credential)
    report = await flow.self_test(
        tenant_id, credential, test_mailbox=args.test_mailbox, outside_mailbox=args.outside_mailbox
    )
    emit(report.to_json())
    return 0 if report.ok else EXIT_FOUND_PROBLEM


def _migrate(settings: BackendSettings) -> int:
    async def go() -> None:
        engine = storage.create_engine(settings.database_url)
        try:
            await storage.migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(go())
    emit({"ok": True, "migrated": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
