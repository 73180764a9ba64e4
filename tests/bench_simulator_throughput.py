"""Measure how many value events per second the simulator delivers to one client.

Run: ``python tests/bench_simulator_throughput.py [--controls 10000] [--rate 50000]
[--seconds 10]``. The simulator runs as ``loxone-trio-exporter simulate`` in its own process (as
the load generator of the benchmarks does); this process logs in with the protocol layer,
enables updates and counts decoded value events. Not collected by pytest: it measures, it does not
assert.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import trio
from http_client import http_request
from ws_client import open_client

from loxone_trio_exporter.protocol import ValueStatesReceived, parse_ll_reply


async def measure(port: int, seconds: float) -> tuple[int, float]:
    key = parse_ll_reply((await http_request(port, "/jdev/sys/getPublicKey")).body).value
    async with open_client(port) as client:
        await client.key_exchange(key)
        reply, _ = await client.get_token("demo", "demo")
        assert reply.ok, reply
        assert (await client.request("jdev/sps/enablebinstatusupdate")).ok
        for _ in range(4):  # the full tables
            await client.next_event()
        events = 0
        start = time.perf_counter()
        with trio.move_on_after(seconds):
            while True:
                event = await client.next_event()
                if isinstance(event, ValueStatesReceived):
                    events += len(event.states)
        return events, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--controls", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=18765)
    args = parser.parse_args()
    command = [
        sys.executable,
        "-m",
        "loxone_trio_exporter",
        "simulate",
        "--listen",
        f"127.0.0.1:{args.port}",
        "--controls",
        str(args.controls),
        "--rate",
        str(args.rate),
    ]
    simulator = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert simulator.stdout is not None
        simulator.stdout.readline()  # printed once the port is bound
        events, elapsed = trio.run(measure, args.port, args.seconds)
        stats = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys,urllib.request;"
                    f"sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:{args.port}"
                    "/sim/stats').read().decode())",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    finally:
        simulator.terminate()
        simulator.wait(10)
    print(
        f"controls={args.controls} target_rate={args.rate:.0f}/s received={events} "
        f"in {elapsed:.2f}s = {events / elapsed:,.0f} events/s; "
        f"simulator sent {stats['events_sent'].get('value', 0)} value events"
    )


if __name__ == "__main__":
    main()
