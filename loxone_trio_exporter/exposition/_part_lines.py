"""The renderer's cache of one ``LinesPart``: its lines in blocks, rebuilt where values changed.

Per part the renderer keeps only the joined sample lines, in blocks of ``PART_BLOCK`` series, and
the part's value bytes: the text of the exposition is held once (the labels stay in the
publisher's columns, rendered in two levels there). When the next snapshot holds the very same
part, its blocks are taken as they are. A part of the same lineage (the same series at the same
positions, perhaps more) is compared block by block on its value bytes (``memcmp``: an unchanged
block costs two slices); only blocks whose bytes differ are written again, from the part's
labels and the value texts. Anything else is written anew.

Comparing bytes rather than floats treats ``-0.0`` and ``0.0``, or two NaNs with other payloads,
as a change: the block is written again with the same text, which is correct and rare.

A block a gzip answer has shown is kept packed (``_packed``): ``text_blocks`` gives the text
of the blocks for a plain answer, ``pack`` packs the blocks still held as text.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence

from ._model import LinesPart
from ._packed import PACKER, is_packed

#: Series per block: a changed value costs one block written again (labels joined anew), an
#: unchanged block one comparison of two slices. Measured on 10k value series (render
#: benchmark): 16 gives 5.8 ms all changed / 1.0 ms 1% changed, 32 gives 4.9 / 1.2 ms.
PART_BLOCK = 32
_BLOCK_BYTES = 8 * PART_BLOCK
#: Blocks packed per step of a render: about 9 us each (``_packed``), so about 5 ms a step.
PACK_STEP = 512


class PartLines:
    """The lines of the last part rendered at one place of one family."""

    __slots__ = ("blocks", "lineage", "packed", "source", "values")

    def __init__(self, source: LinesPart, blocks: list[bytes], *, packed: bool = False) -> None:
        self.source = source
        self.lineage = source.lineage
        self.values = source.values
        #: Each block's text, or that text packed (``_packed.is_packed``).
        self.blocks = blocks
        #: Whether any block may be packed.
        self.packed = packed

    def text_blocks(self) -> list[bytes]:
        """The blocks as text (packed ones inflated, and kept packed)."""
        if not self.packed:
            return self.blocks
        assert PACKER is not None  # a block is packed only where ISA-L is
        unpack = PACKER.unpack
        return [unpack(block) if is_packed(block) else block for block in self.blocks]

    def pack(self) -> Generator[None, None, None]:
        """Keep every block packed (nothing where python-isal is missing); yields after each
        ``PACK_STEP`` blocks packed (a part of 100k series holds about 3,000)."""
        if PACKER is None:
            return
        self.packed = True  # before any block is: a render left half-way still unpacks
        blocks = self.blocks
        pack = PACKER.pack
        done = 0
        for index, block in enumerate(blocks):
            if not is_packed(block):
                blocks[index] = pack(block)
                done += 1
                if done % PACK_STEP == 0:
                    yield


def render_part(
    head: bytes,
    part: LinesPart,
    previous: PartLines | None,
    memo: dict[float, bytes],
    format_new: Callable[[float], bytes],
    *,
    pack: Callable[[bytes], bytes] | None = None,
) -> tuple[PartLines, int]:
    """The lines of ``part``, from ``previous``'s where they can be; and how many series had
    their block written anew. Value texts come from ``memo``, else from ``format_new``.

    With ``pack`` a block written anew is kept packed at once: its text is freed before the
    next block is written, so a cold render of 100 MB of lines never holds more than a block
    of them (and leaves no 100 MB of freed heap behind for ``malloc_trim`` to give back in one
    long step)."""
    if previous is not None and previous.source is part:
        return previous, 0
    values = part.values
    old_values = b""
    old_blocks: list[bytes] = []
    packed = pack is not None  # whether a block may be packed
    if (
        previous is not None
        and part.lineage is not None
        and previous.lineage is part.lineage
        and len(values) >= len(previous.values)
    ):
        old_values = previous.values
        old_blocks = previous.blocks
        packed = packed or previous.packed
    # A partial last block may have grown: kept only when no series were appended.
    kept = len(old_blocks) if len(values) == len(old_values) else len(old_values) // _BLOCK_BYTES
    count = len(values) // 8
    floats = memoryview(values).cast("d")
    known = memo.get
    convert = part.convert
    blocks: list[bytes] = []
    written = 0
    for block, start in enumerate(range(0, count, PART_BLOCK)):
        offset = start * 8
        if block < kept and (
            values[offset : offset + _BLOCK_BYTES] == old_values[offset : offset + _BLOCK_BYTES]
        ):
            blocks.append(old_blocks[block])
            continue
        stop = min(start + PART_BLOCK, count)
        shown: Sequence[float] = floats[start:stop]
        if convert is not None:
            shown = convert(start, stop, shown)
        # A value text is never empty: ``or`` formats exactly the values the memo lacks.
        texts = [known(value) or format_new(value) for value in shown]
        text = part.lines(head, start, stop, texts)
        blocks.append(text if pack is None else pack(text))
        written += stop - start
    return PartLines(part, blocks, packed=packed), written
