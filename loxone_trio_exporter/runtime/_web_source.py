"""What the web app reads: the state owner's snapshot rendered, plus process metrics.

``ExporterWebSource`` implements ``web.WebSource``. Each ``/metrics`` answer is the owner's
snapshot, ``loxone_exporter_render_duration_seconds`` (how long the previous answer took), the
config reload gauges (no ``miniserver`` label, so they stay out of the owner's snapshot) and the
``process_*`` families of prometheus_client's process collector, rendered by one long-lived
``Renderer`` (its caches make the next render cheap) in the format the scraper prefers.
"""

from __future__ import annotations

import time

from prometheus_client import ProcessCollector
from prometheus_client.registry import Collector

from ..exposition import (
    MetricFamily,
    MetricType,
    Renderer,
    Snapshot,
    choose_format,
    gzip_bytes,
    wants_gzip,
)
from ..views import MetricsBody, MiniserverView
from ._families import reload_families
from ._owner import StateOwner

RENDER_DURATION_HELP = (
    "Seconds the exporter took to answer the previous scrape of the metrics endpoint "
    "(snapshot, process metrics, rendering and compression)."
)


class ExporterWebSource:
    """``web.WebSource`` over a ``StateOwner``; call it from the owner's trio thread only."""

    def __init__(self, owner: StateOwner, *, process_collector: Collector | None = None) -> None:
        self._owner = owner
        self._renderer = Renderer()
        # registry=None: collected here only, never registered in prometheus_client's global
        # registry. On systems without /proc it yields nothing.
        self._process = process_collector or ProcessCollector(registry=None)
        self._previous_seconds: float | None = None

    def render_metrics(self, accept: str | None, accept_encoding: str | None) -> MetricsBody:
        started = time.perf_counter()
        fmt = choose_format(accept)
        families = (
            *self._owner.snapshot(),
            self._render_duration(),
            *reload_families(self._owner.reload_status),
            *process_families(self._process),
        )
        body = self._renderer.render(families, fmt)
        gzipped = wants_gzip(accept_encoding)
        if gzipped:
            body = gzip_bytes(body)
        self._previous_seconds = time.perf_counter() - started
        return MetricsBody(body, fmt.content_type, gzipped)

    def miniservers(self) -> tuple[MiniserverView, ...]:
        return self._owner.views()

    def _render_duration(self) -> MetricFamily:
        seconds = self._previous_seconds
        return MetricFamily(
            "loxone_exporter_render_duration_seconds",
            "gauge",
            RENDER_DURATION_HELP,
            {} if seconds is None else {(): seconds},  # no previous render yet: no series
        )


def process_families(collector: Collector) -> Snapshot:
    """The collector's counters and gauges as metric families; anything else is left out.

    prometheus_client names a counter family without ``_total`` and its sample with it; ours
    are named like the sample. ``_created`` samples and other types do not map and are skipped.
    """
    families: list[MetricFamily] = []
    for metric in collector.collect():
        kind: MetricType
        if metric.type == "gauge":
            kind, name = "gauge", metric.name
        elif metric.type == "counter":
            kind, name = "counter", metric.name + "_total"
        else:
            continue
        series = {
            tuple(sample.labels.items()): float(sample.value)
            for sample in metric.samples
            if sample.name == name
        }
        try:
            families.append(MetricFamily(name, kind, metric.documentation, series))
        except ValueError:  # a name our exposition does not write unquoted
            continue
    return tuple(families)
