"""Candidate booking offers. The capability token itself is never stored, only its SHA-256."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.storage.schema import OfferStatus, now_utc, offers, require_aware


@dataclass(frozen=True, slots=True)
class OfferRow:
    """A candidate booking offer. ``token_hash`` is SHA-256 of the capability token (32 bytes)."""

    id: str
    tenant_id: str
    organizer_oid: str
    organizer_upn: str
    token_hash: bytes
    interviewers: tuple[str, ...]
    display_names: tuple[str, ...]
    duration_min: int
    window_start: datetime
    window_end: datetime
    candidate_time_zone: str
    expires_at: datetime
    status: OfferStatus
    interview_id: str | None
    conversation_ref: bytes | None
    conversation_ref_key_id: int | None
    reschedules_used: int
    created_at: datetime
    loop_template: dict[str, Any] | None = None  # a loop link: the template (rooms resolved)
    loop_id: str | None = None  # a loop link's booked loop


def _offer(row: sa.Row[Any]) -> OfferRow:
    m = dict(row._mapping)  # noqa: SLF001  (SQLAlchemy's public Row API)
    ref = m.pop("conversation_ref")
    return OfferRow(
        **{
            **m,
            "token_hash": bytes(m["token_hash"]),
            "interviewers": tuple(m["interviewers"]),
            "display_names": tuple(m["display_names"]),
            "status": OfferStatus(m["status"]),
        },
        conversation_ref=None if ref is None else bytes(ref),
    )


async def create_offer(
    tx: AsyncConnection,
    *,
    tenant_id: str,
    organizer_oid: str,
    organizer_upn: str,
    token_hash: bytes,
    interviewers: Sequence[str],
    display_names: Sequence[str],
    duration_min: int,
    window_start: datetime,
    window_end: datetime,
    candidate_time_zone: str,
    expires_at: datetime,
    conversation_ref: tuple[bytes, int] | None = None,
    now: datetime | None = None,
    loop_template: dict[str, Any] | None = None,
) -> OfferRow:
    """Store an ``open`` offer. ``token_hash`` must be a 32-byte SHA-256 digest (never the token).

    ``conversation_ref`` is ``(encrypted_blob, key_id)``. Raises ``ValueError`` on a wrong hash
    length, naive times or an empty window.
    """
    if len(token_hash) != 32:
        raise ValueError("token_hash must be a 32-byte SHA-256 digest")
    require_aware(window_start, window_end, expires_at)
    if window_start >= window_end:
        raise ValueError("window_start must be before window_end")
    offer_id = str(uuid.uuid4())
    ref, ref_key = conversation_ref if conversation_ref is not None else (None, None)
    await tx.execute(
        sa.insert(offers).values(
            id=offer_id,
            tenant_id=tenant_id,
            organizer_oid=organizer_oid,
            organizer_upn=organizer_upn,
            token_hash=token_hash,
            interviewers=list(interviewers),
            display_names=list(display_names),
            duration_min=duration_min,
            window_start=window_start,
            window_end=window_end,
            candidate_time_zone=candidate_time_zone,
            expires_at=expires_at,
            status=OfferStatus.OPEN.value,
            interview_id=None,
            conversation_ref=ref,
            conversation_ref_key_id=ref_key,
            reschedules_used=0,
            created_at=now_utc(now),
            loop_template=loop_template,
        )
    )
    row = await get_offer(tx, offer_id)
    assert row is not None  # noqa: S101  (inserted just above, same transaction)
    return row


async def get_offer(tx: AsyncConnection, offer_id: str) -> OfferRow | None:
    """The offer with this id, or ``None``."""
    row = (await tx.execute(sa.select(offers).where(offers.c.id == offer_id))).first()
    return None if row is None else _offer(row)


async def get_offer_by_token_hash(tx: AsyncConnection, token_hash: bytes) -> OfferRow | None:
    """The offer whose capability token hashes to ``token_hash``, or ``None``. Callers still check
    ``status`` and ``expires_at``.
    """
    row = (await tx.execute(sa.select(offers).where(offers.c.token_hash == token_hash))).first()
    return None if row is None else _offer(row)


async def mark_offer_booked(tx: AsyncConnection, offer_id: str, interview_id: str) -> bool:
    """``open`` → ``booked``, race-safe (``UPDATE … WHERE status='open'``): exactly one of several
    concurrent callers gets ``True``.
    """
    result = await tx.execute(
        sa.update(offers)
        .where(offers.c.id == offer_id, offers.c.status == OfferStatus.OPEN.value)
        .values(status=OfferStatus.BOOKED.value, interview_id=interview_id)
    )
    return result.rowcount == 1


async def reopen_offer(tx: AsyncConnection, offer_id: str, *, interview_id: str | None = None) -> bool:
    """``booked`` → ``open`` (the link books again), race-safe (``UPDATE … WHERE status='booked'``).

    With ``interview_id`` the offer must still point at that interview, so a late reopen for a
    failed attempt never releases a newer booking. ``reschedules_used`` is kept. Returns ``False``
    (nothing changed) when the offer is not booked, points elsewhere, or does not exist.
    """
    where = [offers.c.id == offer_id, offers.c.status == OfferStatus.BOOKED.value]
    if interview_id is not None:
        where.append(offers.c.interview_id == interview_id)
    result = await tx.execute(
        sa.update(offers).where(*where).values(status=OfferStatus.OPEN.value, interview_id=None)
    )
    return result.rowcount == 1


async def count_reschedule(tx: AsyncConnection, offer_id: str, *, limit: int | None = None) -> bool:
    """Count one candidate change (reschedule or cancel) of a ``booked`` offer, race-safe.

    With ``limit`` the increment happens only while ``reschedules_used < limit`` (one atomic
    ``UPDATE … WHERE``), so concurrent changes can never exceed it. Returns ``False`` (nothing
    counted) when the offer is not booked, the limit is reached, or it does not exist.
    """
    where = [offers.c.id == offer_id, offers.c.status == OfferStatus.BOOKED.value]
    if limit is not None:
        where.append(offers.c.reschedules_used < limit)
    result = await tx.execute(
        sa.update(offers).where(*where).values(reschedules_used=offers.c.reschedules_used + 1)
    )
    return result.rowcount == 1


async def revoke_offer(tx: AsyncConnection, offer_id: str) -> bool:
    """``open`` → ``revoked``; ``False`` if the offer is not open (or does not exist)."""
    result = await tx.execute(
        sa.update(offers)
        .where(offers.c.id == offer_id, offers.c.status == OfferStatus.OPEN.value)
        .values(status=OfferStatus.REVOKED.value)
    )
    return result.rowcount == 1


async def revoke_offers_for_user(tx: AsyncConnection, tenant_id: str, organizer_oid: str) -> int:
    """Revoke every open offer the user made (archive/disconnect); returns how many."""
    result = await tx.execute(
        sa.update(offers)
        .where(
            offers.c.tenant_id == tenant_id,
            offers.c.organizer_oid == organizer_oid,
            offers.c.status == OfferStatus.OPEN.value,
        )
        .values(status=OfferStatus.REVOKED.value)
    )
    return result.rowcount


async def expire_offers(tx: AsyncConnection, now: datetime) -> int:
    """Mark open offers with ``expires_at <= now`` as ``expired``. Returns how many changed."""
    require_aware(now)
    result = await tx.execute(
        sa.update(offers)
        .where(offers.c.status == OfferStatus.OPEN.value, offers.c.expires_at <= now)
        .values(status=OfferStatus.EXPIRED.value)
    )
    return result.rowcount


async def list_offers(tx: AsyncConnection, tenant_id: str, organizer_oid: str) -> list[OfferRow]:
    """The organizer's offers, newest first."""
    query = (
        sa.select(offers)
        .where(offers.c.tenant_id == tenant_id, offers.c.organizer_oid == organizer_oid)
        .order_by(offers.c.created_at.desc(), offers.c.id)
    )
    return [_offer(r) for r in await tx.execute(query)]


