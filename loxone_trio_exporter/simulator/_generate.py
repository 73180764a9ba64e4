"""A realistic ``LoxAPP3.json`` for the simulator, generated from a seed.

The document imitates what real files contain (protocol reference §6): ``msInfo``,
``globalStates``, ``operatingModes``, rooms, categories, ``weatherServer`` and controls of the
common types. It deliberately includes what makes real files awkward for an exporter: a state UUID
owned by several controls, LightControllerV2 dimmers sharing ``min``/``max``/``step``, repeated
control names in one room, controls without a room, and the old ``IRoomController`` whose
``temperatures`` state is a list of UUIDs. Same seed, same document.
"""

from __future__ import annotations

import copy
import datetime
import random
from typing import Any

import attrs

JsonObject = dict[str, Any]

#: With fewer top-level controls not every control type would appear; smaller requests get this.
MIN_CONTROLS = 13

STRUCTURE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_ROOMS = ("Living room", "Kitchen", "Bedroom", "Bathroom", "Office", "Hallway", "Garage", "Garden")
# name -> Loxone category type (protocol reference §6.1).
_CATEGORIES = {
    "Lighting": "lights",
    "Shading": "shading",
    "Climate": "indoortemperature",
    "Energy": "undefined",
    "Sensors": "undefined",
    "Schedules": "undefined",
}
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Ids 3..9 are the weekdays; negative ids are user-defined modes (protocol reference §6.1).
_OPERATING_MODES = {
    "0": "Holiday",
    "1": "Vacation",
    "2": "Day off",
    **{str(mode): day for mode, day in enumerate(_DAYS, start=3)},
    "-1": "Alarm",
    "-2": "Presence simulation",
    "-5": "Party",
    "-6": "Nobody home",
}
_GLOBAL_STATES = (
    *("operatingMode", "sunrise", "sunset", "pastTasks", "plannedTasks", "notifications"),
    *("modifications", "favColorSequences", "favColors", "miniserverTime", "liveSearch"),
)
_WEATHER_SERVER_FORMATS = {
    "relativeHumidity": "%.0f%%",
    "temperature": "%.1f°",
    "windSpeed": "%.0fkm/h",
    "precipitation": "%.1fmm",
    "barometricPressure": "%.0fhPa",
}
_WEATHER_TYPES = {"1": "Clear", "2": "Fair", "3": "Partly cloudy", "5": "Overcast", "11": "Rain"}
# (name, details.format) of analog sensors.
_ANALOG_SENSORS = (
    ("Temperature", "%.1f°"),
    ("Power", "%.3fkW"),
    ("Humidity", "%.0f%%"),
    ("CO2", "%.0fppm"),
    ("Brightness", "%.0flx"),
)
_CIRCUIT_NAMES = ("Ceiling", "Spots", "Wall socket")
_DEVICE_TAILS = 4  # real files mix UUIDs of a few devices: a few distinct Data4 tails


@attrs.frozen
class _Kind:
    """A control type whose states each get a fresh UUID (but ``own_state``: its uuidAction)."""

    names: tuple[str, ...]
    category: str
    states: tuple[str, ...]
    details: JsonObject | None = None
    own_state: str | None = None


_KINDS = {
    "InfoOnlyDigital": _Kind(
        ("Window contact", "Motion", "Door contact", "Rain sensor"),
        "Sensors",
        (),
        {"text": {"on": "Open", "off": "Closed"}, "color": {"on": "#E73246", "off": "#69C350"}},
        own_state="active",
    ),
    "Switch": _Kind(("Socket", "Fan"), "Lighting", ("jLocked", "active"), {"jLockable": True}),
    "Dimmer": _Kind(("Dimmer",), "Lighting", ("position", "min", "max", "step")),
    "Jalousie": _Kind(
        ("Blinds", "Awning"),
        "Shading",
        (
            *("up", "down", "position", "shadePosition", "safetyActive", "autoAllowed"),
            *("autoActive", "locked"),
        ),
        {"animation": 0, "isAutomatic": True},
    ),
    "IRoomControllerV2": _Kind(
        ("Room climate",),
        "Climate",
        (
            *("tempActual", "tempTarget", "comfortTemperature", "activeMode", "operatingMode"),
            *("openWindow", "humidityActual", "overrideEntries"),
        ),
        {"format": "%.1f°", "timerModes": []},
    ),
    "Meter": _Kind(
        ("Energy meter", "Heat pump meter"),
        "Energy",
        ("actual", "total", "totalDay"),
        {"actualFormat": "%.3fkW", "totalFormat": "%.1fkWh", "type": "unidirectional"},
    ),
    "TextState": _Kind(("Status",), "Sensors", ("iconAndColor",), own_state="textAndIcon"),
    "Daytimer": _Kind(
        ("Schedule",),
        "Schedules",
        ("mode", "value", "override", "modeList"),
        {"analog": False, "text": {"on": "On", "off": "Off"}},
        own_state="entriesAndDefaultValue",  # as in real files; arrives in the daytimer table
    ),
}

