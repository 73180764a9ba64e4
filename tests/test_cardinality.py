"""Cardinality under control (issue 16, item 3): ``[export] exclude_states``, ``max_series``,
``loxone_exporter_series`` and ``check --structure``.

Plans are checked against the reference exposition's own walk of the parsed structure
(``reference_exposition._Series``) and counts against ``structure_oracle``'s walk of the JSON;
neither uses the plan's code.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import attrs
import pytest
import structure_oracle
import trio
from exporter_harness import (
    miniserver,
    poll_async,
    select,
    start_exporter,
    start_simulator,
    value_of,
)
from http_client import http_request
from owner_feed import make_owner, series_of, start_streaming
from prometheus_client.parser import text_string_to_metric_families
from reference_exposition import _Series
from structure_oracle import expected_control_values

from loxone_trio_exporter.cli import main
from loxone_trio_exporter.config import ExportConfig, config_from_dict, export_filter
from loxone_trio_exporter.logs import STATE_LOGGER
from loxone_trio_exporter.runtime import plan_reload
from loxone_trio_exporter.simulator import SimulatedMiniserver, generate_structure
from loxone_trio_exporter.state import FAMILIES, ExportFilter, SeriesPlan, series_counts
from loxone_trio_exporter.structure import layout_structure, load_structure

FIXTURES = ("loxone-java-showroom.LoxAPP3.json", "smarteon-2025.LoxAPP3.json")
LabelSet = frozenset[tuple[str, str]]


def plan_of(text: str, export: ExportConfig, max_series: int | None = None) -> SeriesPlan:
    return SeriesPlan(layout_structure(text), export_filter(export, max_series), "home")


def parsed(text: bytes) -> LabelSet:
    (parsed_family,) = text_string_to_metric_families(f"x{{{text.decode()}}} 1\n")
    return frozenset(parsed_family.samples[0].labels.items())


def plan_series(plan: SeriesPlan) -> list[LabelSet]:
    """The plan's control series as label sets, in series order."""
    return [
        parsed(plan.control_text[control] + plan.state_text[series])
        for series, control in enumerate(plan.series_control)
    ]


def reference_series(text: str, export: ExportConfig) -> tuple[set[LabelSet], _Series]:
    series = _Series("home", load_structure(text), export)
    return {frozenset(labels) for owners in series.values.values() for labels in owners}, series


def generated_text() -> str:
    return json.dumps(generate_structure(40, seed=5))


def texts(shared_fixture) -> list[str]:
    return [generated_text(), *(shared_fixture(name).read_text("utf-8") for name in FIXTURES)]


# --- exclude_states ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exclude_states",
    [
        ("value",),  # one name on every type
        ("*",),  # every state: controls stay, no control series
        ("temperatures",),  # a list state by its name: every element
        ("temperatures[[]3]", "IRoomController:mode*"),  # one element; a glob on one type
        ("Switch:active", "Dimmer:*", "position*"),
        ("NoSuchType:*",),
    ],
)
def test_excluded_states_are_the_reference_s(shared_fixture, exclude_states):
    export = ExportConfig(exclude_states=exclude_states)
    for text in texts(shared_fixture):
        plan = plan_of(text, export)
        expected, reference = reference_series(text, export)
        assert set(plan_series(plan)) == expected
        assert len(plan.series_control) == reference.series_exported
        assert plan.controls_exported == reference.exported  # controls are not states
        everything = plan_of(text, ExportConfig())
        # Every state stays known: excluded ones are no strangers.
        assert plan.index.keys() == everything.index.keys()


def test_a_list_state_matches_by_name_or_by_its_label(shared_fixture):
    text = shared_fixture("loxone-java-showroom.LoxAPP3.json").read_text("utf-8")
    states = {dict(labels)["state"] for labels in plan_series(plan_of(text, ExportConfig()))}
    assert "temperatures[3]" in states
    for entry, gone in [
        ("temperatures", {f"temperatures[{i}]" for i in range(7)}),
        ("temperatures[3]", {"temperatures[3]"}),  # as it is, not as a character class
        ("temperatures[[]3]", {"temperatures[3]"}),  # the glob of the same label
        ("IRoomController:temperatures", {f"temperatures[{i}]" for i in range(7)}),
    ]:
        plan = plan_of(text, ExportConfig(exclude_states=(entry,)))
        left = {dict(labels)["state"] for labels in plan_series(plan)}
        assert left == states - gone, entry


