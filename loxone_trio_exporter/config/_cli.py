"""``loxone-trio-exporter check``: validate a config and print it as the exporter would use it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError
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


def run_check(args: argparse.Namespace) -> int:
    # Without a file, the config ``run`` would read: the same lookup.
    config_file: Path | None = args.config_file or default_config_file(os.environ)
    try:
        config = load_config(config_file, os.environ)
    except ConfigError as exc:
        source = describe_source(config_file)
        print(f"loxone-trio-exporter check: {source} is not a valid config:", file=sys.stderr)
        print(exc, file=sys.stderr)
        return EXIT_BAD_CONFIG
    if not web_config_is_valid(config, "loxone-trio-exporter check"):
        return EXIT_BAD_CONFIG
    sys.stdout.write(render_config_toml(config))
    for warning in permission_warnings(config_file, config):
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


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
