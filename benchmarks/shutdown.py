"""Shutdown scenario: SIGTERM to process exit while Prometheus-style clients stay connected.

Each run starts an exporter (10k value series, streaming), opens keep-alive connections that
each scrape once and then sit idle, as Prometheus keeps its scrape connections between scrapes,
sends SIGTERM and waits for the process to end; the exit code must be 0.
"""

from __future__ import annotations

import signal
import time

from ._pipeline import miniserver_split
from ._processes import Exporter, Simulator, keep_alive_clients
from ._results import Figure, at_most, figure
from ._settings import Settings

SCENARIO = "shutdown"
BUDGET_MS = 1000.0


def run(settings: Settings) -> list[Figure]:
    count, controls = miniserver_split(settings.shutdown_series)
    exit_ms: list[float] = []
    exit_codes: list[int] = []
    with Simulator(settings.workdir, controls=controls, count=count, rate=100.0) as simulator:
        names = [(f"ms{index + 1}", port) for index, port in enumerate(simulator.ports)]
        for run in range(settings.runs):
            exporter = Exporter(settings.workdir, names, name=f"shutdown-{run}")
            with exporter:
                exporter.wait_ready()
                with keep_alive_clients(exporter.port, settings.shutdown_clients):
                    assert exporter.process is not None
                    started = time.monotonic()
                    exporter.process.send_signal(signal.SIGTERM)
                    exit_codes.append(exporter.process.wait(timeout=30))
                    exit_ms.append((time.monotonic() - started) * 1000.0)
    note = (
        f"{settings.shutdown_clients} idle keep-alive clients, "
        f"{settings.shutdown_series:,} value series"
    )
    failed = sum(1 for code in exit_codes if code != 0)
    return [
        figure(SCENARIO, "SIGTERM -> process exit", "ms", exit_ms, at_most(BUDGET_MS), note=note),
        figure(SCENARIO, "runs whose exit code was not 0", "runs", [failed], at_most(0)),
    ]
