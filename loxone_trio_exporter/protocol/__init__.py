"""The Loxone Miniserver protocol, sans-IO.

Whole WebSocket messages go in, frozen events come out; commands come out as strings to send.
Nothing here touches a socket, a clock or a random source: keys, IVs, salts and times are passed
in, so every result is reproducible and testable against recorded vectors. Importing this package
must never import trio (a test checks it).
"""

from ..errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ._codes import CloseCode, MessageIdentifier, ResponseCode
from ._header import (
    ESTIMATED_FLAG,
    HEADER_SIZE,
    MessageHeader,
    build_header,
    encode_header,
    parse_header,
)
from ._uuid import NULL_UUID, RAW_UUID_SIZE, is_uuid_str, uuid_from_str, uuid_to_str

# --- event tables, events and the message reader (_tables.py, _events.py, _reader.py) ---

# --- LL replies (_replies.py) ---

# --- authentication and command encryption (_auth.py, _crypto.py) ---

__all__ = [
    "ESTIMATED_FLAG",
    "HEADER_SIZE",
    "NULL_UUID",
    "RAW_UUID_SIZE",
    "CloseCode",
    "LocalProtocolError",
    "MessageHeader",
    "MessageIdentifier",
    "ProtocolError",
    "RemoteProtocolError",
    "ResponseCode",
    "build_header",
    "encode_header",
    "is_uuid_str",
    "parse_header",
    "uuid_from_str",
    "uuid_to_str",
]
