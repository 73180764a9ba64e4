"""The ``[export]`` table as the series plan wants it (``state.ExportFilter``): used by the
state owner and, offline, by ``check --structure``, so both plan the same series."""

from __future__ import annotations

from ..state import ExportFilter
from ._model import ExportConfig, split_state_glob


def export_filter(export: ExportConfig, max_series: int | None = None) -> ExportFilter:
    """The filters and limit of ``export``; ``max_series`` is a Miniserver's own limit
    (``None``: ``[export] max_series``)."""
    return ExportFilter(
        exclude_rooms=frozenset(export.exclude_rooms),
        exclude_categories=frozenset(export.exclude_categories),
        exclude_types=frozenset(export.exclude_types),
        exclude_names=export.exclude_names,
        exclude_states=tuple(split_state_glob(entry) for entry in export.exclude_states),
        max_series=export.max_series if max_series is None else max_series,
        typed=export.typed,
    )
