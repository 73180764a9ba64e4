"""The configuration model: frozen attrs classes, one per TOML table (design 3.2).

Each field that takes a constrained value names its check in the field's metadata; the converter
(``_convert``) runs those checks while structuring, so every bad value is reported with its TOML
path, and the attrs validators run the same checks when the classes are built in code.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]
TlsMode = Literal["auto", "on", "off"]
OtlpCompression = Literal["gzip", "none"]

#: Field metadata keys read by the converter.
CHECK = "loxone_check"  # a check on the whole (already typed) value
ITEM_CHECK = "loxone_item_check"  # a check on each item of a tuple field
REDACT = "loxone_redact"  # never show the value in a message
TOML_KEY = "loxone_toml_key"  # the TOML key when it differs from the attribute name

APP_DIR_NAME = "loxone-trio-exporter"
_BARE_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a name or an IPv4 address
_DIGITS = re.compile(r"[0-9]{1,5}")


class InvalidValue(ValueError):
    """A value of the right type that breaks a rule; the message never holds a secret."""


Check = Callable[[Any], None]


def show_value(value: object, *, secret: bool = False) -> str:
    """A short TOML-ish rendering of ``value`` for messages; secrets show their kind only."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and not secret:
        shown = value if len(value) <= 60 else value[:57] + "..."
        return quote(shown)
    if isinstance(value, int | float) and not secret:
        return str(value).lower()  # inf, nan as TOML writes them
    kinds = {str: "a string", int: "an int", float: "a number", list: "an array", dict: "a table"}
    for kind, description in kinds.items():
        if isinstance(value, kind):
            return description
    return f"a {type(value).__name__}"  # dates and times


def quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def check_not_empty(value: str | tuple[object, ...]) -> None:
    if not value:
        raise InvalidValue("must not be empty")


def check_listen_address(value: str) -> None:
    """``HOST:PORT`` with an IPv6 host in brackets; port 0 lets the system choose."""
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host_ok = _is_ipv6(host[1:-1])
    else:
        host_ok = bool(_BARE_HOST.fullmatch(host))
    port_ok = bool(_DIGITS.fullmatch(port)) and int(port) <= 65535
    if not sep or not host_ok or not port_ok:
        hint = ""
        if sep and not host:
            hint = " (the host is missing: use 0.0.0.0 or [::] for all interfaces)"
        elif sep and host_ok and port.isdigit():
            hint = " (the port must be 0..65535)"
        raise InvalidValue(f"expected HOST:PORT, got {show_value(value)}{hint}")


def check_port(value: int) -> None:
    if not 1 <= value <= 65535:
        raise InvalidValue(f"expected a port 1..65535, got {value}")


def check_host(value: str) -> None:
    """A host name or IP address alone: no scheme, port or path (IPv6 with or without brackets)."""
    bracketed = value.startswith("[") and value.endswith("]")
    if not (_BARE_HOST.fullmatch(value) or _is_ipv6(value[1:-1] if bracketed else value)):
        raise InvalidValue(
            f"expected a host name or IP address (no scheme, port or path), got {show_value(value)}"
        )


def check_telemetry_path(value: str) -> None:
    if not value.startswith("/") or value == "/" or any(c in value for c in "?# \t\r\n"):
        raise InvalidValue(
            f'expected a path that starts with "/" and is not "/", got {show_value(value)}'
        )


def check_not_negative(value: float) -> None:
    if not value >= 0:  # also refuses NaN
        raise InvalidValue(f"expected a number >= 0, got {show_value(value)}")


def check_shard_count(value: int) -> None:
    if value < 1:
        raise InvalidValue(f"expected a shard count >= 1, got {value}")


def check_shard_index(value: int) -> None:
    if value < 0:
        raise InvalidValue(f'expected a shard index >= 0 (or "auto"), got {value}')


def check_max_series(value: int) -> None:
    if value < 1:
        raise InvalidValue(f"expected a number of series >= 1, got {value}")


def split_state_glob(entry: str) -> tuple[str | None, str]:
    """``"glob"`` -> ``(None, glob)``; ``"ControlType:glob"`` -> ``(ControlType, glob)``.

    The first colon separates the type: control types have none, and state names neither.
    """
    control_type, sep, glob = entry.partition(":")
    return (control_type, glob) if sep else (None, entry)


def check_state_glob(value: str) -> None:
    """An ``exclude_states`` entry: ``"glob"`` or ``"ControlType:glob"``, neither part empty."""
    if not value.strip():
        raise InvalidValue('expected "glob" or "ControlType:glob", got an empty string')
    control_type, glob = split_state_glob(value)
    if control_type is not None and not control_type.strip():
        raise InvalidValue(
            f'the control type before ":" is empty in {show_value(value)} (write "glob" alone '
            "to match states of every control type)"
        )
    if not glob.strip():
        raise InvalidValue(f'the glob after ":" is empty in {show_value(value)}')


