"""``check exporter.toml --structure LoxAPP3.json``: the series a config would export from a
structure file, counted offline (no Miniserver is contacted), so that ``[export]`` filters and
``max_series`` can be planned before connecting.

The plan is the one the exporter builds (``config.export_filter``, ``state.SeriesPlan``) and
the counting is ``state.series_counts``; this module only groups the Miniservers and writes
the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import StructureError
from ..state import SeriesCounts, SeriesPlan, series_counts
from ..structure import StructureLayout, layout_structure
from ._export_filter import export_filter
from ._model import Config

#: How many control types the table lists; the rest are summed on one line.
TYPES_SHOWN = 25

UPPER_BOUND_NOTE = (
    "# The structure file does not say which states are numbers and which are texts (the\n"
    "# event table a state arrives in decides), so value and text states are counted together\n"
    "# as control series (loxone_control_value, or the family of their unit): an upper bound\n"
    "# for each family. Not counted: the loxone_weather_* series (one per family with a\n"
    "# weather server) and the exporter's own.\n"
)


class StructureFileError(Exception):
    """The structure file cannot be read or parsed; the message says why."""


def read_layout(path: Path) -> StructureLayout:
    """The layout of the structure file at ``path``; ``StructureFileError`` if unusable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StructureFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return layout_structure(data)
    except StructureError as exc:
        raise StructureFileError(f"{path} is not a usable structure file: {exc}") from None


def describe_structure_series(config: Config, layout: StructureLayout, source: str) -> str:
    """The report of ``check --structure``: per group of Miniservers that share a limit, the
    series by family and by control type, and whether ``max_series`` cuts any."""
    groups: dict[int, list[str]] = {}
    for miniserver in config.miniservers:
        groups.setdefault(miniserver.series_limit(config.export), []).append(miniserver.name)
    if not groups:
        groups[config.export.max_series] = []
    info = layout.ms_info
    about = ", ".join(
        part
        for part in (
            f"Miniserver {info.ms_name!r}" if info.ms_name else "",
            f"project {info.project_name!r}" if info.project_name else "",
        )
        if part
    )
    lines = [
        f"# Series this config would export from {source}, counted offline"
        + (f" ({about})" if about else ""),
        UPPER_BOUND_NOTE.rstrip("\n"),
    ]
    if not layout.controls:
        lines.append("# warning: the file names no controls (is it a LoxAPP3.json?)")
    for limit, names in groups.items():
        # The miniserver label does not change how many series there are: any name will do.
        plan = SeriesPlan(layout, export_filter(config.export, limit), names[0] if names else "")
        lines += ["", *_group_report(names, series_counts(plan), config.export.include_text)]
    return "\n".join(lines) + "\n"


def _group_report(names: Sequence[str], counts: SeriesCounts, include_text: bool) -> list[str]:
    title = "miniserver" if len(names) == 1 else "miniservers"
    lines = [f"{title} {', '.join(names)}" if names else "every miniserver"]
    lines.append(
        f"  controls: {counts.controls_discovered} discovered, {counts.controls_exported} exported"
    )
    lines.append("  series by family:")
    width = max(len(name) for name, _ in counts.families)
    for family, series in counts.families:
        lines.append(f"    {family:<{width}}  {series:>8}")
        if include_text and family == "loxone_control_value":
            lines.append(f"    {'loxone_control_text':<{width}}  {'':>8}  (counted with {family})")
    lines.append(f"    {'total':<{width}}  {counts.total:>8}")
    if counts.controls_exported:
        ratio = counts.total / counts.controls_exported
        lines.append(f"  series per exported control: {ratio:.2f}")
    if counts.max_series is not None:
        if counts.series_limited:
            lines.append(
                f"  max_series {counts.max_series}: reached; {counts.series_limited} control "
                "series are left out (raise max_series or exclude states with "
                "[export] exclude_states)"
            )
        else:
            lines.append(
                f"  max_series {counts.max_series}: not reached "
                f"({counts.control_series} control series)"
            )
    if counts.by_control_type:
        lines.append("  control series by control type:")
        shown = counts.by_control_type[:TYPES_SHOWN]
        rest = counts.by_control_type[TYPES_SHOWN:]
        width = max(len("control type"), *(len(t.control_type) for t in shown))
        lines.append(f"    {'control type':<{width}}  {'controls':>8}  {'series':>8}")
        for entry in shown:
            lines.append(
                f"    {entry.control_type:<{width}}  {entry.controls:>8}  {entry.series:>8}"
            )
        if rest:
            others = f"({len(rest)} other types)"
            controls = sum(t.controls for t in rest)
            series = sum(t.series for t in rest)
            lines.append(f"    {others:<{width}}  {controls:>8}  {series:>8}")
    return lines
