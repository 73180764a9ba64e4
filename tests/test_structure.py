from __future__ import annotations

import contextlib
import json
import struct
from collections import Counter
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structure_samples import CAT_UUID, ROOM_UUID, control, structure, uuid

from loxone_trio_exporter.errors import LoxoneExporterError
from loxone_trio_exporter.protocol import uuid_from_str, uuid_to_str
from loxone_trio_exporter.structure import (
    Control,
    ControlState,
    MiniserverInfo,
    OwnerKind,
    StateIndex,
    Structure,
    StructureError,
    build_state_index,
    load_structure,
    structure_from_dict,
)

SHOWROOM = "loxone-java-showroom.LoxAPP3.json"
SMARTEON = "smarteon-2025.LoxAPP3.json"


# --- an independent reading of the raw JSON, to check the model against --------------------------


def _walk_raw(controls: Mapping[str, Any], parent: Any = None) -> Iterator[tuple[Any, Any]]:
    for raw in controls.values():
        yield raw, parent
        yield from _walk_raw(raw.get("subControls") or {}, raw)


def _raw_owners(doc: Mapping[str, Any]) -> dict[str, list[tuple[str, ...]]]:
    """Lowercase state UUID -> owners as ``(kind, control uuidAction or "", label)``."""
    owners: dict[str, list[tuple[str, ...]]] = {}
    for name, value in doc["globalStates"].items():
        owners.setdefault(value.lower(), []).append(("global", "", name))
    for raw, _ in _walk_raw(doc["controls"]):
        for name, value in raw.get("states", {}).items():
            if isinstance(value, list):
                for i, element in enumerate(value):
                    owners.setdefault(element.lower(), []).append(
                        ("control", raw["uuidAction"], f"{name}[{i}]")
                    )
            else:
                owners.setdefault(value.lower(), []).append(("control", raw["uuidAction"], name))
    for name, value in doc["weatherServer"]["states"].items():
        owners.setdefault(value.lower(), []).append(("weather", "", name))
    return owners


def _index_owners(index: StateIndex) -> dict[str, list[tuple[str, ...]]]:
    return {
        uuid_to_str(raw): [
            (owner.kind.value, owner.control.uuid_action if owner.control else "", owner.label)
            for owner in index.owners(raw)
        ]
        for raw in index
    }


def _load_real(shared_fixture: Any, name: str) -> tuple[Structure, dict[str, Any]]:
    path = shared_fixture(name)
    return load_structure(path.read_bytes()), json.loads(path.read_text("utf-8"))


# --- the real files ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "top_level"), [(SHOWROOM, 6), (SMARTEON, 135)])
def test_real_files_load(shared_fixture, name, top_level):
    loaded, doc = _load_real(shared_fixture, name)
    assert len(loaded.controls) == top_level == len(doc["controls"])
    flat = list(loaded.walk_controls())
    raw_flat = list(_walk_raw(doc["controls"]))
    assert [c.uuid_action for c in flat] == [raw["uuidAction"] for raw, _ in raw_flat]
    assert [c.name for c in flat] == [raw["name"] for raw, _ in raw_flat]
    assert [c.parent_uuid for c in flat] == [p and p["uuidAction"] for _, p in raw_flat]
    raw_state_count = sum(
        len(v) if isinstance(v, list) else 1
        for raw, _ in raw_flat
        for v in raw.get("states", {}).values()
    )
    assert sum(len(c.states) for c in flat) == raw_state_count
    assert loaded.skipped_states == 0
    assert loaded.last_modified == doc["lastModified"]
    assert loaded.ms_info.serial_nr == doc["msInfo"]["serialNr"]
    assert loaded.ms_info.miniserver_type == doc["msInfo"]["miniserverType"]
    assert loaded.ms_info.temp_unit == 0
    assert {k: r.name for k, r in loaded.rooms.items()} == {
        k: r["name"] for k, r in doc["rooms"].items()
    }
    assert {k: c.name for k, c in loaded.categories.items()} == {
        k: c["name"] for k, c in doc["cats"].items()
    }
    assert dict(loaded.global_states) == doc["globalStates"]
    assert {str(k): v for k, v in loaded.operating_modes.items()} == doc["operatingModes"]
    assert loaded.weather_server is not None
    assert loaded.weather_server.actual == doc["weatherServer"]["states"]["actual"]
    assert loaded.weather_server.forecast == doc["weatherServer"]["states"]["forecast"]
    assert loaded.weather_server.formats["temperature"] == "%.1f°"
    index = build_state_index(loaded)
    assert index.controls == tuple(flat)
    assert len(index) == len(_raw_owners(doc))


