"""What the web app reads: the state owner's snapshot rendered, plus process metrics.

``ExporterWebSource`` implements ``web.WebSource``. Each ``/metrics`` answer is the owner's
snapshot, ``loxone_exporter_render_duration_seconds`` (how long the previous answer took), the
config reload gauges and ``loxone_exporter_shard_info`` (no ``miniserver`` label, so they stay
out of the owner's snapshot) and the
``process_*`` families of prometheus_client's process collector, rendered by one long-lived
``Renderer`` (its caches make the next render cheap) in the format the scraper prefers.

A large scrape must not stall the event loop (design 4: no step over 50 ms at 100 Miniservers x
1k controls; sessions keep answering keepalives and applying tables meanwhile): ``render_metrics``
renders in steps (one part of a family, i.e. one Miniserver, per step) and lets other tasks run
between them, and compresses in segments. The snapshot it renders is frozen, so what the owner
applies meanwhile shows in the next scrape. One render runs at a time (the renderer's caches).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable

import trio
import trio.lowlevel
from prometheus_client import ProcessCollector
from prometheus_client.registry import Collector

from ..exposition import (
    MetricFamily,
    MetricType,
    Renderer,
    Snapshot,
    choose_format,
    gzip_segments,
    segments,
    wants_gzip,
)
from ..views import MetricsBody, MiniserverView
from ._families import reload_families, shard_info_family
from ._memory import TrimWhenQuiet, release_free_memory
from ._owner import StateOwner

#: Freed memory goes back to the system once scrapes have paused this long (see ``_answer``).
TRIM_AFTER_SECONDS = 0.5
#: While scrapes do not pause, at most one ``release_free_memory`` per this many seconds.
TRIM_INTERVAL_SECONDS = 10.0

RENDER_DURATION_HELP = (
    "Seconds the exporter took to answer the previous scrape of the metrics endpoint "
    "(snapshot, process metrics, rendering and compression)."
)


class ExporterWebSource:
    """``web.WebSource`` over a ``StateOwner``; call it from the owner's trio thread only."""

    def __init__(
        self,
        owner: StateOwner,
        *,
        process_collector: Collector | None = None,
        shard: Callable[[], tuple[int, int]] | None = None,
        extra_families: Callable[[], Iterable[MetricFamily]] | None = None,
        release_memory: Callable[[], None] = release_free_memory,
    ) -> None:
        self._owner = owner
        self._shard = shard  # (index, count) of the running config; None: no shard_info
        # Families of optional parts (the OTLP push counter), rendered after the reload gauges.
        self._extra_families = extra_families or tuple
        self._renderer = Renderer()
        # registry=None: collected here only, never registered in prometheus_client's global
        # registry. On systems without /proc it yields nothing.
        self._process = process_collector or ProcessCollector(registry=None)
        self._previous_seconds: float | None = None
        self._rendering = trio.Lock()
        self._release_memory = release_memory
        self._trimmed_at = 0.0  # ``time.monotonic()`` of the last trim or of a burst's start
        self._quiet_trim = TrimWhenQuiet(
            TRIM_AFTER_SECONDS, busy=self._rendering.locked, release=self._trim_now
        )

    async def render_metrics(
        self, accept: str | None, accept_encoding: str | None, *, scrape: bool = True
    ) -> MetricsBody:
        """The answer to a scrape, letting other tasks run between the steps of the work.
        ``scrape=False`` (the OTLP push) leaves the render duration of the last scrape as it
        is."""
        async with self._rendering:
            steps = self._answer(accept, accept_encoding, joined=False, scrape=scrape)
            while True:
                try:
                    next(steps)
                except StopIteration as done:
                    self._trim_later()
                    return done.value  # type: ignore[no-any-return]
                await trio.lowlevel.checkpoint()

    def _trim_later(self) -> None:
        """Give the freed pages back once scrapes pause (``TRIM_AFTER_SECONDS``): a render's
        temporaries (value texts, joined blocks, compressor buffers) would otherwise stay
        resident between two scrapes 15 s apart. A render under way at the deadline asks for
        the next trim when it ends."""
        if self._quiet_trim.request():  # a burst starts: the interval of ``_answer`` counts
            self._trimmed_at = time.monotonic()

    def _trim_now(self) -> None:
        self._trimmed_at = time.monotonic()
        self._release_memory()

    def render_metrics_now(self, accept: str | None, accept_encoding: str | None) -> MetricsBody:
        """``render_metrics`` in one go (benchmarks and tests; not while one is running)."""
        steps = self._answer(accept, accept_encoding, joined=True)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def _answer(
        self,
        accept: str | None,
        accept_encoding: str | None,
        *,
        joined: bool,
        scrape: bool = True,
    ) -> Generator[None, None, MetricsBody]:
        """The answer, in steps; the render duration counts the steps' own time only. A plain
        body comes ``joined`` or as segments (``MetricsBody``)."""
        busy = 0.0
        started = time.perf_counter()
        fmt = choose_format(accept)
        families = (
            *self._owner.snapshot(),
            self._render_duration(),
            *reload_families(self._owner.reload_status),
            *(() if self._shard is None else (shard_info_family(*self._shard()),)),
            *self._extra_families(),
            *process_families(self._process),
        )
        gzipped = wants_gzip(accept_encoding)
        # Prometheus asks for gzip: what a gzip answer shows is kept packed (``_packed``).
        steps = self._renderer.render_steps(
            families, fmt, joined=joined and not gzipped, packed=gzipped
        )
        while True:
            try:
                next(steps)
            except StopIteration as done:
                rendered: bytes | list[bytes] = done.value
                break
            busy += time.perf_counter() - started
            yield
            started = time.perf_counter()
        body: bytes | tuple[bytes, ...]
        if isinstance(rendered, bytes):
            body = rendered
        else:
            compressing = gzip_segments(rendered) if gzipped else segments(rendered)
            while True:
                try:
                    next(compressing)
                except StopIteration as done:
                    body = done.value
                    break
                busy += time.perf_counter() - started
                yield
                started = time.perf_counter()
        # The blocks a render replaced and its temporaries are freed in the C heap; the pages
        # go back once scrapes pause (``_trim_later``), not after every render: the next one
        # would fault them in again (at 10k value series 1-2 ms a scrape). Scrapes that never
        # pause (several scrapers) still give them back every ``TRIM_INTERVAL_SECONDS``.
        now = time.monotonic()
        if self._quiet_trim.pending and now - self._trimmed_at >= TRIM_INTERVAL_SECONDS:
            self._trimmed_at = now
            self._release_memory()
        if scrape:
            self._previous_seconds = busy + time.perf_counter() - started
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
            unit="seconds",
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
