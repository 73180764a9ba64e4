"""The exporter's state: which series a structure gives, and their current values."""

from ._series import (
    ExportFilter,
    LabelSet,
    SeriesCatalogue,
    build_catalogue,
    control_labels,
)

__all__ = [
    "ExportFilter",
    "LabelSet",
    "SeriesCatalogue",
    "build_catalogue",
    "control_labels",
]
