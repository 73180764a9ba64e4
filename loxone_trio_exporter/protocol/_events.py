"""The frozen events the message reader produces, one per complete Miniserver message."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ._replies import LLReply
from ._tables import DaytimerState, TextState, ValueState, WeatherState


@attrs.frozen
class TextReply:
    """A text message (identifier 0): normally an LL reply to the oldest command in flight.

    ``reply`` is ``None`` when the text is not an LL reply, which is what a ``fenc`` command gets
    back (the whole reply AES-encrypted and Base64-encoded); the session decrypts and parses it.
    """

    text: str
    reply: LLReply | None


@attrs.frozen
class FileReceived:
    """A file (identifier 1): ``str`` if it came as a text frame (LoxAPP3.json), else ``bytes``."""

    content: str | bytes


@attrs.frozen
class ValueStatesReceived:
    """A value-state table: ``(raw_uuid, value)`` pairs in wire order."""

    states: Sequence[ValueState]


@attrs.frozen
class TextStatesReceived:
    """A text-state table."""

    states: Sequence[TextState]


@attrs.frozen
class DaytimerStatesReceived:
    """A daytimer-state table."""

    states: Sequence[DaytimerState]


@attrs.frozen
class WeatherStatesReceived:
    """A weather-state table."""

    states: Sequence[WeatherState]


@attrs.frozen
class KeepaliveReceived:
    """The answer to our ``keepalive`` command (identifier 6)."""


@attrs.frozen
class OutOfService:
    """Identifier 5: the Miniserver goes down (firmware update, config upload) and will close."""


Event = (
    TextReply
    | FileReceived
    | ValueStatesReceived
    | TextStatesReceived
    | DaytimerStatesReceived
    | WeatherStatesReceived
    | KeepaliveReceived
    | OutOfService
)
