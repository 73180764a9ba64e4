"""The state owner: the only holder of mutable exporter state, and the snapshots it publishes.

One task (``run``) reads what every connection task sends over one memory channel and applies it
in arrival order; the web side reads ``snapshot()`` and ``views()``. Both run on the same trio
thread, so nothing is locked: a snapshot is built synchronously from the current state and never
changed afterwards (design 2; style principle 6).

Per Miniserver the owner keeps the connection state, what ``apiKey`` and the structure said, the
series and their current values (a ``SeriesStore``) and counters that survive reconnects and
structure changes. When a session is lost the value series stay for
``stale_after_seconds``; if the Miniserver has not streamed again by then, they are dropped.

A config reload changes the owner from the supervisor's reload task, synchronously (the same trio
thread, and trio switches tasks only at ``await``, so a method runs whole between two messages):
Miniservers are added (``add_miniserver``), filters and staleness change (``set_export``), and
the reload outcome is recorded (``record_reload``). A removed Miniserver goes through the channel
instead (``ConnectionRemoved``, see ``removal_applied``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import assert_type

import trio

from ..config import ExportConfig, export_filter
from ..exposition import Snapshot
from ..logs import STATE_LOGGER
from ..state import ExportFilter, TableEvent
from ..views import MiniserverView
from ._facts import BuildInfo, ReloadStatus
from ._families import build_snapshot
from ._memory import TrimWhenQuiet, release_free_memory
from ._messages import (
    ConnectionRemoved,
    ConnectionState,
    Message,
    MiniserverIdentified,
    ReconnectReason,
    SessionLost,
    StatusChanged,
    StructureReady,
    TablesReceived,
    TokenUpdated,
)
from ._miniserver import MiniserverState
from ._supervision import InternalErrorLog

# BuildInfo is re-exported: the supervisor makes one for the owner it starts.
__all__ = ["BuildInfo", "StateOwner", "export_filter", "state_text"]

log = logging.getLogger(STATE_LOGGER)


#: A table this large (a flood, say) leaves megabytes of freed heap behind...
LARGE_TABLE_BYTES = 1024 * 1024
#: ...which are given back this long after the last such table was applied.
TRIM_AFTER_LARGE_TABLES_SECONDS = 0.5


class StateOwner:
    """Applies connection messages, publishes snapshots and the pages' view of each Miniserver.

    ``miniservers`` are the configured names in config order; each is shown from the start
    (``connecting``, ``loxone_up`` 0). ``max_series`` holds the Miniservers' own limits (a
    ``[[miniserver]]`` ``max_series``); the others have ``[export] max_series``. ``apply``
    takes trio's clock (staleness); timestamps in metrics and pages come from ``wall_clock``.
    """

    def __init__(
        self,
        miniservers: Sequence[str],
        export: ExportConfig,
        *,
        build_info: BuildInfo,
        max_series: Mapping[str, int] | None = None,
        wall_clock: Callable[[], float] = time.time,
        release_memory: Callable[[], None] = release_free_memory,
    ) -> None:
        self._export = export
        self._max_series = dict(max_series or {})
        self._filters: dict[str, ExportFilter] = {}
        self._build_info = build_info
        self._wall_clock = wall_clock
        self._miniservers = {
            name: MiniserverState(name, include_text=export.include_text) for name in miniservers
        }
        #: name -> trio time when its value series go, for Miniservers whose session was lost.
        self._stale_at: dict[str, float] = {}
        #: The wait of ``run`` for the next message while a stale deadline is pending, so that
        #: ``set_export`` can move that deadline.
        self._stale_wait: trio.CancelScope | None = None
        #: name -> set when ``ConnectionRemoved`` for it has been applied.
        self._removals: dict[str, trio.Event] = {}
        self._errors: dict[str, InternalErrorLog] = {}
        #: Asks a Miniserver's connection for a new session (set by the connection registry);
        #: ``False`` when there was no session to end.
        self.restart_session: Callable[[str, str], bool] = lambda name, detail: False
        # The config this owner starts with was loaded successfully: no reload has failed.
        self._reload = ReloadStatus(successful=True, last_success_unix=wall_clock())
        self._snapshot: Snapshot | None = None
        self._quiet_trim = TrimWhenQuiet(TRIM_AFTER_LARGE_TABLES_SECONDS, release=release_memory)

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
                if self._stale_at:
                    self.drop_stale(trio.current_time())
                message: Message | None = None
                try:
                    if not self._stale_at:  # the usual case: no cancel scope per message
                        message = await receive_channel.receive()
                    else:
                        with trio.move_on_at(self.next_stale_deadline()) as self._stale_wait:
                            message = await receive_channel.receive()
                        self._stale_wait = None
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
            if state.store is not None:
                state.drop_values()
                self._snapshot = None
                log.info(
                    "miniserver %s: not streaming for %g s; its value series are dropped",
                    name,
                    self._export.stale_after_seconds,
                )

    # --- messages --------------------------------------------------------------------------------

    def apply(self, message: Message, now: float) -> None:
        """Apply one message; ``now`` is trio's clock (``trio.current_time()``)."""
        try:
            self._apply(message, now)
        finally:
            if isinstance(message, TablesReceived):
                message.applied()  # its bytes no longer count against its connection
                if message.size >= LARGE_TABLE_BYTES:
                    # Its pages go back to the system once such tables stop coming (issue 13:
                    # memory after a flood of 15 MiB tables); a trim per table would cost more.
                    self._quiet_trim.request()

    def _apply(self, message: Message, now: float) -> None:
        state = self._miniservers.get(message.miniserver)
        if state is None:
            if isinstance(message, ConnectionRemoved):
                self._connection_removed(message.miniserver)
            else:
                log.debug(
                    "ignored %s for miniserver %r, which is not configured",
                    type(message).__name__,
                    message.miniserver,
                )
            return
        self._snapshot = None  # the dirty flag: the next snapshot() builds anew
        try:
            self._apply_to(state, message, now)
        except Exception as exc:  # the boundary: a defect costs this Miniserver, not the rest
            self._contain(state, exc, message)

    def _contain(self, state: MiniserverState, exc: Exception, message: Message) -> None:
        """An error applying ``message``: start this Miniserver over with no structure and no
        values (counters kept), and ask its connection for a new session to fill them again."""
        errors = self._errors.get(state.name)
        if errors is None:
            errors = self._errors[state.name] = InternalErrorLog(log, state.name)
        where = f"applying {type(message).__name__}"
        detail = errors.report(exc, where, "its state is reset and its session restarted")
        state.reset_after_error()
        self._stale_at.pop(state.name, None)
        if not self.restart_session(state.name, detail):
            # No session to end (the connection is between two): count the error here; else
            # the session's end counts it, once.
            state.reconnects[ReconnectReason.INTERNAL_ERROR.value] += 1

    def _apply_to(self, state: MiniserverState, message: Message, now: float) -> None:
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
            self._errors.pop(state.name, None)
            self._connection_removed(state.name)

    def _tables_received(self, state: MiniserverState, table: TableEvent) -> None:
        state.last_event_unix = self._wall_clock()
        if self._stale_at:
            # Tables are a live session too (they may come before the STREAMING status).
            self._stale_at.pop(state.name, None)
        state.apply_table(table)

    def _status_changed(self, state: MiniserverState, message: StatusChanged) -> None:
        state.connection = message.state
        state.detail = message.detail
        retry = message.retry_in_seconds
        state.retry_at_unix = None if retry is None else self._wall_clock() + retry
        if message.state is ConnectionState.STREAMING:
            self._stale_at.pop(state.name, None)

    def _structure_ready(self, state: MiniserverState, message: StructureReady) -> None:
        state.structure_ready(message.layout, message.last_modified, self.filter_of(state.name))
        release_free_memory()

    def filter_of(self, name: str) -> ExportFilter:
        """The filter of the Miniserver ``name``: ``[export]`` with its own ``max_series``."""
        found = self._filters.get(name)
        if found is None:
            found = self._filters[name] = export_filter(self._export, self._max_series.get(name))
        return found

    def _session_lost(self, state: MiniserverState, message: SessionLost, now: float) -> None:
        state.reconnects[message.reason.value] += 1
        state.auth_failures += message.auth_failure
        state.protocol_errors += message.protocol_error
        state.connection = ConnectionState.WAITING  # StatusChanged tells when the next try is
        state.detail = message.detail
        state.retry_at_unix = None
        # The values go stale from the first loss on; later failed tries do not restart the timer.
        self._stale_at.setdefault(state.name, now + self._export.stale_after_seconds)

    def _connection_removed(self, name: str) -> None:
        removed = self._removals.pop(name, None)
        if removed is not None:
            removed.set()

    # --- reloads ---------------------------------------------------------------------------------

    def add_miniserver(self, name: str, *, max_series: int | None = None) -> None:
        """Show a newly configured Miniserver at once (``connecting``); see ``sort_miniservers``.
        ``max_series`` is its own limit (``None``: ``[export] max_series``).

        A Miniserver whose settings changed is removed first (``removal_applied``) and then
        added again: it starts over with no series and no counters, as a new one would.
        """
        if name in self._miniservers:
            raise ValueError(f"miniserver {name!r} is already there")
        self._filters.pop(name, None)
        if max_series is None:
            self._max_series.pop(name, None)
        else:
            self._max_series[name] = max_series
        self._miniservers[name] = MiniserverState(name, include_text=self._export.include_text)
        self._snapshot = None

    def sort_miniservers(self, order: Sequence[str]) -> None:
        """Show the Miniservers in ``order`` (config order); others follow as they were."""
        position = {name: index for index, name in enumerate(order)}
        names = sorted(self._miniservers, key=lambda name: position.get(name, len(position)))
        self._miniservers = {name: self._miniservers[name] for name in names}
        self._snapshot = None

    def removal_applied(self, name: str) -> trio.Event:
        """Set once a ``ConnectionRemoved`` for ``name`` has been applied.

        The supervisor removes a Miniserver by sending that message through the channel after
        its connection task has stopped: the channel keeps order, so everything the task sent
        is applied before its state is dropped, and nothing it sent can reach a new state under
        the same name. Ask for the event before sending the message.
        """
        return self._removals.setdefault(name, trio.Event())

    def set_export(self, export: ExportConfig, max_series: Mapping[str, int] | None = None) -> None:
        """Apply a reloaded ``[export]`` table (and the Miniservers' own ``max_series``)
        without touching any session.

        New filters rebuild the catalogues they change from the structures at hand and replay
        the last states into them; ``include_text`` takes effect with the next snapshot (the
        stores keep texts by series only while it is on, and rebuild them from the last text
        of every UUID when it is turned on); a new ``stale_after_seconds`` also moves the
        deadlines of values already waiting to go stale.
        """
        old = self._export
        old_filters = {name: self.filter_of(name) for name in self._miniservers}
        self._export = export
        self._max_series = dict(max_series or {})
        self._filters = {}
        self._snapshot = None
        for name, state in self._miniservers.items():
            new_filter = self.filter_of(name)
            if new_filter != old_filters[name]:
                state.change_filter(new_filter)
        if export.include_text != old.include_text:
            for state in self._miniservers.values():
                state.set_include_text(export.include_text)
        shift = export.stale_after_seconds - old.stale_after_seconds
        if shift and self._stale_at:
            self._stale_at = {name: at + shift for name, at in self._stale_at.items()}
            if self._stale_wait is not None:  # ``run`` waits for the old deadline: move it
                self._stale_wait.deadline = self.next_stale_deadline()

    def record_reload(self, *, successful: bool) -> None:
        """What the ``loxone_exporter_config_last_reload_*`` gauges say."""
        last_success = self._wall_clock() if successful else self._reload.last_success_unix
        self._reload = ReloadStatus(successful=successful, last_success_unix=last_success)

    @property
    def reload_status(self) -> ReloadStatus:
        return self._reload

    # --- readers ---------------------------------------------------------------------------------

    @property
    def miniserver_names(self) -> tuple[str, ...]:
        """The Miniservers shown, in the order shown."""
        return tuple(self._miniservers)

    def snapshot(self) -> Snapshot:
        """The current metric families; the same object until something changes."""
        if self._snapshot is None:
            include_text = self._export.include_text
            self._snapshot = build_snapshot(
                [state.facts(include_text=include_text) for state in self._miniservers.values()],
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