async def set_offer_loop(tx: AsyncConnection, offer_id: str, loop_id: str | None) -> None:
    """Record the loop a ``booked`` loop link booked (``None``: none any more)."""
    await tx.execute(sa.update(offers).where(offers.c.id == offer_id).values(loop_id=loop_id))


async def reopen_loop_offer(tx: AsyncConnection, offer_id: str, loop_id: str | None) -> bool:
    """``booked`` → ``open`` for a loop link still on ``loop_id`` (``None``: a failed attempt that
    booked none), race-safe; the loop is forgotten, ``reschedules_used`` kept."""
    result = await tx.execute(
        sa.update(offers)
        .where(
            offers.c.id == offer_id,
            offers.c.status == OfferStatus.BOOKED.value,
            offers.c.loop_id.is_(None) if loop_id is None else offers.c.loop_id == loop_id,
        )
        .values(status=OfferStatus.OPEN.value, interview_id=None, loop_id=None)
    )
    return result.rowcount == 1


async def claim_loop_offer(tx: AsyncConnection, offer_id: str) -> bool:
    """``open`` → ``booked`` for a loop link about to book (its loop recorded once booked by
    `set_offer_loop`), race-safe: exactly one of several concurrent callers gets ``True``."""
    result = await tx.execute(
        sa.update(offers)
        .where(offers.c.id == offer_id, offers.c.status == OfferStatus.OPEN.value)
        .values(status=OfferStatus.BOOKED.value, interview_id=None, loop_id=None)
    )
    return result.rowcount == 1
