"""Key rotation runbook, as functions (``python -m calendar_backend keys add|promote|reencrypt|
retire|status``).

No downtime, no plaintext written:

1. :func:`add` a new KEK (active, not primary). Distribute the keyring file to every process
   (they reload it on restart); old and new keys both open envelopes.
2. :func:`promote` it: new envelopes are sealed under it. Restart/reload the processes.
3. :func:`reencrypt` every stored envelope not yet under the primary (tenant credentials, token
   caches, offer conversation references). Each row is opened and sealed again in memory and
   swapped with a compare-and-set (``storage.replace_blob``), so a row the service rewrote in the
   meantime is left alone (and is already under the new primary). Safe to re-run.
4. :func:`retire` the old key: refused while any row is still sealed under it.

:func:`status` counts envelopes per key id so each step can be checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from calendar_backend import keyring, storage
from calendar_backend.crypto import Aad, CredentialCipher
from calendar_backend.errors import DecryptionError
from calendar_backend.sealing import aad_of

AadOf = Callable[[storage.EncryptedBlob], Aad | None]


class RotationError(Exception):
    """A rotation step is not safe to run now (the message says why; never key material)."""


@dataclass(frozen=True, slots=True)
class RotationStatus:
    """Keyring state and how many stored envelopes each KEK id seals."""

    primary_id: int
    active_ids: tuple[int, ...]
    retired_ids: tuple[int, ...]
    envelopes_by_key: dict[int, int]

    def to_json(self) -> dict[str, object]:
        """JSON form printed by the CLI (ids and counts only)."""
        return {
            "primary": self.primary_id,
            "active": list(self.active_ids),
            "retired": list(self.retired_ids),
            "envelopes_by_key": {str(k): v for k, v in sorted(self.envelopes_by_key.items())},
        }


@dataclass(frozen=True, slots=True)
class ReencryptReport:
    """Outcome of :func:`reencrypt`: rows rewritten, rows that changed meanwhile, rows skipped."""

    rewritten: int
    raced: int
    unknown: int


default_aad = aad_of


def add(key_file: Path) -> int:
    """Step 1: add a new active (not primary) KEK; returns its id."""
    return keyring.add_key(key_file)


def promote(key_file: Path, key_id: int) -> None:
    """Step 2: make ``key_id`` the primary. Raises ``KeyringError`` if unknown or retired."""
    keyring.promote_key(key_file, key_id)


async def reencrypt(store: storage.Store, key_file: Path, aad_of: AadOf = default_aad) -> ReencryptReport:
    """Step 3: seal every envelope not under the current primary again under it.

    Reads the keyring afresh. One short transaction per row.

    Raises:
        DecryptionError: an envelope does not open (wrong AAD or damaged); nothing else changes.
    """
    cipher = CredentialCipher(keyring.load_keyring(key_file))
    async with store.transaction() as tx:
        pending = [b async for b in storage.iter_encrypted(tx, exclude_key_id=cipher.primary_id)]
    rewritten = raced = unknown = 0
    for blob in pending:
        aad = aad_of(blob)
        if aad is None:
            unknown += 1
            continue
        sealed = cipher.reencrypt(blob.blob, aad=aad)
        async with store.transaction() as tx:
            swapped = await storage.replace_blob(tx, blob, sealed, cipher.primary_id)
        rewritten, raced = (rewritten + 1, raced) if swapped else (rewritten, raced + 1)
    return ReencryptReport(rewritten, raced, unknown)


async def retire(store: storage.Store, key_file: Path, key_id: int) -> None:
    """Step 4: retire ``key_id`` once no stored envelope uses it.

    Raises:
        RotationError: envelopes are still sealed under ``key_id`` (run reencrypt first).
        KeyringError: ``key_id`` is unknown or the primary.
    """
    if key_id == keyring.load_keyring(key_file).primary_id:
        raise keyring.KeyringError(f"key {key_id} is the primary; promote another key first")
    counts = await envelope_counts(store)
    if counts.get(key_id, 0):
        raise RotationError(f"{counts[key_id]} envelopes still use key {key_id}; run `keys reencrypt` first")
    keyring.retire_key(key_file, key_id)


async def envelope_counts(store: storage.Store) -> dict[int, int]:
    """How many stored envelopes each KEK id seals (from the rows' ``key_id`` columns)."""
    counts: Counter[int] = Counter()
    async with store.transaction() as tx:
        async for blob in storage.iter_encrypted(tx):
            counts[blob.key_id] += 1
    return dict(counts)


async def status(store: storage.Store, key_file: Path) -> RotationStatus:
    """The keyring's primary/active/retired ids and the envelope count per key id."""
    ring = keyring.load_keyring(key_file)
    return RotationStatus(ring.primary_id, ring.active_ids, ring.retired_ids, await envelope_counts(store))


def verify_all_open(
    cipher: CredentialCipher, blobs: list[storage.EncryptedBlob], aad_of: AadOf = default_aad
) -> int:
    """How many of ``blobs`` open with ``cipher`` (those with a known AAD); for checks and tests."""
    opened = 0
    for blob in blobs:
        aad = aad_of(blob)
        if aad is None:
            continue
        try:
            cipher.decrypt(blob.blob, aad=aad)
        except DecryptionError:
            continue
        opened += 1
    return opened
