"""What the exporter keeps of a structure file once it is parsed: ``StructureLayout``.

A parsed ``Structure`` with its ``StateIndex`` costs about 500 bytes per state (a frozen object
per control and per state, UUIDs as strings and again as bytes, an owner record per state); the
exporter needs far less of it, and for as long as the Miniserver keeps that structure: the
labels of each control, which raw state UUIDs each control owns under which ``state`` label, the
global and weather states, and ``msInfo``. The layout holds exactly that, in columns (one tuple
entry per state instead of one object), and is what a session hands the state owner; the
parsed structure is dropped as soon as the layout is built (in the worker thread that parsed
it). It is independent of the Miniserver's name and of the ``[export]`` filters, so a reload
that changes them builds new series from the same layout.
"""

from __future__ import annotations

import marshal
import threading
from array import array
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple, TypeVar, cast, overload

import attrs

from ..protocol import uuid_from_str
from ._load import load_structure
from ._model import Control, MiniserverInfo, Structure
from ._units import METER_TYPE, readable_unit, state_unit

#: Held by ``layout_structure`` (worker threads): see there.
_ONE_PARSE_AT_A_TIME = threading.Lock()

#: Distinct units a layout names at the most (its unit codes are one byte).
_MAX_UNITS = 256

#: The state whose daytimer events give ``loxone_daytimer_entries``.
DAYTIMER_STATE = "entriesAndDefaultValue"


_T = TypeVar("_T")


class _Shared:
    """Rooms, categories, types, state labels and UUIDs repeat: one object for each value."""

    def __init__(self) -> None:
        self._seen: dict[object, object] = {}

    def __call__(self, value: _T) -> _T:
        return cast(_T, self._seen.setdefault(value, value))


class ControlRecord(NamedTuple):
    """The labels and filter keys of one control or subcontrol.

    ``parent`` is the position of the parent control in ``StructureLayout.controls`` (-1 for a
    top-level control): a filter that drops a control drops its subcontrols with it, and the
    parent's ``uuid_action`` is the ``parent`` label. ``unit`` is the unit of the control's
    value as people read it (``°C``, a Meter's ``actualFormat``). A Meter's total unit and a
    duplicate number are the layout's ``total_units`` (only Meters) and ``duplicates`` (an
    array): a field on every record cost 8 bytes a control (0.8 MB at 100k value series).
    """

    uuid_action: str
    name: str
    type: str
    room: str
    category: str
    unit: str
    parent: int


#: A control as the layout keeps it (and ``_columns`` writes it): ``ControlRecord``'s fields.
_ControlRow = tuple[str, str, str, str, str, str, int]


class ControlRecords(Sequence[ControlRecord]):
    """A layout's controls, kept as plain tuples; each one read is a ``ControlRecord``.

    Why not the records themselves: the cyclic garbage collector stops tracking a plain tuple
    of strings and ints once it has seen it, but tracks any other object for its whole life,
    and every full collection walks what it tracks. At 100 Miniservers of 1k controls the
    exporter held 125k control records, 56% of the 222k tracked objects; a full collection
    took 80-134 ms, one step of the event loop (design 4: none over 50 ms). A record made on
    reading lives only as long as its reader keeps it.
    """

    __slots__ = ("_rows",)

    def __init__(self, rows: tuple[_ControlRow, ...]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> ControlRecord: ...

    @overload
    def __getitem__(self, index: slice) -> ControlRecords: ...

    def __getitem__(self, index: int | slice) -> ControlRecord | ControlRecords:
        if isinstance(index, slice):
            return ControlRecords(self._rows[index])
        return ControlRecord._make(self._rows[index])

    def __iter__(self) -> Iterator[ControlRecord]:
        return map(ControlRecord._make, self._rows)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ControlRecords):
            return NotImplemented
        return self._rows == other._rows

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ControlRecords({len(self._rows)} controls)"


