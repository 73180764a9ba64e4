"""``SeriesParts`` of ``LinesPart``: a family's series in parts, and what the renderer reuses."""

from __future__ import annotations

import gzip
import itertools
from array import array
from collections.abc import Generator, Sequence
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loxone_trio_exporter.exposition import (
    Format,
    LabelSet,
    LinesPart,
    MetricFamily,
    Renderer,
    SeriesParts,
    Snapshot,
    escape_label_value,
    gzip_segments,
)
from loxone_trio_exporter.exposition._packed import PACKER
from loxone_trio_exporter.exposition._part_lines import PART_BLOCK

NAN = float("nan")
T = TypeVar("T")


def labels(miniserver: str, index: int) -> LabelSet:
    return (("miniserver", miniserver), ("uuid", f"{index:08x}"), ("state", "value"))


class DictPart(LinesPart):
    """A part over a dict of label sets, counting the series it had to write."""

    __slots__ = ("_labels", "lineage", "values", "written")

    def __init__(self, series: dict[LabelSet, float], lineage: object | None = None) -> None:
        self._labels = list(series)
        self.values = array("d", series.values()).tobytes()
        self.lineage = lineage
        self.written = 0

    def series(self) -> dict[LabelSet, float]:
        return dict(zip(self._labels, memoryview(self.values).cast("d"), strict=True))

    def lines(self, head: bytes, start: int, stop: int, texts: Sequence[bytes]) -> bytes:
        self.written += stop - start
        pieces: list[bytes] = []
        for labelset, text in zip(self._labels[start:stop], texts, strict=True):
            pairs = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labelset)
            pieces += (head, pairs.encode(), b"} ", text)
        return b"".join(pieces)


def part(miniserver: str, count: int, value: float = 1.0, lineage: object = None) -> DictPart:
    return DictPart({labels(miniserver, i): value + i for i in range(count)}, lineage)


def values_family(*parts: LinesPart) -> MetricFamily:
    return MetricFamily("loxone_control_value", "gauge", "help", SeriesParts(parts))


def merged(snapshot: Snapshot) -> Snapshot:
    """The same snapshot with every family's series in one plain dict."""
    families = []
    for family in snapshot:
        series = family.series
        if isinstance(series, SeriesParts):
            series = {k: v for p in series.parts for k, v in p.series().items()}  # type: ignore[attr-defined]
        families.append(MetricFamily(family.name, family.type, family.help, series))
    return tuple(families)


def fresh(snapshot: Snapshot, fmt: Format = Format.TEXT) -> bytes:
    return Renderer().render(snapshot, fmt)


def test_parts_render_as_their_merged_series() -> None:
    snapshot = (values_family(part("home", 40), DictPart({}), part("office", 70, 0.5)),)
    assert len(snapshot[0].series) == 110
    for fmt in Format:
        assert fresh(snapshot, fmt) == fresh(merged(snapshot), fmt)


def test_the_same_part_object_is_not_written_again() -> None:
    renderer = Renderer()
    quiet, busy = part("home", 50), part("office", 50)
    renderer.render((values_family(quiet, busy),))
    assert quiet.written == 50
    changed = DictPart({**busy.series(), labels("office", 3): 99.5})
    snapshot = (values_family(quiet, changed),)
    assert renderer.render(snapshot) == fresh(merged(snapshot))
    assert quiet.written == 50  # skipped: its lines are taken as they were
    assert changed.written == 50  # no lineage: written anew
    assert renderer.statistics().cached_series == 100


def test_a_part_of_the_same_lineage_writes_only_blocks_whose_values_changed() -> None:
    renderer = Renderer()
    lineage = object()
    first = part("home", 100, lineage=lineage)
    renderer.render((values_family(first),))
    series = first.series()
    series[labels("home", 3)] = 99.5
    series[labels("home", 70)] = NAN
    second = DictPart(series, lineage)
    snapshot = (values_family(second),)
    assert renderer.render(snapshot) == fresh(merged(snapshot))
    assert second.written == 2 * PART_BLOCK  # the two blocks with a change
    assert renderer.statistics().lines_formatted == 2 * PART_BLOCK
    # Series appended: the complete blocks are kept, the partial last one and the new written.
    longer = DictPart({**series, labels("home", 100): 5.0, labels("home", 101): 6.0}, lineage)
    snapshot = (values_family(longer),)
    assert renderer.render(snapshot) == fresh(merged(snapshot))
    assert longer.written == 102 - 100 // PART_BLOCK * PART_BLOCK


def test_parts_added_in_front_and_removed() -> None:
    renderer = Renderer()
    home, office, garage = part("home", 30), part("office", 20), part("garage", 10)
    steps = [(home, office), (garage, home, office), (garage, office), (office,), ()]
    for parts in steps:
        snapshot = (values_family(*parts),)
        assert renderer.render(snapshot) == fresh(merged(snapshot))
        assert renderer.statistics().cached_series == sum(map(len, parts))


class BrokenPart(DictPart):
    __slots__ = ()

    def lines(self, head: bytes, start: int, stop: int, texts: Sequence[bytes]) -> bytes:
        raise ValueError("broken")


def test_a_failing_part_forgets_the_family() -> None:
    renderer = Renderer()
    home, office = part("home", 30), part("office", 30)
    renderer.render((values_family(home, office),))
    with pytest.raises(ValueError, match="broken"):
        renderer.render((values_family(home, BrokenPart(office.series())),))
    assert renderer.statistics().cached_families == 0
    snapshot = (values_family(home, office),)
    assert renderer.render(snapshot) == fresh(merged(snapshot))


