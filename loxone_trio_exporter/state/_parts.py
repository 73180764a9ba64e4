"""Frozen views of a ``SeriesStore``: what a snapshot holds of one Miniserver's series.

Each family's series of one Miniserver are one ``LinesPart`` (exposition): the value bytes, a
copy made once when the part is made, and references to the plan's rendered labels, which
never change. ``freeze`` makes a new part only for what changed since the last view and hands
on the others as the same objects (copy on write), so a quiet Miniserver costs a snapshot
nothing and the renderer skips its parts.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence

import attrs

from ..exposition import LinesPart, escape_label_value
from ..protocol import WeatherEntry
from ._plan import SeriesPlan
from ._store import SeriesStore
from ._tables import TableKind
from ._typed import CONVERSIONS, PLAIN

_CLOSE = b"} "


def _ones(count: int) -> bytes:
    return (array("d", [1.0]) * count).tobytes()


class ValuesPart(LinesPart):
    """One control family (``loxone_control_value``, a typed family): the family's series in
    the order they first got a value. ``convert`` turns stored values into the family's unit
    (``None`` where every series of the family is stored in it already)."""

    __slots__ = ("_plan", "_positions", "_start", "convert", "lineage", "values")

    def __init__(self, store: SeriesStore, family: int) -> None:
        self._plan = plan = store.plan
        self._positions = store.position_series  # an entry, once set, never changes
        self._start = store.family_start[family]
        self.lineage = store.lineage
        self.values = store.family_values(family)
        self.convert: Callable[[int, int, Sequence[float]], list[float]] | None = None
        if plan.family_converts[family]:
            code = plan.family_unit[family]
            if code is None:
                self.convert = self._converted
            else:  # one unit for the whole family: one conversion for every value
                many = CONVERSIONS[code].many
                self.convert = lambda start, stop, values: many(values)

    def _converted(self, start: int, stop: int, values: Sequence[float]) -> list[float]:
        """Each value by the conversion of its own series (a family of several units)."""
        unit_of = self._plan.series_unit
        offset = self._start
        return [
            CONVERSIONS[unit_of[series]](value)
            for series, value in zip(
                self._positions[offset + start : offset + stop], values, strict=True
            )
        ]

    def lines(self, head: bytes, start: int, stop: int, texts: Sequence[bytes]) -> bytes:
        plan = self._plan
        control_text, series_control, state_text = (
            plan.control_text,
            plan.series_control,
            plan.state_text,
        )
        offset = self._start
        pieces: list[bytes] = []
        add = pieces.extend
        positions = self._positions[offset + start : offset + stop]
        for series, text in zip(positions, texts, strict=True):
            add((head, control_text[series_control[series]], state_text[series], _CLOSE, text))
        return b"".join(pieces)


class InfoPart(LinesPart):
    """``loxone_control_info``: one series per exported control, always 1."""

    __slots__ = ("_plan", "lineage", "values")

    def __init__(self, plan: SeriesPlan) -> None:
        self._plan = plan
        self.lineage = None  # the same object for the store's life: recognised by identity
        self.values = _ones(len(plan.info_suffix))

    def lines(self, head: bytes, start: int, stop: int, texts: Sequence[bytes]) -> bytes:
        plan = self._plan
        control_text, info_control, info_suffix = (
            plan.control_text,
            plan.info_control,
            plan.info_suffix,
        )
        pieces: list[bytes] = []
        for index, text in zip(range(start, stop), texts, strict=True):
            pieces += (head, control_text[info_control[index]], info_suffix[index], _CLOSE, text)
        return b"".join(pieces)


class TextsPart(LinesPart):
    """``loxone_control_text``: the value labels plus ``text``, always 1."""

    __slots__ = ("_plan", "_texts", "lineage", "values")

    def __init__(self, store: SeriesStore) -> None:
        self._plan = store.plan
        self._texts = tuple(store.texts.items())
        self.lineage = None  # a text is part of the labels: every change writes anew
        self.values = _ones(len(self._texts))

    def lines(self, head: bytes, start: int, stop: int, texts: Sequence[bytes]) -> bytes:
        plan = self._plan
        pieces: list[bytes] = []
        for (series, text), value in zip(self._texts[start:stop], texts, strict=True):
            label = f',text="{escape_label_value(text)}"'.encode("utf-8", "replace")
            control = plan.control_text[plan.series_control[series]]
            pieces += (head, control, plan.state_text[series], label, _CLOSE, value)
        return b"".join(pieces)


class _DictPart(LinesPart):
    """Series numbered by the plan, in a dict of first writes (globals, daytimers)."""

    __slots__ = ("_labels", "_series", "lineage", "values")

    def __init__(self, store: SeriesStore, values: dict[int, float], labels: Sequence[bytes]):
        self._labels = labels
        self._series = tuple(values)
        self.lineage = store.lineage  # positions are first writes, never reordered
        self.values = array("d", values.values()).tobytes()

    def lines(self, head: bytes, start: int, stop: int, texts: Sequence[bytes]) -> bytes:
        labels = self._labels
        pieces: list[bytes] = []
        for series, text in zip(self._series[start:stop], texts, strict=True):
            pieces += (head, labels[series], _CLOSE, text)
        return b"".join(pieces)


@attrs.frozen
class StoreView:
    """One Miniserver's series as a snapshot holds them; never changed."""

    #: One part per control family (``_typed.FAMILIES``), ``loxone_control_value`` first;
    #: ``None`` for a family none of the plan's series is in.
    values: tuple[ValuesPart | None, ...]
    info: InfoPart
    texts: TextsPart | None  # only with ``include_text``
    globals: LinesPart
    daytimers: LinesPart
    weather: WeatherEntry | None
    events: tuple[tuple[TableKind, int], ...]
    value_series: int
    controls_discovered: int
    controls_exported: int
    #: Control series the plan exports, and those ``max_series`` left out.
    series_exported: int
    series_limited: int


def freeze(store: SeriesStore, previous: StoreView | None, *, include_text: bool) -> StoreView:
    """A view of ``store`` now: parts that did not change since ``previous`` (a view of the
    same store) are handed on as they are; the changed flags are cleared. The text part is
    made only when it is exported (``include_text``)."""
    plan = store.plan
    info = InfoPart(plan) if previous is None else previous.info
    values = (
        tuple(
            ValuesPart(store, family) if count or family == PLAIN else None
            for family, count in enumerate(plan.family_series)
        )
        if previous is None or store.changed_values
        else previous.values
    )
    texts = None
    if include_text:
        if previous is not None and not store.changed_texts:
            texts = previous.texts
        if texts is None:
            texts = TextsPart(store)
    globals_ = (
        _DictPart(store, store.global_values, plan.global_text)
        if previous is None or store.changed_globals
        else previous.globals
    )
    daytimers = (
        _DictPart(store, store.daytimer_entries, plan.daytimer_text)
        if previous is None or store.changed_daytimers
        else previous.daytimers
    )
    store.changed_values = store.changed_texts = False
    store.changed_globals = store.changed_daytimers = False
    return StoreView(
        values=values,
        info=info,
        texts=texts,
        globals=globals_,
        daytimers=daytimers,
        weather=store.weather,
        events=tuple(store.events.items()),
        value_series=store.value_series,
        controls_discovered=plan.layout.controls_discovered,
        controls_exported=plan.controls_exported,
        series_exported=len(plan.series_control),
        series_limited=plan.series_limited,
    )
