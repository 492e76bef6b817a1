"""Tests for calendar_backend.crypto: the AES-256-GCM envelope format v1."""

from __future__ import annotations

import base64
import json
import secrets
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from calendar_backend.crypto import MIN_BLOB_BYTES, Aad, CredentialCipher
from calendar_backend.errors import DecryptionError
from calendar_backend.keyring import (
    KeyEntry,
    Keyring,
    KeyStatus,
    add_key,
    create_keyring,
    load_keyring,
    promote_key,
    retire_key,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "credential_v1.json"
AAD = Aad("tenant-credential", "tenant-a", "-", "tenant_credentials.secret", "tenant-a")
CREATED = datetime(2026, 1, 1, tzinfo=UTC)

# Byte ranges of every v1 region, for a blob whose plaintext is PLAINTEXT.
PLAINTEXT = b"client-secret-value"
REGIONS = {
    "version": (0, 1),
    "kek_id": (1, 5),
    "wrapped_dek_len": (5, 7),
    "wrap_nonce": (7, 19),
    "wrapped_dek_ciphertext": (19, 51),
    "wrapped_dek_tag": (51, 67),
    "nonce": (67, 79),
    "ciphertext": (79, 79 + len(PLAINTEXT)),
    "tag": (79 + len(PLAINTEXT), 95 + len(PLAINTEXT)),
}


def _ring(*kek_ids: int, primary: int | None = None) -> Keyring:
    entries = {i: KeyEntry(secrets.token_bytes(32), KeyStatus.ACTIVE, CREATED) for i in kek_ids}
    signing = {1: secrets.token_bytes(32)}
    return Keyring(primary if primary is not None else kek_ids[0], entries, signing)


CIPHER = CredentialCipher(_ring(7, 8))


def _decrypt_failure(cipher: CredentialCipher, blob: bytes, aad: Aad) -> DecryptionError:
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(blob, aad=aad)
    return info.value


def _assert_opaque(error: DecryptionError) -> None:
    assert type(error) is DecryptionError
    assert error.__cause__ is None
    assert error.__context__ is None
    assert str(error) == DecryptionError.message
    assert error.args == (DecryptionError.message,)


# --- round trip and layout ---------------------------------------------------------------------

aad_text = st.text(max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    plaintext=st.binary(max_size=2048),
    purpose=aad_text.filter(bool),
    tenant=aad_text.filter(bool),
    user=aad_text,
    column=aad_text,
    row=aad_text,
)
def test_crypto_round_trip(
    plaintext: bytes, purpose: str, tenant: str, user: str, column: str, row: str
) -> None:
    aad = Aad(purpose, tenant, user, column, row)
    blob = CIPHER.encrypt(plaintext, aad=aad)
    assert CIPHER.decrypt(blob, aad=aad) == plaintext
    assert len(blob) == MIN_BLOB_BYTES + len(plaintext)
    if len(plaintext) >= 16:
        assert plaintext not in blob


def test_crypto_header_parses_as_documented() -> None:
    blob = CIPHER.encrypt(PLAINTEXT, aad=AAD)
    version, kek_id, wrapped_len = struct.unpack(">BIH", blob[:7])
    assert (version, kek_id, wrapped_len) == (1, 7, 60)
    assert CIPHER.key_id_of(blob) == 7
    assert len(blob) == REGIONS["tag"][1]


def test_crypto_dek_is_exactly_32_bytes_and_wrapped_with_the_kek() -> None:
    ring = _ring(7)
    blob = CredentialCipher(ring).encrypt(PLAINTEXT, aad=AAD)
    wrap_nonce, wrapped, nonce = blob[7:19], blob[19:67], blob[67:79]
    kek_id = struct.pack(">I", 7)
    dek = AESGCM(ring.key(7)).decrypt(wrap_nonce, wrapped, b"openslot/dek/v1" + kek_id)
    assert len(dek) == 32
    assert AESGCM(dek).decrypt(nonce, blob[79:], AAD.encode() + kek_id) == PLAINTEXT


def test_crypto_rejects_a_validly_wrapped_short_dek() -> None:
    ring = _ring(7)
    kek_id = struct.pack(">I", 7)
    dek = secrets.token_bytes(16)
    wrap_nonce, nonce = secrets.token_bytes(12), secrets.token_bytes(12)
    wrapped = AESGCM(ring.key(7)).encrypt(wrap_nonce, dek, b"openslot/dek/v1" + kek_id)
    payload = AESGCM(dek).encrypt(nonce, PLAINTEXT, AAD.encode() + kek_id)
    for declared in (len(wrap_nonce + wrapped), 60):
        blob = struct.pack(">BIH", 1, 7, declared) + wrap_nonce + wrapped + nonce + payload
        _assert_opaque(_decrypt_failure(CredentialCipher(ring), blob, AAD))


def test_crypto_100k_encryptions_never_repeat_a_key_nonce_pair() -> None:
    cipher = CredentialCipher(_ring(7))
    wrap_nonces: set[bytes] = set()
    payload_nonces: set[bytes] = set()
    for _ in range(100_000):
        blob = cipher.encrypt(b"x", aad=AAD)
        wrap_nonces.add(blob[7:19])
        payload_nonces.add(blob[67:79])
    # The KEK is fixed, so distinct wrap nonces mean distinct (KEK, nonce) pairs; payload nonces
    # are distinct too, so (DEK, nonce) pairs cannot repeat even if a DEK did.
    assert len(wrap_nonces) == 100_000
    assert len(payload_nonces) == 100_000


# --- tampering ----------------------------------------------------------------------------------


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_crypto_tampering_any_byte_of_a_region_fails_opaquely(region: str) -> None:
    blob = CIPHER.encrypt(PLAINTEXT, aad=AAD)
    start, end = REGIONS[region]
    for index in range(start, end):
        for mask in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[index] ^= mask
            _assert_opaque(_decrypt_failure(CIPHER, bytes(tampered), AAD))


def test_crypto_kek_id_pointing_at_another_active_key_fails() -> None:
    blob = CIPHER.encrypt(PLAINTEXT, aad=AAD)
    moved = blob[:1] + struct.pack(">I", 8) + blob[5:]
    _assert_opaque(_decrypt_failure(CIPHER, moved, AAD))


def test_crypto_truncated_or_extended_blob_fails() -> None:
    blob = CIPHER.encrypt(PLAINTEXT, aad=AAD)
    for length in range(len(blob)):
        _assert_opaque(_decrypt_failure(CIPHER, blob[:length], AAD))
    _assert_opaque(_decrypt_failure(CIPHER, blob + b"\x00", AAD))


def test_crypto_unknown_version_fails_even_with_a_valid_body() -> None:
    blob = CIPHER.encrypt(PLAINTEXT, aad=AAD)
    for version in (0x00, 0x02, 0xFF):
        _assert_opaque(_decrypt_failure(CIPHER, bytes([version]) + blob[1:], AAD))
        with pytest.raises(DecryptionError):
            CIPHER.key_id_of(bytes([version]) + blob[1:])


def test_crypto_unknown_kek_fails() -> None:
    blob = CredentialCipher(_ring(9)).encrypt(PLAINTEXT, aad=AAD)
    _assert_opaque(_decrypt_failure(CIPHER, blob, AAD))
    same_id_other_key = CredentialCipher(_ring(7)).encrypt(PLAINTEXT, aad=AAD)
    _assert_opaque(_decrypt_failure(CIPHER, same_id_other_key, AAD))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_crypto_arbitrary_bytes_fail_only_with_decryption_error(data: bytes) -> None:
    _assert_opaque(_decrypt_failure(CIPHER, data, AAD))


@settings(max_examples=200, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 255)), min_size=1, max_size=4))
def test_crypto_random_edits_of_a_valid_blob_fail(edits: list[tuple[int, int]]) -> None:
    original = CIPHER.encrypt(PLAINTEXT, aad=AAD)
    blob = bytearray(original)
    for index, mask in edits:
        blob[index % len(blob)] ^= mask
    if bytes(blob) == original:  # the edits cancelled out
        assert CIPHER.decrypt(original, aad=AAD) == PLAINTEXT
    else:
        _assert_opaque(_decrypt_failure(CIPHER, bytes(blob), AAD))