@attrs.frozen
class StructureLayout:
    """The exporter's view of one structure file, in columns.

    Control states are listed control by control in file order (states in the order the file
    lists them): ``state_control[i]`` is the position of the owning control, ``state_uuid[i]``
    the raw UUID (one bytes object per distinct UUID), ``state_label[i]`` the ``state`` label
    (``name`` or ``name[i]``), ``units[state_unit_code[i]]`` the unit of its values as people
    read it (``structure._units.state_unit``; ``''`` when unknown: ``units[0]``; one byte per
    state, as a few distinct units serve a whole file) and ``daytimer_states`` the positions
    of ``entriesAndDefaultValue`` states.
    """

    ms_info: MiniserverInfo
    controls: ControlRecords
    #: Meters: position -> the ``totalFormat`` unit (``kWh``) of their ``total*`` states.
    total_units: Mapping[int, str]
    #: Per control, what tells apart controls a legend would show alike: 0 for the first control
    #: of a name in a room (in file order), 2, 3, ... for further controls (other
    #: ``uuidAction``) of that name in that room. A control listed twice under one
    #: ``uuidAction`` is one control. 4 bytes a control (generated structures repeat names a
    #: lot, so a mapping of the few would not be smaller).
    duplicates: array[int]
    #: An array, not a tuple: 4 bytes a state instead of a slot and an int object (1.3 MB at
    #: 100k value series).
    state_control: array[int]
    state_uuid: tuple[bytes, ...]
    state_label: tuple[str, ...]
    units: tuple[str, ...]
    state_unit_code: bytes
    daytimer_states: frozenset[int]
    #: ``globalStates``: (name, raw UUID) in file order.
    global_states: tuple[tuple[str, bytes], ...]
    #: Raw UUIDs of ``weatherServer.states``; ``weather_actual`` is the current weather's.
    weather_states: tuple[bytes, ...]
    weather_actual: bytes | None

    @property
    def controls_discovered(self) -> int:
        return len(self.controls)

    def parent_uuid(self, control: ControlRecord) -> str | None:
        """The ``uuidAction`` of ``control``'s parent; ``None`` for a top-level control."""
        return None if control.parent < 0 else self.controls[control.parent].uuid_action

    def state_units(self) -> Iterator[str]:
        """The unit of each control state, in the order of ``state_uuid``."""
        units = self.units
        return (units[code] for code in self.state_unit_code)

    def known_uuids(self) -> frozenset[bytes]:
        """Every state UUID the structure names: globals, control states, weather."""
        return frozenset(
            (*self.state_uuid, *(raw for _, raw in self.global_states), *self.weather_states)
        )


def layout_structure(text: str | bytes) -> StructureLayout:
    """Parse a structure file and keep its layout (run in a worker thread for large files);
    raises ``StructureError`` as ``load_structure`` does.

    What the layout keeps is copied once the parsed file is gone. Its strings and UUIDs were
    made by the JSON parser among the millions of temporaries of the parse (dicts, lists,
    strings the layout does not keep), so they would pin the parser's memory pools and arenas
    long after the rest is freed: at 10k controls several MB that Python cannot give back.
    ``marshal`` writes the columns into one buffer and reads them back as new objects, made
    after the temporaries are freed, so they fill a few pools in one piece; it keeps the
    sharing of repeated values (rooms, labels, UUIDs owned twice) as it is.

    One parse at a time in the process (``_ONE_PARSE_AT_A_TIME``): sessions that load their
    structures together (a start with 100 Miniservers) would otherwise hold all their parse
    trees at once, and what each keeps would be scattered among the others' temporaries. It
    costs no time: parsing holds the GIL, so parses in several threads never ran in parallel.
    """
    with _ONE_PARSE_AT_A_TIME:
        packed = marshal.dumps(_columns(load_structure(text)))
        # Our own bytes, made two lines above: nothing from outside is deserialized.
        return _from_columns(marshal.loads(packed))  # noqa: S302


def build_layout(structure: Structure) -> StructureLayout:
    """The layout of a parsed structure (the structure itself is not kept)."""
    return _from_columns(_columns(structure))


#: ``MiniserverInfo``'s fields in order.
_InfoColumns = tuple[str, str, str, str, str, str, str, str, int | None, int | None]
#: ``StructureLayout``'s fields in order, but ``ms_info`` as its fields and plain tuples.
_LayoutColumns = tuple[
    _InfoColumns,
    tuple[_ControlRow, ...],
    dict[int, str],
    bytes,
    bytes,
    tuple[bytes, ...],
    tuple[str, ...],
    tuple[str, ...],
    bytes,
    tuple[int, ...],
    tuple[tuple[str, bytes], ...],
    tuple[bytes, ...],
    bytes | None,
]


