"""Blocks of sample lines kept compressed between gzip scrapes.

The renderer keeps the text of every block of sample lines, so that an unchanged block costs
nothing to write again; that text is most of what a value series costs (about 320 B of its
memory, the labels written out in full). Prometheus asks for gzip on every scrape, so a block a
gzip answer has shown is kept as the piece of that answer it was: a raw deflate segment, about
a sixth of the text, with the CRC-32 and the length of its text (``is_packed``). A gzip answer
is then the gzip header, the segments in order (new text compressed between them), an empty
final block and a trailer whose CRC is combined from the blocks' CRCs: an unchanged block is
neither inflated nor compressed again. A plain answer inflates the packed blocks it shows.

Each segment is compressed on its own: ``Z_FULL_FLUSH`` ends it on a byte boundary (an empty
stored block) and forgets the history, so no segment refers to bytes outside itself, and any
sequence of segments is one valid deflate stream.

Only with ISA-L (python-isal), whose ``crc32_combine`` the trailer needs: Python's zlib module
has none. Without it (``PACKING`` false) the renderer keeps the text, as before. ISA-L level 0:
on the render benchmark's 10k value series (blocks of 32 lines, 6.6 kB) it packs a block in
about 9 us to 15% of its size; level 1 takes 15 us for 12%.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Protocol

#: Level of a packed block's deflate segment (ISA-L's scale, see module doc).
PACK_LEVEL = 0
_TRAILER = struct.Struct("<II")  # CRC-32 and length of the block's text
_RAW_DEFLATE = -15  # wbits: a raw deflate stream, 32 KiB window


class Compressor(Protocol):
    """What ``compressobj`` gives, in zlib and in ISA-L."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self, mode: int = ..., /) -> bytes: ...


class _Decompressor(Protocol):
    def decompress(self, data: memoryview, /) -> bytes: ...


def is_packed(block: bytes) -> bool:
    """Whether ``block`` is packed: a NUL byte (a block of sample lines starts with a metric
    name, a header or a comment, never with one), then a raw deflate segment that stands alone
    (see module doc), then the CRC-32 and the length of its text (8 bytes, little-endian).

    Plain ``bytes`` with a mark rather than a subclass of ``bytes``: instances of a subclass
    are tracked by the cyclic garbage collector (49 bytes more each), and 30k of them made in
    one cold render set off a full collection in the middle of it (120-190 ms at 100
    Miniservers of 1k controls).
    """
    return block[:1] == b"\x00"


def packed_segment(block: bytes) -> bytes:
    """The deflate segment of a packed ``block``: a copy, as ``bytes``, because a
    ``memoryview`` is an object the cyclic collector tracks, and a gzip answer holds one per
    block until it is joined."""
    return block[1 : -_TRAILER.size]


def packed_crc_and_length(block: bytes) -> tuple[int, int]:
    """The CRC-32 and the length of a packed ``block``'s text."""
    crc, length = _TRAILER.unpack_from(block, len(block) - _TRAILER.size)
    return crc, length


class _Packer:
    """ISA-L's compressor and checksums, where python-isal is installed."""

    def __init__(self) -> None:
        from isal import isal_zlib  # noqa: PLC0415 - optional: the import may fail

        self._compressor: Compressor = isal_zlib.compressobj(
            PACK_LEVEL, isal_zlib.DEFLATED, _RAW_DEFLATE
        )
        self._full_flush: int = isal_zlib.Z_FULL_FLUSH
        self._decompressobj: Callable[[int], _Decompressor] = isal_zlib.decompressobj
        self._crc32: Callable[[bytes], int] = isal_zlib.crc32
        self.crc32_combine: Callable[[int, int, int], int] = isal_zlib.crc32_combine

    def pack(self, text: bytes) -> bytes:
        compressor = self._compressor
        # Concatenated, not joined from a tuple: a tuple per block is an object the cyclic
        # collector counts, and a cold render of 100 Miniservers packs 30k blocks.
        segment = compressor.compress(text) + compressor.flush(self._full_flush)
        return b"\x00" + segment + _TRAILER.pack(self._crc32(text), len(text))

    def unpack(self, block: bytes) -> bytes:
        """The text of a packed ``block``."""
        return self._decompressobj(_RAW_DEFLATE).decompress(memoryview(block)[1 : -_TRAILER.size])


def _make_packer() -> _Packer | None:
    try:
        return _Packer()
    except ImportError:
        return None


#: ``None`` where python-isal is missing: the renderer then keeps its blocks as text.
PACKER = _make_packer()
