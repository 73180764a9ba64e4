from __future__ import annotations

import json
from collections import Counter

import pytest

from loxone_trio_exporter.protocol import uuid_from_str
from loxone_trio_exporter.simulator import generate_structure
from loxone_trio_exporter.state import ExportFilter, build_catalogue
from loxone_trio_exporter.structure import build_state_index, load_structure, structure_from_dict


def catalogue_of(document_text: str, export_filter: ExportFilter | None = None):
    structure = load_structure(document_text)
    index = build_state_index(structure)
    return (
        structure,
        index,
        build_catalogue("home", structure, index, export_filter or ExportFilter()),
    )


def all_value_label_sets(catalogue):
    return [labels for owners in catalogue.control_values.values() for labels in owners]


@pytest.mark.parametrize(
    "name", ["smarteon-2025.LoxAPP3.json", "loxone-java-showroom.LoxAPP3.json"]
)
def test_label_sets_are_unique_although_names_repeat(shared_fixture, name):
    text = shared_fixture(name).read_text("utf-8")
    structure, index, catalogue = catalogue_of(text)
    names = Counter((c.room, c.name) for c in structure.walk_controls())
    if name.startswith("smarteon"):
        assert max(names.values()) > 1  # the file repeats names: the reason for the uuid label
    label_sets = all_value_label_sets(catalogue)
    assert len(label_sets) == len(set(label_sets))
    info = catalogue.control_info
    assert len(info) == len(set(info)) == catalogue.controls_exported
    # Every control-state owner in the index has exactly one series.
    owners = sum(1 for raw in index for owner in index.owners(raw) if owner.control is not None)
    assert len(label_sets) == owners


def test_shared_state_uuid_gives_one_series_per_owner(shared_fixture):
    text = shared_fixture("loxone-java-showroom.LoxAPP3.json").read_text("utf-8")
    _, index, catalogue = catalogue_of(text)
    shared = [raw for raw in index if len(index.owners(raw)) > 1]
    assert shared
    for raw in shared:
        controls = [o for o in index.owners(raw) if o.control is not None]
        assert len(catalogue.control_values[raw]) == len(controls)


def test_list_state_and_subcontrol_labels(shared_fixture):
    text = shared_fixture("loxone-java-showroom.LoxAPP3.json").read_text("utf-8")
    _, _, catalogue = catalogue_of(text)
    states = {dict(labels)["state"] for labels in all_value_label_sets(catalogue)}
    assert {f"temperatures[{i}]" for i in range(7)} <= states
    labelled = [dict(labels) for labels in all_value_label_sets(catalogue)]
    with_parent = [labels for labels in labelled if labels.get("parent")]
    assert with_parent
    assert all(label["parent"] != label["uuid"] for label in with_parent)


def test_filters_count_before_and_after():
    document = generate_structure(40, seed=5)
    text = json.dumps(document)
    structure, _, everything = catalogue_of(text)
    some_type = structure.controls[0].type
    _, _, filtered = catalogue_of(
        text, ExportFilter(exclude_types=frozenset({some_type}), exclude_names=("*",))
    )
    assert everything.controls_discovered == filtered.controls_discovered
    assert everything.controls_exported == everything.controls_discovered
    assert filtered.controls_exported == 0
    assert filtered.control_values == {}
    assert filtered.global_values == everything.global_values  # globals are not controls


def test_excluding_a_parent_drops_its_subcontrols():
    document = generate_structure(20, seed=2)
    structure = structure_from_dict(document)
    parent = next(c for c in structure.controls if c.sub_controls)
    index = build_state_index(structure)
    catalogue = build_catalogue(
        "home", structure, index, ExportFilter(exclude_names=(parent.name,))
    )
    exported_uuids = {dict(labels)["uuid"] for labels in catalogue.control_info}
    assert parent.uuid_action not in exported_uuids
    assert not {sub.uuid_action for sub in parent.walk()} & exported_uuids


def test_daytimer_weather_and_globals_are_catalogued():
    document = generate_structure(30, seed=9)
    structure = structure_from_dict(document)
    catalogue = build_catalogue("home", structure, build_state_index(structure), ExportFilter())
    assert catalogue.daytimers
    assert catalogue.weather_actual == uuid_from_str(structure.weather_server.actual)
    global_states = {
        dict(labels)["state"] for owners in catalogue.global_values.values() for labels in owners
    }
    assert {"operatingMode", "sunrise", "sunset"} <= global_states


def test_equal_label_pairs_of_a_catalogue_are_one_object(shared_fixture):
    # The catalogue keeps a label set per series for as long as the structure: sharing the
    # repeated pairs (Miniserver, rooms, state names...) is what keeps that small.
    text = shared_fixture("smarteon-2025.LoxAPP3.json").read_text("utf-8")
    _, _, catalogue = catalogue_of(text)
    label_sets = [*all_value_label_sets(catalogue), *catalogue.control_info]
    label_sets += [labels for owners in catalogue.global_values.values() for labels in owners]
    pairs = [pair for labels in label_sets for pair in labels]
    assert len({id(pair) for pair in pairs}) == len(set(pairs)) < len(pairs)