def test_excluding_the_daytimer_state_drops_the_daytimer_series(shared_fixture):
    text = shared_fixture("loxone-java-showroom.LoxAPP3.json").read_text("utf-8")
    assert len(plan_of(text, ExportConfig()).daytimer_control) == 2
    plan = plan_of(text, ExportConfig(exclude_states=("entriesAndDefaultValue",)))
    assert len(plan.daytimer_control) == 0
    assert not plan.daytimer_feeds


def test_a_state_excluded_on_another_type_stays():
    document = generate_structure(30, seed=3)
    text = json.dumps(document)
    everything = plan_of(text, ExportConfig())
    first = everything.layout.controls[everything.series_control[0]]
    label = everything.layout.state_label[0]
    other = ExportConfig(exclude_states=(f"{first.type}x:{label}",))
    mine = ExportConfig(exclude_states=(f"{first.type}:{label}",))
    assert len(plan_of(text, other).series_control) == len(everything.series_control)
    dropped = [
        labels
        for labels in plan_series(everything)
        if dict(labels)["control_type"] == first.type and dict(labels)["state"] == label
    ]
    assert dropped
    assert set(plan_series(plan_of(text, mine))) == set(plan_series(everything)) - set(dropped)


# --- max_series -------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 10, 50, 10_000])
def test_max_series_keeps_the_first_series_in_file_order(shared_fixture, limit):
    for text in texts(shared_fixture):
        everything = plan_of(text, ExportConfig())
        export = ExportConfig(max_series=limit)
        plan = plan_of(text, export)
        total = len(everything.series_control)
        assert len(plan.series_control) == min(limit, total)
        assert plan.series_limited == max(0, total - limit)
        assert plan_series(plan) == plan_series(everything)[:limit]
        expected, reference = reference_series(text, export)
        assert set(plan_series(plan)) == expected
        assert (reference.series_exported, reference.series_limited) == (
            len(plan.series_control),
            plan.series_limited,
        )
        # The controls stay (info series); UUIDs of left-out series stay known.
        assert len(plan.info_control) == len(everything.info_control)
        assert plan.index.keys() == everything.index.keys()


def test_a_miniserver_s_own_limit_wins_over_the_export_one():
    export = ExportConfig(max_series=5)
    assert export_filter(export).max_series == 5
    assert export_filter(export, 7).max_series == 7
    assert ExportFilter().max_series is None  # built in code: no limit


# --- the state owner: family, warning, reload -------------------------------------------------


def series_family(owner) -> dict[str, float]:
    return {
        dict(labels)["status"]: value
        for labels, value in series_of(owner, "loxone_exporter_series").items()
    }


def test_the_series_family_and_one_warning_when_the_limit_cuts(caplog):
    model = SimulatedMiniserver.generate(40, seed=6)
    owner = make_owner(max_series=20)
    with caplog.at_level(logging.WARNING, logger=STATE_LOGGER):
        start_streaming(owner, "home", model)
    total = len(structure_oracle_series(model))
    assert series_family(owner) == {"exported": 20.0, "limited": float(total - 20)}
    # A planned series shows once its state sent a value (some are texts here).
    assert 15 <= len(series_of(owner, "loxone_control_value")) <= 20
    (record,) = [r for r in caplog.records if getattr(r, "event", "") == "series_limited"]
    assert record.miniserver == "home"  # type: ignore[attr-defined]
    message = record.getMessage()
    assert "miniserver home" in message
    assert "max_series 20" in message
    assert f"{total - 20} control series" in message
    assert "exclude_states" in message
    # Without a cut: exported is every series, limited 0, and nothing is logged.
    caplog.clear()
    relaxed = make_owner()
    with caplog.at_level(logging.WARNING, logger=STATE_LOGGER):
        start_streaming(relaxed, "home", model)
    assert series_family(relaxed) == {"exported": float(total), "limited": 0.0}
    assert not [r for r in caplog.records if getattr(r, "event", "") == "series_limited"]


def structure_oracle_series(model: SimulatedMiniserver) -> set[object]:
    """Distinct control series of the model's document, from the JSON walk."""
    owners = structure_oracle.state_owners(model.document, "home")
    return {labels for found in owners.values() for labels in found}


def test_reload_applies_limits_and_state_excludes_with_current_values():
    model = SimulatedMiniserver.generate(40, seed=6)
    owner = make_owner(["home", "office"])
    start_streaming(owner, "home", model)
    start_streaming(owner, "office", model)
    before = series_of(owner, "loxone_control_value")
    # office gets its own limit; [export] drops the "value" states of every control.
    owner.set_export(ExportConfig(typed=False, exclude_states=("value",)), {"office": 3})
    after = series_of(owner, "loxone_control_value")
    office = {k: v for k, v in after.items() if ("miniserver", "office") in k}
    home = {k: v for k, v in after.items() if ("miniserver", "home") in k}
    assert len(office) == 3
    assert home
    assert all(dict(labels)["state"] != "value" for labels in home)
    # The values that stay are the ones received before the reload (replayed, not waited for).
    assert all(before[labels] == value for labels, value in after.items())
    statuses = series_of(owner, "loxone_exporter_series")
    assert statuses[(("miniserver", "office"), ("status", "exported"))] == 3.0


