"""Which format and encoding a scraper asked for: ``Accept`` and ``Accept-Encoding`` with q-values.

The exporter never answers 406: text format 0.0.4 is served whenever OpenMetrics is not the
preferred choice, and the identity encoding is always acceptable.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator

import attrs

from ._packed import PACKER, Compressor, is_packed, packed_crc_and_length, packed_segment
from ._text import Format

_OPENMETRICS = "application/openmetrics-text"
# The OpenMetrics versions this renderer writes validly: 1.0.0 and its draft name 0.0.1
# (Prometheus asks for both). A range without a version means any version.
_OPENMETRICS_VERSIONS = frozenset({None, "1.0.0", "0.0.1"})
# Ranges that the text format satisfies; any ``text/plain`` version does, since the output only
# uses the legacy character set that text format 1.0.0 also reads unquoted.
_TEXT_RANGES = frozenset({"text/plain", "text/*", "*/*"})
_GZIP_CODINGS = frozenset({"gzip", "x-gzip"})

#: Level of ``gzip_bytes``, on the scale of the compressor in use (ISA-L 0-3, zlib 0-9). Measured
#: on the render benchmark's 10k value series (2.6 MB of text; 2 cores, CPython 3.11): ISA-L
#: level 1 takes 0.79 ms for 5.8% of the size; its level 0 is no faster (0.76 ms) for 7.2%,
#: level 2 the same as 1, level 3 7x slower (5.8 ms) and no smaller. zlib, where ISA-L is
#: missing: level 1 takes 4.7 ms for 5.7%, level 6 12 ms (2.5x) for 4.0%. Prometheus asks for
#: gzip on every scrape and the body is small either way, so latency on the shared event loop
#: wins: level 1 on both.
GZIP_LEVEL = 1
#: 16 (a gzip header and trailer around the deflate stream) + 15 (a 32 KiB window).
_GZIP_WBITS = 31
#: A raw deflate stream (no header, no trailer), 32 KiB window.
_RAW_DEFLATE = -15
#: RFC 1952: magic, deflate, no flags, mtime 0 (equal input, equal output), no extra flags,
#: operating system unknown.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
#: A final block of fixed Huffman codes holding only its end: what ends the deflate stream
#: after the last full flush.
_FINAL_EMPTY_BLOCK = b"\x03\x00"
#: CRC-32 and length (modulo 2**32) of the text, little-endian.
_GZIP_TRAILER = struct.Struct("<II")
#: Bytes of text ``gzip_segments`` compresses per step: ISA-L takes about 2 ms per 4 MB here,
#: zlib about 10 ms (design 4: no event-loop step over 50 ms).
GZIP_SEGMENT_BYTES = 4 * 1024 * 1024


@attrs.frozen
class Deflate:
    """A zlib-compatible compressor: ``compress(data, level, wbits)``, its highest level,
    ``compressobj(level, method, wbits)`` for data that comes in pieces and its ``crc32``."""

    name: str
    compress: Callable[[bytes, int, int], bytes]
    best_level: int
    compressobj: Callable[[int, int, int], Compressor]
    crc32: Callable[[bytes, int], int]


ZLIB_DEFLATE = Deflate("zlib", zlib.compress, zlib.Z_BEST_COMPRESSION, zlib.compressobj, zlib.crc32)


def pick_deflate() -> Deflate:
    """ISA-L's (python-isal's ``isal_zlib``, about 6x faster than zlib at level 1 for the same
    size) where it is installed, else the standard library's ``zlib``: python-isal has no wheel
    for some machines (32-bit ARM, say), and pyproject.toml installs it only where it has."""
    try:
        from isal import isal_zlib  # noqa: PLC0415 - optional: the import may fail
    except ImportError:
        return ZLIB_DEFLATE
    return Deflate(
        "isal",
        isal_zlib.compress,
        isal_zlib.ISAL_BEST_COMPRESSION,
        isal_zlib.compressobj,
        isal_zlib.crc32,
    )


#: What ``gzip_bytes`` compresses with, picked once at import.
DEFLATE = pick_deflate()


def _parse_q(text: str) -> float | None:
    """A q-value in [0, 1], or None when it is not one (the whole element is then ignored)."""
    try:
        q = float(text)
    except ValueError:
        return None
    if not 0.0 <= q <= 1.0:  # also rejects nan
        return None
    return q


def _elements(header: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """``(token, parameters, q)`` of each comma-separated element, names lower-cased."""
    for element in header.split(","):
        token, *fields = element.split(";")
        token = token.strip().lower()
        if not token:
            continue
        params: dict[str, str] = {}
        q: float | None = 1.0
        for field in fields:
            name, _, value = field.partition("=")
            name = name.strip().lower()
            value = value.strip().strip('"')
            if name == "q":
                q = _parse_q(value)
            elif name:
                params[name] = value
        if q is not None:
            yield token, params, q


def choose_format(accept_header: str | None) -> Format:
    """OpenMetrics 1.0 when the ``Accept`` header prefers it, else text format 0.0.4.

    OpenMetrics is chosen when an ``application/openmetrics-text`` range (no version, 1.0.0 or
    0.0.1) has a q above 0 and at least as high as the best range the text format matches
    (``text/plain``, ``text/*``, ``*/*``); a tie goes to the more specific OpenMetrics range.
    A missing, empty or unparsable header gives text format.
    """
    if not accept_header:
        return Format.TEXT
    openmetrics_q = 0.0
    text_q = 0.0
    for media_range, params, q in _elements(accept_header):
        if media_range == _OPENMETRICS:
            if params.get("version") in _OPENMETRICS_VERSIONS:
                openmetrics_q = max(openmetrics_q, q)
        elif media_range in _TEXT_RANGES:
            text_q = max(text_q, q)
    if openmetrics_q > 0.0 and openmetrics_q >= text_q:
        return Format.OPENMETRICS
    return Format.TEXT


def wants_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` accepts gzip (q above 0) at least as much as identity.

    ``gzip`` (or ``x-gzip``) with its q; else ``*`` with its q; ``gzip;q=0`` refuses it even when
    ``*`` is accepted. An explicit ``identity`` with a higher q than gzip keeps the body plain.
    """
    if not accept_encoding:
        return False
    gzip_q: float | None = None
    any_q: float | None = None
    identity_q: float | None = None
    for coding, _, q in _elements(accept_encoding):
        if coding in _GZIP_CODINGS:
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            any_q = q
        elif coding == "identity":
            identity_q = q
    if gzip_q is None:
        gzip_q = any_q if any_q is not None else 0.0
    return gzip_q > 0.0 and (identity_q is None or gzip_q >= identity_q)


