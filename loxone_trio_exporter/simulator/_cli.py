"""``loxone-trio-exporter simulate``: serve simulated Miniservers from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from ..errors import StructureError
from ..protocol import UnsupportedFirmware
from ._accounts import User, parse_user_spec
from ._firmware import DEFAULT_FIRMWARE, Firmware
from ._server import SimulatorHandle, SimulatorOptions, serve_simulator

DEFAULT_USER = "demo:demo:SHA256"


def add_simulate_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run simulated Miniservers (no hardware needed)",
        description=(
            "Serve one or more simulated Loxone Miniservers that speak the real protocol: "
            "HTTP and WebSocket on one port, real key exchange, hashes and encryption."
        ),
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="where HTTP and WebSocket listen (default %(default)s; port 0 picks a free one, "
        "with --count K the next K - 1 ports too)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--structure", type=Path, metavar="LoxAPP3.json", help="serve this structure file"
    )
    source.add_argument(
        "--controls",
        type=int,
        default=60,
        metavar="N",
        help="generate a structure with N controls (default 60)",
    )
    parser.add_argument(
        "--user",
        action="append",
        metavar="NAME:PASSWORD[:SHA1|SHA256]",
        help=f"a user that may log in; repeatable (default {DEFAULT_USER})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=20.0,
        metavar="EVENTS_PER_SECOND",
        help="numeric state changes per second per Miniserver (default 20)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="makes structure and values deterministic (default %(default)s)",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=1,
        metavar="K",
        help="serve K independent Miniservers on consecutive ports (default %(default)s)",
    )
    parser.add_argument(
        "--tls", action="store_true", help="serve HTTPS/WSS, self-signed (default: plain)"
    )
    parser.add_argument(
        "--tls-cert-file",
        type=Path,
        metavar="PEM",
        help="with --tls: where to write the certificate, the key beside it (default: the "
        "temporary folder, as loxone-simulator-PID.pem; printed at start)",
    )
    parser.add_argument(
        "--tls-port",
        type=int,
        metavar="PORT",
        help="with --tls: plain HTTP/WS on --listen and HTTPS/WSS on this port, as a Gen 2 "
        "Miniserver serves 80 and 443 (0 picks a free port; default: TLS only, on --listen)",
    )
    parser.add_argument(
        "--firmware",
        default=DEFAULT_FIRMWARE,
        metavar="VERSION",
        help="the firmware to play (default %(default)s): 9.2 and older log in with "
        "getkey/authenticate and have no tokens, 9.3 to 10.1.12.4 have gettoken, later ones "
        "getjwt; commands a version lacks get the answer a real one gives",
    )
    parser.add_argument(
        "--omit-hash-alg",
        action="store_true",
        help="answer getkey2 without hashAlg, as firmware before 10.4 does, also on a newer "
        "--firmware (default: as the firmware does)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="close clients silent this long (default 300, as a Miniserver)",
    )


def options_from_args(args: argparse.Namespace) -> SimulatorOptions:
    """Turn parsed arguments into options; ``ValueError`` says what is wrong."""
    host, sep, port_text = str(args.listen).rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"--listen must be HOST:PORT, got {args.listen!r}")
    users: tuple[User, ...] = tuple(parse_user_spec(s) for s in (args.user or [DEFAULT_USER]))
    if len({user.name for user in users}) != len(users):
        raise ValueError("--user: each user name may be given once")
    if args.count < 1 or args.controls < 1 or args.rate < 0:
        raise ValueError("--count and --controls must be at least 1, --rate at least 0")
    if args.tls_port is not None and not (args.tls and 0 <= args.tls_port <= 65535):
        raise ValueError("--tls-port needs --tls and a port 0..65535")
    try:
        Firmware.of(args.firmware)
    except UnsupportedFirmware:
        raise ValueError(
            f"--firmware must be a version such as 10.0.9.3, got {args.firmware!r}"
        ) from None
    structure = None
    if args.structure is not None:
        structure = _read_structure(args.structure)
    return SimulatorOptions(
        host=host.strip("[]") or "127.0.0.1",
        port=int(port_text),
        structure=structure,
        controls=args.controls,
        users=users,
        rate=args.rate,
        seed=args.seed,
        count=args.count,
        tls=args.tls,
        tls_cert_file=args.tls_cert_file,
        tls_port=args.tls_port,
        firmware_version=args.firmware,
        omit_hash_alg=args.omit_hash_alg,
        idle_timeout_seconds=args.idle_timeout,
    )


def _read_structure(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"--structure: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ValueError(f"--structure: {path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f"--structure: {path} does not hold a JSON object")
    return document


def run_simulate(args: argparse.Namespace) -> int:
    try:
        options = options_from_args(args)
    except (ValueError, StructureError) as exc:
        print(f"loxone-trio-exporter simulate: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        trio.run(_simulate, options)
    except (OSError, BaseExceptionGroup) as exc:
        # Under trio's nurseries a failed listen arrives inside an exception group.
        failure = _first_os_error(exc)
        if failure is None:
            raise
        why = failure.strerror or str(failure)
        print(
            f"loxone-trio-exporter simulate: cannot listen on {args.listen}: {why}", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _first_os_error(exc: BaseException) -> OSError | None:
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first_os_error(inner)
            if found is not None:
                return found
    return None


async def _simulate(options: SimulatorOptions) -> None:
    async with trio.open_nursery() as nursery:
        handle: SimulatorHandle = await nursery.start(serve_simulator, options)
        print(describe(handle, options), flush=True)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def describe(handle: SimulatorHandle, options: SimulatorOptions) -> str:
    """What the user needs to connect: URLs, users (never passwords), certificate."""
    users = ", ".join(f"{user.name} ({user.hash_algorithm.value})" for user in options.users)
    lines = []
    for server in handle.servers:
        ws = server.url.replace("http", "ws", 1) + "/ws/rfc6455"
        lines.append(
            f"Simulated Miniserver {server.model.name!r} (serial {server.model.serial}): "
            f"{server.url}  WebSocket {ws}"
        )
        if server.tls_port is not None:
            lines.append(
                f"  also HTTPS https://{_host(options.host)}:{server.tls_port}  "
                f"WebSocket wss://{_host(options.host)}:{server.tls_port}/ws/rfc6455"
            )
    lines.append(f"Users: {users}. Control: GET /sim/values, GET /sim/stats, POST /sim/fault.")
    if handle.tls_cert_file is not None:
        lines.append(f"TLS certificate (pin it in clients): {handle.tls_cert_file}")
    return "\n".join(lines)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
