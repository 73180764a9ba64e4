"""Typed families: which family a control state's value goes to, by its unit, and how it is
converted to the base unit the family's name carries (Prometheus naming: ``_celsius``,
``_watts``, ``_joules``, ``_ratio`` ...).

Every exported control state has one family: the typed family of its unit where the unit is in
``UNITS``, else ``loxone_control_value`` (family 0), so typing never adds series. A Meter's
``total*`` states are counters (``_total``): they only grow between resets.

A unit code (``unit_code``) is one byte per series in the plan: an index into ``CONVERSIONS``,
which names the family and the arithmetic. The conversion is applied when a value is written
into the exposition, never to the stored value (an event stays one array store).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from ..exposition import MetricType
from ..structure import METER_TYPE

#: ``float(f"{x:.15g}")``: 15 significant digits drop the binary noise of a conversion
#: (``1.234 kW * 1000`` is 1234.0, not 1233.9999999999998), and every double a Miniserver sends
#: with its few decimals keeps its digits.
_SIGNIFICANT = ".15g"


@attrs.frozen
class ControlFamily:
    """A family control values are exported in."""

    name: str
    type: MetricType
    #: The unit the name ends with (OpenMetrics ``# UNIT``); ``''`` for ``loxone_control_value``.
    unit: str
    #: What a value is, for HELP (``Temperature in degrees Celsius``).
    what: str


VALUE = ControlFamily("loxone_control_value", "gauge", "", "")

#: Every control family, ``loxone_control_value`` first; the order they are written in.
FAMILIES: tuple[ControlFamily, ...] = (
    VALUE,
    ControlFamily("loxone_control_temperature_celsius", "gauge", "celsius", "Temperature in °C"),
    ControlFamily("loxone_control_power_watts", "gauge", "watts", "Power in watts"),
    ControlFamily("loxone_control_energy_joules", "gauge", "joules", "Energy in joules"),
    ControlFamily(
        "loxone_control_meter_energy_joules_total",
        "counter",
        "joules",
        "Energy counted by a Meter (its total states) in joules",
    ),
    ControlFamily(
        "loxone_control_ratio", "gauge", "ratio", "A percentage as a ratio (100 % is 1.0)"
    ),
    ControlFamily("loxone_control_voltage_volts", "gauge", "volts", "Voltage in volts"),
    ControlFamily("loxone_control_current_amperes", "gauge", "amperes", "Current in amperes"),
    ControlFamily("loxone_control_frequency_hertz", "gauge", "hertz", "Frequency in hertz"),
    ControlFamily("loxone_control_illuminance_lux", "gauge", "lux", "Illuminance in lux"),
    ControlFamily(
        "loxone_control_speed_meters_per_second",
        "gauge",
        "meters_per_second",
        "Speed in metres per second",
    ),
    ControlFamily("loxone_control_length_meters", "gauge", "meters", "Length in metres"),
    ControlFamily(
        "loxone_control_volume_cubic_meters", "gauge", "cubic_meters", "Volume in cubic metres"
    ),
    ControlFamily(
        "loxone_control_meter_volume_cubic_meters_total",
        "counter",
        "cubic_meters",
        "Volume counted by a Meter (its total states) in cubic metres",
    ),
    ControlFamily(
        "loxone_control_flow_cubic_meters_per_second",
        "gauge",
        "cubic_meters_per_second",
        "Flow in cubic metres per second",
    ),
    ControlFamily("loxone_control_pressure_pascals", "gauge", "pascals", "Pressure in pascals"),
    ControlFamily("loxone_control_duration_seconds", "gauge", "seconds", "Duration in seconds"),
    ControlFamily(
        "loxone_control_irradiance_watts_per_square_meter",
        "gauge",
        "watts_per_square_meter",
        "Irradiance in watts per square metre",
    ),
)
_FAMILY_BY_NAME = {family.name: number for number, family in enumerate(FAMILIES)}


@attrs.frozen
class Conversion:
    """``(value + add) * multiply / divide`` into ``FAMILIES[family]``, to 15 digits."""

    family: int
    add: float = 0.0
    multiply: float = 1.0
    divide: float = 1.0

    @property
    def identity(self) -> bool:
        return self.add == 0.0 and self.multiply == 1.0 and self.divide == 1.0

    def __call__(self, value: float) -> float:
        if self.identity:
            return value
        return float(format((value + self.add) * self.multiply / self.divide, _SIGNIFICANT))

    def many(self, values: Iterable[float]) -> list[float]:
        """``[self(value) for value in values]``, at about half the cost per value: the
        renderer converts a whole block of 32 values whenever one of them changed."""
        if self.identity:
            return list(values)
        add, multiply, divide = self.add, self.multiply, self.divide
        if add == 0.0 and divide == 1.0:
            return [float(format(value * multiply, _SIGNIFICANT)) for value in values]
        if add == 0.0 and multiply == 1.0:
            return [float(format(value / divide, _SIGNIFICANT)) for value in values]
        return [float(format((value + add) * multiply / divide, _SIGNIFICANT)) for value in values]


@attrs.frozen
class _Unit:
    family: str
    add: float = 0.0
    multiply: float = 1.0
    divide: float = 1.0
    #: The family of a Meter's total states in this unit (a counter), if it has one.
    meter_total: str | None = None


_TEMPERATURE = "loxone_control_temperature_celsius"
_POWER = "loxone_control_power_watts"
_ENERGY = "loxone_control_energy_joules"
_METER_ENERGY = "loxone_control_meter_energy_joules_total"
_VOLUME = "loxone_control_volume_cubic_meters"
_METER_VOLUME = "loxone_control_meter_volume_cubic_meters_total"
_FLOW = "loxone_control_flow_cubic_meters_per_second"
_PRESSURE = "loxone_control_pressure_pascals"
_DURATION = "loxone_control_duration_seconds"
_SPEED = "loxone_control_speed_meters_per_second"
_LENGTH = "loxone_control_length_meters"

#: Units as ``structure._units.state_unit`` reads them -> family and conversion. A unit that
#: is not here (ppm, g/m³, currencies, prose) keeps its state in ``loxone_control_value``.
UNITS: Mapping[str, _Unit] = {
    "°C": _Unit(_TEMPERATURE),
    "°F": _Unit(_TEMPERATURE, add=-32.0, multiply=5.0, divide=9.0),
    "W": _Unit(_POWER),
    "kW": _Unit(_POWER, multiply=1e3),
    "MW": _Unit(_POWER, multiply=1e6),
    "Wh": _Unit(_ENERGY, multiply=3600.0, meter_total=_METER_ENERGY),
    "kWh": _Unit(_ENERGY, multiply=3.6e6, meter_total=_METER_ENERGY),
    "MWh": _Unit(_ENERGY, multiply=3.6e9, meter_total=_METER_ENERGY),
    "%": _Unit("loxone_control_ratio", divide=100.0),
    "V": _Unit("loxone_control_voltage_volts"),
    "A": _Unit("loxone_control_current_amperes"),
    "mA": _Unit("loxone_control_current_amperes", divide=1e3),
    "Hz": _Unit("loxone_control_frequency_hertz"),
    "lx": _Unit("loxone_control_illuminance_lux"),
    "m/s": _Unit(_SPEED),
    "km/h": _Unit(_SPEED, divide=3.6),
    "mm": _Unit(_LENGTH, divide=1e3),
    "cm": _Unit(_LENGTH, divide=100.0),
    "m": _Unit(_LENGTH),
    "km": _Unit(_LENGTH, multiply=1e3),
    "l": _Unit(_VOLUME, divide=1e3, meter_total=_METER_VOLUME),
    "L": _Unit(_VOLUME, divide=1e3, meter_total=_METER_VOLUME),
    "m³": _Unit(_VOLUME, meter_total=_METER_VOLUME),
    "l/h": _Unit(_FLOW, divide=3.6e6),
    "l/min": _Unit(_FLOW, divide=6e4),
    "m³/h": _Unit(_FLOW, divide=3600.0),
    "Pa": _Unit(_PRESSURE),
    "hPa": _Unit(_PRESSURE, multiply=100.0),
    "mbar": _Unit(_PRESSURE, multiply=100.0),
    "bar": _Unit(_PRESSURE, multiply=1e5),
    "ms": _Unit(_DURATION, divide=1e3),
    "s": _Unit(_DURATION),
    "min": _Unit(_DURATION, multiply=60.0),
    "h": _Unit(_DURATION, multiply=3600.0),
    "W/m²": _Unit("loxone_control_irradiance_watts_per_square_meter"),
}


def _conversions() -> tuple[tuple[Conversion, ...], dict[tuple[str, bool], int]]:
    """One code per unit, and one more for a Meter's totals where they have a family of
    their own (a counter); ``(unit, is a Meter total)`` -> code."""
    conversions = [Conversion(0)]
    codes: dict[tuple[str, bool], int] = {}
    for unit, spec in UNITS.items():
        for meter_total, family in ((False, spec.family), (True, spec.meter_total)):
            if family is None:  # a Meter total in this unit is an ordinary value of it
                codes[unit, meter_total] = codes[unit, False]
                continue
            codes[unit, meter_total] = len(conversions)
            conversions.append(
                Conversion(_FAMILY_BY_NAME[family], spec.add, spec.multiply, spec.divide)
            )
    return tuple(conversions), codes


#: Unit code -> conversion; code 0 is ``loxone_control_value`` as it is.
CONVERSIONS, _CODES = _conversions()
PLAIN = 0
#: Unit code -> the number of its family in ``FAMILIES``.
FAMILY_OF_UNIT = bytes(conversion.family for conversion in CONVERSIONS)


def is_meter_total(control_type: str, state_name: str) -> bool:
    """A Meter's ``total``, ``totalDay``, ``totalNeg``...: counted up, reset by the Meter."""
    return control_type == METER_TYPE and state_name.startswith("total")


def unit_code(control_type: str, state_label: str, unit: str) -> int:
    """The code of a state's family and conversion; ``PLAIN`` for a unit not in ``UNITS``."""
    name = state_label.partition("[")[0]
    return _CODES.get((unit, is_meter_total(control_type, name)), PLAIN)
