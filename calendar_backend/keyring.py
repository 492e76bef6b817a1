"""The key-encryption-key (KEK) keyring: a 0600 JSON file that lives outside the database.

File format (version 1)::

    {
      "version": 1,
      "primary": <int>,                       # the KEK new envelopes are sealed with
      "keys": {
        "<id>": {"key": "<base64, 32 bytes>", "status": "active" | "retired",
                 "created": "<ISO 8601, UTC>"}
      },
      "signing": {"<id>": "<base64, 32 bytes>"}   # HMAC keys for audit checkpoints
    }

Ids are decimal strings of integers in ``[1, 2**32 - 1]`` (4 bytes in each envelope).
The primary key is always active. A retired key stays in the file (id, status, creation time) but
without its ``key``: retiring removes the key material, so nothing sealed under it opens again.
Signing key ids count up from 1; the current signing key is the one with the highest id.

Rotation (no downtime): ``add_key`` → distribute the file to every process → ``promote_key`` →
re-encrypt every row (``CredentialCipher.reencrypt``) → ``retire_key``.

Every write goes to a fresh 0600 temporary file in the same directory, is fsynced and then
``os.replace``d over the old file, under an exclusive ``flock`` on ``<file>.lock``. No key bytes
ever appear in a ``repr`` or in an error message.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

FORMAT_VERSION = 1
KEY_BYTES = 32
MAX_KEY_ID = 2**32 - 1
_MAX_FILE_BYTES = 1 << 20


class KeyringError(Exception):
    """The keyring file is missing, unsafe, malformed, or the requested change is not allowed.

    Messages name paths and key ids only, never key material.
    """


class KeyStatus(enum.StrEnum):
    """Lifecycle of a KEK: ``active`` keys open envelopes, ``retired`` keys open nothing."""

    ACTIVE = "active"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One KEK. An active key is exactly 32 bytes; a retired key keeps no key material (``None``:
    retiring drops the bytes from the file). ``created`` is UTC."""

    key: bytes | None = field(repr=False)
    status: KeyStatus
    created: datetime

    def __post_init__(self) -> None:
        if self.key is None and self.status is KeyStatus.ACTIVE:
            raise KeyringError("an active key has no key material")
        if self.key is not None and len(self.key) != KEY_BYTES:
            raise KeyringError("a key is not 32 bytes")
        if self.status is KeyStatus.RETIRED:
            object.__setattr__(self, "key", None)
        if self.created.tzinfo is None:
            raise KeyringError("a key's creation time has no time zone")
        object.__setattr__(self, "created", self.created.astimezone(UTC))


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Keyring:
    """An immutable snapshot of the keyring file.

    Invariants: ``primary_id`` names an active entry; every id is in ``[1, 2**32 - 1]``; every key
    (KEK and signing) is exactly 32 bytes; there is at least one signing key.
    """

    primary_id: int
    entries: Mapping[int, KeyEntry]
    signing: Mapping[int, bytes]

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", MappingProxyType(dict(self.entries)))
        object.__setattr__(self, "signing", MappingProxyType(dict(self.signing)))
        for key_id in (*self.entries, *self.signing):
            _check_id(key_id)
        if any(len(k) != KEY_BYTES for k in self.signing.values()):
            raise KeyringError("a signing key is not 32 bytes")
        if not self.signing:
            raise KeyringError("the keyring has no signing key")
        primary = self.entries.get(self.primary_id)
        if primary is None or primary.status is not KeyStatus.ACTIVE:
            raise KeyringError(f"primary key {self.primary_id} is missing or retired")

    def __repr__(self) -> str:
        return (
            f"Keyring(primary_id={self.primary_id}, active_ids={self.active_ids}, "
            f"retired_ids={self.retired_ids}, signing_ids={tuple(sorted(self.signing))})"
        )

    @property
    def active_ids(self) -> tuple[int, ...]:
        """Ids of the keys that may open envelopes, ascending."""
        return tuple(sorted(i for i, e in self.entries.items() if e.status is KeyStatus.ACTIVE))

    @property
    def retired_ids(self) -> tuple[int, ...]:
        """Ids of retired keys, ascending."""
        return tuple(sorted(i for i, e in self.entries.items() if e.status is KeyStatus.RETIRED))

    def key(self, key_id: int) -> bytes:
        """Return the 32-byte KEK ``key_id``.

        Raises:
            KeyringError: the id is unknown or the key is retired.
        """
        entry = self.entries.get(key_id)
        if entry is None or entry.status is not KeyStatus.ACTIVE or entry.key is None:
            raise KeyringError(f"key {key_id} is unknown or retired")
        return entry.key

    def signing_key(self) -> tuple[int, bytes]:
        """Return ``(id, 32-byte HMAC key)`` of the current signing key (the highest id)."""
        key_id = max(self.signing)
        return key_id, self.signing[key_id]

    def signing_key_for(self, key_id: int) -> bytes:
        """Return the signing key ``key_id`` (to verify older checkpoints).

        Raises:
            KeyringError: the id is unknown.
        """
        try:
            return self.signing[key_id]
        except KeyError:
            raise KeyringError(f"signing key {key_id} is unknown") from None