# --- associated data ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["purpose", "tenant_id", "user_oid", "column", "row_id"])
def test_crypto_wrong_aad_field_fails(field: str) -> None:
    blob = CIPHER.encrypt(PLAINTEXT, aad=AAD)
    values = {f: getattr(AAD, f) for f in ("purpose", "tenant_id", "user_oid", "column", "row_id")}
    for wrong in (values[field] + "x", values[field].upper() + "!", values[field][:-1] or "y"):
        aad = Aad(**{**values, field: wrong})
        _assert_opaque(_decrypt_failure(CIPHER, blob, aad))


def test_crypto_blob_swapped_between_tenants_users_or_rows_fails() -> None:
    rows = {
        "tenant A": Aad("msal-cache", "tenant-a", "user-1", "user_tokens.cache", "row-1"),
        "tenant B": Aad("msal-cache", "tenant-b", "user-1", "user_tokens.cache", "row-1"),
        "other user": Aad("msal-cache", "tenant-a", "user-2", "user_tokens.cache", "row-1"),
        "other row": Aad("msal-cache", "tenant-a", "user-1", "user_tokens.cache", "row-2"),
    }
    blobs = {name: CIPHER.encrypt(name.encode(), aad=aad) for name, aad in rows.items()}
    for owner, blob in blobs.items():
        for name, aad in rows.items():
            if name == owner:
                assert CIPHER.decrypt(blob, aad=aad) == owner.encode()
            else:
                _assert_opaque(_decrypt_failure(CIPHER, blob, aad))