#: The order generated controls cycle through.
CONTROL_CYCLE = (
    *("InfoOnlyAnalog", "InfoOnlyDigital", "Switch", "Dimmer", "Jalousie", "IRoomControllerV2"),
    *("Meter", "LightControllerV2", "TextState", "Daytimer"),
)


def generate_structure(
    controls: int, *, seed: int, serial: str = "504F94A00001", name: str = "Simulator"
) -> JsonObject:
    """A ``LoxAPP3.json`` document with ``max(controls, MIN_CONTROLS)`` top-level controls.

    Subcontrols (of the light controllers) come on top. The result is plain JSON data, ready for
    ``json.dumps``; the same arguments always give the same document.
    """
    rng = random.Random(seed)  # noqa: S311 - simulation data, not secrets
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    last_modified = start + datetime.timedelta(seconds=rng.randrange(365 * 86400))
    generator = _Generator(rng)
    return {
        "lastModified": last_modified.strftime(STRUCTURE_TIME_FORMAT),
        "msInfo": generator.ms_info(serial, name),
        "globalStates": {state: generator.uuids.new() for state in _GLOBAL_STATES},
        "operatingModes": dict(_OPERATING_MODES),
        "rooms": {uuid: _place(uuid, name, 0) for name, uuid in generator.rooms.items()},
        "cats": {
            uuid: _place(uuid, name, _CATEGORIES[name]) for name, uuid in generator.cats.items()
        },
        "controls": generator.controls(max(controls, MIN_CONTROLS)),
        "weatherServer": {
            "states": {"actual": generator.uuids.new(), "forecast": generator.uuids.new()},
            "format": dict(_WEATHER_SERVER_FORMATS),
            "weatherTypeTexts": dict(_WEATHER_TYPES),
        },
    }


def new_control(
    rng: random.Random, uuids: UuidFactory, room: str | None, cat: str | None
) -> JsonObject:
    """One more control for a structure change: an analog sensor with fresh UUIDs."""
    uuid_action = uuids.new()
    name, fmt = rng.choice(_ANALOG_SENSORS)
    states = {"value": uuid_action}
    details = {"format": fmt}
    return _control(
        uuid_action, f"{name} (new)", "InfoOnlyAnalog", states, room=room, cat=cat, details=details
    )


class UuidFactory:
    """Loxone-style UUIDs (``8-4-4-16``): one Data1 per project, a counter in Data2/Data3.

    The counter makes them unique by construction, with no set to check against; the Data4 tails
    imitate the few devices a real project's UUIDs come from.
    """

    def __init__(self, rng: random.Random) -> None:
        self._data1 = rng.getrandbits(32)
        self._tails = [f"ffff{rng.getrandbits(48):012x}" for _ in range(_DEVICE_TAILS)]
        self._counter = rng.getrandbits(20)  # far below 2**32: the counter never wraps

    def new(self) -> str:
        counter = self._counter
        self._counter = counter + 1
        tail = self._tails[counter % _DEVICE_TAILS]
        return f"{self._data1:08x}-{counter >> 16 & 0xFFFF:04x}-{counter & 0xFFFF:04x}-{tail}"


