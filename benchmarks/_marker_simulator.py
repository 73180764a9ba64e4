"""A simulator that also changes a state on request: the freshness scenario's event source.

``python -m benchmarks._marker_simulator --controls N --rate R`` serves one simulated Miniserver
exactly as ``loxone-trio-exporter simulate`` does (random walk at ``--rate`` events/s) and prints
the same banner. Each line ``VALUE`` on stdin sets a randomly chosen numeric state to ``VALUE``,
sends that change to every streaming client at once, and answers with the ``time.monotonic()`` of
the moment it was handed to them (CLOCK_MONOTONIC: the same clock in every process).
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import trio

from loxone_trio_exporter.simulator import SimulatorHandle, SimulatorOptions, serve_simulator
from loxone_trio_exporter.simulator._cli import describe


async def _serve(options: SimulatorOptions) -> None:
    rng = random.Random(options.seed)  # noqa: S311 - which state to mark, not a secret
    async with trio.open_nursery() as nursery:
        handle: SimulatorHandle = await nursery.start(serve_simulator, options)
        server = handle.servers[0]
        print(describe(handle, options), flush=True)
        states = list(server.model.values_snapshot()["values"])
        while True:
            line = await trio.to_thread.run_sync(sys.stdin.readline)
            if not line:  # the benchmark closed stdin: stop
                nursery.cancel_scope.cancel()
                return
            change = server.model.set_value(rng.choice(states), float(line))
            server.broadcast([change], value_events=1)
            print(time.monotonic(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--controls", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    options = SimulatorOptions(
        host=host, port=int(port), controls=args.controls, rate=args.rate, seed=args.seed
    )
    trio.run(_serve, options)


if __name__ == "__main__":
    main()
