"""gzip of ``/metrics``: ISA-L (python-isal) where it is installed, the standard zlib without it.

Either compressor must give one gzip member that ``gzip.decompress`` reads back to the input,
with mtime 0 (equal input, equal output). The compressor in use is picked at import
(``_negotiate.DEFLATE``); these tests set that attribute to each one in turn. The end-to-end
tests (promtool, prometheus_client's parser, a real Prometheus) read the one in use.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Generator, Iterator
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loxone_trio_exporter.exposition import _negotiate
from loxone_trio_exporter.exposition._negotiate import (
    ZLIB_DEFLATE,
    Deflate,
    gzip_bytes,
    gzip_segments,
    pick_deflate,
    segments,
)
from loxone_trio_exporter.exposition._packed import PACKER, is_packed

GZIP_MAGIC = b"\x1f\x8b"
#: gzip header (RFC 1952, 2.3): magic, method, flags, then MTIME in bytes 4-7.
MTIME = slice(4, 8)


T = TypeVar("T")


def exposition_text(series: int) -> bytes:
    """What ``/metrics`` looks like: many lines that differ in a label and a value."""
    lines = (
        f'loxone_control_value{{miniserver="home",uuid="{i:08x}",state="value"}} {i * 0.25}\n'
        for i in range(series)
    )
    return "".join(lines).encode()


def isal_deflate() -> Deflate:
    pytest.importorskip("isal.isal_zlib")
    deflate = pick_deflate()
    assert deflate.name == "isal"
    return deflate


def compressors() -> Iterator[Deflate]:
    """zlib, and ISA-L where it is installed."""
    yield ZLIB_DEFLATE
    if pick_deflate() is not ZLIB_DEFLATE:
        yield pick_deflate()


def test_isal_is_picked_where_it_is_installed() -> None:
    deflate = isal_deflate()
    assert deflate == _negotiate.DEFLATE
    assert deflate.best_level == 3


def test_zlib_is_picked_when_isal_cannot_be_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes ``import isal`` raise ImportError, as on a machine without it.
    monkeypatch.setitem(sys.modules, "isal", None)
    monkeypatch.delitem(sys.modules, "isal.isal_zlib", raising=False)
    assert pick_deflate() is ZLIB_DEFLATE


@pytest.mark.parametrize("compressor", ["isal", "zlib"])
@pytest.mark.parametrize("level", [0, 1, 3, 6, 9])
def test_gzip_bytes_with_either_compressor(
    monkeypatch: pytest.MonkeyPatch, compressor: str, level: int
) -> None:
    deflate = isal_deflate() if compressor == "isal" else ZLIB_DEFLATE
    monkeypatch.setattr(_negotiate, "DEFLATE", deflate)
    body = exposition_text(2000)
    compressed = gzip_bytes(body, level)  # a level above the compressor's highest is its highest
    assert compressed[:2] == GZIP_MAGIC
    assert compressed[MTIME] == bytes(4)
    assert gzip.decompress(compressed) == body
    assert gzip_bytes(body, level) == compressed
    if level > 0:
        assert len(compressed) < len(body) / 5


@given(st.binary(max_size=5000))
def test_either_compressor_round_trips_any_bytes(data: bytes) -> None:
    for deflate in compressors():
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_negotiate, "DEFLATE", deflate)
            compressed = gzip_bytes(data)
        assert compressed[:2] == GZIP_MAGIC, deflate.name
        assert gzip.decompress(compressed) == data, deflate.name


def _finish(steps: Generator[None, None, T]) -> tuple[T, int]:
    """Run ``steps`` to its end: its value and how many times it yielded."""
    yielded = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value, yielded
        yielded += 1


@pytest.mark.parametrize("compressor", ["isal", "zlib"])
def test_gzip_segments_compress_chunks_a_segment_per_step(
    monkeypatch: pytest.MonkeyPatch, compressor: str
) -> None:
    deflate = isal_deflate() if compressor == "isal" else ZLIB_DEFLATE
    monkeypatch.setattr(_negotiate, "DEFLATE", deflate)
    monkeypatch.setattr(_negotiate, "GZIP_SEGMENT_BYTES", 50_000)
    body = exposition_text(3000)
    chunks = [body[start : start + 7000] for start in range(0, len(body), 7000)]
    compressed, yielded = _finish(gzip_segments(chunks))
    assert compressed[:2] == GZIP_MAGIC
    assert compressed[MTIME] == bytes(4)
    assert gzip.decompress(compressed) == body
    assert yielded == len(body) // 56_000  # 8 chunks of 7,000 bytes reach 50,000
    pieces, steps = _finish(segments(chunks))
    assert b"".join(pieces) == body
    assert steps == yielded
    assert all(len(piece) >= 50_000 for piece in pieces[:-1])


@pytest.mark.parametrize("compressor", ["isal", "zlib"])
def test_packed_blocks_go_into_the_member_as_they_are(
    monkeypatch: pytest.MonkeyPatch, compressor: str
) -> None:
    """Blocks kept packed (``_packed``) among text chunks, in any order and repeated: one gzip
    member whose text is the chunks' in order, whichever compressor writes the text between."""
    if PACKER is None:
        pytest.skip("python-isal is not installed: blocks are never packed")
    deflate = isal_deflate() if compressor == "isal" else ZLIB_DEFLATE
    monkeypatch.setattr(_negotiate, "DEFLATE", deflate)
    monkeypatch.setattr(_negotiate, "GZIP_SEGMENT_BYTES", 50_000)
    body = exposition_text(3000)
    texts = [body[start : start + 7000] for start in range(0, len(body), 7000)]
    packed = [PACKER.pack(text) for text in texts]
    assert all(len(block) * 3 < len(text) for block, text in zip(packed, texts, strict=True))
    chunks = [b"# HELP loxone_control_value help\n", *packed[:5], texts[5], texts[6]]
    chunks += [packed[2], packed[2], b"", texts[0], *packed[7:], b"# EOF\n"]
    expected = b"".join(PACKER.unpack(chunk) if is_packed(chunk) else chunk for chunk in chunks)
    compressed, yielded = _finish(gzip_segments(chunks))
    assert compressed[:2] == GZIP_MAGIC
    assert compressed[MTIME] == bytes(4)
    assert gzip.decompress(compressed) == expected
    assert zlib.decompress(compressed, 31) == expected  # one member: nothing left over
    assert 1 <= yielded <= len(expected) // 50_000  # a step per 50,000 bytes of text at most
