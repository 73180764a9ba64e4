"""Optional OTLP metrics push (``pip install 'loxone-trio-exporter[otlp]'``).

``OtlpPusher`` sends the series of ``/metrics`` to an OpenTelemetry Protocol endpoint over HTTP
(``/v1/metrics``, protobuf body) every interval. Importing this package imports the extra's
``opentelemetry-proto`` and ``protobuf``: the supervisor imports it only when ``[otlp]`` is
configured, and the config loader refuses ``[otlp]`` when the extra is not installed.
"""

from ._encode import SCOPE_NAME, EncodedExport, build_request, encode_export
from ._http import (
    CONTENT_TYPE_PROTOBUF,
    RETRYABLE_STATUSES,
    Endpoint,
    OpenStream,
    PushFailed,
    post_export,
)
from ._parse import ParsedFamily, parse_exposition
from ._push import MAX_ATTEMPTS, RESULTS, Collect, OtlpPusher, PushSettings
from ._wiring import push_settings, pusher_for

__all__ = [
    "CONTENT_TYPE_PROTOBUF",
    "MAX_ATTEMPTS",
    "RESULTS",
    "RETRYABLE_STATUSES",
    "SCOPE_NAME",
    "Collect",
    "EncodedExport",
    "Endpoint",
    "OpenStream",
    "OtlpPusher",
    "ParsedFamily",
    "PushFailed",
    "PushSettings",
    "build_request",
    "encode_export",
    "parse_exposition",
    "post_export",
    "push_settings",
    "pusher_for",
]
