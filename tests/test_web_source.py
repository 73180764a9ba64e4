"""The web source: the owner's snapshot plus process metrics, in the format the scraper asked."""

from __future__ import annotations

import gzip
import json
import platform
import sys
from functools import partial

import pytest
import trio
import trio.lowlevel
from http_client import http_request
from owner_feed import (
    feed,
    make_owner,
    parsed_series,
    promtool_check,
    start_streaming,
    tables,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)

from loxone_trio_exporter.exposition import CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_TEXT
from loxone_trio_exporter.runtime._memory import limit_malloc_arenas, release_free_memory
from loxone_trio_exporter.runtime._messages import (
    MiniserverIdentified,
    ReconnectReason,
    SessionLost,
    TokenUpdated,
)
from loxone_trio_exporter.runtime._web_source import (
    TRIM_AFTER_SECONDS,
    ExporterWebSource,
    process_families,
)
from loxone_trio_exporter.simulator import SimulatedMiniserver
from loxone_trio_exporter.views import MetricsBody
from loxone_trio_exporter.web import create_app, serve_web

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.fixture
def smarteon_source(shared_fixture):
    """Two Miniservers on a real structure, every kind of series present, texts included."""
    document = json.loads(shared_fixture("smarteon-2025.LoxAPP3.json").read_text("utf-8"))
    owner = make_owner(["home", "office", "garage"], include_text=True)
    for seed, name in enumerate(("home", "office")):
        model = SimulatedMiniserver.from_document(document, seed=seed)
        owner.apply(MiniserverIdentified(name, model.serial, "15.3.1"), 0.0)
        owner.apply(TokenUpdated(name, 1_760_000_000.0), 0.0)
        start_streaming(owner, name, model)
        feed(owner, tables(name, model.step(300)))
    owner.apply(SessionLost("garage", ReconnectReason.UNREACHABLE, "no route to host"), 0.0)
    return ExporterWebSource(owner)


def test_text_format_by_default_with_every_family(smarteon_source):
    first = smarteon_source.render_metrics_now(None, None)
    assert (first.content_type, first.gzipped) == (CONTENT_TYPE_TEXT, False)
    series = parsed_series(first.body.decode())  # also: no series twice
    names = {name for name, _ in series}
    assert "loxone_exporter_render_duration_seconds" not in names  # no previous render yet
    assert {
        "loxone_up",
        "loxone_control_value",
        "loxone_control_info",
        "loxone_control_text",
        "loxone_global_value",
        "loxone_daytimer_entries",
        "loxone_weather_temperature_celsius",
        "loxone_miniserver_info",
        "loxone_exporter_build_info",
        "loxone_exporter_events_total",
        "loxone_exporter_reconnects_total",
        "loxone_exporter_token_expiry_timestamp_seconds",
    } <= names
    if sys.platform == "linux":
        assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names

    second = parsed_series(smarteon_source.render_metrics_now(None, None).body.decode())
    (duration,) = [v for (n, _), v in second.items() if n.endswith("render_duration_seconds")]
    assert 0 < duration < 10


def test_promtool_accepts_the_text_output(smarteon_source):
    smarteon_source.render_metrics_now(None, None)  # so that the render duration is there too
    promtool_check(smarteon_source.render_metrics_now(None, None).body)


def test_openmetrics_with_gzip_when_asked(smarteon_source):
    text = smarteon_source.render_metrics_now(None, None).body.decode()
    answer = smarteon_source.render_metrics_now(PROMETHEUS_ACCEPT, "gzip, deflate")
    assert (answer.content_type, answer.gzipped) == (CONTENT_TYPE_OPENMETRICS, True)
    body = gzip.decompress(answer.body).decode()
    assert body.endswith("# EOF\n")
    families = {family.name: family for family in parse_openmetrics(body)}
    assert families["loxone_exporter_events"].type == "counter"
    om_values = len(families["loxone_control_value"].samples)
    text_values = sum(1 for line in text.splitlines() if line.startswith("loxone_control_value{"))
    assert om_values == text_values > 0


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [(None, False), ("gzip", True), ("gzip;q=0, identity", False), ("*", True), ("br", False)],
)
def test_gzip_follows_accept_encoding(smarteon_source, accept_encoding, gzipped):
    answer = smarteon_source.render_metrics_now("text/plain", accept_encoding)
    assert answer.gzipped is gzipped
    body = gzip.decompress(answer.body) if gzipped else answer.body
    assert b"\nloxone_up{" in body


def test_views_come_from_the_owner():
    owner = make_owner(["home", "office"])
    source = ExporterWebSource(owner)
    assert source.miniservers() == owner.views()


def test_process_families_map_counters_and_gauges_only():
    class Collector:
        def collect(self):
            counter = CounterMetricFamily("jobs", "Jobs done.", labels=["kind"], created=1.0)
            counter.add_metric(["a"], 3)
            yield counter
            gauge = GaugeMetricFamily("queue_length", "Waiting.", labels=["queue"])
            gauge.add_metric(["q1"], 7)
            yield gauge
            yield InfoMetricFamily("version", "Version.", value={"v": "1"})
            yield SummaryMetricFamily("latency_seconds", "Latency.", count_value=1, sum_value=2)

    families = {family.name: family for family in process_families(Collector())}
    assert set(families) == {"jobs_total", "queue_length"}
    assert families["jobs_total"].type == "counter"
    assert dict(families["jobs_total"].series) == {(("kind", "a"),): 3.0}  # no _created
    assert dict(families["queue_length"].series) == {(("queue", "q1"),): 7.0}


