"""The snapshot the state owner publishes and the renderer reads: immutable metric families.

A published family never changes: the state owner builds a new ``MetricFamily`` for the next
snapshot instead of mutating the old one. A family's series are a plain mapping of label sets to
values (small families), or ``SeriesParts``: parts that keep their series in columns and render
their own lines (``LinesPart``), one per Miniserver for the large families. Because nothing
published changes, a part the renderer has written before is recognised by identity: a publisher
that hands the very same part to the next snapshot saves the renderer from even reading it.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

import attrs

#: ``((label name, label value), ...)`` in the order the labels are written; the order is part of
#: the series' identity for the renderer's caches, so a publisher keeps it fixed.
LabelSet = tuple[tuple[str, str], ...]

MetricType = Literal["gauge", "counter"]

METRIC_TYPES: frozenset[str] = frozenset({"gauge", "counter"})

# The classic ("legacy") character set: valid in text format 0.0.4, OpenMetrics 1.0 and every
# ``escaping=`` scheme a scraper may ask for, so names are never quoted or rewritten. Label names
# ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__") are checked when a series is first written.
METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

COUNTER_SUFFIX = "_total"


def _check_name(instance: MetricFamily, attribute: attrs.Attribute[str], name: str) -> None:
    if not METRIC_NAME_RE.fullmatch(name):
        raise ValueError(f"invalid metric name {name!r}")


def _check_type(instance: MetricFamily, attribute: attrs.Attribute[str], kind: str) -> None:
    if kind not in METRIC_TYPES:
        raise ValueError(f"{instance.name}: metric type must be 'gauge' or 'counter', not {kind!r}")
    # The sample of a counter is named like its family in both formats; OpenMetrics declares the
    # family without the suffix, so the suffix must be there (and something before it).
    if kind == "counter" and (
        not instance.name.endswith(COUNTER_SUFFIX) or len(instance.name) == len(COUNTER_SUFFIX)
    ):
        raise ValueError(f"counter name must end in {COUNTER_SUFFIX!r}: {instance.name!r}")


def _check_unit(instance: MetricFamily, attribute: attrs.Attribute[str], unit: str) -> None:
    if not unit:
        return
    family = instance.name
    if instance.type == "counter":
        family = family[: -len(COUNTER_SUFFIX)]
    if not family.endswith(f"_{unit}"):
        raise ValueError(f"{instance.name}: the name must end in its unit {unit!r}")


class LinesPart(abc.ABC):
    """Series a publisher keeps in columns and renders itself: part of a ``SeriesParts``.

    ``values`` holds the value of each series as native doubles (``array("d").tobytes()``), in
    the order the lines are written; ``lines`` writes the sample lines of series ``start`` up to
    ``stop``, given the family's ``head`` (``name{``) and the value text of each (with its
    newline). A part never changes once published.

    ``lineage``: two parts with the same lineage (``None`` means none) describe the same series
    at the same positions, a later one perhaps with more series after them, so the renderer
    keeps the lines of series whose value bytes did not change.
    """

    __slots__ = ()

    values: bytes
    lineage: object | None
    #: ``convert(start, stop, values)``: the values of series ``start`` to ``stop`` in the unit
    #: the family's name carries, where the part keeps them in another (kW for ``_watts``).
    #: The renderer compares the stored values and formats the converted ones.
    convert: Callable[[int, int, Sequence[float]], Sequence[float]] | None = None

    def __len__(self) -> int:
        return len(self.values) // 8

    @abc.abstractmethod
    def lines(self, head: bytes, start: int, stop: int, texts: Sequence[bytes]) -> bytes:
        """The sample lines of series ``start`` to ``stop`` (``texts``: their value texts)."""


class SeriesParts:
    """The series of one family in several parts (e.g. one per Miniserver), in order.

    An unchanged part is the very same object in the next snapshot, and the renderer then
    takes its lines as they are. Parts must not share a series.
    """

    __slots__ = ("parts",)

    def __init__(self, parts: Iterable[LinesPart]) -> None:
        self.parts: tuple[LinesPart, ...] = tuple(parts)

    def __len__(self) -> int:
        return sum(map(len, self.parts))

    def __repr__(self) -> str:
        return f"SeriesParts({list(self.parts)!r})"


@attrs.frozen
class MetricFamily:
    """One metric family: a name, its type and help text, and the value of each series.

    ``name`` is the sample name in both formats (a counter's name ends in ``_total``).
    ``series`` maps each label set to its value; floats (``nan`` and ``inf`` included), ints are
    written as floats. An empty ``series`` still renders its ``# HELP`` and ``# TYPE`` lines.
    A ``SeriesParts`` is rendered part by part, in order (the large families). ``unit``, where
    given, is written as OpenMetrics' ``# UNIT`` line; the name must end in it (before
    ``_total``), as OpenMetrics asks.
    """

    name: str = attrs.field(validator=_check_name)
    type: MetricType = attrs.field(validator=_check_type)
    help: str
    series: Mapping[LabelSet, float] | SeriesParts
    unit: str = attrs.field(default="", kw_only=True, validator=_check_unit)


#: What the state owner publishes: the families in the order they are written.
Snapshot = tuple[MetricFamily, ...]
