"""What the simulator knows about states: which event table each arrives in, how values move.

The structure file has no type per state (protocol reference §6.3), so the table is decided by the
state's name, from what real files and captures show:

* ``entriesAndDefaultValue`` (Daytimer, IRCDaytimer) -> the daytimer table;
* ``weatherServer.states`` (``actual``, ``forecast``) -> the weather table;
* the names in ``TEXT_STATE_NAMES`` / ``TEXT_GLOBAL_STATE_NAMES`` -> the text table;
* everything else -> the value table. ``globalStates.notifications`` and ``modifications`` are
  numeric on purpose: a real start-up capture has them in the value table (0.0) although they are
  documented as text channels.

When several owners share one UUID and disagree, the most specific claim wins: weather, then
daytimer, then text, then value.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence

import attrs

from ..structure import OwnerKind, StateOwnership


class Table(enum.Enum):
    """The event table a state's updates arrive in."""

    VALUE = "value"
    TEXT = "text"
    DAYTIMER = "daytimer"
    WEATHER = "weather"


#: Control states whose events are text events (seen in real files, captures and [DOC-SF]).
TEXT_STATE_NAMES = frozenset(
    {
        "text",
        "textAndIcon",
        "iconAndColor",
        "overrideEntries",
        "activeMoods",
        "moodList",
        "favoriteMoods",
        "additionalMoods",
        "circuitNames",
        "daylightConfig",
        "modeList",
        "infoText",
        "sensors",  # Alarm history; the same UUID as its Tracker subcontrol's ``entries``
        "jLocked",
        "entries",
        "sceneList",
        "color",  # Colorpicker: "hsv(42,76,77)"
        "favorites",
        "events",
        "lastBellEvents",
        "entryList",
        "deviceSettings",
        "wakeAlarmSoundSettings",
        "loads",
    }
)

#: ``globalStates`` entries whose events are text events.
TEXT_GLOBAL_STATE_NAMES = frozenset(
    {
        "miniserverTime",
        "pastTasks",
        "plannedTasks",
        "favColors",
        "favColorSequences",
        "liveSearch",
        "userSettings",
    }
)

DAYTIMER_STATE_NAME = "entriesAndDefaultValue"


def table_of(owners: Sequence[StateOwnership]) -> Table:
    """The table the events of a state UUID with these owners arrive in."""
    if len(owners) == 1:  # the common case, worth a shortcut on a 100k-state structure
        return _owner_table(owners[0])
    tables = {_owner_table(owner) for owner in owners}
    for table in (Table.WEATHER, Table.DAYTIMER, Table.TEXT):
        if table in tables:
            return table
    return Table.VALUE


def _owner_table(owner: StateOwnership) -> Table:
    if owner.kind is OwnerKind.WEATHER:
        return Table.WEATHER
    if owner.kind is OwnerKind.GLOBAL:
        return Table.TEXT if owner.state_name in TEXT_GLOBAL_STATE_NAMES else Table.VALUE
    if owner.state_name == DAYTIMER_STATE_NAME:
        return Table.DAYTIMER
    return Table.TEXT if owner.state_name in TEXT_STATE_NAMES else Table.VALUE


# --- how numeric values move -------------------------------------------------------------------


class Motion(enum.IntEnum):
    """How ``step`` changes a numeric state."""

    CONSTANT = 0  # configuration (min/max/step, sunrise, ...): never picked
    WALK = 1  # bounded random walk of at most ``step`` per event
    FLIP = 2  # digital: 0 <-> 1
    GROW = 3  # meter totals: grow by up to ``step`` per event, never shrink
    LEVEL = 4  # an enumeration (a mode number): +-1 within the bounds


@attrs.frozen
class NumericProfile:
    """Bounds and behaviour of one numeric state.

    ``typical`` is the centre of the initial value (for ``FLIP`` the chance to start at 1, for
    ``GROW`` the order of magnitude of the starting total).
    """

    motion: Motion
    low: float
    high: float
    typical: float
    step: float = 0.0


def _constant(value: float) -> NumericProfile:
    return NumericProfile(Motion.CONSTANT, value, value, value)


_INFINITY = float("inf")
_DIGITAL = NumericProfile(Motion.FLIP, 0.0, 1.0, 0.3)
_TEMPERATURE = NumericProfile(Motion.WALK, 15.0, 28.0, 21.0, 0.2)
_PERCENT = NumericProfile(Motion.WALK, 0.0, 100.0, 50.0, 2.0)
_FRACTION = NumericProfile(Motion.WALK, 0.0, 1.0, 0.3, 0.05)
_POWER = NumericProfile(Motion.WALK, 0.0, 10.0, 1.5, 0.1)
_ENERGY_TOTAL = NumericProfile(Motion.GROW, 0.0, _INFINITY, 12000.0, 0.05)
_DEFAULT = NumericProfile(Motion.WALK, 0.0, 100.0, 10.0, 1.0)

_DIGITAL_NAMES = (
    "active",
    "openWindow",
    "up",
    "down",
    "safetyActive",
    "autoAllowed",
    "autoActive",
    "locked",
    "lockedOn",
    "presence",
    "armed",
    "isEnabled",
    "isAlarmActive",
    "bell",
    "needsActivation",
    "resetActive",
    "isPreparing",
    "movement",
)

