"""A plain reference for the exporter's ``/metrics`` body, and the steps that drive it.

Written for tests/test_render_equivalence.py to freeze today's output (issue 14, item 7) while
the state core is rebuilt: it imports nothing of ``runtime``, ``state`` or ``exposition``, only
the structure model, the protocol's table records and ``ExportConfig``, which the redesign keeps.
It is deliberately naive: plain dicts keyed by label tuples, a family written line by line at
each scrape, no caches, so that it is easy to check against design 3.3 and the README.

Where today's exporter does something the design leaves open (or gets it arguably wrong) the
reference follows today's behaviour, since the point is to keep the output as it is; each such
place says so in a comment starting with "Today:".
"""

from __future__ import annotations

import datetime
import fnmatch
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from loxone_trio_exporter.config import ExportConfig
from loxone_trio_exporter.protocol import (
    DaytimerStatesReceived,
    TextStatesReceived,
    ValueStatesReceived,
    WeatherEntry,
    WeatherStatesReceived,
    uuid_from_str,
)
from loxone_trio_exporter.structure import Control, StateIndex, Structure

Labels = tuple[tuple[str, str], ...]
TableEvent = (
    ValueStatesReceived | TextStatesReceived | DaytimerStatesReceived | WeatherStatesReceived
)

#: The exporter's wall clock in these tests (a value in Go's exponent form: 1.75000000025e+09).
WALL_CLOCK_UNIX = 1_750_000_000.25
#: ``loxone_exporter_build_info``'s labels in these tests.
BUILD_VERSION, BUILD_REVISION, BUILD_PYTHON = "1.2.3", "abc123", "3.11.9"
BUILD_DATE = "2026-01-02"
#: The one value that depends on the process's clock: written as this placeholder (see
#: ``mask_render_duration``).
RENDER_DURATION = "loxone_exporter_render_duration_seconds"
SECONDS_PLACEHOLDER = "<seconds>"
MAX_TEXT_LENGTH = 200
#: The ``reason`` label values, in the order they are written (all of them, from 0).
RECONNECT_REASONS = (
    *("unreachable", "booting", "auth_failed", "closed", "connection_lost", "keepalive_timeout"),
    *("idle_timeout", "reply_timeout", "out_of_service", "protocol_error", "refused"),
    *(
        "structure_error",
        "unsupported_firmware",
        "tls_error",
        "blocked",
        "user_changed",
        "user_disabled",
    ),
    *("update_in_progress", "no_event_slots", "internal_error"),
)
GENERATIONS = {0: "Gen 1", 1: "Go Gen 1", 2: "Gen 2", 3: "Go Gen 2", 4: "Compact"}
TABLES = ("value", "text", "daytimer", "weather")

# --- the steps: what happens to the exporter, in order ------------------------------------------


@attrs.frozen
class LoadStructure:
    """A session loaded (or reused) a structure; ``last_modified`` is what LoxAPPversion3 said."""

    miniserver: str
    structure: Structure = attrs.field(repr=False)
    index: StateIndex = attrs.field(repr=False)
    last_modified: str

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """What Hypothesis prints in a failing example: no whole structure."""
        controls = [control.uuid_action for control in self.structure.walk_controls()]
        printer.text(
            f"LoadStructure({self.miniserver!r}, last_modified={self.last_modified!r}, "
            f"controls={controls!r}, states={len(self.index)})"
        )


@attrs.frozen
class Identify:
    """``jdev/cfg/apiKey`` answered."""

    miniserver: str
    serial: str
    firmware: str


@attrs.frozen
class GrantToken:
    miniserver: str
    valid_until_unix: float


@attrs.frozen
class SetStreaming:
    """The connection is streaming (``True``) or in any other state (``False``)."""

    miniserver: str
    streaming: bool


@attrs.frozen
class LoseSession:
    miniserver: str
    reason: str  # one of RECONNECT_REASONS
    auth_failure: bool = False
    protocol_error: bool = False


@attrs.frozen
class ApplyTable:
    """One decoded state table from the Miniserver."""

    miniserver: str
    table: TableEvent


@attrs.frozen
class DropStale:
    """The stale deadline of every Miniserver whose session was lost has passed."""


@attrs.frozen
class Reload:
    """A config reload with a new ``[export]`` table."""

    export: ExportConfig


@attrs.frozen
class Scrape:
    """``GET /metrics`` in text format 0.0.4, no gzip."""


Step = (
    LoadStructure
    | Identify
    | GrantToken
    | SetStreaming
    | LoseSession
    | ApplyTable
    | DropStale
    | Reload
    | Scrape
)

# --- the text format --------------------------------------------------------------------------


