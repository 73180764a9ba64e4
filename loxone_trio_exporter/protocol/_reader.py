"""Turns whole WebSocket messages from a Miniserver into events.

Every Miniserver message is an 8-byte binary header, then (usually) one payload message
([DOC] "Understanding the messages"). The reader keys on "am I waiting for a payload of N bytes?"
rather than on "is this message 8 bytes long?", because an 8-byte payload is possible. Rules, from
the documentation and Loxone's own lxcommunicator (protocol doc §2.1):

- An estimated header (info bit 0x80) is always followed by the exact header; that next header is
  taken as exact whatever its own bit says. If the exact header never comes and a payload of exactly
  the estimated size arrives, it is accepted (lxcommunicator does the same).
- A header arriving while a payload is still expected replaces the pending header.
- Keepalive (6) and out-of-service (5) never have a payload, whatever their length says; an exact
  header announcing 0 bytes has none either.
- A text frame is the payload of a header with identifier 0 or 1 (text files such as LoxAPP3.json
  come as text frames after a file header).
- Header and payload joined in one binary message are accepted too (some proxies and simulators do
  this).

Anything else raises ``RemoteProtocolError``; after that the session must be restarted, because
the reader cannot know where the stream is.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import RemoteProtocolError
from ._codes import MessageIdentifier
from ._events import (
    DaytimerStatesReceived,
    Event,
    FileReceived,
    KeepaliveReceived,
    OutOfService,
    TextReply,
    TextStatesReceived,
    ValueStatesReceived,
    WeatherStatesReceived,
)
from ._header import HEADER_BIN_TYPE, HEADER_SIZE, MessageHeader, encode_header, parse_header
from ._packed import (
    packed_daytimer_states,
    packed_text_states,
    packed_value_states,
    packed_weather_states,
)
from ._replies import try_parse_ll_reply

# Tables stay packed and are decoded while they are applied (``_packed``: no table costs
# more memory than its own bytes); each is checked whole here.
_BINARY_DECODERS: dict[MessageIdentifier, Callable[[bytes], Event]] = {
    MessageIdentifier.VALUE_STATES: lambda p: ValueStatesReceived(packed_value_states(p)),
    MessageIdentifier.TEXT_STATES: lambda p: TextStatesReceived(packed_text_states(p)),
    MessageIdentifier.DAYTIMER_STATES: lambda p: DaytimerStatesReceived(packed_daytimer_states(p)),
    MessageIdentifier.WEATHER_STATES: lambda p: WeatherStatesReceived(packed_weather_states(p)),
    MessageIdentifier.FILE: FileReceived,
    MessageIdentifier.TEXT: lambda p: _text_event(_decode_utf8(p)),
}

_TEXT_FRAME_IDENTIFIERS = frozenset({MessageIdentifier.TEXT, MessageIdentifier.FILE})


class MessageReader:
    """Feed it every WebSocket message in order; it returns the event each one completes."""

    def __init__(self) -> None:
        self._pending: MessageHeader | None = None

    def receive(self, message: bytes | bytearray | memoryview | str) -> Event | None:
        """Take one whole WebSocket message; return the event it completes, or ``None``.

        ``None`` means the message was a header whose payload is still to come.
        """
        if isinstance(message, str):
            return self._receive_text(message)
        return self._receive_binary(bytes(message))

    def _receive_text(self, text: str) -> Event:
        pending = self._pending
        if pending is None:
            raise RemoteProtocolError("text message without a header before it")
        if pending.identifier not in _TEXT_FRAME_IDENTIFIERS:
            raise RemoteProtocolError(
                f"text message where a binary {pending.identifier.name} payload was expected"
            )
        # The WebSocket frame delimits a text payload, so its announced length is not enforced:
        # an estimated header may be all we got, and the count is of bytes, not characters.
        self._pending = None
        if pending.identifier is MessageIdentifier.FILE:
            return FileReceived(text)
        return _text_event(text)

    def _receive_binary(self, data: bytes) -> Event | None:
        pending = self._pending
        if pending is not None:
            after_estimate = pending.estimated
            if not after_estimate and len(data) == pending.length:
                self._pending = None
                return _decode_payload(pending.identifier, data)
            if _is_header_message(data):
                return self._receive_header_message(data, force_exact=after_estimate)
            if after_estimate and len(data) == pending.length:
                self._pending = None
                return _decode_payload(pending.identifier, data)
            raise RemoteProtocolError(
                f"{pending.identifier.name} payload of {len(data)} bytes, "
                f"header announced {pending.length}",
                offset=0,
            )
        if len(data) < HEADER_SIZE:
            raise RemoteProtocolError(
                f"binary message of {len(data)} bytes where a header was expected", offset=0
            )
        return self._receive_header_message(data, force_exact=False)

    def _receive_header_message(self, data: bytes, *, force_exact: bool) -> Event | None:
        header = parse_header(data[:HEADER_SIZE])
        if force_exact and header.estimated:
            header = MessageHeader(header.identifier, header.length, estimated=False)
        self._pending = None
        if len(data) > HEADER_SIZE:
            return self._receive_joined(header, data)
        if header.identifier is MessageIdentifier.KEEPALIVE:
            return KeepaliveReceived()
        if header.identifier is MessageIdentifier.OUT_OF_SERVICE:
            return OutOfService()
        if header.estimated or header.length > 0:
            self._pending = header
            return None
        return _decode_payload(header.identifier, b"")

    def _receive_joined(self, header: MessageHeader, data: bytes) -> Event:
        payload = data[HEADER_SIZE:]
        if not header.expects_payload and not header.estimated:
            raise RemoteProtocolError(
                f"{header.identifier.name} header with {len(payload)} bytes attached, "
                "none expected",
                offset=HEADER_SIZE,
            )
        if len(payload) != header.length:
            raise RemoteProtocolError(
                f"{header.identifier.name} payload of {len(payload)} bytes joined to a header "
                f"announcing {header.length}",
                offset=HEADER_SIZE,
            )
        return _decode_payload(header.identifier, payload)


def _is_header_message(data: bytes) -> bool:
    """Whether ``data`` starts with something that parses as a header (alone or joined)."""
    if len(data) < HEADER_SIZE or data[0] != HEADER_BIN_TYPE:
        return False
    try:
        header = parse_header(data[:HEADER_SIZE])
    except RemoteProtocolError:
        return False
    return len(data) == HEADER_SIZE or len(data) - HEADER_SIZE == header.length


def _decode_payload(identifier: MessageIdentifier, payload: bytes) -> Event:
    decoder = _BINARY_DECODERS.get(identifier)
    if decoder is None:  # 5 and 6 never reach here; kept so a new identifier fails loudly
        raise RemoteProtocolError(f"{identifier.name} cannot carry a payload")
    return decoder(payload)


def _decode_utf8(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError("text reply is not UTF-8", offset=exc.start) from None


def _text_event(text: str) -> TextReply:
    return TextReply(text=text, reply=try_parse_ll_reply(text))


# --- the other direction: how a Miniserver frames what it sends (simulator, tests) -------------


def frame_binary_message(
    identifier: MessageIdentifier, payload: bytes, *, estimated_length: int | None = None
) -> list[bytes]:
    """Messages a Miniserver sends for a binary payload: [estimated header], header, payload."""
    messages = _estimated_prefix(identifier, estimated_length)
    messages.append(encode_header(MessageHeader(identifier, len(payload))))
    if payload:
        messages.append(payload)
    return messages


def frame_text_message(
    identifier: MessageIdentifier, text: str, *, estimated_length: int | None = None
) -> list[bytes | str]:
    """Messages a Miniserver sends for a text payload: [estimated header], header, text frame."""
    length = len(text.encode("utf-8"))
    messages: list[bytes | str] = list(_estimated_prefix(identifier, estimated_length))
    messages.append(encode_header(MessageHeader(identifier, length)))
    if length:
        messages.append(text)
    return messages


def _estimated_prefix(identifier: MessageIdentifier, estimated_length: int | None) -> list[bytes]:
    if estimated_length is None:
        return []
    return [encode_header(MessageHeader(identifier, estimated_length, estimated=True))]
