"""Reading the config: TOML file and/or ``LOXONE_*`` variables -> ``Config`` or one ``ConfigError``.

The passes, each of which adds to one list of problems so that the user sees every mistake at once:
1. relative file paths in the file are made relative to the file's directory (as Prometheus does);
2. the environment is applied (``_env``);
3. the converter checks types, values, required and unknown keys (``_convert``);
4. rules across keys: at least one Miniserver, exactly one of ``password`` / ``password_file``,
   unique names, ``[shard] index < count``; checked on the raw tables, so they are found even
   when step 3 fails (``LOXONE_SHARD`` and ``index = "auto"`` are resolved in step 2);
5. password files are read;
6. ``[otlp]`` needs the optional packages of the ``otlp`` extra.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigError
from ._convert import Problem, structure_config
from ._env import apply_environment, locate
from ._model import Config, default_state_dir, quote, show_value
from ._shard import apply_shard_environment, check_shard_range, own_shard

#: A password file larger than this is a mistake (a wrong path, a device), not a password.
MAX_PASSWORD_FILE_BYTES = 64 * 1024

#: (module, the package that installs it) for the ``otlp`` extra.
OTLP_EXTRA_MODULES = (
    ("opentelemetry.proto.collector.metrics.v1", "opentelemetry-proto"),
    ("google.protobuf", "protobuf"),
)

#: Keys holding file paths, made absolute against the config file's directory.
_TOP_PATH_KEYS = ("state_dir",)
_WEB_PATH_KEYS = ("web_config_file",)
_MINISERVER_PATH_KEYS = ("password_file", "tls_ca_file")


#: Where the container image looks for a mounted config file (``run`` and ``check`` with no file).
CONTAINER_CONFIG_FILE = "/etc/loxone-trio-exporter/exporter.toml"


def default_config_file(environ: Mapping[str, str]) -> Path | None:
    """No file argument: ``$LOXONE_CONFIG_FILE``, else the container's mount point when a file
    is there, else none (the ``LOXONE_*`` variables alone define the Miniserver)."""
    configured = environ.get("LOXONE_CONFIG_FILE", "")
    if configured:
        return Path(configured)
    mounted = Path(CONTAINER_CONFIG_FILE)
    return mounted if mounted.is_file() else None


def describe_source(path: Path | None) -> str:
    """Where a config came from, for messages."""
    return "the LOXONE_* environment" if path is None else str(path)


def load_config(path: Path | None, environ: Mapping[str, str], *, whole: bool = False) -> Config:
    """Read ``path`` (``None``: the environment alone) and apply ``environ``'s ``LOXONE_*``.

    The config holds the Miniservers of this instance's ``[shard]`` (with one shard, the
    default: all), as ``run`` and each reload need it; ``whole`` keeps every one (``check``).
    Every Miniserver is checked either way, so all shards agree on whether a file is valid.
    Raises ``ConfigError`` whose message has one line per problem, each starting with the TOML
    path (or the variable) it is about. No message ever contains a password.
    """
    config = _load_whole(path, environ)
    return config if whole else own_shard(config)


def _load_whole(path: Path | None, environ: Mapping[str, str]) -> Config:
    if path is None:
        return config_from_dict({}, environ, from_file=False)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte offset {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        # The message ends with "(at line L, column C)".
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None
    return config_from_dict(document, environ, base_dir=path.absolute().parent)


def config_from_dict(
    document: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    base_dir: Path | None = None,
    from_file: bool = True,
) -> Config:
    """Build the config from parsed TOML; ``base_dir`` anchors relative file paths.

    ``from_file=False`` is the environment-only mode (``document`` is then empty).
    """
    try:
        raw = copy.deepcopy(document)
    except RecursionError:
        raise ConfigError("top level: nested too deeply") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"top level: expected table, got {show_value(raw)}")
    if base_dir is not None:
        _anchor_paths(raw, base_dir)
    applied = apply_environment(raw, environ, from_file=from_file)
    shard = apply_shard_environment(raw, environ)
    raw.setdefault("state_dir", default_state_dir(environ))
    problems = [*applied.problems, *shard.problems]
    structured = structure_config(raw)
    if isinstance(structured, list):
        problems += structured
    problems += check_shard_range(raw, shard)
    problems += _check_miniservers(raw, applied.defined_index, from_file=from_file)
    if "otlp" in raw:
        problems += _check_otlp_extra()
    passwords, password_problems = _read_password_files(raw)
    problems += password_problems
    if problems:
        origins = {**applied.origins, **shard.origins}
        raise ConfigError(_format(problems, origins, applied.suppressed))
    assert isinstance(structured, Config)  # no problems means it structured
    miniservers = tuple(
        attrs.evolve(miniserver, password=passwords[index]) if index in passwords else miniserver
        for index, miniserver in enumerate(structured.miniservers)
    )
    return attrs.evolve(structured, miniservers=miniservers)


def _anchor_paths(raw: dict[str, Any], base_dir: Path) -> None:
    def anchor(table: object, keys: tuple[str, ...]) -> None:
        if not isinstance(table, dict):
            return
        for key in keys:
            value = table.get(key)
            if isinstance(value, str) and value and not os.path.isabs(value):
                table[key] = os.path.join(base_dir, value)

    anchor(raw, _TOP_PATH_KEYS)
    anchor(raw.get("web"), _WEB_PATH_KEYS)
    miniservers = raw.get("miniserver")
    if isinstance(miniservers, list):
        for table in miniservers:
            anchor(table, _MINISERVER_PATH_KEYS)


def _check_miniservers(
    raw: dict[str, Any], defined_index: int | None, *, from_file: bool
) -> list[Problem]:
    miniservers = raw.get("miniserver")
    if miniservers is None or miniservers == []:
        hint = " (or set LOXONE_HOST, LOXONE_USERNAME and LOXONE_PASSWORD)" if from_file else ""
        return [("miniserver", f"at least one [[miniserver]] is required{hint}")]
    if not isinstance(miniservers, list):
        return []  # the converter reports the type
    problems: list[Problem] = []
    first_use: dict[str, int] = {}
    for index, table in enumerate(miniservers):
        if not isinstance(table, dict):
            continue
        path = f"miniserver[{index}]"
        if index != defined_index:  # the environment checked its own variables
            if "password" in table and "password_file" in table:
                problems.append((path, "give either password or password_file, not both"))
            elif "password" not in table and "password_file" not in table:
                problems.append((path, "password or password_file is required"))
        name = table.get("name")
        if isinstance(name, str) and name:
            if name in first_use:
                problems.append((f"{path}.name", f"{show_value(name)} is used twice"))
            else:
                first_use[name] = index
    return problems


def _check_otlp_extra() -> list[Problem]:
    """``[otlp]`` needs the optional packages; say which are missing and how to get them."""
    missing = [package for module, package in OTLP_EXTRA_MODULES if not _importable(module)]
    if not missing:
        return []
    return [
        (
            "otlp",
            f"the OTLP push needs the otlp extra ({', '.join(missing)} not installed): "
            "pip install 'loxone-trio-exporter[otlp]'",
        )
    ]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing or blocked
        return False


def _read_password_files(raw: dict[str, Any]) -> tuple[dict[int, str], list[Problem]]:
    """Read each ``password_file`` of a table without ``password``: index -> password."""
    passwords: dict[int, str] = {}
    problems: list[Problem] = []
    miniservers = raw.get("miniserver")
    if not isinstance(miniservers, list):
        return passwords, problems
    for index, table in enumerate(miniservers):
        if not isinstance(table, dict) or "password" in table:
            continue
        file_name = table.get("password_file")
        if not isinstance(file_name, str) or not file_name:
            continue  # the converter reports it
        try:
            passwords[index] = read_password_file(file_name)
        except ValueError as exc:
            problems.append((f"miniserver[{index}].password_file", str(exc)))
    return passwords, problems


def read_password_file(file_name: str) -> str:
    """The file's text without one trailing newline; ``ValueError`` says what is wrong."""
    shown = quote(file_name)  # in full: a path cut short would not help
    try:
        with open(file_name, "rb") as file:
            data = file.read(MAX_PASSWORD_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {shown}: {exc.strerror or type(exc).__name__}") from None
    except ValueError:  # e.g. a NUL character in the path
        raise ValueError(f"cannot read {shown}: not a valid path") from None
    if len(data) > MAX_PASSWORD_FILE_BYTES:
        raise ValueError(
            f"{shown} is larger than {MAX_PASSWORD_FILE_BYTES} bytes; "
            "expected a file holding only the password"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{shown} is not UTF-8 text") from None
    if text.endswith("\n"):  # one line ending, as ``echo secret > file`` writes it
        text = text[:-1].removesuffix("\r")
    if not text:
        raise ValueError(f"{shown} is empty")
    return text


def _format(problems: list[Problem], origins: Mapping[str, str], suppressed: frozenset[str]) -> str:
    lines: list[str] = []
    for path, problem in problems:
        if path in suppressed:
            continue
        line = f"{locate(path, origins) or 'top level'}: {problem}"
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)