def test_a_changed_miniserver_limit_keeps_its_session():
    base = {"name": "home", "host": "ms", "username": "u", "password": "p"}
    running = config_from_dict({"miniserver": [base]}, {})
    loaded = config_from_dict({"miniserver": [base | {"max_series": 10}]}, {})
    plan = plan_reload(running, loaded)
    assert (plan.unchanged, plan.changed, plan.limits_changed) == (("home",), (), True)
    assert plan_reload(loaded, loaded).limits_changed is False
    moved = config_from_dict({"miniserver": [base | {"max_series": 10, "host": "other"}]}, {})
    assert plan_reload(running, moved).changed == ("home",)


# --- counting and check --structure -----------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_counts_match_the_json_walk(shared_fixture, name):
    text = shared_fixture(name).read_text("utf-8")
    document = json.loads(text)
    counts = series_counts(plan_of(text, ExportConfig()))
    owners = structure_oracle.state_owners(document, "home")
    control_series = {labels for found in owners.values() for labels in found}
    every_uuid = {uuid: 0.0 for uuid in (document.get("globalStates") or {}).values()}
    globals_ = structure_oracle.expected_global_values(document, every_uuid, "home")
    info = structure_oracle.expected_info(document, "home")
    daytimers = {
        labels - {("state", "entriesAndDefaultValue")}
        for labels in control_series
        if ("state", "entriesAndDefaultValue") in labels
    }
    control_families = {family.name for family in FAMILIES}
    families = dict(counts.families)
    # Every control series once, in loxone_control_value or the family of its unit.
    assert sum(families.pop(name, 0) for name in control_families) == len(control_series)
    assert families == {
        "loxone_control_info": len(info),
        "loxone_global_value": len(globals_),
        "loxone_daytimer_entries": len(daytimers),
    }
    by_type = Counter(dict(labels)["control_type"] for labels in control_series)
    assert {t.control_type: t.series for t in counts.by_control_type if t.series} == by_type
    controls = Counter(c.get("type") or "" for c, _ in structure_oracle.walk_controls(document))
    assert {t.control_type: t.controls for t in counts.by_control_type} == controls
    assert counts.controls_discovered == counts.controls_exported == sum(controls.values())
    assert counts.total == sum(series for _, series in counts.families)


def write_config(tmp_path: Path, export: str = "", miniservers: str = "") -> Path:
    path = tmp_path / "exporter.toml"
    path.write_text(
        f"[export]\n{export}\n"
        '[[miniserver]]\nname = "home"\nhost = "ms"\nusername = "u"\npassword = "p"\n'
        f"{miniservers}",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def check(*args: object) -> int:
    return main(["check", *map(str, args)])


@pytest.mark.parametrize("name", FIXTURES)
def test_check_structure_prints_the_counts(shared_fixture, tmp_path, capsys, name):
    structure = shared_fixture(name)
    assert check(write_config(tmp_path), "--structure", structure) == 0
    out, err = capsys.readouterr()
    counts = series_counts(plan_of(structure.read_text("utf-8"), ExportConfig()))
    assert err == ""
    assert "value and text states are counted together" in out
    assert "miniserver home" in out
    assert f"{counts.controls_discovered} discovered, {counts.controls_exported} exported" in out
    for family_name, series in counts.families:
        assert any(line.split() == [family_name, str(series)] for line in out.splitlines())
    assert any(line.split() == ["total", str(counts.total)] for line in out.splitlines())
    ratio = counts.total / counts.controls_exported
    assert f"series per exported control: {ratio:.2f}" in out
    assert "max_series 100000: not reached" in out
    first = counts.by_control_type[0]
    assert any(
        line.split() == [first.control_type, str(first.controls), str(first.series)]
        for line in out.splitlines()
    )
    assert "loxone_control_text" not in out


def test_check_structure_per_limit_with_text_and_a_cut(shared_fixture, tmp_path, capsys):
    structure = shared_fixture("smarteon-2025.LoxAPP3.json")
    config = write_config(
        tmp_path,
        'include_text = true\nexclude_states = ["TextState:*"]',
        '[[miniserver]]\nname = "office"\nhost = "o"\nusername = "u"\npassword = "p"\n'
        "max_series = 100\n"
        '[[miniserver]]\nname = "lab"\nhost = "l"\nusername = "u"\npassword = "p"\n',
    )
    assert check(config, "--structure", structure) == 0
    out = capsys.readouterr().out
    export = ExportConfig(exclude_states=("TextState:*",))
    counts = series_counts(plan_of(structure.read_text("utf-8"), export))
    assert "miniservers home, lab" in out
    assert "miniserver office" in out
    assert "(counted with loxone_control_value)" in out
    assert f"max_series 100000: not reached ({counts.control_series} control series)" in out
    cut = counts.control_series - 100
    assert f"max_series 100: reached; {cut} control series are left out" in out
    text_state = [line.split() for line in out.splitlines() if "TextState" in line.split()]
    assert len(text_state) == 2  # one line per group
    assert all(line[2] == "0" for line in text_state)  # its controls stay, its states go


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{", "is not a usable structure file: structure file is not valid JSON"),
        (b"[]", "is not a usable structure file: structure file: top level: expected an object"),
        (b"\xff\xfe", "is not UTF-8"),
    ],
)
def test_check_structure_of_a_bad_file_exits_2_without_a_traceback(
    tmp_path, capsys, content, problem
):
    structure = tmp_path / "LoxAPP3.json"
    structure.write_bytes(content)
    assert check(write_config(tmp_path), "--structure", structure) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert problem in err
    assert "Traceback" not in err


