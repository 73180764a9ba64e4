"""The exporter's state: which series a structure gives, and their current values."""

from ._parts import StoreView, freeze
from ._plan import ExportFilter, SeriesPlan, control_labels
from ._store import MAX_TEXT_LENGTH, SeriesStore
from ._tables import TABLE_KINDS, TableEvent, TableKind
from ._typed import CONVERSIONS, FAMILIES, PLAIN, ControlFamily, Conversion, unit_code

__all__ = [
    "CONVERSIONS",
    "FAMILIES",
    "MAX_TEXT_LENGTH",
    "PLAIN",
    "TABLE_KINDS",
    "ControlFamily",
    "Conversion",
    "ExportFilter",
    "SeriesPlan",
    "SeriesStore",
    "StoreView",
    "TableEvent",
    "TableKind",
    "control_labels",
    "freeze",
    "unit_code",
]
