"""Render scenario: what one scrape of ``/metrics`` costs the exporter, in process.

Per size: the state owner holds the series of generated Miniservers; each run sends value tables
(every numeric state changed, or 1% of them), then times the web source's whole answer
(``ExporterWebSource.render_metrics``: the owner's snapshot, process metrics, rendering, and gzip
where asked) - the work a scrape does besides HTTP. prometheus_client's ``generate_latest`` renders
the very same families through a custom collector, as an exporter built on it would.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from loxone_trio_exporter.exposition import (
    CONTENT_TYPE_OPENMETRICS,
    MetricFamily,
    Renderer,
    SeriesParts,
)
from loxone_trio_exporter.runtime._families import reload_families
from loxone_trio_exporter.runtime._owner import StateOwner
from loxone_trio_exporter.runtime._web_source import RENDER_DURATION_HELP, process_families

from ._pipeline import Pipeline
from ._results import Budget, Figure, at_least, at_most, figure
from ._settings import Settings

SCENARIO = "render"
OPENMETRICS_ACCEPT = f"{CONTENT_TYPE_OPENMETRICS.split(';', 1)[0]};version=1.0.0"
#: Design 4: (all values changed, 1% changed) in ms, by value series.
BUDGETS_MS = {10_000: (15.0, 3.0), 50_000: (100.0, 15.0)}
SPEED_UP_BUDGET = 20.0


class SnapshotCollector(Collector):
    """The families ``/metrics`` shows, as a prometheus_client collector.

    ``prepare`` (not timed) reads the owner's current snapshot: the large families are parts
    that render their own lines, so their samples are taken from a render of ours, parsed. Each
    ``collect`` then turns the samples into ``Metric`` objects, as an exporter built on
    prometheus_client would from its own state.
    """

    def __init__(self, owner: StateOwner) -> None:
        self.owner = owner
        self.process = ProcessCollectorFamilies()
        self.previous_seconds = 0.01
        self.families: list[tuple[MetricFamily, list[tuple[dict[str, str], float]]]] = []

    def prepare(self) -> None:
        families: tuple[MetricFamily, ...] = (
            *self.owner.snapshot(),
            MetricFamily(
                "loxone_exporter_render_duration_seconds",
                "gauge",
                RENDER_DURATION_HELP,
                {(): self.previous_seconds},
            ),
            *reload_families(self.owner.reload_status),
            *self.process(),
        )
        self.families = [(family, _samples(family)) for family in families]

    def collect(self) -> Iterator[Metric]:
        for family, samples in self.families:
            name = family.name
            if family.type == "counter":
                name = name.removesuffix("_total")
            metric = Metric(name, family.help, family.type)
            for labels, value in samples:
                metric.add_sample(family.name, labels, value)
            yield metric


def _samples(family: MetricFamily) -> list[tuple[dict[str, str], float]]:
    series = family.series
    if not isinstance(series, SeriesParts):
        return [(dict(labels), value) for labels, value in series.items()]
    text = Renderer().render((family,)).decode()
    return [
        (sample.labels, sample.value)
        for parsed in text_string_to_metric_families(text)
        for sample in parsed.samples
    ]


class ProcessCollectorFamilies:
    """prometheus_client's process collector, as the web source reads it."""

    def __init__(self) -> None:
        from prometheus_client import ProcessCollector  # noqa: PLC0415 - used here only

        self.collector = ProcessCollector(registry=None)

    def __call__(self) -> tuple[MetricFamily, ...]:
        return process_families(self.collector)


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000.0


def _runs(
    settings: Settings, prepare: Callable[[], object], action: Callable[[], object]
) -> list[float]:
    """Per run: the median of ``renders_per_run`` timings of ``action``, each after
    ``prepare`` (which is not timed)."""
    gc.collect()
    results = []
    for _ in range(settings.runs):
        timings = []
        for _ in range(settings.renders_per_run):
            prepare()
            timings.append(_timed(action))
        results.append(statistics.median(timings))
    return results


