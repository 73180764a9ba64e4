"""Scale scenario: 100 Miniservers of 1k controls each in one exporter process (design 5).

One simulator process serves them all (``simulate --count 100``); each run starts a new exporter
with a config of 100 ``[[miniserver]]`` tables and measures the time from the process start
until ``/-/ready`` answers 200 (every session authenticated, its structure loaded and its tables
streaming), the CPU time that took, the render time the exporter reports for the following
scrapes (``loxone_exporter_render_duration_seconds``: snapshot, process metrics, rendering), a
whole scrape as a client sees it (with gzip, as Prometheus asks, inflated by the client), and
the resident memory (which depends on it: the renderer keeps what a gzip answer showed
packed). Design 5 sets no budget here; design 4 bounds the longest event-loop step during
those scrapes, measured in process (``loop_lag.py``).
"""

from __future__ import annotations

import gzip
import statistics
import time

from ._processes import Exporter, Simulator, control_series_in, peak_rss_bytes, sample_value
from ._results import Figure, figure
from ._settings import Settings
from .loop_lag import run_loop_lag

SCENARIO = "scale"
SCRAPES = 5
MB = 1e6


def run(settings: Settings) -> list[Figure]:
    ready: list[float] = []
    cpu: list[float] = []
    first_scrape: list[float] = []
    first_scrape_gzip: list[float] = []
    render: list[float] = []
    scrape: list[float] = []
    rss: list[float] = []
    peak: list[float] = []
    series = 0.0
    with Simulator(
        settings.workdir,
        controls=settings.scale_controls,
        count=settings.scale_miniservers,
        rate=settings.scale_rate,
        start_timeout=900,
    ) as simulator:
        names = [(f"ms{index + 1:03d}", port) for index, port in enumerate(simulator.ports)]
        for run in range(settings.scale_runs):
            with Exporter(settings.workdir, names, name=f"scale-{run}") as exporter:
                ready.append(exporter.wait_ready(timeout=900, interval=0.2))
                cpu.append(exporter.cpu_seconds())
                # Cold caches once per exporter: as Prometheus scrapes (design 4: with gzip) on
                # even runs, plain on odd ones (the figure measured before 2026-12-05).
                started = time.monotonic()
                if run % 2 == 0:
                    gzip.decompress(exporter.scrape_gzip())
                    first_scrape_gzip.append((time.monotonic() - started) * 1000.0)
                else:
                    exporter.scrape()
                    first_scrape.append((time.monotonic() - started) * 1000.0)
                renders, scrapes = [], []
                for _ in range(SCRAPES):
                    started = time.monotonic()
                    body = gzip.decompress(exporter.scrape_gzip())  # as Prometheus
                    scrapes.append((time.monotonic() - started) * 1000.0)
                    # Each answer reports how long the previous one took to render.
                    renders.append(
                        sample_value(body, "loxone_exporter_render_duration_seconds") * 1000.0
                    )
                render.append(statistics.median(renders))
                scrape.append(statistics.median(scrapes))
                rss.append(exporter.rss() / MB)
                peak.append(peak_rss_bytes(exporter.pid) / MB)
                series = float(control_series_in(body))
    note = (
        f"{settings.scale_miniservers} Miniservers x {settings.scale_controls} controls, "
        f"{series:,.0f} control value series, "
        f"{settings.scale_rate:g} events/s each"
    )
    return [
        figure(SCENARIO, "start -> all Miniservers streaming", "s", ready, note=note),
        figure(SCENARIO, "CPU time until all stream", "s", cpu),
        figure(
            SCENARIO,
            "first scrape (cold caches), client side, gzip as Prometheus asks",
            "ms",
            first_scrape_gzip,
            note="timed until the compressed body is read and decompressed",
        ),
        *(
            [figure(SCENARIO, "first scrape (cold caches), client side, plain", "ms", first_scrape)]
            if first_scrape  # odd runs only
            else []
        ),
        figure(SCENARIO, "render, as the exporter reports it", "ms", render),
        figure(SCENARIO, "scrape, client side", "ms", scrape),
        figure(SCENARIO, "RSS", "MB", rss),
        figure(SCENARIO, "peak RSS (VmHWM)", "MB", peak),
        *run_loop_lag(settings),
    ]
