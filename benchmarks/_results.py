"""Figures, budgets, and how they are printed (a plain table, Markdown) and written (JSON)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs


@attrs.frozen
class Budget:
    """A limit from design section 4: the median must be ``<=`` (or ``>=``) ``limit``."""

    direction: Literal["<=", ">="]
    limit: float

    def met_by(self, value: float) -> bool:
        return value <= self.limit if self.direction == "<=" else value >= self.limit

    def __str__(self) -> str:
        return f"{self.direction} {_number(self.limit)}"


def at_most(limit: float) -> Budget:
    return Budget("<=", limit)


def at_least(limit: float) -> Budget:
    return Budget(">=", limit)


@attrs.frozen
class Figure:
    """One measured quantity: every run's value; the table shows median, min and max."""

    scenario: str
    name: str
    unit: str
    samples: tuple[float, ...]
    budget: Budget | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def status(self) -> str:
        """``met``, ``MISSED``, or ``""`` for a figure without a budget."""
        if self.budget is None:
            return ""
        return "met" if self.budget.met_by(self.median) else "MISSED"

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "name": self.name,
            "unit": self.unit,
            "median": self.median,
            "min": min(self.samples),
            "max": max(self.samples),
            "runs": len(self.samples),
            "samples": list(self.samples),
            "budget": None if self.budget is None else str(self.budget),
            "status": self.status,
            "note": self.note,
        }


def figure(
    scenario: str,
    name: str,
    unit: str,
    samples: Iterable[float],
    budget: Budget | None = None,
    *,
    note: str = "",
) -> Figure:
    values = tuple(float(sample) for sample in samples)
    if not values:
        raise ValueError(f"{scenario}: {name}: no samples")
    return Figure(scenario, name, unit, values, budget, note)


def _number(value: float) -> str:
    """Three significant digits, no exponent for the magnitudes these figures have."""
    if value != value:  # nan  # noqa: PLR0124
        return "nan"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


_HEADINGS = ("scenario", "figure", "median", "min", "max", "unit", "runs", "budget", "status")


def _rows(figures: Sequence[Figure]) -> list[tuple[str, ...]]:
    return [
        (
            f.scenario,
            f.name,
            _number(f.median),
            _number(min(f.samples)),
            _number(max(f.samples)),
            f.unit,
            str(len(f.samples)),
            "" if f.budget is None else str(f.budget),
            f.status,
        )
        for f in figures
    ]


def text_table(figures: Sequence[Figure]) -> str:
    rows = [_HEADINGS, *_rows(figures)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_HEADINGS))]
    numeric = {2, 3, 4, 6}
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if column in numeric else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def markdown_table(figures: Sequence[Figure]) -> str:
    lines = [
        "| " + " | ".join(_HEADINGS) + " |",
        "|" + "|".join("---:" if i in {2, 3, 4, 6} else "---" for i in range(len(_HEADINGS))) + "|",
    ]
    for row in _rows(figures):
        cells = list(row)
        if cells[-1] == "MISSED":
            cells[-1] = "**MISSED**"
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU, cores, memory, Python, load at the start."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_mb"] = int(line.split()[1]) // 1024
                break
    except OSError:
        pass  # not Linux: the rest still says enough
    return info


def write_json(
    path: Path, figures: Sequence[Figure], machine_info: dict[str, Any], settings: dict[str, Any]
) -> None:
    document = {
        "machine": machine_info,
        "settings": settings,
        "load_average_at_end": list(os.getloadavg()),
        "figures": [f.as_json() for f in figures],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
