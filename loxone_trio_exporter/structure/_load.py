"""``LoxAPP3.json`` -> ``Structure``.

Two passes: ``_wire`` checks the shape with a private cattrs converter (wrong kinds of values in
the places the model is built from are a ``StructureError`` naming the JSON path), then this
module builds the model and is lenient with everything real files vary in: missing or unknown
rooms and categories, state references that are not UUIDs (skipped and counted), odd ``details``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from ..errors import StructureError
from ..protocol import is_uuid_str, uuid_from_str, uuid_to_str
from ._model import (
    Category,
    Control,
    ControlState,
    MiniserverInfo,
    Room,
    Structure,
    WeatherServer,
)
from ._units import control_unit, state_format, unit_from_format
from ._wire import RawControl, RawPlace, RawStructure, structure_raw

#: How deep subcontrols may nest. Real files nest one level; this only stops hostile input.
MAX_CONTROL_DEPTH = 32

_INT_KEY = re.compile(r"-?[0-9]{1,18}")  # bounded: int() refuses very long digit strings
#: ``lastModified`` is a time like "2025-01-02 03:04:05"; its format is not enforced (the
#: exporter takes the version from LoxAPPversion3), but a megabyte of it is not a time.
MAX_LAST_MODIFIED_LENGTH = 64
#: Room types are small numbers; anything outside int32 is read as no type.
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def load_structure(data: bytes | str) -> Structure:
    """Parse the text of ``LoxAPP3.json``; raises ``StructureError`` saying what and where."""
    if isinstance(data, bytes):
        try:
            # utf-8-sig: a byte order mark in front of the JSON is harmless, accept it.
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise StructureError(f"structure file is not UTF-8: {exc}") from exc
    else:
        text = data
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StructureError(
            f"structure file is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise StructureError("structure file is nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer literal beyond Python's digit limit
        raise StructureError(f"structure file is not acceptable JSON: {exc}") from exc
    return structure_from_dict(obj)


def structure_from_dict(obj: object) -> Structure:
    """Build a ``Structure`` from an already-parsed ``LoxAPP3.json``."""
    _check_nesting(obj)
    return _Builder().build(structure_raw(obj))


def _check_nesting(obj: object) -> None:
    """Refuse subcontrols nested absurdly deep (real files nest one level) before recursing."""
    if not isinstance(obj, Mapping):
        return  # the shape check reports it
    # Each pass goes one level down: the non-empty ``subControls`` objects of the level above.
    level = [obj.get("controls")]
    for _ in range(MAX_CONTROL_DEPTH):
        level = [
            subs
            for controls in level
            if isinstance(controls, Mapping)
            for control in controls.values()
            if isinstance(control, Mapping)
            and isinstance(subs := control.get("subControls"), Mapping)
            and subs
        ]
        if not level:
            return
    raise StructureError(f"structure file: controls nested deeper than {MAX_CONTROL_DEPTH} levels")


@attrs.frozen
class _Place:
    """Where a control sits; passed down so that subcontrols inherit it."""

    room_uuid: str | None = None
    room: str = ""
    category_uuid: str | None = None
    category: str = ""


@attrs.define
class _Builder:
    rooms: Mapping[str, Room] = attrs.field(factory=dict)
    categories: Mapping[str, Category] = attrs.field(factory=dict)
    skipped_states: int = 0

    def build(self, raw: RawStructure) -> Structure:
        self.rooms = MappingProxyType(_rooms(raw.rooms or {}))
        self.categories = MappingProxyType(_categories(raw.cats or {}))
        global_states = MappingProxyType(self._uuid_states(raw.globalStates or {}))
        weather = None
        if raw.weatherServer is not None:
            weather = WeatherServer(
                states=MappingProxyType(self._uuid_states(raw.weatherServer.states or {})),
                formats=MappingProxyType(_strings(raw.weatherServer.format or {})),
            )
        controls = tuple(
            self._control(control, parent=None, inherited=_Place())
            for control in (raw.controls or {}).values()
        )
        return Structure(
            last_modified=_last_modified(raw.lastModified),
            ms_info=raw.msInfo if raw.msInfo is not None else MiniserverInfo(),
            rooms=self.rooms,
            categories=self.categories,
            controls=controls,
            global_states=global_states,
            weather_server=weather,
            operating_modes=MappingProxyType(_operating_modes(raw.operatingModes or {})),
            skipped_states=self.skipped_states,
        )

    def _control(self, raw: RawControl, parent: RawControl | None, inherited: _Place) -> Control:
        place = self._place(raw, inherited)
        control_type = raw.type or ""
        formats = _strings(raw.details) if isinstance(raw.details, Mapping) else {}
        return Control(
            uuid_action=raw.uuidAction,
            name=raw.name,
            type=control_type,
            room=place.room,
            category=place.category,
            room_uuid=place.room_uuid,
            category_uuid=place.category_uuid,
            states=self._states(raw.states or {}, control_type, formats),
            sub_controls=tuple(
                self._control(sub, parent=raw, inherited=place)
                for sub in (raw.subControls or {}).values()
            ),
            parent_uuid=parent.uuidAction if parent is not None else None,
            parent_name=parent.name if parent is not None else None,
            details_format=formats.get("format"),
            unit=control_unit(control_type, formats),
        )

    def _place(self, raw: RawControl, inherited: _Place) -> _Place:
        """The control's own room and category where it names them, else its parent's."""
        place = inherited
        if raw.room:
            room = self.rooms.get(raw.room)
            place = attrs.evolve(place, room_uuid=raw.room, room=room.name if room else "")
        if raw.cat:
            category = self.categories.get(raw.cat)
            name = category.name if category else ""
            place = attrs.evolve(place, category_uuid=raw.cat, category=name)
        return place

    def _states(
        self, raw: Mapping[str, object], control_type: str, formats: Mapping[str, str]
    ) -> tuple[ControlState, ...]:
        states: list[ControlState] = []
        for name, value in raw.items():
            unit = unit_from_format(state_format(control_type, name, formats))
            if isinstance(value, list):
                # Only the old IRoomController's ``temperatures`` is a list: one UUID per element.
                for position, element in enumerate(value):
                    uuid = self._uuid(element)
                    if uuid is not None:
                        states.append(ControlState(name, uuid, position, unit))
            else:
                uuid = self._uuid(value)
                if uuid is not None:
                    states.append(ControlState(name, uuid, None, unit))
        return tuple(states)

    def _uuid_states(self, raw: Mapping[str, object]) -> dict[str, str]:
        states: dict[str, str] = {}
        for name, value in raw.items():
            uuid = self._uuid(value)
            if uuid is not None:
                states[name] = uuid
        return states

    def _uuid(self, value: object) -> str | None:
        """The canonical (lowercase) form of a state UUID; ``None``, counted, if it is not one."""
        if isinstance(value, str) and is_uuid_str(value):
            return uuid_to_str(uuid_from_str(value))
        self.skipped_states += 1
        return None


def _rooms(raw: Mapping[str, RawPlace]) -> dict[str, Room]:
    return {
        uuid: Room(uuid=uuid, name=place.name or "", type=_int_or_none(place.type))
        for uuid, place in raw.items()
    }


def _categories(raw: Mapping[str, RawPlace]) -> dict[str, Category]:
    return {
        uuid: Category(
            uuid=uuid,
            name=place.name or "",
            type=place.type if isinstance(place.type, str) else None,
        )
        for uuid, place in raw.items()
    }


def _operating_modes(raw: Mapping[str, object]) -> dict[int, str]:
    """Mode id -> name; keys that are not integers and names that are not strings are skipped."""
    return {
        int(key): name
        for key, name in raw.items()
        if _INT_KEY.fullmatch(key) and isinstance(name, str)
    }


def _strings(raw: Mapping[str, object]) -> dict[str, str]:
    return {
        key: value for key, value in raw.items() if isinstance(key, str) and isinstance(value, str)
    }


def _last_modified(value: str | None) -> str:
    if value is not None and len(value) > MAX_LAST_MODIFIED_LENGTH:
        raise StructureError(
            f"structure file: lastModified: expected a time like 2025-01-02 03:04:05, "
            f"got {len(value)} characters"
        )
    return value or ""


def _int_or_none(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and _INT32_MIN <= value <= _INT32_MAX:
        return value
    return None
