"""The drift watcher's rows: Graph subscriptions, watched events, the notification inbox, drift.

- ``watch_subscriptions``: one Graph subscription per watched mailbox; ``clientState`` is stored
  only as its SHA-256 (``state_hash``), never in clear.
- ``watch_events``: which Outlook event (the organizer's, or an interviewer's copy) belongs to
  which interview: the only way a notification (ids only) is tied to an interview.
- ``watch_inbox``: notifications queued durably by the receiving route before it answers 202
  (ids and the kind only), drained by the worker.
- ``watch_drift``: one row per detected change (``fingerprint`` unique: duplicate notifications
  and repeated sweeps record it once), with the repairs computed for it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.storage.interviews import InterviewRow, interview_row
from calendar_backend.storage.schema import (
    InterviewStatus,
    UTCDateTime,
    interview_mailboxes,
    interviews,
    metadata,
    now_utc,
    pool_assignments,
    pools,
)

watch_subscriptions: Final = sa.Table(
    "watch_subscriptions",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),  # Graph's subscription id
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("mailbox", sa.String(320), nullable=False),
    sa.Column("state_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_watch_subscriptions_mailbox", "tenant_id", "mailbox", unique=True),
)

watch_events: Final = sa.Table(
    "watch_events",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("mailbox", sa.String(320), primary_key=True),
    sa.Column("event_id", sa.String(512), primary_key=True),
    sa.Column("interview_id", sa.String(36), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # organizer | attendee
    sa.Index("ix_watch_events_interview", "interview_id"),
)

watch_inbox: Final = sa.Table(
    "watch_inbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("subscription_id", sa.String(128), nullable=False),
    sa.Column("mailbox", sa.String(320), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # created|updated|deleted or a lifecycle event
    sa.Column("event_id", sa.String(512), nullable=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("taken_at", UTCDateTime, nullable=True),
)

watch_drift: Final = sa.Table(
    "watch_drift",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("interview_id", sa.String(36), nullable=False),
    sa.Column("organizer_oid", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # declined | moved | deleted | conflict
    sa.Column("who", sa.String(320), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # notification | sweep
    sa.Column("detected_at", UTCDateTime, nullable=False),
    sa.Column("fingerprint", sa.String(400), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),  # open | applying | applied | auto_applied
    sa.Column("repairs", sa.JSON, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),  # r0009: posted to the manager's chat
    sa.Column("applied_repair", sa.String(32), nullable=True),  # r0013: which repair was applied
    sa.Column("claimed_by", sa.String(64), nullable=True),  # r0014: the bot poller leasing it (watch_feed)
    sa.Column("claimed_until", UTCDateTime, nullable=True),  # r0014: ... until then
    sa.Column("applying_since", UTCDateTime, nullable=True),  # r0015: the apply's lease (watch_recover)
    sa.Column("apply_ref", sa.String(64), nullable=True),  # r0015: a rebook's transactionId
    sa.Column("passed_over", sa.JSON, nullable=True),  # r0016: newcomers the manager cannot read
    sa.Index("ix_watch_drift_organizer", "tenant_id", "organizer_oid", "status"),
)


@dataclass(frozen=True, slots=True)
class WatchSubscription:
    id: str
    tenant_id: str
    mailbox: str
    state_hash: bytes
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    tenant_id: str
    subscription_id: str
    mailbox: str
    kind: str
    event_id: str | None


@dataclass(frozen=True, slots=True)
class DriftRow:
    id: str
    tenant_id: str
    interview_id: str
    organizer_oid: str
    kind: str
    who: str
    source: str
    detected_at: datetime
    status: str
    repairs: tuple[dict[str, Any], ...]
    applied_repair: str | None = None  # r0013: the repair applied (by the manager or the watcher)
    apply_ref: str | None = None  # r0015: the transactionId of a rebook being applied
    passed_over: tuple[str, ...] = ()  # r0016: never offered again as a newcomer (watch_apply)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "interview_id": self.interview_id,
            "kind": self.kind,
            "who": self.who,
            "source": self.source,
            "detected_at": self.detected_at.isoformat().replace("+00:00", "Z"),
            "status": self.status,
            "repairs": list(self.repairs),
        }


def _sub(row: sa.Row[Any]) -> WatchSubscription:
    m = row._mapping  # noqa: SLF001  (SQLAlchemy's public Row API)
    return WatchSubscription(m["id"], m["tenant_id"], m["mailbox"], bytes(m["state_hash"]), m["expires_at"])


def _drift(row: sa.Row[Any]) -> DriftRow:
    m = row._mapping  # noqa: SLF001
    return DriftRow(
        m["id"],
        m["tenant_id"],
        m["interview_id"],
        m["organizer_oid"],
        m["kind"],
        m["who"],
        m["source"],
        m["detected_at"],
        m["status"],
        tuple(m["repairs"] or ()),
        m["applied_repair"],
        m["apply_ref"],
        tuple(m["passed_over"] or ()),
    )


# ---- subscriptions -------------------------------------------------------------------------------
async def put_subscription(
    tx: AsyncConnection,
    sub_id: str,
    tenant_id: str,
    mailbox: str,
    state_hash: bytes,
    expires_at: datetime,
) -> None:
    """Store (or replace) the subscription of ``mailbox``."""
    mailbox = mailbox.lower()
    await tx.execute(
        sa.delete(watch_subscriptions).where(
            watch_subscriptions.c.tenant_id == tenant_id, watch_subscriptions.c.mailbox == mailbox
        )
    )
    await tx.execute(
        sa.insert(watch_subscriptions).values(
            id=sub_id,
            tenant_id=tenant_id,
            mailbox=mailbox,
            state_hash=state_hash,
            expires_at=expires_at,
            created_at=now_utc(None),
        )
    )


async def get_subscription(tx: AsyncConnection, sub_id: str) -> WatchSubscription | None:
    row = (await tx.execute(sa.select(watch_subscriptions).where(watch_subscriptions.c.id == sub_id))).first()
    return _sub(row) if row is not None else None


async def subscription_of(tx: AsyncConnection, tenant_id: str, mailbox: str) -> WatchSubscription | None:
    query = sa.select(watch_subscriptions).where(
        watch_subscriptions.c.tenant_id == tenant_id, watch_subscriptions.c.mailbox == mailbox.lower()
    )
    row = (await tx.execute(query)).first()
    return _sub(row) if row is not None else None


async def expiring_subscriptions(tx: AsyncConnection, before: datetime) -> list[WatchSubscription]:
    query = sa.select(watch_subscriptions).where(watch_subscriptions.c.expires_at < before)
    return [_sub(r) for r in await tx.execute(query)]


async def renewed_subscription(tx: AsyncConnection, sub_id: str, expires_at: datetime) -> None:
    await tx.execute(
        sa.update(watch_subscriptions).where(watch_subscriptions.c.id == sub_id).values(expires_at=expires_at)
    )


async def delete_subscription(tx: AsyncConnection, sub_id: str) -> None:
    await tx.execute(sa.delete(watch_subscriptions).where(watch_subscriptions.c.id == sub_id))


# ---- watched events ------------------------------------------------------------------------------
async def put_watch_event(
    tx: AsyncConnection, tenant_id: str, mailbox: str, event_id: str, interview_id: str, role: str
) -> None:
    key = (watch_events.c.tenant_id == tenant_id) & (watch_events.c.mailbox == mailbox.lower())
    await tx.execute(sa.delete(watch_events).where(key, watch_events.c.event_id == event_id))
    await tx.execute(
        sa.insert(watch_events).values(
            tenant_id=tenant_id,
            mailbox=mailbox.lower(),
            event_id=event_id,
            interview_id=interview_id,
            role=role,
        )
    )


async def watched_event(
    tx: AsyncConnection, tenant_id: str, mailbox: str, event_id: str
) -> tuple[str, str] | None:
    """``(interview id, role)`` of a watched event, else None."""
    query = sa.select(watch_events.c.interview_id, watch_events.c.role).where(
        watch_events.c.tenant_id == tenant_id,
        watch_events.c.mailbox == mailbox.lower(),
        watch_events.c.event_id == event_id,
    )
    row = (await tx.execute(query)).first()
    return (str(row[0]), str(row[1])) if row is not None else None


async def events_of_interview(tx: AsyncConnection, interview_id: str) -> dict[str, str]:
    """``{mailbox: event id}`` of every watched copy of an interview."""
    query = sa.select(watch_events.c.mailbox, watch_events.c.event_id).where(
        watch_events.c.interview_id == interview_id
    )
    return {str(r[0]): str(r[1]) for r in await tx.execute(query)}


async def upcoming_confirmed(tx: AsyncConnection, now: datetime, until: datetime) -> list[InterviewRow]:
    """Confirmed interviews (with an Outlook event) starting in ``[now, until)``, every tenant."""
    query = (
        sa.select(interviews)
        .where(
            interviews.c.status == InterviewStatus.CONFIRMED.value,
            interviews.c.event_id.is_not(None),
            interviews.c.start_utc >= now,
            interviews.c.start_utc < until,
        )
        .order_by(interviews.c.start_utc, interviews.c.id)
    )
    return [interview_row(r) for r in await tx.execute(query)]


async def interviews_of_mailbox(
    tx: AsyncConnection, tenant_id: str, mailbox: str, now: datetime, until: datetime
) -> list[InterviewRow]:
    """Watched upcoming interviews with a copy in ``mailbox``."""
    ids = sa.select(watch_events.c.interview_id).where(
        watch_events.c.tenant_id == tenant_id, watch_events.c.mailbox == mailbox.lower()
    )
    rows = await upcoming_confirmed(tx, now, until)
    wanted = {str(r[0]) for r in await tx.execute(ids)}
    return [r for r in rows if r.id in wanted]


# ---- the inbox -----------------------------------------------------------------------------------
async def enqueue(tx: AsyncConnection, items: list[dict[str, Any]], now: datetime) -> None:
    """Queue notifications (keys: tenant_id, subscription_id, mailbox, kind, event_id)."""
    if items:
        await tx.execute(sa.insert(watch_inbox), [{**i, "received_at": now, "taken_at": None} for i in items])


async def claim(tx: AsyncConnection, now: datetime, limit: int = 50) -> list[InboxItem]:
    """Take up to ``limit`` queued items (an item taken over 5 min ago and not finished is
    taken again: its worker died)."""
    stale = now - timedelta(minutes=5)
    query = (
        sa.select(watch_inbox)
        .where(sa.or_(watch_inbox.c.taken_at.is_(None), watch_inbox.c.taken_at < stale))
        .order_by(watch_inbox.c.id)
        .limit(limit)
    )
    rows = list(await tx.execute(query))
    if rows:
        ids = [r._mapping["id"] for r in rows]  # noqa: SLF001
        await tx.execute(sa.update(watch_inbox).where(watch_inbox.c.id.in_(ids)).values(taken_at=now))
    return [
        InboxItem(m["id"], m["tenant_id"], m["subscription_id"], m["mailbox"], m["kind"], m["event_id"])
        for m in (r._mapping for r in rows)  # noqa: SLF001
    ]


async def finish(tx: AsyncConnection, item_ids: list[int]) -> None:
    if item_ids:
        await tx.execute(sa.delete(watch_inbox).where(watch_inbox.c.id.in_(item_ids)))


async def inbox_size(tx: AsyncConnection) -> int:
    return int((await tx.execute(sa.select(sa.func.count()).select_from(watch_inbox))).scalar_one())


# ---- drift ---------------------------------------------------------------------------------------
async def record_drift(
    tx: AsyncConnection,
    row: InterviewRow,
    kind: str,
    who: str,
    source: str,
    fingerprint: str,
    now: datetime,
    repairs: list[dict[str, Any]] | None = None,
) -> DriftRow | None:
    """Insert a drift row (with its ``repairs``) unless one with ``fingerprint`` exists (then None)."""
    found = (
        await tx.execute(sa.select(watch_drift.c.id).where(watch_drift.c.fingerprint == fingerprint))
    ).first()
    if found is not None:
        return None
    values = {
        "id": str(uuid.uuid4()),
        "tenant_id": row.tenant_id,
        "interview_id": row.id,
        "organizer_oid": row.organizer_oid,
        "kind": kind,
        "who": who.lower(),
        "source": source,
        "detected_at": now,
        "fingerprint": fingerprint[:400],
        "status": "open",
        "repairs": repairs or [],
    }
    try:
        async with tx.begin_nested():
            await tx.execute(sa.insert(watch_drift).values(**values))
    except IntegrityError:  # a concurrent worker recorded it first
        return None
    return await get_drift(tx, str(values["id"]))


async def set_repairs(tx: AsyncConnection, drift_id: str, repairs: list[dict[str, Any]]) -> None:
    await tx.execute(sa.update(watch_drift).where(watch_drift.c.id == drift_id).values(repairs=repairs))


async def get_drift(tx: AsyncConnection, drift_id: str) -> DriftRow | None:
    row = (await tx.execute(sa.select(watch_drift).where(watch_drift.c.id == drift_id))).first()
    return _drift(row) if row is not None else None


async def open_drift(tx: AsyncConnection, tenant_id: str, organizer_oid: str) -> list[DriftRow]:
    query = (
        sa.select(watch_drift)
        .where(
            watch_drift.c.tenant_id == tenant_id,
            watch_drift.c.organizer_oid == organizer_oid,
            watch_drift.c.status == "open",
        )
        .order_by(watch_drift.c.detected_at, watch_drift.c.id)
    )
    return [_drift(r) for r in await tx.execute(query)]


async def all_drift(tx: AsyncConnection) -> list[DriftRow]:
    return [_drift(r) for r in await tx.execute(sa.select(watch_drift).order_by(watch_drift.c.detected_at))]


async def close_drift(tx: AsyncConnection, drift_id: str, status: str = "applied") -> bool:
    """Mark an open drift row done; False when it was not open (applied twice)."""
    done = await tx.execute(
        sa.update(watch_drift)
        .where(watch_drift.c.id == drift_id, watch_drift.c.status == "open")
        .values(status=status)
    )
    return bool(done.rowcount)


# ---- the one attendee change a repair makes (booking_attendees.py) -------------------------------
async def swap_attendee(
    tx: AsyncConnection, interview_id: str, version: int, out: str, into: str
) -> InterviewRow | None:
    """Replace ``out`` by ``into`` in a confirmed interview (its row and the mailbox index);
    None when the row moved on (version) or ``out`` is not an attendee."""
    current = (await tx.execute(sa.select(interviews).where(interviews.c.id == interview_id))).first()
    if current is None:
        return None
    row = interview_row(current)
    out, into = out.lower(), into.lower()
    lowered = [a.lower() for a in row.attendees]
    if row.version != version or row.status is not InterviewStatus.CONFIRMED or out not in lowered:
        return None
    attendees = [into if a == out else a for a in lowered]
    done = await tx.execute(
        sa.update(interviews)
        .where(interviews.c.id == interview_id, interviews.c.version == version)
        .values(attendees=attendees, version=version + 1, updated_at=now_utc(None))
    )
    if not done.rowcount:
        return None
    await tx.execute(
        sa.delete(interview_mailboxes).where(
            interview_mailboxes.c.interview_id == interview_id, interview_mailboxes.c.mailbox == out
        )
    )
    await tx.execute(sa.insert(interview_mailboxes).values(interview_id=interview_id, mailbox=into))
    found = (await tx.execute(sa.select(interviews).where(interviews.c.id == interview_id))).first()
    return interview_row(found) if found is not None else None


async def forget_interview(tx: AsyncConnection, interview_id: str) -> None:
    """Stop tying events to an interview (its people changed: the watcher finds the copies again)."""
    await tx.execute(sa.delete(watch_events).where(watch_events.c.interview_id == interview_id))


async def prune_events(tx: AsyncConnection, now: datetime) -> int:
    """Forget the events of interviews that ended or are no longer confirmed; returns how many."""
    done = sa.select(interviews.c.id).where(
        sa.or_(interviews.c.status != InterviewStatus.CONFIRMED.value, interviews.c.end_utc <= now)
    )
    gone = sa.select(watch_events.c.interview_id).where(
        watch_events.c.interview_id.not_in(sa.select(interviews.c.id))
    )
    result = await tx.execute(
        sa.delete(watch_events).where(
            sa.or_(watch_events.c.interview_id.in_(done), watch_events.c.interview_id.in_(gone))
        )
    )
    return int(result.rowcount or 0)


async def unwatched_subscriptions(tx: AsyncConnection) -> list[WatchSubscription]:
    """Subscriptions of mailboxes that no watched event is in any more."""
    watched = sa.select(watch_events.c.tenant_id, watch_events.c.mailbox).distinct()
    subs = [_sub(r) for r in await tx.execute(sa.select(watch_subscriptions))]
    live = {(str(r[0]), str(r[1])) for r in await tx.execute(watched)}
    return [s for s in subs if (s.tenant_id, s.mailbox) not in live]


# ---- pool seats and pool settings of repairs (issue 19: watch_pool_repairs.py) -------------------
async def pool_seat(tx: AsyncConnection, interview_id: str, mailbox: str) -> tuple[str, str] | None:
    """``(pool id, role)`` when ``mailbox`` was drawn from a pool for the interview, else None."""
    query = sa.select(pool_assignments.c.pool_id, pool_assignments.c.role).where(
        pool_assignments.c.interview_id == interview_id, pool_assignments.c.mailbox == mailbox.lower()
    )
    row = (await tx.execute(query)).first()
    return (str(row[0]), str(row[1])) if row is not None else None


async def drop_seat(tx: AsyncConnection, interview_id: str, mailbox: str) -> None:
    """Release ``mailbox``'s pool seat on the interview (their load no longer counts it)."""
    await tx.execute(
        sa.delete(pool_assignments).where(
            pool_assignments.c.interview_id == interview_id, pool_assignments.c.mailbox == mailbox.lower()
        )
    )


