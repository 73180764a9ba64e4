"""One Miniserver's current values, keyed by series number: ``SeriesStore``.

Owned and changed by the state owner task alone. A store lives for one "values epoch": from a
structure (or a stale drop, or an ``[export]`` reload) until the next; it takes over the
``SeriesPlan`` of that epoch.

The value table is the hot path (budget: 1M events/s decoded and applied). Each raw UUID maps to
an int code in one dict (``_index``):

- ``p >= 0``: the UUID alone feeds one control series, which sits at position ``p`` of
  ``_values``; an event is one array store, and the array is also that UUID's last value;
- ``~s`` (``s`` below the number of control series): the same kind of UUID before its first
  value. The first value gives the series the next position of its family's region (series
  are written in the order they first got a value, as today's exposition does) and the code
  becomes that position;
- ``~(controls + c)``: any other UUID of the structure (entry ``c`` of the plan's ``complex_*``
  columns): one owned by several controls, one of two UUIDs that feed the very same label set,
  a global or weather state, a state nobody exports. Its last value is kept beside it.

A UUID the structure does not name is not in the dict: counted, never stored (issue 8).

``_values`` is allocated whole when the store is made, one region per control family
(``_typed.FAMILIES``: ``loxone_control_value``, ``loxone_control_temperature_celsius``, ...)
as long as the plan's series of that family; each region fills from its start. A family's
values are then one slice, in the order its series first got a value.

What was last received of every UUID the structure names, exported or not, is kept so that an
``[export]`` reload gives the newly exported series their current values at once (``replay``):
values in ``_values`` and the ``complex`` column, in the order each UUID first came
(``_first``); texts (cut to the exported length) and daytimer entry counts in small dicts.
Texts by series (``texts``, what ``loxone_control_text`` shows) are kept only while they are
exported (``include_text``): turning that on rebuilds them from the texts by UUID, as a
replay does.
"""

from __future__ import annotations

from array import array
from collections.abc import Container, Iterable, Iterator

from ..protocol import DaytimerState, TextState, ValueState, WeatherEntry, WeatherState
from ._plan import SeriesPlan, shared_int
from ._tables import TableKind
from ._typed import FAMILY_OF_UNIT

MAX_TEXT_LENGTH = 200  # design 3.3: text cut to 200 characters

_STRANGER = -(1 << 62)  # the code of a UUID not in the index (below every real code)


