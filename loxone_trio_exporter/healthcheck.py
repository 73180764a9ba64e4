"""``python -m loxone_trio_exporter.healthcheck [CONFIG]``: the container's HEALTHCHECK.

Asks the exporter's own ``/-/healthy`` and exits 0 on a 200, else 1, with one line saying what it
asked and what came back. It finds the exporter the way ``run`` configures it:

- the config file: the argument, else ``$LOXONE_CONFIG_FILE``, else
  ``/etc/loxone-trio-exporter/exporter.toml`` when it exists (no file: the defaults);
- the address: the first of ``$LOXONE_LISTEN`` or ``[web] listen`` (default ``0.0.0.0:9504``),
  with ``$LOXONE_LISTEN_PORT``'s port when that is set (as ``run`` reads it), an all-interfaces
  host asked on loopback;
- the scheme: HTTPS when ``[web] web_config_file`` has ``tls_server_config``. The certificate is not
  verified: the check talks to its own process over loopback, and the certificate names the host
  Prometheus uses. ``$LOXONE_HEALTHCHECK_CERT_FILE`` and ``$LOXONE_HEALTHCHECK_KEY_FILE`` give a
  client certificate when the web config demands one;
- basic auth, when the web config has ``basic_auth_users`` (it holds only bcrypt hashes):
  ``$LOXONE_HEALTHCHECK_USERNAME`` with ``$LOXONE_HEALTHCHECK_PASSWORD_FILE`` (or
  ``$LOXONE_HEALTHCHECK_PASSWORD``). The password is never printed.

The standard library and PyYAML (which the exporter needs anyway) only: it starts in a fraction of
a second, every 30 seconds, without loading the exporter.
"""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The same path as ``config.CONTAINER_CONFIG_FILE`` (a test keeps the two in step).
CONTAINER_CONFIG_FILE = "/etc/loxone-trio-exporter/exporter.toml"
DEFAULT_LISTEN = "0.0.0.0:9504"
TIMEOUT_SECONDS = 4.0
_ALL_INTERFACES = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "[::]": "::1"}  # noqa: S104


class CheckError(Exception):
    """The check cannot even ask: a message for the one output line."""


def config_file(argv: Sequence[str], environ: Mapping[str, str]) -> Path | None:
    if argv:
        return Path(argv[0])
    if environ.get("LOXONE_CONFIG_FILE", ""):
        return Path(environ["LOXONE_CONFIG_FILE"])
    mounted = Path(CONTAINER_CONFIG_FILE)
    return mounted if mounted.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CheckError(f"cannot read {path}: {error}") from None


def _read_web_config(path: Path) -> dict[str, Any]:
    import yaml  # noqa: PLC0415 - only needed with a web config

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise CheckError(f"cannot read web config {path}: {error}") from None
    return document if isinstance(document, dict) else {}


def target(listen: str) -> tuple[str, int]:
    """``(host, port)`` to connect to for a listen address ``HOST:PORT``."""
    host, _, port_text = listen.strip().rpartition(":")
    if not port_text.isdigit() or int(port_text) == 0:
        raise CheckError(f"listen address {listen!r} has no fixed port to ask")
    host = _ALL_INTERFACES.get(host, host)
    return host.removeprefix("[").removesuffix("]"), int(port_text)


def _password(environ: Mapping[str, str]) -> str:
    name = environ.get("LOXONE_HEALTHCHECK_PASSWORD_FILE", "")
    if not name:
        return environ.get("LOXONE_HEALTHCHECK_PASSWORD", "")
    try:
        return Path(name).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as error:
        raise CheckError(
            f"cannot read LOXONE_HEALTHCHECK_PASSWORD_FILE {name}: {error.strerror}"
        ) from None


class Request:
    """What to ask: where, how, with which header."""

    def __init__(self, argv: Sequence[str], environ: Mapping[str, str]) -> None:
        path = config_file(argv, environ)
        document = _read_toml(path) if path is not None else {}
        web = document.get("web", {})
        web = web if isinstance(web, dict) else {}
        listen = str(
            environ.get("LOXONE_LISTEN", "").split(",")[0]
            or ((web.get("listen") or [DEFAULT_LISTEN])[0])
        )
        port = environ.get("LOXONE_LISTEN_PORT", "").strip()
        if port and not environ.get("LOXONE_LISTEN", ""):
            listen = f"{listen.rpartition(':')[0]}:{port}"
        self.host, self.port = target(listen)
        self.context: ssl.SSLContext | None = None
        self.headers: dict[str, str] = {}
        web_config_file = str(web.get("web_config_file", ""))
        if not web_config_file:
            return
        web_config_path = Path(web_config_file)
        if path is not None and not web_config_path.is_absolute():
            web_config_path = path.parent / web_config_path
        web_config = _read_web_config(web_config_path)
        if web_config.get("tls_server_config"):
            self.context = self._tls_context(environ)
        if web_config.get("basic_auth_users"):
            user = environ.get("LOXONE_HEALTHCHECK_USERNAME", "")
            password = _password(environ)
            if not user or not password:
                raise CheckError(
                    f"the web config {web_config_path} asks for basic auth: set "
                    "LOXONE_HEALTHCHECK_USERNAME and LOXONE_HEALTHCHECK_PASSWORD_FILE"
                )
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self.headers["Authorization"] = f"Basic {token}"

    @staticmethod
    def _tls_context(environ: Mapping[str, str]) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # its own process on loopback: see the docstring
        cert_file = environ.get("LOXONE_HEALTHCHECK_CERT_FILE", "")
        if cert_file:
            key_file = environ.get("LOXONE_HEALTHCHECK_KEY_FILE", "") or None
            try:
                context.load_cert_chain(cert_file, key_file)
            except (OSError, ssl.SSLError) as error:
                raise CheckError(f"cannot load the client certificate: {error}") from None
        return context

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.context is not None else "http"
        return f"{scheme}://{host}:{self.port}/-/healthy"

    def ask(self) -> int:
        """The status of ``GET /-/healthy``."""
        connection: http.client.HTTPConnection
        if self.context is not None:
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=TIMEOUT_SECONDS, context=self.context
            )
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_SECONDS)
        try:
            connection.request("GET", "/-/healthy", headers=self.headers)
            return connection.getresponse().status
        finally:
            connection.close()


def check(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[bool, str]:
    """``(healthy, the line to print)``."""
    try:
        request = Request(argv, environ)
    except CheckError as error:
        return False, f"unhealthy: {error}"
    try:
        status = request.ask()
    except (OSError, http.client.HTTPException) as error:
        return False, f"unhealthy: {request.url}: {type(error).__name__}: {error}"
    if status != 200:
        hint = " (wrong LOXONE_HEALTHCHECK_USERNAME or password?)" if status == 401 else ""
        return False, f"unhealthy: {request.url} answered {status}{hint}"
    return True, f"healthy: {request.url} answered 200"


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    healthy, line = check(
        sys.argv[1:] if argv is None else argv, os.environ if environ is None else environ
    )
    print(line, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