async def put_seat(tx: AsyncConnection, interview_id: str, mailbox: str, pool_id: str, role: str) -> None:
    """Give a seat back as it was (undoing a swap: no cap check, it held this seat before)."""
    await drop_seat(tx, interview_id, mailbox)
    await tx.execute(
        sa.insert(pool_assignments).values(
            interview_id=interview_id, mailbox=mailbox.lower(), pool_id=pool_id, role=role
        )
    )


async def pool_auto_repair(tx: AsyncConnection, pool_id: str) -> bool:
    """Whether the pool lets the watcher apply same-time replacements itself (r0013)."""
    found = (await tx.execute(sa.select(pools.c.auto_repair).where(pools.c.id == pool_id))).first()
    return bool(found[0]) if found is not None else False


async def set_pool_auto_repair(tx: AsyncConnection, tenant_id: str, name: str, on: bool) -> bool:
    """Switch a pool's auto-repair; False when the tenant has no pool of that name."""
    done = await tx.execute(
        sa.update(pools).where(pools.c.tenant_id == tenant_id, pools.c.name == name).values(auto_repair=on)
    )
    return bool(done.rowcount)


async def claim_drift(
    tx: AsyncConnection,
    drift_id: str,
    repair: str | None = None,
    now: datetime | None = None,
    ref: str | None = None,
) -> bool:
    """Take an open drift row for one repair (status ``applying``; the repair's id, the lease's
    start ``applying_since`` and ``apply_ref``, a rebook's transactionId, kept for recovery);
    False when it was not open, so a drift row is applied at most once however many taps race."""
    done = await tx.execute(
        sa.update(watch_drift)
        .where(watch_drift.c.id == drift_id, watch_drift.c.status == "open")
        .values(status="applying", applied_repair=repair, applying_since=now or now_utc(None), apply_ref=ref)
    )
    return bool(done.rowcount)


