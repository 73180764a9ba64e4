"""The ``loxone-trio-exporter`` command line.

Exit codes (design 3.1): 0 clean stop, 2 bad arguments or config, 1 fatal runtime error.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

from . import __version__

EXIT_OK = 0
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loxone-trio-exporter",
        description="Prometheus exporter for Loxone Miniservers.",
        epilog=(
            "The run, check and demo commands arrive with the exporter release; simulate serves "
            "simulated Miniservers now."
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"loxone-trio-exporter {__version__} (Python {platform.python_version()})",
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Imported here so that ``--version`` and ``--help`` do not load trio and the simulator.
    from .simulator._cli import add_simulate_parser  # noqa: PLC0415

    add_simulate_parser(subcommands)
    from .config._cli import add_check_parser  # noqa: PLC0415

    add_check_parser(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m loxone_trio_exporter``."""
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        parser.print_help()
        return EXIT_OK
    try:
        parsed = parser.parse_args(args)
    except SystemExit as exit_request:  # argparse exits on --help, --version and bad usage
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_USAGE
    if parsed.command == "simulate":
        from .simulator._cli import run_simulate  # noqa: PLC0415

        return run_simulate(parsed)
    if parsed.command == "check":
        from .config._cli import run_check  # noqa: PLC0415

        return run_check(parsed)
    parser.print_help()
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover - exercised through __main__.py
    sys.exit(main())
