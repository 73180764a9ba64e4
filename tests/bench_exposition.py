"""Measure /metrics rendering against the budgets of design section 4.

Run: ``python tests/bench_exposition.py [--series 10000 50000] [--repeat 21]``. Builds
``loxone_control_value`` series with the seven labels of the real family, then prints median
milliseconds of: a render after every value changed, a render with 1% of the values changed
since the previous render (both formats), prometheus_client's ``generate_latest`` on the same
series, what the renderer keeps in memory, and gzip at levels 1 and 6. Not collected by
pytest: it measures, it does not assert. The machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loxone_trio_exporter.exposition import (
    Format,
    LabelSet,
    MetricFamily,
    Renderer,
    gzip_bytes,
)

LABEL_NAMES = ("miniserver", "uuid", "control", "control_type", "room", "category", "state")
ROOMS = ["Living room", "Kitchen", "Bathroom", "Bedroom", "Office", "Garage", "Garden", "Hall"]
CATEGORIES = ["Lighting", "Climate", "Shading", "Security", "Energy", "Audio"]
TYPES = ["Switch", "Dimmer", "InfoOnlyAnalog", "IRoomControllerV2", "Jalousie", "Meter"]
STATES = ["value", "position", "tempActual", "tempTarget", "actual", "total"]
BUDGETS_MS = {10_000: (15.0, 3.0), 50_000: (100.0, 15.0)}
SPEEDUP_BUDGET = 20.0


def label_sets(count: int, rng: random.Random) -> list[LabelSet]:
    sets = []
    for i in range(count):
        uuid = f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-{rng.getrandbits(64):016x}"
        values = (
            "home" if i % 3 else "office",
            uuid,
            f"Control {i}",
            rng.choice(TYPES),
            rng.choice(ROOMS),
            rng.choice(CATEGORIES),
            rng.choice(STATES),
        )
        sets.append(tuple(zip(LABEL_NAMES, values, strict=True)))
    return sets


def random_value(rng: random.Random) -> float:
    kind = rng.random()
    if kind < 0.3:
        return float(rng.randint(0, 1))
    if kind < 0.8:
        return round(rng.uniform(-20.0, 40.0), 1)
    return rng.uniform(0.0, 100_000.0)


def family(series: dict[LabelSet, float]) -> tuple[MetricFamily, ...]:
    return (
        MetricFamily(
            "loxone_control_value",
            "gauge",
            "Numeric state of a control, from the Miniserver's value event table.",
            series,
        ),
    )


def full_change_snapshots(
    sets: list[LabelSet], count: int, rng: random.Random
) -> list[tuple[MetricFamily, ...]]:
    return [family({labels: random_value(rng) for labels in sets}) for _ in range(count)]


def one_percent_snapshots(
    base: dict[LabelSet, float], sets: list[LabelSet], count: int, rng: random.Random
) -> list[tuple[MetricFamily, ...]]:
    snapshots = []
    current = dict(base)
    changes = max(1, len(sets) // 100)
    for _ in range(count):
        current = dict(current)
        for labels in rng.sample(sets, changes):
            current[labels] = random_value(rng)
        snapshots.append(family(current))
    return snapshots


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    gc.collect()
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def renders(renderer: Renderer, snapshots: list[tuple[MetricFamily, ...]], fmt: Format) -> float:
    it: Iterator[tuple[MetricFamily, ...]] = iter(snapshots[1:])
    renderer.render(snapshots[0], fmt)  # warm: every series known, values of snapshot 0
    return median_ms(lambda: renderer.render(next(it), fmt), len(snapshots) - 1)


def renderer_bytes(snapshot: tuple[MetricFamily, ...]) -> int:
    """What a renderer keeps after rendering ``snapshot`` (its caches, not the output)."""
    gc.collect()
    tracemalloc.start()
    renderer = Renderer()
    renderer.render(snapshot)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held


class SnapshotCollector(Collector):
    """What an exporter built on prometheus_client would do on each scrape."""

    def __init__(self, snapshot: tuple[MetricFamily, ...]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        for fam in self.snapshot:
            names = [name for name, _ in next(iter(fam.series))]
            metric = GaugeMetricFamily(fam.name, fam.help, labels=names)
            for labels, value in fam.series.items():
                metric.add_metric([v for _, v in labels], value)
            yield metric


def bench(count: int, repeat: int, rng: random.Random) -> None:
    sets = label_sets(count, rng)
    full = full_change_snapshots(sets, repeat + 1, rng)
    base = dict(full[0][0].series)
    partial = one_percent_snapshots(base, sets, repeat + 1, rng)

    cold_renderer = Renderer()
    cold_ms = median_ms(lambda: Renderer().render(full[0]), 3)
    text_full_ms = renders(Renderer(), full, Format.TEXT)
    text_partial_ms = renders(Renderer(), partial, Format.TEXT)
    om_full_ms = renders(Renderer(), full, Format.OPENMETRICS)
    om_partial_ms = renders(Renderer(), partial, Format.OPENMETRICS)
    body = cold_renderer.render(full[0])

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(full[0]))
    assert generate_latest(registry).count(b"\n") == body.count(b"\n")
    reference_ms = median_ms(lambda: generate_latest(registry), 3 if count > 20_000 else 5)

    full_budget, partial_budget = BUDGETS_MS.get(count, (float("nan"), float("nan")))
    print(f"--- {count} series, {len(body) / 1e6:.1f} MB body, median of {repeat} renders")
    print(f"cold render (new Renderer)        {cold_ms:8.2f} ms")
    print(f"text, all values changed          {text_full_ms:8.2f} ms   budget {full_budget} ms")
    print(
        f"text, 1% changed                  {text_partial_ms:8.2f} ms   budget {partial_budget} ms"
    )
    print(f"openmetrics, all values changed   {om_full_ms:8.2f} ms")
    print(f"openmetrics, 1% changed           {om_partial_ms:8.2f} ms")
    print(f"prometheus_client generate_latest {reference_ms:8.2f} ms")
    print(
        f"speed-up vs generate_latest: {reference_ms / text_full_ms:.0f}x (all changed), "
        f"{reference_ms / text_partial_ms:.0f}x (1% changed); budget {SPEEDUP_BUDGET:.0f}x"
    )
    print(f"renderer memory: {renderer_bytes(full[0]) / count:.0f} bytes per series")
    for level in (1, 6):
        gzip_ms = median_ms(lambda level=level: gzip_bytes(body, level), 5)  # type: ignore[misc]
        size = len(gzip_bytes(body, level))
        print(
            f"gzip level {level}: {gzip_ms:8.2f} ms, {size / 1e3:.0f} kB "
            f"({100 * size / len(body):.1f}% of the body)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 -- reproducible test data, not secrets
    for count in args.series:
        bench(count, args.repeat, rng)


if __name__ == "__main__":
    main()
