"""`python -m calendar_backend tenant-settings --tenant T [--count-interview-category on|off]`.

Shows (no option) or changes a tenant's settings (:mod:`calendar_backend.storage.tenant_settings`);
prints one JSON document. A change is audited as ``tenant.settings`` (targets: the setting's name;
result: ``on`` / ``off``) in the change's transaction; setting a value it already has changes and
audits nothing (``"changed": false``). Exit 3 for a tenant that was never onboarded.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from typing import Any

from calendar_backend import storage
from calendar_backend.audit import AuditEvent, append_audit
from calendar_backend.cli import EXIT_REFUSED, CliError, emit, local_actor
from calendar_backend.storage.tenant_settings import (
    TenantSettings,
    get_tenant_settings,
    set_tenant_settings,
)

COUNT_INTERVIEW_CATEGORY = "count_interview_category"


def add_settings_parser(sub: Any) -> None:
    """The ``tenant-settings`` command's parser."""
    cmd = sub.add_parser("tenant-settings", help="show or change a tenant's settings")
    cmd.add_argument("--tenant", required=True)
    cmd.add_argument(
        "--count-interview-category",
        choices=("on", "off"),
        default=None,
        help='pool load also counts members\' Outlook events in the "Interview" category',
    )


def _doc(tenant_id: str, settings: TenantSettings, changed: bool) -> dict[str, object]:
    return {
        "ok": True,
        "tenant": tenant_id,
        COUNT_INTERVIEW_CATEGORY: settings.count_interview_category,
        "changed": changed,
    }


async def run_tenant_settings(
    store: storage.Store, args: argparse.Namespace, *, now: datetime | None = None
) -> int:
    """Run ``tenant-settings``; prints one JSON document; returns 0 or raises CliError."""
    at = now or datetime.now(UTC)
    async with store.transaction() as tx:
        if await storage.get_tenant(tx, args.tenant) is None:
            raise CliError(
                EXIT_REFUSED,
                "unknown tenant: it has not been onboarded",
                "check the tenant id (`tenant onboard` or `tenant add` first)",
            )
        current = await get_tenant_settings(tx, args.tenant)
        if args.count_interview_category is None:
            emit(_doc(args.tenant, current, changed=False))
            return 0
        wanted = TenantSettings(count_interview_category=args.count_interview_category == "on")
        changed = wanted != current
        if changed:
            actor = local_actor()
            await set_tenant_settings(tx, args.tenant, wanted, actor=actor, now=at)
            await append_audit(
                tx,
                AuditEvent(
                    tenant_id=args.tenant,
                    actor_oid=actor,
                    operation="tenant.settings",
                    targets=(COUNT_INTERVIEW_CATEGORY,),
                    result=args.count_interview_category,
                    at=at,
                    request_id=f"cli-{uuid.uuid4()}",
                ),
            )
        emit(_doc(args.tenant, wanted, changed=changed))
    return 0
