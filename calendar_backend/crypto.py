"""Encryption at rest: AES-256-GCM envelopes sealed under a KEK from the keyring file.

Wire format v1 (all integers big-endian)::

    offset  size  field
    0       1     version = 0x01
    1       4     kek_id            id of the KEK in the keyring that wrapped the DEK
    5       2     wrapped_dek_len   = 60 in v1
    7       60    wrapped_dek       wrap_nonce (12) | GCM(KEK, DEK) ciphertext (32) | tag (16)
    67      12    nonce             payload nonce
    79      >=16  ciphertext | tag  AES-256-GCM(DEK, plaintext)

Each encryption draws a fresh 32-byte DEK and two fresh 96-bit nonces from the OS CSPRNG; there is
no nonce parameter. Associated data:

* DEK wrap: ``b"openslot/dek/v1" + kek_id (4 bytes)``;
* payload: ``Aad.encode() + kek_id (4 bytes)``, which binds the blob to its purpose, tenant, user,
  table column and row, so a blob copied to another row, user or tenant does not open.

Every failure to open a blob (wrong key, wrong AAD, any altered or missing byte, unknown version,
unknown or retired KEK id) raises a bare ``DecryptionError()`` with no cause or context attached.
Plaintext exists only in memory.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from calendar_backend.errors import DecryptionError
from calendar_backend.keyring import KEY_BYTES, Keyring, KeyringError

VERSION = 0x01
NONCE_BYTES = 12
TAG_BYTES = 16
WRAPPED_DEK_BYTES = NONCE_BYTES + KEY_BYTES + TAG_BYTES
_HEADER = struct.Struct(">BIH")
_KEK_ID = struct.Struct(">I")
_DEK_AAD_PREFIX = b"openslot/dek/v1"
_FIELD_LEN = struct.Struct(">I")
_WRAP_NONCE_AT = _HEADER.size
_WRAPPED_AT = _WRAP_NONCE_AT + NONCE_BYTES
_NONCE_AT = _WRAP_NONCE_AT + WRAPPED_DEK_BYTES
_PAYLOAD_AT = _NONCE_AT + NONCE_BYTES
MIN_BLOB_BYTES = _PAYLOAD_AT + TAG_BYTES


@dataclass(frozen=True, slots=True)
class Aad:
    """Associated data naming where a sealed value belongs. It is not secret.

    ``purpose`` and ``tenant_id`` are required and non-empty; ``user_oid`` is ``"-"`` for
    tenant-wide values; ``column`` is ``"table.column"``; ``row_id`` is the row's stable key.
    """

    purpose: str
    tenant_id: str
    user_oid: str = "-"
    column: str = ""
    row_id: str = ""

    def __post_init__(self) -> None:
        if not self.purpose or not self.tenant_id:
            raise ValueError("Aad.purpose and Aad.tenant_id must be non-empty")

    def encode(self) -> bytes:
        """Return the canonical encoding: each field as a 4-byte length then its UTF-8 bytes.

        Length prefixes make it unambiguous: no two distinct ``Aad`` values encode alike.

        Raises:
            ValueError: a field is not encodable as UTF-8 (a lone surrogate).
        """
        fields = (self.purpose, self.tenant_id, self.user_oid, self.column, self.row_id)
        parts = (f.encode("utf-8") for f in fields)
        return b"".join(_FIELD_LEN.pack(len(p)) + p for p in parts)


class CredentialCipher:
    """Seals and opens secrets at rest with envelope encryption under the keyring's KEKs.

    New envelopes use the keyring's primary KEK; opening uses the KEK named in the envelope, which
    must be active. The keyring is a snapshot: after rotating keys, build a new cipher.
    """

    __slots__ = ("_keyring",)

    def __init__(self, keyring: Keyring) -> None:
        for key_id in keyring.active_ids:
            if len(keyring.key(key_id)) != KEY_BYTES:
                raise ValueError("every KEK must be exactly 32 bytes")
        self._keyring = keyring

    def __repr__(self) -> str:
        return f"CredentialCipher(primary_id={self._keyring.primary_id})"

    @property
    def primary_id(self) -> int:
        """The KEK id new envelopes carry."""
        return self._keyring.primary_id

    def encrypt(self, plaintext: bytes, *, aad: Aad) -> bytes:
        """Seal ``plaintext`` under a fresh DEK wrapped with the primary KEK (format v1)."""
        kek_id = self._keyring.primary_id
        kek_id_bytes = _KEK_ID.pack(kek_id)
        dek = AESGCM.generate_key(bit_length=256)
        wrap_nonce = os.urandom(NONCE_BYTES)
        wrapped = AESGCM(self._keyring.key(kek_id)).encrypt(wrap_nonce, dek, _DEK_AAD_PREFIX + kek_id_bytes)
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(dek).encrypt(nonce, plaintext, aad.encode() + kek_id_bytes)
        header = _HEADER.pack(VERSION, kek_id, NONCE_BYTES + len(wrapped))
        return header + wrap_nonce + wrapped + nonce + sealed

    def decrypt(self, blob: bytes, *, aad: Aad) -> bytes:
        """Open a v1 envelope sealed for exactly ``aad``.

        Raises:
            DecryptionError: for every failure, always without detail.
        """
        kek_id = self.key_id_of(blob)
        kek = self._active_kek(kek_id)
        kek_id_bytes = _KEK_ID.pack(kek_id)
        wrap_nonce = blob[_WRAP_NONCE_AT:_WRAPPED_AT]
        dek = _open(kek, wrap_nonce, blob[_WRAPPED_AT:_NONCE_AT], _DEK_AAD_PREFIX + kek_id_bytes)
        if dek is None or len(dek) != KEY_BYTES:
            raise DecryptionError()
        nonce = blob[_NONCE_AT:_PAYLOAD_AT]
        plaintext = _open(dek, nonce, blob[_PAYLOAD_AT:], aad.encode() + kek_id_bytes)
        if plaintext is None:
            raise DecryptionError()
        return plaintext

    def key_id_of(self, blob: bytes) -> int:
        """Return the KEK id in a v1 envelope's header (not authenticated; for rotation counts).

        Raises:
            DecryptionError: the blob is shorter than the smallest v1 envelope, has another
                version, or a wrapped-DEK length other than 60.
        """
        if len(blob) < MIN_BLOB_BYTES:
            raise DecryptionError()
        version, kek_id, wrapped_len = _HEADER.unpack_from(blob)
        if version != VERSION or wrapped_len != WRAPPED_DEK_BYTES:
            raise DecryptionError()
        return int(kek_id)

    def reencrypt(self, blob: bytes, *, aad: Aad) -> bytes:
        """Open ``blob`` with its own KEK and seal the plaintext again under the primary KEK.

        The result always carries a fresh DEK and nonces, even when the blob was already sealed
        under the primary. The plaintext is never written anywhere.

        Raises:
            DecryptionError: ``blob`` does not open for ``aad``.
        """
        return self.encrypt(self.decrypt(blob, aad=aad), aad=aad)

    def _active_kek(self, kek_id: int) -> bytes:
        try:
            return self._keyring.key(kek_id)
        except KeyringError:
            pass
        raise DecryptionError()


def _open(key: bytes, nonce: bytes, data: bytes, associated: bytes) -> bytes | None:
    """AES-256-GCM open; ``None`` on any authentication failure (so no exception is chained)."""
    try:
        return AESGCM(key).decrypt(nonce, data, associated)
    except InvalidTag:
        return None
