"""``SeriesParts``: a family's series in parts, and the renderer skipping a part it has written."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loxone_trio_exporter.exposition import (
    Format,
    LabelSet,
    MetricFamily,
    Renderer,
    SeriesParts,
    Snapshot,
)

NAN = float("nan")


def labels(miniserver: str, index: int) -> LabelSet:
    return (("miniserver", miniserver), ("uuid", f"{index:08x}"), ("state", "value"))


def part(miniserver: str, count: int, value: float = 1.0) -> dict[LabelSet, float]:
    return {labels(miniserver, i): value + i for i in range(count)}


def values_family(*parts: Mapping[LabelSet, float]) -> MetricFamily:
    return MetricFamily("loxone_control_value", "gauge", "help", SeriesParts(parts))


def merged(snapshot: Snapshot) -> Snapshot:
    """The same snapshot with every family's series in one plain dict."""
    return tuple(
        MetricFamily(family.name, family.type, family.help, dict(family.series.items()))
        for family in snapshot
    )


def fresh(snapshot: Snapshot, fmt: Format = Format.TEXT) -> bytes:
    return Renderer().render(snapshot, fmt)


class CountingMapping(Mapping[LabelSet, float]):
    """A part that counts how often the renderer reads its series."""

    def __init__(self, series: dict[LabelSet, float]) -> None:
        self.series = series
        self.reads = 0

    def __getitem__(self, key: LabelSet) -> float:
        return self.series[key]

    def __iter__(self) -> Iterator[LabelSet]:
        self.reads += 1
        return iter(self.series)

    def __len__(self) -> int:
        return len(self.series)


# ------------------------------------------------------------------------------------- mapping


def test_parts_read_as_one_mapping_in_order() -> None:
    home, office = part("home", 3), part("office", 2, 10.0)
    series = SeriesParts([home, office])
    assert list(series) == [*home, *office]
    assert list(series.items()) == [*home.items(), *office.items()]
    assert list(series.values()) == [*home.values(), *office.values()]
    assert len(series) == 5
    assert series[labels("office", 1)] == 11.0
    assert labels("office", 1) in series
    with pytest.raises(KeyError):
        series[labels("garage", 0)]
    assert series == {**home, **office}
    assert {**home, **office} == series
    assert SeriesParts([]) == {}


# ------------------------------------------------------------------------------------ renderer


def test_parts_render_as_their_merged_series() -> None:
    snapshot = (values_family(part("home", 40), {}, part("office", 70, 0.5)),)
    for fmt in Format:
        assert fresh(snapshot, fmt) == fresh(merged(snapshot), fmt)


def test_the_same_part_object_is_not_read_again_and_a_new_one_is() -> None:
    renderer = Renderer()
    quiet = CountingMapping(part("home", 50))
    busy = part("office", 50)
    renderer.render((values_family(quiet, busy),))
    first_reads = quiet.reads
    assert first_reads > 0

    changed = {**busy, labels("office", 3): 99.5}
    snapshot = (values_family(quiet, changed),)
    body = renderer.render(snapshot)
    # Skipped: the lines of the last render are taken as they were.
    assert quiet.reads == first_reads
    assert body == fresh(merged(snapshot))
    assert renderer.statistics().lines_formatted == 1
    assert renderer.statistics().cached_series == 100

    # An equal part in a new object is read and compared (nothing to format, though).
    equal = CountingMapping(dict(quiet.series))
    snapshot = (values_family(equal, changed),)
    assert renderer.render(snapshot) == fresh(merged(snapshot))
    assert equal.reads > 0
    assert renderer.statistics().lines_formatted == 0


def test_a_plain_dict_filled_again_is_read_again() -> None:
    # Only parts promise never to change; a family's own dict is compared on every render.
    renderer = Renderer()
    series = part("home", 40)
    family = MetricFamily("loxone_control_value", "gauge", "help", series)
    renderer.render((family,))
    series[labels("home", 7)] = -3.0
    assert renderer.render((family,)) == fresh((family,))
    assert renderer.statistics().lines_formatted == 1


def test_parts_added_in_front_and_removed() -> None:
    renderer = Renderer()
    home, office, garage = part("home", 30), part("office", 20), part("garage", 10)
    steps = [(home, office), (garage, home, office), (garage, office), (office,), ()]
    for parts in steps:
        snapshot = (values_family(*parts),)
        assert renderer.render(snapshot) == fresh(merged(snapshot))
        assert renderer.statistics().cached_series == sum(map(len, parts))


def test_a_bad_value_in_a_part_forgets_the_family() -> None:
    renderer = Renderer()
    home, office = part("home", 30), part("office", 30)
    renderer.render((values_family(home, office),))
    broken = {**office, labels("office", 2): "x"}  # type: ignore[dict-item]
    with pytest.raises((TypeError, ValueError)):
        renderer.render((values_family(home, broken),))
    assert renderer.statistics().cached_families == 0
    snapshot = (values_family(home, office),)
    assert renderer.render(snapshot) == fresh(merged(snapshot))


@st.composite
def part_sequences(draw: st.DrawFn) -> list[list[Mapping[LabelSet, float]]]:
    """Per snapshot the parts of one family: each part the previous snapshot's object, or a
    copy with some values changed, series added or removed; parts come and go."""
    values = st.sampled_from([0.0, -0.0, 1.0, 22.5, NAN, 1e7]) | st.floats()
    names = ["home", "office", "garage"]
    pool = {name: draw(st.lists(st.integers(0, 80), unique=True, max_size=80)) for name in names}
    current = {name: {labels(name, i): draw(values) for i in pool[name]} for name in names}
    sequence: list[list[Mapping[LabelSet, float]]] = []
    for _ in range(draw(st.integers(min_value=2, max_value=6))):
        for name in names:
            action = draw(st.sampled_from(["keep", "change", "restructure"]))
            if action == "change" and current[name]:
                series = dict(current[name])
                for key in draw(st.lists(st.sampled_from(list(series)), max_size=5)):
                    series[key] = draw(values)
                current[name] = series
            elif action == "restructure":
                keys = draw(st.lists(st.sampled_from(pool[name] or [0]), unique=True))
                current[name] = {labels(name, i): draw(values) for i in keys}
        shown = draw(st.lists(st.sampled_from(names), unique=True))
        sequence.append([current[name] for name in shown])
    return sequence


@given(part_sequences(), st.sampled_from(Format))
def test_a_long_lived_renderer_writes_parts_as_a_new_one_writes_them(
    sequence: list[list[Mapping[LabelSet, float]]], fmt: Format
) -> None:
    renderer = Renderer()
    for parts in sequence:
        snapshot = (values_family(*parts),)
        assert renderer.render(snapshot, fmt) == fresh(merged(snapshot), fmt)