def _columns(structure: Structure) -> _LayoutColumns:
    """What the layout keeps of ``structure``, as tuples of strings, bytes and ints only."""
    one = _Shared()
    controls: list[_ControlRow] = []
    total_units: dict[int, str] = {}
    duplicates = array("I")
    state_control = array("i")
    state_uuid: list[bytes] = []
    state_label: list[str] = []
    unit_codes = bytearray()
    #: Distinct units -> their code; ``''`` is 0. A file of more than 256 distinct units
    #: (none is) gives the rest no unit rather than a larger column for every state.
    unit_code: dict[str, int] = {"": 0}
    daytimers: list[int] = []
    temp_unit = structure.ms_info.temp_unit
    #: (room, name) -> uuidAction -> its place among the controls of that name in that room.
    named: dict[tuple[str, str], dict[str, int]] = {}

    # A loop, not a recursive closure: a closure that calls itself is a reference cycle, which
    # would keep these lists (and what they hold) until the cyclic collector runs, in the
    # middle of the objects ``layout_structure`` makes anew.
    pending: list[tuple[Control, int]] = [(control, -1) for control in reversed(structure.controls)]
    while pending:
        control, parent = pending.pop()
        position = len(controls)
        alike = named.setdefault((control.room, control.name), {})
        duplicate = alike.setdefault(control.uuid_action, len(alike) + 1)
        controls.append(
            (
                control.uuid_action,
                control.name,
                one(control.type),
                one(control.room),
                one(control.category),
                one(readable_unit(control.unit, temp_unit)),
                parent,
            )
        )
        total_unit = _total_unit(control, temp_unit)
        if total_unit:
            total_units[position] = one(total_unit)
        duplicates.append(duplicate if duplicate > 1 else 0)
        for state in control.states:
            if state.name == DAYTIMER_STATE:
                daytimers.append(len(state_uuid))
            state_control.append(position)
            state_uuid.append(one(uuid_from_str(state.uuid)))
            state_label.append(one(state.label))
            unit = state_unit(control.type, state.name, state.unit, temp_unit)
            code = unit_code.get(unit)
            if code is None:
                code = unit_code[unit] = len(unit_code) if len(unit_code) < _MAX_UNITS else 0
            unit_codes.append(code)
        pending += ((sub, position) for sub in reversed(control.sub_controls))
    global_states = tuple(
        (name, one(uuid_from_str(uuid))) for name, uuid in structure.global_states.items()
    )
    weather = structure.weather_server
    weather_states: tuple[bytes, ...] = ()
    weather_actual = None
    if weather is not None:
        weather_states = tuple(one(uuid_from_str(uuid)) for uuid in weather.states.values())
        if weather.actual is not None:
            weather_actual = one(uuid_from_str(weather.actual))
    return (
        cast(_InfoColumns, attrs.astuple(structure.ms_info, recurse=False)),
        tuple(controls),
        total_units,
        duplicates.tobytes(),
        state_control.tobytes(),
        tuple(state_uuid),
        tuple(state_label),
        tuple(unit for unit, code in unit_code.items() if code or not unit),
        bytes(unit_codes),
        tuple(daytimers),
        global_states,
        weather_states,
        weather_actual,
    )


def _from_columns(columns: _LayoutColumns) -> StructureLayout:
    (
        ms_info,
        controls,
        total_units,
        duplicates,
        state_control,
        state_uuid,
        state_label,
        units,
        unit_codes,
        daytimers,
        global_states,
        weather_states,
        weather_actual,
    ) = columns
    return StructureLayout(
        ms_info=MiniserverInfo(*ms_info),
        controls=ControlRecords(controls),
        total_units=total_units,
        duplicates=_int_array("I", duplicates),
        state_control=_int_array("i", state_control),
        state_uuid=state_uuid,
        state_label=state_label,
        units=units,
        state_unit_code=unit_codes,
        daytimer_states=frozenset(daytimers),
        global_states=global_states,
        weather_states=weather_states,
        weather_actual=weather_actual,
    )


def _int_array(typecode: str, native: bytes) -> array[int]:
    """The array of ``typecode`` whose native bytes are ``native`` (``marshal`` keeps no
    arrays)."""
    column = array(typecode)
    column.frombytes(native)
    return column


def _total_unit(control: Control, temp_unit: int | None) -> str:
    """A Meter's ``totalFormat`` unit, from its first ``total*`` state; ``''`` for others."""
    if control.type != METER_TYPE:
        return ""
    for state in control.states:
        if state.name.startswith("total") and not state.name.startswith("totalNeg"):
            return readable_unit(state.unit, temp_unit)
    return ""
