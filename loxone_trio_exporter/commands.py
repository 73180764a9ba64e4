"""``loxone-trio-exporter run`` and ``demo``: load the config, set up logging and signals, run.

Exit codes (design 3.1): 0 after SIGTERM/SIGINT, 2 for a bad config, 1 when the exporter cannot
run at all (the listen address is taken, say), always with a message that says what to do.
SIGHUP reloads the config of ``run`` (the same file, the environment as it was at start) and
never stops the process.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

from .config import (
    CONTAINER_CONFIG_FILE,
    Config,
    ExportConfig,
    LogConfig,
    MiniserverConfig,
    WebConfig,
    default_config_file,
    describe_source,
    environment_warnings,
    load_config,
    permission_warnings,
    web_config_is_valid,
)
from .errors import ConfigError
from .logs import EXPORTER_LOGGER, configure_logging

if TYPE_CHECKING:
    from .runtime import ConfigSource
    from .supervisor import ExporterHandle

log = logging.getLogger(EXPORTER_LOGGER)

_E = TypeVar("_E", bound=BaseException)

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_BAD_CONFIG = 2
DEMO_LISTEN = "127.0.0.1:9504"
DEMO_USER = ("demo", "demo")  # the simulator's default account: no secret


def add_run_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the exporter (the default: 'loxone-trio-exporter exporter.toml')",
        description=(
            "Run the exporter. Without a file argument it reads $LOXONE_CONFIG_FILE, else "
            f"{CONTAINER_CONFIG_FILE} when it exists, else one Miniserver is configured from "
            "LOXONE_HOST, LOXONE_USERNAME, LOXONE_PASSWORD (or LOXONE_PASSWORD_FILE) and the other "
            "LOXONE_* variables; with a file, those variables override it."
        ),
    )
    parser.add_argument(
        "config_file", nargs="?", type=Path, metavar="exporter.toml", help="the config file"
    )


def add_demo_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a simulated Miniserver and the exporter together: no hardware needed",
        description=(
            "Start the built-in Miniserver simulator and the exporter in one process and print "
            "where to look. Stop with Ctrl+C."
        ),
    )
    parser.add_argument(
        "--listen",
        default=DEMO_LISTEN,
        metavar="HOST:PORT",
        help=f"where the exporter serves /metrics (default {DEMO_LISTEN}; port 0 picks one)",
    )
    parser.add_argument(
        "--controls",
        type=int,
        default=120,
        metavar="N",
        help="controls of the simulated Miniserver (default %(default)s)",
    )
    parser.add_argument(
        "--rate", type=float, default=20.0, help="state changes per second (default 20)"
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning"],
        help="the least important log lines shown (default %(default)s)",
    )
    parser.add_argument(
        "--firmware",
        metavar="VERSION",
        help="the firmware the simulated Miniserver plays (default: a current one); 9.2 and "
        "older log in by password hash, 9.3 to 10.1 with gettoken",
    )


def run_run(args: argparse.Namespace) -> int:
    from .runtime import ConfigSource  # noqa: PLC0415 - the parser alone needs none of it

    environ = dict(os.environ)  # what reloads read again
    config_file: Path | None = args.config_file or default_config_file(environ)
    try:
        config = load_config(config_file, environ)
    except ConfigError as exc:
        source = describe_source(config_file)
        print(f"loxone-trio-exporter: {source} is not a valid config:", file=sys.stderr)
        print(exc, file=sys.stderr)
        if config_file is None:
            print(
                "Give a config file (loxone-trio-exporter exporter.toml) or set LOXONE_HOST, "
                "LOXONE_USERNAME and LOXONE_PASSWORD.",
                file=sys.stderr,
            )
        return EXIT_BAD_CONFIG
    if not web_config_is_valid(config, "loxone-trio-exporter"):
        return EXIT_BAD_CONFIG
    setup_logging(config.log, [miniserver.password for miniserver in config.miniservers])
    for warning in [*environment_warnings(environ), *permission_warnings(config_file, config)]:
        log.warning("%s", warning)
    if config.shard.count > 1:
        names = ", ".join(miniserver.name for miniserver in config.miniservers) or "none"
        log.info(
            "shard %d of %d: this instance runs %d Miniserver(s): %s",
            config.shard.index,
            config.shard.count,
            len(config.miniservers),
            names,
        )
    # Absolute: a reload reads the same file, whatever the working directory is then.
    reload_from = ConfigSource(None if config_file is None else config_file.absolute(), environ)
    return _run_until_signal(partial(_serve, config, source=reload_from), config.web.listen)


def setup_logging(log_config: LogConfig, secrets: Sequence[str]) -> None:
    """``[log]`` at start and after each reload, masking every configured password."""
    configure_logging(log_config.level, log_config.format, secrets=secrets)


def run_demo(args: argparse.Namespace) -> int:
    if args.controls < 1:
        print("loxone-trio-exporter demo: --controls must be at least 1", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if not args.rate >= 0:
        print("loxone-trio-exporter demo: --rate must be >= 0", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if args.firmware is not None:
        from .protocol import UnsupportedFirmware, login_era  # noqa: PLC0415 - as below

        try:
            login_era(args.firmware)
        except UnsupportedFirmware as exc:
            print(f"loxone-trio-exporter demo: --firmware: {exc}", file=sys.stderr)
            return EXIT_BAD_CONFIG
    configure_logging(args.log_level, "text")
    return _run_until_signal(partial(_demo, args), (args.listen,))


def _run_until_signal(main: Any, listen: tuple[str, ...]) -> int:
    try:
        trio.run(main)
    except BaseException as exc:
        if _leaves(exc, KeyboardInterrupt):  # a second Ctrl+C while stopping
            return EXIT_OK
        os_errors = _leaves(exc, OSError)
        if not os_errors:
            raise
        error = os_errors[0]
        hint = ""
        if error.errno == errno.EADDRINUSE:
            hint = " (another program uses it: choose another [web] listen port)"
        print(
            f"loxone-trio-exporter: cannot listen on {', '.join(listen)}: "
            f"{error.strerror or error}{hint}",
            file=sys.stderr,
        )
        return EXIT_FATAL
    return EXIT_OK


def _leaves(exc: BaseException, kind: type[_E]) -> list[_E]:
    """The exceptions of type ``kind`` in ``exc``, looking inside (nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner, kind)]
    return [exc] if isinstance(exc, kind) else []


