"""The benchmark suite at tiny sizes (``python -m benchmarks --quick``): it keeps working.

Every scenario must produce its figures, each with samples, a unit and (where design 4 sets
one) its budget. Speed is never asserted here: these sizes measure nothing. The scenarios that
start a simulator and an exporter process run side by side, so the whole takes a few seconds.
"""

from __future__ import annotations

import json
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the suite lives beside the package, not in it
    sys.path.insert(0, str(ROOT))

from benchmarks import run as suite  # noqa: E402
from benchmarks._results import Figure  # noqa: E402
from benchmarks._settings import quick_settings  # noqa: E402

#: Figures every scenario must produce (by name fragment), and the budgets that must be beside
#: them, so a scenario that silently stops measuring something fails here.
EXPECTED: dict[str, list[tuple[str, str | None]]] = {
    "render": [
        ("all changed, text", None),
        ("1% changed, text", None),
        ("all changed, OpenMetrics", None),
        ("1% changed, OpenMetrics", None),
        ("all changed, text + gzip", None),
        ("prometheus_client generate_latest", None),
        ("speed-up over generate_latest, all changed", ">= 20"),
    ],
    "decode+apply": [("value tables of", ">= 500,000")],
    "throughput": [
        ("events/s decoded and applied", ">= 50,000"),
        ("events/s sent by the simulator", None),
        ("events lost", "<= 0"),
        ("sessions restarted", "<= 0"),
    ],
    "freshness": [("p50", None), ("p99", "<= 50.0")],
    "memory": [("imports only", None), ("RSS, 300 value series", None)],
    "idle CPU": [
        ("exporter CPU, share of one core", None),
        ("floor CPU", None),
        ("exporter CPU / floor CPU", "<= 1.50"),
    ],
    "shutdown": [("SIGTERM -> process exit", "<= 1,000"), ("exit code", "<= 0")],
    "hostile": [
        ("RSS growth, unknown-UUID value tables", "<= 10"),
        ("RSS growth, new-UUID text tables", "<= 10"),
        ("RSS growth, 15 MiB value tables", "<= 10"),
        ("RSS growth over refused over-limit structures", "<= 10"),
    ],
    "auth flood": [
        ("valid uncached credential, no flood", None),
        ("same wrong password: valid uncached credential", "<= 1,000"),
        ("from 127.0.0.2: valid uncached credential", "<= 1,000"),
        ("flood answers other than 401", "<= 0"),
    ],
    "scale": [
        ("start -> all Miniservers streaming", None),
        ("render, as the exporter reports it", None),
        ("RSS", None),
        ("longest event-loop step during scrapes with gzip", "<= 50"),
    ],
}
IN_PROCESS = ("render", "decode")


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> list[Figure]:
    settings = quick_settings(tmp_path_factory.mktemp("benchmarks"))
    results = suite.run_scenarios(IN_PROCESS, settings)
    processes = [name for name in suite.SCENARIOS if name not in IN_PROCESS]
    with ThreadPoolExecutor(max_workers=len(processes)) as pool:
        for found in pool.map(lambda name: suite.run_scenarios([name], settings), processes):
            results += found
    return results


def test_every_scenario_produces_its_figures(figures: list[Figure]) -> None:
    for scenario, expected in EXPECTED.items():
        mine = [f for f in figures if f.scenario == scenario]
        assert mine, f"no figures from {scenario}"
        for fragment, budget in expected:
            matching = [f for f in mine if fragment in f.name]
            assert matching, f"{scenario}: no figure named like {fragment!r}"
            for found in matching:
                if budget is not None:
                    assert str(found.budget).startswith(budget.split(",")[0]), found
                    assert found.status in {"met", "MISSED"}


def test_every_figure_has_finite_samples_and_a_unit(figures: list[Figure]) -> None:
    for found in figures:
        assert found.samples, found
        assert found.unit, found
        assert all(math.isfinite(sample) for sample in found.samples), found
    by_name = {(f.scenario, f.name): f for f in figures}
    assert by_name[("throughput", "events lost (sent - counted, after draining)")].median == 0
    assert by_name[("shutdown", "runs whose exit code was not 0")].median == 0


def test_table_and_json_hold_every_figure(figures: list[Figure], tmp_path: Path) -> None:
    from benchmarks._results import markdown_table, text_table, write_json  # noqa: PLC0415

    table = text_table(figures)
    markdown = markdown_table(figures)
    for found in figures:
        assert found.name in table
        assert found.name in markdown
    path = tmp_path / "results.json"
    write_json(path, figures, {"cores": 2}, {"quick": True})
    document = json.loads(path.read_text("utf-8"))
    assert len(document["figures"]) == len(figures)
    first = document["figures"][0]
    assert {"median", "min", "max", "runs", "budget", "status", "unit"} <= set(first)


def test_command_line_runs_a_subset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out.json"
    markdown = tmp_path / "out.md"
    assert (
        suite.main(["decode", "--quick", "--json", str(output), "--markdown", str(markdown)]) == 0
    )
    document = json.loads(output.read_text("utf-8"))
    assert {f["scenario"] for f in document["figures"]} == {"decode+apply"}
    assert document["settings"]["quick"] is True
    assert "decode+apply" in capsys.readouterr().out
    assert markdown.read_text("utf-8").startswith("| scenario |")
