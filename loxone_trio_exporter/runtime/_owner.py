"""The state owner: the only holder of mutable exporter state, and the snapshots it publishes.

One task (``run``) reads what every connection task sends over one memory channel and applies it
in arrival order; the web side reads ``snapshot()`` and ``views()``. Both run on the same trio
thread, so nothing is locked: a snapshot is built synchronously from the current state and never
changed afterwards (design 2; style principle 6).

Per Miniserver the owner keeps the connection state, what ``apiKey`` and the structure said, the
current values (a ``MiniserverValues`` over a ``SeriesCatalogue``) and counters that survive
reconnects and structure changes. When a session is lost the value series stay for
``stale_after_seconds``; if the Miniserver has not streamed again by then, they are dropped.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import assert_type

import attrs
import trio

from ..config import ExportConfig
from ..exposition import LabelSet, Snapshot
from ..protocol import (
    DaytimerStatesReceived,
    TextStatesReceived,
    ValueStatesReceived,
)
from ..state import ExportFilter, MiniserverValues, SeriesCatalogue, build_catalogue
from ..structure import Structure
from ..views import MiniserverView
from ._families import TABLE_NAMES, build_snapshot
from ._messages import (
    ConnectionRemoved,
    ConnectionState,
    Message,
    MiniserverIdentified,
    SessionLost,
    StatusChanged,
    StructureReady,
    TableEvent,
    TablesReceived,
    TokenUpdated,
)

log = logging.getLogger(__name__)


@attrs.frozen
class BuildInfo:
    """The labels of ``loxone_exporter_build_info``."""

    version: str
    revision: str = "unknown"
    python: str = attrs.field(factory=platform.python_version)


class MiniserverState:
    """Everything the owner knows of one configured Miniserver; changed by the owner alone."""

    def __init__(self, name: str) -> None:
        self.name = name
        #: ``(("miniserver", name),)``: one object for every snapshot (the renderer's caches key
        #: on label sets, and repeated objects compare fastest).
        self.labels: LabelSet = (("miniserver", name),)
        self.connection = ConnectionState.CONNECTING
        self.detail = ""
        self.retry_at_unix: float | None = None
        self.serial = ""  # from jdev/cfg/apiKey
        self.firmware = ""
        self.structure: Structure | None = None
        self.last_modified: str | None = None
        self.values: MiniserverValues | None = None
        self.control_info: dict[LabelSet, float] = {}  # the catalogue's info series, all 1
        # Events counted before the current ``values`` (older structures, dropped values, tables
        # that came without a catalogue): counters stay monotonic across all of those.
        self.events_before: Counter[str] = Counter()
        self.reconnects: Counter[str] = Counter()  # by ``ReconnectReason.value``
        self.auth_failures = 0
        self.protocol_errors = 0
        self.last_event_unix: float | None = None
        self.token_expiry_unix: float | None = None
        #: value labels -> the same labels plus ``text``, kept while the text stays the same.
        self.text_labels: dict[LabelSet, LabelSet] = {}
        self._extra_labels: dict[tuple[str, str], LabelSet] = {}
        self._kept_labels: dict[str, LabelSet] = {}

    @property
    def streaming(self) -> bool:
        return self.connection is ConnectionState.STREAMING

    @property
    def catalogue(self) -> SeriesCatalogue | None:
        return None if self.values is None else self.values.catalogue

    def events(self) -> Counter[str]:
        """Decoded events by table, since the exporter started."""
        total = Counter(self.events_before)
        if self.values is not None:
            total.update(self.values.events)
        return total

    def value_series(self) -> int:
        """How many ``loxone_control_value`` and ``loxone_global_value`` series there are."""
        if self.values is None:
            return 0
        return len(self.values.control_values) + len(self.values.global_values)

    def replace_values(self, catalogue: SeriesCatalogue) -> None:
        """Start over with no values for ``catalogue``; the event counts are kept."""
        if self.values is not None:
            self.events_before.update(self.values.events)
        self.values = MiniserverValues(catalogue)
        self.text_labels.clear()

    def labels_with(self, name: str, value: str) -> LabelSet:
        """``miniserver`` plus one label, the same object every time (the sets are small)."""
        key = (name, value)
        labels = self._extra_labels.get(key)
        if labels is None:
            labels = self._extra_labels[key] = (*self.labels, key)
        return labels

    def kept(self, purpose: str, labels: LabelSet) -> LabelSet:
        """``labels``, or the equal label set given for ``purpose`` before (same object)."""
        old = self._kept_labels.get(purpose)
        if old == labels:
            return old
        self._kept_labels[purpose] = labels
        return labels


def export_filter(export: ExportConfig) -> ExportFilter:
    """The ``[export]`` excludes as the catalogue wants them."""
    return ExportFilter(
        exclude_rooms=frozenset(export.exclude_rooms),
        exclude_categories=frozenset(export.exclude_categories),
        exclude_types=frozenset(export.exclude_types),
        exclude_names=export.exclude_names,
    )


class StateOwner:
    """Applies connection messages, publishes snapshots and the pages' view of each Miniserver.

    ``miniservers`` are the configured names in config order; each is shown from the start
    (``connecting``, ``loxone_up`` 0). ``apply`` takes trio's clock (staleness); timestamps in
    metrics and pages come from ``wall_clock``.
    """

    def __init__(
        self,
        miniservers: Sequence[str],
        export: ExportConfig,
        *,
        build_info: BuildInfo,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._export = export
        self._filter = export_filter(export)
        self._build_info = build_info
        self._wall_clock = wall_clock
        self._miniservers = {name: MiniserverState(name) for name in miniservers}
        #: name -> trio time when its value series go, for Miniservers whose session was lost.
        self._stale_at: dict[str, float] = {}
        self._snapshot: Snapshot | None = None

    # --- the task --------------------------------------------------------------------------------

    async def run(
        self,
        receive_channel: trio.abc.ReceiveChannel[Message],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Apply every message until all senders are closed; drop stale values on time.

        The task sleeps in ``receive`` with no timer at all unless a Miniserver's values are
        waiting to go stale (idle CPU budget, design 4).
        """
        async with receive_channel:
            task_status.started()
            while True:
                self.drop_stale(trio.current_time())
                deadline = self.next_stale_deadline()
                message: Message | None = None
                try:
                    if deadline == math.inf:  # the usual case: no cancel scope per message
                        message = await receive_channel.receive()
                    else:
                        with trio.move_on_at(deadline):
                            message = await receive_channel.receive()
                except trio.EndOfChannel:
                    return
                if message is not None:  # else the deadline passed: drop at the loop's top
                    self.apply(message, trio.current_time())

    def next_stale_deadline(self) -> float:
        """The trio time when the next Miniserver's values go stale; ``inf`` when none will."""
        return min(self._stale_at.values(), default=math.inf)

    def drop_stale(self, now: float) -> None:
        """Drop the value series of every Miniserver whose stale deadline is ``now`` or past."""
        if not self._stale_at:
            return
        for name, deadline in list(self._stale_at.items()):
            if deadline > now:
                continue
            del self._stale_at[name]
            state = self._miniservers[name]
            if state.values is not None:
                state.replace_values(state.values.catalogue)
                self._snapshot = None
                log.info(
                    "miniserver %s: not streaming for %g s; its value series are dropped",
                    name,
                    self._export.stale_after_seconds,
                )

    # --- messages --------------------------------------------------------------------------------

    def apply(self, message: Message, now: float) -> None:
        """Apply one message; ``now`` is trio's clock (``trio.current_time()``)."""
        state = self._miniservers.get(message.miniserver)
        if state is None:
            if not isinstance(message, ConnectionRemoved):
                log.debug(
                    "ignored %s for miniserver %r, which is not configured",
                    type(message).__name__,
                    message.miniserver,
                )
            return
        self._snapshot = None  # the dirty flag: the next snapshot() builds anew
        if isinstance(message, TablesReceived):  # first: the hot path
            self._tables_received(state, message.table)
        elif isinstance(message, StatusChanged):
            self._status_changed(state, message)
        elif isinstance(message, StructureReady):
            self._structure_ready(state, message)
        elif isinstance(message, MiniserverIdentified):
            state.serial = message.serial
            state.firmware = message.firmware
        elif isinstance(message, TokenUpdated):
            state.token_expiry_unix = message.valid_until_unix
        elif isinstance(message, SessionLost):
            self._session_lost(state, message, now)
        else:
            assert_type(message, ConnectionRemoved)
            del self._miniservers[state.name]
            self._stale_at.pop(state.name, None)

    def _tables_received(self, state: MiniserverState, table: TableEvent) -> None:
        state.last_event_unix = self._wall_clock()
        if self._stale_at:
            # Tables are a live session too (they may come before the STREAMING status).
            self._stale_at.pop(state.name, None)
        values = state.values
        if values is None:
            # The connection task sends StructureReady before a session's tables, so this is
            # a Miniserver without a usable structure: count the events, nothing else.
            state.events_before[TABLE_NAMES[type(table)]] += len(table.states)
        elif isinstance(table, ValueStatesReceived):
            values.apply_values(table.states)
        elif isinstance(table, TextStatesReceived):
            values.apply_texts(table.states)
        elif isinstance(table, DaytimerStatesReceived):
            values.apply_daytimers(table.states)
        else:
            values.apply_weather(table.states)

    def _status_changed(self, state: MiniserverState, message: StatusChanged) -> None:
        state.connection = message.state
        state.detail = message.detail
        retry = message.retry_in_seconds
        state.retry_at_unix = None if retry is None else self._wall_clock() + retry
        if message.state is ConnectionState.STREAMING:
            self._stale_at.pop(state.name, None)

    def _structure_ready(self, state: MiniserverState, message: StructureReady) -> None:
        state.structure = message.structure
        if state.values is not None and message.last_modified == state.last_modified:
            return  # a reconnect that reused the structure: same series, keep the values
        catalogue = build_catalogue(state.name, message.structure, message.index, self._filter)
        state.last_modified = message.last_modified
        # At once: series of vanished controls go now, not when the new tables arrive.
        state.replace_values(catalogue)
        state.control_info = dict.fromkeys(catalogue.control_info, 1.0)

    def _session_lost(self, state: MiniserverState, message: SessionLost, now: float) -> None:
        state.reconnects[message.reason.value] += 1
        state.auth_failures += message.auth_failure
        state.protocol_errors += message.protocol_error
        state.connection = ConnectionState.WAITING  # StatusChanged tells when the next try is
        state.detail = message.detail
        state.retry_at_unix = None
        # The values go stale from the first loss on; later failed tries do not restart the timer.
        self._stale_at.setdefault(state.name, now + self._export.stale_after_seconds)

    # --- readers ---------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current metric families; the same object until something changes."""
        if self._snapshot is None:
            self._snapshot = build_snapshot(
                tuple(self._miniservers.values()),
                include_text=self._export.include_text,
                build_info=self._build_info,
            )
        return self._snapshot

    def views(self) -> tuple[MiniserverView, ...]:
        """What the landing page and the health endpoints show, in config order."""
        wall = self._wall_clock()
        return tuple(
            MiniserverView(
                name=state.name,
                streaming=state.streaming,
                state=state_text(state, wall),
                firmware=state.firmware,
                series=state.value_series(),
                last_event_unix=state.last_event_unix,
            )
            for state in self._miniservers.values()
        )


def state_text(state: MiniserverState, now_unix: float) -> str:
    """E.g. ``waiting to reconnect: authentication failed (401); next try in 4 s``."""
    text = state.connection.value
    if state.detail:
        text = f"{text}: {state.detail}"
    if state.connection is ConnectionState.WAITING and state.retry_at_unix is not None:
        seconds = max(0, math.ceil(state.retry_at_unix - now_unix))
        text = f"{text}; next try in {seconds} s"
    return text
