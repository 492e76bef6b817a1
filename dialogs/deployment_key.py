"""Keys every bot instance of a deployment shares: a configured one, else one derived from the app
password for a single purpose (HKDF-SHA256), so the password itself never becomes a key."""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def deployment_key(
    configured: str, app_password: str, *, setting: str, info: bytes, size: int
) -> bytes | None:
    """``configured`` (base64 or base64url of at least ``size`` bytes, as given) wins; else HKDF of
    ``app_password`` for the purpose ``info`` (``size`` bytes); ``None`` with neither.

    Raises:
        ValueError: ``configured`` is not base64 of at least ``size`` bytes (names ``setting``).
    """
    text = configured.strip()
    if text:
        standard = text.replace("-", "+").replace("_", "/")  # base64url accepted too
        try:
            key = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
        except binascii.Error:
            raise ValueError(f"{setting} must be base64") from None
        if len(key) < size:
            raise ValueError(f"{setting} must hold at least {size} bytes")
        return key
    if app_password:
        return HKDF(algorithm=hashes.SHA256(), length=size, salt=None, info=info).derive(
            app_password.encode()
        )
    return None
