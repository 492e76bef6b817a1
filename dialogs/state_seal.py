"""Sealing of the bot's ``bot_state`` rows: AES-256-GCM over each row's JSON text.

Scheduling drafts hold what the manager typed about the candidate (name, e-mail), so in the prod
profile every row is stored as ``osb1.<base64url(nonce | ciphertext+tag)>``, with the row's key as
associated data (a row copied under another key does not open). The key comes from
OPENSLOT_BOT_STATE_KEY, else it is derived from the bot's app password (HKDF, its own purpose), so
every instance of a deployment shares it. Rows written before sealing (plain JSON) still read; a row
that does not open (the password, hence the key, changed) reads as an empty state that the next
write replaces. The dev profile without a key stores plain JSON.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dialogs.deployment_key import deployment_key

PREFIX = "osb1."
KEY_BYTES = 32
_INFO = b"openslot/bot-state/v1"


class SealError(ValueError):
    """A sealed row that does not open with this key (or is not a sealed row at all)."""


def state_key(configured: str, app_password: str) -> bytes:
    """The sealing key: OPENSLOT_BOT_STATE_KEY (base64, >= 32 bytes), else HKDF of the app password,
    else empty (no sealing: the dev profile only).

    Raises:
        ValueError: ``configured`` is not base64 of at least 32 bytes.
    """
    key = deployment_key(
        configured, app_password, setting="OPENSLOT_BOT_STATE_KEY", info=_INFO, size=KEY_BYTES
    )
    return b"" if key is None else key[:KEY_BYTES]


class StateSealer:
    """Seals and opens ``bot_state`` texts under one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("the bot state key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, row_key: str, text: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, text.encode(), _aad(row_key))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, row_key: str, data: str) -> str:
        """The text sealed in ``data``; plain JSON (a row from before sealing) as it is.

        Raises:
            SealError: the row is sealed but does not open with this key under this row key.
        """
        if not data.startswith(PREFIX):
            return data
        try:
            raw = base64.urlsafe_b64decode(data[len(PREFIX) :])
            return self._aead.decrypt(raw[:12], raw[12:], _aad(row_key)).decode()
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise SealError("bot state row does not open") from exc


def _aad(row_key: str) -> bytes:
    return _INFO + b"|" + row_key.encode()
