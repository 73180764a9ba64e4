"""The exporter's state: which series a structure gives, and their current values."""

from ._counts import CONTROL_VALUE_FAMILY, SeriesCounts, TypeCounts, series_counts
from ._parts import StoreView, freeze
from ._plan import ExportFilter, SeriesPlan, control_labels
from ._store import MAX_TEXT_LENGTH, SeriesStore
from ._tables import TABLE_KINDS, TableEvent, TableKind
from ._typed import CONVERSIONS, FAMILIES, PLAIN, ControlFamily, Conversion, unit_code

__all__ = [
    "CONTROL_VALUE_FAMILY",
    "CONVERSIONS",
    "FAMILIES",
    "MAX_TEXT_LENGTH",
    "PLAIN",
    "TABLE_KINDS",
    "ControlFamily",
    "Conversion",
    "ExportFilter",
    "SeriesCounts",
    "SeriesPlan",
    "SeriesStore",
    "StoreView",
    "TableEvent",
    "TableKind",
    "TypeCounts",
    "control_labels",
    "freeze",
    "series_counts",
    "unit_code",
]
