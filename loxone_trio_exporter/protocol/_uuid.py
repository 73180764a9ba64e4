"""Loxone UUIDs: raw 16-byte keys and their ``8-4-4-16`` string form.

On the wire a UUID is a Microsoft GUID: ``Data1`` (uint32), ``Data2`` and ``Data3`` (uint16), all
little-endian, then 8 bytes as they are. The string form prints those fields as lowercase hex
joined by dashes, with *no* dash inside ``Data4`` ([DOC] "The UUID"). The hot path keeps raw bytes;
these conversions run once per UUID when a structure file is indexed.
"""

from __future__ import annotations

import re
import struct

RAW_UUID_SIZE = 16

NULL_UUID = bytes(RAW_UUID_SIZE)

_GUID_FIELDS = struct.Struct("<IHH8s")
_LOXONE_UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{16}")


def uuid_to_str(raw: bytes) -> str:
    """Format a raw 16-byte UUID as Loxone writes it: ``0f869a64-0200-0a9b-ffffd4c75dbaf53c``."""
    if len(raw) != RAW_UUID_SIZE:
        raise ValueError(f"a Loxone UUID has 16 bytes, got {len(raw)}")
    data1, data2, data3, data4 = _GUID_FIELDS.unpack(raw)
    return f"{data1:08x}-{data2:04x}-{data3:04x}-{data4.hex()}"


def uuid_from_str(text: str) -> bytes:
    """Parse the Loxone string form into the raw 16 bytes that appear in event tables.

    Raises ``ValueError`` for anything that is not exactly ``8-4-4-16`` hex digits (a suffix such as
    ``/AI1`` included: those keys name subcontrols and never appear in binary events).
    """
    if not _LOXONE_UUID_PATTERN.fullmatch(text):
        raise ValueError(f"not a Loxone UUID (expected 8-4-4-16 hex digits): {text!r}")
    part1, part2, part3, part4 = text.split("-")
    return _GUID_FIELDS.pack(int(part1, 16), int(part2, 16), int(part3, 16), bytes.fromhex(part4))


def is_uuid_str(text: str) -> bool:
    """True when ``text`` is a Loxone UUID string (``8-4-4-16``), without a suffix."""
    return _LOXONE_UUID_PATTERN.fullmatch(text) is not None
