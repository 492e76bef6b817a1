"""`python -m calendar_backend pool ...`: interviewer pools from the admin CLI (issue 18).

Sub-commands: ``create`` (``--group <object id>``: an Entra group whose members are drawn too,
read live when the pool is used, `calendar_backend.pool_groups`), ``list``, ``show``,
``add-member``, ``remove-member``, ``set-caps``, ``add-trainee``, ``set-group`` (``--group <object
id>`` or ``--none``), ``set-auto-repair`` (issue 19). Each prints one JSON document
(:func:`calendar_backend.cli.emit`) or raises
:class:`calendar_backend.cli.CliError` (exit 2: bad value; 3: unknown tenant or pool, name taken,
nothing to change). Every change is audited as ``pool.<command>`` with the pool id (and the member's
address) as targets, in the same transaction as the change. ``show`` lists each member's load this
week and next, in their own zone and week, against their caps (the pool card's figures).

This is an I/O module (storage, audit); the rules are in the pure modules
:mod:`calendar_backend.pools`, :mod:`calendar_backend.pools_selection` and
:mod:`calendar_backend.pools_training`.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend import storage
from calendar_backend.audit import AuditEvent, append_audit
from calendar_backend.cli import EXIT_REFUSED, EXIT_USAGE, CliError, emit, local_actor
from calendar_backend.pool_groups import parse_group_id
from calendar_backend.pools import Member, Pool, load_of, parse_hot_window, week_bounds
from calendar_backend.pools_training import Trainee

SUBCOMMANDS: Final = (
    "create",
    "list",
    "show",
    "add-member",
    "remove-member",
    "set-caps",
    "add-trainee",
    "set-group",
    "set-auto-repair",  # issue 19
)
_DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _week_start(text: str) -> int:
    value = text.strip().lower()[:3]
    if value in _DAYS:
        return _DAYS.index(value)
    if value.isdigit() and int(value) < len(_DAYS):
        return int(value)
    raise argparse.ArgumentTypeError("a weekday: mon..sun or 0 (Monday)..6")


def _cap(text: str) -> int | None:
    if text.strip().lower() == "default":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a number of interviews, or 'default'") from None


def add_pool_parsers(sub: Any) -> None:
    """Add ``pool`` and its sub-commands to the top-level sub-parsers."""
    pool = sub.add_parser("pool", help="interviewer pools: members, caps, trainees")
    psub = pool.add_subparsers(dest="pool_command")
    cmds = {name: psub.add_parser(name) for name in SUBCOMMANDS}
    for name, cmd in cmds.items():
        cmd.add_argument("--tenant", required=True)
        if name != "list":
            cmd.add_argument("--name", required=True, help="the pool's name")
        if name in {"add-member", "remove-member", "add-trainee"}:
            cmd.add_argument("--member", required=True, help="mailbox address")
    create = cmds["create"]
    create.add_argument("--role", default="", help="role or skill, e.g. backend")
    create.add_argument("--owner", default=None, help="the pool owner's address")
    create.add_argument("--weekly-cap", type=int, default=5, help="default weekly cap per member")
    create.add_argument("--daily-cap", type=int, default=2, help="default daily cap per member")
    create.add_argument("--group", default=None, help="an Entra group's object id: its members are drawn too")
    group = cmds["set-group"]
    which = group.add_mutually_exclusive_group(required=True)
    which.add_argument("--group", default=None, help="an Entra group's object id (members read live)")
    which.add_argument("--none", action="store_true", help="draw from the listed members only")
    for name in ("add-member", "add-trainee"):
        cmd = cmds[name]
        cmd.add_argument("--zone", default="UTC", help="the mailbox's IANA time zone")
        cmd.add_argument("--week-start", type=_week_start, default=0, help="first day of their week")
    add = cmds["add-member"]
    add.add_argument("--weekly-cap", type=_cap, default=None, help="default: the pool's")
    add.add_argument("--daily-cap", type=_cap, default=None)
    add.add_argument("--hot", action="append", default=[], help="preferred hours HH:MM-HH:MM[@0,1,..]")
    caps = cmds["set-caps"]
    caps.add_argument("--member", default=None, help="a member (default: the pool's default caps)")
    caps.add_argument("--weekly-cap", type=_cap, default=None, help="a number, or 'default' (members)")
    caps.add_argument("--daily-cap", type=_cap, default=None)
    trainee = cmds["add-trainee"]
    trainee.add_argument("--shadow", type=int, default=3, help="shadow sessions required")
    trainee.add_argument("--reverse-shadow", type=int, default=3, help="reverse-shadow sessions required")
    trainee.add_argument("--weekly-cap", type=int, default=3, help="training sessions per week")
    trainee.add_argument("--daily-cap", type=int, default=1, help="training sessions per day")
    auto = cmds["set-auto-repair"]  # the watcher applies same-time pool replacements itself
    auto.add_argument("state", choices=("on", "off"))


GroupReader = Callable[[str, str], Awaitable[list[str] | None]]
"""``(tenant id, group id)`` → the group's members' addresses read now (app-only), or ``None``."""


async def run_pool(
    store: storage.Store,
    args: argparse.Namespace,
    *,
    now: datetime | None = None,
    group_members: GroupReader | None = None,
) -> int:
    """Run one ``pool`` sub-command; prints one JSON document; returns 0 or raises CliError.

    ``show`` of a pool with an Entra group lists the group's members (``group_members``, read after
    the transaction), or says the service reads them live when they cannot be read here."""
    at = now or datetime.now(UTC)
    async with store.transaction() as tx:
        if await storage.get_tenant(tx, args.tenant) is None:
            raise CliError(
                EXIT_REFUSED,
                "unknown tenant: it has not been onboarded",
                "check the tenant id (`tenant onboard` or `tenant add` first)",
            )
        if args.pool_command == "list":
            emit(
                {
                    "ok": True,
                    "tenant": args.tenant,
                    "pools": [_summary(r) for r in await storage.list_pools(tx, args.tenant)],
                }
            )
            return 0
        if args.pool_command == "set-auto-repair":  # issue 19: the watcher's own repairs
            return await _set_auto_repair(tx, args, at)
        if args.pool_command == "create":
            await _create(tx, args, at)
        elif args.pool_command != "show":
            await _change(tx, args, at)
        record = await storage.get_pool(tx, args.tenant, args.name)
        if record is None:
            raise _no_pool()
        doc = {"ok": True, **_summary(record), **await _details(tx, record, at)}
    if args.pool_command == "show" and record.group_id is not None:
        found = await group_members(args.tenant, record.group_id) if group_members else None
        doc["group_members"] = "read live by the service" if found is None else found
    emit(doc)
    return 0


def _no_pool() -> CliError:
    return CliError(EXIT_REFUSED, "no pool of that name in this tenant", "run `pool list --tenant ...`")


def _valid(make: Callable[[], Any]) -> Any:
    try:
        return make()
    except ValueError as exc:
        raise CliError(EXIT_USAGE, str(exc), "run `python -m calendar_backend pool --help`") from None


async def _audit(
    tx: AsyncConnection, tenant_id: str, operation: str, targets: tuple[str, ...], at: datetime
) -> None:
    await append_audit(
        tx,
        AuditEvent(
            tenant_id=tenant_id,
            actor_oid=local_actor(),
            operation=f"pool.{operation.replace('-', '_')}",
            targets=targets,
            result="ok",
            at=at,
            request_id=f"cli-{uuid.uuid4()}",
        ),
    )


async def _create(tx: AsyncConnection, args: argparse.Namespace, at: datetime) -> None:
    pool = _valid(lambda: Pool(args.name, args.role, args.weekly_cap, args.daily_cap))
    owner = _valid(lambda: None if args.owner is None else Member(args.owner).address)
    group = _valid(lambda: None if args.group is None else parse_group_id(args.group))
    pool_id = await storage.create_pool(tx, args.tenant, pool, owner=owner, now=at, group_id=group)
    if pool_id is None:
        raise CliError(EXIT_REFUSED, "a pool of that name exists", "choose another --name, or `pool show` it")
    await _audit(tx, args.tenant, "create", (pool_id,), at)


async def _change(tx: AsyncConnection, args: argparse.Namespace, at: datetime) -> None:
    record = await storage.get_pool(tx, args.tenant, args.name)
    if record is None:
        raise _no_pool()
    command, changed = args.pool_command, False
    address = None if getattr(args, "member", None) is None else _valid(lambda: Member(args.member).address)
    if command == "set-group":
        group = None if args.none else _valid(lambda: parse_group_id(args.group))
        changed = await storage.set_pool_group(tx, record.id, group, now=at)
        if changed:
            await _audit(tx, args.tenant, command, (record.id,) if group is None else (record.id, group), at)
            return
    elif command == "add-member":
        member = _valid(
            lambda: Member(
                args.member,
                args.zone,
                args.week_start,
                args.weekly_cap,
                args.daily_cap,
                tuple(parse_hot_window(h) for h in args.hot),
            )
        )
        changed = await storage.add_pool_member(tx, record.id, member, now=at)
    elif command == "remove-member":
        changed = await storage.remove_pool_member(tx, record.id, args.member, now=at)
    elif command == "add-trainee":
        trainee = _valid(
            lambda: Trainee(
                args.member,
                args.zone,
                args.week_start,
                args.shadow,
                args.reverse_shadow,
                0,
                0,
                args.weekly_cap,
                args.daily_cap,
            )
        )
        changed = await storage.add_trainee(tx, record.id, trainee, now=at)
    else:
        changed = await _set_caps(tx, record, address, args, at)
    if not changed:
        raise CliError(
            EXIT_REFUSED, f"nothing changed: {command} does not apply", "run `pool show` to see the pool"
        )
    await _audit(tx, args.tenant, command, (record.id,) if address is None else (record.id, address), at)


async def _set_caps(
    tx: AsyncConnection,
    record: storage.PoolRecord,
    address: str | None,
    args: argparse.Namespace,
    at: datetime,
) -> bool:
    if address is None:
        if args.weekly_cap is None and args.daily_cap is None:
            raise CliError(EXIT_USAGE, "no cap given", "pass --weekly-cap and/or --daily-cap")
        pool = record.pool
        weekly = pool.default_weekly_cap if args.weekly_cap is None else args.weekly_cap
        daily = pool.default_daily_cap if args.daily_cap is None else args.daily_cap
        _valid(lambda: Pool(pool.name, pool.role, weekly, daily))
        return await storage.set_pool_caps(tx, record.id, weekly_cap=weekly, daily_cap=daily, now=at)
    if record.pool.member(address) is None:
        return False
    _valid(lambda: Member(address, weekly_cap=args.weekly_cap, daily_cap=args.daily_cap))
    return await storage.set_pool_caps(
        tx, record.id, address=address, weekly_cap=args.weekly_cap, daily_cap=args.daily_cap, now=at
    )


def _summary(record: storage.PoolRecord) -> dict[str, object]:
    pool = record.pool
    return {
        "pool": pool.name,
        "id": record.id,
        "role": pool.role,
        "owner": record.owner,
        "default_weekly_cap": pool.default_weekly_cap,
        "default_daily_cap": pool.default_daily_cap,
        "members": len(pool.members),
        "trainees": sum(1 for t in record.trainees if t.remaining > 0),
        "group": record.group_id,
    }


async def _details(tx: AsyncConnection, record: storage.PoolRecord, at: datetime) -> dict[str, object]:
    """Each member's booked/cap this week and next (their zone and week), and trainees' progress."""
    pool, next_week = record.pool, at + timedelta(days=7)
    people: list[Member | Trainee] = [*pool.members, *record.trainees]
    lo = min((week_bounds(at, p.zone, p.week_start)[0] for p in people), default=at)
    hi = max((week_bounds(next_week, p.zone, p.week_start)[1] for p in people), default=at)
    starts = await storage.counted_starts(tx, record.tenant_id, [m.address for m in pool.members], lo, hi)
    members = []
    for m in pool.members:
        load = load_of(m.address, m.zone, m.week_start, starts[m.address])
        members.append(
            {
                "address": m.address,
                "zone": m.zone,
                "week_start": _DAYS[m.week_start],
                "weekly_cap": pool.weekly_cap(m),
                "daily_cap": pool.daily_cap(m),
                "hot_hours": [h.to_json() for h in m.hot_hours],
                "this_week": load.week_count(at),
                "next_week": load.week_count(next_week),
            }
        )
    trainees = [
        {
            "address": t.address,
            "stage": t.stage.value,
            "shadow": f"{t.shadow_done}/{t.shadow_required}",
            "reverse_shadow": f"{t.reverse_shadow_done}/{t.reverse_shadow_required}",
        }
        for t in record.trainees
    ]
    return {"member_load": members, "trainee_progress": trainees}


async def _set_auto_repair(tx: AsyncConnection, args: argparse.Namespace, at: datetime) -> int:
    """``pool set-auto-repair --name N on|off``: when on, the drift watcher replaces a pool-drawn
    interviewer who declined by another member of the pool at the same time, itself (issue 19)."""
    record = await storage.get_pool(tx, args.tenant, args.name)
    if record is None:
        raise _no_pool()
    on = args.state == "on"
    await storage.watch.set_pool_auto_repair(tx, args.tenant, args.name, on)
    await _audit(tx, args.tenant, "set-auto-repair", (record.id, args.state), at)
    emit({"ok": True, "tenant": args.tenant, "name": record.pool.name, "auto_repair": on})
    return 0
