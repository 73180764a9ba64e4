"""The simulator's data model: generated structure files and the changing state values."""

from __future__ import annotations

import itertools
import json
import re
import struct
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loxone_trio_exporter.protocol import (
    MessageIdentifier,
    decode_daytimer_states,
    decode_text_states,
    decode_value_states,
    decode_weather_states,
    uuid_from_str,
    uuid_to_str,
)
from loxone_trio_exporter.simulator._generate import (
    CONTROL_CYCLE,
    MIN_CONTROLS,
    generate_structure,
)
from loxone_trio_exporter.simulator._model import Message, SimulatedMiniserver
from loxone_trio_exporter.simulator._state_rules import (
    STATUS_TEXTS,
    Motion,
    Table,
    numeric_profile,
    table_of,
)
from loxone_trio_exporter.structure import (
    Control,
    OwnerKind,
    StateIndex,
    StateOwnership,
    build_state_index,
    structure_from_dict,
)

LOXONE_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{16}")
STRUCTURE_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
REAL_FILES = ("loxone-java-showroom.LoxAPP3.json", "smarteon-2025.LoxAPP3.json")


def _index(document: dict[str, Any]) -> StateIndex:
    structure = structure_from_dict(document)
    assert structure.skipped_states == 0
    return build_state_index(structure)


def _controls_of_type(document: dict[str, Any], control_type: str) -> list[dict[str, Any]]:
    return [c for c in document["controls"].values() if c["type"] == control_type]


def _decoded_values(messages: list[Message]) -> list[tuple[str, float]]:
    return [
        (uuid_to_str(uuid), value)
        for identifier, payload in messages
        if identifier is MessageIdentifier.VALUE_STATES
        for uuid, value in decode_value_states(payload)
    ]


def _decoded_texts(messages: list[Message]) -> list[tuple[str, str]]:
    return [
        (uuid_to_str(state.uuid), state.text)
        for identifier, payload in messages
        if identifier is MessageIdentifier.TEXT_STATES
        for state in decode_text_states(payload)
    ]


def _tables_by_name(model: SimulatedMiniserver) -> dict[MessageIdentifier, bytes]:
    return dict(model.full_tables())


# --- the generated document -----------------------------------------------------------------------


def test_generated_document_is_a_complete_structure_file():
    document = generate_structure(40, seed=7, serial="504F94A0BEEF", name="Bench")
    structure = structure_from_dict(json.loads(json.dumps(document)))
    assert structure.skipped_states == 0
    assert STRUCTURE_TIME.fullmatch(document["lastModified"])
    info = document["msInfo"]
    assert (info["serialNr"], info["msName"]) == ("504F94A0BEEF", "Bench")
    assert (info["miniserverType"], info["tempUnit"]) == (2, 0)
    assert info["currentUser"]["name"] == "admin"
    assert {"operatingMode", "sunrise", "sunset", "miniserverTime"} <= set(structure.global_states)
    assert {"notifications", "modifications"} <= set(structure.global_states)
    assert structure.operating_modes[3] == "Monday"
    assert len(structure.rooms) >= 3
    assert len(structure.categories) >= 3
    assert structure.weather_server is not None
    assert set(structure.weather_server.states) == {"actual", "forecast"}
    assert structure.weather_server.formats["temperature"] == "%.1f°"
    assert len(structure.controls) == 40


def test_generated_document_contains_every_control_type():
    document = generate_structure(MIN_CONTROLS, seed=1)
    structure = structure_from_dict(document)
    types = Counter(control.type for control in structure.walk_controls())
    assert set(CONTROL_CYCLE) | {"IRoomController"} <= set(types)
    assert types["IRoomController"] == 1
    analog_formats = {c["details"]["format"] for c in _controls_of_type(document, "InfoOnlyAnalog")}
    assert "%.1f°" in analog_formats
    meter = _controls_of_type(document, "Meter")[0]
    assert meter["details"] == {
        "actualFormat": "%.3fkW",
        "totalFormat": "%.1fkWh",
        "type": "unidirectional",
    }