def test_showroom_details(shared_fixture):
    loaded, _ = _load_real(shared_fixture, SHOWROOM)
    assert loaded.ms_info.ms_name == "ShowRoom"
    assert loaded.operating_modes[-6] == "Nikdo není přítomen"
    by_name = {c.name: c for c in loaded.walk_controls() if not c.is_subcontrol}
    irc = by_name["Inteligentní regulace pokojové teploty"]
    assert (irc.type, irc.room, irc.category) == ("IRoomController", "Obývací pokoj", "Teplota")
    assert (irc.details_format, irc.unit) == ("%.1f°", "°")
    temperatures = [s for s in irc.states if s.name == "temperatures"]
    assert [s.position for s in temperatures] == list(range(7))
    assert [s.label for s in temperatures] == [f"temperatures[{i}]" for i in range(7)]
    # A subcontrol without room/cat inherits its parent's and names its parent.
    alarm = by_name["Alarm"]
    (tracker,) = alarm.sub_controls
    assert tracker.uuid_action == f"{alarm.uuid_action}/sensors"
    assert (tracker.room, tracker.category) == (alarm.room, alarm.category) == ("Centrál", "Alarm")
    assert (tracker.room_uuid, tracker.category_uuid) == (alarm.room_uuid, alarm.category_uuid)
    assert (tracker.parent_uuid, tracker.parent_name) == (alarm.uuid_action, "Alarm")
    assert tracker.is_subcontrol
    assert not alarm.is_subcontrol


def test_showroom_value_table_resolves(shared_fixture, vectors):
    loaded, _ = _load_real(shared_fixture, SHOWROOM)
    index = build_state_index(loaded)
    table = vectors["value_events"][1]
    data = bytes.fromhex(table["hex"])
    assert len(data) % 24 == 0
    events = list(struct.iter_unpack("<16sd", data))
    assert len(events) == 79
    assert sum(1 for raw, _ in events if index.owners(raw)) == 52
    assert sum(1 for raw, _ in events if raw in index) == 52

    values: dict[tuple[str, str], float] = {}
    for raw, value in events:
        for owner in index.owners(raw):
            name = owner.control.name if owner.control else owner.kind.value
            values[name, owner.label] = value
    irc = "Inteligentní regulace pokojové teploty"
    assert [values[irc, f"temperatures[{i}]"] for i in range(7)] == [
        3.0, 22.5, 23.0, 5.0, 25.5, 1.0, 1.0,
    ]  # fmt: skip
    assert values[irc, "tempTarget"] == 22.5
    assert values["Alarm", "armedDelayTotal"] == 600.0
    assert values["global", "operatingMode"] == 5.0
    assert values["global", "sunrise"] == 461.0
    assert values["global", "sunset"] == 952.0
    # list-state owners carry the element's position
    owner = next(o for raw, _ in events for o in index.owners(raw) if o.position == 4)
    assert (owner.state_name, owner.position, owner.unit) == ("temperatures", 4, "°")


@pytest.mark.parametrize(("name", "shared"), [(SHOWROOM, 4), (SMARTEON, 1)])
def test_every_owner_of_a_shared_uuid_is_kept(shared_fixture, name, shared):
    loaded, doc = _load_real(shared_fixture, name)
    index = build_state_index(loaded)
    expected = _raw_owners(doc)
    assert sum(1 for owners in expected.values() if len(owners) > 1) == shared
    assert _index_owners(index) == expected  # every owner, in file order
    assert sum(1 for raw in index if len(index.owners(raw)) > 1) == shared


