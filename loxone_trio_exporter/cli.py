"""The ``loxone-trio-exporter`` command line.

Exit codes (design 3.1): 0 clean stop, 2 bad arguments or config, 1 fatal runtime error.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__

EXIT_OK = 0
EXIT_USAGE = 2
#: The commands, in the order ``--help`` lists them.
COMMAND_ORDER = ("run", "check", "demo", "simulate")
COMMANDS = frozenset(COMMAND_ORDER)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of the command line; with ``command``, of that command alone.

    One command's parser is all its arguments need, and each command's options are defined
    beside its code: parsing ``run`` this way does not import the simulator (``simulate``).
    """
    parser = argparse.ArgumentParser(
        prog="loxone-trio-exporter",
        description="Prometheus exporter for Loxone Miniservers.",
        epilog=(
            "'loxone-trio-exporter exporter.toml' is short for 'run exporter.toml'. "
            "Try 'loxone-trio-exporter demo' to see it work without a Miniserver."
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"loxone-trio-exporter {__version__} (Python {platform.python_version()})",
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_ORDER:
        if command is None or name == command:
            _add_command_parser(name, subcommands)
    return parser


def _add_command_parser(command: str, subcommands: Any) -> None:
    # Imported here so that ``--version`` and ``--help`` do not load trio, and a command does
    # not load another's modules (``run`` not the simulator, ``check`` not the runtime).
    if command == "run":
        from .commands import add_run_parser  # noqa: PLC0415

        add_run_parser(subcommands)
    elif command == "check":
        from .config import add_check_parser  # noqa: PLC0415

        add_check_parser(subcommands)
    elif command == "demo":
        from .commands import add_demo_parser  # noqa: PLC0415

        add_demo_parser(subcommands)
    elif command == "simulate":
        from .simulator import add_simulate_parser  # noqa: PLC0415

        add_simulate_parser(subcommands)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m loxone_trio_exporter``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        build_parser().print_help()
        return EXIT_OK
    if not args[0].startswith("-") and args[0] not in COMMANDS:
        args.insert(0, "run")  # ``loxone-trio-exporter exporter.toml``
    parser = build_parser(args[0] if args[0] in COMMANDS else None)
    try:
        parsed = parser.parse_args(args)
    except SystemExit as exit_request:  # argparse exits on --help, --version and bad usage
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_USAGE
    runner = _command_runner(parsed.command)
    if runner is None:
        parser.print_help()
        return EXIT_OK
    return runner(parsed)


def _command_runner(command: str | None) -> Callable[[argparse.Namespace], int] | None:
    """The function that runs ``command``, imported only when it is used."""
    # Imported when used: ``run`` does not load the simulator, ``check`` not the runtime.
    if command == "run":
        from .commands import run_run  # noqa: PLC0415

        return run_run
    if command == "demo":
        from .commands import run_demo  # noqa: PLC0415

        return run_demo
    if command == "check":
        from .config import run_check  # noqa: PLC0415

        return run_check
    if command == "simulate":
        from .simulator import run_simulate  # noqa: PLC0415

        return run_simulate
    return None


if __name__ == "__main__":  # pragma: no cover - exercised through __main__.py
    sys.exit(main())
