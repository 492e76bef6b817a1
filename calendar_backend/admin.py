"""`python -m calendar_backend [serve|migrate|slots|tenant|allowlist|lifecycle|audit|keys|recovery|pool] ...`.

The command line: the argument parsers, :func:`main` (dispatch, and the one-JSON-document output
contract of calendar_backend/cli.py: every failure becomes one ``{"ok": false, ...}`` line and its
exit code, never a traceback). This is the only place that reads the environment (through
`load_settings`). `serve` runs calendar_backend/runtime.py; the other commands are in
calendar_backend/admin_commands.py and calendar_backend/cli_slots.py.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from calendar_backend.admin_commands import (
    add_tenant,
    audit_export,
    audit_verify,
    keys_init,
    migrate_database,
    run_admin,
)
from calendar_backend.admin_settings import add_settings_parser
from calendar_backend.cli import (
    EXIT_CONFIG,
    EXIT_INTERNAL,
    EXIT_REFUSED,
    EXIT_UPSTREAM,
    EXIT_USAGE,
    CliError,
    JsonArgumentParser,
    emit,
    quiet_logging,
    read_secret,
)
from calendar_backend.cli_slots import run_slots
from calendar_backend.errors import CalendarError, UpstreamError, ValidationError
from calendar_backend.keyring import KeyringError
from calendar_backend.onboarding import ConsentError
from calendar_backend.pools_admin import SUBCOMMANDS as POOL_SUBCOMMANDS
from calendar_backend.pools_admin import add_pool_parsers
from calendar_backend.rotation import RotationError
from calendar_backend.runtime import serve
from calendar_backend.settings import load_settings

log = logging.getLogger("calendar_backend")


def build_parser() -> argparse.ArgumentParser:
    """Every command and option of ``python -m calendar_backend`` (usage errors raise CliError)."""
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
    add_pool_parsers(sub)
    add_settings_parser(sub)
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
    *(("pool", name) for name in POOL_SUBCOMMANDS),
    ("tenant-settings",),
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
    args = build_parser().parse_args(argv)
    command = args.command or "serve"
    sub = getattr(args, f"{command}_command", None) if args.command else None
    if command in {"tenant", "audit", "keys", "allowlist", "lifecycle", "recovery", "pool"} and not sub:
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
        return migrate_database(settings)
    if command == "slots":
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
        return keys_init(settings)
    return asyncio.run(run_admin(settings, args))


def _parse_since(text: str) -> datetime:
    try:
        since = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            EXIT_USAGE, "--since is not an ISO 8601 time", "e.g. --since 2026-12-01T00:00:00Z"
        ) from None
    return since if since.tzinfo is not None else since.replace(tzinfo=UTC)
