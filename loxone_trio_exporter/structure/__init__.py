"""The structure file ``LoxAPP3.json``: a frozen model of it and the state index.

``load_structure`` turns the file into a ``Structure`` (controls, rooms, categories, global and
weather states, units from the format strings); ``build_state_index`` turns that into the lookup
the event path uses, raw 16-byte state UUID -> every owner. Pure and synchronous: no trio here.
"""

from ..errors import StructureError
from ._index import OwnerKind, StateIndex, StateOwnership, build_state_index
from ._layout import (
    ControlRecord,
    ControlRecords,
    StructureLayout,
    build_layout,
    layout_structure,
)
from ._load import load_structure, structure_from_dict
from ._model import (
    Category,
    Control,
    ControlState,
    MiniserverInfo,
    Room,
    Structure,
    WeatherServer,
)
from ._units import METER_TYPE, readable_unit, state_unit, unit_from_format

__all__ = [
    "METER_TYPE",
    "Category",
    "Control",
    "ControlRecord",
    "ControlRecords",
    "ControlState",
    "MiniserverInfo",
    "OwnerKind",
    "Room",
    "StateIndex",
    "StateOwnership",
    "Structure",
    "StructureError",
    "StructureLayout",
    "WeatherServer",
    "build_layout",
    "build_state_index",
    "layout_structure",
    "load_structure",
    "readable_unit",
    "state_unit",
    "structure_from_dict",
    "unit_from_format",
]