def test_small_requests_get_the_minimum_and_larger_ones_the_exact_count():
    assert len(generate_structure(0, seed=1)["controls"]) == MIN_CONTROLS
    assert len(generate_structure(250, seed=1)["controls"]) == 250


def test_light_controller_dimmers_share_min_max_step():
    document = generate_structure(100, seed=3)
    controllers = _controls_of_type(document, "LightControllerV2")
    assert controllers
    for controller in controllers:
        subs = controller["subControls"]
        assert 2 <= len(subs) <= 3
        assert all(key.startswith(controller["uuidAction"] + "/AI") for key in subs)
        dimmers = [sub for sub in subs.values() if sub["type"] == "Dimmer"]
        assert len(dimmers) >= 2
        for name in ("min", "max", "step"):
            assert len({dimmer["states"][name] for dimmer in dimmers}) == 1
        assert len({dimmer["states"]["position"] for dimmer in dimmers}) == len(dimmers)


def test_one_sensor_state_is_owned_by_two_analog_controls():
    index = _index(generate_structure(MIN_CONTROLS, seed=5))
    shared = [
        owners
        for raw in index
        if len(owners := index.owners(raw)) > 1
        and all(o.control is not None and o.control.type == "InfoOnlyAnalog" for o in owners)
    ]
    assert len(shared) == 1
    first, second = shared[0]
    assert first.control is not None
    assert second.control is not None
    assert first.control.uuid_action != second.control.uuid_action
    assert first.state_name == second.state_name == "value"


def test_old_room_controller_has_a_list_state_of_seven_uuids():
    document = generate_structure(MIN_CONTROLS, seed=5)
    (controller,) = _controls_of_type(document, "IRoomController")
    temperatures = controller["states"]["temperatures"]
    assert isinstance(temperatures, list)
    assert len(temperatures) == 7
    index = _index(document)
    positions = [index.owners(uuid_from_str(uuid))[0].position for uuid in temperatures]
    assert positions == list(range(7))


def test_repeated_names_in_one_room_and_controls_without_room():
    structure = structure_from_dict(generate_structure(MIN_CONTROLS, seed=9))
    names = Counter((c.room_uuid, c.name) for c in structure.controls if c.room_uuid)
    assert max(names.values()) >= 2
    assert any(control.room_uuid is None for control in structure.controls)


def test_uuids_have_the_loxone_form_and_are_unique_but_for_the_intended_shares():
    document = generate_structure(300, seed=11)
    index = _index(document)
    places = [*document["rooms"], *document["cats"], document["msInfo"]["currentUser"]["uuid"]]
    singles = places + list(document["globalStates"].values())
    singles += list(document["weatherServer"]["states"].values())
    actions = [c.uuid_action.split("/")[0] for c in index.controls if "/" not in c.uuid_action]
    assert all(LOXONE_UUID.fullmatch(uuid) for uuid in singles + actions)
    assert len(set(singles)) == len(singles)
    assert len(set(actions)) == len(actions)
    assert not set(singles) & set(actions)
    for raw in index:
        owners = index.owners(raw)
        assert LOXONE_UUID.fullmatch(uuid_to_str(raw))
        if len(owners) > 1:
            kinds = {(o.control.type, o.state_name) for o in owners if o.control is not None}
            shared_sensor = kinds == {("InfoOnlyAnalog", "value")}
            shared_light_range = kinds <= {("Dimmer", name) for name in ("min", "max", "step")}
            assert shared_sensor or shared_light_range, kinds


def test_same_seed_same_document_and_other_seed_other_document():
    first = json.dumps(generate_structure(200, seed=42))
    assert json.dumps(generate_structure(200, seed=42)) == first
    assert json.dumps(generate_structure(200, seed=43)) != first


