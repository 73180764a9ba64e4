"""The two exposition formats, line by line: values, label sets, HELP and TYPE.

Both formats write a sample line the same way (``name{label="value",...} value``: same escaping
of label values, same number format, no timestamp), so the renderer's cache of sample lines
serves both; only the ``# HELP`` / ``# TYPE`` lines and the final ``# EOF`` differ:

- text 0.0.4: HELP escapes backslash and newline; a counter is declared under its sample name
  (``# TYPE loxone_exporter_events_total counter``), as prometheus_client does;
- OpenMetrics 1.0: HELP also escapes the double quote; a counter family is declared without
  ``_total`` (``# TYPE loxone_exporter_events counter``) while its sample keeps it; ``# EOF`` ends
  the exposition.

Labels are written in the order of the label set (prometheus_client sorts them; the parsed result
is the same). A family without series still gets its HELP and TYPE lines (as prometheus_client
writes them; ``promtool check metrics`` and both parsers accept them), so a dashboard can tell
"no Miniserver yet" from "unknown metric".
"""

from __future__ import annotations

import enum
import math

from ._model import COUNTER_SUFFIX, LabelSet, MetricFamily

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

EOF_LINE = b"# EOF\n"

# Lone surrogates (a JSON ``\ud800`` escape in a structure file) cannot be encoded as UTF-8;
# they become ``?`` instead of failing the whole scrape.
_ENCODE_ERRORS = "replace"


class Format(enum.Enum):
    """An exposition format; the value is the exact Content-Type to answer with."""

    TEXT = CONTENT_TYPE_TEXT
    OPENMETRICS = CONTENT_TYPE_OPENMETRICS

    @property
    def content_type(self) -> str:
        return self.value


_INF = float("inf")
_SPECIAL_VALUES = {_INF: b"+Inf", -_INF: b"-Inf"}


def format_value(value: float) -> bytes:
    """A sample value as prometheus_client writes it (``floatToGoString``), without newline.

    ``repr`` of the float (shortest round-trip form: ``1.0``, ``22.5``, ``1e+20``), ``+Inf``,
    ``-Inf``, ``NaN``; a positive number with more than six digits before the point switches to
    Go's exponent form (``1234567.0`` -> ``1.234567e+06``). Ints are written as floats. One
    deliberate difference: ``-0.0`` is written ``0.0`` (the renderer treats values that compare
    equal as the same sample, so both zeros must give the same text).
    """
    value = value + 0.0  # int -> float, -0.0 -> 0.0
    if -_INF < value < 1e6:
        return repr(value).encode()
    if 1e6 <= value < 1e16:  # positional repr with 7 to 16 digits before the point
        text = repr(value)
        dot = text.index(".")
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}".encode()
    if math.isnan(value):
        return b"NaN"
    return _SPECIAL_VALUES.get(value) or repr(value).encode()


def escape_label_value(value: str) -> str:
    """Backslash, double quote and newline escaped; everything else (UTF-8 too) passes."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    if "\n" in value:
        value = value.replace("\n", "\\n")
    return value


def label_pair(name: str, label: str, value: str) -> str:
    """``label="value"`` with the value escaped; raises ValueError for an invalid label name."""
    # ASCII identifiers are exactly [a-zA-Z_][a-zA-Z0-9_]*, and these checks run in C.
    if not (label.isascii() and label.isidentifier()) or label.startswith("__"):
        raise ValueError(f"{name}: invalid label name {label!r}")
    return f'{label}="{escape_label_value(value)}"'


# Written label pairs kept by ``series_prefix`` (most pairs repeat: miniserver, room, type...).
_PAIR_MEMO_LIMIT = 4096


def series_prefix(name: str, labels: LabelSet, pairs: dict[tuple[str, str], str]) -> bytes:
    """``name{label="value",...} `` for one series, ready for the value to be appended.

    ``pairs`` is a memo of written label pairs, filled here (and emptied when it is full).
    """
    if not labels:
        return f"{name} ".encode()
    parts = []
    for pair in labels:
        text = pairs.get(pair)
        if text is None:
            text = label_pair(name, *pair)
            if len(pairs) >= _PAIR_MEMO_LIMIT:
                pairs.clear()
            pairs[pair] = text
        parts.append(text)
    return f"{name}{{{','.join(parts)}}} ".encode("utf-8", _ENCODE_ERRORS)


def family_header(family: MetricFamily, fmt: Format) -> bytes:
    """The ``# HELP`` and ``# TYPE`` lines of a family in ``fmt`` (and OpenMetrics' ``# UNIT``)."""
    text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
    name = family.name
    if fmt is Format.OPENMETRICS:
        text = text.replace('"', '\\"')
        if family.type == "counter":
            name = name[: -len(COUNTER_SUFFIX)]
    header = f"# HELP {name} {text}\n# TYPE {name} {family.type}\n"
    if fmt is Format.OPENMETRICS and family.unit:
        header += f"# UNIT {name} {family.unit}\n"
    return header.encode("utf-8", _ENCODE_ERRORS)