class SeriesStore:
    """The values of the series a ``SeriesPlan`` describes (module doc)."""

    def __init__(self, plan: SeriesPlan, *, texts_exported: bool = True) -> None:
        self.plan = plan
        #: A new object per store: parts of one store's snapshots share it (renderer caches).
        self.lineage = object()
        self._index = plan.index
        plan.index = {}  # the store changes the codes: the plan does not keep them
        self._controls = controls = len(plan.series_control)
        self._values = array("d", bytes(8 * controls))
        self._position_series = array("i", [-1]) * controls
        self._series_position = array("i", [-1]) * controls
        #: Per family: where its region starts, and the next free position in it.
        self.family_start: list[int] = []
        start = 0
        for count in plan.family_series:
            self.family_start.append(start)
            start += count
        self._next_position = list(self.family_start)
        self._first = array("i")  # first value of each UUID: its position, or ~complex entry
        count = len(plan.complex_uuid)
        self._complex_value = array("d", bytes(8 * count))
        self._complex_seen = bytearray(count)
        #: global series -> value, in the order they first got one.
        self.global_values: dict[int, float] = {}
        #: control series -> text, in the order they first got one; empty while texts are
        #: not exported (``export_texts``).
        self.texts: dict[int, str] = {}
        self._texts_exported = texts_exported
        #: daytimer series -> number of entries.
        self.daytimer_entries: dict[int, float] = {}
        self.raw_texts: dict[bytes, str] = {}
        self.raw_daytimers: dict[bytes, int] = {}
        self.weather: WeatherEntry | None = None
        self.events = dict.fromkeys(TableKind, 0)
        #: What the structure names (``known``): the index, unless ``track_exactly`` was called.
        self._known: Container[bytes] = self._index
        self._exact: dict[bytes, float] | None = None
        #: What changed since the last ``take_changes``.
        self.changed_values = self.changed_globals = self.changed_texts = True
        self.changed_daytimers = True

    # --- reading ---------------------------------------------------------------------------------

    @property
    def value_series(self) -> int:
        """``loxone_control_value`` and ``loxone_global_value`` series with a value."""
        placed = sum(self._next_position) - sum(self.family_start)
        return placed + len(self.global_values)

    def family_values(self, family: int) -> bytes:
        """The values of ``family``'s control series in position order, as native doubles
        (a copy)."""
        start = self.family_start[family] * 8
        with memoryview(self._values) as whole:
            return whole.cast("B")[start : self._next_position[family] * 8].tobytes()

    @property
    def position_series(self) -> array[int]:
        """Position -> control series; an entry, once set, never changes."""
        return self._position_series

    def records(self) -> Iterator[tuple[bytes, float]]:
        """The last value of each UUID, in the order the UUIDs first came."""
        if self._exact is not None:
            yield from self._exact.items()
            return
        raw_at = {code: raw for raw, code in self._index.items() if code >= 0}
        values, complex_value = self._values, self._complex_value
        complex_uuid = self.plan.complex_uuid
        for code in self._first:
            if code >= 0:
                yield raw_at[code], values[code]
            else:
                yield complex_uuid[~code], complex_value[~code]

    def control_series_of(self, raw: bytes) -> tuple[int, ...]:
        code = self._index.get(raw, _STRANGER)
        if code >= 0:
            return (self._position_series[code],)
        if code == _STRANGER:
            return ()
        if ~code < self._controls:
            return (~code,)
        return self.plan.complex_control[~code - self._controls]

    # --- value tables ----------------------------------------------------------------------------

    def apply_values(self, states: Iterable[ValueState]) -> int:
        """Apply a value table; return how many of its states the structure does not name."""
        self.changed_values = True
        if self._exact is not None:
            return self._apply_values_exactly(states)
        code_of = self._index.get
        values = self._values
        strangers = 0
        count = 0
        for raw, value in states:
            count += 1
            code = code_of(raw, _STRANGER)
            if code >= 0:
                values[code] = value
            elif code == _STRANGER:
                strangers += 1
            else:
                self._feed_slowly(raw, code, value)
        self.events[TableKind.VALUE] += count
        return strangers

    def _feed(self, raw: bytes, value: float) -> bool:
        """Write ``value`` to the series of ``raw``; whether any series took it."""
        code = self._index.get(raw, _STRANGER)
        if code >= 0:
            self._values[code] = value
            return True
        if code == _STRANGER:
            return False
        return self._feed_slowly(raw, code, value)

    def _feed_slowly(self, raw: bytes, code: int, value: float) -> bool:
        entry = ~code
        if entry < self._controls:  # the first value of a UUID that alone feeds one series
            position = self._place(entry, value)
            self._index[raw] = shared_int(position)
            self._first.append(position)
            return True
        entry -= self._controls
        if not self._complex_seen[entry]:
            self._complex_seen[entry] = 1
            self._first.append(~entry)
        self._complex_value[entry] = value
        fed = self.plan.complex_control[entry]
        if fed:
            for series in fed:
                position = self._series_position[series]
                if position < 0:
                    self._place(series, value)
                else:
                    self._values[position] = value
            return True
        global_series = self.plan.complex_global[entry]
        for series in global_series:
            self.global_values[series] = value
        self.changed_globals = self.changed_globals or bool(global_series)
        return bool(global_series)

    def _place(self, series: int, value: float) -> int:
        family = FAMILY_OF_UNIT[self.plan.series_unit[series]]
        position = self._next_position[family]
        self._next_position[family] = position + 1
        self._values[position] = value
        self._position_series[position] = series
        self._series_position[series] = position
        return position

    # --- exact tracking after a structure that kept its lastModified but not its states -----------

    @property
    def tracks_exactly(self) -> bool:
        return self._exact is not None

    def track_exactly(self, known: frozenset[bytes]) -> None:
        """Count strangers against ``known`` from now on, and keep the last values as today's
        exporter did (by UUID, in a dict) for a store whose series came from an older structure
        than the one the Miniserver names now (the same ``lastModified``, other states)."""
        if self._exact is None:
            self._exact = dict(self.records())
        self._known = known

    def _apply_values_exactly(self, states: Iterable[ValueState]) -> int:
        assert self._exact is not None
        known = self._known
        strangers = 0
        count = 0
        for raw, value in states:
            count += 1
            if not self._feed(raw, value) and raw not in known:
                strangers += 1
        # Today's rule: keep every state of a table without strangers, else the known ones.
        if strangers:
            self._exact.update(state for state in states if state[0] in known)
        else:
            self._exact.update(states)
        self.events[TableKind.VALUE] += count
        return strangers

    # --- the other tables ------------------------------------------------------------------------

    def apply_texts(self, states: Iterable[TextState]) -> int:
        """Texts of named states, cut to the exported length; return the strangers."""
        known = self._known
        fresh: dict[bytes, str] = {}
        count = strangers = 0
        for state in states:
            count += 1
            if state.uuid in known:
                fresh[state.uuid] = state.text[:MAX_TEXT_LENGTH]  # the last one wins
            else:
                strangers += 1
        self.raw_texts.update(fresh)
        if self._texts_exported:
            self._set_texts(fresh.items())
        self.events[TableKind.TEXT] += count
        return strangers

    def export_texts(self, exported: bool) -> None:
        """Keep texts by series (``exported``) or not; turned on, they are rebuilt at once
        from the last text of every UUID, in the order the UUIDs first came (as ``replay``)."""
        if exported == self._texts_exported:
            return
        self._texts_exported = exported
        self.texts = {}
        self.changed_texts = True
        if exported:
            self._set_texts(self.raw_texts.items())

    def _set_texts(self, texts: Iterable[tuple[bytes, str]]) -> None:
        for raw, text in texts:
            for series in self.control_series_of(raw):
                # A key of its own per series would be an int object each (32 B above 256).
                self.texts[shared_int(series)] = text
                self.changed_texts = True

    def apply_daytimers(self, states: Iterable[DaytimerState]) -> int:
        """Daytimers as their number of entries (all the export uses); return the strangers."""
        known = self._known
        fresh: dict[bytes, int] = {}
        count = strangers = 0
        for state in states:
            count += 1
            if state.uuid in known:
                fresh[state.uuid] = len(state.entries)
            else:
                strangers += 1
        self.raw_daytimers.update(fresh)
        self._set_daytimers(fresh.items())
        self.events[TableKind.DAYTIMER] += count
        return strangers

    def _set_daytimers(self, counts: Iterable[tuple[bytes, int]]) -> None:
        feeds = self.plan.daytimer_feeds
        for raw, entries in counts:
            for series in feeds.get(raw, ()):
                self.daytimer_entries[series] = float(entries)
                self.changed_daytimers = True

    def apply_weather(self, states: Iterable[WeatherState]) -> int:
        actual = self.plan.layout.weather_actual
        known = self._known
        count = strangers = 0
        for state in states:
            count += 1
            if state.uuid == actual and state.entries:
                self.weather = state.entries[0]
            if state.uuid not in known:
                strangers += 1
        self.events[TableKind.WEATHER] += count
        return strangers

    # --- a new store from this one ---------------------------------------------------------------

    def replay(self, plan: SeriesPlan) -> SeriesStore:
        """A store of ``plan`` (new filters) holding the last states received here, applied in
        the order they came; the weather is kept, the event counts start at 0 (a replay is not
        news from the Miniserver)."""
        store = SeriesStore(plan, texts_exported=self._texts_exported)
        if self._exact is not None:
            store._exact = self._exact
            store._known = self._known
        for raw, value in self.records():
            store._feed(raw, value)
        store.raw_texts = self.raw_texts
        if store._texts_exported:
            store._set_texts(self.raw_texts.items())
        store.raw_daytimers = self.raw_daytimers
        store._set_daytimers(self.raw_daytimers.items())
        store.weather = self.weather
        return store
