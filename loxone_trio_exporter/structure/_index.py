"""The state index: raw 16-byte UUID -> every (control, state) that UUID belongs to.

This is what the event path consults for each value, text, daytimer and weather event, so a lookup
is one dict lookup. The same UUID can have several owners (an Alarm's ``sensors`` state is its
Tracker subcontrol's ``entries``; LightControllerV2 dimmers share ``min``/``max``/``step``), and
every owner is kept, in file order: global states, then controls (parents before their
subcontrols, states in the order the file lists them), then the weather server.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator

import attrs

from ..errors import StructureError
from ..protocol import uuid_from_str
from ._model import Control, Structure


class OwnerKind(enum.Enum):
    """What kind of thing a state UUID belongs to."""

    CONTROL = "control"  # a state of a control or subcontrol
    GLOBAL = "global"  # a ``globalStates`` entry (operatingMode, sunrise, ...)
    WEATHER = "weather"  # a ``weatherServer.states`` entry (actual, forecast)


@attrs.frozen
class StateOwnership:
    """One owner of a state UUID (named so as not to be taken for the runtime's ``StateOwner``,
    the task that owns the exporter's state).

    ``control`` is ``None`` for global and weather states; ``state_name`` is then the key in
    ``globalStates`` or ``weatherServer.states``. ``position`` is the index in a list state.
    """

    control: Control | None
    state_name: str
    position: int | None
    kind: OwnerKind
    unit: str = ""

    @property
    def label(self) -> str:
        """The ``state`` label: ``name``, or ``name[i]`` for an element of a list state."""
        if self.position is None:
            return self.state_name
        return f"{self.state_name}[{self.position}]"


@attrs.frozen
class StateIndex:
    """Raw UUID -> owners, plus every control of the structure, flattened.

    The dict behind it is built once by ``build_state_index`` and never changed afterwards.
    """

    _owners: dict[bytes, tuple[StateOwnership, ...]] = attrs.field(alias="owners")
    #: Every control and subcontrol, parents before their subcontrols.
    controls: tuple[Control, ...]

    def owners(self, raw: bytes) -> tuple[StateOwnership, ...]:
        """Everyone who owns the state with this raw UUID; ``()`` when nobody does."""
        return self._owners.get(raw, ())

    def __len__(self) -> int:
        return len(self._owners)

    def __contains__(self, raw: object) -> bool:
        return raw in self._owners

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._owners)


def build_state_index(structure: Structure) -> StateIndex:
    """Index every state UUID of ``structure`` by its raw 16 bytes."""
    owners: dict[bytes, list[StateOwnership]] = {}

    def add(uuid: str, owner: StateOwnership) -> None:
        try:
            raw = uuid_from_str(uuid)
        except ValueError as exc:  # only a hand-built Structure can get here; the loader checks
            raise StructureError(f"state {owner.label!r}: {exc}") from exc
        owners.setdefault(raw, []).append(owner)

    for name, uuid in structure.global_states.items():
        add(uuid, StateOwnership(None, name, None, OwnerKind.GLOBAL))
    controls = tuple(structure.walk_controls())
    for control in controls:
        for state in control.states:
            add(
                state.uuid,
                StateOwnership(control, state.name, state.position, OwnerKind.CONTROL, state.unit),
            )
    if structure.weather_server is not None:
        for name, uuid in structure.weather_server.states.items():
            add(uuid, StateOwnership(None, name, None, OwnerKind.WEATHER))
    return StateIndex(
        owners={raw: tuple(found) for raw, found in owners.items()}, controls=controls
    )
