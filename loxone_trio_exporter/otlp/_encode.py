"""Text exposition -> OTLP ``ExportMetricsServiceRequest`` bytes (the protobuf body of a push).

The push sends what ``/metrics`` serves: the text format 0.0.4 body, rendered from the same
snapshot, is read back (``_parse``) and each sample becomes a data point. A gauge family becomes
an OTLP Gauge; a counter family a cumulative, monotonic Sum whose start time is when the exporter
started counting (its counters begin at 0 with the process). Labels become string attributes;
the metric name is the family's name on ``/metrics``, so ``loxone_exporter_events_total`` keeps
its ``_total`` (backends that translate OTLP back to Prometheus names do not add a second one).

Pure and blocking (about 0.15 s for 10k value series): the pusher runs it in a worker thread.
Imports the optional ``opentelemetry-proto`` and ``protobuf`` packages (the ``otlp`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import attrs
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, NumberDataPoint

from ..exposition import gzip_bytes
from ._parse import parse_exposition

#: The instrumentation scope every metric is reported under.
SCOPE_NAME = "loxone_trio_exporter"


@attrs.frozen
class EncodedExport:
    """One push body: the protobuf bytes (gzipped when ``gzipped``) and how many points."""

    body: bytes
    gzipped: bool
    data_points: int
    uncompressed_bytes: int


#: Unit words that end Prometheus names -> UCUM, as OTLP writes units; the longest first, so
#: that ``_meters_per_second`` is not read as ``_second``.
_UCUM_UNITS: tuple[tuple[str, str], ...] = (
    ("_cubic_meters_per_second", "m3/s"),
    ("_watts_per_square_meter", "W/m2"),
    ("_meters_per_second", "m/s"),
    ("_cubic_meters", "m3"),
    ("_amperes", "A"),
    ("_celsius", "Cel"),
    ("_degrees", "deg"),
    ("_joules", "J"),
    ("_pascals", "Pa"),
    ("_seconds", "s"),
    ("_meters", "m"),
    ("_hertz", "Hz"),
    ("_volts", "V"),
    ("_watts", "W"),
    ("_bytes", "By"),
    ("_ratio", "1"),
    ("_lux", "lx"),
)


def otlp_unit(name: str) -> str:
    """The UCUM unit of a family named with a Prometheus unit (``loxone_control_power_watts``
    -> ``W``; a counter's ``_total`` is not part of it); ``''`` for a name without one."""
    name = name.removesuffix("_total")
    for suffix, unit in _UCUM_UNITS:
        if name.endswith(suffix):
            return unit
    return ""


def build_request(
    text: str,
    resource: Mapping[str, str],
    *,
    scope_version: str,
    time_unix_nano: int,
    start_time_unix_nano: int,
) -> ExportMetricsServiceRequest:
    """The request for a text-format body; every family is one metric, every sample a point."""
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    _set_attributes(resource_metrics.resource.attributes.add, resource.items())
    scope_metrics = resource_metrics.scope_metrics.add()
    scope_metrics.scope.name = SCOPE_NAME
    scope_metrics.scope.version = scope_version
    for family in parse_exposition(text):
        if family.type not in ("gauge", "counter") or not family.samples:
            continue  # the exposition writes these two types only; an empty family has no point
        metric = scope_metrics.metrics.add()
        metric.name = family.name
        metric.description = family.help
        metric.unit = otlp_unit(family.name)
        if family.type == "counter":
            metric.sum.aggregation_temporality = (
                AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
            )
            metric.sum.is_monotonic = True
            add_point = metric.sum.data_points.add
            start = start_time_unix_nano
        else:
            add_point = metric.gauge.data_points.add
            start = 0  # a gauge has no start time
        for labels, value in family.samples:
            point: NumberDataPoint = add_point()
            point.as_double = value
            point.time_unix_nano = time_unix_nano
            if start:
                point.start_time_unix_nano = start
            _set_attributes(point.attributes.add, labels)
    return request


def encode_export(
    text: str,
    resource: Mapping[str, str],
    *,
    scope_version: str,
    time_unix_nano: int,
    start_time_unix_nano: int,
    gzip: bool,
) -> EncodedExport:
    """``build_request`` serialized, and gzipped when asked."""
    request = build_request(
        text,
        resource,
        scope_version=scope_version,
        time_unix_nano=time_unix_nano,
        start_time_unix_nano=start_time_unix_nano,
    )
    points = sum(
        len(metric.sum.data_points) + len(metric.gauge.data_points)
        for resource_metrics in request.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    )
    raw = bytes(request.SerializeToString())
    body = gzip_bytes(raw) if gzip else raw
    return EncodedExport(body, gzip, points, len(raw))


def _set_attributes(add: Callable[[], KeyValue], pairs: Iterable[tuple[str, str]]) -> None:
    for key, value in pairs:
        attribute = add()
        attribute.key = key
        attribute.value.string_value = value
