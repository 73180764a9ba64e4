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

from typing import TypeVar, cast

import attrs

from ..protocol import uuid_from_str
from ._load import load_structure
from ._model import Control, MiniserverInfo, Structure

#: The state whose daytimer events give ``loxone_daytimer_entries``.
DAYTIMER_STATE = "entriesAndDefaultValue"


_T = TypeVar("_T")


class _Shared:
    """Rooms, categories, types, state labels and UUIDs repeat: one object for each value."""

    def __init__(self) -> None:
        self._seen: dict[object, object] = {}

    def __call__(self, value: _T) -> _T:
        return cast(_T, self._seen.setdefault(value, value))


@attrs.frozen
class ControlRecord:
    """The labels and filter keys of one control or subcontrol.

    ``parent`` is the position of the parent control in ``StructureLayout.controls`` (-1 for a
    top-level control): a filter that drops a control drops its subcontrols with it.
    """

    uuid_action: str
    name: str
    type: str
    room: str
    category: str
    parent_uuid: str | None
    unit: str
    parent: int


@attrs.frozen
class StructureLayout:
    """The exporter's view of one structure file, in columns.

    Control states are listed control by control in file order (states in the order the file
    lists them): ``state_control[i]`` is the position of the owning control, ``state_uuid[i]``
    the raw UUID (one bytes object per distinct UUID), ``state_label[i]`` the ``state`` label
    (``name`` or ``name[i]``) and ``daytimer_states`` the positions of ``entriesAndDefaultValue``
    states.
    """

    ms_info: MiniserverInfo
    controls: tuple[ControlRecord, ...]
    state_control: tuple[int, ...]
    state_uuid: tuple[bytes, ...]
    state_label: tuple[str, ...]
    daytimer_states: frozenset[int]
    #: ``globalStates``: (name, raw UUID) in file order.
    global_states: tuple[tuple[str, bytes], ...]
    #: Raw UUIDs of ``weatherServer.states``; ``weather_actual`` is the current weather's.
    weather_states: tuple[bytes, ...]
    weather_actual: bytes | None

    @property
    def controls_discovered(self) -> int:
        return len(self.controls)

    def known_uuids(self) -> frozenset[bytes]:
        """Every state UUID the structure names: globals, control states, weather."""
        return frozenset(
            (*self.state_uuid, *(raw for _, raw in self.global_states), *self.weather_states)
        )


def layout_structure(text: str | bytes) -> StructureLayout:
    """Parse a structure file and keep its layout (run in a worker thread for large files);
    raises ``StructureError`` as ``load_structure`` does."""
    return build_layout(load_structure(text))


def build_layout(structure: Structure) -> StructureLayout:
    """The layout of a parsed structure (the structure itself is not kept)."""
    one = _Shared()
    controls: list[ControlRecord] = []
    state_control: list[int] = []
    state_uuid: list[bytes] = []
    state_label: list[str] = []
    daytimers: set[int] = set()

    def add(control: Control, parent: int) -> None:
        position = len(controls)
        controls.append(
            ControlRecord(
                uuid_action=control.uuid_action,
                name=control.name,
                type=one(control.type),
                room=one(control.room),
                category=one(control.category),
                parent_uuid=control.parent_uuid,
                unit=one(control.unit),
                parent=parent,
            )
        )
        for state in control.states:
            if state.name == DAYTIMER_STATE:
                daytimers.add(len(state_uuid))
            state_control.append(position)
            state_uuid.append(one(uuid_from_str(state.uuid)))
            state_label.append(one(state.label))
        for sub in control.sub_controls:
            add(sub, position)

    for control in structure.controls:
        add(control, -1)
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
    return StructureLayout(
        ms_info=structure.ms_info,
        controls=tuple(controls),
        state_control=tuple(state_control),
        state_uuid=tuple(state_uuid),
        state_label=tuple(state_label),
        daytimer_states=frozenset(daytimers),
        global_states=global_states,
        weather_states=weather_states,
        weather_actual=weather_actual,
    )