def test_a_state_uuid_shared_with_a_uuid_action(shared_fixture):
    loaded, _ = _load_real(shared_fixture, SHOWROOM)
    index = build_state_index(loaded)
    smoke = next(c for c in loaded.controls if c.type == "SmokeAlarm")
    owners = index.owners(uuid_from_str(smoke.uuid_action))
    assert [(o.control and o.control.uuid_action, o.state_name) for o in owners] == [
        (smoke.uuid_action, "sensors"),
        (f"{smoke.uuid_action}/sensors", "entries"),
    ]
    assert {o.kind for o in owners} == {OwnerKind.CONTROL}


def test_series_identity_is_unique_although_names_repeat(shared_fixture):
    loaded, _ = _load_real(shared_fixture, SMARTEON)
    index = build_state_index(loaded)
    names = Counter(c.name for c in loaded.controls)
    assert any(count > 1 for count in names.values())
    identities = [
        (owner.control.uuid_action, owner.label)
        for raw in index
        for owner in index.owners(raw)
        if owner.control is not None
    ]
    assert len(identities) == len(set(identities))
    assert len(identities) == sum(len(c.states) for c in index.controls)


def test_controls_without_a_room(shared_fixture):
    loaded, doc = _load_real(shared_fixture, SMARTEON)
    without = [c for c in loaded.walk_controls() if c.room_uuid is None]
    raw_without = [raw for raw, parent in _walk_raw(doc["controls"]) if "room" not in raw]
    assert without
    # Subcontrols inherit, so only those whose whole ancestry lacks a room have none.
    assert len(without) <= len(raw_without)
    assert {c.room for c in without} == {""}


# --- tolerance -----------------------------------------------------------------------------------


def test_synthetic_document():
    doc = structure(
        control("Lamp", "Switch", room=ROOM_UUID, cat=CAT_UUID, details={"format": "%.0f%%"})
    )
    loaded = structure_from_dict(doc)
    (lamp,) = loaded.controls
    assert (lamp.room, lamp.category, lamp.unit) == ("Living room", "Lights", "%")
    assert loaded.rooms[ROOM_UUID].type == 1
    assert loaded.categories[CAT_UUID].type == "lights"
    assert loaded.operating_modes == {0: "Holiday", -1: "Alarm"}
    assert loaded.ms_info == MiniserverInfo(
        serial_nr="504F94000000", ms_name="Test", miniserver_type=2
    )
    assert loaded.weather_server is None
    assert load_structure(json.dumps(doc)) == loaded
    assert load_structure(json.dumps(doc).encode()) == loaded
    assert load_structure(b"\xef\xbb\xbf" + json.dumps(doc).encode()) == loaded  # UTF-8 BOM


def test_no_room_no_category_and_unknown_ones():
    doc = structure(
        control("Bare"),
        control("Unknown room", room=uuid(), cat=uuid()),
        control("Nulls", room=None, cat=None, type=None, details=None, subControls=None),
        control("Empty refs", room="", cat=""),
    )
    bare, unknown, nulls, empty = structure_from_dict(doc).controls
    assert (bare.room, bare.category, bare.room_uuid, bare.category_uuid) == ("", "", None, None)
    assert (unknown.room, unknown.category) == ("", "")
    assert unknown.room_uuid is not None
    assert unknown.category_uuid is not None
    assert (nulls.room, nulls.type, nulls.sub_controls) == ("", "", ())
    assert (empty.room_uuid, empty.category_uuid) == (None, None)