def load_keyring(path: Path) -> Keyring:
    """Read and validate the keyring file at ``path``.

    Raises:
        KeyringError: the file is missing, a symlink or not a regular file, readable or writable by
            group or others (``mode & 0o077``), larger than 1 MiB, or malformed (bad JSON, wrong
            version, bad id, bad base64, a key that is not 32 bytes, a retired or missing primary).
    """
    return _parse(_read_private_file(path), path)


def create_keyring(path: Path) -> Keyring:
    """Create a fresh keyring at ``path``: one primary KEK and one signing key, file mode 0600.

    A missing parent directory is created with mode 0700.

    Raises:
        KeyringError: ``path`` already exists (it is never overwritten) or cannot be written.
    """
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True)
        parent.chmod(0o700)
    keyring = _fresh_keyring(datetime.now(UTC))
    tmp = _write_temp(path, _serialize(keyring))
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise KeyringError(f"{path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyringError(f"cannot create {path}") from exc
    finally:
        tmp.unlink()
    _fsync_dir(parent)
    return keyring


def add_key(path: Path) -> int:
    """Add a new random active KEK (not primary) to the keyring file and return its id.

    Raises:
        KeyringError: as for ``load_keyring``, or the file cannot be rewritten.
    """
    with _locked(path):
        ring = load_keyring(path)
        key_id = _new_id(ring.entries)
        entry = KeyEntry(secrets.token_bytes(KEY_BYTES), KeyStatus.ACTIVE, datetime.now(UTC))
        _replace(path, Keyring(ring.primary_id, {**ring.entries, key_id: entry}, ring.signing))
    return key_id


def promote_key(path: Path, key_id: int) -> None:
    """Make the active key ``key_id`` the primary (new envelopes are sealed with it).

    Raises:
        KeyringError: the id is unknown or retired, or as for ``load_keyring``.
    """
    with _locked(path):
        ring = load_keyring(path)
        ring.key(key_id)
        _replace(path, Keyring(key_id, ring.entries, ring.signing))


def retire_key(path: Path, key_id: int) -> None:
    """Retire the key ``key_id``: envelopes sealed with it can no longer be opened.

    Retiring an already retired key is a no-op.

    Raises:
        KeyringError: the id is unknown or is the primary, or as for ``load_keyring``.
    """
    with _locked(path):
        ring = load_keyring(path)
        entry = ring.entries.get(key_id)
        if entry is None:
            raise KeyringError(f"key {key_id} is unknown")
        if key_id == ring.primary_id:
            raise KeyringError(f"key {key_id} is the primary; promote another key first")
        if entry.status is KeyStatus.RETIRED:
            return
        retired = KeyEntry(entry.key, KeyStatus.RETIRED, entry.created)
        _replace(path, Keyring(ring.primary_id, {**ring.entries, key_id: retired}, ring.signing))


def add_signing_key(path: Path) -> int:
    """Add a new audit-checkpoint signing key with id ``max(ids) + 1``; it becomes current.

    Older signing keys stay available through ``Keyring.signing_key_for`` for old checkpoints.

    Raises:
        KeyringError: as for ``load_keyring``, or the next id would exceed ``2**32 - 1``.
    """
    with _locked(path):
        ring = load_keyring(path)
        key_id = max(ring.signing) + 1
        signing = {**ring.signing, key_id: secrets.token_bytes(KEY_BYTES)}
        _replace(path, Keyring(ring.primary_id, ring.entries, signing))
    return key_id


def _fresh_keyring(now: datetime) -> Keyring:
    kek_id = _new_id(())
    entry = KeyEntry(secrets.token_bytes(KEY_BYTES), KeyStatus.ACTIVE, now)
    return Keyring(kek_id, {kek_id: entry}, {1: secrets.token_bytes(KEY_BYTES)})


def _new_id(taken: Iterable[int]) -> int:
    used = set(taken)
    while True:
        key_id = secrets.randbelow(MAX_KEY_ID) + 1
        if key_id not in used:
            return key_id


def _check_id(key_id: int) -> None:
    if isinstance(key_id, bool) or not isinstance(key_id, int) or not 1 <= key_id <= MAX_KEY_ID:
        raise KeyringError("a key id is outside [1, 2**32 - 1]")


def _read_private_file(path: Path) -> bytes:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise KeyringError(f"keyring file {path} does not exist") from None
    except OSError as exc:
        raise KeyringError(f"cannot open keyring file {path} (a symlink?)") from exc
    try:
        _check_private(os.fstat(fd), path)
        data = os.read(fd, _MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > _MAX_FILE_BYTES:
        raise KeyringError(f"keyring file {path} is too large")
    return data


def _check_private(info: os.stat_result, path: Path) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise KeyringError(f"keyring file {path} is not a regular file")
    if info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        raise KeyringError(f"keyring file {path} has mode {mode:04o}; it must be 0600")


def _parse(data: bytes, path: Path) -> Keyring:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise KeyringError(f"keyring file {path} is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
        raise KeyringError(f"keyring file {path} is not a version {FORMAT_VERSION} keyring")
    if set(doc) != {"version", "primary", "keys", "signing"}:
        raise KeyringError(f"keyring file {path} has missing or unknown top-level fields")
    primary, keys, signing = doc["primary"], doc["keys"], doc["signing"]
    if not isinstance(primary, int) or not isinstance(keys, dict) or not isinstance(signing, dict):
        raise KeyringError(f"keyring file {path} is malformed")
    entries = {_parse_id(k): _parse_entry(v) for k, v in keys.items()}
    signing_keys = {_parse_id(k): _parse_key(v) for k, v in signing.items()}
    return Keyring(primary, entries, signing_keys)


def _parse_id(text: object) -> int:
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        raise KeyringError("a key id is not a decimal integer")
    key_id = int(text)
    if str(key_id) != text:
        raise KeyringError("a key id is not in canonical decimal form")
    _check_id(key_id)
    return key_id


def _parse_entry(value: object) -> KeyEntry:
    if not isinstance(value, dict) or not (
        set(value) == {"key", "status", "created"}
        or (set(value) == {"status", "created"} and value["status"] == KeyStatus.RETIRED)
    ):
        raise KeyringError("a key entry is malformed")
    status, created = value["status"], value["created"]
    if status not in {s.value for s in KeyStatus}:
        raise KeyringError("a key entry has an unknown status")
    if not isinstance(created, str):
        raise KeyringError("a key entry has a malformed creation time")
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        raise KeyringError("a key entry has a malformed creation time") from None
    key = _parse_key(value["key"]) if "key" in value else None  # old files: retired keys' bytes
    return KeyEntry(key, KeyStatus(status), when)


def _parse_key(value: object) -> bytes:
    if not isinstance(value, str):
        raise KeyringError("a key is not a base64 string")
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError("a key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyringError("a key is not 32 bytes")
    return key


def _serialize(ring: Keyring) -> bytes:
    doc = {
        "version": FORMAT_VERSION,
        "primary": ring.primary_id,
        "keys": {
            str(i): {
                **({"key": base64.b64encode(e.key).decode("ascii")} if e.key is not None else {}),
                "status": e.status.value,
                "created": e.created.isoformat(),
            }
            for i, e in sorted(ring.entries.items())
        },
        "signing": {str(i): base64.b64encode(k).decode("ascii") for i, k in sorted(ring.signing.items())},
    }
    return (json.dumps(doc, indent=2) + "\n").encode("ascii")


def _write_temp(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as exc:
        raise KeyringError(f"cannot write next to {path}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _replace(path: Path, ring: Keyring) -> None:
    tmp = _write_temp(path, _serialize(ring))
    try:
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeyringError(f"cannot replace {path}") from exc
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    if not path.exists():
        raise KeyringError(f"keyring file {path} does not exist")
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise KeyringError(f"cannot lock {path}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
