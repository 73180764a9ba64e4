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