def test_non_uuid_state_values_are_skipped_and_counted():
    good = uuid()
    doc = structure(
        control(
            "Odd",
            states={
                "empty": "",
                "number": 5,
                "object": {"uuid": good},
                "null": None,
                "bool": True,
                "suffixed": f"{good}/AI1",
                "list": [uuid(), "", 7, uuid()],
                "upper": good.upper(),
                "fine": good,
            },
        ),
        globalStates={"operatingMode": uuid(), "broken": "", "alsoBroken": 3},
        weatherServer={"states": {"actual": uuid(), "forecast": None}, "format": {"x": 1}},
    )
    loaded = structure_from_dict(doc)
    (odd,) = loaded.controls
    assert [s.label for s in odd.states] == ["list[0]", "list[3]", "upper", "fine"]
    assert odd.states[2].uuid == good  # normalised to lower case
    assert loaded.skipped_states == 6 + 2 + 2 + 1
    assert list(loaded.global_states) == ["operatingMode"]
    assert loaded.weather_server is not None
    assert list(loaded.weather_server.states) == ["actual"]
    assert loaded.weather_server.forecast is None
    assert dict(loaded.weather_server.formats) == {}


def test_unknown_keys_are_ignored_everywhere():
    doc = structure(
        control(
            "Lamp", room=ROOM_UUID, futureKey={"a": [1]}, details={"new": [], "format": "%d W"}
        ),
        futureTopLevel=[1, 2],
        msInfo={"serialNr": "X", "somethingNew": {"deep": True}},
        weatherServer={"states": {}, "format": {}, "weatherTypeTexts": {"1": "Sunny"}},
    )
    doc["rooms"][ROOM_UUID]["newRoomKey"] = 1
    loaded = structure_from_dict(doc)
    (lamp,) = loaded.controls
    assert (lamp.room, lamp.unit) == ("Living room", "W")
    assert loaded.ms_info.serial_nr == "X"


def test_deeply_nested_subcontrols_inherit_room_and_category():
    leaf = control("Leaf", uuid_action="leaf/3")
    middle = control("Middle", uuid_action="leaf/2", cat=uuid(), subControls={"leaf/3": leaf})
    upper = control("Upper", uuid_action="leaf/1", subControls={"leaf/2": middle})
    top = control(
        "Top", room=ROOM_UUID, cat=CAT_UUID, uuid_action="top", subControls={"leaf/1": upper}
    )
    loaded = structure_from_dict(structure(top))
    flat = list(loaded.walk_controls())
    assert [c.name for c in flat] == ["Top", "Upper", "Middle", "Leaf"]
    assert [c.parent_name for c in flat] == [None, "Top", "Upper", "Middle"]
    assert [c.parent_uuid for c in flat] == [None, "top", "leaf/1", "leaf/2"]
    assert {c.room for c in flat} == {"Living room"}
    # Middle names a category the file does not list: it and its child have an empty one.
    assert [c.category for c in flat] == ["Lights", "Lights", "", ""]
    assert flat[3].category_uuid == flat[2].category_uuid != CAT_UUID
    assert build_state_index(loaded).controls == tuple(flat)


def test_subcontrols_nested_absurdly_deep_are_refused():
    def nested(levels):
        inner = control("Leaf", subControls={})
        for level in range(levels - 1):
            inner = control(f"Level {level}", subControls={"k": inner})
        return structure(inner)

    assert len(list(structure_from_dict(nested(32)).walk_controls())) == 32
    with pytest.raises(StructureError, match="nested deeper than 32 levels"):
        structure_from_dict(nested(33))
    with pytest.raises(StructureError, match="nested deeper than 32 levels"):
        structure_from_dict(nested(5000))
    with pytest.raises(StructureError, match="nested too deeply"):
        load_structure("[" * 100_000)


def test_non_ascii_and_repeated_names():
    doc = structure(
        control("Teplota média", uuid_action=uuid(1)),
        control("Teplota média", uuid_action=uuid(2)),
        control("温度 🌡", uuid_action=uuid(3)),
    )
    doc["rooms"][ROOM_UUID]["name"] = "Obývací pokoj"
    doc["controls"][uuid(3)]["room"] = ROOM_UUID
    loaded = load_structure(json.dumps(doc, ensure_ascii=False).encode())
    assert [c.name for c in loaded.controls] == ["Teplota média", "Teplota média", "温度 🌡"]
    assert loaded.controls[2].room == "Obývací pokoj"