async def test_metrics_over_http(nursery):
    model = SimulatedMiniserver.generate(20, seed=1)
    owner = make_owner()
    start_streaming(owner, "home", model)
    shutdown = trio.Event()
    app = create_app(ExporterWebSource(owner))
    urls = await nursery.start(partial(serve_web, app, ["127.0.0.1:0"], shutdown))
    port = int(urls[0].rsplit(":", 1)[1])
    response = await http_request(
        port, "/metrics", headers=[("Accept", PROMETHEUS_ACCEPT), ("Accept-Encoding", "gzip")]
    )
    assert response.status == 200
    assert response.headers["content-type"] == CONTENT_TYPE_OPENMETRICS
    assert response.headers["content-encoding"] == "gzip"
    assert b'loxone_up{miniserver="home"} 1.0\n' in gzip.decompress(response.body)
    ready = await http_request(port, "/-/ready")
    assert ready.status == 200
    shutdown.set()


def whole(answer: MetricsBody) -> bytes:
    """The text of an answer: its segments joined, decompressed if it is gzipped."""
    body = answer.body if isinstance(answer.body, bytes) else b"".join(answer.body)
    return gzip.decompress(body) if answer.gzipped else body


def _without_duration(body: bytes) -> list[bytes]:
    """The samples that do not depend on when the render ran (render duration, process)."""
    return [
        line
        for line in body.splitlines()
        if not line.startswith((b"loxone_exporter_render_duration_seconds ", b"process_"))
    ]


async def test_a_scrape_lets_other_tasks_run_between_its_steps(smarteon_source):
    """The event loop is never held for a whole scrape (design 4): a task that only yields gets
    to run while ``render_metrics`` works, and the answer is what one render in one go gives."""
    turns = 0
    rendered = trio.Event()

    async def other_task() -> None:
        nonlocal turns
        while not rendered.is_set():
            turns += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_task)
        await trio.lowlevel.checkpoint()
        started = turns
        answer = await smarteon_source.render_metrics(None, "gzip")
        rendered.set()
    assert turns - started >= 2  # at least one step per Miniserver of the large families
    assert answer.gzipped
    fresh = ExporterWebSource(smarteon_source._owner).render_metrics_now(None, None).body
    assert _without_duration(whole(answer)) == _without_duration(fresh)


async def test_scrapes_at_the_same_time_render_one_after_the_other(smarteon_source):
    answers = []

    async def scrape(encoding: str | None) -> None:
        answers.append(await smarteon_source.render_metrics(None, encoding))

    async with trio.open_nursery() as nursery:
        for encoding in (None, "gzip", None):
            nursery.start_soon(scrape, encoding)
    assert {type(answer.body) for answer in answers} == {bytes, tuple}  # gzip: one piece
    bodies = [whole(answer) for answer in answers]
    fresh = ExporterWebSource(smarteon_source._owner).render_metrics_now(None, None).body
    assert all(_without_duration(body) == _without_duration(fresh) for body in bodies)


async def test_freed_memory_goes_back_once_scrapes_pause(autojump_clock):
    """One trim per burst of scrapes, ``TRIM_AFTER_SECONDS`` after its last scrape: none
    while scrapes follow each other closely, none while nobody scrapes."""
    trims: list[float] = []
    source = ExporterWebSource(
        make_owner(["home"]), release_memory=lambda: trims.append(trio.current_time())
    )
    for _ in range(3):
        await source.render_metrics(None, "gzip")
        last = trio.current_time()
        await trio.sleep(TRIM_AFTER_SECONDS / 2)
    assert trims == []
    await trio.sleep(60)
    assert trims == [last + TRIM_AFTER_SECONDS]
    await source.render_metrics(None, None)
    again = trio.current_time()
    await trio.sleep(60)
    assert trims == [last + TRIM_AFTER_SECONDS, again + TRIM_AFTER_SECONDS]


def test_glibc_takes_the_arena_limit_and_trims():
    """The allocator calls of ``_memory`` reach glibc where it is the C library, and are
    harmless no-ops elsewhere."""
    on_glibc = platform.libc_ver()[0] == "glibc"
    assert limit_malloc_arenas() is on_glibc
    release_free_memory()  # returns nothing either way; must not fail


async def test_a_render_under_way_at_the_deadline_trims_after_it_ends(autojump_clock):
    trims: list[float] = []
    source = ExporterWebSource(
        make_owner(["home"]), release_memory=lambda: trims.append(trio.current_time())
    )
    await source.render_metrics(None, None)
    async with source._rendering:  # a render that holds the lock past the deadline
        await trio.sleep(2 * TRIM_AFTER_SECONDS)
    assert trims == []
    await trio.sleep(60)
    assert trims == []  # nothing ended after the deadline: no trim is pending
    await source.render_metrics(None, None)
    again = trio.current_time()
    await trio.sleep(60)
    assert trims == [again + TRIM_AFTER_SECONDS]


async def test_a_push_render_leaves_the_scrape_duration_alone():
    source = ExporterWebSource(make_owner(["home"]))
    await source.render_metrics(None, None)  # a scrape: its duration is reported next time
    reported = source._previous_seconds
    assert reported is not None
    await source.render_metrics(None, None, scrape=False)  # the OTLP push's render
    assert source._previous_seconds == reported
    await source.render_metrics(None, None)
    assert source._previous_seconds != reported
