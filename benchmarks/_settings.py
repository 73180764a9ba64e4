"""Sizes and durations of every scenario: the full run's, and ``--quick`` (the smoke run)."""

from __future__ import annotations

from pathlib import Path

import attrs


@attrs.frozen
class Settings:
    """What to measure and how often; the defaults are the full run of docs/benchmarks.md."""

    workdir: Path
    #: Repetitions of every measurement: the table shows their median, min and max.
    runs: int = 5
    #: Value series of the render scenario (``loxone_control_value`` + ``loxone_global_value``).
    render_series: tuple[int, ...] = (1_000, 10_000, 50_000, 100_000)
    #: Renders per run of a full-change / 1%-changed figure (the run's value is their median).
    renders_per_run: int = 5
    decode_series: int = 10_000
    decode_events: int = 500_000  # per run
    decode_records: tuple[int, ...] = (1000, 20)  # per value table: 50k/s and 1k/s ticks
    throughput_series: int = 10_000
    throughput_rate: float = 100_000.0  # asked of the simulator; what it sends is measured
    throughput_seconds: float = 10.0
    freshness_series: int = 10_000
    freshness_rate: float = 1000.0
    freshness_markers: int = 100  # per run
    memory_series: tuple[int, ...] = (10_000, 100_000)
    #: A pause before memory is read, and between two reads of a counter that must stand still.
    settle_seconds: float = 1.0
    idle_series: int = 10_000
    idle_rate: float = 100.0
    idle_seconds: float = 60.0  # one run's window
    idle_scrape_interval: float = 15.0
    shutdown_series: int = 10_000
    shutdown_clients: int = 3
    scale_miniservers: int = 100
    scale_controls: int = 1000
    scale_rate: float = 10.0  # value events per second per Miniserver
    scale_runs: int = 5
    hostile_series: int = 10_000
    hostile_seconds: float = 60.0  # each flood
    hostile_refusals: int = 100
    #: Value series of the OTLP push scenario (issue 17).
    otlp_series: int = 10_000


def quick_settings(workdir: Path) -> Settings:
    """Tiny sizes and short windows: every scenario runs end to end in seconds (the smoke test).
    The figures mean nothing at these sizes."""
    return Settings(
        workdir=workdir,
        runs=1,
        render_series=(300,),
        renders_per_run=2,
        decode_series=300,
        decode_events=2000,
        decode_records=(100,),
        throughput_series=300,
        throughput_rate=2000.0,
        throughput_seconds=0.5,
        freshness_series=300,
        freshness_rate=200.0,
        freshness_markers=3,
        memory_series=(300,),
        settle_seconds=0.1,
        idle_series=300,
        idle_rate=50.0,
        idle_seconds=0.5,
        idle_scrape_interval=0.25,
        shutdown_series=300,
        shutdown_clients=2,
        scale_miniservers=2,
        scale_controls=20,
        scale_rate=10.0,
        scale_runs=1,
        hostile_series=300,
        hostile_seconds=0.5,
        hostile_refusals=2,
        otlp_series=300,
    )
