"""Key rotation re-seals an interview's conversation reference too (r0009, the drift feed)."""

from __future__ import annotations

import json
import uuid

from calendar_backend import rotation, sealing, storage
from calendar_backend.crypto import CredentialCipher
from calendar_backend.keyring import load_keyring
from tests.admin.conftest import Admin
from tests.security.gate_env import MEGAN, find_body, interview_body

REF = {"serviceUrl": "https://smba.trafficmanager.net/emea/", "conversation": {"id": "a:c"}}


async def test_reencrypt_covers_the_interview_conversation_ref(admin: Admin) -> None:
    stack = admin.stack
    status, doc = await stack.post("/v1/slots/find", find_body([MEGAN], limit=3), stack.token())
    assert status == 200, doc
    slot = doc["slots"][0]
    body = {
        **interview_body([MEGAN], f"r-{uuid.uuid4().hex[:12]}", slot["start"], slot["end"]),
        "conversation_ref": REF,
    }
    status, booked = await stack.post("/v1/interviews", body, stack.token())
    assert status == 201, booked
    key_file = stack.settings.key_file
    async with stack.runtime.store.transaction() as tx:
        before = [b async for b in storage.iter_encrypted(tx)]
    (ref_blob,) = [b for b in before if b.kind is storage.BlobKind.INTERVIEW_CONVERSATION_REF]
    assert ref_blob.ident[0] == booked["id"]
    new = rotation.add(key_file)
    rotation.promote(key_file, new)
    report = await rotation.reencrypt(stack.runtime.store, key_file)
    assert report.unknown == 0
    async with stack.runtime.store.transaction() as tx:
        after = [b async for b in storage.iter_encrypted(tx)]
    (moved,) = [b for b in after if b.kind is storage.BlobKind.INTERVIEW_CONVERSATION_REF]
    assert moved.key_id == new
    cipher = CredentialCipher(load_keyring(key_file))
    opened = cipher.decrypt(moved.blob, aad=sealing.aad_of(moved))
    assert json.loads(opened) == REF
