"""The ``flood`` fault: state tables a broken or hostile Miniserver might send, back to back.

Value tables are random bytes, which is a valid value table: random 16-byte UUIDs (none in the
structure) with random doubles. Text tables hold records of new random UUIDs with 1,000 bytes
of text each. Each table is as large as asked (up to 64 MiB, past the exporter's 16 MiB limit).
The tables go through the client's outbox and wait for room, so the socket's own flow control
sets the pace: as fast as the exporter reads.
"""

from __future__ import annotations

import os
import struct

from ..protocol import MessageIdentifier, build_header

FLOOD_TABLES = ("value", "text")
DEFAULT_FLOOD_BYTES = 1024 * 1024
MAX_FLOOD_BYTES = 64 * 1024 * 1024
_TEXT_LENGTH = 1000
_TEXT_RECORD = struct.Struct("<16s16sI")
_TEXT = b"x" * _TEXT_LENGTH
_NULL_UUID = bytes(16)


def flood_message(table: str, size: int) -> tuple[bytes, bytes]:
    """A header and a table payload of about ``size`` bytes (whole records)."""
    if table == "value":
        payload = os.urandom(size - size % 24)
        return build_header(MessageIdentifier.VALUE_STATES, len(payload)), payload
    record_size = _TEXT_RECORD.size + _TEXT_LENGTH  # 1036: a multiple of 4, no padding
    uuids = os.urandom(16 * max(1, size // record_size))
    payload = b"".join(
        _TEXT_RECORD.pack(uuids[i : i + 16], _NULL_UUID, _TEXT_LENGTH) + _TEXT
        for i in range(0, len(uuids), 16)
    )
    return build_header(MessageIdentifier.TEXT_STATES, len(payload)), payload
