"""Memory and idle CPU scenarios: the exporter process as the operating system sees it.

Memory: the exporter's resident set (``VmRSS``) once every Miniserver streams and ``/metrics``
has been scraped three times with gzip, as Prometheus scrapes (the renderer's caches are full,
and what a gzip answer showed is kept packed), a new exporter process per run.
The baseline is an exporter whose one Miniserver does not answer: Python and the imported
libraries, no series. Larger sizes are split over Miniservers of 10k value series each (see
``_pipeline.SERIES_PER_MINISERVER``).

Idle CPU: an exporter with 10k value series while the simulator sends 100 events/s and this
process scrapes every 15 s; user + system CPU time over each window, as a share of one core,
against the floor: a bare trio-websocket client (``_floor_client``) that receives the same stream
from the same simulator in the same window. The budget is the ratio (design section 4).
"""

from __future__ import annotations

import gzip
import statistics
import time

from ._pipeline import miniserver_split
from ._processes import (
    Exporter,
    FloorClient,
    Simulator,
    control_series_in,
    free_port,
    peak_rss_bytes,
)
from ._results import Figure, at_most, figure
from ._settings import Settings

MEMORY = "memory"
IDLE = "idle CPU"
MB = 1e6
#: Design 4: resident memory budget in MB by value series.
MEMORY_BUDGETS_MB = {10_000: 60.0, 100_000: 150.0}
#: Design 4: the exporter's idle CPU against a bare trio-websocket client on the same stream.
IDLE_CPU_BUDGET_FLOOR_RATIO = 1.5
#: CPU time is counted in clock ticks (10 ms): a window too short for the floor to use one (the
#: smoke run's) divides by one tick instead of by zero.
_ONE_TICK_SECONDS = 0.01
#: Events per second (all Miniservers together) while memory is measured.
MEMORY_SCENARIO_RATE = 100.0


def run_memory(settings: Settings) -> list[Figure]:
    baseline = [_baseline_rss(settings, run) for run in range(settings.runs)]
    figures = [
        figure(
            MEMORY,
            "RSS, no Miniserver answering (imports only)",
            "MB",
            [rss / MB for rss in baseline],
        )
    ]
    for size in settings.memory_series:
        figures += _memory_at(settings, size, statistics.median(baseline))
    return figures


def _baseline_rss(settings: Settings, run: int) -> int:
    nobody = free_port()  # nothing listens there: the session keeps retrying
    with Exporter(settings.workdir, [("home", nobody)], name=f"baseline-{run}") as exporter:
        exporter.wait_serving()
        time.sleep(settings.settle_seconds)
        for _ in range(3):
            exporter.scrape()
        time.sleep(settings.settle_seconds)
        return exporter.rss()


def _memory_at(settings: Settings, size: int, baseline: float) -> list[Figure]:
    count, controls = miniserver_split(size)
    rss: list[float] = []
    peak: list[float] = []
    series = 0.0
    with Simulator(
        settings.workdir, controls=controls, count=count, rate=MEMORY_SCENARIO_RATE / count
    ) as simulator:
        names = [(f"ms{index + 1}", port) for index, port in enumerate(simulator.ports)]
        for run in range(settings.runs):
            with Exporter(settings.workdir, names, name=f"memory-{size}-{run}") as exporter:
                exporter.wait_ready(timeout=300)
                for _ in range(3):  # as Prometheus scrapes (design 4): with gzip
                    body = gzip.decompress(exporter.scrape_gzip())
                time.sleep(settings.settle_seconds)
                rss.append(exporter.rss())
                peak.append(peak_rss_bytes(exporter.pid))
                series = float(control_series_in(body) + body.count(b"\nloxone_global_value{"))
    label = f"{size // 1000}k value series" if size >= 1000 else f"{size} value series"
    budget = MEMORY_BUDGETS_MB.get(size)
    per_series = [(value - baseline) / series for value in rss]
    note = f"{series:,.0f} value series of {count} Miniserver(s) x {controls} controls"
    return [
        figure(
            MEMORY,
            f"RSS, {label}",
            "MB",
            [value / MB for value in rss],
            None if budget is None else at_most(budget),
            note=note,
        ),
        figure(MEMORY, f"peak RSS (VmHWM), {label}", "MB", [value / MB for value in peak]),
        figure(MEMORY, f"RSS above the baseline per value series, {label}", "bytes", per_series),
    ]


def run_idle_cpu(settings: Settings) -> list[Figure]:
    count, controls = miniserver_split(settings.idle_series)
    exporter_shares: list[float] = []
    floor_shares: list[float] = []
    with (
        Simulator(settings.workdir, controls=controls, count=count, rate=settings.idle_rate) as sim,
        Exporter(
            settings.workdir,
            [(f"ms{index + 1}", port) for index, port in enumerate(sim.ports)],
            name="idle",
        ) as exporter,
        FloorClient(sim.ports) as floor,
    ):
        exporter.wait_ready()
        exporter.scrape()  # the first, cold render is not part of the steady state
        time.sleep(settings.idle_scrape_interval)
        for _ in range(settings.runs):
            exporter_share, floor_share = _cpu_shares(exporter, floor, settings)
            exporter_shares.append(exporter_share)
            floor_shares.append(floor_share)
    note = (
        f"{settings.idle_series:,} value series, {settings.idle_rate:g} events/s, a scrape "
        f"every {settings.idle_scrape_interval:g} s; {settings.idle_seconds:g} s per run; the "
        "floor is a bare trio-websocket client receiving the same stream in the same window"
    )
    return [
        figure(IDLE, "exporter CPU, share of one core", "%", exporter_shares, note=note),
        figure(
            IDLE, "floor CPU (bare trio-websocket client), share of one core", "%", floor_shares
        ),
        figure(
            IDLE,
            "exporter CPU / floor CPU",
            "x",
            [
                ours / max(floor, 100.0 * _ONE_TICK_SECONDS / settings.idle_seconds)
                for ours, floor in zip(exporter_shares, floor_shares, strict=True)
            ],
            at_most(IDLE_CPU_BUDGET_FLOOR_RATIO),
        ),
    ]


def _cpu_shares(exporter: Exporter, floor: FloorClient, settings: Settings) -> tuple[float, float]:
    """CPU of the exporter and of the floor client over one window, as % of one core."""
    started = time.monotonic()
    exporter_before, floor_before = exporter.cpu_seconds(), floor.cpu_seconds()
    next_scrape = started
    end = started + settings.idle_seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now >= next_scrape:
            exporter.scrape()
            next_scrape += settings.idle_scrape_interval
            continue
        time.sleep(min(next_scrape, end) - now)
    elapsed = time.monotonic() - started
    return (
        100.0 * (exporter.cpu_seconds() - exporter_before) / elapsed,
        100.0 * (floor.cpu_seconds() - floor_before) / elapsed,
    )