def format_sample_value(value: float) -> str:
    """prometheus_client's number format (Go's exponent form for positive numbers of 7 to 16
    digits before the point, ``+Inf``, ``-Inf``, ``NaN``), but ``-0.0`` is written ``0.0``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0.0"
    text = repr(float(value))
    if value > 0 and "e" not in text:
        whole, fraction = text.split(".")
        if len(whole) > 6:
            digits = (whole + fraction).rstrip("0")
            mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
            return f"{mantissa}e+{len(whole) - 1:02d}"
    return text


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[Labels, float | str]]
) -> bytes:
    """HELP, TYPE and one line per sample; a ``str`` value is written as it is."""
    help_line = help_text.replace("\\", "\\\\").replace("\n", "\\n")
    lines = [f"# HELP {name} {help_line}\n# TYPE {name} {kind}\n"]
    for labels, value in samples:
        text = value if isinstance(value, str) else format_sample_value(value)
        if labels:
            pairs = ",".join(f'{label}="{_escape(v)}"' for label, v in labels)
            lines.append(f"{name}{{{pairs}}} {text}\n")
        else:
            lines.append(f"{name} {text}\n")
    # Lone surrogates (a "\ud800" escape in a structure file) are written as "?".
    return "".join(lines).encode("utf-8", "replace")


# --- which series a structure gives -------------------------------------------------------------


def _export_key(export: ExportConfig) -> tuple[object, ...]:
    """What decides the exported series (a reload that keeps it replays nothing)."""
    return (
        frozenset(export.exclude_rooms),
        frozenset(export.exclude_categories),
        frozenset(export.exclude_types),
        tuple(export.exclude_names),
        export.typed,
        tuple(export.exclude_states),
        export.max_series,
    )


def _state_excluded(control: Control, state_name: str, label: str, export: ExportConfig) -> bool:
    """``exclude_states``: ``glob`` or ``Type:glob``, on the state's name or its whole label."""
    for entry in export.exclude_states:
        only, glob = entry.split(":", 1) if ":" in entry else (None, entry)
        if only is not None and only != control.type:
            continue
        for text in (state_name, label):
            if text == glob or fnmatch.fnmatchcase(text, glob):
                return True
    return False


def _excluded(control: Control, export: ExportConfig) -> bool:
    return (
        control.room in export.exclude_rooms
        or control.category in export.exclude_categories
        or control.type in export.exclude_types
        or any(fnmatch.fnmatchcase(control.name, glob) for glob in export.exclude_names)
    )


def _exported(controls: Iterable[Control], export: ExportConfig) -> Iterable[Control]:
    """Controls and subcontrols in file order; an excluded control takes its subcontrols along."""
    for control in controls:
        if not _excluded(control, export):
            yield control
            yield from _exported(control.sub_controls, export)


def _known_uuids(structure: Structure) -> set[bytes]:
    """Every state UUID the structure names (globals, control states, weather)."""
    known = {uuid_from_str(uuid) for uuid in structure.global_states.values()}
    for control in structure.walk_controls():
        known.update(uuid_from_str(state.uuid) for state in control.states)
    if structure.weather_server is not None:
        known.update(uuid_from_str(uuid) for uuid in structure.weather_server.states.values())
    return known


def _significant(value: float) -> float:
    """A converted value to 15 significant digits (the README's rule)."""
    return float(f"{value:.15g}")


def _scaled(multiply: float, divide: float = 1.0) -> Any:
    if multiply == divide == 1.0:
        return lambda value: value
    return lambda value: _significant(value * multiply / divide)


