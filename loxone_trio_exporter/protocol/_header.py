"""The 8-byte message header that precedes every Miniserver message.

Layout ([DOC] "Structure of the Message Header")::

    offset 0  cBinType     always 0x03
    offset 1  cIdentifier  MessageIdentifier
    offset 2  cInfo        flags; bit 0x80 = the length is only estimated
    offset 3  cReserved    0
    offset 4  nLen         payload length, uint32 little-endian

The estimated flag is the most significant bit: Loxone's own clients (lxcommunicator,
LxCommunicator.NET) read it that way and a real capture has ``cInfo = 0x80``
(protocol doc §2.1, §9).
"""

from __future__ import annotations

import struct

import attrs

from ..errors import RemoteProtocolError
from ._codes import MessageIdentifier

HEADER_SIZE = 8
HEADER_BIN_TYPE = 0x03
ESTIMATED_FLAG = 0x80
MAX_PAYLOAD_LENGTH = 0xFFFFFFFF

_HEADER = struct.Struct("<BBBBI")

# Identifiers whose header is never followed by a payload, whatever nLen says (lxcommunicator).
PAYLOADLESS_IDENTIFIERS = frozenset({MessageIdentifier.OUT_OF_SERVICE, MessageIdentifier.KEEPALIVE})


@attrs.frozen
class MessageHeader:
    """A decoded message header."""

    identifier: MessageIdentifier
    length: int
    estimated: bool = False
    # The remaining flag bits and the reserved byte, kept so that build(parse(x)) == x.
    info_flags: int = attrs.field(default=0, repr=False)
    reserved: int = attrs.field(default=0, repr=False)

    @property
    def expects_payload(self) -> bool:
        """Whether a payload message follows this header.

        Keepalive and out-of-service never carry one; an exact header announcing 0 bytes has none
        either. An estimated header is always followed by the exact header, not by a payload.
        """
        if self.identifier in PAYLOADLESS_IDENTIFIERS or self.estimated:
            return False
        return self.length > 0


def parse_header(data: bytes | memoryview) -> MessageHeader:
    """Decode exactly 8 bytes into a ``MessageHeader`` or raise ``RemoteProtocolError``."""
    if len(data) != HEADER_SIZE:
        raise RemoteProtocolError(f"a message header has 8 bytes, got {len(data)}", offset=0)
    bin_type, identifier, info, reserved, length = _HEADER.unpack(data)
    if bin_type != HEADER_BIN_TYPE:
        raise RemoteProtocolError(
            f"message header must start with 0x03, got 0x{bin_type:02x}", offset=0
        )
    try:
        kind = MessageIdentifier(identifier)
    except ValueError:
        raise RemoteProtocolError(f"unknown message identifier {identifier}", offset=1) from None
    return MessageHeader(
        identifier=kind,
        length=length,
        estimated=bool(info & ESTIMATED_FLAG),
        info_flags=info & ~ESTIMATED_FLAG,
        reserved=reserved,
    )


def build_header(
    identifier: MessageIdentifier,
    length: int,
    *,
    estimated: bool = False,
    info_flags: int = 0,
    reserved: int = 0,
) -> bytes:
    """Encode a message header (used by the simulator and by tests)."""
    if not 0 <= length <= MAX_PAYLOAD_LENGTH:
        raise ValueError(f"payload length out of range: {length}")
    info = (info_flags & ~ESTIMATED_FLAG & 0xFF) | (ESTIMATED_FLAG if estimated else 0)
    return _HEADER.pack(HEADER_BIN_TYPE, identifier, info, reserved, length)


def encode_header(header: MessageHeader) -> bytes:
    """Encode a ``MessageHeader`` back into its 8 bytes."""
    return build_header(
        header.identifier,
        header.length,
        estimated=header.estimated,
        info_flags=header.info_flags,
        reserved=header.reserved,
    )
