"""Token signing keys for devtenant (RS256), with rollover and JWKS publication.

Each key is RSA-2048 with a self-signed certificate; as with Entra ID, `kid` and `x5t` are both
the base64url SHA-1 thumbprint of that certificate. The first key is the primary (signing) key;
keys that were rolled over stay published so earlier tokens keep verifying. Keys persist as one
JSON file (mode 0600) so tokens survive a devtenant restart.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

JsonDict = dict[str, Any]
Clock = Callable[[], datetime]
LEEWAY = timedelta(minutes=5)
MAX_PUBLISHED_KEYS = 3


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One RSA key pair, its certificate and identifiers."""

    kid: str
    private_key: rsa.RSAPrivateKey
    cert_der: bytes

    @property
    def x5t(self) -> str:
        return self.kid

    def to_jwk(self, issuer: str | None, endorsements: list[str] | None) -> JsonDict:
        """The public JWK: kty, use, kid, x5t, n, e, x5c[, issuer][, endorsements]."""
        numbers = self.private_key.public_key().public_numbers()
        jwk: JsonDict = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.x5t,
            "n": _b64_int(numbers.n),
            "e": _b64_int(numbers.e),
            "x5c": [base64.b64encode(self.cert_der).decode("ascii")],
        }
        if issuer is not None:
            jwk["issuer"] = issuer
        if endorsements is not None:
            jwk["endorsements"] = list(endorsements)
        return jwk


class SigningKeys:
    """A key set: a primary signing key plus older keys that are still published.

    `clock` gives the current UTC time used when verifying `exp`/`nbf` (the tenant clock).
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        clock: Clock | None = None,
        endorsements: list[str] | None = None,
        subject: str = "devtenant",
    ) -> None:
        self._path = path
        self._clock: Clock = clock or (lambda: datetime.now(UTC))
        self.endorsements = endorsements
        self._subject = subject
        self._keys: list[SigningKey] = self._load() if path and path.exists() else []
        if not self._keys:
            self._keys = [_generate_key(subject)]
            self._save()

    @property
    def current(self) -> SigningKey:
        """The primary (signing) key."""
        return self._keys[0]

    @property
    def kids(self) -> list[str]:
        return [k.kid for k in self._keys]

    def rollover(self) -> SigningKey:
        """Make a new primary key; the previous keys stay published (at most 3 in total)."""
        key = _generate_key(self._subject)
        self._keys = [key, *self._keys][:MAX_PUBLISHED_KEYS]
        self._save()
        return key

    def jwks(self, issuer_template: str | None = None) -> JsonDict:
        """The JWKS document; each key carries `issuer` (when given) and the set's endorsements."""
        return {"keys": [k.to_jwk(issuer_template, self.endorsements) for k in self._keys]}

    def mint(self, claims: JsonDict, *, include_x5t: bool = False) -> str:
        """Sign `claims` with the primary key (RS256, header typ/alg/kid[/x5t])."""
        headers: JsonDict = {"typ": "JWT", "kid": self.current.kid}
        if include_x5t:
            headers["x5t"] = self.current.x5t
        return jwt.encode(claims, self.current.private_key, algorithm="RS256", headers=headers)

    def verify(self, token: str, *, audience: str | list[str], issuer: str | None = None) -> JsonDict:
        """Verify signature (RS256 only, key by `kid`), `aud`, `iss` (when given), `exp`/`nbf`.

        Time claims are checked against the injected clock with a 5-minute leeway.
        Raises `jwt.InvalidTokenError` (or a subclass) on any failure.
        """
        kid = jwt.get_unverified_header(token).get("kid")
        key = next((k for k in self._keys if k.kid == kid), None)
        if key is None:
            raise jwt.InvalidKeyError("unknown signing key")
        claims: JsonDict = jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer,
            options={
                "require": ["exp", "iat", "aud", "iss"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
        self._check_times(claims)
        return claims

    def _check_times(self, claims: JsonDict) -> None:
        now = self._clock().timestamp()
        if float(claims["exp"]) <= now - LEEWAY.total_seconds():
            raise jwt.ExpiredSignatureError("Signature has expired")
        nbf = claims.get("nbf")
        if nbf is not None and float(nbf) > now + LEEWAY.total_seconds():
            raise jwt.ImmatureSignatureError("The token is not yet valid (nbf)")

    def _load(self) -> list[SigningKey]:
        assert self._path is not None  # noqa: S101 - only called with a path
        doc = json.loads(self._path.read_text(encoding="utf-8"))
        keys = []
        for item in doc["keys"]:
            private = serialization.load_pem_private_key(item["pem"].encode(), password=None)
            if not isinstance(private, rsa.RSAPrivateKey):
                raise TypeError("signing key file holds a non-RSA key")
            cert_der = base64.b64decode(item["cert"])
            keys.append(SigningKey(_thumbprint(cert_der), private, cert_der))
        return keys

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "keys": [
                {
                    "pem": k.private_key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    ).decode("ascii"),
                    "cert": base64.b64encode(k.cert_der).decode("ascii"),
                }
                for k in self._keys
            ]
        }
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)


def _generate_key(subject: str) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .sign(private, hashes.SHA256())
    )
    cert_der = cert.public_bytes(serialization.Encoding.DER)
    return SigningKey(_thumbprint(cert_der), private, cert_der)


def _thumbprint(cert_der: bytes) -> str:
    digest = hashlib.sha1(cert_der, usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _b64_int(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
