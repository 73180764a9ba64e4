"""Snapshot -> Prometheus text format 0.0.4 / OpenMetrics 1.0 bytes, and content negotiation.

Pure: no trio, no web framework, no prometheus_client. The state owner publishes a ``Snapshot``
(a tuple of frozen ``MetricFamily``); the web layer picks the format with ``choose_format`` and
the encoding with ``wants_gzip``, renders with one long-lived ``Renderer`` and answers with
``fmt.content_type``.
"""

from ._model import LabelSet, LinesPart, MetricFamily, MetricType, SeriesParts, Snapshot
from ._negotiate import (
    GZIP_LEVEL,
    choose_format,
    gzip_bytes,
    gzip_segments,
    segments,
    wants_gzip,
)
from ._renderer import Renderer, RendererStatistics
from ._text import (
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_TEXT,
    Format,
    escape_label_value,
    format_value,
)

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "GZIP_LEVEL",
    "Format",
    "LabelSet",
    "LinesPart",
    "MetricFamily",
    "MetricType",
    "Renderer",
    "RendererStatistics",
    "SeriesParts",
    "Snapshot",
    "choose_format",
    "escape_label_value",
    "format_value",
    "gzip_bytes",
    "gzip_segments",
    "segments",
    "wants_gzip",
]