#: The control families of a unit, in the order the exporter writes them: (name, type, unit,
#: what it is). The README's mapping table says the same.
TYPED_FAMILIES = (
    ("loxone_control_temperature_celsius", "gauge", "celsius", "Temperature in °C"),
    ("loxone_control_power_watts", "gauge", "watts", "Power in watts"),
    ("loxone_control_energy_joules", "gauge", "joules", "Energy in joules"),
    (
        "loxone_control_meter_energy_joules_total",
        "counter",
        "joules",
        "Energy counted by a Meter (its total states) in joules",
    ),
    ("loxone_control_ratio", "gauge", "ratio", "A percentage as a ratio (100 % is 1.0)"),
    ("loxone_control_voltage_volts", "gauge", "volts", "Voltage in volts"),
    ("loxone_control_current_amperes", "gauge", "amperes", "Current in amperes"),
    ("loxone_control_frequency_hertz", "gauge", "hertz", "Frequency in hertz"),
    ("loxone_control_illuminance_lux", "gauge", "lux", "Illuminance in lux"),
    (
        "loxone_control_speed_meters_per_second",
        "gauge",
        "meters_per_second",
        "Speed in metres per second",
    ),
    ("loxone_control_length_meters", "gauge", "meters", "Length in metres"),
    ("loxone_control_volume_cubic_meters", "gauge", "cubic_meters", "Volume in cubic metres"),
    (
        "loxone_control_meter_volume_cubic_meters_total",
        "counter",
        "cubic_meters",
        "Volume counted by a Meter (its total states) in cubic metres",
    ),
    (
        "loxone_control_flow_cubic_meters_per_second",
        "gauge",
        "cubic_meters_per_second",
        "Flow in cubic metres per second",
    ),
    ("loxone_control_pressure_pascals", "gauge", "pascals", "Pressure in pascals"),
    ("loxone_control_duration_seconds", "gauge", "seconds", "Duration in seconds"),
    (
        "loxone_control_irradiance_watts_per_square_meter",
        "gauge",
        "watts_per_square_meter",
        "Irradiance in watts per square metre",
    ),
)
#: unit -> (family quantity, multiply, divide) to the base unit; °F is converted on its own.
_UNIT_FAMILIES: dict[str, tuple[str, float, float]] = {
    "°C": ("temperature_celsius", 1.0, 1.0),
    "W": ("power_watts", 1.0, 1.0),
    "kW": ("power_watts", 1e3, 1.0),
    "MW": ("power_watts", 1e6, 1.0),
    "Wh": ("energy_joules", 3600.0, 1.0),
    "kWh": ("energy_joules", 3.6e6, 1.0),
    "MWh": ("energy_joules", 3.6e9, 1.0),
    "%": ("ratio", 1.0, 100.0),
    "V": ("voltage_volts", 1.0, 1.0),
    "A": ("current_amperes", 1.0, 1.0),
    "mA": ("current_amperes", 1.0, 1e3),
    "Hz": ("frequency_hertz", 1.0, 1.0),
    "lx": ("illuminance_lux", 1.0, 1.0),
    "m/s": ("speed_meters_per_second", 1.0, 1.0),
    "km/h": ("speed_meters_per_second", 1.0, 3.6),
    "mm": ("length_meters", 1.0, 1e3),
    "cm": ("length_meters", 1.0, 100.0),
    "m": ("length_meters", 1.0, 1.0),
    "km": ("length_meters", 1e3, 1.0),
    "l": ("volume_cubic_meters", 1.0, 1e3),
    "L": ("volume_cubic_meters", 1.0, 1e3),
    "m³": ("volume_cubic_meters", 1.0, 1.0),
    "l/h": ("flow_cubic_meters_per_second", 1.0, 3.6e6),
    "l/min": ("flow_cubic_meters_per_second", 1.0, 6e4),
    "m³/h": ("flow_cubic_meters_per_second", 1.0, 3600),
    "Pa": ("pressure_pascals", 1.0, 1.0),
    "hPa": ("pressure_pascals", 100.0, 1.0),
    "mbar": ("pressure_pascals", 100.0, 1.0),
    "bar": ("pressure_pascals", 1e5, 1.0),
    "ms": ("duration_seconds", 1.0, 1e3),
    "s": ("duration_seconds", 1.0, 1.0),
    "min": ("duration_seconds", 60.0, 1.0),
    "h": ("duration_seconds", 3600.0, 1.0),
    "W/m²": ("irradiance_watts_per_square_meter", 1.0, 1.0),
}
#: Units Loxone documents for states without a format string.
_DOCUMENTED = {
    **dict.fromkeys(("Gpwr", "Spwr", "Ppwr", "MaxSpwr"), "kW"),
    **dict.fromkeys(("Ssoc", "MinSoc"), "%"),
}


def readable(unit: str, temp_unit: int | None) -> str:
    """A bare degree sign is °C, or °F where msInfo.tempUnit is 1."""
    if unit == "°":
        return "°F" if temp_unit == 1 else "°C"
    return unit


def state_unit(control: Control, name: str, unit: str, temp_unit: int | None) -> str:
    """The unit of one state: what its format gives, where the format describes that state."""
    if control.type == "EnergyManager2" and name in _DOCUMENTED:
        return _DOCUMENTED[name]
    if control.type == "Meter":
        applies = name in ("actual", "storage", "value", "min", "max", "step") or (
            name.startswith("total")
        )
    elif control.type in ("IRoomController", "IRoomControllerV2"):
        applies = "temp" in name.lower()
    else:
        applies = name in ("value", "min", "max", "step")
    return readable(unit, temp_unit) if applies else ""


def typed_family(control: Control, name: str, unit: str) -> tuple[str, Any] | None:
    """(family, conversion) of a state in ``unit``; ``None``: ``loxone_control_value``."""
    if unit == "°F":
        return "loxone_control_temperature_celsius", lambda v: _significant((v - 32) * 5 / 9)
    found = _UNIT_FAMILIES.get(unit)
    if found is None:
        return None
    quantity, multiply, divide = found
    meter_total = control.type == "Meter" and name.startswith("total")
    if meter_total and quantity in ("energy_joules", "volume_cubic_meters"):
        return f"loxone_control_meter_{quantity}_total", _scaled(multiply, divide)
    return f"loxone_control_{quantity}", _scaled(multiply, divide)