# --- the simulated Miniserver ---------------------------------------------------------------------


@pytest.fixture
def model() -> SimulatedMiniserver:
    return SimulatedMiniserver.generate(60, seed=2024)


def test_properties_describe_the_miniserver(model):
    assert model.serial == "504F94A00001"
    assert model.name == "Simulator"
    assert model.last_modified == model.document["lastModified"]
    assert model.structure.last_modified == model.last_modified
    assert len(model.state_index) > 60
    assert json.loads(model.structure_text()) == model.document
    assert model.structure_text() is model.structure_text()  # cached


def test_full_tables_are_exactly_the_snapshot(model):
    tables = model.full_tables()
    assert [identifier for identifier, _ in tables] == [
        MessageIdentifier.VALUE_STATES,
        MessageIdentifier.TEXT_STATES,
        MessageIdentifier.DAYTIMER_STATES,
        MessageIdentifier.WEATHER_STATES,
    ]
    snapshot = model.values_snapshot()
    values = _decoded_values(tables)
    texts = _decoded_texts(tables)
    assert dict(values) == snapshot["values"]
    assert len(values) == len(snapshot["values"])  # one value per UUID, shared or not
    assert dict(texts) == snapshot["texts"]
    assert len(texts) == len(snapshot["texts"])


def test_full_tables_carry_daytimers_and_weather(model):
    tables = _tables_by_name(model)
    daytimers = decode_daytimer_states(tables[MessageIdentifier.DAYTIMER_STATES])
    schedule_uuids = {
        control["states"]["entriesAndDefaultValue"]
        for control in _controls_of_type(model.document, "Daytimer")
    }
    assert {uuid_to_str(state.uuid) for state in daytimers} == schedule_uuids
    assert all(len(state.entries) == 5 for state in daytimers)
    weather = {uuid_to_str(s.uuid): s for s in decode_weather_states(tables[7])}
    states = model.document["weatherServer"]["states"]
    assert len(weather[states["actual"]].entries) == 1
    assert len(weather[states["forecast"]].entries) == 96
    forecast = weather[states["forecast"]].entries
    assert [b.timestamp - a.timestamp for a, b in itertools.pairwise(forecast)] == [3600] * 95


def test_initial_values_are_plausible(model):
    index = model.state_index
    values = model.values_snapshot()["values"]
    by_state: dict[str, list[float]] = {}
    for uuid, value in values.items():
        low, high = model.bounds(uuid)
        assert low <= value <= high
        for owner in index.owners(uuid_from_str(uuid)):
            by_state.setdefault(owner.state_name, []).append(value)
    assert all(15.0 <= value <= 28.0 for value in by_state["tempActual"])
    assert all(0.0 <= value <= 1.0 for value in by_state["shadePosition"])
    assert set(by_state["active"]) <= {0.0, 1.0}
    assert all(value > 1000 for value in by_state["total"])
    assert by_state["sunrise"] == [420.0]


def test_step_changes_only_moving_numeric_states(model):
    snapshot = model.values_snapshot()
    messages = model.step(5000)
    assert messages[0][0] is MessageIdentifier.VALUE_STATES
    changes = _decoded_values(messages)
    assert len(changes) == 5000
    for uuid, _ in changes:
        assert uuid in snapshot["values"]
        low, high = model.bounds(uuid)
        assert low < high  # configuration (min/max/step, sunrise) never moves
    text_changes = _decoded_texts(messages)
    assert text_changes  # about one per 200 events
    assert all(uuid in snapshot["texts"] for uuid, _ in text_changes)
    after = model.values_snapshot()
    assert dict(changes).items() <= after["values"].items()  # the last change of each is current
    assert dict(text_changes).items() <= after["texts"].items()


