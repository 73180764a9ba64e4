"""What the state owner keeps of one configured Miniserver: connection state, series, counters.

Changed by the state owner alone (design 2). The series and their values are a ``SeriesStore``
built from the structure's layout; the store also keeps the last state of every UUID of the
structure, exported or not, so a reload that changes the ``[export]`` filters gives the newly
exported series their current values at once.

What is kept is bounded by the structure, whatever the Miniserver sends: states the structure
does not name are counted and dropped, texts are cut to the exported length, daytimers kept as
their number of entries.
"""

from __future__ import annotations

import logging
from collections import Counter

from ..logs import STATE_LOGGER
from ..protocol import (
    DaytimerStatesReceived,
    TextStatesReceived,
    ValueStatesReceived,
)
from ..state import (
    TABLE_KINDS,
    ExportFilter,
    SeriesPlan,
    SeriesStore,
    StoreView,
    TableEvent,
    TableKind,
    freeze,
)
from ..structure import StructureLayout
from ._facts import MiniserverFacts, MiniserverLabels
from ._messages import ConnectionState

log = logging.getLogger(STATE_LOGGER)


class MiniserverState:
    """Everything the owner knows of one configured Miniserver; changed by the owner alone."""

    def __init__(self, name: str, *, include_text: bool = True) -> None:
        self.name = name
        #: Whether ``loxone_control_text`` is exported: the store keeps texts by series only
        #: then (``SeriesStore.export_texts``).
        self.include_text = include_text
        self.labels = MiniserverLabels.of(name)
        self.connection = ConnectionState.CONNECTING
        self.detail = ""
        self.retry_at_unix: float | None = None
        self.serial = ""  # from jdev/cfg/apiKey
        self.firmware = ""
        #: The layout of the structure the Miniserver names now. The store's series may come
        #: from an earlier one with the same ``lastModified`` (kept, as a reconnect keeps them).
        self.layout: StructureLayout | None = None
        self.last_modified: str | None = None
        self.store: SeriesStore | None = None
        self._view: StoreView | None = None  # the last view of ``store``
        #: Events for states the structure does not name (never stored); logged once per
        #: structure load (``structure_ready``).
        self.unknown_states = 0
        self._strangers_logged = False
        # Events counted before the current store (older structures, dropped values, tables
        # that came without a structure): counters stay monotonic across all of those.
        self.events_before: Counter[TableKind] = Counter()
        self.reconnects: Counter[str] = Counter()  # by ``ReconnectReason.value``
        self.auth_failures = 0
        self.protocol_errors = 0
        self.last_event_unix: float | None = None
        self.token_expiry_unix: float | None = None

    @property
    def streaming(self) -> bool:
        return self.connection is ConnectionState.STREAMING

    def value_series(self) -> int:
        """How many ``loxone_control_value`` and ``loxone_global_value`` series there are."""
        return 0 if self.store is None else self.store.value_series

    # --- structure and series --------------------------------------------------------------------

    def structure_ready(
        self, layout: StructureLayout, last_modified: str, export_filter: ExportFilter
    ) -> None:
        """A session delivered its structure. The same ``lastModified`` keeps the series (and
        values) there are, as a reconnect that reused the structure; else new series, at once
        (series of vanished controls go now, not when the new tables arrive)."""
        self._strangers_logged = False  # a new session may log its strangers again
        store = self.store
        if store is not None and last_modified == self.last_modified:
            if layout == store.plan.layout:
                layout = store.plan.layout  # the very object: no exact tracking needed
                if store.tracks_exactly:
                    store.track_exactly(layout.known_uuids())
            else:  # the same lastModified, other states: series stay, strangers are new ones
                store.track_exactly(layout.known_uuids())
            self.layout = layout
            return
        self.layout = layout
        self.last_modified = last_modified
        self._replace(self._new_store(self._plan(layout, export_filter)))

    def _plan(self, layout: StructureLayout, export_filter: ExportFilter) -> SeriesPlan:
        """The series of ``layout``; a plan that hits ``max_series`` is logged (once per
        structure load or filter change, not when stale values are dropped)."""
        plan = SeriesPlan(layout, export_filter, self.name)
        if plan.series_limited:
            log.warning(
                "miniserver %s: max_series %d reached: %d control series are not exported "
                '(loxone_exporter_series{status="limited"}); raise max_series ([export] or '
                "this [[miniserver]]) or leave states out with [export] exclude_states "
                "('loxone-trio-exporter check --structure' counts them offline)",
                self.name,
                export_filter.max_series,
                plan.series_limited,
                extra={"miniserver": self.name, "event": "series_limited"},
            )
        return plan

    def _new_store(self, plan: SeriesPlan) -> SeriesStore:
        return SeriesStore(plan, texts_exported=self.include_text)

    def set_include_text(self, include_text: bool) -> None:
        """``[export] include_text`` changed: texts by series are kept (at once, from the last
        text of every UUID) or dropped."""
        self.include_text = include_text
        if self.store is not None:
            self.store.export_texts(include_text)

    def drop_values(self) -> None:
        """Start over with no values for the same series (stale); the event counts stay."""
        store = self.store
        if store is None:
            return
        plan = store.plan
        self._replace(self._new_store(SeriesPlan(plan.layout, plan.export_filter, self.name)))
        if self.layout is not None and self.layout is not plan.layout:
            self.store.track_exactly(self.layout.known_uuids())  # type: ignore[union-attr]

    def change_filter(self, export_filter: ExportFilter) -> None:
        """New export filters: the current states, as series of the structure's layout."""
        store = self.store
        if store is None or self.layout is None:
            return
        self.events_before.update(store.events)
        self.store = store.replay(self._plan(self.layout, export_filter))
        self._view = None

    def reset_after_error(self) -> None:
        """Forget structure and values (an internal error left them in doubt); the counters,
        identity and connection state stay, so metrics remain monotonic."""
        if self.store is not None:
            self.events_before.update(self.store.events)
        self.layout = None
        self.last_modified = None
        self.store = None
        self._view = None

    def _replace(self, store: SeriesStore) -> None:
        if self.store is not None:
            self.events_before.update(self.store.events)
        self.store = store
        self._view = None

    # --- tables ----------------------------------------------------------------------------------

    def apply_table(self, table: TableEvent) -> None:
        store = self.store
        if store is None:
            # The connection task sends StructureReady before a session's tables, so this is
            # a Miniserver without a usable structure: count the events, nothing else.
            self.events_before[TABLE_KINDS[type(table)]] += len(table.states)
        elif isinstance(table, ValueStatesReceived):
            self.count_strangers(store.apply_values(table.states))
        elif isinstance(table, TextStatesReceived):
            self.count_strangers(store.apply_texts(table.states))
        elif isinstance(table, DaytimerStatesReceived):
            self.count_strangers(store.apply_daytimers(table.states))
        else:
            self.count_strangers(store.apply_weather(table.states))

    def count_strangers(self, count: int) -> None:
        """States the structure does not name: counted, logged once per structure load."""
        if not count:
            return
        self.unknown_states += count
        if not self._strangers_logged:
            self._strangers_logged = True
            log.warning(
                "miniserver %s: sent states that are not in its structure file (%d in one "
                "table); they are counted in loxone_exporter_unknown_states_total and ignored",
                self.name,
                count,
            )

    # --- publishing ------------------------------------------------------------------------------

    def facts(self, *, include_text: bool) -> MiniserverFacts:
        """This Miniserver as the next snapshot shows it (parts of the store that did not
        change since the last snapshot are handed on as the same objects)."""
        view = None
        events = Counter(self.events_before)
        if self.store is not None:
            view = self._view = freeze(self.store, self._view, include_text=include_text)
            events.update(self.store.events)
        return MiniserverFacts(
            labels=self.labels,
            streaming=self.streaming,
            serial=self.serial,
            firmware=self.firmware,
            ms_info=None if self.layout is None else self.layout.ms_info,
            last_modified=self.last_modified,
            store=view,
            events=dict(events),
            reconnects=dict(self.reconnects),
            auth_failures=self.auth_failures,
            protocol_errors=self.protocol_errors,
            unknown_states=self.unknown_states,
            last_event_unix=self.last_event_unix,
            token_expiry_unix=self.token_expiry_unix,
        )
