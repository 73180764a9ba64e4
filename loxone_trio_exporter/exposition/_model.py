"""The snapshot the state owner publishes and the renderer reads: immutable metric families.

A published family never changes: the state owner builds a new ``MetricFamily`` (and a new
``series`` mapping) for the next snapshot instead of mutating the old one. The renderer keys its
caches by series identity (family name + label set) and compares values, so reusing unchanged
label-set tuples and float objects from one snapshot to the next makes rendering cheaper, but is
not required for correct output.

Because nothing published changes, a mapping the renderer has written before can be recognised
by identity: a publisher that hands the very same ``series`` object (or the same part of a
``SeriesParts``) to the next snapshot saves the renderer from even comparing its values.
"""

from __future__ import annotations

import re
from collections.abc import ItemsView, Iterable, Iterator, Mapping, ValuesView
from itertools import chain
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


class SeriesParts(Mapping[LabelSet, float]):
    """The series of one family kept as several mappings (parts), in order, never merged.

    Lets a publisher share what did not change between snapshots instead of copying it into one
    new dict: e.g. one part per Miniserver, where an unchanged Miniserver's part is the same
    object in the next snapshot and the renderer skips it. Parts must not share a label set
    (a merged dict would keep one of them, the renderer would write both) and, like every
    published mapping, must never change once given.
    """

    __slots__ = ("parts",)

    def __init__(self, parts: Iterable[Mapping[LabelSet, float]]) -> None:
        self.parts: tuple[Mapping[LabelSet, float], ...] = tuple(parts)

    def __getitem__(self, labels: LabelSet) -> float:
        for part in self.parts:
            if labels in part:
                return part[labels]
        raise KeyError(labels)

    def __iter__(self) -> Iterator[LabelSet]:
        return chain.from_iterable(self.parts)

    def __len__(self) -> int:
        return sum(map(len, self.parts))

    # Mapping's views would look every key up again in all parts; these chain the parts' own.
    def items(self) -> ItemsView[LabelSet, float]:
        return _PartsItems(self)

    def values(self) -> ValuesView[float]:
        return _PartsValues(self)

    def __repr__(self) -> str:
        return f"SeriesParts({list(self.parts)!r})"


class _PartsItems(ItemsView[LabelSet, float]):
    _mapping: SeriesParts

    def __iter__(self) -> Iterator[tuple[LabelSet, float]]:
        return chain.from_iterable(part.items() for part in self._mapping.parts)


class _PartsValues(ValuesView[float]):
    _mapping: SeriesParts

    def __iter__(self) -> Iterator[float]:
        return chain.from_iterable(part.values() for part in self._mapping.parts)


@attrs.frozen
class MetricFamily:
    """One metric family: a name, its type and help text, and the value of each series.

    ``name`` is the sample name in both formats (a counter's name ends in ``_total``).
    ``series`` maps each label set to its value; floats (``nan`` and ``inf`` included), ints are
    written as floats. An empty ``series`` still renders its ``# HELP`` and ``# TYPE`` lines.
    A ``SeriesParts`` is rendered part by part, in order.
    """

    name: str = attrs.field(validator=_check_name)
    type: MetricType = attrs.field(validator=_check_type)
    help: str
    series: Mapping[LabelSet, float]


#: What the state owner publishes: the families in the order they are written.
Snapshot = tuple[MetricFamily, ...]