def test_text_changes_are_clock_or_status_texts(model):
    clock_uuid = model.document["globalStates"]["miniserverTime"]
    changed = [change for _ in range(200) for change in _decoded_texts(model.step(250))]
    assert 100 <= len(changed) <= 500  # about one per 200 events
    for uuid, text in changed:
        if uuid == clock_uuid:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+00:00:00", text)
        else:
            assert text in STATUS_TEXTS
    assert clock_uuid in dict(changed)


def test_step_zero_sends_nothing_and_negative_is_refused(model):
    assert model.step(0) == []
    with pytest.raises(ValueError, match="negative"):
        model.step(-1)


@settings(max_examples=10)
@given(seed=st.integers(0, 2**32), batches=st.lists(st.integers(1, 2500), min_size=1, max_size=8))
def test_values_stay_within_bounds_over_ten_thousand_events(seed, batches):
    model = SimulatedMiniserver.generate(MIN_CONTROLS, seed=seed)
    index = model.state_index
    last = dict(model.values_snapshot()["values"])
    remaining = 10_000
    for size in [*batches, 10_000]:
        events = min(size, remaining)
        remaining -= events
        for uuid, value in _decoded_values(model.step(events)):
            low, high = model.bounds(uuid)
            assert low <= value <= high
            names = {owner.state_name for owner in index.owners(uuid_from_str(uuid))}
            if names & {"active", "openWindow", "up", "down", "presence"}:
                assert value in (0.0, 1.0)
                assert value != last[uuid]  # a digital state flips
            if any(name.startswith("total") for name in names):
                assert value > last[uuid]  # meters only grow
            last[uuid] = value
        if not remaining:
            break
    assert model.values_snapshot()["values"] == last


def test_same_seed_same_steps_and_other_seed_other_steps():
    first = SimulatedMiniserver.generate(50, seed=8)
    second = SimulatedMiniserver.generate(50, seed=8)
    other = SimulatedMiniserver.generate(50, seed=9)
    assert first.full_tables() == second.full_tables()
    for events in (1, 700, 3000):
        assert first.step(events) == second.step(events)
    assert first.values_snapshot() == second.values_snapshot()
    assert other.step(700) != SimulatedMiniserver.generate(50, seed=8).step(700)


def test_set_value_changes_one_state_and_returns_its_event(model):
    index = model.state_index
    value_uuid = next(u for u in model.values_snapshot()["values"])
    identifier, payload = model.set_value(value_uuid, 12.5)
    assert identifier is MessageIdentifier.VALUE_STATES
    assert decode_value_states(payload) == ((uuid_from_str(value_uuid), 12.5),)
    assert model.values_snapshot()["values"][value_uuid] == 12.5
    text_uuid = next(
        uuid
        for uuid in model.values_snapshot()["texts"]
        if index.owners(uuid_from_str(uuid))[0].state_name == "textAndIcon"
    )
    identifier, payload = model.set_value(text_uuid, "Door open")
    assert identifier is MessageIdentifier.TEXT_STATES
    assert [s.text for s in decode_text_states(payload)] == ["Door open"]
    assert model.values_snapshot()["texts"][text_uuid] == "Door open"
    with pytest.raises(TypeError):
        model.set_value(value_uuid, "text")
    with pytest.raises(TypeError):
        model.set_value(text_uuid, 1.0)
    with pytest.raises(KeyError):
        model.set_value("00000000-0000-0000-0000000000000001", 1.0)


# --- real structure files -------------------------------------------------------------------------