def test_check_structure_of_a_missing_file_or_with_shards_exits_2(tmp_path, capsys):
    config = write_config(tmp_path)
    assert check(config, "--structure", tmp_path / "missing.json") == 2
    assert "cannot read" in capsys.readouterr().err
    structure = tmp_path / "LoxAPP3.json"
    structure.write_text(generated_text(), encoding="utf-8")
    assert check(config, "--structure", structure, "--shards") == 2
    assert "--structure and --shards" in capsys.readouterr().err


def test_check_structure_of_an_empty_structure_warns(tmp_path, capsys):
    structure = tmp_path / "LoxAPP3.json"
    structure.write_text("{}", encoding="utf-8")
    assert check(write_config(tmp_path), "--structure", structure) == 0
    assert "names no controls" in capsys.readouterr().out


# --- end to end: the exporter against the simulator -------------------------------------------


async def test_max_series_and_exclude_states_end_to_end(tmp_path: Path) -> None:
    """Two Miniservers on one simulator: both drop the states named "value"; "home" has its own
    max_series, "office" the [export] default."""
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, controls=40)
            home = attrs.evolve(miniserver(server, "home"), max_series=15)
            exporter = await start_exporter(
                nursery,
                tmp_path,
                [home, miniserver(server, "office")],
                exclude_states=("value",),
            )
            await exporter.wait_until_streaming("home", "office")
            document = server.model.document
            values = (await http_request(server.port, "/sim/values")).json()["values"]
            expected = {
                key: value
                for key, value in expected_control_values(document, values, "office").items()
                if ("state", "value") not in key[1]
            }

            async def office_complete() -> bool:
                samples = await exporter.samples()
                return len(select(samples, "loxone_control_value", miniserver="office")) == len(
                    expected
                )

            await poll_async(office_complete)
            samples = await exporter.samples()
            nursery.cancel_scope.cancel()
    owners = structure_oracle.state_owners(document, "office")
    planned = {labels for found in owners.values() for labels in found}
    kept = {labels for labels in planned if ("state", "value") not in labels}
    assert len(kept) < len(planned)  # the simulator has "value" states to drop
    office = select(samples, "loxone_control_value", miniserver="office")
    assert office == expected
    assert value_of(samples, "loxone_exporter_series", miniserver="office", status="exported") == (
        len(kept)
    )
    assert value_of(samples, "loxone_exporter_series", miniserver="office", status="limited") == 0
    assert value_of(samples, "loxone_exporter_series", miniserver="home", status="exported") == 15
    assert value_of(samples, "loxone_exporter_series", miniserver="home", status="limited") == (
        len(kept) - 15
    )
    home_values = select(samples, "loxone_control_value", miniserver="home")
    assert 0 < len(home_values) <= 15
    as_office = {
        (name, frozenset((k, "office" if k == "miniserver" else v) for k, v in labels))
        for name, labels in home_values
    }
    assert as_office <= office.keys()
    # The controls themselves stay: max_series and exclude_states limit states only.
    assert len(select(samples, "loxone_control_info", miniserver="home")) == len(
        select(samples, "loxone_control_info", miniserver="office")
    )
