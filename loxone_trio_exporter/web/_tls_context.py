"""The exporter-toolkit's TLS vocabulary (Go names) mapped onto Python's ``ssl`` (OpenSSL).

What maps exactly is mapped; what Python's ``ssl`` cannot express is refused by the loader with
a message that says why (``UNSUPPORTED_*`` below), never silently approximated.
"""

from __future__ import annotations

import enum
import ssl
from pathlib import Path

import attrs
from cryptography import x509


class ClientAuthType(enum.Enum):
    """``client_auth_type``: Go's ``tls.ClientAuthType`` names, as the toolkit reads them."""

    NO_CLIENT_CERT = "NoClientCert"
    REQUEST_CLIENT_CERT = "RequestClientCert"
    REQUIRE_ANY_CLIENT_CERT = "RequireAnyClientCert"
    VERIFY_CLIENT_CERT_IF_GIVEN = "VerifyClientCertIfGiven"
    REQUIRE_AND_VERIFY_CLIENT_CERT = "RequireAndVerifyClientCert"

    @property
    def verifies(self) -> bool:
        """Whether a certificate the client sends is checked against the client CA."""
        return self in (
            ClientAuthType.VERIFY_CLIENT_CERT_IF_GIVEN,
            ClientAuthType.REQUIRE_AND_VERIFY_CLIENT_CERT,
        )


#: The toolkit still accepts this older spelling of RequireAnyClientCert.
CLIENT_AUTH_ALIASES = {"RequireClientCert": ClientAuthType.REQUIRE_ANY_CLIENT_CERT}

# RequestClientCert asks for a certificate and ignores it; nothing here would read an
# unverified certificate, so not asking has the same effect. RequireAnyClientCert demands a
# certificate without checking it, which OpenSSL can only do with a verify callback that
# Python's ssl does not offer.
_VERIFY_MODES = {
    ClientAuthType.NO_CLIENT_CERT: ssl.CERT_NONE,
    ClientAuthType.REQUEST_CLIENT_CERT: ssl.CERT_NONE,
    ClientAuthType.VERIFY_CLIENT_CERT_IF_GIVEN: ssl.CERT_OPTIONAL,
    ClientAuthType.REQUIRE_AND_VERIFY_CLIENT_CERT: ssl.CERT_REQUIRED,
}
UNSUPPORTED_CLIENT_AUTH = {
    ClientAuthType.REQUIRE_ANY_CLIENT_CERT: (
        "RequireAnyClientCert (a certificate required but never checked) cannot be set up with "
        "Python's ssl module; use RequireAndVerifyClientCert with client_ca_file"
    ),
}

TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
UNSUPPORTED_TLS_VERSIONS = {
    name: f"{name} is not served: Python's ssl module deprecates TLS 1.0 and 1.1 (and OpenSSL 3 "
    "refuses them at its default security level); use TLS12 or TLS13"
    for name in ("TLS10", "TLS11")
}

#: Go's ``tls.CipherSuites()`` names (the ones the toolkit accepts) -> OpenSSL names.
#: ``None``: a TLS 1.3 suite, which neither Go nor OpenSSL lets a server configure.
CIPHER_SUITES: dict[str, str | None] = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}

#: The toolkit's curve names -> OpenSSL group names.
CURVES = {
    "CurveP256": "prime256v1",
    "CurveP384": "secp384r1",
    "CurveP521": "secp521r1",
    "X25519": "X25519",
}
#: Python's ``SSLContext.set_ecdh_curve`` takes one group; a preference order needs more.
MAX_CURVES = 1


@attrs.frozen
class TlsSettings:
    """Everything the server's ``SSLContext`` is built from, already checked by the loader."""

    cert_file: Path
    key_file: Path
    client_auth_type: ClientAuthType
    client_ca_file: Path | None
    client_ca_pem: str | None = attrs.field(repr=False)  # inline ``client_ca``
    client_allowed_sans: tuple[str, ...]
    min_version: ssl.TLSVersion
    max_version: ssl.TLSVersion
    cipher_suites: tuple[str, ...]  # Go names
    prefer_server_cipher_suites: bool
    curve_preferences: tuple[str, ...]  # toolkit names
    http2: bool


def build_server_context(settings: TlsSettings) -> ssl.SSLContext:
    """A server context for ``settings``; ``ssl.SSLError`` / ``OSError`` when a file will not load.

    A bare ``PROTOCOL_TLS_SERVER`` context, not ``create_default_context``: that one would trust
    the system's CAs for client certificates, and the toolkit trusts only the client CA given.
    """
    context = _ExporterServerContext(ssl.PROTOCOL_TLS_SERVER)
    context.client_allowed_sans = frozenset(settings.client_allowed_sans)
    if context.client_allowed_sans:
        context.sslobject_class = _SanCheckingSSLObject
    context.minimum_version = settings.min_version
    context.maximum_version = settings.max_version
    if settings.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    openssl_ciphers = [CIPHER_SUITES[name] for name in settings.cipher_suites]
    if settings.cipher_suites:
        context.set_ciphers(":".join(name for name in openssl_ciphers if name))
    for curve in settings.curve_preferences:
        context.set_ecdh_curve(CURVES[curve])
    context.set_alpn_protocols(["h2", "http/1.1"] if settings.http2 else ["http/1.1"])
    context.load_cert_chain(settings.cert_file, settings.key_file)
    if settings.client_ca_file is not None:
        context.load_verify_locations(cafile=settings.client_ca_file)
    elif settings.client_ca_pem is not None:
        context.load_verify_locations(cadata=settings.client_ca_pem)
    context.verify_mode = _VERIFY_MODES[settings.client_auth_type]
    return context


class _ExporterServerContext(ssl.SSLContext):
    """An ``SSLContext`` that also carries ``client_allowed_sans`` for its connections."""

    client_allowed_sans: frozenset[str] = frozenset()


class _SanCheckingSSLObject(ssl.SSLObject):
    """Ends the handshake unless the client certificate names an allowed SAN (as the toolkit).

    Python's ssl has no certificate callback, so the check runs right after OpenSSL has verified
    the chain, before a single byte of HTTP is read; the error breaks the connection.
    """

    def do_handshake(self) -> None:
        super().do_handshake()
        context = self.context
        allowed = (
            context.client_allowed_sans
            if isinstance(context, _ExporterServerContext)
            else frozenset()
        )
        if not allowed_san_presented(self.getpeercert(binary_form=True), allowed):
            raise ssl.SSLError("client certificate names none of client_allowed_sans")


def allowed_san_presented(certificate_der: bytes | None, allowed: frozenset[str]) -> bool:
    """Whether the certificate has a DNS, e-mail, IP or URI SAN listed in ``allowed``.

    IP addresses are compared in Go's ``net.IP.String()`` form, which ``str(ipaddress)`` matches.
    """
    if certificate_der is None:
        return False
    certificate = x509.load_der_x509_certificate(certificate_der)
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    presented = {
        *names.get_values_for_type(x509.DNSName),
        *names.get_values_for_type(x509.RFC822Name),
        *(str(address) for address in names.get_values_for_type(x509.IPAddress)),
        *names.get_values_for_type(x509.UniformResourceIdentifier),
    }
    return not presented.isdisjoint(allowed)
