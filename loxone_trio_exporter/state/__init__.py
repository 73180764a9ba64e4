"""The exporter's state: which series a structure gives, and their current values."""

from ._series import (
    ExportFilter,
    LabelSet,
    SeriesCatalogue,
    build_catalogue,
    control_labels,
)
from ._values import MAX_TEXT_LENGTH, MiniserverValues

__all__ = [
    "MAX_TEXT_LENGTH",
    "ExportFilter",
    "LabelSet",
    "MiniserverValues",
    "SeriesCatalogue",
    "build_catalogue",
    "control_labels",
]
