"""Plain or TLS, which port, and which name the certificate must carry (protocol doc §1.3).

``tls = "off"``: HTTP and WebSocket on ``port``. ``tls = "on"``: HTTPS and WSS on ``tls_port`` for
everything, the first probe included. ``tls = "auto"``: the probe goes to ``port`` in plain HTTP
(it carries no credential); when ``jdev/cfg/apiKey`` answers ``httpsStatus: 1`` the rest of the
session (public key, WebSocket, login) goes over TLS to ``tls_port``.

A Miniserver's certificate names its CloudDNS host, never its IP address; so when ``host`` is an IP
the name checked is ``{ip-with-dashes}.{serial}.dyndns.loxonecloud.com`` while the connection
still goes to the IP (SNI and verification use the name). ``tls_server_name`` overrides it.
"""

from __future__ import annotations

import ipaddress
import ssl

import attrs

from ..config import MiniserverConfig

#: ``httpsStatus`` values of ``jdev/cfg/apiKey`` (§1.2).
HTTPS_AVAILABLE = 1
HTTPS_CERTIFICATE_EXPIRED = 2
#: Firmware from which a Miniserver takes commands in clear over TLS (§4.4).
CLEAR_COMMANDS_OVER_TLS = (11, 2)


@attrs.frozen
class Transport:
    """Where and how to connect: ``ssl_context`` None means plain TCP."""

    host: str
    port: int
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, eq=False)
    server_name: str | None = None

    @property
    def secure(self) -> bool:
        return self.ssl_context is not None

    def describe(self) -> str:
        scheme = "wss" if self.secure else "ws"
        shown_host = f"[{self.host}]" if ":" in self.host else self.host
        name = (
            f" as {self.server_name}" if self.server_name and self.server_name != self.host else ""
        )
        return f"{scheme}://{shown_host}:{self.port}{name}"


def client_ssl_context(config: MiniserverConfig) -> ssl.SSLContext:
    """Verification as configured: the system's CAs, a pinned CA file, or none at all."""
    context = ssl.create_default_context(cafile=config.tls_ca_file or None)
    if not config.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def cloud_dns_name(host: str, serial: str) -> str:
    """``192-168-1-77.504f94a00001.dyndns.loxonecloud.com`` for an IP; ``host`` otherwise."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    compact_serial = serial.replace(":", "").lower()
    dashed = str(address).replace(".", "-").replace(":", "-")
    return f"{dashed}.{compact_serial}.dyndns.loxonecloud.com"


def probe_transport(config: MiniserverConfig, context: ssl.SSLContext | None) -> Transport:
    """Where the first ``jdev/cfg/apiKey`` goes (before the serial is known).

    With ``tls = "on"`` and an IP address, the CloudDNS name cannot be built before the serial is
    known, so this one unauthenticated request checks the certificate chain but not the name;
    everything after it, the login included, checks both.
    """
    if config.tls != "on" or context is None:
        return Transport(config.host, config.port)
    name = config.tls_server_name or None
    if name is None and cloud_dns_name(config.host, "") != config.host and context.check_hostname:
        unnamed = client_ssl_context(config)
        unnamed.check_hostname = False
        return Transport(config.host, config.tls_port, unnamed, None)
    return Transport(config.host, config.tls_port, context, name)


def session_transport(
    config: MiniserverConfig,
    context: ssl.SSLContext | None,
    *,
    https_status: int | None,
    serial: str,
) -> Transport:
    """Where the session goes, once ``apiKey`` told the serial and ``httpsStatus``."""
    use_tls = config.tls == "on" or (config.tls == "auto" and https_status == HTTPS_AVAILABLE)
    if not use_tls or context is None:
        return Transport(config.host, config.port)
    name = config.tls_server_name or cloud_dns_name(config.host, serial)
    return Transport(config.host, config.tls_port, context, name)


def commands_in_clear(transport: Transport, firmware: str) -> bool:
    """Over TLS, firmware 11.2 and later take commands without AES (no key exchange needed)."""
    return transport.secure and _version(firmware) >= CLEAR_COMMANDS_OVER_TLS


def _version(text: str) -> tuple[int, ...]:
    parts: list[int] = []
    for part in text.split("."):
        if not part.isdecimal():  # what int() reads (isdigit() also takes "²", which it does not)
            break
        parts.append(int(part))
    return tuple(parts)