def test_lenient_descriptive_fields():
    doc = structure(
        msInfo={"serialNr": 5, "msName": None, "miniserverType": True, "tempUnit": 1},
        operatingModes={"a": "x", "-1": "y", "2": 3, "1.5": "z", "9" * 40: "huge"},
        rooms={"r": {"name": None, "type": "kitchen"}, "s": {}},
        cats={"c": {"name": "C", "type": 7}},
        lastModified=None,
    )
    loaded = structure_from_dict(doc)
    assert loaded.ms_info == MiniserverInfo(temp_unit=1)
    assert loaded.operating_modes == {-1: "y"}
    assert (loaded.rooms["r"].name, loaded.rooms["r"].type, loaded.rooms["s"].name) == (
        "",
        None,
        "",
    )
    assert loaded.categories["c"].type is None
    assert loaded.last_modified == ""


def test_an_empty_document_is_an_empty_structure():
    loaded = structure_from_dict({})
    assert loaded == Structure()
    assert (loaded.controls, loaded.skipped_states, loaded.weather_server) == ((), 0, None)
    nulls = dict.fromkeys(
        ["controls", "rooms", "cats", "globalStates", "operatingModes", "msInfo", "weatherServer"]
    )
    assert structure_from_dict(nulls) == Structure()
    index = build_state_index(loaded)
    assert (len(index), list(index), index.controls) == (0, [], ())


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff", "not UTF-8"),
        (b"", r"not valid JSON: Expecting value at line 1 column 1"),
        ('{\n  "controls": {\n    "a": }\n}', r"not valid JSON: .* at line 3 column 10"),
        ("[1, 2]", r"top level: expected an object, got a list"),
        ("null", r"top level: expected an object, got null"),
        ('{"lastModified": ' + "9" * 5000 + "}", r"not acceptable JSON: Exceeds the limit"),
    ],
)
def test_load_errors_say_where(data, message):
    with pytest.raises(StructureError, match=message):
        load_structure(data)


_DROP = object()  # remove the key

_C = r'controls\["K"\]'


@pytest.mark.parametrize(
    ("where", "key", "value", "message"),
    [
        ("doc", "controls", [], r"^structure file: controls: expected an object, got a list$"),
        ("control", "uuidAction", _DROP, rf"{_C}\.uuidAction: required field missing"),
        ("control", "name", _DROP, rf"{_C}\.name: required field missing"),
        ("control", "name", 5, rf"{_C}\.name: expected a string, got a number"),
        ("control", "name", None, rf"{_C}\.name: expected a string, got null"),
        ("control", "states", "s", rf"{_C}\.states: expected an object, got a string"),
        ("control", "room", [ROOM_UUID], rf"{_C}\.room: expected a string, got a list"),
        ("control", "type", True, rf"{_C}\.type: expected a string, got a boolean"),
        ("control", "subControls", {"K/1": 3}, rf'{_C}\.subControls\["K/1"\]: expected an object'),
        ("control", "subControls", {"K/1": {"name": "x"}}, r'\["K/1"\]\.uuidAction: required'),
        ("doc", "rooms", {"ř": "Kitchen"}, r'rooms\["ř"\]: expected an object, got a string'),
        (
            "doc",
            "cats",
            {"c": {"name": 1.5}},
            r'cats\["c"\]\.name: expected a string, got a number',
        ),
        ("doc", "globalStates", ["x"], r"globalStates: expected an object, got a list"),
        ("doc", "operatingModes", "x", r"operatingModes: expected an object"),
        ("doc", "msInfo", 4, r"msInfo: expected an object, got a number"),
        ("doc", "weatherServer", {"states": 1}, r"weatherServer\.states: expected an object"),
        ("doc", "lastModified", 20250101, r"lastModified: expected a string, got a number"),
        ("doc", "controls", {"K": {1, 2}}, rf"{_C}: expected an object, got set"),
        ("doc", "globalStates", {1: uuid()}, r"globalStates\[1\]: expected a string, got a number"),
    ],
)
def test_wrong_types_name_the_path(where, key, value, message):
    ctrl = control("Lamp", uuid_action="K")
    doc = structure(ctrl)
    target = doc if where == "doc" else ctrl
    if value is _DROP:
        del target[key]
    else:
        target[key] = value
    with pytest.raises(StructureError, match=message):
        structure_from_dict(doc)


