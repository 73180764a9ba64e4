"""Small typed readers for the web config's YAML mappings; each problem becomes one line.

Values are shown in messages only where they cannot be secret; the readers themselves name the
kind of a wrong value (``got an int``), never the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

#: Lines of the eventual ``ConfigError``, each ``key.path: what is wrong``.
Problems = list[str]

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_LOOKS_LIKE_BCRYPT = re.compile(r"\$2[abxy]?\$")
_SHOWN_KEY_CHARACTERS = 60


def kind_of(value: object) -> str:
    if value is None:
        return "nothing (null)"
    kinds: tuple[tuple[type, str], ...] = (
        (bool, "a boolean"),
        (int, "an int"),
        (float, "a number"),
        (str, "a string"),
        (list, "a list"),
        (dict, "a mapping"),
    )
    for kind, description in kinds:
        if isinstance(value, kind):
            return description
    return f"a {type(value).__name__}"


def describe_key(key: object) -> str:
    """A key as a message shows it: quoted and cut short, and never a bcrypt hash."""
    if not isinstance(key, str):
        return kind_of(key)
    if _LOOKS_LIKE_BCRYPT.match(key):
        return "(a bcrypt hash, not shown)"
    if len(key) > _SHOWN_KEY_CHARACTERS:
        key = key[: _SHOWN_KEY_CHARACTERS - 3] + "..."
    return json.dumps(key, ensure_ascii=False)


def key_path(parent: str, key: str) -> str:
    """``parent.key``, or ``parent["odd key"]`` when the key is not a plain word."""
    if _PLAIN_KEY.fullmatch(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{describe_key(key)}]"


def check_keys(
    section: Mapping[object, object], known: Iterable[str], parent: str, problems: Problems
) -> None:
    known = tuple(known)
    for key in section:
        if key not in known:
            where = parent or "top level"
            problems.append(
                f"{where}: unknown key {describe_key(key)} (known keys: {', '.join(known)})"
            )


def read_string(
    section: Mapping[object, object], key: str, parent: str, problems: Problems
) -> str | None:
    """The string at ``key``; ``None`` when absent, null or wrong (then with a problem)."""
    value = section.get(key)
    if value is None or isinstance(value, str):
        return value
    problems.append(f"{key_path(parent, key)}: expected a string, got {kind_of(value)}")
    return None


def read_boolean(
    section: Mapping[object, object],
    key: str,
    parent: str,
    problems: Problems,
    *,
    default: bool,
) -> bool:
    value = section.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    problems.append(f"{key_path(parent, key)}: expected true or false, got {kind_of(value)}")
    return default


def read_string_list(
    section: Mapping[object, object], key: str, parent: str, problems: Problems
) -> tuple[str, ...]:
    value = section.get(key)
    if value is None:
        return ()
    here = key_path(parent, key)
    if not isinstance(value, list):
        problems.append(f"{here}: expected a list of strings, got {kind_of(value)}")
        return ()
    strings: list[str] = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            strings.append(item)
        else:
            problems.append(f"{here}[{index}]: expected a string, got {kind_of(item)}")
    return tuple(strings)
