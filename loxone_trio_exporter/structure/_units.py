"""Units from Loxone's C-printf format strings (protocol reference §6.4).

The unit is the text after the first conversion (``%.1f``, ``%d``, ``%s`` ...), trimmed, with
``%%`` read as ``%``. Prose before the conversion (``Požadavek: %.0f °C``) is not a unit; prose
after it is kept verbatim (``%.0f / 10 (z této funkce)``): it is a label, and mapping units to
Prometheus base units is the exporter's business, not the structure model's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# One printf directive: either the escaped percent sign or a full conversion with optional flags,
# width, precision and length modifier (including the MSVC ``I64``/``I32`` forms). A width never
# starts with 0 (a leading 0 is the flag): were both allowed to take zeros, a format of thousands
# of zeros from a hostile structure file would take quadratic time to reject.
_DIRECTIVE = re.compile(
    r"%(?:%|[-+ #0']*(?:[1-9]\d*|\*)?(?:\.(?:\d+|\*)?)?"
    r"(?:hh|h|ll|l|L|q|j|z|t|I64|I32|I|w)?[diouxXeEfFgGaAcCsSpn])"
)

METER_TYPE = "Meter"


def unit_from_format(fmt: str | None) -> str:
    """The unit a format string prints after its value: ``'%.2f °C'`` -> ``'°C'``.

    ``''`` when there is no format or no conversion in it.
    """
    if not fmt:
        return ""
    for match in _DIRECTIVE.finditer(fmt):
        if match.group() != "%%":
            return fmt[match.end() :].replace("%%", "%").strip()
    return ""


def meter_format_key(state_name: str) -> str:
    """Which ``details`` key formats a Meter state ([DOC-SF] Meter)."""
    if state_name == "actual":
        return "actualFormat"
    if state_name.startswith("totalNeg"):
        return "totalFormatNeg"
    if state_name.startswith("total"):
        return "totalFormat"
    if state_name == "storage":
        return "storageFormat"
    return "format"


def state_format(control_type: str, state_name: str, formats: Mapping[str, str]) -> str | None:
    """The format string for one state of a control, given the control's ``details`` formats.

    Every state of a control shares ``details.format``, except a Meter's, whose ``actual``,
    ``total*``, ``totalNeg*`` and ``storage`` states have their own format (falling back to
    ``details.format`` when that is missing).
    """
    if control_type == METER_TYPE:
        specific = formats.get(meter_format_key(state_name))
        if specific is not None:
            return specific
    return formats.get("format")


def control_unit(control_type: str, formats: Mapping[str, str]) -> str:
    """The unit of a control as a whole: its ``details.format``, a Meter's ``actualFormat``."""
    return unit_from_format(state_format(control_type, "actual", formats))


#: ``msInfo.tempUnit``: 0 = °C, 1 = °F ([DOC-SF] msInfo).
FAHRENHEIT = 1
#: Loxone writes a bare degree sign for temperatures (``%.1f°``, the room controller's format)
#: and shows °C or °F by the Miniserver's ``tempUnit``.
DEGREE = "°"


def readable_unit(unit: str, temp_unit: int | None) -> str:
    """``unit`` as people read it: a bare ``°`` becomes ``°C`` (``°F`` where ``tempUnit`` is 1)."""
    if unit == DEGREE:
        return "°F" if temp_unit == FAHRENHEIT else "°C"
    return unit


#: States whose unit Loxone's documentation states although no format string carries it
#: ([DOC-SF] EnergyManager2: powers in kW, states of charge in %).
DOCUMENTED_UNITS: Mapping[tuple[str, str], str] = {
    ("EnergyManager2", "Gpwr"): "kW",
    ("EnergyManager2", "Spwr"): "kW",
    ("EnergyManager2", "Ppwr"): "kW",
    ("EnergyManager2", "MaxSpwr"): "kW",
    ("EnergyManager2", "Ssoc"): "%",
    ("EnergyManager2", "MinSoc"): "%",
}

#: The states a control's ``details.format`` describes, when the control has other states too:
#: a format is written for the control's value, not for its modes, flags and limits.
_VALUE_STATES = frozenset({"value", "min", "max", "step"})
_ROOM_CONTROLLERS = frozenset({"IRoomController", "IRoomControllerV2"})


def state_unit(control_type: str, state_name: str, unit: str, temp_unit: int | None) -> str:
    """The unit of one state's values, as people read it; ``''`` when unknown.

    ``unit`` is what the state's format string says (``state_format``). Every state of a control
    shares ``details.format`` in the file, but the format describes the control's value only:
    ``value`` (and its ``min``, ``max``, ``step``), a room controller's temperatures
    (``tempActual``, ``comfortTemperature``, ``temperatures[i]``, ...: not its ``operatingMode``
    or ``humidityActual``), and each Meter state its own format. Other states get no unit.
    """
    documented = DOCUMENTED_UNITS.get((control_type, state_name))
    if documented is not None:
        return documented
    if control_type == METER_TYPE:
        applies = meter_format_key(state_name) != "format" or state_name in _VALUE_STATES
    elif control_type in _ROOM_CONTROLLERS:
        applies = "temp" in state_name.lower()
    else:
        applies = state_name in _VALUE_STATES
    return readable_unit(unit, temp_unit) if applies else ""