def check_positive(value: float) -> None:
    if not 0 < value < math.inf:  # also refuses NaN
        raise InvalidValue(f"expected a number > 0, got {show_value(value)}")


_OTLP_URL_EXAMPLE = '"http://otel-collector:4318/v1/metrics"'


def check_otlp_endpoint(value: str) -> None:
    """An ``http://`` or ``https://`` URL with a host; user and password are refused (they would
    be logged with the URL: a backend's credentials go in ``headers``)."""
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port out of range, a bracket left open
        parts, port_ok = None, False
    if parts is not None and (parts.username is not None or parts.password is not None):
        raise InvalidValue("credentials in the URL are not supported: put them in [otlp.headers]")
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        # A query may hold a backend's key: the URL is shown only without one.
        shown = show_value(value) if parts is None or not parts.query else "a URL"
        raise InvalidValue(f"expected an http(s) URL such as {_OTLP_URL_EXAMPLE}, got {shown}")
    if parts.fragment:
        raise InvalidValue("a URL fragment (#...) is not sent over HTTP: remove it")


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token (RFC 9110 5.6.2)
#: Headers the push writes itself.
_OWN_HEADERS = frozenset(
    {
        "host",
        "content-type",
        "content-length",
        "content-encoding",
        "connection",
        "transfer-encoding",
    }
)


def check_headers(value: Mapping[str, str]) -> None:
    """Header names are HTTP tokens; values are secret, so a message names the header only."""
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise InvalidValue(f"{quote(name)} is not a valid HTTP header name")
        if name.lower() in _OWN_HEADERS:
            raise InvalidValue(f"{quote(name)} is set by the exporter itself")
        if any(char in text for char in "\r\n\0"):
            raise InvalidValue(f"the value of {quote(name)} holds a line break or NUL")


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _validator(check: Check) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    def validate(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        try:
            check(value)
        except InvalidValue as exc:
            raise InvalidValue(f"{attribute.name}: {exc}") from None

    return validate


def _each(check: Check) -> Check:
    def check_items(values: tuple[Any, ...]) -> None:
        for value in values:
            check(value)

    return check_items


def _optional(check: Check) -> Check:
    def check_given(value: Any) -> None:
        if value is not None:
            check(value)

    return check_given


def _rules(
    *,
    check: Check | None = None,
    item_check: Check | None = None,
    secret: bool = False,
    toml_key: str | None = None,
    validate_in_code: bool = True,
) -> dict[str, Any]:
    """``attrs.field`` arguments: ``check`` runs on structuring and, if ``validate_in_code``, in
    ``__init__`` as well.

    ``validate_in_code=False`` is for fields whose check applies only to a value the user gave
    (the default of ``password`` is empty when ``password_file`` is used).
    """
    metadata: dict[str, Any] = {REDACT: secret}
    validators = []
    if check is not None:
        metadata[CHECK] = check
        if validate_in_code:
            validators.append(_validator(check))
    if item_check is not None:
        metadata[ITEM_CHECK] = item_check
        validators.append(_validator(_each(item_check)))
    if toml_key is not None:
        metadata[TOML_KEY] = toml_key
    return {"validator": validators, "metadata": metadata, "repr": not secret}


def default_state_dir(environ: Mapping[str, str]) -> str:
    """``$XDG_STATE_HOME/loxone-trio-exporter``, else ``~/.local/state/loxone-trio-exporter``.

    A relative ``XDG_STATE_HOME`` is ignored, as the XDG base directory specification demands.
    """
    state_home = environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state_home):
        home = environ.get("HOME") or str(Path.home())
        state_home = os.path.join(home, ".local", "state")
    return os.path.join(state_home, APP_DIR_NAME)


def _default_state_dir_from_process() -> str:
    return default_state_dir(os.environ)


@attrs.frozen(kw_only=True)
class WebConfig:
    """``[web]``: where ``/metrics`` and the other pages are served."""

    listen: tuple[str, ...] = attrs.field(
        default=("0.0.0.0:9504",), **_rules(check=check_not_empty, item_check=check_listen_address)
    )
    telemetry_path: str = attrs.field(default="/metrics", **_rules(check=check_telemetry_path))
    web_config_file: str = ""


@attrs.frozen(kw_only=True)
class LogConfig:
    """``[log]``."""

    level: LogLevel = "info"
    format: LogFormat = "text"