def test_several_errors_are_summarised():
    doc = structure(*(control(f"C{i}", uuid_action=f"K{i}", states=1) for i in range(5)))
    with pytest.raises(StructureError, match=r"K2.*states.*\(and 2 more\)$") as caught:
        structure_from_dict(doc)
    assert "K3" not in str(caught.value)
    assert isinstance(caught.value, LoxoneExporterError)


class _Unreadable(Mapping[str, Any]):
    """A mapping that fails when read: errors of any kind become StructureError."""

    def __getitem__(self, key: str) -> Any:
        if key == "name":
            raise ValueError("cannot read the name")
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(["name"])

    def __len__(self) -> int:
        return 1


def test_unexpected_failures_inside_the_document_are_structure_errors():
    with pytest.raises(StructureError, match=r'controls\["K"\]\.name: invalid value \(ValueError'):
        structure_from_dict({"controls": {"K": _Unreadable()}})


def test_a_hand_built_structure_with_a_bad_uuid_is_refused_by_the_index():
    bad = Control("K", "Lamp", "Switch", states=(ControlState("active", "not-a-uuid"),))
    with pytest.raises(StructureError, match="'active'"):
        build_state_index(Structure(controls=(bad,)))


# --- the index -----------------------------------------------------------------------------------


def test_index_api():
    shared = uuid()
    lamp = control("Lamp", states={"active": shared, "list": [uuid(), shared]})
    sub = control("Sub", uuid_action=f"{lamp['uuidAction']}/1", states={"value": shared})
    lamp["subControls"] = {sub["uuidAction"]: sub}
    doc = structure(
        lamp,
        globalStates={"operatingMode": shared},
        weatherServer={"states": {"actual": shared, "forecast": uuid()}},
    )
    index = build_state_index(structure_from_dict(doc))
    raw = uuid_from_str(shared)
    owners = index.owners(raw)
    assert [(o.kind, o.state_name, o.position, o.label) for o in owners] == [
        (OwnerKind.GLOBAL, "operatingMode", None, "operatingMode"),
        (OwnerKind.CONTROL, "active", None, "active"),
        (OwnerKind.CONTROL, "list", 1, "list[1]"),
        (OwnerKind.CONTROL, "value", None, "value"),
        (OwnerKind.WEATHER, "actual", None, "actual"),
    ]
    assert [o.control and o.control.name for o in owners] == [None, "Lamp", "Lamp", "Sub", None]
    assert raw in index
    assert bytes(16) not in index
    assert "not bytes" not in index
    assert index.owners(bytes(16)) == ()
    assert len(index) == len(list(index)) == 3  # shared, list[0], forecast
    assert [c.name for c in index.controls] == ["Lamp", "Sub"]
    assert all(isinstance(key, bytes) and len(key) == 16 for key in index)


def test_model_is_frozen_and_hashable():
    doc = structure(control("Lamp", uuid_action=uuid(50), states={"active": uuid(51)}))
    loaded = structure_from_dict(doc)
    (lamp,) = loaded.controls
    with pytest.raises(AttributeError):
        lamp.name = "x"  # type: ignore[misc]
    assert isinstance(loaded.rooms, MappingProxyType)
    (again,) = structure_from_dict(doc).controls
    assert again is not lamp
    assert again == lamp
    assert hash(again) == hash(lamp)
    (owner,) = build_state_index(loaded).owners(uuid_from_str(lamp.states[0].uuid))
    assert {owner: 1}[owner] == 1


