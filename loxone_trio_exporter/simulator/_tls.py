"""A self-signed certificate for ``simulate --tls``, made at start.

The certificate names ``localhost``, ``127.0.0.1``/``::1`` and the CloudDNS-style name a client
derives from the IP and the serial (``127-0-0-1.{serial}.dyndns.loxonecloud.com``), so a client can
either pin the PEM file or verify by that name.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERTIFICATE_LIFETIME = datetime.timedelta(days=365)


def write_self_signed_certificate(
    cert_path: Path, key_path: Path, *, serials: list[str], now: datetime.datetime
) -> None:
    """Create a key and a self-signed certificate; write both as PEM (the key with mode 0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    names += [
        x509.DNSName(f"127-0-0-1.{serial.replace(':', '').lower()}.dyndns.loxonecloud.com")
        for serial in serials
    ]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loxone-trio-exporter simulator")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERTIFICATE_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.touch(mode=0o600, exist_ok=True)
    key_path.chmod(0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def server_ssl_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context