def gzip_bytes(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """``data`` as one gzip member (mtime 0, so equal input gives equal output).

    ``level`` is on the scale of ``DEFLATE`` (ISA-L 0-3, zlib 0-9); a level above its highest
    compresses at its highest.
    """
    deflate = DEFLATE
    return deflate.compress(data, min(level, deflate.best_level), _GZIP_WBITS)


def gzip_segments(chunks: Iterable[bytes], level: int = GZIP_LEVEL) -> Generator[None, None, bytes]:
    """One gzip member of the concatenated ``chunks``, made a segment at a time: yields after
    each ``GZIP_SEGMENT_BYTES`` of text, returns the member. The text is never joined whole (at
    100 Miniservers that join alone would be a 100 MB copy in one step).

    ``chunks`` are exposition text (which never starts with a NUL byte) and blocks a renderer
    packed: a packed block (``_packed.is_packed``) goes in as the deflate segment it already
    is; the text between packed blocks is compressed, each run ended with a full flush so that
    it refers to nothing outside itself either. The member ends with an empty final block and
    a trailer whose CRC-32 combines the runs' and the blocks' CRCs.
    """
    deflate = DEFLATE
    compressor = deflate.compressobj(min(level, deflate.best_level), zlib.DEFLATED, _RAW_DEFLATE)
    crc32 = deflate.crc32
    combine = None if PACKER is None else PACKER.crc32_combine
    compressed: list[bytes] = [_GZIP_HEADER]
    crc = length = 0
    pending: list[bytes] = []
    pending_length = 0  # of ``pending``
    flushed = True  # nothing compressed since the last full flush
    step = 0  # text since the last yield
    for chunk in chunks:
        if is_packed(chunk):
            if pending or not flushed:
                text = b"".join(pending)
                crc = crc32(text, crc)
                compressed += (compressor.compress(text), compressor.flush(zlib.Z_FULL_FLUSH))
                pending.clear()
                pending_length = 0
                flushed = True
            assert combine is not None  # a packed block exists only where ISA-L does
            block_crc, block_length = packed_crc_and_length(chunk)
            crc = combine(crc, block_crc, block_length)
            length += block_length
            compressed.append(packed_segment(chunk))
            step += block_length
        else:
            pending.append(chunk)
            pending_length += len(chunk)
            length += len(chunk)
            step += len(chunk)
            if pending_length >= GZIP_SEGMENT_BYTES:
                text = b"".join(pending)
                crc = crc32(text, crc)
                compressed.append(compressor.compress(text))
                pending.clear()
                pending_length = 0
                flushed = False
        if step >= GZIP_SEGMENT_BYTES:
            step = 0
            yield
    text = b"".join(pending)
    crc = crc32(text, crc)
    compressed += (compressor.compress(text), compressor.flush(zlib.Z_FULL_FLUSH))
    compressed += (_FINAL_EMPTY_BLOCK, _GZIP_TRAILER.pack(crc, length & 0xFFFFFFFF))
    return b"".join(compressed)


def segments(chunks: Iterable[bytes]) -> Generator[None, None, tuple[bytes, ...]]:
    """``chunks`` joined into segments of about ``GZIP_SEGMENT_BYTES`` each, yielding after each
    segment: a plain body to send as it is, never joined whole."""
    joined: list[bytes] = []
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= GZIP_SEGMENT_BYTES:
            joined.append(b"".join(pending))
            pending.clear()
            size = 0
            yield
    if pending:
        joined.append(b"".join(pending))
    return tuple(joined)
