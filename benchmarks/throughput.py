"""Throughput scenario: simulator -> exporter over loopback WebSocket, each in its own process.

The simulator is asked for more events than the budget; what it really sent is read from its
``/sim/stats``, what the exporter decoded from ``loxone_exporter_events_total{table="value"}``.
One run: stall the simulator (``/sim/fault`` ``stall``: nothing is sent) until the exporter's
counter stands still, read both counters, let it send for the window, read both counters again
(the rate the exporter kept up with, and how far behind it was at that moment), stall it again
and wait for the exporter to drain: then every event sent must have been counted, and the
session must not have been restarted (the simulator cuts a client that falls 2000 messages
behind).
"""

from __future__ import annotations

import time

from ._pipeline import miniserver_split
from ._processes import Exporter, Simulator, sample_value
from ._results import Figure, at_least, at_most, figure
from ._settings import Settings

SCENARIO = "throughput"
EVENTS_BUDGET = 50_000.0
STALL_SECONDS = 60.0  # ended by "clear" long before; a real stall would end the session
DRAIN_TIMEOUT = 30.0


def run(settings: Settings) -> list[Figure]:
    count, controls = miniserver_split(settings.throughput_series)
    if count != 1:
        raise ValueError("the throughput scenario streams from one Miniserver")
    received_rates: list[float] = []
    sent_rates: list[float] = []
    behind: list[float] = []
    lost: list[float] = []
    cpu: list[float] = []
    with (
        Simulator(settings.workdir, controls=controls, rate=settings.throughput_rate) as simulator,
        Exporter(settings.workdir, [("home", simulator.ports[0])], name="throughput") as exporter,
    ):
        exporter.wait_ready()
        reconnects_before = _reconnects(exporter.scrape())
        for _ in range(settings.runs):
            simulator.fault("stall", seconds=STALL_SECONDS)
            sent_before, received_before = _drained(simulator, exporter, settings.settle_seconds)
            simulator.fault("clear")
            started = time.monotonic()
            cpu_before = exporter.cpu_seconds()
            time.sleep(settings.throughput_seconds)
            received_now = _received(exporter)
            sent_now = simulator.events_sent()
            elapsed = time.monotonic() - started
            cpu.append(100.0 * (exporter.cpu_seconds() - cpu_before) / elapsed)
            simulator.fault("stall", seconds=STALL_SECONDS)
            sent_after, received_after = _drained(simulator, exporter, settings.settle_seconds)
            received_rates.append((received_now - received_before) / elapsed)
            sent_rates.append((sent_now - sent_before) / elapsed)
            behind.append(max(0, sent_now - received_now))
            lost.append(sent_after - received_after - (sent_before - received_before))
        simulator.fault("clear")
        reconnects = _reconnects(exporter.scrape()) - reconnects_before
    note = f"{settings.throughput_seconds:g} s per run; simulator asked for "
    note += f"{settings.throughput_rate:,.0f}/s"
    return [
        figure(
            SCENARIO,
            "events/s decoded and applied by the exporter",
            "events/s",
            received_rates,
            at_least(EVENTS_BUDGET),
            note=note,
        ),
        figure(SCENARIO, "events/s sent by the simulator", "events/s", sent_rates),
        figure(SCENARIO, "exporter CPU meanwhile", "% of a core", cpu),
        figure(SCENARIO, "events not yet applied at the end of the window", "events", behind),
        figure(
            SCENARIO, "events lost (sent - counted, after draining)", "events", lost, at_most(0)
        ),
        figure(
            SCENARIO, "sessions restarted during the runs", "sessions", [reconnects], at_most(0)
        ),
    ]


def _received(exporter: Exporter) -> float:
    return sample_value(exporter.scrape(), "loxone_exporter_events_total", table="value")


def _reconnects(body: bytes) -> float:
    return sample_value(body, "loxone_exporter_reconnects_total")


def _drained(simulator: Simulator, exporter: Exporter, pause: float) -> tuple[int, float]:
    """Wait until the exporter's count stands still (the simulator is stalled); both counts."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    previous = -1.0
    while time.monotonic() < deadline:
        received = _received(exporter)
        if received == previous:
            return simulator.events_sent(), received
        previous = received
        time.sleep(pause)
    raise TimeoutError(f"the exporter did not drain within {DRAIN_TIMEOUT:g} s")