async def settle_drift(tx: AsyncConnection, drift_id: str, status: str, repair: str | None) -> bool:
    """End a claimed row: ``applied``/``auto_applied`` (with the repair applied), or ``open`` again.
    False when it was not ``applying`` any more (settled by someone else)."""
    done = await tx.execute(
        sa.update(watch_drift)
        .where(watch_drift.c.id == drift_id, watch_drift.c.status == "applying")
        .values(status=status, applied_repair=repair, applying_since=None)
    )
    return bool(done.rowcount)


async def stale_applying(tx: AsyncConnection, before: datetime, limit: int = 50) -> list[DriftRow]:
    """Drift rows claimed (``applying``) before ``before`` (or with no lease recorded): their
    process died mid-apply (`watch_recover`)."""
    query = (
        sa.select(watch_drift)
        .where(
            watch_drift.c.status == "applying",
            sa.or_(watch_drift.c.applying_since.is_(None), watch_drift.c.applying_since < before),
        )
        .order_by(watch_drift.c.detected_at, watch_drift.c.id)
        .limit(limit)
    )
    return [_drift(r) for r in await tx.execute(query)]


async def renew_lease(tx: AsyncConnection, drift_id: str, now: datetime) -> None:
    """Start an ``applying`` row's lease again (recovery could not decide yet: Graph unreachable)."""
    await tx.execute(
        sa.update(watch_drift)
        .where(watch_drift.c.id == drift_id, watch_drift.c.status == "applying")
        .values(applying_since=now)
    )


async def hand_over(tx: AsyncConnection, old_id: str, new_id: str, candidate_event_id: str | None) -> None:
    """A rebooked interview: the new row keeps the candidate's invite and the old row's pool seats."""
    await tx.execute(
        sa.update(interviews).where(interviews.c.id == new_id).values(candidate_event_id=candidate_event_id)
    )
    await tx.execute(
        sa.update(pool_assignments)
        .where(pool_assignments.c.interview_id == old_id)
        .values(interview_id=new_id)
    )
    await forget_interview(tx, old_id)


async def hand_over_loop(tx: AsyncConnection, old: InterviewRow, new_id: str) -> None:
    """A rebooked loop session: the new row takes the old one's place in its loop (the old,
    cancelled row leaves the loop, so the loop lists one row per session)."""
    if old.loop_id is None:
        return
    await tx.execute(
        sa.update(interviews).where(interviews.c.id == old.id).values(loop_id=None, session_index=None)
    )
    await tx.execute(
        sa.update(interviews)
        .where(interviews.c.id == new_id)
        .values(loop_id=old.loop_id, session_index=old.session_index)
    )
