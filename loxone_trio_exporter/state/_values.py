"""The current values of one Miniserver's series, updated from decoded state tables.

Owned and mutated by the state owner task alone. The value table is the hot path (budget: 500k
events/s decoded and applied): one dict lookup per event, one dict store per owner.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable, Mapping

from ..protocol import DaytimerState, TextState, ValueState, WeatherEntry, WeatherState
from ._series import LabelSet, SeriesCatalogue

MAX_TEXT_LENGTH = 200  # design 3.3: text cut to 200 characters


class MiniserverValues:
    """Values of the series a ``SeriesCatalogue`` describes."""

    def __init__(self, catalogue: SeriesCatalogue) -> None:
        self.catalogue = catalogue
        # Raw UUID -> the label set of a state with one owner, which nearly every state has:
        # the value table then stores without a loop over a one-element tuple per event (apply
        # about 30% faster, for about 60 bytes per value series; benchmarks/decode.py).
        self._single_owner: dict[bytes, LabelSet] = {
            raw: owners[0] for raw, owners in catalogue.control_values.items() if len(owners) == 1
        }
        self.control_values: dict[LabelSet, float] = {}
        #: A copy of ``control_values`` as it was when made, for snapshots; ``None`` once a
        #: value table came since (see ``published_control_values``).
        self._published: dict[LabelSet, float] | None = None
        self.global_values: dict[LabelSet, float] = {}
        self.texts: dict[LabelSet, str] = {}
        self.daytimer_entries: dict[LabelSet, float] = {}
        self.weather: WeatherEntry | None = None
        self.events: Counter[str] = Counter()
        self.unknown_uuids = 0  # events for UUIDs the structure does not name

    def published_control_values(self) -> Mapping[LabelSet, float]:
        """``control_values`` for a snapshot: a copy nobody changes, and the same object until
        the next value table (a quiet Miniserver's part of a snapshot costs nothing to build or
        render again). The copy is fast: ``control_values`` only ever grows, so CPython clones
        its table instead of inserting entry by entry."""
        if self._published is None:
            self._published = self.control_values.copy()
        return self._published

    def apply_values(
        self, states: Iterable[ValueState], known: Container[bytes] | None = None
    ) -> int:
        """Apply a value table; returns how many of its states ``known`` (the structure's state
        UUIDs) does not hold: those are counted, never stored (0 when ``known`` is None). An
        empty ``known`` (a structure naming no state) makes every state a stranger."""
        self._published = None  # once per table, not per event: the hot path stays as it was
        single_owner = self._single_owner.get
        control_owners = self.catalogue.control_values.get
        global_owners = self.catalogue.global_values.get
        control_values = self.control_values
        count = unknown = strangers = 0
        for raw, value in states:
            count += 1
            labels = single_owner(raw)
            if labels is not None:
                control_values[labels] = value
                continue
            owners = control_owners(raw)
            if owners:
                for labels in owners:
                    control_values[labels] = value
                continue
            owners = global_owners(raw)
            if owners:
                for labels in owners:
                    self.global_values[labels] = value
            else:
                unknown += 1  # not exported: excluded by a filter, or not in the structure
                if known is not None and raw not in known:
                    strangers += 1
        self.events["value"] += count
        self.unknown_uuids += unknown
        return strangers

    def apply_texts(self, states: Iterable[TextState], *, events: int | None = None) -> None:
        """``events``: how many the table held, when ``states`` are fewer (sorted out)."""
        owners_of = self.catalogue.control_values.get
        count = 0
        for state in states:
            count += 1
            text = state.text[:MAX_TEXT_LENGTH]
            for labels in owners_of(state.uuid, ()):
                self.texts[labels] = text
        self.events["text"] += count if events is None else events

    def apply_daytimers(self, states: Iterable[DaytimerState]) -> None:
        self.apply_daytimer_entries(
            ((state.uuid, len(state.entries)) for state in states), events=None
        )

    def apply_daytimer_entries(
        self, entry_counts: Iterable[tuple[bytes, int]], *, events: int | None
    ) -> None:
        """Daytimers as ``(raw UUID, number of entries)``: all the export needs of them."""
        count = 0
        for uuid, entries in entry_counts:
            count += 1
            for labels in self.catalogue.daytimers.get(uuid, ()):
                self.daytimer_entries[labels] = float(entries)
        self.events["daytimer"] += count if events is None else events

    def apply_weather(self, states: Iterable[WeatherState]) -> None:
        count = 0
        for state in states:
            count += 1
            if state.uuid == self.catalogue.weather_actual and state.entries:
                self.weather = state.entries[0]
        self.events["weather"] += count
