"""How many series a plan exports, by family and by control type: ``series_counts``.

The one place that counts a plan's series: ``check --structure`` prints it, offline. It reads
the plan as the exporter builds it, so what it counts is what the exporter would export once
every state has sent a value. A structure file says which states a control has, not whether
a state is a number or a text (the event table it arrives in decides), so each control series
is counted once, as a value series: ``loxone_control_value`` and ``loxone_control_text``
together never hold more (an upper bound for each).
"""

from __future__ import annotations

from collections import Counter

import attrs

from ._plan import SeriesPlan
from ._typed import FAMILIES, FAMILY_OF_UNIT, VALUE

#: The family of control series without a known unit; see ``control_series_family``.
CONTROL_VALUE_FAMILY = VALUE.name


@attrs.frozen
class TypeCounts:
    """One control type: its exported controls and their control series."""

    control_type: str
    controls: int
    series: int


@attrs.frozen
class SeriesCounts:
    """The series of one plan (``series_counts``).

    ``families`` holds (family, series) in exposition order, families without series
    included; ``by_control_type`` is sorted by series, most first.
    """

    families: tuple[tuple[str, int], ...]
    by_control_type: tuple[TypeCounts, ...]
    controls_discovered: int
    controls_exported: int
    #: ``max_series`` of the plan (``None``: no limit) and the series it left out.
    max_series: int | None
    series_limited: int

    @property
    def total(self) -> int:
        return sum(series for _, series in self.families)

    @property
    def control_series(self) -> int:
        """Series of controls' states (every family but info, daytimers and globals)."""
        return sum(t.series for t in self.by_control_type)


def control_series_family(plan: SeriesPlan, series: int) -> str:
    """The family control series ``series`` of ``plan`` is exported in."""
    return FAMILIES[FAMILY_OF_UNIT[plan.series_unit[series]]].name


def series_counts(plan: SeriesPlan) -> SeriesCounts:
    """Count what ``plan`` exports: control series by family and by control type, info,
    daytimer and global series. Weather families (one series each when the structure names a
    weather server) and the exporter's own families are not counted."""
    controls = plan.layout.controls
    families: Counter[str] = Counter({CONTROL_VALUE_FAMILY: 0})
    series_of_type: Counter[str] = Counter()
    for series, position in enumerate(plan.series_control):
        families[control_series_family(plan, series)] += 1
        series_of_type[controls[position].type] += 1
    controls_of_type: Counter[str] = Counter(
        control.type
        for control, text in zip(controls, plan.control_text, strict=True)
        if text  # an exported control has its labels rendered
    )
    # A global state an exported control owns feeds that control's series, not its own.
    global_series = {number for numbers in plan.complex_global for number in numbers}
    families["loxone_control_info"] = len(plan.info_suffix)
    families["loxone_global_value"] = len(global_series)
    families["loxone_daytimer_entries"] = len(plan.daytimer_control)
    by_type = sorted(
        (
            TypeCounts(name, controls_of_type[name], series_of_type[name])
            for name in controls_of_type
        ),
        key=lambda t: (-t.series, -t.controls, t.control_type),
    )
    return SeriesCounts(
        families=tuple(families.items()),
        by_control_type=tuple(by_type),
        controls_discovered=plan.layout.controls_discovered,
        controls_exported=plan.controls_exported,
        max_series=plan.export_filter.max_series,
        series_limited=plan.series_limited,
    )