class _Generator:
    """Builds the parts of one document from one random source, in a fixed order."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.uuids = UuidFactory(rng)
        self.rooms = {name: self.uuids.new() for name in _ROOMS}
        self.cats = {name: self.uuids.new() for name in _CATEGORIES}

    def ms_info(self, serial: str, name: str) -> JsonObject:
        user = {"name": "admin", "uuid": self.uuids.new(), "isAdmin": True}
        user |= {"changePassword": False, "userRights": 2047}
        return {
            "serialNr": serial,
            "msName": name,
            "projectName": f"{name} project",
            "localUrl": "127.0.0.1",
            "remoteUrl": "",
            "tempUnit": 0,
            "currency": "€",
            "squareMeasure": "m²",
            "location": "Simulated City",
            "languageCode": "ENG",
            "catTitle": "Category",
            "roomTitle": "Room",
            "miniserverType": 2,
            "sortByRating": False,
            "currentUser": user,
        }

    def controls(self, count: int) -> JsonObject:
        controls = self._special_controls()
        rooms = list(self.rooms.values())
        for position in range(count - len(controls)):
            # About one control in eleven has no room, as in real files.
            room = None if position % 11 == 5 else rooms[position % len(rooms)]
            control_type = CONTROL_CYCLE[position % len(CONTROL_CYCLE)]
            control = self._control(control_type, self.uuids.new(), room)
            controls[control["uuidAction"]] = control
        return controls

    def _special_controls(self) -> JsonObject:
        """The same sensor shown twice (same name, same room, one value state) and the old IRC."""
        first, second = self.uuids.new(), self.uuids.new()
        room = self.rooms[_ROOMS[0]]
        controls = [
            self._analog(first, room, "Temperature", "%.1f°", value_uuid=first),
            # e.g. in a second category: the value state is the first sensor's, two owners.
            self._analog(second, room, "Temperature", "%.1f°", value_uuid=first),
            self._room_controller_v1(self.uuids.new(), self.rooms[_ROOMS[1]]),
        ]
        return {control["uuidAction"]: control for control in controls}

    def _control(self, control_type: str, uuid_action: str, room: str | None) -> JsonObject:
        if control_type == "InfoOnlyAnalog":
            name, fmt = self.rng.choice(_ANALOG_SENSORS)
            # Real files often reuse uuidAction as the value state's UUID.
            return self._analog(uuid_action, room, name, fmt, value_uuid=uuid_action)
        if control_type == "LightControllerV2":
            return self._light_controller(uuid_action, room)
        kind = _KINDS[control_type]
        states = {state: self.uuids.new() for state in kind.states}
        if kind.own_state is not None:
            states[kind.own_state] = uuid_action
        name = self.rng.choice(kind.names)
        cat = self.cats[kind.category]
        # A copy each: controls of one type must not share (and so co-change) a details object.
        details = copy.deepcopy(kind.details)
        return _control(
            uuid_action, name, control_type, states, room=room, cat=cat, details=details
        )

    def _analog(
        self, uuid_action: str, room: str | None, name: str, fmt: str, *, value_uuid: str
    ) -> JsonObject:
        states = {"value": value_uuid, "error": self.uuids.new()}
        cat = self.cats["Sensors"]
        return _control(
            uuid_action, name, "InfoOnlyAnalog", states, room=room, cat=cat, details={"format": fmt}
        )

    def _room_controller_v1(self, uuid_action: str, room: str) -> JsonObject:
        new = self.uuids.new
        # The only list-valued state in any known file: one value event per element.
        states: JsonObject = {"tempActual": new(), "tempTarget": new(), "mode": new()}
        states["temperatures"] = [new() for _ in range(7)]
        details = {"format": "%.1f°", "restrictedToMode": 0}
        name = "Intelligent room controller"
        cat = self.cats["Climate"]
        return _control(
            uuid_action, name, "IRoomController", states, room=room, cat=cat, details=details
        )

    def _light_controller(self, uuid_action: str, room: str | None) -> JsonObject:
        new = self.uuids.new
        # All dimmers of one light controller share these three states, as in real files.
        shared = {"min": new(), "max": new(), "step": new()}
        sub_controls: JsonObject = {}
        for number in range(1, self.rng.choice((2, 3)) + 1):
            key = f"{uuid_action}/AI{number}"
            name = _CIRCUIT_NAMES[number - 1]
            if number <= 2:
                sub = _control(key, name, "Dimmer", {"position": new(), **shared})
            else:
                sub = _control(key, name, "Switch", {"active": new()})
            sub_controls[key] = sub
        texts = ("activeMoods", "moodList", "favoriteMoods", "additionalMoods", "circuitNames")
        states = {state: new() for state in texts}
        states["presence"] = new()
        details = {"movementScene": 1, "masterValue": f"{uuid_action}/masterValue"}
        cat = self.cats["Lighting"]
        control = _control(
            uuid_action,
            "Lighting",
            "LightControllerV2",
            states,
            room=room,
            cat=cat,
            details=details,
        )
        control["subControls"] = sub_controls
        return control


def _place(uuid: str, name: str, kind: object) -> JsonObject:
    """An entry of ``rooms`` or ``cats``."""
    return {
        "uuid": uuid,
        "name": name,
        "image": "IconsFilled/location-pin.svg",
        "defaultRating": 0,
        "isFavorite": False,
        "type": kind,
        "color": "#69C350",
    }


def _control(
    uuid_action: str,
    name: str,
    control_type: str,
    states: JsonObject,
    *,
    room: str | None = None,
    cat: str | None = None,
    details: JsonObject | None = None,
) -> JsonObject:
    """A control object with its keys in the order real files have them."""
    control: JsonObject = {"name": name, "type": control_type, "uuidAction": uuid_action}
    if room is not None:
        control["room"] = room
    if cat is not None:
        control["cat"] = cat
    control |= {"defaultRating": 0, "isFavorite": False, "isSecured": False, "restrictions": 0}
    if details is not None:
        control["details"] = details
    control["states"] = states
    return control
