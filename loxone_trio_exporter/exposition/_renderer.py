"""``Renderer``: snapshots -> exposition bytes, re-formatting only the series whose value changed.

Two kinds of series. The large families are ``SeriesParts`` of ``LinesPart`` (one per Miniserver:
column stores that render their own lines, see ``_part_lines``): the renderer keeps their joined
lines in blocks and the value bytes, takes an unchanged part (the very same object) as it is,
and writes again only the blocks whose values changed. Every other family is a plain mapping of
label sets to values (the exporter's own counters, process metrics): per family the renderer
keeps the previous render's label sets and values (lists in the mapping's order) and its sample
lines, in blocks of ``_BLOCK`` series, each block as its pieces (prefix, value text, prefix,
value text...) and joined. The next render compares the new lists with the old ones by list
comparison, which runs in C and checks identity before equality; only blocks whose values
differ are patched and joined again. A mapping whose label sets changed (series added, vanished
or reordered) takes the slower path: old lines are found by label set, new ones written, and the
lines of series that vanished are dropped, so memory follows the current snapshot.

Why not one dict entry per series: hashing a seven-label tuple costs about as much as the whole
per-series budget (design 4: 10k series, 1% changed, 3 ms), and joining 50k small lines is about
four times slower than joining 1.6k blocks.

``render_steps`` renders in steps, yielding after each part, so that a caller on an event loop
can let other tasks run during a large scrape (design 4: no loop step over 50 ms). Parts are
matched to the previous render's by position within their family.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from itertools import compress, count
from operator import ne
from typing import Literal, overload

import attrs

from ._model import LabelSet, MetricFamily, SeriesParts
from ._packed import PACKER
from ._part_lines import PartLines, render_part
from ._text import EOF_LINE, Format, family_header, format_value, series_prefix

# Series per block (a power of two): small enough that a changed block costs little to join
# again, large enough that unchanged blocks cost few Python-level steps and the final join
# copies few large pieces (tests/bench_exposition.py).
_BLOCK_BITS = 5
_BLOCK = 1 << _BLOCK_BITS  # 32
_BLOCK_MASK = _BLOCK - 1
# Formatted values kept for reuse (0, 1, common temperatures...); cleared when it is full.
_VALUE_TEXT_LIMIT = 8192

# (format, family name, type, help, unit) -> the family's HELP, TYPE (and UNIT) lines.
_HeaderKey = tuple[Format, str, str, str, str]


@attrs.frozen
class RendererStatistics:
    """What a renderer holds, and how much work its last render did."""

    cached_families: int
    cached_series: int
    #: bytes of the sample lines kept (blocks kept packed count as packed).
    kept_bytes: int
    #: sample lines the last render wrote anew: new series and changed values (a family where
    #: more than a quarter of the values changed is written anew as a whole).
    lines_formatted: int


class _Lines:
    """The previous render of one series mapping (a family's, or one part of it), in order.

    ``source`` is that mapping if it is a part of ``SeriesParts`` (which never changes), else
    ``None``. ``pieces[b]`` holds block ``b`` (series ``b * _BLOCK`` up to
    ``(b + 1) * _BLOCK``) as ``[prefix, value text, prefix, value text, ...]``, where a prefix is
    ``name{labels} `` and a value text ends in a newline (value texts are shared through the
    value memo); ``blocks[b]`` is that list joined.
    """

    __slots__ = ("blocks", "keys", "pieces", "source", "values")

    def __init__(
        self,
        source: Mapping[LabelSet, float] | None,
        keys: list[LabelSet],
        values: list[float],
        flat: list[bytes],
    ) -> None:
        self.source = source
        self.keys = keys
        self.values = values
        step = 2 * _BLOCK
        self.pieces = [flat[start : start + step] for start in range(0, len(flat), step)]
        self.blocks = [b"".join(pieces) for pieces in self.pieces]


class Renderer:
    """Renders snapshots; keeps each series' line between renders until its value changes.

    One renderer serves both formats (their sample lines are identical). Caches are keyed by
    series identity (family name + label set, in the snapshot's order) and invalidated by a
    changed value, never by time: the output is always what a new renderer would write for the
    same snapshot. Values that compare equal are the same sample (so ``-0.0`` is written
    ``0.0``). Not thread-safe: render from one thread (or one trio task) at a time.
    """

    def __init__(self) -> None:
        #: family name -> the lines of each of its parts (one for a plain mapping).
        self._families: dict[str, list[_Lines | PartLines]] = {}
        self._headers: dict[_HeaderKey, bytes] = {}
        self._value_text: dict[float, bytes] = {}
        self._lines_formatted = 0

    def statistics(self) -> RendererStatistics:
        return RendererStatistics(
            cached_families=len(self._families),
            cached_series=sum(
                len(lines.keys) if isinstance(lines, _Lines) else len(lines.values) // 8
                for parts in self._families.values()
                for lines in parts
            ),
            kept_bytes=sum(
                len(block)
                for parts in self._families.values()
                for lines in parts
                for block in lines.blocks
            ),
            lines_formatted=self._lines_formatted,
        )

    def render(self, snapshot: Iterable[MetricFamily], fmt: Format = Format.TEXT) -> bytes:
        """The whole exposition of ``snapshot`` in ``fmt`` (text format 0.0.4 by default)."""
        steps = self.render_steps(snapshot, fmt)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    @overload
    def render_steps(
        self,
        snapshot: Iterable[MetricFamily],
        fmt: Format = ...,
        *,
        joined: Literal[True] = ...,
        packed: Literal[False] = ...,
    ) -> Generator[None, None, bytes]: ...

    @overload
    def render_steps(
        self,
        snapshot: Iterable[MetricFamily],
        fmt: Format = ...,
        *,
        joined: bool,
        packed: bool = ...,
    ) -> Generator[None, None, bytes | list[bytes]]: ...

    def render_steps(
        self,
        snapshot: Iterable[MetricFamily],
        fmt: Format = Format.TEXT,
        *,
        joined: bool = True,
        packed: bool = False,
    ) -> Generator[None, None, bytes | list[bytes]]:
        """``render`` in steps: yields between parts of a family (a caller on an event loop
        lets other tasks run there), returns the exposition, or with ``joined=False`` its
        pieces in order (to compress them without joining them first). Run one to its end
        before the next starts; ``snapshot`` must not change meanwhile (a published one
        never does).

        ``packed`` (with ``joined=False``, for ``gzip_segments``): the blocks of the parts are
        kept packed from now on and come as packed pieces (``_packed.is_packed``); without it
        every piece is text."""
        if packed and joined:
            raise ValueError("packed pieces are for gzip_segments, not to be joined")
        chunks: list[bytes] = []
        families = self._families
        old_headers = self._headers
        headers: dict[_HeaderKey, bytes] = {}
        seen: set[str] = set()
        formatted = 0
        for family in snapshot:
            name = family.name
            seen.add(name)
            key: _HeaderKey = (fmt, name, family.type, family.help, family.unit)
            header = old_headers.get(key)
            if header is None:
                header = family_header(family, fmt)
            headers[key] = header
            chunks.append(header)
            if isinstance(family.series, SeriesParts):
                formatted += yield from self._render_parts(name, family.series, chunks, packed)
            else:
                formatted += self._render_family(name, family.series, chunks)

        if len(families) != len(seen):  # families vanished
            for name in [name for name in families if name not in seen]:
                del families[name]
        # Keep the other format's headers of the families still there.
        for old_key, old_header in old_headers.items():
            if old_key[0] is not fmt and old_key[1] in seen:
                headers.setdefault(old_key, old_header)
        self._headers = headers
        self._lines_formatted = formatted
        if fmt is Format.OPENMETRICS:
            chunks.append(EOF_LINE)
        return b"".join(chunks) if joined else chunks

    def _render_parts(
        self, name: str, series: SeriesParts, chunks: list[bytes], packed: bool
    ) -> Generator[None, None, int]:
        """Append the lines of every part of ``series`` (``packed``: as kept packed), yielding
        after each; return how many lines had to be written anew. Parts are matched to the
        previous render's by position."""
        previous = self._families.get(name, [])
        current: list[_Lines | PartLines] = []
        head = f"{name}{{".encode()
        formatted = 0
        pack = PACKER.pack if packed and PACKER is not None else None
        self._families.pop(name, None)  # half-updated while this runs: forgotten on an error
        for index, part in enumerate(series.parts):
            old = previous[index] if index < len(previous) else None
            lines, count = render_part(
                head,
                part,
                old if isinstance(old, PartLines) else None,
                self._value_text,
                self._format,
                pack=pack,
            )
            formatted += count
            current.append(lines)
            if packed:
                yield from lines.pack()
                chunks += lines.blocks
            else:
                chunks += lines.text_blocks()
            yield
        self._families[name] = current
        return formatted

    def _render_family(
        self, name: str, mapping: Mapping[LabelSet, float], chunks: list[bytes]
    ) -> int:
        """Append the sample lines of a family's plain mapping to ``chunks``; return how many
        lines had to be formatted. The mapping is compared every time (a caller that fills
        one dict again still gets what it holds)."""
        previous = self._families.get(name, [])
        old = previous[0] if previous and isinstance(previous[0], _Lines) else None
        try:
            lines, formatted = self._render_mapping(name, mapping, None, old)
        except BaseException:
            # A value that is no number, a bad label name: forget the half-updated family.
            self._families.pop(name, None)
            raise
        self._families[name] = [lines]
        chunks += lines.blocks
        return formatted

    def _render_mapping(
        self,
        name: str,
        mapping: Mapping[LabelSet, float],
        source: Mapping[LabelSet, float] | None,
        previous: _Lines | None,
    ) -> tuple[_Lines, int]:
        """The lines of ``mapping``, made from ``previous``'s where they can be (``source``:
        the part to recognise next time, if any); and how many lines had to be formatted."""
        keys = list(mapping)
        values = list(mapping.values())
        if previous is not None and keys == previous.keys:
            formatted = 0
            if values != previous.values:
                formatted = self._update(values, previous)
            previous.source = source
            previous.keys = keys
            previous.values = values
            return previous, formatted
        flat: list[bytes] = []
        formatted = self._build(name, keys, values, previous, flat)
        return _Lines(source, keys, values, flat), formatted

    def _format(self, value: float) -> bytes:
        """``value`` formatted with its newline, and remembered (called on a memo miss)."""
        text = format_value(value) + b"\n"
        memo = self._value_text
        if len(memo) >= _VALUE_TEXT_LIMIT:
            memo.clear()
        memo[value] = text
        return text

    def _update(self, values: list[float], family: _Lines) -> int:
        """Same series as last time: replace the value texts that changed; return how many
        lines were written anew."""
        old_values = family.values
        changed = _changed_indexes(values, old_values, len(values) // 4)
        if changed is None:
            return self._rewrite_all(values, family)
        memo_get = self._value_text.get
        pieces = family.pieces
        dirty: list[int] = []
        formatted = 0
        for i in changed:
            value = values[i]
            if value is old_values[i]:  # the same NaN object
                continue
            text = memo_get(value)
            if text is None:
                text = self._format(value)
            block = i >> _BLOCK_BITS
            pieces[block][2 * (i & _BLOCK_MASK) + 1] = text
            if not dirty or dirty[-1] != block:
                dirty.append(block)
            formatted += 1
        blocks = family.blocks
        for block in dirty:
            blocks[block] = b"".join(pieces[block])
        return formatted

    def _rewrite_all(self, values: list[float], family: _Lines) -> int:
        """Many values changed: write every value text again (from the memo where it can),
        which costs less per series than finding and patching each change."""
        memo_get = self._value_text.get
        format_new = self._format
        texts = [memo_get(value) or format_new(value) for value in values]
        blocks = family.blocks
        for block, pieces in enumerate(family.pieces):
            pieces[1::2] = texts[block * _BLOCK : (block + 1) * _BLOCK]
            blocks[block] = b"".join(pieces)
        return len(values)

    def _build(
        self,
        name: str,
        keys: list[LabelSet],
        values: list[float],
        previous: _Lines | None,
        flat: list[bytes],
    ) -> int:
        """The series changed: append prefix and value text of every series to ``flat``,
        reusing the previous render's; return how many lines had to be formatted."""
        old_flat: list[bytes] = []
        old_values: list[float] = []
        old_index: dict[LabelSet, int] = {}
        appended = 0
        if previous is not None:
            old_flat = [piece for pieces in previous.pieces for piece in pieces]
            old_values = previous.values
            appended = len(old_values)
            if not (len(keys) > appended and keys[:appended] == previous.keys):
                # Not just appended: find the old lines by label set.
                old_index = {labels: i for i, labels in enumerate(previous.keys)}
                appended = 0
        memo_get = self._value_text.get
        pairs: dict[tuple[str, str], str] = {}  # for this build only: no memory kept
        formatted = 0
        for i, (labels, value) in enumerate(zip(keys, values, strict=True)):
            # Appended series: the old ones are where they were.
            old = i if i < appended else old_index.get(labels)
            if old is None:
                flat.append(series_prefix(name, labels, pairs))
            else:
                flat.append(old_flat[2 * old])
                old_value = old_values[old]
                if value is old_value or value == old_value:
                    flat.append(old_flat[2 * old + 1])
                    continue
            text = memo_get(value)
            flat.append(text if text is not None else self._format(value))
            formatted += 1
        return formatted


def _changed_indexes(values: list[float], old_values: list[float], limit: int) -> list[int] | None:
    """The indexes where ``values`` differ from ``old_values`` (as long), in order; ``None`` as
    soon as there are more than ``limit``.

    Block by block: comparing two lists checks identity before equality and stops at the first
    difference, and an unchanged value is the same float object in both, so an unchanged block
    costs two slices and pointer comparisons. Comparing every value (``map(ne, ...)`` over the
    whole lists) reads each float and makes an int per index: about five times slower at 50k
    values whose objects lie scattered in memory.
    """
    changed: list[int] = []
    for start in range(0, len(values), _BLOCK):
        end = start + _BLOCK
        new = values[start:end]
        old = old_values[start:end]
        if new != old:
            changed += compress(count(start), map(ne, new, old))
            if len(changed) > limit:
                return None
    return changed