# --- anything at all -----------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=25,
)

_UUIDS = [uuid(n) for n in range(900, 905)] + [ROOM_UUID, CAT_UUID]
_uuids = st.sampled_from(_UUIDS)
_names = st.text(max_size=8)
_optional_strings = st.none() | _names

# Documents of the valid shape; only state values vary freely, since odd ones are tolerated.
_state_values = _uuids | json_scalars | st.lists(_uuids | json_scalars, max_size=3)
_controls: st.SearchStrategy[Any] = st.deferred(
    lambda: st.dictionaries(
        _uuids | st.text(max_size=4),
        st.fixed_dictionaries(
            {"name": _names, "uuidAction": _uuids},
            optional={
                "type": st.none() | st.sampled_from(["Meter", "Switch", ""]),
                "room": st.none() | st.sampled_from([ROOM_UUID, uuid(1), ""]),
                "cat": st.none() | st.sampled_from([CAT_UUID, uuid(2)]),
                "states": st.none() | st.dictionaries(_names, _state_values, max_size=4),
                "details": json_values,
                "subControls": st.none() | _controls,
                "extra": json_values,
            },
        ),
        max_size=3,
    )
)
_places = st.dictionaries(
    _uuids, st.fixed_dictionaries({}, optional={"name": _optional_strings, "type": json_scalars})
)
valid_documents = st.fixed_dictionaries(
    {},
    optional={
        "lastModified": _optional_strings,
        "msInfo": st.none()
        | st.dictionaries(st.sampled_from(["serialNr", "tempUnit"]), json_values),
        "globalStates": st.none() | st.dictionaries(_names, _uuids | json_scalars, max_size=3),
        "operatingModes": st.none() | st.dictionaries(st.text(max_size=3), json_values),
        "rooms": st.none() | _places,
        "cats": st.none() | _places,
        "controls": st.none() | _controls,
        "weatherServer": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "states": st.none() | st.dictionaries(_names, _uuids | json_scalars, max_size=3),
                "format": st.none() | st.dictionaries(_names, json_values, max_size=3),
                "extra": json_values,
            },
        ),
        "extra": json_values,
    },
)


def _places_in(value: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) inside a JSON value, to put something else there."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, inner in items:
        yield value, key
        if isinstance(inner, dict | list):
            yield from _places_in(inner)


@st.composite
def corrupted_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid document with one value, anywhere in it, replaced by any JSON value."""
    doc = draw(valid_documents)
    places = list(_places_in(doc))
    if places:
        container, key = draw(st.sampled_from(places))
        container[key] = draw(json_values)
    return doc


def _state_references(doc: Mapping[str, Any]) -> int:
    """How many state references a loadable document makes (kept or skipped)."""
    count = len(doc.get("globalStates") or {})
    count += len((doc.get("weatherServer") or {}).get("states") or {})
    for raw, _ in _walk_raw(doc.get("controls") or {}):
        for value in (raw.get("states") or {}).values():
            count += len(value) if isinstance(value, list) else 1
    return count


def _check(obj: object) -> None:
    try:
        loaded = structure_from_dict(obj)
    except StructureError:
        return
    index = build_state_index(loaded)
    owners = [owner for raw in index for owner in index.owners(raw)]
    assert isinstance(obj, dict)
    assert len(owners) + loaded.skipped_states == _state_references(obj)
    assert all(o.control is None or o.control in index.controls for o in owners)


@given(json_values)
def test_any_json_value_loads_or_raises_structure_error(obj):
    _check(obj)


@given(valid_documents)
def test_documents_of_the_valid_shape_load(doc):
    loaded = structure_from_dict(doc)
    assert loaded == load_structure(json.dumps(doc))
    _check(doc)


@given(corrupted_documents())
def test_corrupted_documents_load_or_raise_structure_error(doc):
    _check(doc)


@given(st.binary(max_size=64))
def test_any_bytes_load_or_raise_structure_error(data):
    with contextlib.suppress(StructureError):
        load_structure(data)