def _real_document(shared_fixture: Any, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(shared_fixture(name).read_text("utf-8"))
    return document


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_files_give_one_table_entry_per_state(shared_fixture, name):
    document = _real_document(shared_fixture, name)
    model = SimulatedMiniserver.from_document(document, seed=1)
    index = build_state_index(structure_from_dict(document))
    tables = _tables_by_name(model)
    values = {uuid for uuid, _ in decode_value_states(tables[MessageIdentifier.VALUE_STATES])}
    texts = {s.uuid for s in decode_text_states(tables[MessageIdentifier.TEXT_STATES])}
    daytimers = {s.uuid for s in decode_daytimer_states(tables[MessageIdentifier.DAYTIMER_STATES])}
    weather = {s.uuid for s in decode_weather_states(tables[MessageIdentifier.WEATHER_STATES])}
    numeric = {raw for raw in index if table_of(index.owners(raw)) is Table.VALUE}
    assert values == numeric
    assert values | texts | daytimers | weather == set(index)
    assert len(values) + len(texts) + len(daytimers) + len(weather) == len(index)
    assert len(weather) == 2
    assert len(daytimers) == 2
    assert model.serial == document["msInfo"]["serialNr"]
    assert _decoded_values(model.step(2000))


def test_showroom_tables_match_what_the_real_miniserver_sent(shared_fixture, vectors):
    """The captured tables of the same Miniserver classify every known UUID the same way."""
    document = _real_document(shared_fixture, REAL_FILES[0])
    model = SimulatedMiniserver.from_document(document, seed=1)
    index = model.state_index
    tables = _tables_by_name(model)
    ours = {uuid for uuid, _ in decode_value_states(tables[MessageIdentifier.VALUE_STATES])}
    captured = decode_value_states(bytes.fromhex(vectors["value_events"][1]["hex"]))
    known = {uuid for uuid, _ in captured if uuid in index}
    assert len(known) == 52
    assert known <= ours
    our_texts = {s.uuid for s in decode_text_states(tables[MessageIdentifier.TEXT_STATES])}
    captured_texts = _text_uuids_of_truncated_table(bytes.fromhex(vectors["text_events"][1]["hex"]))
    known_texts = {uuid for uuid in captured_texts if uuid in index}
    assert len(known_texts) == 5
    assert known_texts <= our_texts


def _text_uuids_of_truncated_table(payload: bytes) -> list[bytes]:
    """The UUIDs of a text table whose last record is cut short (the capture is)."""
    uuids, offset = [], 0
    while offset + 36 <= len(payload):
        uuid, _, length = struct.unpack_from("<16s16sI", payload, offset)
        uuids.append(uuid)
        offset += 36 + length + (-length % 4)
    return uuids


def test_from_document_copies_the_document(shared_fixture):
    document = _real_document(shared_fixture, REAL_FILES[0])
    model = SimulatedMiniserver.from_document(document, seed=1)
    document["lastModified"] = "2000-01-01 00:00:00"
    document["controls"].clear()
    assert model.last_modified == "2017-11-22 18:41:01"
    assert model.document["controls"]


# --- structure changes ----------------------------------------------------------------------------


def test_change_structure_adds_removes_and_renames(model):
    old_document = json.loads(model.structure_text())
    old_snapshot = model.values_snapshot()
    old_text = model.structure_text()
    model.change_structure("2026-02-03 04:05:06")
    assert model.last_modified == "2026-02-03 04:05:06"
    assert model.structure_text() != old_text
    assert json.loads(model.structure_text())["lastModified"] == "2026-02-03 04:05:06"
    old_controls, new_controls = old_document["controls"], model.document["controls"]
    (removed,) = set(old_controls) - set(new_controls)
    (added,) = set(new_controls) - set(old_controls)
    renamed = [
        key
        for key in set(old_controls) & set(new_controls)
        if old_controls[key]["name"] != new_controls[key]["name"]
    ]
    assert len(renamed) == 1
    assert new_controls[renamed[0]]["name"].endswith("(renamed 1)")
    snapshot = model.values_snapshot()
    index = model.state_index
    removed_states = _state_uuids(old_controls[removed])
    assert any(uuid_from_str(state) not in index for state in removed_states)
    for state in removed_states:
        still_owned = uuid_from_str(state) in index
        assert (state in snapshot["values"] or state in snapshot["texts"]) == still_owned
    for state in _state_uuids(new_controls[added]):
        assert state in snapshot["values"]
        assert state not in old_snapshot["values"]
    survivors = old_snapshot["values"].keys() & snapshot["values"].keys()
    assert survivors
    assert all(snapshot["values"][uuid] == old_snapshot["values"][uuid] for uuid in survivors)
    in_tables = (
        set(snapshot["values"]) | set(snapshot["texts"]) | _daytimer_and_weather_uuids(model)
    )
    assert {uuid_to_str(raw) for raw in index} == in_tables


def _state_uuids(control: dict[str, Any]) -> set[str]:
    uuids: set[str] = set()
    for value in control.get("states", {}).values():
        uuids.update(value if isinstance(value, list) else [value])
    for sub in control.get("subControls", {}).values():
        uuids |= _state_uuids(sub)
    return uuids


def _daytimer_and_weather_uuids(model: SimulatedMiniserver) -> set[str]:
    tables = _tables_by_name(model)
    daytimers = decode_daytimer_states(tables[MessageIdentifier.DAYTIMER_STATES])
    weather = decode_weather_states(tables[MessageIdentifier.WEATHER_STATES])
    return {uuid_to_str(state.uuid) for state in (*daytimers, *weather)}


def test_change_structure_with_the_same_time_adds_a_second(model):
    now = model.last_modified
    model.change_structure(now)
    assert model.last_modified > now
    assert structure_from_dict(model.document).last_modified == model.last_modified
    model.change_structure("2030-12-31 23:59:59")
    model.change_structure("2030-12-31 23:59:59")
    assert model.last_modified == "2031-01-01 00:00:00"
    renamed = [c["name"] for c in model.document["controls"].values() if "(renamed" in c["name"]]
    assert not any(name.count("(renamed") > 1 for name in renamed)


def test_change_structure_refuses_a_malformed_time(model):
    with pytest.raises(ValueError, match="structure time"):
        model.change_structure("yesterday")


def _sensor(uuid_action: str, value_uuid: str, error_uuid: str) -> dict[str, Any]:
    return {
        "name": "Temperature",
        "type": "InfoOnlyAnalog",
        "uuidAction": uuid_action,
        "details": {"format": "%.1f°"},
        "states": {"value": value_uuid, "error": error_uuid},
    }


SHARED_VALUE = "10000000-0000-0000-0000000000000001"


def _two_sensors_document() -> dict[str, Any]:
    return {
        "lastModified": "2024-05-06 07:08:09",
        "msInfo": {"serialNr": "504F94000002", "msName": "Tiny"},
        "controls": {
            "20000000-0000-0000-0000000000000001": _sensor(
                "20000000-0000-0000-0000000000000001",
                SHARED_VALUE,
                "30000000-0000-0000-0000000000000001",
            ),
            "20000000-0000-0000-0000000000000002": _sensor(
                "20000000-0000-0000-0000000000000002",
                SHARED_VALUE,
                "30000000-0000-0000-0000000000000002",
            ),
        },
    }


def test_a_shared_state_survives_when_one_owner_is_removed():
    model = SimulatedMiniserver.from_document(_two_sensors_document(), seed=3)
    model.set_value(SHARED_VALUE, 23.25)
    model.change_structure("2024-05-06 08:00:00")
    controls = model.document["controls"]
    survivors = [key for key in controls if key.startswith("20000000")]
    assert len(survivors) == 1
    assert "(renamed 1)" in controls[survivors[0]]["name"]
    values = model.values_snapshot()["values"]
    assert values[SHARED_VALUE] == 23.25
    errors = {uuid for uuid in values if uuid.startswith("30000000")}
    assert errors == {controls[survivors[0]]["states"]["error"]}
    (added,) = (control for key, control in controls.items() if key not in survivors)
    assert "room" not in added  # the document has no rooms or categories to put it in
    assert "cat" not in added


def test_a_minimal_document_simulates_without_tables_to_move():
    document = {"globalStates": {"sunrise": "40000000-0000-0000-0000000000000001"}}
    model = SimulatedMiniserver.from_document(document, seed=1)
    assert model.last_modified == ""
    assert model.serial == ""
    assert model.step(1000) == []  # sunrise never moves; no clock or status text to change
    values, texts, daytimers, weather = (payload for _, payload in model.full_tables())
    assert len(decode_value_states(values)) == 1
    assert texts == daytimers == weather == b""
    model.change_structure("2024-01-01 00:00:00")
    assert len(model.document["controls"]) == 1  # nothing to remove or rename, one added
    model.change_structure("2024-01-01 00:00:01")
    assert len(model.document["controls"]) == 2
    assert sum("(renamed" in c["name"] for c in model.document["controls"].values()) == 1


# --- the state rules ------------------------------------------------------------------------------


def _owner(control_type: str, state: str, unit: str = "") -> StateOwnership:
    control = Control(
        uuid_action="50000000-0000-0000-0000000000000001", name="x", type=control_type
    )
    return StateOwnership(control, state, None, OwnerKind.CONTROL, unit)


def test_the_most_specific_table_wins_for_a_shared_uuid():
    numeric = _owner("Switch", "active")
    text = _owner("Alarm", "sensors")
    daytimer = _owner("IRCDaytimer", "entriesAndDefaultValue")
    weather = StateOwnership(None, "actual", None, OwnerKind.WEATHER)
    clock = StateOwnership(None, "miniserverTime", None, OwnerKind.GLOBAL)
    sunrise = StateOwnership(None, "sunrise", None, OwnerKind.GLOBAL)
    assert table_of([numeric, text]) is Table.TEXT
    assert table_of([text, daytimer, numeric]) is Table.DAYTIMER
    assert table_of([numeric, weather, daytimer]) is Table.WEATHER
    assert table_of([numeric, sunrise]) is Table.VALUE
    assert table_of([clock]) is Table.TEXT


@pytest.mark.parametrize(
    ("owner", "motion", "low", "high"),
    [
        (_owner("Jalousie", "position"), Motion.WALK, 0.0, 1.0),
        (_owner("Dimmer", "position"), Motion.WALK, 0.0, 100.0),
        (_owner("Meter", "totalNegYear", "kWh"), Motion.GROW, 0.0, float("inf")),
        (_owner("InfoOnlyAnalog", "value", "ppm"), Motion.WALK, 400.0, 2000.0),
        (_owner("Slider", "value", "min"), Motion.WALK, 0.0, 100.0),
        (_owner("IRoomControllerV2", "activeMode"), Motion.LEVEL, 0.0, 3.0),
        (StateOwnership(None, "userSettingsTs", None, OwnerKind.GLOBAL), Motion.CONSTANT, 0.0, 0.0),
    ],
)
def test_numeric_profiles(owner, motion, low, high):
    profile = numeric_profile([owner])
    assert (profile.motion, profile.low, profile.high) == (motion, low, high)


def test_mode_numbers_move_by_one_within_their_bounds():
    document = {
        "controls": {
            "60000000-0000-0000-0000000000000001": {
                "name": "Room",
                "type": "IRoomControllerV2",
                "uuidAction": "60000000-0000-0000-0000000000000001",
                "states": {"activeMode": "60000000-0000-0000-0000000000000002"},
            }
        }
    }
    model = SimulatedMiniserver.from_document(document, seed=4)
    values = [value for _, value in _decoded_values(model.step(500))]
    assert set(values) <= {0.0, 1.0, 2.0, 3.0}
    assert {0.0, 3.0} <= set(values)
    assert all(abs(b - a) == 1.0 for a, b in itertools.pairwise(values))
    current = model.values_snapshot()["values"]["60000000-0000-0000-0000000000000002"]
    assert current == values[-1]
