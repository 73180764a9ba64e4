"""``[shard]``: ``LOXONE_SHARD`` and ``index = "auto"``, resolved on the raw TOML before it is
structured, and the rule across its two keys (``index < count``) checked after.

- ``LOXONE_SHARD=INDEX/COUNT`` (``"1/3"``; ``"auto/3"`` too) replaces the file's ``index`` and
  ``count``, so one config file can serve every instance.
- ``index = "auto"`` takes the number at the end of ``HOSTNAME``: a StatefulSet names its pods
  ``NAME-0``, ``NAME-1``, ... and Kubernetes sets ``HOSTNAME`` to the pod's name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from ..sharding import shard_of
from ._convert import Problem
from ._model import Config, show_value

SHARD_VARIABLE = "LOXONE_SHARD"
AUTO = "auto"
_SHARD_VALUE = re.compile(r"\s*(auto|[0-9]{1,9})\s*/\s*([0-9]{1,9})\s*")
_POD_ORDINAL = re.compile(r"-([0-9]{1,9})\Z")


@attrs.frozen
class ShardApplied:
    """What resolving ``[shard]`` did: the variable each key came from, the problems, and the
    ``HOSTNAME`` an ``"auto"`` index was read from (for the range message)."""

    origins: dict[str, str]
    problems: list[Problem]
    hostname: str | None = None


def apply_shard_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> ShardApplied:
    """Apply ``LOXONE_SHARD`` and resolve ``index = "auto"`` in ``raw``, in place."""
    origins: dict[str, str] = {}
    problems: list[Problem] = []
    given = environ.get(SHARD_VARIABLE, "")
    if given:
        match = _SHARD_VALUE.fullmatch(given)
        table = raw.setdefault("shard", {})
        if match is None:
            problems.append(
                (
                    SHARD_VARIABLE,
                    'expected INDEX/COUNT such as "0/3" (or "auto/3": the index from the '
                    f"StatefulSet pod name in HOSTNAME), got {show_value(given)}",
                )
            )
        elif isinstance(table, dict):  # else the converter reports the table's type
            index, count = match.groups()
            table["index"] = index if index == AUTO else int(index)
            table["count"] = int(count)
            origins["shard.index"] = origins["shard.count"] = SHARD_VARIABLE
    table = raw.get("shard")
    if not isinstance(table, dict) or not isinstance(table.get("index"), str):
        return ShardApplied(origins, problems)
    index = table.pop("index")  # resolved below, or reported here once (not by the converter)
    if index != AUTO:
        problems.append(("shard.index", f'expected an int or "auto", got {show_value(index)}'))
        return ShardApplied(origins, problems)
    hostname = environ.get("HOSTNAME", "")
    ordinal = _POD_ORDINAL.search(hostname)
    if ordinal is None:
        found = f"is {show_value(hostname)}" if hostname else "is not set"
        problems.append(
            (
                "shard.index",
                '"auto" takes the index from the number at the end of HOSTNAME, as a '
                f"StatefulSet names its pods (NAME-0, NAME-1, ...), but HOSTNAME {found}; "
                "give the index as a number, or set LOXONE_SHARD=INDEX/COUNT",
            )
        )
        return ShardApplied(origins, problems)
    table["index"] = int(ordinal.group(1))
    return ShardApplied(origins, problems, hostname=hostname)


def check_shard_range(raw: Mapping[str, Any], applied: ShardApplied) -> list[Problem]:
    """``index < count``; wrong types and values are the converter's to report."""
    table = raw.get("shard", {})
    if not isinstance(table, dict):
        return []
    count, index = table.get("count", 1), table.get("index", 0)
    if not (_is_int(count) and _is_int(index)) or count < 1 or index < 0 or index < count:
        return []
    if applied.hostname is not None:
        problem = (
            f"HOSTNAME {show_value(applied.hostname)} gives index {index}, but the count is "
            f"{count}: run as many StatefulSet replicas as [shard] count says (pods "
            f"NAME-0 to NAME-{count - 1})"
        )
    else:
        problem = f"expected an index below the count, {count} (the shards are 0 to {count - 1})"
    return [("shard.index", problem)]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def own_shard(config: Config) -> Config:
    """``config`` with only the Miniservers its ``[shard]`` gives to its own index."""
    count, index = config.shard.count, config.shard.index
    if count == 1:
        return config
    own = tuple(ms for ms in config.miniservers if shard_of(ms.name, count) == index)
    return attrs.evolve(config, miniservers=own)
