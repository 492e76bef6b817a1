"""Tests for calendar_backend.keyring: the 0600 KEK file, its validation and rotation."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from calendar_backend.keyring import (
    Keyring,
    KeyringError,
    KeyStatus,
    add_key,
    add_signing_key,
    create_keyring,
    load_keyring,
    promote_key,
    retire_key,
)

Doc = dict[str, Any]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "kek.json"


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _write(p: Path, doc: Doc | bytes, mode: int = 0o600) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    p.chmod(mode)


def _valid_doc() -> Doc:
    return {
        "version": 1,
        "primary": 5,
        "keys": {
            "5": {
                "key": base64.b64encode(bytes(range(32))).decode(),
                "status": "active",
                "created": "2026-01-01T00:00:00+00:00",
            },
            "6": {
                "key": base64.b64encode(bytes(range(1, 33))).decode(),
                "status": "retired",
                "created": "2025-06-01T12:00:00Z",
            },
        },
        "signing": {"3": base64.b64encode(bytes(range(2, 34))).decode()},
    }


def _all_key_forms(ring: Keyring) -> list[str]:
    keys = [e.key for e in ring.entries.values() if e.key] + list(ring.signing.values())
    forms = []
    for key in keys:
        forms += [key.hex(), base64.b64encode(key).decode(), repr(key)[2:-1]]
    return forms


# --- create -------------------------------------------------------------------------------------


def test_keyring_create_writes_0600_file_in_0700_dir_and_loads_back(path: Path) -> None:
    created = create_keyring(path)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    loaded = load_keyring(path)
    assert loaded.primary_id == created.primary_id
    assert loaded.active_ids == (created.primary_id,)
    assert loaded.key(loaded.primary_id) == created.key(created.primary_id)
    assert len(loaded.key(loaded.primary_id)) == 32
    signing_id, signing = loaded.signing_key()
    assert len(signing) == 32
    assert signing != loaded.key(loaded.primary_id)
    assert loaded.signing_key_for(signing_id) == signing
    assert sorted(p.name for p in path.parent.iterdir()) == ["kek.json"]


def test_keyring_create_makes_distinct_random_keys(tmp_path: Path) -> None:
    first = create_keyring(tmp_path / "a" / "kek.json")
    second = create_keyring(tmp_path / "b" / "kek.json")
    assert first.key(first.primary_id) != second.key(second.primary_id)
    assert first.signing_key()[1] != second.signing_key()[1]


def test_keyring_create_refuses_to_overwrite(path: Path) -> None:
    create_keyring(path)
    before = path.read_bytes()
    with pytest.raises(KeyringError, match="already exists"):
        create_keyring(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["kek.json"]


# --- load refuses unsafe or malformed files -----------------------------------------------------


def test_keyring_load_refuses_missing_file(path: Path) -> None:
    with pytest.raises(KeyringError, match="does not exist"):
        load_keyring(path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606, 0o700, 0o601])
def test_keyring_load_refuses_group_or_world_access(path: Path, mode: int) -> None:
    _write(path, _valid_doc(), mode)
    if mode & 0o077:
        with pytest.raises(KeyringError, match="must be 0600"):
            load_keyring(path)
    else:
        assert load_keyring(path).primary_id == 5


def test_keyring_load_refuses_directory_symlink_and_fifo(tmp_path: Path, path: Path) -> None:
    _write(path, _valid_doc())
    link = tmp_path / "link.json"
    link.symlink_to(path)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo, 0o600)
    directory = tmp_path / "dir.json"
    directory.mkdir(mode=0o700)
    for bad in (link, fifo, directory):
        with pytest.raises(KeyringError):
            load_keyring(bad)


def _set(path_in_doc: tuple[str, ...], value: object) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        target = doc
        for part in path_in_doc[:-1]:
            target = target[part]
        target[path_in_doc[-1]] = value

    return mutate


def _drop(path_in_doc: tuple[str, ...]) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        target = doc
        for part in path_in_doc[:-1]:
            target = target[part]
        del target[path_in_doc[-1]]

    return mutate


def _b64(n: int) -> str:
    return base64.b64encode(bytes(n)).decode()


MALFORMED: dict[str, Callable[[Doc], None]] = {
    "wrong version": _set(("version",), 2),
    "version missing": _drop(("version",)),
    "unknown top-level field": _set(("extra",), 1),
    "signing missing": _drop(("signing",)),
    "no signing key": _set(("signing",), {}),
    "primary not an int": _set(("primary",), "5"),
    "primary unknown": _set(("primary",), 7),
    "primary retired": _set(("primary",), 6),
    "kek 31 bytes": _set(("keys", "5", "key"), _b64(31)),
    "kek 33 bytes": _set(("keys", "5", "key"), _b64(33)),
    "kek 16 bytes": _set(("keys", "5", "key"), _b64(16)),
    "retired kek 64 bytes": _set(("keys", "6", "key"), _b64(64)),
    "signing key 31 bytes": _set(("signing", "3"), _b64(31)),
    "kek not base64": _set(("keys", "5", "key"), "not*base64!"),
    "kek not a string": _set(("keys", "5", "key"), 12),
    "unknown status": _set(("keys", "5", "status"), "disabled"),
    "created naive": _set(("keys", "5", "created"), "2026-01-01T00:00:00"),
    "created garbage": _set(("keys", "5", "created"), "yesterday"),
    "entry extra field": _set(("keys", "5", "note"), "x"),
    "id zero": _set(("keys", "0"), _valid_doc()["keys"]["6"]),
    "id too large": _set(("keys", str(2**32)), _valid_doc()["keys"]["6"]),
    "id not canonical": _set(("keys", "05"), _valid_doc()["keys"]["6"]),
    "id negative": _set(("signing", "-3"), _b64(32)),
    "keys not an object": _set(("keys",), []),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_keyring_load_refuses_malformed_file(path: Path, case: str) -> None:
    doc = _valid_doc()
    MALFORMED[case](doc)
    _write(path, doc)
    with pytest.raises(KeyringError):
        load_keyring(path)


@pytest.mark.parametrize("text", [b"", b"{", b"[]", b"null", b'{"version": 1}', b"\xff\xfe{}"])
def test_keyring_load_refuses_non_keyring_json(path: Path, text: bytes) -> None:
    _write(path, text)
    with pytest.raises(KeyringError):
        load_keyring(path)


def test_keyring_valid_doc_loads(path: Path) -> None:
    _write(path, _valid_doc())
    ring = load_keyring(path)
    assert ring.primary_id == 5
    assert ring.active_ids == (5,)
    assert ring.retired_ids == (6,)
    assert ring.key(5) == bytes(range(32))
    assert ring.entries[6].status is KeyStatus.RETIRED
    assert ring.signing_key() == (3, bytes(range(2, 34)))
    with pytest.raises(KeyringError):
        ring.key(6)
    with pytest.raises(KeyringError):
        ring.key(99)
    with pytest.raises(KeyringError):
        ring.signing_key_for(4)


def test_keyring_errors_and_repr_never_show_key_bytes(path: Path) -> None:
    doc = _valid_doc()
    _write(path, doc)
    ring = load_keyring(path)
    shown = repr(ring) + str(ring) + repr(ring.entries) + repr(ring.entries[5])
    assert "primary_id=5" in repr(ring)
    for form in _all_key_forms(ring):
        assert form not in shown
    doc["keys"]["5"]["key"] = base64.b64encode(bytes(range(31))).decode()
    _write(path, doc)
    with pytest.raises(KeyringError) as info:
        load_keyring(path)
    assert doc["keys"]["5"]["key"] not in str(info.value)


def test_keyring_is_immutable(path: Path) -> None:
    ring = create_keyring(path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ring.primary_id = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        ring.entries[1] = ring.entries[ring.primary_id]  # type: ignore[index]
    with pytest.raises(TypeError):
        ring.signing[1] = b"x"  # type: ignore[index]


# --- rotation -----------------------------------------------------------------------------------


def test_keyring_add_promote_retire(path: Path) -> None:
    old = create_keyring(path)
    new_id = add_key(path)
    assert _mode(path) == 0o600
    added = load_keyring(path)
    assert added.primary_id == old.primary_id
    assert set(added.active_ids) == {old.primary_id, new_id}
    assert added.key(old.primary_id) == old.key(old.primary_id)
    assert added.key(new_id) != old.key(old.primary_id)
    assert added.signing_key() == old.signing_key()

    promote_key(path, new_id)
    assert load_keyring(path).primary_id == new_id

    retire_key(path, old.primary_id)
    retired = load_keyring(path)
    assert retired.active_ids == (new_id,)
    assert retired.retired_ids == (old.primary_id,)
    # retiring removes the key material from the file
    old_key = base64.b64encode(old.key(old.primary_id)).decode()
    assert old_key not in path.read_text()
    assert "key" not in json.loads(path.read_text())["keys"][str(old.primary_id)]
    assert retired.entries[old.primary_id].key is None
    assert retired.entries[old.primary_id].created == old.entries[old.primary_id].created
    retire_key(path, old.primary_id)  # idempotent
    assert load_keyring(path).retired_ids == (old.primary_id,)
    assert _mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["kek.json", "kek.json.lock"]


def test_keyring_retire_refuses_primary_and_unknown(path: Path) -> None:
    ring = create_keyring(path)
    before = path.read_bytes()
    with pytest.raises(KeyringError, match="primary"):
        retire_key(path, ring.primary_id)
    with pytest.raises(KeyringError, match="unknown"):
        retire_key(path, ring.primary_id + 1)
    assert path.read_bytes() == before


def test_keyring_promote_refuses_unknown_or_retired(path: Path) -> None:
    ring = create_keyring(path)
    new_id = add_key(path)
    promote_key(path, new_id)
    retire_key(path, ring.primary_id)
    before = path.read_bytes()
    for bad in (ring.primary_id, 424242):
        with pytest.raises(KeyringError):
            promote_key(path, bad)
    assert path.read_bytes() == before


def test_keyring_changes_refuse_an_unsafe_file(path: Path) -> None:
    create_keyring(path)
    path.chmod(0o644)
    with pytest.raises(KeyringError, match="must be 0600"):
        add_key(path)


def test_keyring_add_signing_key_becomes_current_and_keeps_old(path: Path) -> None:
    ring = create_keyring(path)
    old_id, old_key = ring.signing_key()
    new_id = add_signing_key(path)
    loaded = load_keyring(path)
    assert new_id == old_id + 1
    assert loaded.signing_key()[0] == new_id
    assert loaded.signing_key()[1] not in (old_key, loaded.key(loaded.primary_id))
    assert loaded.signing_key_for(old_id) == old_key
    assert loaded.primary_id == ring.primary_id
    assert _mode(path) == 0o600


def test_keyring_concurrent_add_key_loses_no_key(path: Path) -> None:
    create_keyring(path)
    ids: list[int] = []

    def add_many() -> None:
        for _ in range(10):
            ids.append(add_key(path))

    threads = [threading.Thread(target=add_many) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ring = load_keyring(path)
    assert len(set(ids)) == 30
    assert set(ids) <= set(ring.active_ids)
    assert len(ring.active_ids) == 31
