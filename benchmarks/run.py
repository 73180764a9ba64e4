"""The benchmark suite's entry point: ``python -m benchmarks [options]``.

Runs the scenarios of design section 4 (one per budget, plus the scale case of section 5),
prints a table with the median, min and max of every figure and the budget beside it, and
writes the same as JSON (and, with ``--markdown``, as a Markdown table for docs/benchmarks.md).
Not part of the test run; ``tests/test_benchmarks_smoke.py`` runs ``--quick`` to keep it working.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from . import (
    auth_flood,
    decode,
    freshness,
    hostile,
    otlp_push,
    render,
    resources,
    scale,
    shutdown,
    throughput,
)
from ._results import Figure, machine, markdown_table, text_table, write_json
from ._settings import Settings, quick_settings

Scenario = Callable[[Settings], list[Figure]]

#: name -> what it runs, in the order of design section 4.
SCENARIOS: dict[str, Scenario] = {
    "render": render.run,
    "decode": decode.run,
    "throughput": throughput.run,
    "freshness": freshness.run,
    "memory": resources.run_memory,
    "idle": resources.run_idle_cpu,
    "shutdown": shutdown.run,
    "scale": scale.run,
    "auth_flood": auth_flood.run,
    "hostile": hostile.run,
    "otlp": otlp_push.run,
}
DEFAULT_JSON = Path(__file__).resolve().parent / "results.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure the exporter against the budgets of design section 4.",
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"run only these (default: all): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and short windows: a smoke run"
    )
    parser.add_argument("--runs", type=int, help="repetitions of each measurement (default 5)")
    parser.add_argument(
        "--render-series", type=int, nargs="+", metavar="N", help="value series to render"
    )
    parser.add_argument(
        "--memory-series", type=int, nargs="+", metavar="N", help="value series to hold"
    )
    parser.add_argument("--idle-seconds", type=float, help="one idle CPU run's window (60)")
    parser.add_argument("--throughput-rate", type=float, help="events/s asked of the simulator")
    parser.add_argument(
        "--scale",
        type=int,
        nargs=2,
        metavar=("MINISERVERS", "CONTROLS"),
        help="the scale case's Miniservers and controls each (100 1000)",
    )
    parser.add_argument("--scale-runs", type=int, help="exporter starts of the scale case (5)")
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help="where to write the figures as JSON (default benchmarks/results.json)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    return args


def settings_from(args: argparse.Namespace, workdir: Path) -> Settings:
    settings = quick_settings(workdir) if args.quick else Settings(workdir=workdir)
    changes: dict[str, Any] = {}
    if args.runs is not None:
        changes["runs"] = args.runs
    if args.render_series:
        changes["render_series"] = tuple(args.render_series)
    if args.memory_series:
        changes["memory_series"] = tuple(args.memory_series)
    if args.idle_seconds is not None:
        changes["idle_seconds"] = args.idle_seconds
    if args.throughput_rate is not None:
        changes["throughput_rate"] = args.throughput_rate
    if args.scale:
        changes["scale_miniservers"], changes["scale_controls"] = args.scale
    if args.scale_runs is not None:
        changes["scale_runs"] = args.scale_runs
    return attrs.evolve(settings, **changes)


def run_scenarios(
    names: Sequence[str], settings: Settings, *, progress: Callable[[str], None] | None = None
) -> list[Figure]:
    """Every figure of the scenarios ``names`` (all when empty), in the order of ``SCENARIOS``."""
    figures: list[Figure] = []
    for name, scenario in SCENARIOS.items():
        if names and name not in names:
            continue
        started = time.monotonic()
        if progress:
            progress(f"{name}: running")
        workdir = settings.workdir / name  # logs and configs of each scenario apart
        workdir.mkdir(parents=True, exist_ok=True)
        figures += scenario(attrs.evolve(settings, workdir=workdir))
        if progress:
            progress(f"{name}: done in {time.monotonic() - started:.0f} s")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    machine_info = machine()
    load = machine_info["load_average_at_start"][0]
    if load > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load:.2f} at the start: figures will be noisy", flush=True)
    with tempfile.TemporaryDirectory(prefix="loxone-benchmarks-") as workdir:
        settings = settings_from(args, Path(workdir))
        figures = run_scenarios(
            args.scenarios, settings, progress=lambda line: print(line, file=sys.stderr, flush=True)
        )
    recorded = attrs.asdict(settings, value_serializer=lambda _i, _a, v: _plain(v))
    recorded["quick"] = args.quick
    write_json(args.json, figures, machine_info, recorded)
    print(text_table(figures))
    print(f"\nmachine: {_describe(machine_info)}")
    print(f"written to {args.json}")
    if args.markdown:
        args.markdown.write_text(markdown_table(figures) + "\n", encoding="utf-8")
        print(f"and as Markdown to {args.markdown}")
    return 0


def _plain(value: object) -> object:
    return str(value) if isinstance(value, Path) else value


def _describe(info: dict[str, object]) -> str:
    return (
        f"{info.get('cpu', 'unknown CPU')}, {info.get('cores')} cores, "
        f"{info.get('memory_mb', '?')} MB, Python {info.get('python')}, "
        f"load average at the start {info.get('load_average_at_start')}"
    )
