"""Every encrypted value in the store, for key rotation: list them, swap one for its re-encryption."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.storage.schema import BlobKind, interviews, offers, tenants, token_caches


@dataclass(frozen=True, slots=True)
class EncryptedBlob:
    """One encrypted value.

    ``ident`` is (tenant_id,), (tenant_id, oid), (offer_id, tenant_id, token_hash as hex) or
    (interview_id, tenant_id).
    """

    kind: BlobKind
    ident: tuple[str, ...]
    blob: bytes
    key_id: int


async def iter_encrypted(
    tx: AsyncConnection, *, exclude_key_id: int | None = None
) -> AsyncIterator[EncryptedBlob]:
    """Yield every encrypted blob (optionally only those not sealed under ``exclude_key_id``).

    The rows are read up front, so the caller may :func:`replace_blob` while iterating.
    """
    found: list[EncryptedBlob] = []
    for kind, query in _encrypted_queries(exclude_key_id):
        for row in await tx.execute(query):
            *ident, blob, key_id = row
            names = tuple(
                v.hex() if isinstance(v, bytes | memoryview) else str(v)
                for v in (bytes(i) if isinstance(i, memoryview) else i for i in ident)
            )
            found.append(EncryptedBlob(kind, names, bytes(blob), key_id))
    for item in found:
        yield item


def _encrypted_queries(exclude: int | None) -> list[tuple[BlobKind, sa.Select[Any]]]:
    t, c, o, i = tenants.c, token_caches.c, offers.c, interviews.c
    queries: list[tuple[BlobKind, sa.Select[Any]]] = [
        (BlobKind.TENANT_CREDENTIAL, sa.select(t.tenant_id, t.credential_blob, t.key_id)),
        (BlobKind.TOKEN_CACHE, sa.select(c.tenant_id, c.user_oid, c.blob, c.key_id)),
        (
            BlobKind.OFFER_CONVERSATION_REF,
            sa.select(o.id, o.tenant_id, o.token_hash, o.conversation_ref, o.conversation_ref_key_id).where(
                o.conversation_ref.is_not(None)
            ),
        ),
        (
            BlobKind.INTERVIEW_CONVERSATION_REF,
            sa.select(i.id, i.tenant_id, i.conversation_ref, i.conversation_ref_key_id).where(
                i.conversation_ref.is_not(None)
            ),
        ),
    ]
    if exclude is None:
        return queries
    key_cols = (t.key_id, c.key_id, o.conversation_ref_key_id, i.conversation_ref_key_id)
    return [(k, q.where(col != exclude)) for (k, q), col in zip(queries, key_cols, strict=True)]


async def replace_blob(tx: AsyncConnection, old: EncryptedBlob, new_blob: bytes, new_key_id: int) -> bool:
    """Swap ``old`` for a re-encrypted blob, only if the row still holds exactly ``old``.

    Returns ``False`` (nothing written) when the row changed or vanished meanwhile.
    """
    if old.kind is BlobKind.TENANT_CREDENTIAL:
        t = tenants.c
        stmt = (
            sa.update(tenants)
            .where(t.tenant_id == old.ident[0], t.credential_blob == old.blob, t.key_id == old.key_id)
            .values(credential_blob=new_blob, key_id=new_key_id)
        )
    elif old.kind is BlobKind.TOKEN_CACHE:
        c = token_caches.c
        stmt = (
            sa.update(token_caches)
            .where(
                c.tenant_id == old.ident[0],
                c.user_oid == old.ident[1],
                c.blob == old.blob,
                c.key_id == old.key_id,
            )
            .values(blob=new_blob, key_id=new_key_id)
        )
    elif old.kind is BlobKind.INTERVIEW_CONVERSATION_REF:
        i = interviews.c
        stmt = (
            sa.update(interviews)
            .where(
                i.id == old.ident[0],
                i.conversation_ref == old.blob,
                i.conversation_ref_key_id == old.key_id,
            )
            .values(conversation_ref=new_blob, conversation_ref_key_id=new_key_id)
        )
    else:
        o = offers.c
        stmt = (
            sa.update(offers)
            .where(
                o.id == old.ident[0],
                o.conversation_ref == old.blob,
                o.conversation_ref_key_id == old.key_id,
            )
            .values(conversation_ref=new_blob, conversation_ref_key_id=new_key_id)
        )
    return (await tx.execute(stmt)).rowcount == 1
