"""What the state owner keeps of one configured Miniserver: connection state, values, counters.

Changed by the state owner alone (design 2). Besides the values of the exported series it keeps
the last state of every UUID of its structure, exported or not: a Miniserver sends each state
in full only once per session and then changes alone, so when a reload changes the ``[export]``
filters, the newly exported series get their current values from here instead of waiting for
their next change (or a new session).

What is kept is bounded by the structure, whatever the Miniserver sends: states the structure
does not name are counted and dropped, texts are cut to the exported length, daytimers kept as
their number of entries.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping

import attrs

from ..exposition import LabelSet
from ..protocol import DaytimerState, TextState, ValueState
from ..state import MAX_TEXT_LENGTH, MiniserverValues, SeriesCatalogue
from ..structure import StateIndex, Structure
from ._messages import ConnectionState

log = logging.getLogger(__name__)


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
        self.index: StateIndex | None = None  # of ``structure``: to rebuild the catalogue
        self.last_modified: str | None = None
        self.values: MiniserverValues | None = None
        #: The catalogue's info series, all 1: replaced with the catalogue, never changed, so
        #: every snapshot shares it (the renderer then skips it as unchanged).
        self.control_info: Mapping[LabelSet, float] = {}
        # The last state of every UUID since ``values`` began, exported or not (module doc).
        self.raw_values: dict[bytes, float] = {}
        self.raw_texts: dict[bytes, TextState] = {}  # cut to the exported length
        self.raw_daytimers: dict[bytes, int] = {}  # the number of entries
        #: Events for states the structure does not name (never stored); logged once per
        #: structure load (``structure_loaded``).
        self.unknown_states = 0
        self._strangers_logged = False
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
        self.control_info = dict.fromkeys(catalogue.control_info, 1.0)
        self.text_labels.clear()
        self.raw_values.clear()
        self.raw_texts.clear()
        self.raw_daytimers.clear()

    def structure_loaded(self) -> None:
        """A session delivered its structure: a new session may log its strangers again."""
        self._strangers_logged = False

    def reset_after_error(self) -> None:
        """Forget structure and values (an internal error left them in doubt); the counters,
        identity and connection state stay, so metrics remain monotonic."""
        if self.values is not None:
            self.events_before.update(self.values.events)
        self.structure = None
        self.index = None
        self.last_modified = None
        self.values = None
        self.control_info = {}
        self.text_labels.clear()
        self.raw_values.clear()
        self.raw_texts.clear()
        self.raw_daytimers.clear()

    def record_values(self, states: Iterable[ValueState], strangers: int) -> None:
        """Keep the table's states; ``strangers`` of them are not in the structure: those are
        counted and left out, so memory stays bounded by the structure (module doc)."""
        if not strangers:
            self.raw_values.update(states)  # one C loop: the value table is the hot path
            return
        self.count_strangers(strangers)
        known = self.index if self.index is not None else ()
        self.raw_values.update(state for state in states if state[0] in known)

    def take_texts(self, states: Iterable[TextState]) -> dict[bytes, TextState]:
        """The table's texts of states in the structure, cut to what the export shows, kept
        as the last text of each state; others counted and dropped. In table order, the last
        text of a state wins."""
        known = self.index if self.index is not None else ()
        fresh: dict[bytes, TextState] = {}
        strangers = 0
        for state in states:
            if state.uuid not in known:
                strangers += 1
            elif len(state.text) > MAX_TEXT_LENGTH:
                fresh[state.uuid] = attrs.evolve(state, text=state.text[:MAX_TEXT_LENGTH])
            else:
                fresh[state.uuid] = state
        self.count_strangers(strangers)
        self.raw_texts.update(fresh)
        return fresh

    def take_daytimers(self, states: Iterable[DaytimerState]) -> dict[bytes, int]:
        """Entry counts of the table's daytimers in the structure (all the export uses)."""
        known = self.index if self.index is not None else ()
        fresh: dict[bytes, int] = {}
        strangers = 0
        for state in states:
            if state.uuid in known:
                fresh[state.uuid] = len(state.entries)
            else:
                strangers += 1
        self.count_strangers(strangers)
        self.raw_daytimers.update(fresh)
        return fresh

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

    def change_catalogue(self, catalogue: SeriesCatalogue) -> None:
        """New export filters: the current states, as series of ``catalogue``; counts kept."""
        old = self.values
        kept = (self.raw_values, self.raw_texts, self.raw_daytimers)
        self.raw_values, self.raw_texts, self.raw_daytimers = {}, {}, {}
        self.replace_values(catalogue)
        self.raw_values, self.raw_texts, self.raw_daytimers = kept
        values = self.values
        assert values is not None  # just made
        values.apply_values(self.raw_values.items())
        values.apply_texts(self.raw_texts.values())
        values.apply_daytimer_entries(self.raw_daytimers.items(), events=None)
        # A replay, not news from the Miniserver: the counters must not count it.
        values.events.clear()
        if old is not None:
            values.weather = old.weather
            values.unknown_uuids = old.unknown_uuids

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
