"""Memory and idle CPU scenarios: the exporter process as the operating system sees it.

Memory: the exporter's resident set (``VmRSS``) once every Miniserver streams and ``/metrics``
has been scraped three times (the renderer's caches are full), a new exporter process per run.
The baseline is an exporter whose one Miniserver does not answer: Python and the imported
libraries, no series. Larger sizes are split over Miniservers of 10k value series each (see
``_pipeline.SERIES_PER_MINISERVER``).

Idle CPU: an exporter with 10k value series while the simulator sends 100 events/s and this
process scrapes every 15 s; user + system CPU time over each window, as a share of one core.
"""

from __future__ import annotations

import statistics
import time

from ._pipeline import miniserver_split
from ._processes import Exporter, Simulator, free_port, peak_rss_bytes
from ._results import Figure, at_most, figure
from ._settings import Settings

MEMORY = "memory"
IDLE = "idle CPU"
MB = 1e6
#: Design 4: resident memory budget in MB by value series.
MEMORY_BUDGETS_MB = {10_000: 60.0, 100_000: 150.0}
IDLE_CPU_BUDGET_PERCENT = 1.0
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
                for _ in range(3):
                    body = exporter.scrape()
                time.sleep(settings.settle_seconds)
                rss.append(exporter.rss())
                peak.append(peak_rss_bytes(exporter.pid))
                series = float(
                    body.count(b"\nloxone_control_value{") + body.count(b"\nloxone_global_value{")
                )
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
    shares: list[float] = []
    with (
        Simulator(settings.workdir, controls=controls, count=count, rate=settings.idle_rate) as sim,
        Exporter(
            settings.workdir,
            [(f"ms{index + 1}", port) for index, port in enumerate(sim.ports)],
            name="idle",
        ) as exporter,
    ):
        exporter.wait_ready()
        exporter.scrape()  # the first, cold render is not part of the steady state
        time.sleep(settings.idle_scrape_interval)
        for _ in range(settings.runs):
            shares.append(_cpu_share(exporter, settings))
    note = (
        f"{settings.idle_series:,} value series, {settings.idle_rate:g} events/s, a scrape "
        f"every {settings.idle_scrape_interval:g} s; {settings.idle_seconds:g} s per run"
    )
    return [
        figure(
            IDLE,
            "exporter CPU, share of one core",
            "%",
            shares,
            at_most(IDLE_CPU_BUDGET_PERCENT),
            note=note,
        )
    ]


def _cpu_share(exporter: Exporter, settings: Settings) -> float:
    started = time.monotonic()
    cpu_before = exporter.cpu_seconds()
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
    return 100.0 * (exporter.cpu_seconds() - cpu_before) / elapsed
