"""``SeriesPlan``: which series a structure layout gives, with labels that never collide."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loxone_trio_exporter.simulator import generate_structure
from loxone_trio_exporter.state import ExportFilter, SeriesPlan
from loxone_trio_exporter.state._plan import shared_int
from loxone_trio_exporter.structure import (
    build_layout,
    build_state_index,
    layout_structure,
    load_structure,
)


def parsed(text: bytes) -> dict[str, str]:
    """The labels of ``name="value",...`` as the Prometheus parser reads them, in order."""
    (family,) = text_string_to_metric_families(f"x{{{text.decode()}}} 1\n")
    return dict(family.samples[0].labels)


def value_labels(plan: SeriesPlan) -> list[dict[str, str]]:
    return [
        parsed(plan.control_text[control] + plan.state_text[series])
        for series, control in enumerate(plan.series_control)
    ]


def info_labels(plan: SeriesPlan) -> list[dict[str, str]]:
    return [
        parsed(plan.control_text[control] + plan.info_suffix[series])
        for series, control in enumerate(plan.info_control)
    ]


def plan_of(text: str, export_filter: ExportFilter | None = None) -> SeriesPlan:
    return SeriesPlan(layout_structure(text), export_filter or ExportFilter(), "home")


@pytest.mark.parametrize(
    "name", ["smarteon-2025.LoxAPP3.json", "loxone-java-showroom.LoxAPP3.json"]
)
def test_label_sets_are_unique_although_names_repeat(shared_fixture, name):
    text = shared_fixture(name).read_text("utf-8")
    structure = load_structure(text)
    plan = plan_of(text)
    names = Counter((c.room, c.name) for c in structure.walk_controls())
    if name.startswith("smarteon"):
        assert max(names.values()) > 1  # the file repeats names: the reason for the uuid label
    series = [tuple(labels.items()) for labels in value_labels(plan)]
    assert len(series) == len(set(series))
    info = [tuple(labels.items()) for labels in info_labels(plan)]
    assert len(info) == len(set(info)) == plan.controls_exported
    # Every control-state owner in the index has exactly one series.
    index = build_state_index(structure)
    owners = {
        (owner.control.uuid_action, owner.label)
        for raw in index
        for owner in index.owners(raw)
        if owner.control is not None
    }
    assert {(labels["uuid"], labels["state"]) for labels in value_labels(plan)} == owners


def test_a_shared_state_uuid_feeds_one_series_per_owner(shared_fixture):
    text = shared_fixture("loxone-java-showroom.LoxAPP3.json").read_text("utf-8")
    index = build_state_index(load_structure(text))
    plan = plan_of(text)
    shared = [raw for raw in index if sum(o.control is not None for o in index.owners(raw)) > 1]
    assert shared
    for raw in shared:
        code = ~plan.index[raw]
        fed = plan.complex_control[code - len(plan.series_control)]
        controls = [o for o in index.owners(raw) if o.control is not None]
        assert len(fed) == len(controls)


def test_list_state_and_subcontrol_labels(shared_fixture):
    text = shared_fixture("loxone-java-showroom.LoxAPP3.json").read_text("utf-8")
    labelled = value_labels(plan_of(text))
    assert {f"temperatures[{i}]" for i in range(7)} <= {labels["state"] for labels in labelled}
    with_parent = [labels for labels in labelled if labels.get("parent")]
    assert with_parent
    assert all(label["parent"] != label["uuid"] for label in with_parent)
    assert all(labels["parent"] == "" or labels["parent"] for labels in info_labels(plan_of(text)))


def test_filters_count_before_and_after():
    text = json.dumps(generate_structure(40, seed=5))
    everything = plan_of(text)
    some_type = everything.layout.controls[0].type
    filtered = plan_of(
        text, ExportFilter(exclude_types=frozenset({some_type}), exclude_names=("*",))
    )
    assert everything.layout.controls_discovered == filtered.layout.controls_discovered
    assert everything.controls_exported == everything.layout.controls_discovered
    assert filtered.controls_exported == 0
    assert len(filtered.series_control) == 0
    assert filtered.global_text == everything.global_text  # globals are not controls
    # Every state the structure names is still known (counted as no stranger).
    assert filtered.index.keys() == everything.index.keys()


def test_excluding_a_parent_drops_its_subcontrols():
    document = generate_structure(20, seed=2)
    structure = load_structure(json.dumps(document))
    parent = next(c for c in structure.controls if c.sub_controls)
    plan = SeriesPlan(build_layout(structure), ExportFilter(exclude_names=(parent.name,)), "home")
    exported = {labels["uuid"] for labels in info_labels(plan)}
    assert parent.uuid_action not in exported
    assert not {sub.uuid_action for sub in parent.walk()} & exported


def test_daytimers_weather_and_globals_are_planned():
    text = json.dumps(generate_structure(30, seed=9))
    plan = plan_of(text)
    assert plan.daytimer_feeds
    assert plan.layout.weather_actual is not None
    global_states = {parsed(text)["state"] for text in plan.global_text}
    assert {"operatingMode", "sunrise", "sunset"} <= global_states


def test_repeated_state_labels_are_one_object(shared_fixture):
    # A series costs two references (control labels, state pair): the state pairs repeat.
    plan = plan_of(shared_fixture("smarteon-2025.LoxAPP3.json").read_text("utf-8"))
    texts = plan.state_text
    assert len({id(text) for text in texts}) == len(set(texts)) < len(texts)


@pytest.mark.parametrize("value", [0, 1, 255, 257, 4_000, -1, -2, -257, -40_000])
def test_shared_int_is_the_value_as_one_object(value):
    shared = shared_int(value)
    assert shared == value
    assert shared_int(int(str(value))) is shared  # an equal int made elsewhere: the same object


def test_a_layout_copied_out_of_the_parse_is_the_same_layout(shared_fixture):
    text = shared_fixture("smarteon-2025.LoxAPP3.json").read_text("utf-8")
    layout = layout_structure(text)
    assert layout == build_layout(load_structure(text))
    # The copy keeps repeated values as one object (rooms, labels, shared UUIDs).
    rooms = [control.room for control in layout.controls]
    assert len({id(room) for room in rooms}) == len(set(rooms)) < len(rooms)
    labels = layout.state_label
    assert len({id(label) for label in labels}) == len(set(labels)) < len(labels)