_BY_NAME: dict[str, NumericProfile] = {
    **dict.fromkeys(_DIGITAL_NAMES, _DIGITAL),
    "tempActual": _TEMPERATURE,
    "temperatures": _TEMPERATURE,
    "tempTarget": NumericProfile(Motion.WALK, 18.0, 24.0, 21.0, 0.5),
    "comfortTemperature": _constant(21.5),
    "humidityActual": NumericProfile(Motion.WALK, 30.0, 70.0, 45.0, 1.0),
    "activeMode": NumericProfile(Motion.LEVEL, 0.0, 3.0, 1.0),
    "operatingMode": NumericProfile(Motion.LEVEL, 0.0, 2.0, 0.0),
    "mode": _constant(1.0),
    "position": _PERCENT,
    "shadePosition": _FRACTION,
    "min": _constant(0.0),
    "max": _constant(100.0),
    "step": _constant(1.0),
    "error": _constant(0.0),
    "override": _constant(0.0),
    "actual": _POWER,
    "total": _ENERGY_TOTAL,
    "totalDay": NumericProfile(Motion.GROW, 0.0, _INFINITY, 8.0, 0.01),
}

_BY_TYPE_AND_NAME: dict[tuple[str, str], NumericProfile] = {
    ("Jalousie", "position"): _FRACTION,  # 0 = up ... 1 = down
    ("Daytimer", "value"): _DIGITAL,
}

# By the unit of the state's format string, for states the tables above do not name.
_BY_UNIT: dict[str, NumericProfile] = {
    "°": _TEMPERATURE,
    "°C": _TEMPERATURE,
    "%": _PERCENT,
    "kW": _POWER,
    "W": NumericProfile(Motion.WALK, 0.0, 3000.0, 300.0, 20.0),
    "kWh": _ENERGY_TOTAL,
    "ppm": NumericProfile(Motion.WALK, 400.0, 2000.0, 600.0, 20.0),
    "lx": NumericProfile(Motion.WALK, 0.0, 2000.0, 300.0, 25.0),
}

_GLOBALS: dict[str, NumericProfile] = {
    "operatingMode": _constant(3.0),  # Monday, in the usual operatingModes table
    "sunrise": _constant(420.0),  # minutes since midnight: 07:00
    "sunset": _constant(1080.0),  # 18:00
    "hasInternet": _constant(1.0),
}


def numeric_profile(owners: Sequence[StateOwnership]) -> NumericProfile:
    """The profile of a numeric state, decided by its first owner."""
    owner = owners[0]
    if owner.kind is not OwnerKind.CONTROL or owner.control is None:
        return _GLOBALS.get(owner.state_name, _constant(0.0))
    by_type = _BY_TYPE_AND_NAME.get((owner.control.type, owner.state_name))
    if by_type is not None:
        return by_type
    by_name = _BY_NAME.get(owner.state_name)
    if by_name is not None:
        return by_name
    if owner.state_name.startswith("total"):  # totalWeek, totalNegYear, ...: meter counters
        return _ENERGY_TOTAL
    return _BY_UNIT.get(owner.unit, _DEFAULT)


# --- initial texts --------------------------------------------------------------------------------

STATUS_TEXTS = ("OK", "All closed", "Window open", "Heating", "Standby", "Away", "Cleaning")

_INITIAL_TEXTS = {
    "overrideEntries": "[]",
    "activeMoods": "[778]",
    "moodList": '[{"name":"Bright","id":777,"static":false},{"name":"Off","id":778,"static":true}]',
    "favoriteMoods": "[777]",
    "additionalMoods": "[]",
    "circuitNames": '{"AI1":"Ceiling","AI2":"Spots","AI3":"Wall socket"}',
    "iconAndColor": '{"icon":"IconsFilled/information-circle.svg","color":"#69C350"}',
    # Real modeList texts carry backslash-escaped quotes (protocol reference §3.3).
    "modeList": r"0:mode=0;name=\"Holiday\",1:mode=3;name=\"Monday\",2:mode=8;name=\"Saturday\"",
    "jLocked": "",
    "daylightConfig": "{}",
    "liveSearch": "{}",
    "userSettings": "{}",
}

_STATUS_NAMES = frozenset({"text", "textAndIcon", "infoText"})


def initial_text(owners: Sequence[StateOwnership], rng: random.Random, miniserver_time: str) -> str:
    """A plausible first text for a text state; lists and histories start empty (``[]``)."""
    if is_clock_text(owners):
        return miniserver_time
    name = owners[0].state_name
    if name in _STATUS_NAMES:
        return rng.choice(STATUS_TEXTS)
    return _INITIAL_TEXTS.get(name, "[]")


def is_changing_text(owners: Sequence[StateOwnership]) -> bool:
    """Whether ``step`` may change this text state (clock and status texts do, lists do not)."""
    return is_clock_text(owners) or owners[0].state_name in _STATUS_NAMES


def is_clock_text(owners: Sequence[StateOwnership]) -> bool:
    """``globalStates.miniserverTime``: its text is the Miniserver's clock."""
    return owners[0].kind is OwnerKind.GLOBAL and owners[0].state_name == "miniserverTime"
