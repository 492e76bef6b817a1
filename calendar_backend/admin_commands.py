"""The admin commands behind ``python -m calendar_backend`` (parsed and dispatched in admin.py).

Each prints one JSON document on stdout (:func:`calendar_backend.cli.emit`) and returns an exit
code, or raises :class:`calendar_backend.cli.CliError`; tenant changes are audited.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import uuid
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Final

from calendar_backend import allowlist, rotation, storage
from calendar_backend.admin_settings import run_tenant_settings
from calendar_backend.audit import (
    AuditEvent,
    append_audit,
    export_audit,
    load_checkpoint_file,
    verify_audit,
)
from calendar_backend.cli import (
    EXIT_CONFIG,
    EXIT_FOUND_PROBLEM,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UPSTREAM,
    EXIT_USAGE,
    CliError,
    emit,
    local_actor,
    read_secret,
)
from calendar_backend.errors import CalendarError, DecryptionError, UpstreamError
from calendar_backend.gate import MailboxGate
from calendar_backend.keyring import add_signing_key, create_keyring, load_keyring
from calendar_backend.lifecycle import LeaverJob
from calendar_backend.onboarding import (
    GROUP_ROLE,
    LoopbackReceiver,
    Onboarding,
    PastedUrl,
    granted_roles,
)
from calendar_backend.pool_groups import PoolGroups
from calendar_backend.pools_admin import run_pool
from calendar_backend.runtime import (
    Runtime,
    audit_checkpoint,
    build_clients,
    build_reconciler,
    open_runtime,
)
from calendar_backend.sealing import tenant_credential_aad
from calendar_backend.settings import BackendSettings
from calendar_backend.tenancy import Tenancy, TenantContext
from calendar_backend.tokens import AppCredential, TokenBroker

_TENANT_ID: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


async def recovery_run(settings: BackendSettings, stale_min: int | None) -> int:
    """`recovery run`: one reconciliation pass; prints the report. Exit 0 when none is left."""
    async with open_runtime(settings) as rt:
        report = await build_reconciler(rt, stale_min).run_once()
    emit(report.to_json())
    return 0 if report.left_pending == 0 else EXIT_FOUND_PROBLEM


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
    if not _TENANT_ID.fullmatch(tenant_id):
        raise CliError(
            EXIT_USAGE,
            "not a tenant id",
            "use the tenant's directory id (a GUID, Entra admin center > Overview)",
        )
    credential = AppCredential(client_id, secret)
    async with open_runtime(settings) as rt:
        tokens, _graph = build_clients(rt)
        await prove_credential(tokens, tenant_id, credential)
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


async def prove_credential(tokens: TokenBroker, tenant_id: str, credential: AppCredential) -> str:
    """An app-only token for ``credential``, or a CliError saying Entra refused it."""
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


async def stored_credential(rt: Runtime, tenant_id: str) -> AppCredential:
    """The tenant's stored app credential, or a CliError (unknown tenant, does not open)."""
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


async def audit_verify(settings: BackendSettings, files: list[str] | None = None) -> int:
    """Check the audit chain against the database's checkpoints and every signed checkpoint in
    the off-box files (default: OPENSLOT_AUDIT_CHECKPOINT_FILE); print the first broken row.
    Exit code 0 only when intact."""
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
    engine = storage.create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = [row async for row in export_audit(conn, tenant_id, since)]
    finally:
        await engine.dispose()
    emit({"ok": True, "tenant_id": tenant_id, "since": since.isoformat(), "rows": rows})
    return 0


def keys_init(settings: BackendSettings) -> int:
    """`keys init`: create the key file (mode 0600), or report the one already there."""
    path = Path(settings.key_file)
    if path.exists():
        ring = load_keyring(path)  # an unusable existing file is an error, not "left alone"
        emit({"ok": True, "created": False, "key_file": str(path), "primary": ring.primary_id})
        return 0
    ring = create_keyring(path)
    emit({"ok": True, "created": True, "key_file": str(path), "primary": ring.primary_id})
    return 0


async def run_admin(settings: BackendSettings, args: argparse.Namespace) -> int:
    """Dispatch the admin commands; every one prints one JSON document and returns an exit code."""
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
        if args.command == "pool":
            return await run_pool(rt.store, args, group_members=partial(_group_members, rt))
        if args.command == "tenant-settings":
            return await run_tenant_settings(rt.store, args)
        return await _onboard(rt, args)


async def _keys(rt: Runtime, args: argparse.Namespace) -> int:
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


async def _group_members(rt: Runtime, tenant_id: str, group_id: str) -> list[str] | None:
    """A pool's Entra group members read now with the tenant's app-only token, as the service
    reads them (`pool_groups.PoolGroups`), for `pool show`; ``None`` when they cannot be read."""
    tokens, graph = build_clients(rt)
    try:
        credential = await stored_credential(rt, tenant_id)
    except CliError:
        return None
    gate = MailboxGate(rt.store, graph, allowlist.MailboxAllowList(graph))
    tenancy = Tenancy(rt.store, rt.cipher, tokens, gate, lambda: datetime.now(UTC))
    found = await PoolGroups(graph, tenancy).members(TenantContext(tenant_id, credential), group_id)
    return None if found is None else [m.address for m in found]


async def _allowlist(rt: Runtime, args: argparse.Namespace) -> int:
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
            token = await prove_credential(tokens, tenant_id, await stored_credential(rt, tenant_id))
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
    tokens, graph = build_clients(rt)
    flow = Onboarding(rt.store, rt.cipher, tokens, graph, actor=local_actor())
    tenant_id = args.tenant_id
    if args.tenant_command == "selftest":
        credential = await stored_credential(rt, tenant_id)
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
        await prove_credential(tokens, tenant_id, credential)
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


def migrate_database(settings: BackendSettings) -> int:
    """`migrate`: create or upgrade the database schema to Alembic head."""

    async def go() -> None:
        engine = storage.create_engine(settings.database_url)
        try:
            await storage.migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(go())
    emit({"ok": True, "migrated": True})
    return 0
