"""``LOXONE_*`` environment variables (design 3.2), applied to the parsed TOML before structuring.

Rules:
- An empty variable counts as unset (compose files often pass ``VAR=`` for "not given").
- ``LOXONE_LISTEN`` (comma-separated), ``LOXONE_LOG_LEVEL`` and ``LOXONE_LOG_FORMAT`` replace the
  file's ``web.listen``, ``log.level`` and ``log.format``. ``LOXONE_LISTEN_PORT`` keeps the
  listen addresses (the file's, or the default ``0.0.0.0:9504``) and puts this port on each; with
  ``LOXONE_LISTEN`` it is an error (one of the two says it).
- A ``LOXONE_*`` variable that none of these is (a typo, say) gets a warning that names the
  nearest known one (``environment_warnings``).
- ``LOXONE_OTLP_<KEY>`` replaces ``otlp.<key>`` (and so turns the push on, with
  ``LOXONE_OTLP_ENDPOINT``); ``LOXONE_OTLP_HEADERS`` is ``name=value,name=value`` with
  percent-encoded values, as OpenTelemetry's ``OTEL_EXPORTER_OTLP_HEADERS``.
- The Miniserver variables (``LOXONE_NAME``, ``LOXONE_HOST``, ``LOXONE_PORT``, ``LOXONE_USERNAME``,
  ``LOXONE_PASSWORD``, ``LOXONE_PASSWORD_FILE``) define the single Miniserver when there is no file
  or the file has no ``[[miniserver]]`` (``LOXONE_NAME`` then defaults to the host); they override
  the keys of the file's Miniserver when it has exactly one (``LOXONE_PASSWORD`` replaces a
  ``password_file`` and the other way round); with several Miniservers they are an error, since
  it would be a guess which one they mean.

Every value that came from a variable is recorded by TOML path, so that a problem found later in
that value is reported under the variable's name (``LOXONE_PORT: expected a port 1..65535``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

import attrs

from ._convert import MISSING, Problem
from ._model import show_value

MINISERVER_VARIABLES = {
    "LOXONE_NAME": "name",
    "LOXONE_HOST": "host",
    "LOXONE_PORT": "port",
    "LOXONE_USERNAME": "username",
    "LOXONE_PASSWORD": "password",
    "LOXONE_PASSWORD_FILE": "password_file",
}
#: Variables that replace one key of a table: variable -> (table, key).
TABLE_VARIABLES = {
    "LOXONE_LISTEN": ("web", "listen"),
    "LOXONE_LOG_LEVEL": ("log", "level"),
    "LOXONE_LOG_FORMAT": ("log", "format"),
    "LOXONE_OTLP_ENDPOINT": ("otlp", "endpoint"),
    "LOXONE_OTLP_INTERVAL_SECONDS": ("otlp", "interval_seconds"),
    "LOXONE_OTLP_TIMEOUT_SECONDS": ("otlp", "timeout_seconds"),
    "LOXONE_OTLP_COMPRESSION": ("otlp", "compression"),
    "LOXONE_OTLP_HEADERS": ("otlp", "headers"),
    "LOXONE_OTLP_SERVICE_NAME": ("otlp", "service_name"),
    "LOXONE_OTLP_SERVICE_INSTANCE_ID": ("otlp", "service_instance_id"),
}
_INT = re.compile(r"[+-]?[0-9]{1,18}")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _comma_list(text: str) -> list[str]:
    return [entry.strip() for entry in text.split(",")]


def _number(text: str) -> float:
    if not _NUMBER.fullmatch(text.strip()):
        raise ValueError(f"expected number, got {show_value(text)}")
    return float(text)


def _header_pairs(text: str) -> dict[str, str]:
    """``name=value,name=value`` as ``OTEL_EXPORTER_OTLP_HEADERS`` writes them (values
    percent-encoded). The values are secret: a message never shows them."""
    headers: dict[str, str] = {}
    for entry in text.split(","):
        name, sep, value = entry.partition("=")
        if not sep or not name.strip():
            raise ValueError("expected NAME=VALUE pairs separated by commas")
        headers[name.strip()] = unquote(value.strip())
    return headers


#: How a variable's text becomes the TOML value (the others are strings as they are).
_PARSERS: dict[str, Callable[[str], object]] = {
    "LOXONE_LISTEN": _comma_list,
    "LOXONE_OTLP_INTERVAL_SECONDS": _number,
    "LOXONE_OTLP_TIMEOUT_SECONDS": _number,
    "LOXONE_OTLP_HEADERS": _header_pairs,
}


#: Variables read elsewhere: the container's build facts, where the config file is, the shard,
#: the container's health check.
OTHER_VARIABLES = (
    "LOXONE_CONFIG_FILE",
    "LOXONE_SHARD",
    "LOXONE_BUILD_VERSION",
    "LOXONE_BUILD_REVISION",
    "LOXONE_BUILD_DATE",
    "LOXONE_HEALTHCHECK_USERNAME",
    "LOXONE_HEALTHCHECK_PASSWORD",
    "LOXONE_HEALTHCHECK_PASSWORD_FILE",
    "LOXONE_HEALTHCHECK_CERT_FILE",
    "LOXONE_HEALTHCHECK_KEY_FILE",
)
LISTEN_PORT_VARIABLE = "LOXONE_LISTEN_PORT"
#: The test suite's own switches (LOXONE_TEST_STRICT, ...): not the exporter's to judge.
_TEST_PREFIX = "LOXONE_TEST_"
DEFAULT_LISTEN = "0.0.0.0:9504"


def known_variables() -> tuple[str, ...]:
    return (*MINISERVER_VARIABLES, *TABLE_VARIABLES, LISTEN_PORT_VARIABLE, *OTHER_VARIABLES)


def environment_warnings(environ: Mapping[str, str]) -> list[str]:
    """A warning for each ``LOXONE_*`` variable the exporter does not know, with the nearest
    known name: a misspelt variable would otherwise be ignored in silence."""
    known = known_variables()
    warnings = []
    for name in sorted(environ):
        if not name.startswith("LOXONE_") or name in known or name.startswith(_TEST_PREFIX):
            continue
        # Compared without the common prefix, which would make every name look alike.
        suffixes = {known_name.removeprefix("LOXONE_"): known_name for known_name in known}
        nearest = difflib.get_close_matches(name.removeprefix("LOXONE_"), suffixes, n=1, cutoff=0.6)
        hint = f"; did you mean {suffixes[nearest[0]]}?" if nearest else ""
        warnings.append(f"the environment variable {name} is not one the exporter reads{hint}")
    return warnings


def _listen_port(
    raw: dict[str, Any], text: str, origins: dict[str, str], problems: list[Problem]
) -> None:
    if not _INT.fullmatch(text.strip()) or not 1 <= int(text) <= 65535:
        problems.append((LISTEN_PORT_VARIABLE, f"expected a port 1..65535, got {show_value(text)}"))
        return
    web = raw.setdefault("web", {})
    if not isinstance(web, dict):
        return  # the structuring pass reports the table's type
    listen = web.get("listen", [DEFAULT_LISTEN])
    if not isinstance(listen, list) or not all(isinstance(a, str) for a in listen):
        return  # reported for web.listen itself
    web["listen"] = [f"{address.rpartition(':')[0]}:{int(text)}" for address in listen]
    origins["web.listen"] = LISTEN_PORT_VARIABLE


@attrs.frozen
class Applied:
    """What the environment did to the raw configuration."""

    #: TOML path -> the variable its value came from (or would have, when required and missing).
    origins: dict[str, str]
    problems: list[Problem]
    #: Index of a Miniserver defined by the environment alone; its password rule was checked here.
    defined_index: int | None = None
    #: Paths whose problems another message already covers.
    suppressed: frozenset[str] = frozenset()


def apply_environment(
    raw: dict[str, Any], environ: Mapping[str, str], *, from_file: bool
) -> Applied:
    """Apply the variables to ``raw`` in place (a private copy of the parsed file)."""
    given = {
        name: environ[name]
        for name in (*MINISERVER_VARIABLES, *TABLE_VARIABLES)
        if environ.get(name, "")
    }
    origins: dict[str, str] = {}
    problems: list[Problem] = []
    listen_port = environ.get(LISTEN_PORT_VARIABLE, "")
    if listen_port and "LOXONE_LISTEN" in given:
        problems.append(
            (
                f"LOXONE_LISTEN, {LISTEN_PORT_VARIABLE}",
                "give only one of the two (LOXONE_LISTEN may name the port itself)",
            )
        )
    elif listen_port:
        _listen_port(raw, listen_port, origins, problems)
    for variable, (table_key, key) in TABLE_VARIABLES.items():
        if variable not in given:
            continue
        value: object = given[variable]
        if (parse := _PARSERS.get(variable)) is not None:
            try:
                value = parse(given[variable])
            except ValueError as exc:
                problems.append((variable, str(exc)))
                continue
        table = raw.setdefault(table_key, {})
        if isinstance(table, dict):  # else the structuring pass reports the table's type
            table[key] = value
            origins[f"{table_key}.{key}"] = variable
    miniserver = _miniserver_values(given, problems)
    miniserver_variables = [variable for variable in MINISERVER_VARIABLES if variable in given]
    existing = raw.get("miniserver")
    if existing is None or existing == []:
        if miniserver_variables or not from_file:
            return _define_miniserver(raw, miniserver, origins, problems)
    elif isinstance(existing, list) and miniserver_variables:
        if len(existing) == 1 and isinstance(existing[0], dict):
            _override_miniserver(existing[0], miniserver, origins)
        elif len(existing) > 1:
            problems.append(
                (
                    ", ".join(miniserver_variables),
                    "these variables apply only when the config file has exactly one "
                    f"[[miniserver]] (it has {len(existing)})",
                )
            )
    return Applied(origins, problems)


def _miniserver_values(given: Mapping[str, str], problems: list[Problem]) -> dict[str, object]:
    values: dict[str, object] = {}
    for variable, key in MINISERVER_VARIABLES.items():
        if variable not in given:
            continue
        text = given[variable]
        if key == "port":
            if not _INT.fullmatch(text.strip()):
                problems.append((variable, f"expected int, got {show_value(text)}"))
                continue
            values[key] = int(text)
        else:
            values[key] = text
    if "password" in values and "password_file" in values:
        problems.append(("LOXONE_PASSWORD, LOXONE_PASSWORD_FILE", "give only one of the two"))
        del values["password_file"]
    return values


def _define_miniserver(
    raw: dict[str, Any],
    values: dict[str, object],
    origins: dict[str, str],
    problems: list[Problem],
) -> Applied:
    for variable, key in MINISERVER_VARIABLES.items():
        origins[f"miniserver[0].{key}"] = variable  # also for the missing ones: "LOXONE_HOST: ..."
    suppressed: set[str] = set()
    if "name" not in values:
        if "host" in values:
            values["name"] = values["host"]
            origins["miniserver[0].name"] = "LOXONE_HOST"
        else:
            suppressed.add("miniserver[0].name")  # "LOXONE_HOST: required" says it all
    if "password" not in values and "password_file" not in values:
        problems.append(("LOXONE_PASSWORD or LOXONE_PASSWORD_FILE", MISSING))
    raw["miniserver"] = [values]
    return Applied(origins, problems, defined_index=0, suppressed=frozenset(suppressed))


def _override_miniserver(
    table: dict[str, Any], values: Mapping[str, object], origins: dict[str, str]
) -> None:
    by_key = {key: variable for variable, key in MINISERVER_VARIABLES.items()}
    for key, value in values.items():
        table[key] = value
        origins[f"miniserver[0].{key}"] = by_key[key]
    # One source of the password: the variable replaces whichever the file gave.
    if "password" in values:
        table.pop("password_file", None)
    if "password_file" in values:
        table.pop("password", None)


def locate(path: str, origins: Mapping[str, str]) -> str:
    """The variable a problem at ``path`` belongs to, or ``path`` itself."""
    for origin, variable in origins.items():
        if path == origin or path.startswith((f"{origin}[", f"{origin}.")):
            return variable
    return path