aad_values = st.builds(
    Aad,
    purpose=st.text(min_size=1, max_size=6, alphabet="ab|-"),
    tenant_id=st.text(min_size=1, max_size=6, alphabet="ab|-"),
    user_oid=st.text(max_size=6, alphabet="ab|-"),
    column=st.text(max_size=6, alphabet="ab|-."),
    row_id=st.text(max_size=6, alphabet="ab|-"),
)


@settings(max_examples=200, deadline=None)
@given(first=aad_values, second=aad_values)
def test_crypto_aad_encoding_is_injective(first: Aad, second: Aad) -> None:
    assert (first.encode() == second.encode()) == (first == second)


def test_crypto_aad_requires_purpose_and_tenant() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        Aad("", "tenant-a")
    with pytest.raises(ValueError, match="non-empty"):
        Aad("purpose", "")


# --- rotation -----------------------------------------------------------------------------------


def test_crypto_rotation_add_promote_reencrypt_retire(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "kek.json"
    old_id = create_keyring(path).primary_id
    rows = {f"row-{i}": Aad("msal-cache", "tenant-a", f"user-{i}", "c.v", f"row-{i}") for i in range(5)}
    before = CredentialCipher(load_keyring(path))
    stored = {row: before.encrypt(row.encode(), aad=aad) for row, aad in rows.items()}

    new_id = add_key(path)
    added = CredentialCipher(load_keyring(path))
    assert all(added.decrypt(stored[r], aad=a) == r.encode() for r, a in rows.items())
    assert added.key_id_of(added.encrypt(b"new", aad=AAD)) == old_id

    promote_key(path, new_id)
    promoted = CredentialCipher(load_keyring(path))
    assert promoted.key_id_of(promoted.encrypt(b"new", aad=AAD)) == new_id
    assert all(promoted.decrypt(stored[r], aad=a) == r.encode() for r, a in rows.items())
    moved = {row: promoted.reencrypt(stored[row], aad=aad) for row, aad in rows.items()}
    assert sorted(promoted.key_id_of(b) for b in stored.values()) == [old_id] * 5
    assert sorted(promoted.key_id_of(b) for b in moved.values()) == [new_id] * 5

    retire_key(path, old_id)
    retired = CredentialCipher(load_keyring(path))
    assert all(retired.decrypt(moved[r], aad=a) == r.encode() for r, a in rows.items())
    for row, aad in rows.items():
        _assert_opaque(_decrypt_failure(retired, stored[row], aad))
        with pytest.raises(DecryptionError):
            retired.reencrypt(stored[row], aad=aad)


def test_crypto_reencrypt_checks_aad_and_uses_fresh_randomness() -> None:
    cipher = CredentialCipher(_ring(7, 8, primary=8))
    blob = CredentialCipher(_ring(7)).encrypt(PLAINTEXT, aad=AAD)
    _assert_opaque(_decrypt_failure(cipher, blob, AAD))  # a different key 7
    own = cipher.encrypt(PLAINTEXT, aad=AAD)
    again = cipher.reencrypt(own, aad=AAD)
    assert again != own
    assert cipher.decrypt(again, aad=AAD) == PLAINTEXT
    with pytest.raises(DecryptionError):
        cipher.reencrypt(own, aad=Aad("tenant-credential", "tenant-b"))


def test_crypto_repr_shows_no_key_material() -> None:
    ring = _ring(7)
    cipher = CredentialCipher(ring)
    text = repr(cipher) + str(cipher)
    key = ring.key(7)
    assert "7" in repr(cipher)
    for form in (key.hex(), base64.b64encode(key).decode(), repr(key)[2:-1]):
        assert form not in text


# --- known-answer vectors -----------------------------------------------------------------------


def _vectors() -> list[dict[str, object]]:
    doc = json.loads(VECTORS.read_text(encoding="utf-8"))
    vectors: list[dict[str, object]] = doc["vectors"]
    return vectors


def _vector_ring(vector: dict[str, object]) -> Keyring:
    kek_id = int(str(vector["kek_id"]))
    entry = KeyEntry(bytes.fromhex(str(vector["kek_hex"])), KeyStatus.ACTIVE, CREATED)
    return Keyring(kek_id, {kek_id: entry}, {1: bytes(32)})


def _reference_seal(vector: dict[str, object], aad_bytes: bytes) -> bytes:
    """The format as the module docstring describes it, built independently of crypto.py."""
    kek_id = struct.pack(">I", int(str(vector["kek_id"])))
    kek, dek = bytes.fromhex(str(vector["kek_hex"])), bytes.fromhex(str(vector["dek_hex"]))
    wrap_nonce = bytes.fromhex(str(vector["wrap_nonce_hex"]))
    nonce = bytes.fromhex(str(vector["nonce_hex"]))
    wrapped = AESGCM(kek).encrypt(wrap_nonce, dek, b"openslot/dek/v1" + kek_id)
    plaintext = str(vector["plaintext_utf8"]).encode()
    payload = AESGCM(dek).encrypt(nonce, plaintext, aad_bytes + kek_id)
    return b"\x01" + kek_id + struct.pack(">H", 60) + wrap_nonce + wrapped + nonce + payload


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: str(v["description"]))
def test_crypto_known_answer_vector(vector: dict[str, object]) -> None:
    fields = vector["aad"]
    assert isinstance(fields, dict)
    aad = Aad(**fields)
    blob = bytes.fromhex(str(vector["blob_hex"]))
    plaintext = str(vector["plaintext_utf8"]).encode()
    cipher = CredentialCipher(_vector_ring(vector))

    assert aad.encode().hex() == vector["aad_encoded_hex"]
    assert _reference_seal(vector, aad.encode()) == blob
    assert cipher.key_id_of(blob) == vector["kek_id"]
    assert cipher.decrypt(blob, aad=aad) == plaintext
    fresh = cipher.encrypt(plaintext, aad=aad)
    assert fresh != blob
    assert len(fresh) == len(blob)
    assert fresh[:7] == blob[:7]