async def _serve(
    config: Config, *, source: ConfigSource | None = None, on_started: Any = None
) -> None:
    from .runtime import (  # noqa: PLC0415
        freeze_startup_objects,
        limit_malloc_arenas,
        return_large_blocks_at_once,
    )
    from .supervisor import run_exporter  # noqa: PLC0415 - the parser alone needs none of it

    # Process-wide, so set by the command that owns the process: a 15 MiB message from a
    # Miniserver gives its memory back when it is freed (issue 13: RSS after a flood).
    return_large_blocks_at_once()
    limit_malloc_arenas()  # before the first worker thread allocates (see runtime._memory)
    shutdown = trio.Event()
    signals = SignalHandler(shutdown)
    async with trio.open_nursery() as nursery:
        # Started first: from here on SIGHUP no longer ends the process (its default action).
        await nursery.start(signals.run)
        handle: ExporterHandle = await nursery.start(
            partial(run_exporter, config, shutdown, source=source, setup_logging=setup_logging)
        )
        signals.reload = handle.reload
        # Every module ``run`` needs is imported now: keep them out of later full collections.
        freeze_startup_objects()
        if on_started is not None:
            on_started(handle)
        await shutdown.wait()
        # run_exporter returns within its stop bound; then the signal task is all that is left.
    log.info("stopped")


@attrs.define
class SignalHandler:
    """SIGTERM and SIGINT set ``shutdown``; SIGHUP calls ``reload`` (once there is one)."""

    shutdown: trio.Event
    reload: Callable[[], Awaitable[object]] | None = None

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            # Reloads run beside this loop, so a slow one never delays a stop.
            async with trio.open_nursery() as reloads:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if signum != signal.SIGHUP:
                        log.info("%s received; stopping", name)
                        self.shutdown.set()
                        reloads.cancel_scope.cancel()
                        return
                    if self.reload is None:
                        log.info("%s received; there is no config to reload", name)
                    else:
                        log.info("%s received; reloading the config", name)
                        reloads.start_soon(self.reload)


async def _demo(args: argparse.Namespace) -> None:
    # Imported here: the simulator is only loaded by the demo.
    from .simulator import SimulatorOptions, serve_simulator  # noqa: PLC0415

    started = trio.current_time()
    with tempfile.TemporaryDirectory(prefix="loxone-trio-exporter-demo-") as state_dir:
        async with trio.open_nursery() as nursery:
            simulator = await nursery.start(
                serve_simulator,
                SimulatorOptions(
                    port=0,
                    controls=args.controls,
                    rate=args.rate,
                    **({"firmware_version": args.firmware} if args.firmware else {}),
                ),
            )
            port = simulator.ports[0]
            config = Config(
                web=WebConfig(listen=(args.listen,)),
                log=LogConfig(level=args.log_level),
                export=ExportConfig(include_text=True),
                miniservers=(
                    MiniserverConfig(
                        name="demo",
                        host="127.0.0.1",
                        port=port,
                        username=DEMO_USER[0],
                        password=DEMO_USER[1],
                        tls="off",
                    ),
                ),
                state_dir=state_dir,
            )
            await _serve(config, on_started=partial(_print_demo_help, port, started))
            nursery.cancel_scope.cancel()


def _print_demo_help(simulator_port: int, started: float, handle: ExporterHandle) -> None:
    url = handle.urls[0].rstrip("/")
    print(
        f"\nloxone-trio-exporter demo: a simulated Miniserver on http://127.0.0.1:{simulator_port}"
        f" and the exporter on {url} (ready in {trio.current_time() - started:.1f} s)\n"
        f"  Metrics:      {url}/metrics\n"
        f"  Status page:  {url}/\n"
        f"  Try:          curl -s {url}/metrics | grep loxone_control_value | head\n"
        "Press Ctrl+C to stop.\n",
        flush=True,
    )


__all__ = ["add_demo_parser", "add_run_parser", "run_demo", "run_run"]
