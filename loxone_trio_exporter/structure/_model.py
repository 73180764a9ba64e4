"""The structure file as frozen objects: what the exporter needs from ``LoxAPP3.json``.

Mappings are ``types.MappingProxyType`` views over dicts built once by the loader, so a
``Structure`` can be shared between tasks as a snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

import attrs

_EMPTY_MAPPING: Mapping[str, str] = MappingProxyType({})


@attrs.frozen
class MiniserverInfo:
    """The useful part of ``msInfo``. Every field is optional in practice; absent means empty."""

    serial_nr: str = ""
    ms_name: str = ""
    project_name: str = ""
    local_url: str = ""
    remote_url: str = ""
    hostname: str = ""
    location: str = ""
    language_code: str = ""
    #: 0 = Gen 1, 1 = Go Gen 1, 2 = Gen 2, 3 = Go Gen 2, 4 = Compact ([DOC-SF] msInfo).
    miniserver_type: int | None = None
    #: 0 = °C, 1 = °F.
    temp_unit: int | None = None


@attrs.frozen
class Room:
    """An entry of ``rooms``. ``type`` is the Loxone room type number, when it is one."""

    uuid: str
    name: str
    type: int | None = None


@attrs.frozen
class Category:
    """An entry of ``cats``. ``type`` is e.g. ``lights``, ``indoortemperature``, ``undefined``."""

    uuid: str
    name: str
    type: str | None = None


@attrs.frozen
class ControlState:
    """One state of a control: a name and the UUID its events arrive under.

    ``position`` is the index inside a list-valued state (the old ``IRoomController``
    ``temperatures``), ``None`` for a plain state. ``unit`` comes from the control's format strings.
    """

    name: str
    uuid: str
    position: int | None = None
    unit: str = ""

    @property
    def label(self) -> str:
        """The ``state`` label of the series: ``name``, or ``name[i]`` for a list element."""
        if self.position is None:
            return self.name
        return f"{self.name}[{self.position}]"


# cache_hash: a control hashes its whole subtree; owners of shared states are hashed often.
@attrs.frozen(cache_hash=True)
class Control:
    """A control or subcontrol.

    ``uuid_action`` identifies it (subcontrols may carry a suffix such as ``/AI1``). ``room`` and
    ``category`` are names, ``""`` when the control has none or names one the file does not list;
    a subcontrol without its own room or category inherits its parent's. The parent is referenced
    by ``parent_uuid`` and ``parent_name`` rather than by object, so the model has no cycles.
    """

    uuid_action: str
    name: str
    type: str
    room: str = ""
    category: str = ""
    room_uuid: str | None = None
    category_uuid: str | None = None
    states: tuple[ControlState, ...] = ()
    sub_controls: tuple[Control, ...] = ()
    parent_uuid: str | None = None
    parent_name: str | None = None
    details_format: str | None = None
    #: The unit for ``loxone_control_info``: from ``details.format`` (``actualFormat`` for a Meter).
    unit: str = ""

    @property
    def is_subcontrol(self) -> bool:
        return self.parent_uuid is not None

    def walk(self) -> Iterator[Control]:
        """This control, then its subcontrols at any depth, parents before children."""
        yield self
        for sub in self.sub_controls:
            yield from sub.walk()


@attrs.frozen
class WeatherServer:
    """``weatherServer``: the weather-table state UUIDs and the display formats."""

    #: State name (``actual``, ``forecast``) -> state UUID; only valid UUIDs are kept.
    states: Mapping[str, str] = _EMPTY_MAPPING
    #: Field name (``temperature``, ``windSpeed``, ...) -> printf format.
    formats: Mapping[str, str] = _EMPTY_MAPPING

    @property
    def actual(self) -> str | None:
        return self.states.get("actual")

    @property
    def forecast(self) -> str | None:
        return self.states.get("forecast")


@attrs.frozen
class Structure:
    """A loaded ``LoxAPP3.json``.

    ``skipped_states`` counts state references that were not UUID strings (empty strings, numbers,
    objects ...) in controls, ``globalStates`` and ``weatherServer.states``; they are left out.
    """

    last_modified: str = ""
    ms_info: MiniserverInfo = MiniserverInfo()
    rooms: Mapping[str, Room] = attrs.field(factory=lambda: MappingProxyType({}))
    categories: Mapping[str, Category] = attrs.field(factory=lambda: MappingProxyType({}))
    #: Top-level controls in file order; subcontrols hang below them.
    controls: tuple[Control, ...] = ()
    #: ``globalStates``: name -> state UUID.
    global_states: Mapping[str, str] = _EMPTY_MAPPING
    weather_server: WeatherServer | None = None
    #: ``operatingModes``: mode id -> name (negative ids are user-defined modes).
    operating_modes: Mapping[int, str] = attrs.field(factory=lambda: MappingProxyType({}))
    skipped_states: int = 0

    def walk_controls(self) -> Iterator[Control]:
        """Every control and subcontrol in file order, parents before their subcontrols."""
        for control in self.controls:
            yield from control.walk()
