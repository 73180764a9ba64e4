"""``tls_server_config``: the toolkit's rules, then the certificate files themselves.

Every file is read and parsed here, so a problem names the key whose file is wrong (a key that
does not belong to the certificate, an encrypted key, a CA file with no certificate in it)
instead of leaving OpenSSL to report it in its own words at the first connection.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)

from ._tls_context import (
    CIPHER_SUITES,
    CLIENT_AUTH_ALIASES,
    CURVES,
    MAX_CURVES,
    TLS_VERSIONS,
    UNSUPPORTED_CLIENT_AUTH,
    UNSUPPORTED_TLS_VERSIONS,
    ClientAuthType,
    TlsSettings,
)
from ._web_config_checks import Problems, check_keys, read_boolean, read_string, read_string_list

SECTION = "tls_server_config"
TLS_KEYS = (
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)
#: Any of these (non-empty) turns TLS on, as the toolkit's ``TLSConfig.IsEnabled``.
ENABLING_KEYS = ("cert", "key", "client_ca", "cert_file", "key_file", "client_ca_file")
_STRING_KEYS = (*ENABLING_KEYS, "client_auth_type", "min_version", "max_version")
#: A PEM file bigger than this is a wrong path (a log, a device), not a certificate or key.
MAX_PEM_BYTES = 1024 * 1024


def read_tls_settings(
    section: Mapping[object, object], *, base_dir: Path, http2: bool, problems: Problems
) -> TlsSettings | None:
    """The TLS settings, or ``None`` when TLS is off or a problem was found (and appended)."""
    check_keys(section, TLS_KEYS, SECTION, problems)
    text = {key: read_string(section, key, SECTION, problems) or "" for key in _STRING_KEYS}
    if not any(text[key] for key in ENABLING_KEYS) and not text["client_auth_type"]:
        return None
    problems_before = len(problems)
    for inline, file_key in (("cert", "cert_file"), ("key", "key_file")):
        if text[inline]:
            problems.append(
                f"{SECTION}.{inline}: an inline certificate or key is not supported; "
                f"put it in a file and name that in {file_key}"
            )
        elif not text[file_key]:
            problems.append(f"{SECTION}.{file_key}: required to serve TLS")
    if text["client_ca"] and text["client_ca_file"]:
        problems.append(f"{SECTION}: give client_ca or client_ca_file, not both")
    has_client_ca = bool(text["client_ca"] or text["client_ca_file"])
    client_auth = _client_auth_type(text["client_auth_type"], has_client_ca, problems)
    allowed_sans = read_string_list(section, "client_allowed_sans", SECTION, problems)
    if allowed_sans and client_auth not in (None, ClientAuthType.REQUIRE_AND_VERIFY_CLIENT_CERT):
        problems.append(
            f"{SECTION}.client_allowed_sans: needs client_auth_type RequireAndVerifyClientCert "
            "(other types let a client connect without a certificate to match)"
        )
    min_version = _tls_version(text["min_version"], "min_version", "TLS12", problems)
    max_version = _tls_version(text["max_version"], "max_version", "TLS13", problems)
    if min_version and max_version and min_version > max_version:
        problems.append(f"{SECTION}.min_version: newer than max_version")
    cipher_suites = _cipher_suites(section, min_version, problems)
    prefer_server = read_boolean(
        section, "prefer_server_cipher_suites", SECTION, problems, default=True
    )
    curves = _curves(section, problems)
    cert_file = base_dir / text["cert_file"] if text["cert_file"] else None
    key_file = base_dir / text["key_file"] if text["key_file"] else None
    client_ca_file = base_dir / text["client_ca_file"] if text["client_ca_file"] else None
    _check_files(cert_file, key_file, client_ca_file, text["client_ca"] or None, problems)
    if len(problems) > problems_before:
        return None
    # No problem was found, so each of these was read.
    assert cert_file is not None
    assert key_file is not None
    assert client_auth is not None
    assert min_version is not None
    assert max_version is not None
    return TlsSettings(
        cert_file=cert_file,
        key_file=key_file,
        client_auth_type=client_auth,
        client_ca_file=client_ca_file,
        client_ca_pem=text["client_ca"] or None,
        client_allowed_sans=allowed_sans,
        min_version=min_version,
        max_version=max_version,
        cipher_suites=cipher_suites,
        prefer_server_cipher_suites=prefer_server,
        curve_preferences=curves,
        http2=http2,
    )


def _client_auth_type(name: str, has_client_ca: bool, problems: Problems) -> ClientAuthType | None:
    here = f"{SECTION}.client_auth_type"
    try:
        client_auth = CLIENT_AUTH_ALIASES.get(name) or ClientAuthType(name or "NoClientCert")
    except ValueError:
        known = ", ".join(member.value for member in ClientAuthType)
        problems.append(f"{here}: unknown type {json.dumps(name)}; expected one of {known}")
        return None
    if client_auth in UNSUPPORTED_CLIENT_AUTH:
        problems.append(f"{here}: {UNSUPPORTED_CLIENT_AUTH[client_auth]}")
        return None
    if has_client_ca and client_auth is ClientAuthType.NO_CLIENT_CERT:
        problems.append(
            f"{here}: a client CA is configured but NoClientCert never asks for a client "
            "certificate; set RequireAndVerifyClientCert"
        )
        return None
    if client_auth.verifies and not has_client_ca:
        # Go would verify against the system's CAs: any certificate a public CA sold would do.
        problems.append(
            f"{SECTION}.client_ca_file: required with client_auth_type {client_auth.value}"
        )
        return None
    return client_auth


def _tls_version(name: str, key: str, default: str, problems: Problems) -> ssl.TLSVersion | None:
    name = name or default
    if name in TLS_VERSIONS:
        return TLS_VERSIONS[name]
    if name in UNSUPPORTED_TLS_VERSIONS:
        problems.append(f"{SECTION}.{key}: {UNSUPPORTED_TLS_VERSIONS[name]}")
    else:
        problems.append(
            f"{SECTION}.{key}: unknown TLS version {json.dumps(name)}; expected TLS12 or TLS13"
        )
    return None


def _cipher_suites(
    section: Mapping[object, object], min_version: ssl.TLSVersion | None, problems: Problems
) -> tuple[str, ...]:
    names = read_string_list(section, "cipher_suites", SECTION, problems)
    for index, name in enumerate(names):
        if name not in CIPHER_SUITES:
            problems.append(
                f"{SECTION}.cipher_suites[{index}]: unknown cipher suite {json.dumps(name)} "
                "(the names of Go's tls.CipherSuites(), e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
            )
    only_tls13 = all(CIPHER_SUITES.get(name, "") is None for name in names)
    if names and only_tls13 and min_version != ssl.TLSVersion.TLSv1_3:
        problems.append(
            f"{SECTION}.cipher_suites: lists only TLS 1.3 suites, which cannot be chosen (as in "
            "Go); list TLS 1.2 suites too, or set min_version: TLS13"
        )
    return names


def _curves(section: Mapping[object, object], problems: Problems) -> tuple[str, ...]:
    names = read_string_list(section, "curve_preferences", SECTION, problems)
    for index, name in enumerate(names):
        if name not in CURVES:
            problems.append(
                f"{SECTION}.curve_preferences[{index}]: unknown curve {json.dumps(name)}; "
                f"expected one of {', '.join(CURVES)}"
            )
    if len(names) > MAX_CURVES:
        problems.append(
            f"{SECTION}.curve_preferences: Python's ssl module can limit the key exchange to one "
            "curve but cannot take a preference order; list a single curve"
        )
    return names


def _check_files(
    cert_file: Path | None,
    key_file: Path | None,
    client_ca_file: Path | None,
    client_ca_pem: str | None,
    problems: Problems,
) -> None:
    """Read every file that is named, so that all of their problems show at once."""
    certificates = (
        _read_certificates(cert_file, f"{SECTION}.cert_file", problems) if cert_file else []
    )
    key = _read_private_key(key_file, problems) if key_file else None
    if (
        certificates
        and key is not None
        and _spki(certificates[0].public_key()) != _spki(key.public_key())
    ):
        problems.append(f"{SECTION}.key_file: does not belong to the certificate in cert_file")
    if client_ca_file is not None:
        _read_certificates(client_ca_file, f"{SECTION}.client_ca_file", problems)
    if client_ca_pem is not None:
        _parse_certificates(client_ca_pem.encode(), f"{SECTION}.client_ca", "the text", problems)


def _read_bytes(path: Path, here: str, problems: Problems) -> bytes | None:
    shown = json.dumps(str(path))
    try:
        with path.open("rb") as file:
            data = file.read(MAX_PEM_BYTES + 1)
    except OSError as exc:
        problems.append(f"{here}: cannot read {shown}: {exc.strerror or type(exc).__name__}")
        return None
    if len(data) > MAX_PEM_BYTES:
        problems.append(f"{here}: {shown} is larger than {MAX_PEM_BYTES} bytes; not a PEM file")
        return None
    return data


def _read_certificates(path: Path, here: str, problems: Problems) -> list[x509.Certificate]:
    data = _read_bytes(path, here, problems)
    if data is None:
        return []
    return _parse_certificates(data, here, json.dumps(str(path)), problems)


def _parse_certificates(
    data: bytes, here: str, shown: str, problems: Problems
) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        problems.append(f"{here}: {shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        return []


def _read_private_key(path: Path, problems: Problems) -> PrivateKeyTypes | None:
    here = f"{SECTION}.key_file"
    data = _read_bytes(path, here, problems)
    if data is None:
        return None
    shown = json.dumps(str(path))
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:  # cryptography's way of saying "encrypted, and no password given"
        problems.append(
            f"{here}: {shown} is encrypted; the web config has no passphrase, so decrypt it "
            "(openssl pkey -in KEY -out KEY.plain)"
        )
    except (ValueError, UnsupportedAlgorithm):
        problems.append(f"{here}: {shown} holds no PEM private key that can be read")
    return None


def _spki(public_key: CertificatePublicKeyTypes | PublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