def test_render_steps_yield_between_parts() -> None:
    renderer = Renderer()
    snapshot = (values_family(part("home", 3), part("office", 3), part("garage", 3)),)
    steps = renderer.render_steps(snapshot)
    yielded = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            body = done.value
            break
        yielded += 1
    assert yielded == 3
    assert body == fresh(snapshot)


@st.composite
def part_sequences(draw: st.DrawFn) -> list[list[DictPart]]:
    """Per snapshot the parts of one family: each part the previous snapshot's object, or one
    of the same lineage with values changed or series appended, or a new lineage."""
    values = st.sampled_from([0.0, -0.0, 1.0, 22.5, NAN, 1e7]) | st.floats()
    names = ["home", "office", "garage"]
    current: dict[str, DictPart] = {}
    for name in names:
        count = draw(st.integers(0, 60))
        current[name] = DictPart({labels(name, i): draw(values) for i in range(count)}, object())
    sequence: list[list[DictPart]] = []
    for _ in range(draw(st.integers(min_value=2, max_value=6))):
        for name in names:
            action = draw(st.sampled_from(["keep", "change", "append", "restructure"]))
            old = current[name]
            series = old.series()
            if action == "change" and series:
                for key in draw(st.lists(st.sampled_from(list(series)), max_size=5)):
                    series[key] = draw(values)
                current[name] = DictPart(series, old.lineage)
            elif action == "append":
                for i in range(len(series), len(series) + draw(st.integers(0, 40))):
                    series[labels(name, i)] = draw(values)
                current[name] = DictPart(series, old.lineage)
            elif action == "restructure":
                keys = draw(st.lists(st.integers(0, 80), unique=True))
                current[name] = DictPart({labels(name, i): draw(values) for i in keys}, object())
        shown = draw(st.lists(st.sampled_from(names), unique=True))
        sequence.append([current[name] for name in shown])
    return sequence


@given(part_sequences(), st.sampled_from(Format))
def test_a_long_lived_renderer_writes_parts_as_a_new_one_writes_them(
    sequence: list[list[DictPart]], fmt: Format
) -> None:
    renderer = Renderer()
    for parts in sequence:
        snapshot = (values_family(*parts),)
        assert renderer.render(snapshot, fmt) == fresh(merged(snapshot), fmt)


def finish(steps: Generator[None, None, T]) -> T:
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def gzip_answer(renderer: Renderer, snapshot: Snapshot, fmt: Format = Format.TEXT) -> bytes:
    """What ``/metrics`` answers a scraper that asks for gzip, decompressed."""
    pieces = finish(renderer.render_steps(snapshot, fmt, joined=False, packed=True))
    assert isinstance(pieces, list)
    return gzip.decompress(finish(gzip_segments(pieces)))


needs_packing = pytest.mark.skipif(PACKER is None, reason="python-isal is not installed")


@needs_packing
@given(part_sequences(), st.sampled_from(Format), st.lists(st.booleans(), min_size=1))
def test_blocks_kept_packed_by_gzip_answers_show_what_a_new_renderer_writes(
    sequence: list[list[DictPart]], fmt: Format, gzipped: list[bool]
) -> None:
    """Gzip and plain answers in any order: packed blocks are inflated for a plain answer,
    text blocks packed for a gzip one, and both show what a new renderer writes."""
    renderer = Renderer()
    for parts, packed in zip(sequence, itertools.cycle(gzipped)):
        snapshot = (values_family(*parts),)
        if packed:
            assert gzip_answer(renderer, snapshot, fmt) == fresh(merged(snapshot), fmt)
        else:
            assert renderer.render(snapshot, fmt) == fresh(merged(snapshot), fmt)


@needs_packing
def test_a_gzip_answer_keeps_the_blocks_packed_and_smaller() -> None:
    renderer = Renderer()
    snapshot = (values_family(part("home", 20 * PART_BLOCK), part("office", 300)),)
    text = renderer.render(snapshot)
    kept_as_text = renderer.statistics().kept_bytes
    assert kept_as_text >= len(text) - 200  # the lines, less the family's header

    assert gzip_answer(renderer, snapshot) == text
    assert renderer.statistics().kept_bytes * 3 < kept_as_text
    assert renderer.render(snapshot) == text  # a plain answer after: inflated, kept packed
    assert renderer.statistics().kept_bytes * 3 < kept_as_text

    changed = (values_family(part("home", 20 * PART_BLOCK, value=2.0), part("office", 300)),)
    assert renderer.render(changed) == fresh(merged(changed))
    assert renderer.statistics().kept_bytes > kept_as_text // 2  # written anew: text again


def test_without_python_isal_the_blocks_stay_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where python-isal is missing (no ``crc32_combine``), gzip answers compress the text as
    it comes and the renderer keeps it as text."""
    from loxone_trio_exporter.exposition import _negotiate, _part_lines, _renderer  # noqa: PLC0415

    for module in (_negotiate, _part_lines, _renderer):
        monkeypatch.setattr(module, "PACKER", None)
    monkeypatch.setattr(_negotiate, "DEFLATE", _negotiate.ZLIB_DEFLATE)
    renderer = Renderer()
    snapshot = (values_family(part("home", 20 * PART_BLOCK), part("office", 300)),)
    text = fresh(merged(snapshot))
    assert gzip_answer(renderer, snapshot) == text
    kept = renderer.statistics().kept_bytes
    assert kept >= len(text) - 200  # the lines, less the family's header: text
    changed = (values_family(part("home", 20 * PART_BLOCK, value=2.0), part("office", 300)),)
    assert gzip_answer(renderer, changed) == fresh(merged(changed))
    assert renderer.render(changed) == fresh(merged(changed))