def run(settings: Settings) -> list[Figure]:
    figures: list[Figure] = []
    for size in settings.render_series:
        figures += _measure(settings, size)
    return figures


def _measure(settings: Settings, size: int) -> list[Figure]:
    pipeline = Pipeline(size)
    label = f"{_short(size)} value series"
    full_budget, partial_budget = BUDGETS_MS.get(size, (None, None))

    def full_change() -> None:
        pipeline.change(1.0)

    def one_percent() -> None:
        pipeline.change(0.01)

    def answer(accept: str | None = None, encoding: str | None = None) -> Callable[[], object]:
        web = pipeline.new_web_source()
        web.render_metrics_now(accept, encoding)  # warm: every series seen once
        return lambda: web.render_metrics_now(accept, encoding)

    body = pipeline.web.render_metrics_now(None, None).body
    lines = sum(1 for line in body.splitlines() if not line.startswith(b"#"))
    note = (
        f"{pipeline.value_series:,} value series of {len(pipeline.names)} Miniserver(s), "
        f"{lines:,} series in all, {len(body) / 1e6:.1f} MB of text"
    )

    text_full = _runs(settings, full_change, answer())
    text_partial = _runs(settings, one_percent, answer())
    openmetrics_full = _runs(settings, full_change, answer(OPENMETRICS_ACCEPT))
    openmetrics_partial = _runs(settings, one_percent, answer(OPENMETRICS_ACCEPT))
    gzip_full = _runs(settings, full_change, answer(None, "gzip"))
    gzip_partial = _runs(settings, one_percent, answer(None, "gzip"))

    registry = CollectorRegistry(auto_describe=False)
    collector = SnapshotCollector(pipeline.owner)
    registry.register(collector)
    ours = pipeline.web.render_metrics_now(None, None).body
    collector.prepare()
    reference_body = generate_latest(registry)
    # The same series: as many lines (prometheus_client writes no _created for these types).
    assert reference_body.count(b"\n") == ours.count(b"\n"), "not the same series"
    reference = []
    for _ in range(settings.runs):
        pipeline.change(1.0)
        collector.prepare()
        reference.append(_timed(lambda: generate_latest(registry)))
    full_ratio = [
        reference_ms / ours_ms for reference_ms, ours_ms in zip(reference, text_full, strict=True)
    ]
    partial_ratio = [
        reference_ms / ours_ms
        for reference_ms, ours_ms in zip(reference, text_partial, strict=True)
    ]

    return [
        figure(
            SCENARIO,
            f"{label}: all changed, text",
            "ms",
            text_full,
            _budget(full_budget),
            note=note,
        ),
        figure(SCENARIO, f"{label}: 1% changed, text", "ms", text_partial, _budget(partial_budget)),
        figure(SCENARIO, f"{label}: all changed, OpenMetrics", "ms", openmetrics_full),
        figure(SCENARIO, f"{label}: 1% changed, OpenMetrics", "ms", openmetrics_partial),
        figure(SCENARIO, f"{label}: all changed, text + gzip", "ms", gzip_full),
        figure(SCENARIO, f"{label}: 1% changed, text + gzip", "ms", gzip_partial),
        figure(SCENARIO, f"{label}: prometheus_client generate_latest", "ms", reference),
        figure(
            SCENARIO,
            f"{label}: speed-up over generate_latest, all changed",
            "x",
            full_ratio,
            at_least(SPEED_UP_BUDGET),
        ),
        figure(
            SCENARIO,
            f"{label}: speed-up over generate_latest, 1% changed",
            "x",
            partial_ratio,
            at_least(SPEED_UP_BUDGET),
        ),
    ]


def _budget(limit: float | None) -> Budget | None:
    return None if limit is None else at_most(limit)


def _short(count: int) -> str:
    return f"{count // 1000}k" if count >= 1000 and count % 1000 == 0 else str(count)
