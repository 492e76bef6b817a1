"""Every encrypted column's associated data, in one place.

A sealed value is bound to where it belongs (purpose, tenant, user, column, row) by the AAD it was
sealed with; moving a ciphertext to another row or column makes it fail to open. Nothing outside this
module builds an :class:`~calendar_backend.crypto.Aad` (a test enforces it); ``aad_of`` names the AAD
of any stored blob, which key rotation uses to re-encrypt every kind.
"""

from __future__ import annotations

from calendar_backend import storage
from calendar_backend.crypto import Aad


def tenant_credential_aad(tenant_id: str) -> Aad:
    """Associated data binding a tenant credential blob to its tenant and purpose."""
    return Aad(
        purpose="tenant-credential", tenant_id=tenant_id, column="tenants.credential", row_id=tenant_id
    )


def token_cache_aad(tenant_id: str, oid: str) -> Aad:
    """Associated data binding a token cache blob to its user."""
    return Aad(
        purpose="token-cache",
        tenant_id=tenant_id,
        user_oid=oid,
        column="token_caches.blob",
        row_id=f"{tenant_id}/{oid}",
    )


def offer_private_aad(tenant_id: str, token_hash: bytes) -> Aad:
    """Associated data binding an offer's sealed private data to its tenant and token hash."""
    return Aad(
        purpose="offer-private",
        tenant_id=tenant_id,
        column="offers.conversation_ref",
        row_id=token_hash.hex(),
    )


def interview_conversation_ref_aad(tenant_id: str, interview_id: str) -> Aad:
    """Associated data binding an interview's sealed conversation reference to its row."""
    return Aad(
        purpose="interview-conversation-ref",
        tenant_id=tenant_id,
        column="interviews.conversation_ref",
        row_id=interview_id,
    )


def aad_of(blob: storage.EncryptedBlob) -> Aad:
    """The associated data a stored envelope was sealed with."""
    if blob.kind is storage.BlobKind.TENANT_CREDENTIAL:
        return tenant_credential_aad(blob.ident[0])
    if blob.kind is storage.BlobKind.TOKEN_CACHE:
        return token_cache_aad(blob.ident[0], blob.ident[1])
    if blob.kind is storage.BlobKind.INTERVIEW_CONVERSATION_REF:  # ident: (interview id, tenant id)
        return interview_conversation_ref_aad(blob.ident[1], blob.ident[0])
    # BlobKind.OFFER_CONVERSATION_REF: ident is (offer id, tenant id, token hash hex)
    return offer_private_aad(blob.ident[1], bytes.fromhex(blob.ident[2]))
