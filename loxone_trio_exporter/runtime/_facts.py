"""What the families are built from: frozen facts about each Miniserver, and the exporter's.

The state owner makes these when it publishes a snapshot; ``_families`` turns them into metric
families and writes nothing anywhere. Label sets that never change for a Miniserver (``table``,
``reason`` and ``status`` labels) are made once, with the Miniserver, so every snapshot shares
them.
"""

from __future__ import annotations

import platform

import attrs

from ..exposition import LabelSet
from ..state import StoreView, TableKind
from ..structure import MiniserverInfo
from ._messages import ReconnectReason


@attrs.frozen
class BuildInfo:
    """The labels of ``loxone_exporter_build_info``."""

    version: str
    revision: str = "unknown"
    python: str = attrs.field(factory=platform.python_version)
    build_date: str = "unknown"  # YYYY-MM-DD of the image build, else of the package's install


@attrs.frozen
class ReloadStatus:
    """How the last config reload went: ``loxone_exporter_config_last_reload_*``.

    ``last_success_unix`` is when the running config was last loaded: the start, or the last
    reload that succeeded (as Prometheus reports its own reloads).
    """

    successful: bool
    last_success_unix: float


@attrs.frozen
class MiniserverLabels:
    """The label sets of one Miniserver's own series, made once."""

    miniserver: LabelSet
    tables: tuple[tuple[TableKind, LabelSet], ...]
    reasons: tuple[tuple[str, LabelSet], ...]
    discovered: LabelSet
    exported: LabelSet  # also the exported series of ``loxone_exporter_series``
    limited: LabelSet

    @classmethod
    def of(cls, name: str) -> MiniserverLabels:
        base: LabelSet = (("miniserver", name),)
        return cls(
            miniserver=base,
            tables=tuple((kind, (*base, ("table", kind.value))) for kind in TableKind),
            reasons=tuple(
                (reason.value, (*base, ("reason", reason.value))) for reason in ReconnectReason
            ),
            discovered=(*base, ("status", "discovered")),
            exported=(*base, ("status", "exported")),
            limited=(*base, ("status", "limited")),
        )


@attrs.frozen
class MiniserverFacts:
    """One Miniserver as a snapshot shows it."""

    labels: MiniserverLabels
    streaming: bool
    serial: str
    firmware: str
    ms_info: MiniserverInfo | None  # of the structure the Miniserver names now
    last_modified: str | None
    store: StoreView | None  # None: no structure, no series
    events: dict[TableKind, int]
    reconnects: dict[str, int]  # by ``ReconnectReason.value``
    auth_failures: int
    protocol_errors: int
    unknown_states: int
    last_event_unix: float | None
    token_expiry_unix: float | None
