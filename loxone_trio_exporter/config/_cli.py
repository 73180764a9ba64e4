"""``loxone-trio-exporter check``: validate a config and print it as the exporter would use it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..sharding import assign, shard_of
from ._env import environment_warnings
from ._load import CONTAINER_CONFIG_FILE, default_config_file, describe_source, load_config
from ._model import Config
from ._permissions import permission_warnings
from ._render import render_config_toml

EXIT_OK = 0
EXIT_BAD_CONFIG = 2


def add_check_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate a config file and print the effective config",
        description=(
            "Validate the config (and the LOXONE_* environment variables), then print the "
            "effective config as TOML with passwords redacted. Exit 0 when it is valid, else "
            "print every error with its TOML path and exit 2. Without a file argument, check "
            "what 'run' would read: $LOXONE_CONFIG_FILE, else "
            f"{CONTAINER_CONFIG_FILE} when it exists, else the environment variables alone."
        ),
    )
    parser.add_argument(
        "config_file", nargs="?", type=Path, metavar="exporter.toml", help="the config file"
    )
    parser.add_argument(
        "--structure",
        type=Path,
        metavar="LoxAPP3.json",
        help=(
            "instead of the config, print how many series it would export from this structure "
            "file, per family and per control type (offline: no Miniserver is contacted)"
        ),
    )
    parser.add_argument(
        "--shards",
        action="store_true",
        help="instead of the config, print which Miniservers each shard runs ([shard] count)",
    )
    parser.add_argument(
        "--shard-count",
        type=int,
        metavar="COUNT",
        help="with --shards: for COUNT shards instead, and how many Miniservers would move",
    )


def run_check(args: argparse.Namespace) -> int:
    # Without a file, the config ``run`` would read: the same lookup.
    config_file: Path | None = args.config_file or default_config_file(os.environ)
    try:
        config = load_config(config_file, os.environ, whole=True)
    except ConfigError as exc:
        source = describe_source(config_file)
        print(f"loxone-trio-exporter check: {source} is not a valid config:", file=sys.stderr)
        print(exc, file=sys.stderr)
        return EXIT_BAD_CONFIG
    if not web_config_is_valid(config, "loxone-trio-exporter check"):
        return EXIT_BAD_CONFIG
    if args.structure is not None:
        if args.shards or args.shard_count is not None:
            print(
                "loxone-trio-exporter check: --structure and --shards are separate reports: "
                "give one of them",
                file=sys.stderr,
            )
            return EXIT_BAD_CONFIG
        # Imported here: only this report plans series.
        from ._structure_check import (  # noqa: PLC0415
            StructureFileError,
            describe_structure_series,
            read_layout,
        )

        try:
            layout = read_layout(args.structure)
        except StructureFileError as exc:
            print(f"loxone-trio-exporter check: {exc}", file=sys.stderr)
            return EXIT_BAD_CONFIG
        sys.stdout.write(describe_structure_series(config, layout, str(args.structure)))
    elif args.shards or args.shard_count is not None:
        count = config.shard.count if args.shard_count is None else args.shard_count
        if count < 1:
            print("loxone-trio-exporter check: --shard-count must be at least 1", file=sys.stderr)
            return EXIT_BAD_CONFIG
        sys.stdout.write(describe_shards(config, count))
    else:
        sys.stdout.write(render_config_toml(config))
    for warning in [*environment_warnings(os.environ), *permission_warnings(config_file, config)]:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def describe_shards(config: Config, count: int) -> str:
    """Which Miniservers each of ``count`` shards runs; with another count than the config's,
    also how many would move."""

    names = [miniserver.name for miniserver in config.miniservers]
    current = config.shard
    lines = [f"# {_miniservers(len(names))} in {count} shard(s)"]
    if count == current.count:
        lines[0] += f"; this instance is index {current.index}"
    else:
        moved = sum(shard_of(name, count) != shard_of(name, current.count) for name in names)
        lines[0] += f"; from the configured {current.count}, {_miniservers(moved)} would move"
    for index, shard in enumerate(assign(names, count)):
        lines.append(f"shard {index}: {_miniservers(len(shard))}")
        lines += [f"  {name}" for name in shard]
    return "\n".join(lines) + "\n"


def _miniservers(number: int) -> str:
    return f"{number} Miniserver" if number == 1 else f"{number} Miniservers"


def web_config_is_valid(config: Config, program: str) -> bool:
    """Check ``[web] web_config_file`` (if any); print every error on standard error if not."""
    if not config.web.web_config_file:
        return True
    from ..web import load_web_config  # noqa: PLC0415 - only with a web config

    try:
        load_web_config(config.web.web_config_file)
    except ConfigError as exc:
        print(f"{program}: web config {config.web.web_config_file} is not valid:", file=sys.stderr)
        print(exc, file=sys.stderr)
        return False
    return True