@attrs.frozen(kw_only=True)
class ExportConfig:
    """``[export]``: what becomes a series. ``exclude_names`` holds shell globs on control
    names, ``exclude_states`` globs on state names (``"glob"`` or ``"ControlType:glob"``);
    ``max_series`` caps the control series of each Miniserver (a ``[[miniserver]]`` may set
    its own); ``typed`` puts each value whose unit is known in the family of that unit
    (``_celsius``, ``_watts``)."""

    include_text: bool = False
    typed: bool = True
    stale_after_seconds: float = attrs.field(default=60.0, **_rules(check=check_not_negative))
    exclude_rooms: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()
    exclude_names: tuple[str, ...] = ()
    exclude_states: tuple[str, ...] = attrs.field(default=(), **_rules(item_check=check_state_glob))
    max_series: int = attrs.field(default=100_000, **_rules(check=check_max_series))


@attrs.frozen(kw_only=True)
class ShardConfig:
    """``[shard]``: this instance runs only the Miniservers that ``sharding.shard_of`` gives
    ``index`` out of ``count``. The loader resolves ``index = "auto"`` and ``LOXONE_SHARD``, and
    checks ``index < count``."""

    count: int = attrs.field(default=1, **_rules(check=check_shard_count))
    index: int = attrs.field(default=0, **_rules(check=check_shard_index))


@attrs.frozen(kw_only=True)
class MiniserverConfig:
    """One ``[[miniserver]]``.

    ``password`` always holds the secret once loaded: when the file gives ``password_file``, the
    loader reads that file into ``password`` and keeps the path in ``password_file`` (for
    ``check`` output and reloads). ``password`` is left out of ``repr``.
    """

    name: str = attrs.field(**_rules(check=check_not_empty))
    host: str = attrs.field(**_rules(check=check_host))
    port: int = attrs.field(default=80, **_rules(check=check_port))
    username: str = attrs.field(**_rules(check=check_not_empty))
    password: str = attrs.field(
        default="", **_rules(check=check_not_empty, secret=True, validate_in_code=False)
    )
    password_file: str = attrs.field(
        default="", **_rules(check=check_not_empty, validate_in_code=False)
    )
    tls: TlsMode = "auto"
    tls_verify: bool = True
    tls_ca_file: str = ""
    tls_server_name: str = ""
    tls_port: int = attrs.field(default=443, **_rules(check=check_port))
    kill_token_on_exit: bool = False
    #: ``[export] max_series`` for this Miniserver alone; ``None``: the ``[export]`` value.
    max_series: int | None = attrs.field(default=None, **_rules(check=_optional(check_max_series)))

    def series_limit(self, export: ExportConfig) -> int:
        """The ``max_series`` that applies to this Miniserver."""
        return export.max_series if self.max_series is None else self.max_series


def _instance_id_from_host() -> str:
    return socket.gethostname()


@attrs.frozen(kw_only=True)
class OtlpConfig:
    """``[otlp]``: push the series of ``/metrics`` to an OTLP/HTTP endpoint (the ``otlp`` extra).

    ``headers`` go with every push (a backend's credentials): they are secret, never logged,
    redacted in ``check`` output and left out of ``repr``. ``service_instance_id`` defaults to
    the host name.
    """

    endpoint: str = attrs.field(**_rules(check=check_otlp_endpoint))
    interval_seconds: float = attrs.field(default=60.0, **_rules(check=check_positive))
    timeout_seconds: float = attrs.field(default=10.0, **_rules(check=check_positive))
    compression: OtlpCompression = "gzip"
    headers: dict[str, str] = attrs.field(
        factory=dict, hash=False, **_rules(check=check_headers, secret=True)
    )
    service_name: str = attrs.field(default="loxone-trio-exporter", **_rules(check=check_not_empty))
    service_instance_id: str = attrs.field(
        default=attrs.Factory(_instance_id_from_host), **_rules(check=check_not_empty)
    )


@attrs.frozen(kw_only=True)
class Config:
    """The whole file. ``miniservers`` is the TOML array of tables ``[[miniserver]]``."""

    web: WebConfig = attrs.Factory(WebConfig)
    log: LogConfig = attrs.Factory(LogConfig)
    export: ExportConfig = attrs.Factory(ExportConfig)
    shard: ShardConfig = attrs.Factory(ShardConfig)
    #: ``None`` without an ``[otlp]`` table: no push.
    otlp: OtlpConfig | None = None
    miniservers: tuple[MiniserverConfig, ...] = attrs.field(
        default=(), **_rules(toml_key="miniserver")
    )
    state_dir: str = attrs.field(
        default=attrs.Factory(_default_state_dir_from_process), **_rules(check=check_not_empty)
    )
