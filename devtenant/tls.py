"""Local TLS for devtenant: a private CA and a loopback server certificate, made once and reused.

Files in the data dir: `ca.pem` (the CA certificate clients trust), `server.pem` (server
certificate followed by the CA certificate), `server.key` (PKCS#8, mode 0600) and `ca.key` (0600).
Keys are ECDSA P-256. The CA is valid for 10 years; the server certificate for 2 years (it is
regenerated when it expires).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = timedelta(days=3650)
SERVER_LIFETIME = timedelta(days=730)
_CA_KEY = "ca.key"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths of the generated TLS material."""

    ca_path: Path
    cert_path: Path
    key_path: Path


def ensure_tls_files(data_dir: Path) -> TlsFiles:
    """Create (or reuse) the CA and the server certificate for 127.0.0.1, ::1 and localhost.

    Private keys are written with mode 0600. Existing, unexpired files are reused unchanged.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(data_dir / "ca.pem", data_dir / "server.pem", data_dir / "server.key")
    ca_key_path = data_dir / _CA_KEY
    if not (files.ca_path.exists() and ca_key_path.exists()):
        ca_key, ca_cert = _make_ca()
        _write_key(ca_key_path, ca_key)
        files.ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    if not (files.cert_path.exists() and files.key_path.exists()) or _expired(files.cert_path):
        ca_key = _load_key(ca_key_path)
        ca_cert = x509.load_pem_x509_certificate(files.ca_path.read_bytes())
        key, cert = _make_server_cert(ca_key, ca_cert)
        _write_key(files.key_path, key)
        files.cert_path.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM) + files.ca_path.read_bytes()
        )
    return files


def server_ssl_context(data_dir: Path) -> ssl.SSLContext:
    """A TLS ≥ 1.2 server context using the (possibly freshly generated) files in `data_dir`."""
    files = ensure_tls_files(data_dir)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(files.cert_path, files.key_path)
    return ctx


def client_ssl_context(data_dir: Path) -> ssl.SSLContext:
    """A client context that trusts only devtenant's CA (for tests and tools)."""
    return ssl.create_default_context(cafile=str(ensure_tls_files(data_dir).ca_path))


def _make_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "devtenant local CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OpenSlot devtenant"),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    san = x509.SubjectAlternativeName(
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + SERVER_LIFETIME)
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    path.chmod(0o600)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{path} is not an EC private key")
    return key


def _expired(cert_path: Path) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.not_valid_after_utc <= datetime.now(UTC) + timedelta(days=1)
