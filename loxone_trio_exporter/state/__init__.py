"""The exporter's state: which series a structure gives, and their current values."""

from ._parts import StoreView, freeze
from ._plan import ExportFilter, SeriesPlan, control_labels
from ._store import MAX_TEXT_LENGTH, SeriesStore
from ._tables import TABLE_KINDS, TableEvent, TableKind

__all__ = [
    "MAX_TEXT_LENGTH",
    "TABLE_KINDS",
    "ExportFilter",
    "SeriesPlan",
    "SeriesStore",
    "StoreView",
    "TableEvent",
    "TableKind",
    "control_labels",
    "freeze",
]