def _duplicates(structure: Structure) -> dict[int, str]:
    """id(control) -> its ``duplicate`` label: a name seen before in the same room, under
    another uuidAction, gives "2", "3", ..."""
    seen: dict[tuple[str, str], list[str]] = {}
    duplicate: dict[int, str] = {}
    for control in structure.walk_controls():
        same = seen.setdefault((control.room, control.name), [])
        if control.uuid_action not in same:
            same.append(control.uuid_action)
        if same.index(control.uuid_action):
            duplicate[id(control)] = str(same.index(control.uuid_action) + 1)
    return duplicate


def _units(control: Control, temp_unit: int | None) -> Labels:
    """The info series' unit labels: ``unit``, and a Meter's ``total_unit``."""
    labels: Labels = (("unit", readable(control.unit, temp_unit)),)
    if control.type == "Meter":
        total = next(
            (
                state.unit
                for state in control.states
                if state.name.startswith("total") and not state.name.startswith("totalNeg")
            ),
            "",
        )
        if total:
            labels += (("total_unit", readable(total, temp_unit)),)
    return labels


class _Series:
    """The series one structure gives under one export filter."""

    def __init__(self, miniserver: str, structure: Structure, export: ExportConfig) -> None:
        exported = list(_exported(structure.controls, export))
        duplicate = _duplicates(structure)
        self.discovered = sum(1 for _ in structure.walk_controls())
        self.exported = len(exported)
        #: raw UUID -> label sets of loxone_control_value, one per state of an exported control
        #: (controls in file order, states in the order the file lists them).
        self.values: dict[bytes, list[Labels]] = {}
        #: raw UUID -> labels of the daytimers that own it as entriesAndDefaultValue.
        self.daytimers: dict[bytes, list[Labels]] = {}
        self.info: list[Labels] = []
        #: value label set -> (typed family, conversion), or None: loxone_control_value.
        self.typed: dict[Labels, tuple[str, Any] | None] = {}
        temp_unit = structure.ms_info.temp_unit
        #: Distinct value label sets, planned and left out by max_series.
        planned: set[Labels] = set()
        limited: set[Labels] = set()
        for control in exported:
            labels: Labels = (
                ("miniserver", miniserver),
                ("uuid", control.uuid_action),
                ("control", control.name),
                ("control_type", control.type),
                ("room", control.room),
                ("category", control.category),
            )
            if id(control) in duplicate:
                labels += (("duplicate", duplicate[id(control)]),)
            if control.parent_uuid is not None:
                labels += (("parent", control.parent_uuid),)
                info = labels
            else:
                info = (*labels, ("parent", ""))  # the info series always has a parent label
            self.info.append((*info, *_units(control, temp_unit)))
            for state in control.states:
                raw = uuid_from_str(state.uuid)
                if _state_excluded(control, state.name, state.label, export):
                    continue
                value_labels = (*labels, ("state", state.label))
                if value_labels not in planned:
                    if len(planned) >= export.max_series:
                        limited.add(value_labels)
                        continue
                    planned.add(value_labels)
                self.values.setdefault(raw, []).append(value_labels)
                unit = state_unit(control, state.name, state.unit, temp_unit)
                family = typed_family(control, state.name, unit) if export.typed else None
                # Two states that feed one label set: the first decides its family.
                self.typed.setdefault(value_labels, family)
                if state.name == "entriesAndDefaultValue":
                    self.daytimers.setdefault(raw, []).append(labels)
        self.series_exported = len(planned)
        self.series_limited = len(limited)
        self.globals: dict[bytes, list[Labels]] = {}
        for name, uuid in structure.global_states.items():
            self.globals.setdefault(uuid_from_str(uuid), []).append(
                (("miniserver", miniserver), ("state", name))
            )
        weather = structure.weather_server
        actual = weather.actual if weather is not None else None
        self.weather_actual = uuid_from_str(actual) if actual is not None else None


# --- one Miniserver -------------------------------------------------------------------------------


