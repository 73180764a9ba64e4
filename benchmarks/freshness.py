"""Freshness scenario: how long a value change at the simulator takes to show on ``/metrics``.

The simulator (``benchmarks._marker_simulator``, its own process) streams its random walk at
the scenario's rate; now and then it sets one state to a marker value no walk produces and
sends it at once, noting the moment. Right after, this process scrapes the exporter (its own
process) over one keep-alive connection, back to back, until an answer holds the marker, and
notes when that answer was in: the figure includes at least one whole scrape (the time a
scraper needs to see anything), and a change that arrives during a render waits for the next
one. Both clocks are the system's monotonic clock.
"""

from __future__ import annotations

import http.client
import random
import statistics
import time

from ._pipeline import miniserver_split
from ._processes import Exporter, Simulator
from ._results import Figure, at_most, figure
from ._settings import Settings

SCENARIO = "freshness"
P99_BUDGET_MS = 50.0
GIVE_UP_SECONDS = 5.0
#: Markers are negative numbers of this size: no state of the simulator's walk gets there.
MARKER_BASE = -900_000.0


def run(settings: Settings) -> list[Figure]:
    count, controls = miniserver_split(settings.freshness_series)
    if count != 1:
        raise ValueError("the freshness scenario streams from one Miniserver")
    rng = random.Random(7)  # noqa: S311 - pauses between markers, not secrets
    p50: list[float] = []
    p99: list[float] = []
    worst: list[float] = []
    scrape_ms: list[float] = []
    lost = 0
    marker = MARKER_BASE
    simulator = Simulator(
        settings.workdir,
        controls=controls,
        rate=settings.freshness_rate,
        module="benchmarks._marker_simulator",
        command=(),
    )
    with (
        simulator,
        # Untyped: the marker is looked for as written, and a typed family would convert it.
        Exporter(settings.workdir, [("home", simulator.ports[0])], typed=False) as exporter,
    ):
        exporter.wait_ready()
        connection = http.client.HTTPConnection("127.0.0.1", exporter.port, timeout=30)
        try:
            for _ in range(settings.runs):
                latencies: list[float] = []
                scrapes: list[float] = []
                for _ in range(settings.freshness_markers):
                    marker -= 1.0
                    sent = simulator.mark(marker)
                    seen = _wait_for(connection, f" {marker!r}\n".encode(), scrapes)
                    if seen is None:
                        lost += 1
                    else:
                        latencies.append((seen - sent) * 1000.0)
                    time.sleep(rng.uniform(0.0, 0.05))  # not in step with the walk's ticks
                scrape_ms.append(statistics.median(scrapes) * 1000.0)
                p50.append(statistics.median(latencies))
                p99.append(_percentile(latencies, 0.99))
                worst.append(max(latencies))
        finally:
            connection.close()
    note = (
        f"{settings.freshness_markers} changes per run at {settings.freshness_rate:,.0f} "
        f"events/s, {settings.freshness_series:,} value series; changes never seen: {lost}"
    )
    return [
        figure(SCENARIO, "change -> visible on /metrics, p50", "ms", p50, note=note),
        figure(SCENARIO, "change -> visible on /metrics, p99", "ms", p99, at_most(P99_BUDGET_MS)),
        figure(SCENARIO, "change -> visible on /metrics, worst", "ms", worst),
        figure(SCENARIO, "one scrape meanwhile (median)", "ms", scrape_ms),
    ]


def _wait_for(
    connection: http.client.HTTPConnection, text: bytes, scrape_seconds: list[float]
) -> float | None:
    """Scrape until an answer holds ``text``; when that answer was in (``None``: never).
    Appends the duration of every scrape to ``scrape_seconds``."""
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while time.monotonic() < deadline:
        asked = time.monotonic()
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        body = response.read()
        arrived = time.monotonic()
        scrape_seconds.append(arrived - asked)
        if text in body:
            return arrived
    return None


def _percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value at least ``fraction`` of all reach."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without floats going wrong
    return ordered[int(rank) - 1]
