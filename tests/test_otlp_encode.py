"""Snapshot -> text exposition -> OTLP request -> bytes -> the official classes decode the same
series: names, label values (escapes, any Unicode), values (NaN, infinities), types."""

from __future__ import annotations

import gzip
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from otlp_receiver import require_otlp_extra

from loxone_trio_exporter.exposition import MetricFamily, Renderer

pytestmark = pytest.mark.usefixtures("otlp_extra")

RESOURCE = {"service.name": "loxone-trio-exporter", "service.instance.id": "i-1"}


@pytest.fixture
def otlp_extra() -> None:
    require_otlp_extra()


def decode(body: bytes, *, gzipped: bool) -> object:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (  # noqa: PLC0415
        ExportMetricsServiceRequest,
    )

    return ExportMetricsServiceRequest.FromString(gzip.decompress(body) if gzipped else body)


_LABEL_VALUES = st.text(max_size=12)
_VALUES = st.floats(allow_nan=True, allow_infinity=True)
_SERIES = st.dictionaries(
    st.tuples(_LABEL_VALUES, _LABEL_VALUES).map(lambda p: (("miniserver", p[0]), ("state", p[1]))),
    _VALUES,
    max_size=5,
)


@given(gauges=_SERIES, counters=_SERIES, gzipped=st.booleans())
def test_every_series_round_trips(
    gauges: dict[tuple[tuple[str, str], ...], float],
    counters: dict[tuple[tuple[str, str], ...], float],
    gzipped: bool,
) -> None:
    from loxone_trio_exporter.otlp import encode_export  # noqa: PLC0415

    families = (
        MetricFamily("loxone_control_value", "gauge", "A gauge.", gauges),
        MetricFamily("loxone_exporter_events_total", "counter", "A counter.", counters),
    )
    text = Renderer().render(families).decode()
    export = encode_export(
        text,
        RESOURCE,
        scope_version="1.2.3",
        time_unix_nano=2_000,
        start_time_unix_nano=1_000,
        gzip=gzipped,
    )
    request = decode(export.body, gzipped=gzipped)
    (resource_metrics,) = request.resource_metrics  # type: ignore[attr-defined]
    attributes = {kv.key: kv.value.string_value for kv in resource_metrics.resource.attributes}
    assert attributes == RESOURCE
    (scope_metrics,) = resource_metrics.scope_metrics
    assert scope_metrics.scope.name == "loxone_trio_exporter"
    assert scope_metrics.scope.version == "1.2.3"
    metrics = {metric.name: metric for metric in scope_metrics.metrics}
    assert export.data_points == len(gauges) + len(counters)
    for name, series, kind in (
        ("loxone_control_value", gauges, "gauge"),
        ("loxone_exporter_events_total", counters, "sum"),
    ):
        if not series:
            assert name not in metrics
            continue
        metric = metrics[name]
        assert metric.WhichOneof("data") == kind
        data = getattr(metric, kind)
        got = {
            tuple((kv.key, kv.value.string_value) for kv in point.attributes): point
            for point in data.data_points
        }
        assert got.keys() == series.keys()
        for labels, value in series.items():
            point = got[labels]
            assert point.as_double == value or (math.isnan(value) and math.isnan(point.as_double))
            assert point.time_unix_nano == 2_000
            assert point.start_time_unix_nano == (1_000 if kind == "sum" else 0)
        if kind == "sum":
            assert data.is_monotonic
            assert data.aggregation_temporality == 2  # cumulative


def test_an_empty_exposition_is_a_request_without_metrics() -> None:
    from loxone_trio_exporter.otlp import encode_export  # noqa: PLC0415

    export = encode_export(
        "", RESOURCE, scope_version="1", time_unix_nano=1, start_time_unix_nano=1, gzip=False
    )
    request = decode(export.body, gzipped=False)
    (resource_metrics,) = request.resource_metrics  # type: ignore[attr-defined]
    (scope_metrics,) = resource_metrics.scope_metrics
    assert list(scope_metrics.metrics) == []
    assert export.data_points == 0


def test_a_family_named_with_a_unit_carries_it_in_ucum() -> None:
    from loxone_trio_exporter.otlp import encode_export  # noqa: PLC0415

    one = {(("miniserver", "home"),): 1.0}
    families = (
        MetricFamily("loxone_control_power_watts", "gauge", "W.", one, unit="watts"),
        MetricFamily(
            "loxone_control_meter_energy_joules_total", "counter", "J.", one, unit="joules"
        ),
        MetricFamily("loxone_weather_wind_speed_meters_per_second", "gauge", "m/s.", one),
        MetricFamily("loxone_control_flow_cubic_meters_per_second", "gauge", "m3/s.", one),
        MetricFamily("loxone_control_ratio", "gauge", "1.", one),
        MetricFamily("loxone_up", "gauge", "Up.", one),
    )
    text = Renderer().render(families).decode()
    export = encode_export(
        text, RESOURCE, scope_version="1", time_unix_nano=2, start_time_unix_nano=1, gzip=False
    )
    request = decode(export.body, gzipped=False)
    (resource_metrics,) = request.resource_metrics  # type: ignore[attr-defined]
    (scope_metrics,) = resource_metrics.scope_metrics
    units = {metric.name: metric.unit for metric in scope_metrics.metrics}
    assert units == {
        "loxone_control_power_watts": "W",
        "loxone_control_meter_energy_joules_total": "J",
        "loxone_weather_wind_speed_meters_per_second": "m/s",
        "loxone_control_flow_cubic_meters_per_second": "m3/s",
        "loxone_control_ratio": "1",
        "loxone_up": "",
    }