class _Miniserver:
    def __init__(self, name: str) -> None:
        self.name = name
        self.labels: Labels = (("miniserver", name),)
        self.streaming = False
        self.stale_pending = False
        self.serial = self.firmware = ""
        self.structure: Structure | None = None
        self.known: set[bytes] = set()
        self.series: _Series | None = None  # None until a structure came: no data series
        self.last_modified: str | None = None
        self.token_expiry: float | None = None
        self.last_event: float | None = None
        self.events: Counter[str] = Counter()
        self.reconnects: Counter[str] = Counter()
        self.auth_failures = self.protocol_errors = self.unknown_states = 0
        self.forget_values()

    def forget_values(self) -> None:
        # The last state of every known UUID, first arrival first (replayed by a reload).
        self.raw_values: dict[bytes, float] = {}
        self.raw_texts: dict[bytes, str] = {}
        self.raw_daytimers: dict[bytes, int] = {}
        self.weather: WeatherEntry | None = None
        # Series values in the order each series first got one.
        self.control_values: dict[Labels, float] = {}
        self.global_values: dict[Labels, float] = {}
        self.texts: dict[Labels, str] = {}
        self.daytimer_entries: dict[Labels, float] = {}

    def load(self, step: LoadStructure, export: ExportConfig) -> None:
        self.structure = step.structure
        self.known = _known_uuids(step.structure)
        if self.series is not None and step.last_modified == self.last_modified:
            # Today: a reconnect with the same lastModified keeps the series and their values
            # (built from the earlier structure), even if the structure itself differs.
            return
        self.series = _Series(self.name, step.structure, export)
        self.last_modified = step.last_modified
        self.forget_values()

    def reload(self, export: ExportConfig) -> None:
        """New filters: the current states replayed into the new series; weather kept."""
        if self.structure is None:
            return
        self.series = _Series(self.name, self.structure, export)
        raw_values, raw_texts, raw_daytimers = self.raw_values, self.raw_texts, self.raw_daytimers
        weather = self.weather
        self.forget_values()
        self.raw_values, self.raw_texts, self.raw_daytimers = raw_values, raw_texts, raw_daytimers
        self.weather = weather
        for raw, value in raw_values.items():
            self._set_value(raw, value)
        self._set_texts(raw_texts)
        self._set_daytimers(raw_daytimers)

    def apply(self, table: TableEvent) -> None:
        states: Sequence[object] = table.states
        kind = {
            ValueStatesReceived: "value",
            TextStatesReceived: "text",
            DaytimerStatesReceived: "daytimer",
            WeatherStatesReceived: "weather",
        }[type(table)]
        self.events[kind] += len(states)
        self.last_event = WALL_CLOCK_UNIX
        self.stale_pending = False
        if self.series is None:
            return  # no structure: counted, nothing else
        if isinstance(table, ValueStatesReceived):
            self._apply_values(table)
        elif isinstance(table, TextStatesReceived):
            self._apply_texts(table)
        elif isinstance(table, DaytimerStatesReceived):
            self._apply_daytimers(table)
        else:
            self._apply_weather(table)

    def _apply_values(self, table: ValueStatesReceived) -> None:
        series = self.series
        assert series is not None
        # Today: a value is a stranger only if no series takes it, so after a structure with
        # the same lastModified (series kept from the old one) a UUID only the old one names is
        # no stranger.
        strangers = [
            raw
            for raw, _ in table.states
            if raw not in self.known and not series.values.get(raw) and raw not in series.globals
        ]
        self.unknown_states += len(strangers)
        for raw, value in table.states:
            self._set_value(raw, value)
            # Today: the last values are kept of every UUID of a table without strangers, else
            # of the UUIDs the structure names.
            if not strangers or raw in self.known:
                self.raw_values[raw] = value

    def _apply_texts(self, table: TextStatesReceived) -> None:
        # The last text of a UUID wins; a UUID keeps the place of its first record.
        texts: dict[bytes, str] = {}
        for state in table.states:
            if state.uuid in self.known:
                texts[state.uuid] = state.text[:MAX_TEXT_LENGTH]
            else:
                self.unknown_states += 1
        self.raw_texts.update(texts)
        self._set_texts(texts)

    def _apply_daytimers(self, table: DaytimerStatesReceived) -> None:
        counts: dict[bytes, int] = {}
        for daytimer in table.states:
            if daytimer.uuid in self.known:
                counts[daytimer.uuid] = len(daytimer.entries)
            else:
                self.unknown_states += 1
        self.raw_daytimers.update(counts)
        self._set_daytimers(counts)

    def _apply_weather(self, table: WeatherStatesReceived) -> None:
        assert self.series is not None
        for weather in table.states:
            if weather.uuid == self.series.weather_actual and weather.entries:
                self.weather = weather.entries[0]
            if weather.uuid not in self.known:
                self.unknown_states += 1

    def _set_value(self, raw: bytes, value: float) -> None:
        assert self.series is not None
        owners = self.series.values.get(raw)
        if owners:
            for labels in owners:
                self.control_values[labels] = value
        else:
            # Today: a UUID that is both a global state and a state of an exported control
            # feeds the control's series only (no such UUID in the real files at hand).
            for labels in self.series.globals.get(raw, ()):
                self.global_values[labels] = value

    def _set_texts(self, texts: dict[bytes, str]) -> None:
        assert self.series is not None
        for raw, text in texts.items():
            for labels in self.series.values.get(raw, ()):
                self.texts[labels] = text

    def _set_daytimers(self, counts: dict[bytes, int]) -> None:
        assert self.series is not None
        for raw, count in counts.items():
            for labels in self.series.daytimers.get(raw, ()):
                self.daytimer_entries[labels] = float(count)

    def family_of(self, labels: Labels) -> tuple[str, Any] | None:
        """The typed family of a value series, ``None`` for ``loxone_control_value``."""
        assert self.series is not None
        return self.series.typed.get(labels)

    def info_series(self) -> Iterable[Labels]:
        """One per exported control; two controls alike in every label are one series."""
        return dict.fromkeys(self.series.info if self.series is not None else ())

    def info_labels(self) -> Labels | None:
        if self.structure is None and not self.serial and not self.firmware:
            return None
        serial, name, project, generation = self.serial, "", "", ""
        if self.structure is not None:
            info = self.structure.ms_info
            serial = info.serial_nr or serial
            name, project = info.ms_name, info.project_name
            if info.miniserver_type is not None:
                generation = GENERATIONS.get(info.miniserver_type, "")
        return (
            *self.labels,
            ("serial", serial),
            ("name", name),
            ("project", project),
            ("firmware", self.firmware),
            ("generation", generation),
        )

    def structure_unix(self) -> float | None:
        """``lastModified`` read as UTC; ``None`` when it is no such time."""
        if self.last_modified is None:
            return None
        try:
            moment = datetime.datetime.strptime(self.last_modified, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
        return moment.replace(tzinfo=datetime.UTC).timestamp()


# --- the exporter: every Miniserver, and the body of a scrape -----------------------------------

_FROM_WEATHER = (
    "of the current weather entry (weatherServer.states.actual), from the Miniserver's "
    "weather-state events (Loxone weather service)."
)
#: (family, unit, help, WeatherEntry field, conversion to the unit in the name).
_WEATHER = (
    ("temperature_celsius", "celsius", "Air temperature in °C", "temperature", _scaled(1.0)),
    (
        "perceived_temperature_celsius",
        "celsius",
        "Perceived (felt) temperature in °C",
        "perceived_temperature",
        _scaled(1.0),
    ),
    ("dew_point_celsius", "celsius", "Dew point in °C", "dew_point", _scaled(1.0)),
    (
        "relative_humidity_ratio",
        "ratio",
        "Relative humidity as a ratio (0-1; the Miniserver sends percent)",
        "relative_humidity",
        _scaled(1.0, 100.0),
    ),
    (
        "wind_speed_meters_per_second",
        "meters_per_second",
        "Wind speed in m/s (the Miniserver sends km/h)",
        "wind_speed",
        _scaled(1.0, 3.6),
    ),
    (
        "wind_direction_degrees",
        "degrees",
        "Wind direction in degrees",
        "wind_direction",
        _scaled(1.0),
    ),
    (
        "solar_radiation_watts_per_square_meter",
        "watts_per_square_meter",
        "Solar radiation in W/m²",
        "solar_radiation",
        _scaled(1.0),
    ),
    (
        "precipitation_meters",
        "meters",
        "Precipitation in metres (the Miniserver sends millimetres, litres per m²)",
        "precipitation",
        _scaled(1.0, 1000.0),
    ),
    (
        "barometric_pressure_pascals",
        "pascals",
        "Barometric pressure in pascals (the Miniserver sends hPa)",
        "barometric_pressure",
        _scaled(100.0),
    ),
)


class ReferenceExporter:
    """The exporter's ``/metrics`` body, from the steps it went through."""

    def __init__(self, miniservers: Sequence[str], export: ExportConfig) -> None:
        self.export = export
        self.miniservers = {name: _Miniserver(name) for name in miniservers}
        self.scraped = False

    def apply(self, step: Step) -> bytes | None:
        """Apply one step; a ``Scrape`` returns the body."""
        if isinstance(step, Scrape):
            body = self.body()
            self.scraped = True
            return body
        if isinstance(step, DropStale):
            for ms in self.miniservers.values():
                if ms.stale_pending:
                    ms.stale_pending = False
                    ms.forget_values()
        elif isinstance(step, Reload):
            old, self.export = self.export, step.export
            if _export_key(old) != _export_key(step.export):
                for ms in self.miniservers.values():
                    ms.reload(step.export)
            elif step.export.include_text and not old.include_text:
                # Texts by series are kept only while exported: turned on, they are rebuilt
                # from the last text of every UUID, as a reload with new filters does.
                for ms in self.miniservers.values():
                    if ms.series is not None:
                        ms.texts = {}
                        ms._set_texts(ms.raw_texts)
        else:
            self._apply_to(self.miniservers[step.miniserver], step)
        return None

    def _apply_to(self, ms: _Miniserver, step: Step) -> None:
        if isinstance(step, LoadStructure):
            ms.load(step, self.export)
        elif isinstance(step, ApplyTable):
            ms.apply(step.table)
        elif isinstance(step, Identify):
            ms.serial, ms.firmware = step.serial, step.firmware
        elif isinstance(step, GrantToken):
            ms.token_expiry = step.valid_until_unix
        elif isinstance(step, SetStreaming):
            ms.streaming = step.streaming
            if step.streaming:
                ms.stale_pending = False
        elif isinstance(step, LoseSession):
            ms.reconnects[step.reason] += 1
            ms.auth_failures += step.auth_failure
            ms.protocol_errors += step.protocol_error
            ms.streaming = False
            ms.stale_pending = True

    def body(self) -> bytes:
        """Every family, in the order the exporter writes them."""
        all_ms = list(self.miniservers.values())
        loaded = [ms for ms in all_ms if ms.series is not None]
        families = [
            write_family(
                "loxone_up",
                "gauge",
                "1 while the exporter's session with the Miniserver is authenticated and "
                "streaming state events, else 0.",
                [(ms.labels, 1.0 if ms.streaming else 0.0) for ms in all_ms],
            ),
            write_family(
                "loxone_miniserver_info",
                "gauge",
                "Always 1: serial, name and project from msInfo of LoxAPP3.json (serial from "
                "jdev/cfg/apiKey until the structure is loaded), firmware from jdev/cfg/apiKey, "
                "generation from msInfo.miniserverType.",
                [(labels, 1.0) for ms in all_ms if (labels := ms.info_labels()) is not None],
            ),
            write_family(
                "loxone_control_value",
                "gauge",
                "Current value of a numeric state of a control or subcontrol, from the "
                "Miniserver's value-state events; labels from the structure file LoxAPP3.json "
                "(uuid is the control's uuidAction, state the state's name, name[i] for list "
                "states). States whose unit is known are in the "
                "loxone_control_<quantity>_<unit> families instead.",
                [
                    item
                    for ms in loaded
                    for item in ms.control_values.items()
                    if ms.family_of(item[0]) is None
                ],
            ),
            *self._typed_families(loaded),
            write_family(
                "loxone_control_info",
                "gauge",
                "Always 1: one series per exported control or subcontrol, from the structure "
                "file LoxAPP3.json; unit is taken from the control's details.format.",
                [(labels, 1.0) for ms in loaded for labels in ms.info_series()],
            ),
        ]
        if self.export.include_text:
            families.append(
                write_family(
                    "loxone_control_text",
                    "gauge",
                    "Always 1: the current text of a text state of a control (in the text "
                    "label, cut to 200 characters), from the Miniserver's text-state events.",
                    [
                        ((*labels, ("text", text)), 1.0)
                        for ms in loaded
                        for labels, text in ms.texts.items()
                    ],
                )
            )
        families += [
            write_family(
                "loxone_global_value",
                "gauge",
                "Current value of a numeric global state (globalStates of LoxAPP3.json: "
                "operatingMode, sunrise, sunset, ...), from the Miniserver's value-state events.",
                [item for ms in loaded for item in ms.global_values.items()],
            ),
            write_family(
                "loxone_daytimer_entries",
                "gauge",
                "Number of schedule entries of a daytimer, from the Miniserver's daytimer-state "
                "events.",
                [item for ms in loaded for item in ms.daytimer_entries.items()],
            ),
        ]
        for suffix, _unit, what, field, convert in _WEATHER:
            families.append(
                write_family(
                    f"loxone_weather_{suffix}",
                    "gauge",
                    f"{what} {_FROM_WEATHER}",
                    [
                        (ms.labels, convert(getattr(ms.weather, field)))
                        for ms in loaded
                        if ms.weather is not None
                    ],
                )
            )
        families.append(
            write_family(
                "loxone_exporter_build_info",
                "gauge",
                "Always 1: the exporter's version, source revision, Python version and build date.",
                [
                    (
                        (
                            ("version", BUILD_VERSION),
                            ("revision", BUILD_REVISION),
                            ("python", BUILD_PYTHON),
                            ("build_date", BUILD_DATE),
                        ),
                        1.0,
                    )
                ],
            )
        )
        families += self._exporter_families(all_ms)
        families.append(
            write_family(
                RENDER_DURATION,
                "gauge",
                "Seconds the exporter took to answer the previous scrape of the metrics "
                "endpoint (snapshot, process metrics, rendering and compression).",
                [((), SECONDS_PLACEHOLDER)] if self.scraped else [],
            )
        )
        families += [
            write_family(
                "loxone_exporter_config_last_reload_successful",
                "gauge",
                "1 if the last config reload (SIGHUP or POST /-/reload) succeeded, 0 if the new "
                "config was invalid and the previous one is still running; 1 at start.",
                [((), 1.0)],
            ),
            write_family(
                "loxone_exporter_config_last_reload_success_timestamp_seconds",
                "gauge",
                "Unix time when the running config was loaded: at start or by the last "
                "successful reload.",
                [((), WALL_CLOCK_UNIX)],
            ),
        ]
        return b"".join(families)

    def _typed_families(self, loaded: list[_Miniserver]) -> list[bytes]:
        """Each typed family that holds a value, in the exporter's order."""
        written = []
        for name, kind, _unit, what in TYPED_FAMILIES:
            samples = [
                (labels, typed[1](value))
                for ms in loaded
                for labels, value in ms.control_values.items()
                if (typed := ms.family_of(labels)) is not None and typed[0] == name
            ]
            if samples:
                written.append(
                    write_family(
                        name,
                        kind,
                        f"{what}: current value of a state of a control or subcontrol whose "
                        "format in LoxAPP3.json (details.format, a Meter's actualFormat or "
                        "totalFormat) gives this unit, converted to it; labels as "
                        "loxone_control_value.",
                        samples,
                    )
                )
        return written

    def _exporter_families(self, all_ms: list[_Miniserver]) -> list[bytes]:
        def per_ms(
            values: Iterable[tuple[_Miniserver, float | None]],
        ) -> list[tuple[Labels, float]]:
            return [(ms.labels, value) for ms, value in values if value is not None]

        return [
            write_family(
                "loxone_exporter_events_total",
                "counter",
                "State events decoded from the Miniserver's event tables, by table.",
                [
                    ((*ms.labels, ("table", table)), float(ms.events[table]))
                    for ms in all_ms
                    for table in TABLES
                    if ms.events[table]
                ],
            ),
            write_family(
                "loxone_exporter_reconnects_total",
                "counter",
                "Sessions with the Miniserver that ended or failed to start, by reason; the "
                "exporter then connects again.",
                [
                    ((*ms.labels, ("reason", reason)), float(ms.reconnects[reason]))
                    for ms in all_ms
                    for reason in RECONNECT_REASONS
                ],
            ),
            write_family(
                "loxone_exporter_auth_failures_total",
                "counter",
                "Logins the Miniserver refused (user or password wrong, or the user is locked).",
                per_ms((ms, float(ms.auth_failures)) for ms in all_ms),
            ),
            write_family(
                "loxone_exporter_protocol_errors_total",
                "counter",
                "Malformed frames or replies received from the Miniserver; each restarts the "
                "session.",
                per_ms((ms, float(ms.protocol_errors)) for ms in all_ms),
            ),
            write_family(
                "loxone_exporter_unknown_states_total",
                "counter",
                "State events for UUIDs the Miniserver's structure file does not name; they are "
                "ignored (a Miniserver whose structure changed without telling, or a faulty "
                "one).",
                per_ms((ms, float(ms.unknown_states)) for ms in all_ms),
            ),
            write_family(
                "loxone_exporter_last_event_timestamp_seconds",
                "gauge",
                "Unix time (the exporter's clock) of the last state event table from the "
                "Miniserver.",
                per_ms((ms, ms.last_event) for ms in all_ms),
            ),
            write_family(
                "loxone_exporter_structure_timestamp_seconds",
                "gauge",
                "lastModified of the loaded structure file LoxAPP3.json as Unix time; the file "
                "gives the Miniserver's local time without a zone, which is read as UTC.",
                per_ms((ms, ms.structure_unix()) for ms in all_ms),
            ),
            write_family(
                "loxone_exporter_token_expiry_timestamp_seconds",
                "gauge",
                "Unix time when the exporter's token for the Miniserver expires, as the "
                "Miniserver announced it when it granted or refreshed the token.",
                per_ms((ms, ms.token_expiry) for ms in all_ms),
            ),
            write_family(
                "loxone_exporter_controls",
                "gauge",
                "Controls and subcontrols in the loaded structure file (status=discovered), and "
                "those exported after the [export] exclude filters (status=exported).",
                [
                    ((*ms.labels, ("status", status)), float(count))
                    for ms in all_ms
                    if ms.series is not None
                    for status, count in (
                        ("discovered", ms.series.discovered),
                        ("exported", ms.series.exported),
                    )
                ],
            ),
            write_family(
                "loxone_exporter_series",
                "gauge",
                "Control series (loxone_control_value and the families of a unit; "
                "loxone_control_text with include_text) the loaded structure file gives after "
                "the [export] filters (status=exported), and those left out because they are "
                "beyond max_series (status=limited).",
                [
                    ((*ms.labels, ("status", status)), float(count))
                    for ms in all_ms
                    if ms.series is not None
                    for status, count in (
                        ("exported", ms.series.series_exported),
                        ("limited", ms.series.series_limited),
                    )
                ],
            ),
        ]


def reference_scrapes(
    miniservers: Sequence[str], export: ExportConfig, steps: Iterable[Step]
) -> list[bytes]:
    """The body of every ``Scrape`` in ``steps``, as the reference writes it."""
    exporter = ReferenceExporter(miniservers, export)
    return [body for step in steps if (body := exporter.apply(step)) is not None]
